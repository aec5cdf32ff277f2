package broker

// WriteTxnMarkers: v0–1. Sent by a transaction coordinator to the leader
// of each partition of a transaction (and by admin tools aborting a hung
// transaction, KIP-664). Each marker is appended as a control batch with
// acks=all (writeMarker); one on a __consumer_offsets partition also
// completes the producer's pending offset commits there.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/storage"
)

func init() { register(27, 0, 1, handleWriteTxnMarkers) }

func handleWriteTxnMarkers(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.WriteTxnMarkersRequest)
	resp := r.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	for _, m := range r.Markers {
		rm := kmsg.NewWriteTxnMarkersResponseMarker()
		rm.ProducerID = m.ProducerID
		sm := storage.Marker{ProducerID: m.ProducerID, ProducerEpoch: m.ProducerEpoch, Commit: m.Committed, CoordinatorEpoch: m.CoordinatorEpoch}
		for _, t := range m.Topics {
			rt := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			rt.Topic = t.Topic
			for _, pi := range t.Partitions {
				rp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				rp.Partition = pi
				if err := b.writeMarker(t.Topic, pi, sm); err != nil {
					rp.ErrorCode = tributary.CodeOf(err)
					if rp.ErrorCode == tributary.ErrUnknownServerError.Code {
						b.logger.Error("writing a transaction marker", "topic", t.Topic, "partition", pi, "err", err)
					}
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			rm.Topics = append(rm.Topics, rt)
		}
		resp.Markers = append(resp.Markers, rm)
	}
	return resp, nil
}
