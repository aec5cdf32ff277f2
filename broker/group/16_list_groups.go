package group

import (
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups (key 16), versions 0-5: every group, sorted by id. v4 filters
// by state (case-insensitive, as Kafka compares them), v5 by group type;
// every group here is "classic", so a type filter without "classic"
// matches nothing.
func (c *Coordinator) ListGroups(now time.Time, req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	c.observe(nowMs(now))
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	matches := func(filter []string, v string) bool {
		if len(filter) == 0 {
			return true
		}
		for _, f := range filter {
			if strings.EqualFold(f, v) {
				return true
			}
		}
		return false
	}
	for _, id := range c.sortedGroupIDs() {
		g := c.groups[id]
		if !matches(req.StatesFilter, g.state.String()) || !matches(req.TypesFilter, "classic") {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group = id
		lg.ProtocolType = g.protocolType
		lg.GroupState = g.state.String()
		lg.GroupType = "classic"
		resp.Groups = append(resp.Groups, lg)
	}
	return resp
}
