package group

import (
	"container/heap"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// Ref identifies a request whose response may be delivered later through
// the outbox. The caller chooses it (for example connection id and
// correlation id) and must keep it unique among requests in flight.
type Ref uint64

// Client describes the connection a JoinGroup came from; Kafka keeps both
// in the member's description (DescribeGroups) and in __consumer_offsets.
type Client struct {
	ID   string // the request header's client id
	Host string // the peer address, as Kafka shows it ("/10.0.0.1")
}

// Reply is a response the coordinator parked and has now completed.
type Reply struct {
	Ref      Ref
	Response kmsg.Response
}

// Record is one record to append to __consumer_offsets. A nil Value is a
// tombstone: the key's previous value is deleted (and compaction will drop
// it).
//
// ProducerID is -1 for an ordinary record. A record of a TxnOffsetCommit
// carries the producer id and epoch of the transaction: the owner appends
// it in a transactional batch of that producer, and the transaction's
// marker later decides whether it counts (CompleteTxn).
type Record struct {
	Partition     int32 // the __consumer_offsets partition: Partition(group, OffsetsTopicPartitions)
	Key           []byte
	Value         []byte
	ProducerID    int64
	ProducerEpoch int16
}

// newRecord is an ordinary (non-transactional) record: Kafka writes those
// in batches without a producer, id and epoch -1.
func newRecord(partition int32, key, value []byte) Record {
	return Record{Partition: partition, Key: key, Value: value, ProducerID: -1, ProducerEpoch: -1}
}

// Output is what a step of the coordinator produced: records to append
// first, then replies to send.
type Output struct {
	Records []Record
	Replies []Reply
}

// Coordinator holds the classic groups of the __consumer_offsets
// partitions this broker leads. It is not safe for concurrent use.
type Coordinator struct {
	cfg Config

	groups map[string]*group

	// timers orders groups by their earliest deadline. A group is pushed
	// when its deadline moves earlier than the one already queued; entries
	// whose time no longer matches the group's queued time are stale and
	// skipped, so heartbeats (which move deadlines later) cost nothing.
	timers timerHeap

	// nextExpiry is when the offset expiry pass runs next (ms since the
	// epoch); 0 until the coordinator first sees the time.
	nextExpiry int64

	// seq numbers offset records in log order: every offset record this
	// coordinator writes or loads takes the next number. A transactional
	// offset replaces the committed one at its commit marker only if its
	// record came later in the log (Kafka compares record offsets).
	seq uint64

	out Output
}

// New returns a Coordinator with no groups, after validating cfg.
func New(cfg Config) (*Coordinator, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Coordinator{cfg: cfg, groups: make(map[string]*group)}, nil
}

// Drain returns and clears everything produced since the last Drain:
// records to append to __consumer_offsets, then replies to parked requests.
// The outbox only empties here, so the owner drains after every call.
func (c *Coordinator) Drain() Output {
	out := c.out
	c.out = Output{}
	return out
}

// NextDeadline returns when Tick must next be called, and false when no
// timer is pending.
func (c *Coordinator) NextDeadline() (time.Time, bool) {
	for len(c.timers) > 0 {
		top := c.timers[0]
		g := c.groups[top.group]
		if g == nil || g.queuedAt != top.at {
			heap.Pop(&c.timers) // stale
			continue
		}
		at := top.at
		if c.nextExpiry != 0 && c.nextExpiry < at {
			at = c.nextExpiry
		}
		return time.UnixMilli(at), true
	}
	if c.nextExpiry != 0 {
		return time.UnixMilli(c.nextExpiry), true
	}
	return time.Time{}, false
}

// Tick advances the coordinator's clock to now and fires every timer that
// is due: session timeouts, rebalance and sync timeouts, the initial
// rebalance delay and the offset expiry check.
func (c *Coordinator) Tick(now time.Time) {
	ms := now.UnixMilli()
	c.observe(ms)
	for len(c.timers) > 0 && c.timers[0].at <= ms {
		e := heap.Pop(&c.timers).(timerEntry)
		g := c.groups[e.group]
		if g == nil || g.queuedAt != e.at {
			continue
		}
		g.queuedAt = 0
		g.fire(ms)
		c.reschedule(g)
	}
	if ms >= c.nextExpiry {
		c.expireOffsets(ms)
		c.nextExpiry = ms + c.cfg.OffsetsRetentionCheckInterval.Milliseconds()
	}
}

// observe starts the offset expiry schedule the first time the coordinator
// learns the time.
func (c *Coordinator) observe(ms int64) {
	if c.nextExpiry == 0 {
		c.nextExpiry = ms + c.cfg.OffsetsRetentionCheckInterval.Milliseconds()
	}
}

// Loaded finishes loading: every member restored by Load gets a full
// session timeout from now to heartbeat, as Kafka does when a coordinator
// takes over a partition.
func (c *Coordinator) Loaded(now time.Time) {
	ms := now.UnixMilli()
	c.observe(ms)
	for _, id := range c.sortedGroupIDs() {
		g := c.groups[id]
		for _, m := range g.members {
			if m.deadline == 0 {
				m.deadline = ms + int64(m.sessionTimeoutMs)
			}
		}
		if len(g.members) > c.cfg.MaxSize && (g.state == stateStable || g.state == stateCompletingRebalance) {
			// group.max.size was lowered since this group formed: Kafka
			// rebalances it, and the join phase drops members past the
			// limit as they fail to rejoin.
			g.prepareRebalance(ms)
		}
		c.reschedule(g)
	}
}

// Unload forgets every group stored in the given __consumer_offsets
// partition, because this broker stopped leading it. Parked requests of
// those groups are answered NOT_COORDINATOR so their clients look up the
// new coordinator.
func (c *Coordinator) Unload(partition int32) {
	for _, id := range c.sortedGroupIDs() {
		g := c.groups[id]
		if g.partition != partition {
			continue
		}
		for _, m := range g.ordered() {
			g.failParked(m, tributary.ErrNotCoordinator)
		}
		delete(c.groups, id)
	}
}

// Groups returns the ids of all groups the coordinator holds, sorted.
func (c *Coordinator) Groups() []string { return c.sortedGroupIDs() }

func (c *Coordinator) sortedGroupIDs() []string {
	ids := make([]string, 0, len(c.groups))
	for id := range c.groups {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// getOrCreate returns the group, creating an empty one when create is set.
func (c *Coordinator) getOrCreate(id string, create bool) (g *group, created bool) {
	if g = c.groups[id]; g != nil || !create {
		return g, false
	}
	g = &group{
		c:         c,
		id:        id,
		partition: Partition(id, c.cfg.OffsetsTopicPartitions),
		state:     stateEmpty,
		members:   make(map[string]*member),
		static:    make(map[string]string),
		pending:   make(map[string]int64),
		supported: make(map[string]int),
		offsets:   make(map[string]map[int32]*offset),
		txns:      make(map[int64]*txnOffsets),
	}
	c.groups[id] = g
	return g, true
}

// dropIfUnused removes a group that a failed request created and left with
// nothing in it, so failed joins do not leave empty groups behind.
func (c *Coordinator) dropIfUnused(g *group) {
	if g.state == stateEmpty && g.generation == 0 && len(g.members) == 0 &&
		len(g.pending) == 0 && len(g.offsets) == 0 && len(g.txns) == 0 && g.protocolType == "" {
		delete(c.groups, g.id)
	}
}

// reschedule queues the group's earliest deadline if it is earlier than
// the one already queued.
func (c *Coordinator) reschedule(g *group) {
	at := g.nextDeadline()
	if at == 0 {
		return
	}
	if g.queuedAt != 0 && g.queuedAt <= at {
		return
	}
	g.queuedAt = at
	heap.Push(&c.timers, timerEntry{at: at, group: g.id})
}

func (c *Coordinator) reply(ref Ref, resp kmsg.Response) {
	c.out.Replies = append(c.out.Replies, Reply{Ref: ref, Response: resp})
}

func (c *Coordinator) record(r Record) { c.out.Records = append(c.out.Records, r) }

func (c *Coordinator) nextSeq() uint64 {
	c.seq++
	return c.seq
}

type timerEntry struct {
	at    int64
	group string
}

type timerHeap []timerEntry

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].group < h[j].group // deterministic order for equal times
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)   { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
