package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// DescribeGroups (key 15), versions 0-6.
//
// Members are listed with client id and host; their metadata and
// assignment only while the group is Stable (and the protocol is named only
// then), as Kafka does. An unknown group is described as Dead, with
// GROUP_ID_NOT_FOUND from v6 on (KIP-1043) and no error before.
// Authorized operations are the caller's to fill in.
func (c *Coordinator) DescribeGroups(now time.Time, req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	c.observe(nowMs(now))
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range req.Groups {
		dg := kmsg.NewDescribeGroupsResponseGroup()
		dg.Group = id
		g := c.groups[id]
		if g == nil {
			dg.State = stateDead.String()
			if req.Version >= 6 {
				dg.ErrorCode = tributary.ErrGroupIdNotFound.Code
				dg.ErrorMessage = kmsg.StringPtr("group " + id + " not found")
			}
			resp.Groups = append(resp.Groups, dg)
			continue
		}
		dg.State = g.state.String()
		dg.ProtocolType = g.protocolType
		stable := g.state == stateStable
		if stable {
			dg.Protocol = g.protocol
		}
		for _, m := range g.ordered() {
			dm := kmsg.NewDescribeGroupsResponseGroupMember()
			dm.MemberID = m.id
			dm.InstanceID = m.instanceID
			dm.ClientID = m.clientID
			dm.ClientHost = m.clientHost
			dm.ProtocolMetadata = []byte{}
			dm.MemberAssignment = []byte{}
			if stable {
				dm.ProtocolMetadata = orEmpty(m.metadata(g.protocol))
				dm.MemberAssignment = orEmpty(m.assignment)
			}
			dg.Members = append(dg.Members, dm)
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}
