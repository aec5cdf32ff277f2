package group

import (
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// OffsetFetch (key 9), versions 1-9 by topic name; v8+ may ask for several
// groups. Topics nil (v2+) asks for every offset the group has committed.
// A partition without a commit, or a group that does not exist, answers
// offset -1, leader epoch -1 and empty metadata, without an error, as
// Kafka does.
//
// Offsets of open transactions (TxnOffsetCommit) are invisible until their
// commit marker. With RequireStable (v7+) a partition that has one answers
// UNSTABLE_OFFSET_COMMIT (offset -1), so the client retries until the
// transaction ends; the error is the partition's in every version, as
// Kafka's coordinator sets it, never the group's. Asking for every offset
// (Topics nil) lists committed partitions only, as Kafka does.
func (c *Coordinator) OffsetFetch(now time.Time, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	c.observe(nowMs(now))
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	stable := req.RequireStable && req.Version >= 7
	if req.Version < 8 {
		var topics []kmsg.OffsetFetchRequestGroupTopic
		if req.Topics != nil {
			topics = make([]kmsg.OffsetFetchRequestGroupTopic, 0, len(req.Topics))
			for _, t := range req.Topics {
				topics = append(topics, kmsg.OffsetFetchRequestGroupTopic{Topic: t.Topic, Partitions: t.Partitions})
			}
		}
		for _, t := range c.fetchOffsets(req.Group, topics, stable) {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata
				rp.ErrorCode = p.ErrorCode
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	for _, rg := range req.Groups {
		sg := kmsg.NewOffsetFetchResponseGroup()
		sg.Group = rg.Group
		sg.Topics = c.fetchOffsets(rg.Group, rg.Topics, stable)
		resp.Groups = append(resp.Groups, sg)
	}
	return resp
}

func (c *Coordinator) fetchOffsets(groupID string, topics []kmsg.OffsetFetchRequestGroupTopic, stable bool) []kmsg.OffsetFetchResponseGroupTopic {
	g := c.groups[groupID]
	lookup := func(topic string, partition int32) kmsg.OffsetFetchResponseGroupTopicPartition {
		rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		rp.Partition = partition
		rp.Offset = -1
		rp.LeaderEpoch = -1
		rp.Metadata = kmsg.StringPtr("")
		if g != nil {
			if stable && g.hasPendingTxn(topic, partition) {
				rp.ErrorCode = tributary.ErrUnstableOffsetCommit.Code
			} else if o := g.offsets[topic][partition]; o != nil {
				rp.Offset, rp.LeaderEpoch, rp.Metadata = o.offset, o.leaderEpoch, kmsg.StringPtr(o.metadata)
			}
		}
		return rp
	}

	var out []kmsg.OffsetFetchResponseGroupTopic
	if topics == nil { // everything committed, in a stable order
		if g == nil {
			return nil
		}
		names := make([]string, 0, len(g.offsets))
		for t := range g.offsets {
			names = append(names, t)
		}
		sort.Strings(names)
		for _, t := range names {
			rt := kmsg.NewOffsetFetchResponseGroupTopic()
			rt.Topic = t
			parts := make([]int32, 0, len(g.offsets[t]))
			for p := range g.offsets[t] {
				parts = append(parts, p)
			}
			sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
			for _, p := range parts {
				rt.Partitions = append(rt.Partitions, lookup(t, p))
			}
			out = append(out, rt)
		}
		return out
	}
	for _, t := range topics {
		rt := kmsg.NewOffsetFetchResponseGroupTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		for _, p := range t.Partitions {
			rt.Partitions = append(rt.Partitions, lookup(t.Topic, p))
		}
		out = append(out, rt)
	}
	return out
}
