package consumer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/client"
	"github.com/tributary/tributary/internal/clientx"
	"github.com/tributary/tributary/internal/consumerproto"
)

// Group membership over Kafka's classic group protocol (protocol type
// "consumer"). One goroutine, groupLoop, owns the membership: it finds the
// coordinator, joins (JoinGroup, retried once with the member id the
// coordinator assigns under KIP-394's MEMBER_ID_REQUIRED), runs the
// assignor when it is the leader, syncs (SyncGroup), applies the
// assignment and then heartbeats until the group rebalances.
//
// Eager members (any assignor not cooperative) commit and revoke all
// their partitions before they rejoin. Cooperative members (KIP-429) keep
// their partitions through the rebalance, announce them as owned, and
// after SyncGroup revoke only those the plan took away; if there were
// any, they rejoin at once so the partitions can move in a second
// rebalance. A partition that stays with its owner is never revoked.
//
// Losing the membership (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
// FENCED_INSTANCE_ID, or no successful heartbeat for a session timeout)
// drops every partition without a commit and calls OnLost.

// groupMember is the group loop's state.
type groupMember struct {
	owned      map[string][]int32 // assigned in the last completed sync, minus revoked
	prev       map[string][]int32 // assigned in the last completed sync
	generation int32              // of owned, -1 before the first
	needRejoin bool               // something was revoked: rejoin now
	counts     map[string]int32   // leader: partition counts it assigned from
}

// Subscribe makes the consumer a member of its Group for topics,
// replacing any previous subscription (the member rejoins to announce
// it). It cannot be mixed with Assign.
func (c *Consumer) Subscribe(topics ...string) error {
	if c.cfg.group == "" {
		return ErrNoGroup
	}
	if len(topics) == 0 {
		return errSubscribeNoTopics
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return ErrClosed
	}
	if !c.groupOn && len(c.parts) > 0 {
		return errors.New("consumer: Subscribe cannot be used with manually assigned partitions")
	}
	if c.groupOn {
		c.topics = slices.Clone(topics)
		select {
		case c.rejoin <- struct{}{}:
		default:
		}
		return nil
	}
	c.startGroupLocked(topics)
	return nil
}

func (c *Consumer) startGroupLocked(topics []string) {
	c.topics = slices.Clone(topics)
	c.groupOn = true
	c.member = &groupMember{generation: -1}
	ctx, cancel := context.WithCancel(c.ctx)
	c.groupCancel = cancel
	c.groupDone = make(chan struct{})
	c.cl.TriggerMetadataRefresh(topics...)
	c.goTracked(func() {
		defer close(c.groupDone)
		c.groupLoop(ctx, c.member)
	})
}

var errSubscribeNoTopics = errors.New("consumer: Subscribe needs at least one topic")

// errFatal stops the group loop: the error was given to Poll.
var errFatal = errors.New("consumer: fatal group error")

func (c *Consumer) groupLoop(ctx context.Context, g *groupMember) {
	failures := 0
	for ctx.Err() == nil {
		err := c.joinAndSync(ctx, g)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, errFatal) {
				return
			}
			failures++
			clientx.Of(c.cl).Logger().Info("consumer: joining group failed", "group", c.cfg.group, "err", err)
			wait := clientx.Of(c.cl).Backoff(failures)
			if errors.Is(err, tributary.ErrRebalanceInProgress) || errors.Is(err, tributary.ErrUnknownMemberId) ||
				errors.Is(err, tributary.ErrIllegalGeneration) {
				wait = 0 // rejoin at once, as Java does
			}
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return
			}
			continue
		}
		failures = 0
		c.heartbeatLoop(ctx, g)
	}
}

// joinAndSync performs one JoinGroup + SyncGroup round.
func (c *Consumer) joinAndSync(ctx context.Context, g *groupMember) error {
	cooperative := c.cfg.cooperative()
	var eagerRevoked []tributary.TopicPartition
	if !cooperative && len(g.owned) > 0 {
		eagerRevoked = flatten(g.owned)
		c.revoke(ctx, g, eagerRevoked)
	}
	c.mu.Lock()
	topics := slices.Clone(c.topics)
	memberID := c.memberID
	c.mu.Unlock()

	var protocols []kmsg.JoinGroupRequestProtocol
	for _, a := range c.cfg.assignors {
		current := g.owned
		if !cooperative && a.Cooperative() {
			current = nil // revoked: claiming it would hold partitions back
		}
		if !cooperative && !a.Cooperative() {
			// Eager sticky keeps its history in user data: what the
			// member had before it revoked everything.
			current = g.prev
		}
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name = a.Name()
		p.Metadata = consumerproto.NewSubscription(protoAssignor(a), topics, current, g.generation, "").AppendTo(nil)
		protocols = append(protocols, p)
	}

	var join *kmsg.JoinGroupResponse
	for range 3 { // the second try carries the id from MEMBER_ID_REQUIRED
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group = c.cfg.group
		req.SessionTimeoutMillis = int32(c.cfg.sessionTimeout / time.Millisecond)
		req.RebalanceTimeoutMillis = int32(c.cfg.rebalanceTimeout / time.Millisecond)
		req.MemberID = memberID
		if c.cfg.instanceID != "" {
			req.InstanceID = kmsg.StringPtr(c.cfg.instanceID)
		}
		req.ProtocolType = consumerproto.ProtocolType
		req.Protocols = protocols
		r, err := c.coordRequest(ctx, req)
		if err != nil {
			return fmt.Errorf("JoinGroup: %w", err)
		}
		join = r.(*kmsg.JoinGroupResponse)
		err = tributary.ErrorForCode(join.ErrorCode)
		if errors.Is(err, tributary.ErrMemberIdRequired) {
			memberID = join.MemberID
			c.mu.Lock()
			c.memberID = memberID
			c.mu.Unlock()
			continue
		}
		if err != nil {
			return c.joinError("JoinGroup", err, g)
		}
		break
	}
	if join == nil || join.ErrorCode != 0 {
		return errors.New("JoinGroup: member id required repeatedly")
	}
	memberID = join.MemberID
	protocol := ""
	if join.Protocol != nil {
		protocol = *join.Protocol
	}
	assignor := c.assignorNamed(protocol)
	if assignor == nil {
		return c.fatal(fmt.Errorf("consumer: coordinator chose unknown protocol %q", protocol))
	}
	c.mu.Lock()
	c.memberID = memberID
	c.mu.Unlock()

	var plan []kmsg.SyncGroupRequestGroupAssignment
	if join.LeaderID == memberID && !join.SkipAssignment {
		members, err := consumerproto.DecodeMembers(join.Members)
		if err != nil {
			return fmt.Errorf("consumer: leader decoding members: %w", err)
		}
		all := consumerproto.MemberTopics(members)
		meta, err := c.cl.Metadata(ctx, all...)
		if err != nil {
			return fmt.Errorf("consumer: leader fetching metadata: %w", err)
		}
		counts := make(map[string]int32, len(all))
		for _, t := range all {
			if tm := meta.Topics[t]; tm != nil && tm.Err == nil {
				counts[t] = int32(len(tm.Partitions))
			}
		}
		g.counts = counts
		plan = protoAssignor(assignor).Assign(members, counts).SyncAssignments()
	} else {
		g.counts = nil
	}

	sreq := kmsg.NewPtrSyncGroupRequest()
	sreq.Group = c.cfg.group
	sreq.Generation = join.Generation
	sreq.MemberID = memberID
	if c.cfg.instanceID != "" {
		sreq.InstanceID = kmsg.StringPtr(c.cfg.instanceID)
	}
	sreq.ProtocolType = kmsg.StringPtr(consumerproto.ProtocolType)
	sreq.Protocol = kmsg.StringPtr(protocol)
	sreq.GroupAssignment = plan
	r, err := c.coordRequest(ctx, waitRequest{sreq, int32(c.cfg.rebalanceTimeout / time.Millisecond)})
	if err != nil {
		return fmt.Errorf("SyncGroup: %w", err)
	}
	sync := r.(*kmsg.SyncGroupResponse)
	if err := tributary.ErrorForCode(sync.ErrorCode); err != nil {
		return c.joinError("SyncGroup", err, g)
	}
	a, err := consumerproto.DecodeAssignment(sync.MemberAssignment)
	if err != nil {
		return fmt.Errorf("consumer: decoding assignment: %w", err)
	}
	c.mu.Lock()
	c.generation = join.Generation
	c.protocol = protocol
	c.mu.Unlock()

	next := a.Partitions
	if next == nil {
		next = map[string][]int32{}
	}
	revoked := diff(g.owned, next)
	added := diff(next, g.owned)
	if len(revoked) > 0 {
		// Only cooperative members get here: eager ones own nothing.
		c.revoke(ctx, g, revoked)
		g.needRejoin = true
	}
	g.owned = next
	g.prev = next
	g.generation = join.Generation
	clientx.Of(c.cl).Logger().Debug("consumer: joined group", "group", c.cfg.group, "member", memberID,
		"generation", join.Generation, "protocol", protocol, "leader", join.LeaderID == memberID,
		"assigned", next, "added", added, "revoked", revoked)
	c.assign(added)
	c.rebalanced(join.Generation, added, append(eagerRevoked, revoked...), false, nil)
	return nil
}

// rebalanced tells the client's HookGroupRebalance hooks what a rebalance
// did: the partitions it added and took away (for an eager member, all it
// had, revoked before it rejoined), or that the member lost its
// partitions, or that the join or sync failed.
func (c *Consumer) rebalanced(generation int32, assigned, revoked []tributary.TopicPartition, lost bool, err error) {
	var hooks []client.HookGroupRebalance
	for _, h := range c.cl.Hooks() {
		if h, ok := h.(client.HookGroupRebalance); ok {
			hooks = append(hooks, h)
		}
	}
	if len(hooks) == 0 {
		return
	}
	c.mu.Lock()
	member := c.memberID
	c.mu.Unlock()
	ev := client.RebalanceEvent{Group: c.cfg.group, MemberID: member, Generation: generation,
		Assigned: byTopic(assigned), Revoked: byTopic(revoked), Lost: lost, Err: err}
	for _, h := range hooks {
		h.OnGroupRebalance(ev)
	}
}

// joinError handles a JoinGroup or SyncGroup error code.
func (c *Consumer) joinError(what string, err error, g *groupMember) error {
	c.rebalanced(-1, nil, nil, false, fmt.Errorf("%s: %w", what, err))
	switch {
	case errors.Is(err, tributary.ErrUnknownMemberId):
		c.lose(g, true)
	case errors.Is(err, tributary.ErrIllegalGeneration):
		c.lose(g, false)
	case errors.Is(err, tributary.ErrFencedInstanceId):
		c.lose(g, true)
		return c.fatal(fmt.Errorf("consumer: %s: another member uses group.instance.id %q: %w", what, c.cfg.instanceID, err))
	case errors.Is(err, tributary.ErrRebalanceInProgress):
		// A new rebalance began: join again. Cooperative members keep
		// their partitions; eager ones revoke before the next join.
	case c.coordinatorMoved(err), retryCoord(err):
	default:
		// INCONSISTENT_GROUP_PROTOCOL, GROUP_AUTHORIZATION_FAILED,
		// INVALID_SESSION_TIMEOUT, GROUP_MAX_SIZE_REACHED...: the user
		// must know; keep trying with backoff.
		c.mu.Lock()
		c.pushErrLocked(fmt.Errorf("consumer: group %q: %s: %w", c.cfg.group, what, err))
		c.mu.Unlock()
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (c *Consumer) fatal(err error) error {
	c.mu.Lock()
	c.pushErrLocked(err)
	c.mu.Unlock()
	return fmt.Errorf("%w: %w", errFatal, err)
}

func (c *Consumer) assignorNamed(name string) Assignor {
	for _, a := range c.cfg.assignors {
		if a.Name() == name {
			return a
		}
	}
	return nil
}

// assign starts consuming newly assigned partitions from their committed
// offsets. They are held (neither fetched nor looked up) while OnAssigned
// runs, so the callback may Seek them and Poll returns none of their
// records before it.
func (c *Consumer) assign(added []tributary.TopicPartition) {
	c.mu.Lock()
	topics := make([]string, 0, len(added))
	for _, tp := range added {
		c.assignLocked(tp, Committed)
		c.parts[tp].held = true
		topics = append(topics, tp.Topic)
	}
	c.mu.Unlock()
	if len(topics) > 0 {
		c.cl.TriggerMetadataRefresh(slices.Compact(slices.Sorted(slices.Values(topics)))...)
	}
	if c.cfg.onAssigned != nil {
		c.cfg.onAssigned(added)
	}
	c.mu.Lock()
	for _, tp := range added {
		if p := c.parts[tp]; p != nil {
			p.held = false
		}
	}
	c.notifyLocked()
	c.mu.Unlock()
}

// revoke gives up tps: commit their positions (with AutoCommit), call
// OnRevoked, then stop consuming them.
func (c *Consumer) revoke(ctx context.Context, g *groupMember, tps []tributary.TopicPartition) {
	if c.cfg.autoCommit {
		cctx, cancel := context.WithTimeout(ctx, clientx.Of(c.cl).RequestTimeout())
		err := c.commitPositions(cctx, tps)
		cancel()
		if err != nil && !errors.Is(err, errNothingToCommit) {
			clientx.Of(c.cl).Logger().Warn("consumer: commit before revoke failed", "group", c.cfg.group, "err", err)
		}
	}
	if c.cfg.onRevoked != nil {
		c.cfg.onRevoked(tps)
	}
	c.mu.Lock()
	c.removeLocked(tps)
	c.notifyLocked()
	c.mu.Unlock()
	g.owned = subtract(g.owned, tps)
}

// lose drops every partition without committing, after the membership
// expired; resetMember also forgets the member id.
func (c *Consumer) lose(g *groupMember, resetMember bool) {
	lost := flatten(g.owned)
	c.mu.Lock()
	c.removeLocked(lost)
	c.generation = -1
	if resetMember {
		c.memberID = ""
	}
	c.notifyLocked()
	c.mu.Unlock()
	g.owned = nil
	g.generation = -1
	clientx.Of(c.cl).Logger().Info("consumer: group membership lost", "group", c.cfg.group, "lost", lost, "reset_member", resetMember)
	if len(lost) > 0 && c.cfg.onLost != nil {
		c.cfg.onLost(lost)
	}
	c.rebalanced(-1, nil, lost, true, nil)
}

// heartbeatLoop heartbeats until the member must rejoin.
func (c *Consumer) heartbeatLoop(ctx context.Context, g *groupMember) {
	if g.needRejoin {
		g.needRejoin = false
		return
	}
	t := time.NewTicker(c.cfg.heartbeatInterval)
	defer t.Stop()
	lastOK := time.Now()
	var updated <-chan struct{}
	if g.counts != nil {
		updated = c.cl.MetadataUpdated()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.rejoin:
			return
		case <-updated:
			updated = c.cl.MetadataUpdated()
			if c.partitionCountsChanged(g) {
				return // the leader rejoins so the new partitions are assigned
			}
			continue
		case <-t.C:
		}
		c.mu.Lock()
		gen, member := c.generation, c.memberID
		c.mu.Unlock()
		req := kmsg.NewPtrHeartbeatRequest()
		req.Group = c.cfg.group
		req.Generation = gen
		req.MemberID = member
		if c.cfg.instanceID != "" {
			req.InstanceID = kmsg.StringPtr(c.cfg.instanceID)
		}
		hctx, cancel := context.WithTimeout(ctx, clientx.Of(c.cl).RequestTimeout())
		r, err := c.coordRequest(hctx, req)
		cancel()
		if err == nil {
			err = tributary.ErrorForCode(r.(*kmsg.HeartbeatResponse).ErrorCode)
		}
		switch {
		case err == nil:
			lastOK = time.Now()
		case ctx.Err() != nil:
			return
		case errors.Is(err, tributary.ErrRebalanceInProgress):
			return
		case errors.Is(err, tributary.ErrIllegalGeneration):
			c.lose(g, false)
			return
		case errors.Is(err, tributary.ErrUnknownMemberId), errors.Is(err, tributary.ErrFencedInstanceId):
			c.lose(g, true)
			return
		default:
			c.coordinatorMoved(err)
			if time.Since(lastOK) > c.cfg.sessionTimeout {
				c.lose(g, false) // the coordinator has dropped us by now
				return
			}
		}
	}
}

// partitionCountsChanged reports whether a topic the leader assigned has
// a different partition count in the cached metadata.
func (c *Consumer) partitionCountsChanged(g *groupMember) bool {
	meta := c.cl.CachedMetadata()
	for t, n := range g.counts {
		if tm := meta.Topics[t]; tm != nil && tm.Err == nil && int32(len(tm.Partitions)) != n {
			return true
		}
	}
	return false
}

// leaveGroup runs at Close: after a final commit it revokes what the
// member owns and, for a dynamic member, sends LeaveGroup so the group
// rebalances at once instead of after the session timeout.
func (c *Consumer) leaveGroup(ctx context.Context) (commitErr error) {
	c.groupCancel()
	<-c.groupDone
	g := c.member
	if len(g.owned) > 0 {
		if c.cfg.autoCommit {
			if err := c.commitPositions(ctx, nil); err != nil && !errors.Is(err, errNothingToCommit) {
				commitErr = err
			}
		}
		if c.cfg.onRevoked != nil {
			c.cfg.onRevoked(flatten(g.owned))
		}
	}
	c.mu.Lock()
	member := c.memberID
	c.generation = -1
	c.mu.Unlock()
	if c.cfg.instanceID != "" || member == "" {
		return commitErr
	}
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = c.cfg.group
	req.MemberID = member
	m := kmsg.NewLeaveGroupRequestMember()
	m.MemberID = member
	m.Reason = kmsg.StringPtr("the consumer is closing")
	req.Members = []kmsg.LeaveGroupRequestMember{m}
	if _, err := c.coordRequest(ctx, req); err != nil {
		clientx.Of(c.cl).Logger().Info("consumer: LeaveGroup failed", "group", c.cfg.group, "err", err)
	}
	return commitErr
}

// GroupMetadata describes the consumer's group membership. It is what a
// transactional producer sends with the offsets it commits in a
// transaction (producer.SendOffsetsToTxn), so that the group coordinator
// refuses them from a member that no longer owns the partitions
// (KIP-447; Java's ConsumerGroupMetadata).
type GroupMetadata struct {
	Group      string // the Group option; empty without one
	MemberID   string
	Generation int32 // -1 while not in a generation
	Protocol   string
	InstanceID string // the InstanceID option (static membership); empty if none
}

// GroupMetadata returns the current membership. For SendOffsetsToTxn,
// take it after the Poll that returned the records whose offsets are
// sent: a rebalance since then changes the generation and the commit is
// refused.
func (c *Consumer) GroupMetadata() GroupMetadata {
	c.mu.Lock()
	defer c.mu.Unlock()
	return GroupMetadata{Group: c.cfg.group, MemberID: c.memberID, Generation: c.generation, Protocol: c.protocol, InstanceID: c.cfg.instanceID}
}

func flatten(m map[string][]int32) []tributary.TopicPartition {
	var out []tributary.TopicPartition
	for _, t := range sortedKeys(m) {
		for _, p := range m[t] {
			out = append(out, tributary.TopicPartition{Topic: t, Partition: p})
		}
	}
	return out
}

// diff returns the partitions in a and not in b, sorted.
func diff(a, b map[string][]int32) []tributary.TopicPartition {
	var out []tributary.TopicPartition
	for _, tp := range flatten(a) {
		if !slices.Contains(b[tp.Topic], tp.Partition) {
			out = append(out, tp)
		}
	}
	return out
}

func subtract(m map[string][]int32, tps []tributary.TopicPartition) map[string][]int32 {
	out := maps.Clone(m)
	for _, tp := range tps {
		out[tp.Topic] = slices.DeleteFunc(slices.Clone(out[tp.Topic]), func(p int32) bool { return p == tp.Partition })
		if len(out[tp.Topic]) == 0 {
			delete(out, tp.Topic)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
