package replica

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/tributary/tributary/broker/storage"
)

// Manager hosts this node's partition replicas (Kafka's ReplicaManager).
type Manager struct {
	cfg    Config
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the Manager started

	mu struct {
		sync.Mutex
		closed     bool
		partitions map[*Partition]struct{}
		fetchers   map[int32]*fetcher // by leader node id
	}
}

// New validates cfg and starts the Manager's background loop (ISR shrink
// checks and HW checkpoints).
func New(cfg Config) (*Manager, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.mu.partitions = make(map[*Partition]struct{})
	m.mu.fetchers = make(map[int32]*fetcher)
	m.goTracked(m.loop)
	return m, nil
}

// goTracked runs f on a goroutine Close waits for. Callers other than
// New hold m.mu and have checked that the Manager is not closed.
func (m *Manager) goTracked(f func()) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		f()
	}()
}

// Close stops every fetcher, the background loop and in-flight
// AlterPartition calls, and waits for them. Partitions keep their logs
// (the broker closes those) with the HW checkpointed one last time.
func (m *Manager) Close() {
	m.mu.Lock()
	if m.mu.closed {
		m.mu.Unlock()
		return
	}
	m.mu.closed = true
	for _, f := range m.mu.fetchers {
		f.stop()
	}
	m.mu.fetchers = nil
	parts := m.partitionsLocked()
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	for _, p := range parts {
		if err := p.log.CheckpointHighWatermark(); err != nil {
			m.cfg.Logger.Debug("HW checkpoint at close", "topic", p.topic, "partition", p.index, "err", err)
		}
	}
}

func (m *Manager) partitionsLocked() []*Partition {
	ps := make([]*Partition, 0, len(m.mu.partitions))
	for p := range m.mu.partitions {
		ps = append(ps, p)
	}
	return ps
}

// Add hosts a partition whose log this node keeps. It has no role until
// the first Apply.
func (m *Manager) Add(topic string, topicID [16]byte, index int32, log *storage.Log) *Partition {
	p := &Partition{m: m, topic: topic, topicID: topicID, index: index, log: log}
	p.mu.epochStart = -1
	m.mu.Lock()
	m.mu.partitions[p] = struct{}{}
	m.mu.Unlock()
	return p
}

// Remove stops replicating p (no more fetches or appends on its log once
// it returns) and forgets it. The broker closes or deletes the log.
func (m *Manager) Remove(p *Partition) {
	m.remove(p)
	m.hwMoved(p) // parked requests re-check and find no leader
}

func (m *Manager) remove(p *Partition) {
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	p.roleMu.Lock()
	p.mu.Lock()
	p.mu.removed = true
	p.mu.role = roleNone
	p.mu.gen++
	p.mu.pendingISR = nil
	p.mu.Unlock()
	p.roleMu.Unlock()
	m.mu.Lock()
	m.unfollowLocked(p)
	delete(m.mu.partitions, p)
	m.mu.Unlock()
}

// Apply brings p to the controller's state st. It is idempotent and
// ignores states older than the one applied (a lower leader epoch, or the
// same one with a lower partition epoch).
//
//   - Leader (st.Leader is this node) in a new epoch: the epoch starts at
//     the log end in the epoch cache, every follower's log end is
//     unknown until it fetches (so the HW holds), ISR followers count as
//     caught up now.
//   - Follower in a new epoch or of a new leader: leadership stops, the
//     partition goes to the leader's fetcher, which first truncates a
//     divergent tail (OffsetForLeaderEpoch) and then fetches.
//   - Not in st.Replicas: replication of p stops.
//
// The same epoch with a new partition epoch only updates the ISR and
// replicas (and lets a refused AlterPartition be tried again).
func (m *Manager) Apply(p *Partition, st State) {
	if m.apply(p, st) {
		m.hwMoved(p)
	}
}

// apply does Apply's work under applyMu and reports whether anything
// changed, for the callback that runs after it with no lock held.
func (m *Manager) apply(p *Partition, st State) bool {
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	st = st.clone()
	self := m.cfg.NodeID
	newRole := roleNone
	switch {
	case st.Leader == self:
		newRole = roleLeader
	case slices.Contains(st.Replicas, self):
		newRole = roleFollower
	}

	p.mu.Lock()
	if p.mu.removed {
		p.mu.Unlock()
		return false
	}
	cur := p.mu.st
	if p.mu.hasState && (st.LeaderEpoch < cur.LeaderEpoch ||
		(st.LeaderEpoch == cur.LeaderEpoch && st.PartitionEpoch < cur.PartitionEpoch)) {
		p.mu.Unlock()
		m.cfg.Logger.Debug("ignoring stale partition state", "topic", p.topic, "partition", p.index,
			"leader_epoch", st.LeaderEpoch, "partition_epoch", st.PartitionEpoch, "current", cur.LeaderEpoch)
		return false
	}
	if p.mu.hasState && st.LeaderEpoch == cur.LeaderEpoch && st.Leader == cur.Leader && newRole == p.mu.role {
		// Same leadership: ISR, replicas, reassignment changes.
		if st.PartitionEpoch != cur.PartitionEpoch {
			p.mu.pendingISR = nil
		}
		p.mu.alterHeld = false
		p.mu.st = st
		if newRole == roleLeader {
			p.syncFollowersLocked()
			p.maybeIncrementHWLocked()
		}
		p.mu.Unlock()
		return true
	}
	p.mu.Unlock()

	// A role or epoch change: wait for appends in progress under the old
	// role, and fence the fetcher's later work by the generation.
	p.roleMu.Lock()
	p.mu.Lock()
	p.mu.gen++
	gen := p.mu.gen
	p.mu.hasState = true
	p.mu.st = st
	p.mu.role = newRole
	p.mu.pendingISR = nil
	p.mu.alterHeld = false
	p.mu.alterRetry = time.Time{}
	p.mu.followers = nil
	p.mu.epochStart = -1
	// From now on appends never move the HW by themselves: replication
	// does (a single-replica log's HW followed its appends until now).
	p.log.SetHighWatermark(p.log.HighWatermark())
	if newRole == roleLeader {
		leo := p.log.LogEndOffset()
		if err := p.log.AssignEpochStartOffset(st.LeaderEpoch, leo); err != nil {
			m.cfg.Logger.Error("recording leader epoch start", "topic", p.topic, "partition", p.index, "err", err)
		}
		p.mu.epochStart = leo
		p.mu.followers = make(map[int32]*followerState)
		p.syncFollowersLocked()
		now := m.cfg.Now()
		for _, id := range st.ISR {
			if fs := p.mu.followers[id]; fs != nil {
				fs.lastCaughtUp = now
			}
		}
		p.maybeIncrementHWLocked()
	}
	p.mu.Unlock()
	p.roleMu.Unlock()
	m.cfg.Logger.Info("partition role", "topic", p.topic, "partition", p.index, "role", newRole,
		"leader", st.Leader, "leader_epoch", st.LeaderEpoch, "isr", st.ISR,
		"leo", p.log.LogEndOffset(), "hw", p.log.HighWatermark())

	m.mu.Lock()
	m.unfollowLocked(p)
	if newRole == roleFollower && st.Leader >= 0 && !m.mu.closed {
		m.followLocked(p, st.Leader, st.LeaderEpoch, gen)
	}
	m.mu.Unlock()
	return true
}

// followLocked adds p to the fetcher of leader, starting it if needed.
func (m *Manager) followLocked(p *Partition, leader, leaderEpoch int32, gen uint64) {
	f := m.mu.fetchers[leader]
	if f == nil {
		f = newFetcher(m, leader)
		m.mu.fetchers[leader] = f
		m.goTracked(f.run)
	}
	f.add(p, leaderEpoch, gen)
}

// unfollowLocked takes p out of whichever fetcher has it; a fetcher left
// with nothing stops.
func (m *Manager) unfollowLocked(p *Partition) {
	for id, f := range m.mu.fetchers {
		if f.remove(p) {
			delete(m.mu.fetchers, id)
			f.stop()
		}
	}
}

// hwMoved tells the broker that p's HW, role or ISR changed.
func (m *Manager) hwMoved(p *Partition) {
	if m.cfg.HighWatermarkMoved != nil {
		m.cfg.HighWatermarkMoved(p)
	}
}

// sendAlter sends an AlterPartition on its own goroutine (the caller
// marked it pending, so there is one per partition at a time).
func (m *Manager) sendAlter(p *Partition, a alterReq) {
	// The goroutine is counted under m.mu, where Close sets closed, so
	// none is added once Close waits.
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.closed {
		return
	}
	m.goTracked(func() {
		st, err := m.cfg.AlterPartition(m.ctx, a.req)
		if m.ctx.Err() != nil {
			return
		}
		if p.alterDone(a, st, err) {
			m.hwMoved(p)
		}
	})
}

// loop shrinks ISRs and checkpoints high watermarks.
func (m *Manager) loop() {
	isrTick := time.NewTicker(m.cfg.ISRCheckInterval)
	defer isrTick.Stop()
	hwTick := time.NewTicker(m.cfg.HighWatermarkCheckpointInterval)
	defer hwTick.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-isrTick.C:
			for _, p := range m.partitions() {
				p.maybeShrinkISR()
			}
		case <-hwTick.C:
			for _, p := range m.partitions() {
				if err := p.log.CheckpointHighWatermark(); err != nil {
					m.cfg.Logger.Warn("HW checkpoint failed", "topic", p.topic, "partition", p.index, "err", err)
				}
			}
		}
	}
}

func (m *Manager) partitions() []*Partition {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.partitionsLocked()
}
