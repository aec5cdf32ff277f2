package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// JoinGroup (key 11), versions 0-9.
//
// A member joins with its protocol type and the protocols (assignors) it
// supports, each with metadata. The first join of a dynamic member on v4+
// carries no member id: it is answered MEMBER_ID_REQUIRED with a generated
// id, and the member counts as pending until it joins again with that id
// (KIP-394), so the group does not start rebalancing for clients that never
// come back. Static members (v5+, group.instance.id, KIP-345) join at once;
// a static member that restarts and rejoins with no member id takes over
// its instance's place under a new member id, without a rebalance when the
// group is stable and the selected protocol would not change, and the old
// id is fenced (FENCED_INSTANCE_ID).
//
// Joins park until the join phase ends: when every known member has
// rejoined, or the longest rebalance timeout among the members expires
// (members that did not rejoin are then removed), or, for an empty group,
// after group.initial.rebalance.delay.ms, extended while new members keep
// arriving up to the rebalance timeout. The generation then advances and
// every joined member is answered; the leader's answer lists all members
// with their metadata for the selected protocol. v9 adds SkipAssignment
// (KIP-814), set for a static leader that rejoined without a rebalance.
//
// JoinGroup returns the response when it is known now and nil when it is
// parked; a parked response is delivered through Drain under ref.
func (c *Coordinator) JoinGroup(now time.Time, ref Ref, client Client, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	ms := nowMs(now)
	c.observe(ms)
	fail := func(err *tributary.Error) *kmsg.JoinGroupResponse {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode = err.Code
		resp.MemberID = req.MemberID
		return resp
	}
	if req.Group == "" {
		return fail(tributary.ErrInvalidGroupId)
	}
	if st := int64(req.SessionTimeoutMillis); st < c.cfg.MinSessionTimeout.Milliseconds() || st > c.cfg.MaxSessionTimeout.Milliseconds() {
		return fail(tributary.ErrInvalidSessionTimeout)
	}
	// A join with a member id for a group we do not know cannot be a
	// member's rejoin; a join without one creates the group.
	g, created := c.getOrCreate(req.Group, req.MemberID == "")
	if g == nil {
		return fail(tributary.ErrUnknownMemberId)
	}
	defer func() {
		if created {
			c.dropIfUnused(g)
		}
		if c.groups[g.id] == g {
			c.reschedule(g)
		}
	}()

	if !g.acceptJoiningMember(req.MemberID, req.InstanceID) {
		if m := g.members[req.MemberID]; m != nil {
			g.removeMemberAndUpdate(m, ms)
		}
		return fail(tributary.ErrGroupMaxSizeReached)
	}
	if !g.supportsProtocols(req.ProtocolType, req.Protocols) {
		return fail(tributary.ErrInconsistentGroupProtocol)
	}
	if req.MemberID == "" {
		return g.joinNew(ms, ref, client, req)
	}
	return g.joinExisting(ms, ref, client, req, fail)
}

// rebalanceTimeout of a join: v0 has no such field and uses the session
// timeout, as Kafka does.
func rebalanceTimeout(req *kmsg.JoinGroupRequest) int32 {
	if req.Version == 0 || req.RebalanceTimeoutMillis < 0 {
		return req.SessionTimeoutMillis
	}
	return req.RebalanceTimeoutMillis
}

func (g *group) newMemberID(client Client, instanceID *string) string {
	prefix := client.ID
	if instanceID != nil {
		prefix = *instanceID
	}
	return prefix + "-" + g.c.cfg.NewUUID()
}

func (g *group) joinNew(now int64, ref Ref, client Client, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	id := g.newMemberID(client, req.InstanceID)
	if req.InstanceID != nil {
		if old, ok := g.static[*req.InstanceID]; ok && g.members[old] != nil {
			return g.replaceStatic(now, ref, client, req, old, id)
		}
	} else if req.Version >= 4 {
		// KIP-394: hand out the id first; the member is pending until it
		// joins with it, within its session timeout.
		g.pending[id] = now + int64(req.SessionTimeoutMillis)
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode = tributary.ErrMemberIdRequired.Code
		resp.MemberID = id
		return resp
	}
	g.addMemberAndRebalance(now, ref, client, req, id)
	return nil
}

func (g *group) joinExisting(now int64, ref Ref, client Client, req *kmsg.JoinGroupRequest, fail func(*tributary.Error) *kmsg.JoinGroupResponse) *kmsg.JoinGroupResponse {
	if _, ok := g.pending[req.MemberID]; ok {
		if req.InstanceID != nil {
			// Pending ids are only handed to dynamic members.
			return fail(tributary.ErrUnknownMemberId)
		}
		g.addMemberAndRebalance(now, ref, client, req, req.MemberID)
		return nil
	}
	if err := g.validateMember(req.MemberID, req.InstanceID); err != nil {
		return fail(err)
	}
	m := g.members[req.MemberID]
	switch g.state {
	case statePreparingRebalance:
		g.updateMemberAndRebalance(now, ref, m, req)
		return nil
	case stateCompletingRebalance:
		if m.matches(req.Protocols) {
			// A duplicate join (the client lost our answer): answer
			// again with the current generation.
			return g.joinResponse(m, req.Version)
		}
		g.updateMemberAndRebalance(now, ref, m, req)
		return nil
	case stateStable:
		if m.id == g.leader || !m.matches(req.Protocols) {
			// The leader rejoins to make the group reassign (for example
			// when it sees new topics); changed metadata needs a new
			// assignment too.
			g.updateMemberAndRebalance(now, ref, m, req)
			return nil
		}
		return g.joinResponse(m, req.Version)
	default:
		return fail(tributary.ErrUnknownMemberId)
	}
}

func (g *group) addMemberAndRebalance(now int64, ref Ref, client Client, req *kmsg.JoinGroupRequest, id string) {
	m := &member{
		id:                 id,
		instanceID:         req.InstanceID,
		clientID:           client.ID,
		clientHost:         client.Host,
		rebalanceTimeoutMs: rebalanceTimeout(req),
		sessionTimeoutMs:   req.SessionTimeoutMillis,
		protocolType:       req.ProtocolType,
		protocols:          req.Protocols,
		join:               &parked{ref: ref, version: req.Version},
		isNew:              true,
		deadline:           now + newMemberJoinTimeout.Milliseconds(),
	}
	g.add(m)
	if g.state == statePreparingRebalance && g.initialDelay {
		g.newMemberAdded = true
	}
	g.maybePrepareRebalanceOrCompleteJoin(now)
}

func (g *group) updateMemberAndRebalance(now int64, ref Ref, m *member, req *kmsg.JoinGroupRequest) {
	g.updateMember(m, req)
	if m.join != nil {
		// A client has one join in flight; an older one is from a
		// connection it gave up on. Answer it rather than leak it.
		resp := kmsg.NewPtrJoinGroupResponse()
		resp.Version = m.join.version
		resp.ErrorCode = tributary.ErrRebalanceInProgress.Code
		resp.MemberID = m.id
		g.c.reply(m.join.ref, resp)
	}
	m.join = &parked{ref: ref, version: req.Version}
	g.maybePrepareRebalanceOrCompleteJoin(now)
}

func (g *group) updateMember(m *member, req *kmsg.JoinGroupRequest) {
	g.setProtocols(m, req.Protocols)
	m.rebalanceTimeoutMs = rebalanceTimeout(req)
	m.sessionTimeoutMs = req.SessionTimeoutMillis
}

// replaceStatic gives a restarted static member its instance's place under
// a new member id (KIP-345).
func (g *group) replaceStatic(now int64, ref Ref, client Client, req *kmsg.JoinGroupRequest, oldID, newID string) *kmsg.JoinGroupResponse {
	m := g.members[oldID]
	// Whatever the old incarnation still waits for, it has been replaced.
	if m.join != nil {
		resp := kmsg.NewPtrJoinGroupResponse()
		resp.Version = m.join.version
		resp.ErrorCode = tributary.ErrFencedInstanceId.Code
		resp.MemberID = oldID
		g.c.reply(m.join.ref, resp)
		m.join = nil
	}
	if m.sync != nil {
		g.c.reply(m.sync.ref, syncError(m.sync.version, tributary.ErrFencedInstanceId))
		m.sync = nil
	}

	delete(g.members, oldID)
	delete(g.pendingSync, oldID)
	m.id = newID
	m.clientID, m.clientHost = client.ID, client.Host
	g.members[newID] = m
	for i, id := range g.order {
		if id == oldID {
			g.order[i] = newID
		}
	}
	g.static[*req.InstanceID] = newID
	if g.leader == oldID {
		g.leader = newID
	}
	g.updateMember(m, req)
	m.deadline = now + int64(m.sessionTimeoutMs)

	switch g.state {
	case stateStable:
		if g.selectProtocol() == g.protocol {
			// Nothing the assignment depends on changed: keep the
			// generation and the member's partitions, and persist the new
			// member id so the old one stays fenced after a restart.
			g.storeGroup(now)
			resp := g.joinResponse(m, req.Version)
			resp.SkipAssignment = m.id == g.leader
			return resp
		}
		m.join = &parked{ref: ref, version: req.Version}
		g.prepareRebalance(now)
	case stateCompletingRebalance:
		// The leader may be assigning to the old id right now; only a new
		// rebalance gives the new id an assignment.
		m.join = &parked{ref: ref, version: req.Version}
		g.prepareRebalance(now)
	default:
		m.join = &parked{ref: ref, version: req.Version}
		g.maybeCompleteJoin(now)
	}
	return nil
}
