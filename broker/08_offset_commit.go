package broker

// OffsetCommit: v0-9 (v10 names topics by id: not until topic ids are
// used everywhere), served by the group state machine.
//
// As in Kafka, a partition of a topic that does not exist (or a partition
// number the topic does not have) is answered UNKNOWN_TOPIC_OR_PARTITION
// here and never reaches the coordinator; the rest is committed, and
// acknowledged only once the commit is in __consumer_offsets. The response
// mirrors the request's topics and partitions in order: kgo gives up on a
// response that does not.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/group"
)

func init() { register(8, 0, 9, handleOffsetCommit) }

func handleOffsetCommit(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.OffsetCommitRequest)

	// known[i][j]: the request's partition exists here.
	sub := *r
	sub.Topics = nil
	known := make([][]bool, len(r.Topics))
	for i, t := range r.Topics {
		known[i] = make([]bool, len(t.Partitions))
		var st *kmsg.OffsetCommitRequestTopic
		for j, p := range t.Partitions {
			if _, err := b.lookupPartition(t.Topic, p.Partition); err != nil {
				continue
			}
			known[i][j] = true
			if st == nil {
				sub.Topics = append(sub.Topics, kmsg.OffsetCommitRequestTopic{Topic: t.Topic, TopicID: t.TopicID, UnknownTags: t.UnknownTags})
				st = &sub.Topics[len(sub.Topics)-1]
			}
			st.Partitions = append(st.Partitions, p)
		}
	}

	// merge builds the response in request order from the coordinator's
	// answer for the known partitions (in the same order) or one error
	// for all of them.
	merge := func(committed *kmsg.OffsetCommitResponse, err *tributary.Error) *kmsg.OffsetCommitResponse {
		resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
		var next []kmsg.OffsetCommitResponseTopicPartition
		if committed != nil {
			for _, t := range committed.Topics {
				next = append(next, t.Partitions...)
			}
		}
		for i, t := range r.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for j, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition = p.Partition
				switch {
				case !known[i][j]:
					rp.ErrorCode = tributary.ErrUnknownTopicOrPartition.Code
				case err != nil:
					rp.ErrorCode = err.Code
				case len(next) > 0:
					rp.ErrorCode = next[0].ErrorCode
					next = next[1:]
				default:
					// The coordinator answered fewer partitions than
					// asked: never ack what was not stored.
					rp.ErrorCode = tributary.ErrUnknownServerError.Code
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	if len(sub.Topics) == 0 && len(r.Topics) > 0 {
		return merge(nil, nil), nil // nothing to commit
	}
	fail := func(err *tributary.Error) kmsg.Response { return merge(nil, err) }
	return b.groupRequest(req, r.Group, fail, func(c *group.Coordinator, now time.Time, _ group.Ref) kmsg.Response {
		return merge(c.OffsetCommit(now, &sub), nil)
	})
}
