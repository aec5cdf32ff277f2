package broker

// ListOffsets: v0–8.
//
// Timestamps, per partition: -1 latest (the high watermark; the last
// stable offset under read_committed, equal to it without transactions),
// -2 earliest (log start), -3 the record with the largest timestamp (v7+,
// KIP-734), -4 earliest local (v8+, KIP-405; ≡ -2 without tiered
// storage). A timestamp T ≥ 0 finds the first offset whose timestamp is
// ≥ T below the high watermark; none gives offset -1 and timestamp -1. A
// special value below the version that introduced it, or any other
// negative timestamp, is UNSUPPORTED_VERSION for that partition; a
// partition named twice in one request is INVALID_REQUEST for every
// entry (v1+). v4+ checks CurrentLeaderEpoch like Fetch and returns the
// partition's leader epoch with each answer.
//
// v0 (MaxNumOffsets, OldStyleOffsets) answers with at most one offset:
// the one the same timestamp gives in v1+.
//
// Version notes: v1 single offset + timestamp; v2 IsolationLevel; v4
// leader epochs; v6 flexible; v7 -3; v8 -4.

import (
	"github.com/tributary/tributary"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(2, 0, 8, handleListOffsets) }

// listOffsetsMinVersion is the first request version each special
// timestamp may be sent with.
var listOffsetsMinVersion = map[int64]int16{-1: 0, -2: 0, -3: 7, -4: 8}

func handleListOffsets(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.ListOffsetsRequest)
	resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)

	type tp struct {
		t string
		p int32
	}
	seen := make(map[tp]int)
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			seen[tp{rt.Topic, rp.Partition}]++
		}
	}

	resp.Topics = make([]kmsg.ListOffsetsResponseTopic, len(r.Topics))
	for i := range r.Topics {
		rt := &r.Topics[i]
		st := &resp.Topics[i]
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ListOffsetsResponseTopicPartition, len(rt.Partitions))
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := &st.Partitions[j]
			sp.Default()
			sp.Partition = rp.Partition
			if r.Version >= 1 && seen[tp{rt.Topic, rp.Partition}] > 1 {
				sp.ErrorCode = tributary.ErrInvalidRequest.Code
				continue
			}
			if minV, ok := listOffsetsMinVersion[rp.Timestamp]; rp.Timestamp < 0 && (!ok || r.Version < minV) {
				sp.ErrorCode = tributary.ErrUnsupportedVersion.Code
				continue
			}
			p, err := b.leaderPartition(rt.Topic, rp.Partition)
			if err == nil && r.Version >= 4 {
				err = p.rep.ValidateLeaderEpoch(rp.CurrentLeaderEpoch)
			}
			if err != nil {
				sp.ErrorCode = codeOrUnknownTopic(err)
				continue
			}
			offset, ts, code := listOffset(b, p, rp.Timestamp, r.IsolationLevel == 1)
			sp.ErrorCode = code
			if code != 0 {
				continue
			}
			if r.Version == 0 {
				if offset >= 0 && rp.MaxNumOffsets > 0 {
					sp.OldStyleOffsets = []int64{offset}
				}
				continue
			}
			sp.Offset, sp.Timestamp = offset, ts
			if offset >= 0 && r.Version >= 4 {
				sp.LeaderEpoch = p.leaderEpoch()
			}
		}
	}
	return resp, nil
}

// listOffset answers one partition. Under read_committed everything is
// bounded by the last stable offset instead of the high watermark, as in
// Kafka: latest is the LSO, and a lookup never lands in an open
// transaction.
func listOffset(b *Broker, p *partition, ts int64, readCommitted bool) (offset, timestamp int64, code int16) {
	hw := p.rep.HighWatermark()
	if readCommitted {
		hw = min(hw, p.log.LastStableOffset())
	}
	var (
		ok  bool
		err error
	)
	switch ts {
	case -1:
		return hw, -1, 0
	case -2, -4:
		return p.log.LogStartOffset(), -1, 0
	case -3:
		offset, timestamp, ok, err = p.log.MaxTimestamp(hw)
	default:
		offset, timestamp, ok, err = p.log.OffsetForTimestamp(ts, hw)
	}
	if err != nil {
		code = tributary.CodeOf(err)
		if code == tributary.ErrUnknownServerError.Code {
			b.logger.Error("list offsets lookup failed", "topic", p.topic.name, "partition", p.index, "err", err)
		}
		return -1, -1, code
	}
	if !ok || offset >= hw {
		return -1, -1, 0
	}
	return offset, timestamp, 0
}
