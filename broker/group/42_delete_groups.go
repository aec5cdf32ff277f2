package group

import (
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// DeleteGroups (key 42), versions 0-2.
//
// Deletes groups that have no members, with all their offsets: a tombstone
// for every offset (pending transactional ones included: Kafka deletes a
// group with open transactions) and one for the group metadata. A group with members
// answers NON_EMPTY_GROUP, an unknown one GROUP_ID_NOT_FOUND.
func (c *Coordinator) DeleteGroups(now time.Time, req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	c.observe(nowMs(now))
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, id := range req.Groups {
		dg := kmsg.NewDeleteGroupsResponseGroup()
		dg.Group = id
		g := c.groups[id]
		switch {
		case id == "":
			dg.ErrorCode = tributary.ErrInvalidGroupId.Code
		case g == nil:
			dg.ErrorCode = tributary.ErrGroupIdNotFound.Code
		case g.state != stateEmpty:
			dg.ErrorCode = tributary.ErrNonEmptyGroup.Code
		default:
			c.deleteGroup(g)
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

// deleteGroup writes tombstones for an empty group's offsets and metadata
// and forgets it. Partitions that only an open transaction has an offset
// for get a tombstone too, as in Kafka: it removes the pending offset, so
// the transaction's marker finds nothing to apply.
func (c *Coordinator) deleteGroup(g *group) {
	for _, tp := range g.offsetPartitions() {
		g.deleteOffset(tp.topic, tp.partition)
	}
	g.storeGroupTombstone()
	g.transition(stateDead, g.stateSince)
	delete(c.groups, g.id)
}

type topicPartition struct {
	topic     string
	partition int32
}

// offsetPartitions lists, sorted, the partitions the group has a committed
// or a pending transactional offset for.
func (g *group) offsetPartitions() []topicPartition {
	seen := make(map[topicPartition]bool)
	add := func(m map[string]map[int32]*offset) {
		for t, ps := range m {
			for p := range ps {
				seen[topicPartition{t, p}] = true
			}
		}
	}
	add(g.offsets)
	for _, t := range g.txns {
		add(t.offsets)
	}
	tps := make([]topicPartition, 0, len(seen))
	for tp := range seen {
		tps = append(tps, tp)
	}
	sort.Slice(tps, func(i, j int) bool {
		if tps[i].topic != tps[j].topic {
			return tps[i].topic < tps[j].topic
		}
		return tps[i].partition < tps[j].partition
	})
	return tps
}
