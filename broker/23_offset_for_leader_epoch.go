package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/replica"
)

// OffsetForLeaderEpoch: v0-4 (KIP-101, KIP-279, KIP-320)
//
// For each partition, the largest leader epoch the leader has that is at
// most the requested one, and the offset where it ends (the start of the
// next epoch, or the log end for the current one); -1/-1 (UNDEFINED) for
// an epoch below every epoch in the log. A follower calls it when it
// starts following, to truncate a tail that diverged from the leader's
// log; a consumer (KIP-320, kgo does) after a leader change, to detect log
// truncation. Only the leader answers (NOT_LEADER_OR_FOLLOWER elsewhere);
// v2+ CurrentLeaderEpoch is checked as Fetch checks it
// (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH). v3 adds ReplicaID, v4 is
// flexible.

func init() { register(23, 0, 4, handleOffsetForLeaderEpoch) }

func handleOffsetForLeaderEpoch(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.OffsetForLeaderEpochRequest)
	resp := r.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range r.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			current := rp.CurrentLeaderEpoch
			if r.Version < 2 {
				current = -1
			}
			p, err := b.leaderPartition(rt.Topic, rp.Partition)
			if err == nil {
				var eo replica.EpochEndOffset
				eo, err = p.rep.EndOffsetForEpoch(current, rp.LeaderEpoch)
				if err == nil {
					sp.LeaderEpoch, sp.EndOffset = eo.Epoch, eo.EndOffset
				}
			}
			if err != nil {
				sp.ErrorCode = codeOrUnknownTopic(err)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	_ = tributary.ErrNotLeaderOrFollower
	return resp, nil
}
