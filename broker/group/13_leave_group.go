package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// LeaveGroup (key 13), versions 0-5.
//
// v0-v2 remove one member by id. v3+ (KIP-345) remove a batch, each by
// member id or by group.instance.id (admin tools remove static members by
// instance id alone), with an error per member: UNKNOWN_MEMBER_ID, or
// FENCED_INSTANCE_ID when the instance id belongs to another member id.
// Removing members rebalances a stable group and may complete a rebalance
// that was only waiting for them.
func (c *Coordinator) LeaveGroup(now time.Time, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	ms := nowMs(now)
	c.observe(ms)
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)

	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	g := c.groups[req.Group]

	var valid []*member
	var pending []string
	for _, lm := range leaving {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID = lm.MemberID
		rm.InstanceID = lm.InstanceID
		switch {
		case g == nil:
			rm.ErrorCode = tributary.ErrUnknownMemberId.Code
		case lm.InstanceID == nil && g.pending[lm.MemberID] != 0:
			pending = append(pending, lm.MemberID)
		case lm.InstanceID != nil:
			cur, ok := g.static[*lm.InstanceID]
			switch {
			case !ok:
				rm.ErrorCode = tributary.ErrUnknownMemberId.Code
			case lm.MemberID != "" && lm.MemberID != cur:
				rm.ErrorCode = tributary.ErrFencedInstanceId.Code
			default:
				valid = append(valid, g.members[cur])
			}
		case g.members[lm.MemberID] == nil:
			rm.ErrorCode = tributary.ErrUnknownMemberId.Code
		default:
			valid = append(valid, g.members[lm.MemberID])
		}
		resp.Members = append(resp.Members, rm)
	}
	if req.Version < 3 {
		resp.ErrorCode = resp.Members[0].ErrorCode
		resp.Members = nil
	}
	if g == nil {
		return resp
	}

	for _, id := range pending {
		delete(g.pending, id)
	}
	removed := false
	for _, m := range valid {
		if g.members[m.id] != m {
			continue // named twice in one request
		}
		g.failParked(m, tributary.ErrUnknownMemberId)
		g.remove(m.id)
		removed = true
	}
	switch {
	case removed:
		g.maybePrepareRebalanceOrCompleteJoin(ms)
	case len(pending) > 0:
		g.maybeCompleteJoin(ms)
	}
	c.reschedule(g)
	return resp
}
