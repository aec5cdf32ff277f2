package txn

import (
	"cmp"
	"errors"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/group"
)

// Partition returns the __transaction_state partition that holds
// transactionalID, and therefore which broker coordinates it: Kafka's
// Utils.abs(transactionalId.hashCode()) % transaction.state.log.num.partitions.
// It is the same function Kafka uses for group ids. n must be positive.
func Partition(transactionalID string, n int32) int32 { return group.Partition(transactionalID, n) }

// Ref identifies a request whose response is delivered through the
// outbox. Every transaction API answers synchronously today; Ref is kept
// so the owner's plumbing matches broker/group's.
type Ref uint64

// Record is one record to append to __transaction_state. A nil Value is a
// tombstone: the transactional id was expired.
type Record struct {
	Partition int32 // Partition(transactionalID, NumPartitions)
	Key       []byte
	Value     []byte
}

// TopicPartition names one partition of a transaction.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// MarkerJob asks the owner to write commit or abort markers for one
// transaction to every listed partition, then call MarkersWritten. The
// owner keeps retrying a partition until its marker is durable (or the
// partition no longer exists); it drops the job when it stops
// coordinating the transaction's __transaction_state partition.
type MarkerJob struct {
	TransactionalID  string
	ProducerID       int64
	ProducerEpoch    int16
	Commit           bool
	CoordinatorEpoch int32
	Partitions       []TopicPartition // sorted by topic, then partition
}

// Reply is a response to a request parked under Ref.
type Reply struct {
	Ref      Ref
	Response kmsg.Response
}

// Output is what a step of the coordinator produced: records to append
// durably first, then marker jobs to start and replies to send.
type Output struct {
	Records []Record
	Markers []MarkerJob
	Replies []Reply
}

// ErrMalformedRecord is returned by Load for a key or value that does not
// decode, or decodes to something Kafka never writes.
var ErrMalformedRecord = errors.New("malformed __transaction_state record")

// partitionState is what the coordinator knows of one __transaction_state
// partition: still loading (Load seen, Loaded not yet), or owned at a
// coordinator epoch.
type partitionState struct {
	loading bool
	epoch   int32
}

// Coordinator holds the transactional ids of the __transaction_state
// partitions this broker leads. It is not safe for concurrent use.
type Coordinator struct {
	cfg Config

	parts map[int32]*partitionState
	txns  map[string]*txn

	// Next runs of the periodic passes (ms since the epoch); 0 until the
	// coordinator first sees the time.
	nextAbortCheck int64
	nextExpiry     int64

	out Output
}

// New returns a Coordinator that owns no partition, after validating cfg.
func New(cfg Config) (*Coordinator, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Coordinator{cfg: cfg, parts: make(map[int32]*partitionState), txns: make(map[string]*txn)}, nil
}

// Drain returns and clears everything produced since the last Drain. The
// outbox only empties here, so the owner drains after every call.
func (c *Coordinator) Drain() Output {
	out := c.out
	c.out = Output{}
	return out
}

// Owns reports whether the partition is loaded and coordinated here.
func (c *Coordinator) Owns(partition int32) bool {
	p := c.parts[partition]
	return p != nil && !p.loading
}

// observe starts the periodic schedules the first time the coordinator
// learns the time.
func (c *Coordinator) observe(ms int64) {
	if c.nextAbortCheck == 0 {
		c.nextAbortCheck = ms + c.cfg.AbortCheckInterval.Milliseconds()
	}
	if c.nextExpiry == 0 {
		c.nextExpiry = ms + c.cfg.RemoveExpiredInterval.Milliseconds()
	}
}

// NextDeadline returns when Tick must next be called, and false before the
// coordinator has seen the time (nothing can be due then).
func (c *Coordinator) NextDeadline() (time.Time, bool) {
	if c.nextAbortCheck == 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(min(c.nextAbortCheck, c.nextExpiry)), true
}

// Tick advances the coordinator's clock to now and runs the passes that
// are due, as Kafka's scheduler does: every AbortCheckInterval, ongoing
// transactions older than their timeout are aborted with an epoch bump
// (the producer is fenced, as Kafka's abortTimedOutTransactions does);
// every RemoveExpiredInterval, transactional ids idle for ExpirationMs in
// Empty, CompleteCommit or CompleteAbort are forgotten (tombstone).
func (c *Coordinator) Tick(now time.Time) {
	ms := now.UnixMilli()
	c.observe(ms)
	if ms >= c.nextAbortCheck {
		c.abortTimedOut(ms)
		c.nextAbortCheck = ms + c.cfg.AbortCheckInterval.Milliseconds()
	}
	if ms >= c.nextExpiry {
		c.expireIDs(ms)
		c.nextExpiry = ms + c.cfg.RemoveExpiredInterval.Milliseconds()
	}
}

func (c *Coordinator) abortTimedOut(ms int64) {
	for _, id := range c.sortedIDs() {
		t := c.txns[id]
		if !c.Owns(t.partition) || t.state != stateOngoing {
			continue
		}
		if t.startMs+int64(t.timeoutMs) >= ms {
			continue
		}
		if t.epoch == math.MaxInt16 {
			continue // Kafka refuses to fence past Short.MAX_VALUE
		}
		c.fenceAndAbort(t, ms)
	}
}

func (c *Coordinator) expireIDs(ms int64) {
	for _, id := range c.sortedIDs() {
		t := c.txns[id]
		if !c.Owns(t.partition) || !t.state.expirable() {
			continue
		}
		if t.updateMs > ms-c.cfg.ExpirationMs {
			continue
		}
		c.record(Record{Partition: t.partition, Key: txnKey(id)})
		delete(c.txns, id)
	}
}

// BeginLoad marks the partition as loading: requests for its
// transactional ids get COORDINATOR_LOAD_IN_PROGRESS until Loaded, and
// anything held for it before is dropped (a partition is always replayed
// from the start). Load calls it for the partition's first record; the
// owner calls it itself to cover an empty partition or the time before
// the first record is read.
func (c *Coordinator) BeginLoad(partition int32) {
	c.dropPartition(partition)
	c.parts[partition] = &partitionState{loading: true}
}

// Load applies one __transaction_state record of the partition, in log
// order: a value replaces the transactional id's state, a tombstone (nil
// value) forgets it. Keys of versions other than 0 are skipped as Kafka
// skips them. Load never panics; a record that does not decode returns an
// error wrapping ErrMalformedRecord and changes nothing. Call Loaded when
// the partition is read to its end.
func (c *Coordinator) Load(partition int32, key, value []byte) error {
	if p := c.parts[partition]; p == nil || !p.loading {
		c.BeginLoad(partition)
	}
	return c.load(partition, key, value)
}

// Loaded finishes loading the partition: it is now coordinated here at
// coordinatorEpoch (the partition's leader epoch), and every transaction
// left in PrepareCommit or PrepareAbort (its markers may not all have been
// written before the previous coordinator stopped) re-emits its MarkerJob.
func (c *Coordinator) Loaded(now time.Time, partition int32, coordinatorEpoch int32) {
	c.observe(now.UnixMilli())
	c.parts[partition] = &partitionState{epoch: coordinatorEpoch}
	for _, id := range c.sortedIDs() {
		t := c.txns[id]
		if t.partition == partition && (t.state == statePrepareCommit || t.state == statePrepareAbort) {
			c.emitMarkers(t)
		}
	}
}

// Unload forgets the partition and every transactional id in it, because
// this broker stopped leading it. Marker jobs of its transactions that are
// still running must be dropped by the owner; MarkersWritten ignores them.
func (c *Coordinator) Unload(partition int32) {
	c.dropPartition(partition)
}

func (c *Coordinator) dropPartition(partition int32) {
	delete(c.parts, partition)
	for id, t := range c.txns {
		if t.partition == partition {
			delete(c.txns, id)
		}
	}
}

// MarkersWritten tells the coordinator that every marker of job is
// durable: the transaction completes (CompleteCommit or CompleteAbort
// record) and the producer may start the next one. A job that no longer
// matches the transaction (partition unloaded or reloaded at another
// coordinator epoch, producer or state changed) is ignored.
func (c *Coordinator) MarkersWritten(now time.Time, job MarkerJob) {
	ms := now.UnixMilli()
	c.observe(ms)
	t := c.txns[job.TransactionalID]
	if t == nil {
		return
	}
	p := c.parts[t.partition]
	if p == nil || p.loading || p.epoch != job.CoordinatorEpoch {
		return
	}
	if t.producerID != job.ProducerID || t.epoch != job.ProducerEpoch {
		return
	}
	switch {
	case job.Commit && t.state == statePrepareCommit:
		t.state = stateCompleteCommit
	case !job.Commit && t.state == statePrepareAbort:
		t.state = stateCompleteAbort
	default:
		return
	}
	t.partitions = nil
	t.updateMs = ms
	c.store(t)
}

// lookup finds the transactional id's state, answering NOT_COORDINATOR for
// a partition this broker does not lead and COORDINATOR_LOAD_IN_PROGRESS
// for one it is still loading. t is nil (and err nil) for an unknown id.
func (c *Coordinator) lookup(id string) (t *txn, err *tributary.Error) {
	p := c.parts[Partition(id, c.cfg.NumPartitions)]
	switch {
	case p == nil:
		return nil, tributary.ErrNotCoordinator
	case p.loading:
		return nil, tributary.ErrCoordinatorLoadInProgress
	}
	return c.txns[id], nil
}

// emitMarkers queues the marker job of a transaction in PrepareCommit or
// PrepareAbort.
func (c *Coordinator) emitMarkers(t *txn) {
	job := MarkerJob{
		TransactionalID:  t.id,
		ProducerID:       t.producerID,
		ProducerEpoch:    t.epoch,
		Commit:           t.state == statePrepareCommit,
		CoordinatorEpoch: c.parts[t.partition].epoch,
		Partitions:       t.sortedPartitions(),
	}
	c.out.Markers = append(c.out.Markers, job)
}

func (c *Coordinator) record(r Record) { c.out.Records = append(c.out.Records, r) }

func (c *Coordinator) sortedIDs() []string {
	ids := make([]string, 0, len(c.txns))
	for id := range c.txns {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// allocate returns a fresh producer id, or the error code to answer.
func (c *Coordinator) allocate() (int64, *tributary.Error) {
	pid, err := c.cfg.AllocateProducerID()
	if err != nil {
		var te *tributary.Error
		if errors.As(err, &te) {
			return -1, te
		}
		return -1, tributary.ErrUnknownServerError
	}
	return pid, nil
}

func sortPartitions(ps []TopicPartition) {
	slices.SortFunc(ps, func(a, b TopicPartition) int {
		if c := cmp.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return cmp.Compare(a.Partition, b.Partition)
	})
}
