package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// OffsetDelete (key 47), version 0 (KIP-496).
//
// Deletes committed offsets of a group. The group must exist
// (GROUP_ID_NOT_FOUND). A group with members may only lose offsets of
// topics no member consumes: for a "consumer" group, partitions of a
// subscribed topic answer GROUP_SUBSCRIBED_TO_TOPIC; any other active group
// answers NON_EMPTY_GROUP. Partitions without a commit succeed. A partition
// with a pending transactional offset gets a tombstone too, which drops
// that offset from its transaction, as in Kafka.
func (c *Coordinator) OffsetDelete(now time.Time, req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	c.observe(nowMs(now))
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	g := c.groups[req.Group]
	if g == nil {
		resp.ErrorCode = tributary.ErrGroupIdNotFound.Code
		return resp
	}
	if g.state != stateEmpty && g.protocolType != "consumer" {
		resp.ErrorCode = tributary.ErrNonEmptyGroup.Code
		return resp
	}
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		subscribed := g.isSubscribed(t.Topic)
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			if subscribed {
				rp.ErrorCode = tributary.ErrGroupSubscribedToTopic.Code
			} else {
				g.deleteOffset(t.Topic, p.Partition)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
