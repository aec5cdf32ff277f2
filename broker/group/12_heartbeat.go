package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// Heartbeat (key 12), versions 0-4.
//
// A heartbeat keeps a member's session alive for another session timeout.
// While the group prepares a rebalance it answers REBALANCE_IN_PROGRESS,
// which is how members learn that they must rejoin. A heartbeat for an
// older generation gets ILLEGAL_GENERATION, from an unknown member
// UNKNOWN_MEMBER_ID, from a replaced static incarnation FENCED_INSTANCE_ID.
func (c *Coordinator) Heartbeat(now time.Time, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	ms := nowMs(now)
	c.observe(ms)
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	g := c.groups[req.Group]
	if g == nil {
		resp.ErrorCode = tributary.ErrUnknownMemberId.Code
		return resp
	}
	if err := g.validateMember(req.MemberID, req.InstanceID); err != nil {
		resp.ErrorCode = err.Code
		return resp
	}
	if req.Generation != g.generation {
		resp.ErrorCode = tributary.ErrIllegalGeneration.Code
		return resp
	}
	m := g.members[req.MemberID]
	switch g.state {
	case statePreparingRebalance:
		m.deadline = ms + int64(m.sessionTimeoutMs)
		resp.ErrorCode = tributary.ErrRebalanceInProgress.Code
	case stateCompletingRebalance, stateStable:
		m.deadline = ms + int64(m.sessionTimeoutMs)
	default:
		resp.ErrorCode = tributary.ErrUnknownMemberId.Code
	}
	// Deadlines only moved later; the queued timer fires early, finds
	// nothing due and requeues, so no reschedule is needed here.
	return resp
}
