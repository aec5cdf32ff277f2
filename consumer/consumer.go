package consumer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/client"
	"github.com/tributary/tributary/internal/clientx"
)

// Special offsets for AssignOffsets and Seek.
const (
	// Latest starts at the partition's end (its high watermark, or last
	// stable offset with ReadCommitted): Kafka's ListOffsets -1.
	Latest int64 = -1
	// Earliest starts at the partition's log start offset: ListOffsets -2.
	Earliest int64 = -2
	// Committed starts at the group's committed offset, or where
	// AutoOffsetReset says when there is none. Assign uses it; without a
	// Group it means AutoOffsetReset.
	Committed int64 = -3

	// offsetReset is "apply AutoOffsetReset": after OFFSET_OUT_OF_RANGE
	// or with no committed offset.
	offsetReset int64 = -4
)

var (
	// ErrClosed is returned by Poll and commits after Close. It is
	// client.ErrClosed, so either name matches.
	ErrClosed = client.ErrClosed
	// ErrNoOffset is returned by Poll, with ResetNone, for a partition
	// that has no committed offset; the partition stays stopped until
	// Seek gives it a position (Java: NoOffsetForPartitionException).
	ErrNoOffset = errors.New("consumer: no committed offset and AutoOffsetReset is none")
	// ErrNotAssigned is returned for operations on partitions the
	// consumer does not own.
	ErrNotAssigned = errors.New("consumer: partition not assigned")
	// ErrNoGroup is returned by commits and CommittedOffsets without a
	// Group.
	ErrNoGroup = errors.New("consumer: no group configured")
)

// Consumer reads records from Kafka, either from partitions assigned by
// hand (Assign) or as a member of a consumer group (Topics, Subscribe). It
// is safe for concurrent use, but records are meant to be polled from one
// goroutine: Poll hands out each record once.
//
// Goroutines: one fetcher per broker leading an assigned partition, one
// offset resolver, one metadata watcher, and with a group subscription the
// group loop and the auto-committer. Close stops them all and waits.
type Consumer struct {
	cfg       cfg
	cl        *client.Client
	ownClient bool

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	// mu guards the fields below it. It is never held across I/O or
	// user callbacks. Lock order: Consumer.mu before Client.mu; under mu
	// only client calls that take nothing but the client's own mutex
	// (CachedMetadata, TriggerMetadataRefresh) are made.
	mu sync.Mutex
	// closing is set when Close starts: Poll, Assign and Subscribe
	// refuse from then on. closed is set once Close has made its final
	// commit (so OnRevoked may still commit while the member leaves):
	// commits refuse from then on.
	closing     bool
	closed      bool
	parts       map[tributary.TopicPartition]*partState
	order       []*partState // parts, in a stable order for fair Poll
	cursor      int          // where the next Poll starts in order
	buffered    int64        // record bytes fetched and not yet polled
	errs        []error      // for Poll, oldest first (bounded)
	changed     chan struct{}
	fetchers    map[int32]bool
	topics      []string // group subscription
	groupOn     bool     // the group loop runs
	memberID    string
	generation  int32
	protocol    string
	rejoin      chan struct{} // buffered(1): ask the group loop to rejoin
	autoCommits int64         // auto-commits done, for tests
	async       asyncCommits

	coord    coordState
	commitMu sync.Mutex // serializes OffsetCommit requests

	// The group loop: groupCancel stops it, groupDone is closed when it
	// has returned, and member is its state, touched by no one else
	// until groupDone is closed.
	groupCancel context.CancelFunc
	groupDone   chan struct{}
	member      *groupMember
}

// partState is one assigned partition. Guarded by Consumer.mu.
type partState struct {
	tp tributary.TopicPartition
	// offset is the next offset to fetch, or a negative sentinel
	// (Latest, Earliest, Committed, offsetReset) while unknown.
	offset int64
	// position is the next offset Poll returns, -1 while unknown.
	position int64
	// epoch is bumped whenever offset is set from outside the fetch
	// path (Seek, reset, reassignment); fetch and resolve results
	// carry the epoch they started with and are dropped if it moved.
	epoch       uint64
	leader      int32 // -1 while unknown
	leaderEpoch int32 // from metadata, -1 unknown
	inflight    bool  // a fetch or resolve is outstanding
	paused      bool
	held        bool // assigned, OnAssigned running: not fetched yet
	stopped     bool // ResetNone hit; waits for Seek
	hw, lso     int64
	buf         []chunk
	committed   int64 // last offset this consumer committed or fetched as committed, -1 none
	removed     bool
}

// chunk is the records of one fetch of one partition, not yet polled.
type chunk struct {
	recs  []*tributary.Record
	next  int64 // the position after the chunk's last record
	bytes int64 // batch bytes, for the buffer bound
}

const maxQueuedErrs = 64

// New creates a consumer. With Topics it starts joining the group at once;
// otherwise it does nothing until Assign or Subscribe.
func New(opts ...Opt) (*Consumer, error) {
	c := defaultCfg()
	for _, o := range opts {
		if o.apply != nil {
			o.apply(&c)
		}
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	cons := &Consumer{
		cfg:        c,
		cl:         c.client,
		parts:      make(map[tributary.TopicPartition]*partState),
		changed:    make(chan struct{}),
		fetchers:   make(map[int32]bool),
		generation: -1,
		rejoin:     make(chan struct{}, 1),
		coord:      coordState{id: -1},
	}
	if cons.cl == nil {
		cl, err := client.New(c.clientOpts...)
		if err != nil {
			return nil, err
		}
		cons.cl, cons.ownClient = cl, true
	}
	cons.ctx, cons.cancel = context.WithCancel(context.Background())
	cons.goTracked(cons.resolveLoop)
	cons.goTracked(cons.metadataLoop)
	if c.group != "" && c.autoCommit {
		cons.goTracked(cons.autoCommitLoop)
	}
	if len(c.topics) > 0 {
		cons.mu.Lock()
		cons.startGroupLocked(c.topics)
		cons.mu.Unlock()
	}
	return cons, nil
}

// goTracked runs fn on a goroutine that Close waits for.
func (c *Consumer) goTracked(fn func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
}

// notifyLocked wakes everything waiting for a state change: fetchers,
// the resolver and Poll.
func (c *Consumer) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// pushErrLocked queues err for Poll, dropping the oldest beyond a bound.
func (c *Consumer) pushErrLocked(err error) {
	if len(c.errs) >= maxQueuedErrs {
		c.errs = slices.Delete(c.errs, 0, 1)
	}
	c.errs = append(c.errs, err)
	c.notifyLocked()
}

// Client returns the client the consumer uses.
func (c *Consumer) Client() *client.Client { return c.cl }

// Assign consumes partitions by hand, in addition to those already
// assigned by hand. Each starts at the group's committed offset when a
// Group is set, else (or without a committed offset) where AutoOffsetReset
// says. Assign cannot be mixed with a group subscription.
func (c *Consumer) Assign(tps ...tributary.TopicPartition) error {
	m := make(map[tributary.TopicPartition]int64, len(tps))
	for _, tp := range tps {
		m[tp] = Committed
	}
	return c.AssignOffsets(m)
}

// AssignOffsets consumes partitions by hand from the given offsets, which
// may be Earliest, Latest or Committed. A partition already assigned moves
// to its new offset, as with Seek.
func (c *Consumer) AssignOffsets(offsets map[tributary.TopicPartition]int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return ErrClosed
	}
	if c.groupOn {
		return errors.New("consumer: Assign cannot be used with a group subscription")
	}
	var topics []string
	for tp, off := range offsets {
		if off < Committed {
			return fmt.Errorf("consumer: invalid offset %d for %s[%d]", off, tp.Topic, tp.Partition)
		}
		topics = append(topics, tp.Topic)
	}
	for tp, off := range offsets {
		c.assignLocked(tp, off)
	}
	c.notifyLocked()
	c.cl.TriggerMetadataRefresh(slices.Compact(slices.Sorted(slices.Values(topics)))...)
	return nil
}

// Unassign stops consuming partitions; their buffered records are dropped.
// Nil stops all manually assigned partitions.
func (c *Consumer) Unassign(tps ...tributary.TopicPartition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if tps == nil {
		tps = slices.Collect(maps.Keys(c.parts))
	}
	c.removeLocked(tps)
	c.notifyLocked()
}

func (c *Consumer) assignLocked(tp tributary.TopicPartition, off int64) {
	if off == Committed && c.cfg.group == "" {
		off = offsetReset
	}
	p := c.parts[tp]
	if p == nil {
		p = &partState{tp: tp, leader: -1, leaderEpoch: -1, hw: -1, lso: -1, committed: -1}
		c.parts[tp] = p
		c.order = append(c.order, p)
	} else {
		c.dropBufferLocked(p)
	}
	p.epoch++
	p.offset = off
	p.position = -1
	if off >= 0 {
		p.position = off
	}
	p.stopped = false
	if off == offsetReset && c.cfg.reset == ResetNone {
		p.stopped = true
		c.pushErrLocked(fmt.Errorf("%w: %s[%d]", ErrNoOffset, tp.Topic, tp.Partition))
	}
	c.routeLocked(p, c.cl.CachedMetadata())
}

func (c *Consumer) removeLocked(tps []tributary.TopicPartition) {
	for _, tp := range tps {
		p := c.parts[tp]
		if p == nil {
			continue
		}
		c.dropBufferLocked(p)
		p.removed = true
		p.epoch++
		delete(c.parts, tp)
	}
	c.order = slices.DeleteFunc(c.order, func(p *partState) bool { return p.removed })
}

func (c *Consumer) dropBufferLocked(p *partState) {
	for _, ch := range p.buf {
		c.buffered -= ch.bytes
	}
	p.buf = nil
}

// Assignment returns the partitions the consumer currently owns, sorted.
func (c *Consumer) Assignment() []tributary.TopicPartition {
	c.mu.Lock()
	defer c.mu.Unlock()
	return sortedTPs(slices.Collect(maps.Keys(c.parts)))
}

func sortedTPs(tps []tributary.TopicPartition) []tributary.TopicPartition {
	slices.SortFunc(tps, compareTP)
	return tps
}

func compareTP(a, b tributary.TopicPartition) int {
	if a.Topic != b.Topic {
		if a.Topic < b.Topic {
			return -1
		}
		return 1
	}
	return int(a.Partition) - int(b.Partition)
}

// Poll returns the next records: up to MaxPollRecords, from the buffered
// fetches of several partitions, each partition's records in offset order.
// It blocks until records arrive, an error is queued, or ctx ends. Records
// come only with a nil error, and an error only with no records, so a loop
// may stop at any error without dropping records it was given:
//
//   - ctx.Err() once ctx is done, even when records are buffered, so a
//     loop stops at once on shutdown (their positions do not move, and
//     they are not committed);
//   - ErrClosed once Close has begun;
//   - otherwise an error that concerns one partition (an authorization
//     failure, AutoOffsetReset none) or the group, returned once, while
//     consumption of the other partitions goes on.
//
// Records are the caller's: the consumer never reuses their memory.
func (c *Consumer) Poll(ctx context.Context) ([]*tributary.Record, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c.mu.Lock()
		if c.closing {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		if len(c.errs) > 0 {
			err := c.errs[0]
			c.errs = slices.Delete(c.errs, 0, 1)
			c.mu.Unlock()
			return nil, err
		}
		if recs := c.takeLocked(); len(recs) > 0 {
			c.mu.Unlock()
			return recs, nil
		}
		wait := c.changed
		c.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.ctx.Done():
			return nil, ErrClosed
		}
	}
}

// takeLocked takes up to MaxPollRecords buffered records, going round the
// partitions from where the last Poll stopped so none starves.
func (c *Consumer) takeLocked() []*tributary.Record {
	if c.buffered == 0 && !c.anyBufferedLocked() {
		return nil
	}
	limit := c.cfg.maxPollRecords
	var out []*tributary.Record
	n := len(c.order)
	wasFull := c.buffered >= c.cfg.maxBufferedBytes
	for i := 0; i < n && len(out) < limit; i++ {
		p := c.order[(c.cursor+i)%n]
		if p.paused {
			continue
		}
		for len(p.buf) > 0 && len(out) < limit {
			ch := &p.buf[0]
			k := min(len(ch.recs), limit-len(out))
			want := 0
			if out == nil {
				want = min(limit, c.countBufferedLocked())
			}
			if out == nil && k >= want {
				// This chunk alone makes up the whole Poll (the usual
				// case: a fetch brings thousands of records per
				// partition), so hand out its records as they are
				// rather than copying them into a new slice every
				// Poll. The capacity is cut at k so that an append by
				// the caller reallocates instead of overwriting the
				// records after them, which the consumer still holds;
				// it never writes to the slice after this.
				out = ch.recs[:k:k]
			} else {
				if out == nil {
					out = make([]*tributary.Record, 0, want)
				}
				out = append(out, ch.recs[:k]...)
			}
			ch.recs = ch.recs[k:]
			if len(ch.recs) > 0 {
				p.position = ch.recs[0].Offset
				break
			}
			p.position = ch.next
			c.buffered -= ch.bytes
			p.buf[0] = chunk{}
			p.buf = p.buf[1:]
		}
		if len(out) >= limit {
			c.cursor = (c.cursor + i + 1) % n
		}
	}
	if wasFull && c.buffered < c.cfg.maxBufferedBytes {
		c.notifyLocked()
	}
	return out
}

func (c *Consumer) anyBufferedLocked() bool {
	for _, p := range c.order {
		if len(p.buf) > 0 && !p.paused {
			return true
		}
	}
	return false
}

func (c *Consumer) countBufferedLocked() int {
	n := 0
	for _, p := range c.order {
		if p.paused {
			continue
		}
		for _, ch := range p.buf {
			n += len(ch.recs)
		}
		if n >= c.cfg.maxPollRecords {
			break
		}
	}
	return n
}

// Seek moves a partition's position: the next records Poll returns for it
// start at offset (or Earliest, Latest, Committed). Buffered records of
// the partition are dropped. A partition stopped by AutoOffsetReset none
// resumes.
func (c *Consumer) Seek(tp tributary.TopicPartition, offset int64) error {
	if offset < Committed {
		return fmt.Errorf("consumer: invalid offset %d", offset)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.parts[tp] == nil {
		return fmt.Errorf("%w: %s[%d]", ErrNotAssigned, tp.Topic, tp.Partition)
	}
	c.assignLocked(tp, offset)
	c.notifyLocked()
	return nil
}

// Pause stops fetching partitions and returning their records; their
// positions are kept. Records already buffered for them are dropped (and
// fetched again after Resume), so paused partitions cannot hold the
// buffer and starve the others. Partitions not assigned are ignored. A
// pause lasts until Resume or until the partition is revoked.
func (c *Consumer) Pause(tps ...tributary.TopicPartition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tp := range tps {
		p := c.parts[tp]
		if p == nil || p.paused {
			continue
		}
		p.paused = true
		if len(p.buf) > 0 && p.position >= 0 {
			c.dropBufferLocked(p)
			p.epoch++ // a fetch in flight would append after the rewind
			p.offset = p.position
		}
	}
	c.notifyLocked()
}

// Resume undoes Pause.
func (c *Consumer) Resume(tps ...tributary.TopicPartition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tp := range tps {
		if p := c.parts[tp]; p != nil {
			p.paused = false
		}
	}
	c.notifyLocked()
}

// Paused returns the paused partitions, sorted.
func (c *Consumer) Paused() []tributary.TopicPartition {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []tributary.TopicPartition
	for tp, p := range c.parts {
		if p.paused {
			out = append(out, tp)
		}
	}
	return sortedTPs(out)
}

// Position returns the offset of the next record Poll will return for tp,
// or -1 while it is not known yet (the starting offset is being looked up).
func (c *Consumer) Position(tp tributary.TopicPartition) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.parts[tp]
	if p == nil {
		return -1, fmt.Errorf("%w: %s[%d]", ErrNotAssigned, tp.Topic, tp.Partition)
	}
	return p.position, nil
}

// Lag returns, for every assigned partition whose position and high
// watermark are known, high watermark minus position: how many records
// Poll has yet to return. The high watermark comes from the latest fetch
// response, so it is as fresh as the last fetch.
func (c *Consumer) Lag() map[tributary.TopicPartition]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[tributary.TopicPartition]int64, len(c.parts))
	for tp, p := range c.parts {
		if p.position < 0 || p.hw < 0 {
			continue
		}
		end := p.hw
		if c.cfg.isolation == ReadCommitted && p.lso >= 0 {
			end = p.lso
		}
		out[tp] = max(end-p.position, 0)
	}
	return out
}

// positionsLocked returns the known positions of owned partitions.
func (c *Consumer) positionsLocked() map[tributary.TopicPartition]int64 {
	out := make(map[tributary.TopicPartition]int64, len(c.parts))
	for tp, p := range c.parts {
		if p.position >= 0 {
			out[tp] = p.position
		}
	}
	return out
}

// Close stops the consumer and waits for it:
//
//  1. Poll, Assign and Subscribe return ErrClosed from the start;
//  2. asynchronous commits already made are sent and their callbacks run
//     (as Java's close does);
//  3. with AutoCommit, the positions of all partitions, that is every
//     record Poll returned, are committed (as Java's close does); without
//     it nothing is, so commit before Close (see the package doc);
//  4. a group member calls OnRevoked and, if dynamic, leaves the group so
//     it rebalances at once (a static member stays, so a restart within
//     SessionTimeout keeps its partitions);
//  5. Commit, CommitOffsets and CommitAsync return ErrClosed from then
//     on, and every goroutine is stopped and waited for.
//
// ctx bounds steps 2 to 4: give Close a fresh context, not the one whose
// end triggered the shutdown, or nothing can be committed. Close returns
// the final commit's error, if any; calling it again returns the same.
func (c *Consumer) Close(ctx context.Context) error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closing = true
		group := c.groupOn
		c.notifyLocked()
		c.mu.Unlock()
		var errs []error
		if err := c.waitAsyncCommits(ctx); err != nil {
			errs = append(errs, err)
		}
		if group {
			if err := c.leaveGroup(ctx); err != nil {
				errs = append(errs, err)
			}
		} else if c.cfg.group != "" && c.cfg.autoCommit {
			if err := c.commitPositions(ctx, nil); err != nil && !errors.Is(err, errNothingToCommit) {
				errs = append(errs, err)
			}
		}
		c.mu.Lock()
		c.closed = true
		c.notifyLocked()
		c.mu.Unlock()
		c.cancel()
		c.wg.Wait()
		if c.ownClient {
			c.cl.Close()
		}
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

// sleep waits d or until the consumer closes; false means closed.
func (c *Consumer) sleep(d time.Duration) bool {
	return clientx.Sleep(c.ctx, d) == nil
}
