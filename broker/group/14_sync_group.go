package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// SyncGroup (key 14), versions 0-5.
//
// After the join phase every member sends SyncGroup; the leader's carries
// the assignment it computed for everyone. Followers that sync first park
// until the leader's arrives; then the group's metadata with the
// assignments is recorded, every parked member gets its assignment and the
// group is Stable. A sync in a group that is rebalancing again gets
// REBALANCE_IN_PROGRESS (rejoin); one for another generation gets
// ILLEGAL_GENERATION; v5 adds the protocol type and name, which must match
// the group's (INCONSISTENT_GROUP_PROTOCOL).
//
// SyncGroup returns the response when it is known now and nil when it is
// parked; a parked response is delivered through Drain under ref.
func (c *Coordinator) SyncGroup(now time.Time, ref Ref, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	ms := nowMs(now)
	c.observe(ms)
	fail := func(err *tributary.Error) *kmsg.SyncGroupResponse { return syncError(req.Version, err) }

	g := c.groups[req.Group]
	if g == nil {
		return fail(tributary.ErrUnknownMemberId)
	}
	defer c.reschedule(g)
	if err := g.validateMember(req.MemberID, req.InstanceID); err != nil {
		return fail(err)
	}
	if req.Generation != g.generation {
		return fail(tributary.ErrIllegalGeneration)
	}
	if req.ProtocolType != nil && *req.ProtocolType != g.protocolType {
		return fail(tributary.ErrInconsistentGroupProtocol)
	}
	if req.Protocol != nil && *req.Protocol != g.protocol {
		return fail(tributary.ErrInconsistentGroupProtocol)
	}

	m := g.members[req.MemberID]
	switch g.state {
	case statePreparingRebalance:
		return fail(tributary.ErrRebalanceInProgress)

	case stateCompletingRebalance:
		if m.sync != nil {
			// A retry from a new connection: the old one is gone.
			g.c.reply(m.sync.ref, syncError(m.sync.version, tributary.ErrRebalanceInProgress))
		}
		m.sync = &parked{ref: ref, version: req.Version}
		m.deadline = ms + int64(m.sessionTimeoutMs)
		delete(g.pendingSync, m.id)
		if len(g.pendingSync) == 0 {
			g.syncDeadline = 0
		}
		if m.id == g.leader {
			g.completeSync(ms, req.GroupAssignment)
		}
		return nil

	case stateStable:
		// The group completed without this member's sync (the leader was
		// faster): hand out what the leader assigned.
		m.deadline = ms + int64(m.sessionTimeoutMs)
		delete(g.pendingSync, m.id)
		if len(g.pendingSync) == 0 {
			g.syncDeadline = 0
		}
		return g.syncResponse(m, req.Version)

	default:
		return fail(tributary.ErrUnknownMemberId)
	}
}

// completeSync applies the leader's assignment: record it, deliver it to
// every parked member and make the group Stable. Members the leader left
// out get an empty assignment.
func (g *group) completeSync(now int64, assignments []kmsg.SyncGroupRequestGroupAssignment) {
	byID := make(map[string][]byte, len(assignments))
	for _, a := range assignments {
		byID[a.MemberID] = a.MemberAssignment
	}
	for _, m := range g.ordered() {
		m.assignment = orEmpty(byID[m.id])
	}
	g.storeGroup(now)
	for _, m := range g.ordered() {
		if m.sync != nil {
			g.c.reply(m.sync.ref, g.syncResponse(m, m.sync.version))
			m.sync = nil
		}
	}
	g.transition(stateStable, now)
}

func (g *group) syncResponse(m *member, version int16) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.Version = version
	resp.ProtocolType = kmsg.StringPtr(g.protocolType)
	resp.Protocol = kmsg.StringPtr(g.protocol)
	resp.MemberAssignment = orEmpty(m.assignment)
	return resp
}
