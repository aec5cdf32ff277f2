package replica

import (
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/storage"
)

type role uint8

const (
	roleNone role = iota
	roleLeader
	roleFollower
)

func (r role) String() string {
	switch r {
	case roleLeader:
		return "leader"
	case roleFollower:
		return "follower"
	}
	return "none"
}

// followerState is what a leader knows of one follower in its epoch
// (Kafka's ReplicaState).
type followerState struct {
	leo                int64     // last fetch offset; -1 until it fetched in this epoch
	lastCaughtUp       time.Time // last time its fetch reached the leader's LEO (or the LEO of its previous fetch)
	lastFetch          time.Time
	lastFetchLeaderLEO int64 // the leader's LEO at that fetch
}

// Partition is one hosted partition's replication state. All methods are
// safe for concurrent use.
type Partition struct {
	m       *Manager
	topic   string
	topicID [16]byte
	index   int32
	log     *storage.Log

	// applyMu serialises Apply and Remove on this partition.
	applyMu sync.Mutex
	// roleMu is Kafka's leaderIsrUpdateLock: appends (leader and
	// follower) and truncations hold it shared, role changes
	// exclusively.
	roleMu sync.RWMutex

	mu struct {
		sync.Mutex
		role        role
		hasState    bool
		st          State
		gen         uint64 // bumped on every role or epoch change; fences fetcher work
		epochStart  int64  // leader: the log end when this epoch began
		followers   map[int32]*followerState
		pendingISR  []int32   // ISR proposed by the in-flight AlterPartition
		alterHeld   bool      // a refused AlterPartition waits for the next Apply
		alterRetry  time.Time // an unanswered one is retried from then on
		removed     bool
		lastHWMoved int64
	}
}

// Topic, TopicID, Index and Log identify the partition.
func (p *Partition) Topic() string        { return p.topic }
func (p *Partition) TopicID() [16]byte    { return p.topicID }
func (p *Partition) Index() int32         { return p.index }
func (p *Partition) Log() *storage.Log    { return p.log }
func (p *Partition) HighWatermark() int64 { return p.log.HighWatermark() }

// State returns the last applied state (with the ISR as committed).
func (p *Partition) State() State {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.st.clone()
}

// IsLeader reports whether this node leads the partition.
func (p *Partition) IsLeader() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.role == roleLeader
}

// LeaderEpoch is the leader epoch of the last applied state.
func (p *Partition) LeaderEpoch() int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.st.LeaderEpoch
}

// ISR returns the committed in-sync replicas.
func (p *Partition) ISR() []int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.mu.st.ISR)
}

// ReplicaStatus is what a leader knows of one follower, for describe
// and reassignment-progress answers and metrics.
type ReplicaStatus struct {
	ID           int32
	LogEndOffset int64     // its last fetch offset in this epoch, -1 before its first fetch
	LastCaughtUp time.Time // by Config.Now; zero if never in this epoch
	InISR        bool
}

// Followers reports the followers' state when this node leads (nil
// otherwise), in replica order.
func (p *Partition) Followers() []ReplicaStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.role != roleLeader {
		return nil
	}
	var out []ReplicaStatus
	for _, id := range p.mu.st.Replicas {
		if fs := p.mu.followers[id]; fs != nil {
			out = append(out, ReplicaStatus{ID: id, LogEndOffset: fs.leo, LastCaughtUp: fs.lastCaughtUp, InISR: slices.Contains(p.mu.st.ISR, id)})
		}
	}
	return out
}

// ValidateLeaderEpoch checks a request's CurrentLeaderEpoch (KIP-320)
// and that this node leads: FENCED_LEADER_EPOCH when the requester's
// epoch is older than ours, UNKNOWN_LEADER_EPOCH when newer (we have not
// heard of it yet), NOT_LEADER_OR_FOLLOWER when we do not lead. -1 skips
// the epoch check (older clients).
func (p *Partition) ValidateLeaderEpoch(currentLeaderEpoch int32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.checkLeaderLocked(currentLeaderEpoch)
}

func (p *Partition) checkLeaderLocked(currentLeaderEpoch int32) error {
	if currentLeaderEpoch >= 0 && p.mu.hasState {
		switch {
		case currentLeaderEpoch < p.mu.st.LeaderEpoch:
			return tributary.ErrFencedLeaderEpoch
		case currentLeaderEpoch > p.mu.st.LeaderEpoch:
			return tributary.ErrUnknownLeaderEpoch
		}
	}
	if p.mu.role != roleLeader {
		return tributary.ErrNotLeaderOrFollower
	}
	return nil
}

// CheckProduce answers whether a produce with acks may be appended now:
// NOT_LEADER_OR_FOLLOWER when this node does not lead, NOT_ENOUGH_REPLICAS
// when acks is -1 (all) and the ISR is smaller than minISR
// (min.insync.replicas). acks 0 and 1 are accepted with any ISR, as in
// Kafka; their records stay invisible until the HW covers them.
func (p *Partition) CheckProduce(acks int16, minISR int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.checkProduceLocked(acks, minISR)
}

func (p *Partition) checkProduceLocked(acks int16, minISR int) error {
	if p.mu.role != roleLeader {
		return tributary.ErrNotLeaderOrFollower
	}
	if acks == -1 && len(p.mu.st.ISR) < minISR {
		return tributary.ErrNotEnoughReplicas
	}
	return nil
}

// AppendAsLeader checks as CheckProduce does and appends batches to the
// log at the current leader epoch, atomically with respect to role
// changes: a batch is never stored under an epoch it was not checked
// against. It then moves the HW if the ISR allows (an ISR of this node
// alone commits at once). Errors are those of CheckProduce and
// storage.Log.Append.
func (p *Partition) AppendAsLeader(batches []byte, acks int16, minISR int) (storage.AppendResult, error) {
	return p.AppendAsLeaderWith(acks, minISR, func(l *storage.Log, epoch int32) (storage.AppendResult, error) {
		return l.Append(batches, epoch)
	})
}

// AppendAsLeaderWith is AppendAsLeader for what brokers themselves write
// rather than clients' batches (transaction markers, a coordinator's
// transactional offset commits): fn appends to the log at the leader
// epoch, under the same leadership and min.insync.replicas checks.
func (p *Partition) AppendAsLeaderWith(acks int16, minISR int, fn func(l *storage.Log, leaderEpoch int32) (storage.AppendResult, error)) (storage.AppendResult, error) {
	res, moved, err := p.appendAsLeader(acks, minISR, fn)
	if moved {
		p.m.hwMoved(p)
	}
	return res, err
}

func (p *Partition) appendAsLeader(acks int16, minISR int, fn func(*storage.Log, int32) (storage.AppendResult, error)) (storage.AppendResult, bool, error) {
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	p.mu.Lock()
	if err := p.checkProduceLocked(acks, minISR); err != nil {
		p.mu.Unlock()
		return storage.AppendResult{}, false, err
	}
	epoch := p.mu.st.LeaderEpoch
	p.mu.Unlock()
	res, err := fn(p.log, epoch)
	if err != nil {
		return res, false, err
	}
	p.mu.Lock()
	moved := p.maybeIncrementHWLocked()
	p.mu.Unlock()
	return res, moved, nil
}

// Appended moves the HW after an append that did not go through
// AppendAsLeader (a caller appending to Log() itself, holding its own
// leadership check): with an ISR of this node alone it commits at once.
// Prefer AppendAsLeader, which cannot race a role change.
func (p *Partition) Appended() {
	p.mu.Lock()
	moved := p.maybeIncrementHWLocked()
	p.mu.Unlock()
	if moved {
		p.m.hwMoved(p)
	}
}

// AckedAfterAppend tells an acks=all produce whose batches end before
// endOffset (last offset + 1) whether it can be answered: done once the
// HW reached endOffset, with NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR
// meanwhile shrank below minISR; done with NOT_LEADER_OR_FOLLOWER when
// this node no longer leads. Not done means wait for HighWatermarkMoved.
func (p *Partition) AckedAfterAppend(endOffset int64, minISR int) (done bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.role != roleLeader {
		return true, tributary.ErrNotLeaderOrFollower
	}
	if p.log.HighWatermark() < endOffset {
		return false, nil
	}
	if len(p.mu.st.ISR) < minISR {
		return true, tributary.ErrNotEnoughReplicasAfterAppend
	}
	return true, nil
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch (key 23) as the leader:
// the request's CurrentLeaderEpoch is validated as in
// ValidateLeaderEpoch, then the log's epoch cache answers (the latest
// epoch ends at the log end; -1/-1 is UNDEFINED).
func (p *Partition) EndOffsetForEpoch(currentLeaderEpoch, epoch int32) (EpochEndOffset, error) {
	p.mu.Lock()
	err := p.checkLeaderLocked(currentLeaderEpoch)
	p.mu.Unlock()
	if err != nil {
		return EpochEndOffset{Epoch: -1, EndOffset: -1}, err
	}
	e, end := p.log.EndOffsetForEpoch(epoch)
	return EpochEndOffset{Epoch: e, EndOffset: end}, nil
}

// FollowerFetch records a follower's fetch on the leader (Kafka's
// updateFollowerFetchState): the fetch offset is the follower's log end,
// its caught-up time moves, the HW moves to the smallest log end over the
// ISR, and a follower that caught up is proposed for the ISR.
//
// With lastFetchedEpoch (Fetch v12+) the leader first checks that the
// follower's log agrees with its own: if the follower's last epoch ends
// earlier here (or is unknown here) the answer is a diverging epoch to
// truncate to, and nothing is recorded. Errors: NOT_LEADER_OR_FOLLOWER
// (not leader, or replicaID is not a replica), FENCED_LEADER_EPOCH,
// UNKNOWN_LEADER_EPOCH, OFFSET_OUT_OF_RANGE.
func (p *Partition) FollowerFetch(replicaID int32, fetchOffset int64, currentLeaderEpoch, lastFetchedEpoch int32) (*EpochEndOffset, error) {
	div, moved, alter, err := p.followerFetch(replicaID, fetchOffset, currentLeaderEpoch, lastFetchedEpoch)
	if alter != nil {
		p.m.sendAlter(p, *alter)
	}
	if moved {
		p.m.hwMoved(p)
	}
	return div, err
}

func (p *Partition) followerFetch(replicaID int32, fetchOffset int64, currentLeaderEpoch, lastFetchedEpoch int32) (div *EpochEndOffset, moved bool, alter *alterReq, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.checkLeaderLocked(currentLeaderEpoch); err != nil {
		return nil, false, nil, err
	}
	fs := p.mu.followers[replicaID]
	if fs == nil {
		return nil, false, nil, tributary.ErrNotLeaderOrFollower
	}
	leo := p.log.LogEndOffset()
	if fetchOffset > leo || fetchOffset < p.log.LogStartOffset() {
		return nil, false, nil, tributary.ErrOffsetOutOfRange
	}
	if lastFetchedEpoch >= 0 {
		e, end := p.log.EndOffsetForEpoch(lastFetchedEpoch)
		if end < 0 {
			// No epoch at or below the follower's here: its log
			// is outside ours; it resets through ListOffsets.
			return nil, false, nil, tributary.ErrOffsetOutOfRange
		}
		if e != lastFetchedEpoch || end < fetchOffset {
			return &EpochEndOffset{Epoch: e, EndOffset: end}, false, nil, nil
		}
	}
	now := p.m.cfg.Now()
	switch {
	case fetchOffset >= leo:
		fs.lastCaughtUp = now
	case fetchOffset >= fs.lastFetchLeaderLEO && fs.lastFetch.After(fs.lastCaughtUp):
		// It has everything the leader had when it last fetched.
		fs.lastCaughtUp = fs.lastFetch
	}
	fs.leo = fetchOffset
	fs.lastFetch = now
	fs.lastFetchLeaderLEO = leo
	moved = p.maybeIncrementHWLocked()
	if !slices.Contains(p.mu.st.ISR, replicaID) && p.mu.pendingISR == nil && p.alterAllowedLocked() &&
		fetchOffset >= p.log.HighWatermark() && fetchOffset >= p.mu.epochStart {
		isr := append(slices.Clone(p.mu.st.ISR), replicaID)
		slices.Sort(isr)
		alter = p.proposeLocked(isr)
	}
	return nil, moved, alter, nil
}

// maximalISRLocked is the committed ISR plus the members of a pending
// change (Kafka's maximal ISR, KIP-497): the HW waits for a replica being
// added, and keeps waiting for one being removed until the removal is
// committed.
func (p *Partition) maximalISRLocked() []int32 {
	isr := p.mu.st.ISR
	for _, id := range p.mu.pendingISR {
		if !slices.Contains(isr, id) {
			isr = append(slices.Clone(isr), id)
		}
	}
	return isr
}

// maybeIncrementHWLocked moves the leader's HW to the smallest log end
// over the maximal ISR, never backwards, and reports whether it moved.
// A follower that has not fetched in this epoch holds it where it is.
func (p *Partition) maybeIncrementHWLocked() bool {
	if p.mu.role != roleLeader {
		return false
	}
	hw := p.log.LogEndOffset()
	self := p.m.cfg.NodeID
	for _, id := range p.maximalISRLocked() {
		if id == self {
			continue
		}
		fs := p.mu.followers[id]
		if fs == nil || fs.leo < 0 {
			return false
		}
		hw = min(hw, fs.leo)
	}
	if hw <= p.log.HighWatermark() {
		return false
	}
	p.log.SetHighWatermark(hw)
	return true
}

// outOfSyncLocked lists the ISR followers that have not caught up for
// ReplicaLagTimeMax (Kafka's getOutOfSyncReplicas): one whose log end
// equals the leader's is in sync however long ago it fetched.
func (p *Partition) outOfSyncLocked(now time.Time) []int32 {
	leo := p.log.LogEndOffset()
	var out []int32
	for _, id := range p.mu.st.ISR {
		if id == p.m.cfg.NodeID {
			continue
		}
		fs := p.mu.followers[id]
		if fs == nil {
			out = append(out, id)
			continue
		}
		if fs.leo != leo && now.Sub(fs.lastCaughtUp) > p.m.cfg.ReplicaLagTimeMax {
			out = append(out, id)
		}
	}
	return out
}

// maybeShrinkISR proposes to drop lagging followers from the ISR; the
// Manager's loop calls it for every partition.
func (p *Partition) maybeShrinkISR() {
	p.mu.Lock()
	var alter *alterReq
	now := p.m.cfg.Now()
	if p.mu.role == roleLeader && p.mu.pendingISR == nil && p.alterAllowedLocked() {
		if out := p.outOfSyncLocked(now); len(out) > 0 {
			isr := slices.DeleteFunc(slices.Clone(p.mu.st.ISR), func(id int32) bool { return slices.Contains(out, id) })
			p.m.cfg.Logger.Info("shrinking ISR", "topic", p.topic, "partition", p.index, "from", p.mu.st.ISR, "to", isr,
				"leader_epoch", p.mu.st.LeaderEpoch, "hw", p.log.HighWatermark(), "leo", p.log.LogEndOffset())
			alter = p.proposeLocked(isr)
		}
	}
	p.mu.Unlock()
	if alter != nil {
		p.m.sendAlter(p, *alter)
	}
}

// alterAllowedLocked: no refused change waiting for an Apply, and no
// retry backoff running (real time, like the fetchers' backoffs).
func (p *Partition) alterAllowedLocked() bool {
	return !p.mu.alterHeld && !time.Now().Before(p.mu.alterRetry)
}

// alterReq is an AlterPartition in flight with the generation it was
// made in.
type alterReq struct {
	req AlterPartitionRequest
	gen uint64
}

func (p *Partition) proposeLocked(isr []int32) *alterReq {
	p.mu.pendingISR = isr
	return &alterReq{
		gen: p.mu.gen,
		req: AlterPartitionRequest{
			Topic: p.topic, TopicID: p.topicID, Partition: p.index,
			Leader: p.m.cfg.NodeID, LeaderEpoch: p.mu.st.LeaderEpoch,
			PartitionEpoch: p.mu.st.PartitionEpoch, ISR: slices.Clone(isr),
		},
	}
}

// alterDone takes an AlterPartition's answer: a committed state updates
// the ISR (if Apply has not already), a refusal for a stale view holds
// further changes until the next Apply, an ineligible member or an
// unreachable controller is retried after FetchBackoff. It reports whether the HW moved or the ISR changed.
func (p *Partition) alterDone(a alterReq, st State, err error) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.gen != a.gen || p.mu.role != roleLeader {
		return false
	}
	if p.mu.st.PartitionEpoch != a.req.PartitionEpoch {
		// An Apply replaced the state this change was proposed on (it
		// cleared the pending ISR then): the answer is about the past.
		// Holding for a further Apply on a refusal here would wait for
		// an update that has already come.
		return false
	}
	p.mu.pendingISR = nil
	if err != nil {
		var ke *tributary.Error
		switch {
		case errors.Is(err, tributary.ErrIneligibleReplica) || errors.Is(err, tributary.ErrOperationNotAttempted):
			// Nothing about the partition is stale: a new member is
			// still fenced (its registration is not unfenced yet) or the
			// controller was busy. Kafka tries again on the follower's
			// next fetch; no partition change is coming to wait for, so
			// holding for an Apply would leave the replica out of the
			// ISR until something unrelated moved the partition.
			p.mu.alterRetry = time.Now().Add(p.m.cfg.FetchBackoff)
			p.m.cfg.Logger.Info("AlterPartition not accepted yet; trying again",
				"topic", p.topic, "partition", p.index, "isr", a.req.ISR, "err", err)
		case errors.As(err, &ke):
			p.mu.alterHeld = true
			p.m.cfg.Logger.Warn("AlterPartition refused; waiting for the next metadata update",
				"topic", p.topic, "partition", p.index, "isr", a.req.ISR, "err", err)
		default:
			p.mu.alterRetry = time.Now().Add(p.m.cfg.FetchBackoff)
			p.m.cfg.Logger.Warn("AlterPartition failed; retrying", "topic", p.topic, "partition", p.index, "err", err)
		}
		return false
	}
	if st.LeaderEpoch != p.mu.st.LeaderEpoch || st.Leader != p.m.cfg.NodeID {
		return false // a newer Apply decides
	}
	if st.PartitionEpoch > p.mu.st.PartitionEpoch {
		p.mu.st = st.clone()
		p.syncFollowersLocked()
	}
	p.maybeIncrementHWLocked()
	return true
}

// syncFollowersLocked gives every replica but this node a follower state
// (new replicas of a reassignment start unknown) and forgets removed ones.
func (p *Partition) syncFollowersLocked() {
	self := p.m.cfg.NodeID
	for id := range p.mu.followers {
		if !slices.Contains(p.mu.st.Replicas, id) {
			delete(p.mu.followers, id)
		}
	}
	for _, id := range p.mu.st.Replicas {
		if id != self && p.mu.followers[id] == nil {
			p.mu.followers[id] = &followerState{leo: -1, lastFetchLeaderLEO: -1}
		}
	}
}
