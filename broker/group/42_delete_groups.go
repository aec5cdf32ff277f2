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
// for every offset and one for the group metadata. A group with members
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
// and forgets it.
func (c *Coordinator) deleteGroup(g *group) {
	topics := make([]string, 0, len(g.offsets))
	for t := range g.offsets {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		parts := make([]int32, 0, len(g.offsets[t]))
		for p := range g.offsets[t] {
			parts = append(parts, p)
		}
		sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
		for _, p := range parts {
			g.deleteOffset(t, p)
		}
	}
	g.storeGroupTombstone()
	g.transition(stateDead, g.stateSince)
	delete(c.groups, g.id)
}
