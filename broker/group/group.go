package group

import (
	"bytes"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// state is a classic group's state, as Kafka names it in DescribeGroups
// and ListGroups.
//
//	Empty ──join──▶ PreparingRebalance ──all joined / timeout──▶ CompletingRebalance
//	  ▲                 ▲       │ (no members left)                  │ leader's SyncGroup
//	  └─────────────────┼───────┘                                    ▼
//	                    └──────── join, leave, expiry ────────────  Stable
//
// Dead is the state of a deleted group; such a group is removed from the
// coordinator at once, so Dead only shows in responses about unknown groups.
type state int8

const (
	stateEmpty state = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	stateDead
)

func (s state) String() string {
	switch s {
	case stateEmpty:
		return "Empty"
	case statePreparingRebalance:
		return "PreparingRebalance"
	case stateCompletingRebalance:
		return "CompletingRebalance"
	case stateStable:
		return "Stable"
	default:
		return "Dead"
	}
}

// parked is a request whose response waits for the group.
type parked struct {
	ref     Ref
	version int16
}

type member struct {
	id                 string
	instanceID         *string // static membership (KIP-345)
	clientID           string
	clientHost         string
	rebalanceTimeoutMs int32
	sessionTimeoutMs   int32
	protocolType       string
	protocols          []kmsg.JoinGroupRequestProtocol // in the member's order of preference
	assignment         []byte

	join *parked // awaiting the end of the join phase
	sync *parked // awaiting the leader's assignment

	// isNew marks a member whose first JoinGroup is still parked: it
	// cannot heartbeat yet, so it is given newMemberJoinTimeout instead
	// of its session timeout, and being parked does not keep it alive.
	isNew bool

	deadline int64 // session expiry, ms since the epoch
}

func (m *member) metadata(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// matches reports whether a rejoin carries exactly the protocols (names,
// order and metadata) the member already has; such a rejoin of a follower
// needs no rebalance.
func (m *member) matches(protocols []kmsg.JoinGroupRequestProtocol) bool {
	if len(protocols) != len(m.protocols) {
		return false
	}
	for i, p := range protocols {
		if p.Name != m.protocols[i].Name || !bytes.Equal(p.Metadata, m.protocols[i].Metadata) {
			return false
		}
	}
	return true
}

// vote is the member's most preferred protocol among the candidates.
func (m *member) vote(candidates map[string]bool) string {
	for _, p := range m.protocols {
		if candidates[p.Name] {
			return p.Name
		}
	}
	return ""
}

type offset struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	commitMs    int64
	expireMs    int64  // explicit expiry (OffsetCommit v2-v4 retention), -1 if none
	seq         uint64 // position of its record in the log (Coordinator.seq)
}

type group struct {
	c         *Coordinator
	id        string
	partition int32

	state      state
	stateSince int64 // when the group entered state (ms); 0 if unknown

	protocolType string // "" for groups that only store offsets
	protocol     string // selected protocol of the current generation
	generation   int32
	leader       string

	members map[string]*member
	order   []string          // member ids in join order: deterministic iteration and leader choice
	static  map[string]string // instance id → member id
	// pending holds member ids handed out with MEMBER_ID_REQUIRED that
	// have not joined yet, with the deadline to do so (KIP-394).
	pending     map[string]int64
	pendingSync map[string]bool
	supported   map[string]int // protocol name → members supporting it

	// subscribed are the topics the members consume, decoded from their
	// "consumer" protocol metadata; subscribedKnown is false when they
	// are not known (see isSubscribed).
	subscribed      map[string]bool
	subscribedKnown bool

	joinDeadline     int64 // end of the join phase, 0 if none
	initialDelay     bool  // the join phase is group.initial.rebalance.delay.ms
	initialRemaining int64 // how much longer the initial delay may grow
	newMemberAdded   bool  // a member joined during the current initial delay
	syncDeadline     int64 // when members that have not synced are removed

	offsets map[string]map[int32]*offset
	// txns are the offsets of open transactions (TxnOffsetCommit) by
	// producer id, invisible until the transaction's commit marker.
	txns map[int64]*txnOffsets

	queuedAt int64 // the deadline this group is queued for in c.timers
}

func (g *group) transition(s state, now int64) {
	g.state = s
	g.stateSince = now
}

func (g *group) ordered() []*member {
	ms := make([]*member, 0, len(g.order))
	for _, id := range g.order {
		ms = append(ms, g.members[id])
	}
	return ms
}

func (g *group) add(m *member) {
	if len(g.members) == 0 {
		g.protocolType = m.protocolType
	}
	delete(g.pending, m.id)
	g.members[m.id] = m
	g.order = append(g.order, m.id)
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	if g.leader == "" {
		g.leader = m.id
	}
	for _, p := range m.protocols {
		g.supported[p.Name]++
	}
}

// remove takes a member out of the group without any state change.
func (g *group) remove(id string) {
	m := g.members[id]
	if m == nil {
		return
	}
	for _, p := range m.protocols {
		if g.supported[p.Name]--; g.supported[p.Name] == 0 {
			delete(g.supported, p.Name)
		}
	}
	if m.instanceID != nil && g.static[*m.instanceID] == id {
		delete(g.static, *m.instanceID)
	}
	delete(g.members, id)
	delete(g.pendingSync, id)
	for i, oid := range g.order {
		if oid == id {
			g.order = append(g.order[:i], g.order[i+1:]...)
			break
		}
	}
	if g.leader == id {
		g.leader = ""
		if len(g.order) > 0 {
			g.leader = g.order[0]
		}
	}
}

// setProtocols replaces a member's protocols, keeping the support counts.
func (g *group) setProtocols(m *member, protocols []kmsg.JoinGroupRequestProtocol) {
	for _, p := range m.protocols {
		if g.supported[p.Name]--; g.supported[p.Name] == 0 {
			delete(g.supported, p.Name)
		}
	}
	m.protocols = protocols
	for _, p := range protocols {
		g.supported[p.Name]++
	}
}

// supportsProtocols is Kafka's check before accepting a join: an empty
// group takes any non-empty protocol type and list; otherwise the type
// must match and one of the protocols must be supported by every member.
func (g *group) supportsProtocols(protocolType string, protocols []kmsg.JoinGroupRequestProtocol) bool {
	if g.state == stateEmpty {
		return protocolType != "" && len(protocols) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protocols {
		if g.supported[p.Name] == len(g.members) {
			return true
		}
	}
	return false
}

// selectProtocol picks the protocol every member supports that most
// members prefer. Kafka breaks ties by hash-map order; we break them by
// the leader's preference so a scenario always picks the same one.
func (g *group) selectProtocol() string {
	candidates := make(map[string]bool)
	for name, n := range g.supported {
		if n == len(g.members) {
			candidates[name] = true
		}
	}
	votes := make(map[string]int)
	for _, m := range g.ordered() {
		if v := m.vote(candidates); v != "" {
			votes[v]++
		}
	}
	best, bestVotes := "", 0
	prefer := g.ordered()
	if l := g.members[g.leader]; l != nil {
		prefer = append([]*member{l}, prefer...)
	}
	for _, m := range prefer {
		for _, p := range m.protocols {
			if n := votes[p.Name]; n > bestVotes {
				best, bestVotes = p.Name, n
			}
		}
	}
	return best
}

func (g *group) numAwaitingJoin() int {
	n := 0
	for _, m := range g.members {
		if m.join != nil {
			n++
		}
	}
	return n
}

func (g *group) hasAllMembersJoined() bool {
	return g.numAwaitingJoin() == len(g.members) && len(g.pending) == 0
}

// rebalanceTimeoutMs is the longest rebalance timeout of the members: the
// join phase waits that long for everyone to rejoin. Kafka does not
// validate the value; it is at least 1ms here so that a timer re-armed
// with it always lies in the future and Tick cannot spin.
func (g *group) rebalanceTimeoutMs() int64 {
	var t int32 = 1
	for _, m := range g.members {
		t = max(t, m.rebalanceTimeoutMs)
	}
	return int64(t)
}

// acceptJoiningMember enforces group.max.size as Kafka does: members that
// are already in (or already rejoined) are never turned away. Unlike Kafka,
// a restarted static member (no member id, known instance id) counts as
// already in: it takes its own place and does not grow the group, so a
// full group must not lock it out.
func (g *group) acceptJoiningMember(memberID string, instanceID *string) bool {
	if memberID == "" && instanceID != nil {
		memberID = g.static[*instanceID]
	}
	m := g.members[memberID]
	switch g.state {
	case statePreparingRebalance:
		return (m != nil && m.join != nil) || g.numAwaitingJoin() < g.c.cfg.MaxSize
	case stateCompletingRebalance, stateStable:
		return m != nil || len(g.members) < g.c.cfg.MaxSize
	default:
		return true
	}
}

// validateMember checks that memberID is in the group, and for a static
// member that it is the instance's current incarnation.
func (g *group) validateMember(memberID string, instanceID *string) *tributary.Error {
	if instanceID != nil {
		cur, ok := g.static[*instanceID]
		if !ok {
			return tributary.ErrUnknownMemberId
		}
		if cur != memberID {
			return tributary.ErrFencedInstanceId
		}
		return nil
	}
	if g.members[memberID] == nil {
		return tributary.ErrUnknownMemberId
	}
	return nil
}

// maybePrepareRebalanceOrCompleteJoin starts a rebalance if none is running,
// or else checks whether the running one can finish.
func (g *group) maybePrepareRebalanceOrCompleteJoin(now int64) {
	switch g.state {
	case stateStable, stateCompletingRebalance, stateEmpty:
		g.prepareRebalance(now)
	default:
		g.maybeCompleteJoin(now)
	}
}

func (g *group) prepareRebalance(now int64) {
	if g.state == stateCompletingRebalance {
		// The assignment being synced is for a membership that no longer
		// holds: tell the members waiting for it to rejoin.
		for _, m := range g.ordered() {
			m.assignment = nil
			if m.sync != nil {
				g.c.reply(m.sync.ref, syncError(m.sync.version, tributary.ErrRebalanceInProgress))
				m.sync = nil
			}
		}
	}
	g.syncDeadline = 0
	g.pendingSync = nil

	if g.state == stateEmpty {
		// A new (or emptied) group waits a little for more members so a
		// starting fleet of consumers does not rebalance once per member.
		rt := g.rebalanceTimeoutMs()
		d := g.c.cfg.InitialRebalanceDelay.Milliseconds()
		g.initialDelay = true
		g.newMemberAdded = false
		g.initialRemaining = max(rt-d, 0)
		g.joinDeadline = now + min(d, rt)
		g.transition(statePreparingRebalance, now)
		return
	}
	g.initialDelay = false
	g.joinDeadline = now + g.rebalanceTimeoutMs()
	g.transition(statePreparingRebalance, now)
	g.maybeCompleteJoin(now)
}

// maybeCompleteJoin ends the join phase early once every member has
// rejoined, except during the initial delay, which always runs its course.
func (g *group) maybeCompleteJoin(now int64) {
	if g.state == statePreparingRebalance && !g.initialDelay && g.hasAllMembersJoined() {
		g.completeJoin(now)
	}
}

// onJoinDeadline fires when the join phase's timer expires.
func (g *group) onJoinDeadline(now int64) {
	g.joinDeadline = 0
	if g.initialDelay && g.newMemberAdded && g.initialRemaining > 0 {
		d := g.c.cfg.InitialRebalanceDelay.Milliseconds()
		g.newMemberAdded = false
		g.joinDeadline = now + min(d, g.initialRemaining)
		g.initialRemaining = max(g.initialRemaining-d, 0)
		return
	}
	g.completeJoin(now)
}

// completeJoin ends the join phase: members that did not rejoin leave,
// the generation advances and every joined member gets its JoinGroup
// response, the leader with everyone's metadata.
func (g *group) completeJoin(now int64) {
	g.joinDeadline = 0
	g.initialDelay = false
	if g.state != statePreparingRebalance {
		return
	}
	// Dynamic members that did not rejoin in time are gone. Static members
	// stay: the point of static membership is that a bounced instance keeps
	// its partitions until its session times out.
	for _, m := range g.ordered() {
		if m.join == nil && m.instanceID == nil {
			g.remove(m.id)
		}
	}
	if len(g.members) > 0 && !g.electJoinedLeader() {
		// Only static members that have not rejoined remain: wait another
		// rebalance timeout; their sessions expire meanwhile if they are gone.
		g.joinDeadline = now + g.rebalanceTimeoutMs()
		return
	}

	g.generation++
	if len(g.members) == 0 {
		g.protocol = ""
		g.computeSubscribed()
		g.transition(stateEmpty, now)
		g.storeGroup(now)
		return
	}
	g.protocol = g.selectProtocol()
	g.computeSubscribed()
	g.transition(stateCompletingRebalance, now)

	g.pendingSync = make(map[string]bool, len(g.members))
	for _, m := range g.ordered() {
		g.pendingSync[m.id] = true
		if m.join != nil {
			g.c.reply(m.join.ref, g.joinResponse(m, m.join.version))
			m.join = nil
		}
		m.isNew = false
		m.deadline = now + int64(m.sessionTimeoutMs)
	}
	g.syncDeadline = now + g.rebalanceTimeoutMs()
}

// electJoinedLeader keeps the leader if it rejoined, else makes the first
// rejoined member leader; false if nobody rejoined.
func (g *group) electJoinedLeader() bool {
	if l := g.members[g.leader]; l != nil && l.join != nil {
		return true
	}
	for _, m := range g.ordered() {
		if m.join != nil {
			g.leader = m.id
			return true
		}
	}
	return false
}

func (g *group) joinResponse(m *member, version int16) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Version = version
	resp.Generation = g.generation
	resp.ProtocolType = kmsg.StringPtr(g.protocolType)
	resp.Protocol = kmsg.StringPtr(g.protocol)
	resp.LeaderID = g.leader
	resp.MemberID = m.id
	if m.id == g.leader {
		for _, o := range g.ordered() {
			jm := kmsg.NewJoinGroupResponseMember()
			jm.MemberID = o.id
			jm.InstanceID = o.instanceID
			jm.ProtocolMetadata = o.metadata(g.protocol)
			resp.Members = append(resp.Members, jm)
		}
	}
	return resp
}

// removeMemberAndUpdate removes a member that left or timed out and moves
// the group on: a stable group rebalances, a rebalancing one may now be
// complete.
func (g *group) removeMemberAndUpdate(m *member, now int64) {
	g.failParked(m, tributary.ErrUnknownMemberId)
	g.remove(m.id)
	switch g.state {
	case stateStable, stateCompletingRebalance:
		g.prepareRebalance(now)
	case statePreparingRebalance:
		g.maybeCompleteJoin(now)
	}
}

// failParked answers a member's parked requests with err.
func (g *group) failParked(m *member, err *tributary.Error) {
	if m.join != nil {
		resp := kmsg.NewPtrJoinGroupResponse()
		resp.Version = m.join.version
		resp.ErrorCode = err.Code
		resp.MemberID = m.id
		if err == tributary.ErrUnknownMemberId {
			resp.MemberID = "" // so the client rejoins from scratch
		}
		g.c.reply(m.join.ref, resp)
		m.join = nil
	}
	if m.sync != nil {
		g.c.reply(m.sync.ref, syncError(m.sync.version, err))
		m.sync = nil
	}
}

func syncError(version int16, err *tributary.Error) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.Version = version
	resp.ErrorCode = err.Code
	resp.MemberAssignment = []byte{}
	return resp
}

// computeSubscribed decodes the topics the members consume, which decide
// which offsets may expire or be deleted while the group is active.
func (g *group) computeSubscribed() {
	g.subscribed = make(map[string]bool)
	g.subscribedKnown = true
	if len(g.members) == 0 {
		return
	}
	if g.protocolType != "consumer" || g.protocol == "" {
		g.subscribedKnown = false
		return
	}
	for _, m := range g.members {
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(m.metadata(g.protocol)); err != nil {
			g.subscribed, g.subscribedKnown = nil, false
			return
		}
		for _, t := range md.Topics {
			g.subscribed[t] = true
		}
	}
}

// isSubscribed reports whether a member consumes topic. When the topics
// are unknown (metadata that does not decode), a "consumer" group is
// assumed to consume everything, which keeps its offsets safe from expiry
// and OffsetDelete; other protocol types consume nothing that counts.
func (g *group) isSubscribed(topic string) bool {
	if !g.subscribedKnown {
		return g.protocolType == "consumer"
	}
	return g.subscribed[topic]
}

// nextDeadline is the group's earliest timer, 0 if none.
func (g *group) nextDeadline() int64 {
	var at int64
	earliest := func(t int64) {
		if t != 0 && (at == 0 || t < at) {
			at = t
		}
	}
	earliest(g.joinDeadline)
	earliest(g.syncDeadline)
	for _, m := range g.members {
		earliest(m.deadline)
	}
	for _, d := range g.pending {
		earliest(d)
	}
	return at
}

// fire runs the group's due timers in deadline order.
func (g *group) fire(now int64) {
	for {
		at := g.nextDeadline()
		if at == 0 || at > now {
			return
		}
		// Timers fire in deadline order and act as of their deadline, so
		// a late Tick reaches the same state as timely ones would have
		// (an extended initial delay still ends 3s after the previous
		// one, not 3s after the Tick).
		switch {
		case g.joinDeadline == at:
			g.onJoinDeadline(at)
		case g.syncDeadline == at:
			g.onSyncDeadline(at)
		default:
			if !g.firstDueMember(at) {
				return // unreachable: at came from a member; never spin
			}
		}
	}
}

// firstDueMember expires the first member whose deadline is at: members
// in join order, then pending members in id order.
func (g *group) firstDueMember(at int64) bool {
	for _, m := range g.ordered() {
		if m.deadline == at {
			g.onSessionExpired(m, at)
			return true
		}
	}
	var due string
	found := false
	for id, d := range g.pending {
		if d == at && (!found || id < due) {
			due, found = id, true
		}
	}
	if !found {
		return false
	}
	delete(g.pending, due)
	if g.state == statePreparingRebalance {
		g.maybeCompleteJoin(at)
	}
	return true
}

func (g *group) onSessionExpired(m *member, now int64) {
	// A member parked in a rebalance cannot heartbeat; the rebalance's own
	// timeouts govern it. New members have no such excuse.
	if !m.isNew && (m.join != nil || m.sync != nil) {
		m.deadline = now + max(int64(m.sessionTimeoutMs), 1) // strictly later: see rebalanceTimeoutMs
		return
	}
	m.deadline = 0
	g.removeMemberAndUpdate(m, now)
}

// onSyncDeadline removes the members that did not send SyncGroup within the
// rebalance timeout after the join phase, and rebalances without them.
func (g *group) onSyncDeadline(now int64) {
	g.syncDeadline = 0
	if g.state != stateCompletingRebalance && g.state != stateStable {
		return
	}
	if len(g.pendingSync) == 0 {
		return
	}
	for _, m := range g.ordered() {
		if g.pendingSync[m.id] {
			g.failParked(m, tributary.ErrUnknownMemberId)
			g.remove(m.id)
		}
	}
	g.prepareRebalance(now)
}
