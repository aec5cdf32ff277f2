package broker

// DeleteRecords: v0–2.
//
// Moves a partition's log start offset forward (storage deletes whole
// segments below it and persists the new start). Offset -1 means the high
// watermark; an offset above the high watermark, or any other negative
// one, is OFFSET_OUT_OF_RANGE. An offset at or below the current log start
// changes nothing. The answer is the partition's low watermark (log start)
// afterwards. Fetches parked on the partition are woken, since a fetch
// below the new start must now fail.
//
// Version notes: v1 no change; v2 flexible.

import (
	"github.com/tributary/tributary"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(21, 0, 2, handleDeleteRecords) }

func handleDeleteRecords(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.DeleteRecordsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteRecordsResponse)
	resp.Topics = make([]kmsg.DeleteRecordsResponseTopic, len(r.Topics))
	for i := range r.Topics {
		rt := &r.Topics[i]
		st := &resp.Topics[i]
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.DeleteRecordsResponseTopicPartition, len(rt.Partitions))
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := &st.Partitions[j]
			sp.Default()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			p, err := b.leaderPartition(rt.Topic, rp.Partition)
			if err != nil {
				sp.ErrorCode = codeOrUnknownTopic(err)
				continue
			}
			// The high watermark only grows, so a check against a stale
			// read is still safe. Followers move their log start when
			// their next fetch tells them the leader's.
			hw := p.rep.HighWatermark()
			offset := rp.Offset
			if offset == -1 {
				offset = hw
			}
			switch {
			case offset < 0 || offset > hw:
				sp.ErrorCode = tributary.ErrOffsetOutOfRange.Code
			case offset > p.log.LogStartOffset():
				if err := p.log.DeleteRecordsBefore(offset); err != nil {
					sp.ErrorCode = tributary.CodeOf(err)
					if sp.ErrorCode == tributary.ErrUnknownServerError.Code {
						sp.ErrorCode = tributary.ErrKafkaStorageError.Code
						b.logger.Error("delete records failed", "topic", rt.Topic, "partition", rp.Partition, "err", err)
					}
				}
			}
			sp.LowWatermark = p.log.LogStartOffset()
			b.notifyPartition(p)
		}
	}
	return resp, nil
}
