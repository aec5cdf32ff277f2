package producer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/client"
	"github.com/tributary/tributary/internal/clientx"
	"github.com/tributary/tributary/partitioner"
)

var (
	// ErrClosed fails records produced after Close, or still pending when
	// Close gives up. It is client.ErrClosed, so either name matches.
	ErrClosed = client.ErrClosed
	// ErrRecordTooLarge fails a record that can never be sent: larger than
	// MaxRequestSize or BufferMemory, or refused by the broker as
	// MESSAGE_TOO_LARGE on its own (then tributary.ErrMessageTooLarge
	// matches too; a batch of several records is split and retried first).
	ErrRecordTooLarge = errors.New("producer: record too large")
	// ErrBufferFull fails a record when BufferMemory is used up and
	// NonBlocking is set, or MaxBlock passed while waiting for space.
	ErrBufferFull = errors.New("producer: buffer memory full")
	// ErrTopicPurged fails records of a topic removed with PurgeTopics
	// before they were written into a request.
	ErrTopicPurged = errors.New("producer: topic purged")
	// ErrDeliveryTimeout fails records not acknowledged within
	// DeliveryTimeout (or, for a topic missing from metadata, MaxBlock).
	// The last error seen for them is wrapped too.
	ErrDeliveryTimeout = errors.New("producer: delivery timed out")
)

// Producer sends records to Kafka asynchronously, batching them per
// partition. It is safe for concurrent use.
type Producer struct {
	cfg       cfg
	cl        *client.Client
	clx       clientx.Internals
	ownClient bool
	observer  partitioner.BatchObserver
	manual    bool

	ctx    context.Context // canceled when Close stops the producer
	cancel context.CancelFunc
	wg     sync.WaitGroup

	topicsMu sync.RWMutex                           // serializes changes to topics
	topics   map[string]*topicState                 // guarded by topicsMu
	topicMap atomic.Pointer[map[string]*topicState] // copy of topics read lock-free by Produce

	sinksMu sync.Mutex
	sinks   map[int32]*sink

	memUsed    atomic.Int64
	memWaiters atomic.Int32
	memMu      sync.Mutex
	memCond    sync.Cond

	producing   atomic.Int32 // Produce calls in progress
	buffered    atomic.Int64 // records produced and not yet called back
	flushing    atomic.Int32
	idleWaiters atomic.Int32
	idleMu      sync.Mutex
	idleCond    sync.Cond
	closing     atomic.Bool // no new records
	txnEnding   atomic.Bool // CommitTxn/AbortTxn waits for Produce calls in progress
	aborting    atomic.Bool // pending records fail instead of retrying
	closeOnce   sync.Once
	inflightAll atomic.Int64 // batches sent and not answered, all partitions

	metaCh     chan struct{} // wakes parkedMetadata
	batchHooks []client.HookProduceBatchWritten

	reqMu      sync.Mutex
	reqs       map[*produceReq]struct{} // requests handed to the client and not answered; nil once Close abandoned them
	producerID producerID
	free       freeList
	txn        *txnManager // nil unless TransactionalID is set
}

// New creates a producer. It does not contact the cluster until the first
// record is produced.
func New(opts ...Opt) (*Producer, error) {
	c := defaultCfg()
	for _, o := range opts {
		if o.apply != nil {
			o.apply(&c)
		}
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	p := &Producer{
		cfg:    c,
		topics: make(map[string]*topicState),
		sinks:  make(map[int32]*sink),
		reqs:   make(map[*produceReq]struct{}),
		metaCh: make(chan struct{}, 1),
	}
	p.memCond.L = &p.memMu
	p.idleCond.L = &p.idleMu
	p.free.max = int(c.bufferMemory / int64(c.batchSize+recordBatchOverhead))
	p.producerID.init(p)
	if obs, ok := c.part.(partitioner.BatchObserver); ok {
		p.observer = obs
	}
	// Manual keeps r.Partition, so the producer must check its range.
	p.manual = c.part == partitioner.Manual()
	if c.client != nil {
		p.cl = c.client
	} else {
		opts := append([]client.Opt{client.AllowAutoTopicCreation(true)}, c.clientOpts...)
		cl, err := client.New(opts...)
		if err != nil {
			return nil, err
		}
		p.cl, p.ownClient = cl, true
	}
	p.clx = clientx.Of(p.cl)
	for _, h := range p.cl.Hooks() {
		if h, ok := h.(client.HookProduceBatchWritten); ok {
			p.batchHooks = append(p.batchHooks, h)
		}
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	if c.transactionalID != "" {
		p.txn = newTxnManager(p)
		p.wg.Add(1)
		go p.txn.addLoop()
	}
	p.wg.Add(3)
	go p.watchMetadata()
	go p.reaper()
	go p.parkedMetadata()
	return p, nil
}

// Client returns the client the producer sends through.
func (p *Producer) Client() *client.Client { return p.cl }

func noopCallback(*tributary.Record, error) {}

// Produce buffers r for sending to r.Topic and calls cb once with r (its
// Partition and Offset set) and nil, or with an error, from a producer
// goroutine; cb must not block for long. cb may be nil.
//
// Produce blocks only while buffer memory is full, up to MaxBlock or until
// ctx is done. A zero r.Timestamp is set to time.Now(). r must not be
// modified until cb runs.
//
// ctx covers the record until it is written into a produce request, as in
// franz-go: a record whose ctx is already done fails at once with
// ctx.Err(); one whose ctx ends while it waits in the buffer (for its
// batch to fill, for a leader, for its topic to appear) fails with
// ctx.Err() too, without being sent. Once written, the broker's answer
// decides, since the record may already be in the log.
//
// A transactional producer takes records only between BeginTxn and
// CommitTxn or AbortTxn; others fail at once with ErrNoTxn.
func (p *Producer) Produce(ctx context.Context, r *tributary.Record, cb func(*tributary.Record, error)) {
	if cb == nil {
		cb = noopCallback
	}
	// Close waits for producing to drop to zero after setting closing, so
	// a record either sees closing here or is buffered before Close
	// flushes: none can slip in after Close has failed what was left.
	p.producing.Add(1)
	p.produce(ctx, r, cb)
	if p.producing.Add(-1) == 0 && (p.closing.Load() || p.txnEnding.Load()) {
		p.idleMu.Lock()
		p.idleCond.Broadcast()
		p.idleMu.Unlock()
	}
}

func (p *Producer) produce(ctx context.Context, r *tributary.Record, cb func(*tributary.Record, error)) {
	if p.closing.Load() {
		cb(r, ErrClosed)
		return
	}
	if p.txn != nil {
		if err := p.txn.produceErr(); err != nil {
			cb(r, err)
			return
		}
	}
	// Only a ctx that can end is kept: checking context.Background on
	// every record of every batch would be wasted work.
	var rctx context.Context
	if ctx.Done() != nil {
		if err := ctx.Err(); err != nil {
			cb(r, err)
			return
		}
		rctx = ctx
	}
	if r.Timestamp.IsZero() {
		r.Timestamp = time.Now()
	}
	// Deltas are unknown until the record lands in a batch; charge their
	// worst case so the accounting never undercounts.
	body0 := bodySize0(r)
	size := varintLen(int64(body0)) + body0 + 2*9
	if size+recordBatchOverhead > p.cfg.maxRequestSize || int64(size) > p.cfg.bufferMemory {
		cb(r, fmt.Errorf("%w: %d bytes exceed max.request.size %d or buffer.memory %d", ErrRecordTooLarge, size+recordBatchOverhead, p.cfg.maxRequestSize, p.cfg.bufferMemory))
		return
	}
	if err := p.reserve(ctx, int64(size)); err != nil {
		cb(r, err)
		return
	}
	p.buffered.Add(1)
	t := p.topic(r.Topic)
	if parts := t.parts.Load(); parts != nil && t.pendingN.Load() == 0 {
		p.route(t, *parts, r, cb, rctx, int64(size), body0)
		return
	}
	switch t.addPending(r, cb, rctx, int64(size), body0) {
	case notParked:
		// Metadata arrived and the parked records went out meanwhile.
		p.route(t, *t.parts.Load(), r, cb, rctx, int64(size), body0)
	case purged:
		p.failRecord(r, cb, int64(size), fmt.Errorf("topic %q: %w", t.name, ErrTopicPurged))
	}
}

// Result is the outcome of one record of ProduceSync.
type Result struct {
	Record *tributary.Record
	Err    error
}

// Results are ProduceSync's outcomes, in the order of its records.
type Results []Result

// FirstErr returns the first error among the results, or nil.
func (rs Results) FirstErr() error {
	for _, r := range rs {
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}

// ProduceSync produces recs and waits until every one is acknowledged or
// failed, or ctx ends. Records not yet written into a request when ctx
// ends fail with ctx.Err() (see Produce); ProduceSync then returns at once,
// reporting ctx.Err() for records whose request is still awaiting the
// broker's answer: those may or may not be written, and must not be
// modified until a later Flush or Close returns.
func (p *Producer) ProduceSync(ctx context.Context, recs ...*tributary.Record) Results {
	var (
		mu      sync.Mutex
		res     = make(Results, len(recs))
		got     = make([]bool, len(recs))
		left    = len(recs)
		done    = make(chan struct{})
		stopped bool
	)
	for i, r := range recs {
		p.Produce(ctx, r, func(r *tributary.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if stopped {
				return
			}
			res[i], got[i] = Result{r, err}, true
			if left--; left == 0 {
				close(done)
			}
		})
	}
	if len(recs) == 0 {
		return res
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
	mu.Lock()
	defer mu.Unlock()
	stopped = true
	for i := range res {
		if !got[i] {
			res[i] = Result{recs[i], ctx.Err()}
		}
	}
	return res
}

// Flush sends every buffered record without waiting for Linger and waits
// until all have been called back, or ctx is done.
func (p *Producer) Flush(ctx context.Context) error {
	p.flushing.Add(1)
	defer p.flushing.Add(-1)
	p.wakeAllSinks()
	return p.waitIdle(ctx)
}

func (p *Producer) waitIdle(ctx context.Context) error {
	if p.buffered.Load() == 0 {
		return nil
	}
	p.idleWaiters.Add(1)
	defer p.idleWaiters.Add(-1)
	stop := context.AfterFunc(ctx, func() {
		p.idleMu.Lock()
		p.idleCond.Broadcast()
		p.idleMu.Unlock()
	})
	defer stop()
	p.idleMu.Lock()
	defer p.idleMu.Unlock()
	for p.buffered.Load() > 0 {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("flush: %d records still pending: %w", p.buffered.Load(), err)
		}
		p.idleCond.Wait()
	}
	return nil
}

// Close stops accepting records, flushes what is buffered and releases the
// producer's resources. If ctx ends first, the records still pending fail
// with ErrClosed (wrapping ctx's error) and Close returns that error at
// once: records whose request awaits the broker's answer are failed too,
// without waiting for it, so Close keeps ctx's deadline even on a client
// shared through WithClient. Such a record may still have been written.
//
// A transactional producer first aborts an open transaction (AbortTxn);
// if that fails, Close still closes and returns the abort's error.
func (p *Producer) Close(ctx context.Context) error {
	var abortErr error
	if p.txn != nil {
		abortErr = p.txn.abortOnClose(ctx)
	}
	err := p.close(ctx)
	if err == nil && abortErr != nil {
		err = abortErr
	}
	return err
}

func (p *Producer) close(ctx context.Context) error {
	p.closing.Store(true)
	p.memMu.Lock()
	p.memCond.Broadcast() // Produce calls blocked on memory give up
	p.memMu.Unlock()
	p.waitProducing(ctx)
	err := p.Flush(ctx)
	p.closeOnce.Do(func() {
		p.aborting.Store(true)
		abortErr := ErrClosed
		if err != nil {
			abortErr = fmt.Errorf("%w: %w", ErrClosed, err)
		}
		p.cancel()
		p.wakeAllSinks()
		p.memMu.Lock()
		p.memCond.Broadcast()
		p.memMu.Unlock()
		if p.ownClient {
			p.cl.Close() // fails in-flight requests, whose batches then fail
		}
		p.wg.Wait()
		// Requests still awaiting an answer (on a shared client, or one
		// whose callback is running) are failed now rather than waited
		// for; a callback already running may put a partition's earlier
		// failures back in its queue, so sweep until everything is
		// accounted for. Each sweep waits for a callback to finish
		// instead of spinning.
		p.abandonRequests(abortErr)
		for {
			p.failEverything(abortErr)
			if p.buffered.Load() == 0 {
				break
			}
			wctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			p.waitIdle(wctx)
			cancel()
		}
	})
	return err
}

// waitProducing waits until no Produce call is in progress, or ctx ends.
func (p *Producer) waitProducing(ctx context.Context) {
	if p.producing.Load() == 0 {
		return
	}
	stop := context.AfterFunc(ctx, func() {
		p.idleMu.Lock()
		p.idleCond.Broadcast()
		p.idleMu.Unlock()
	})
	defer stop()
	p.idleMu.Lock()
	defer p.idleMu.Unlock()
	for p.producing.Load() > 0 && ctx.Err() == nil {
		p.idleCond.Wait()
	}
}

// produceReq is one produce request handed to the client. Whoever removes
// it from Producer.reqs (its response callback, or Close abandoning it)
// completes its batches, so they are completed once.
type produceReq struct {
	sent []*batch
}

func (p *Producer) trackReq(r *produceReq) {
	p.reqMu.Lock()
	if p.reqs != nil {
		p.reqs[r] = struct{}{}
	}
	p.reqMu.Unlock()
}

// untrackReq claims r for its response; false if Close abandoned it.
func (p *Producer) untrackReq(r *produceReq) bool {
	p.reqMu.Lock()
	defer p.reqMu.Unlock()
	if _, ok := p.reqs[r]; !ok {
		return false
	}
	delete(p.reqs, r)
	return true
}

// abandonRequests fails the batches of every request still awaiting an
// answer. Their buffers are not reused: the connection may still be
// writing them.
func (p *Producer) abandonRequests(err error) {
	p.reqMu.Lock()
	reqs := p.reqs
	p.reqs = nil
	p.reqMu.Unlock()
	for r := range reqs {
		for _, b := range r.sent {
			for _, pr := range b.recs {
				pr.r.Offset = -1
				pr.cb(pr.r, err)
			}
			p.releaseMem(b.mem)
			p.finished(int64(len(b.recs)))
		}
	}
}

// PurgeTopics forgets topics: the producer drops what it keeps for them
// (partitions, batches, the topic in its client's metadata), so a
// long-running producer writing to many short-lived topics stays the size
// of what it currently uses (franz-go: PurgeTopicsFromClient). Records of
// these topics not yet written into a request fail with ErrTopicPurged;
// those awaiting an answer complete as usual. Producing to a purged topic
// later starts afresh.
func (p *Producer) PurgeTopics(topics ...string) {
	var ts []*topicState
	p.topicsMu.Lock()
	for _, name := range topics {
		if t := p.topics[name]; t != nil {
			ts = append(ts, t)
			delete(p.topics, name)
		}
	}
	m := maps.Clone(p.topics)
	p.topicMap.Store(&m)
	p.topicsMu.Unlock()
	p.cl.PurgeTopics(topics...)

	bump := false
	defer func() {
		if bump {
			p.producerID.requestBump()
		}
	}()
	for _, t := range ts {
		if p.failTopic(t, fmt.Errorf("topic %q: %w", t.name, ErrTopicPurged), true) {
			bump = true
		}
	}
}

// failTopic fails every record buffered for t with err. With purge the
// topic also leaves service: no metadata is applied to it any more, its
// partitions leave their sinks, and it reports whether an idempotent
// producer must bump its epoch (producing to the topic again starts its
// sequences at 0, which the broker accepts only under a new epoch).
func (p *Producer) failTopic(t *topicState, err error, purge bool) (bump bool) {
	if purge {
		t.applyMu.Lock() // no metadata is being applied to it
	}
	t.mu.Lock()
	t.purged = t.purged || purge
	pend := t.pending
	t.pending = nil
	t.pendingN.Store(0)
	t.mu.Unlock()
	if purge {
		t.applyMu.Unlock()
	}
	for _, pr := range pend {
		p.failRecord(pr.r, pr.cb, pr.size, err)
	}
	parts := t.parts.Load()
	if parts == nil {
		return bump
	}
	for _, ps := range *parts {
		var s *sink
		ps.mu.Lock()
		if purge {
			bump = bump || ps.nextSeq != 0 && p.cfg.idempotent
			ps.purged = true
			ps.retrying = false
			s, ps.sink = ps.sink, nil
		}
		bs := append(ps.retry, ps.queue...)
		ps.retry, ps.queue = nil, nil
		ps.mu.Unlock()
		if s != nil {
			s.remove(ps)
		}
		for _, b := range bs {
			p.failBatch(b, err)
		}
	}
	return bump
}

// reserve takes n bytes of buffer memory, blocking up to MaxBlock.
func (p *Producer) reserve(ctx context.Context, n int64) error {
	limit := p.cfg.bufferMemory
	if p.memUsed.Add(n) <= limit {
		return nil
	}
	p.memUsed.Add(-n)
	if p.cfg.nonBlocking || p.cfg.maxBlock == 0 {
		return ErrBufferFull
	}
	return p.reserveSlow(ctx, n)
}

// reserveSlow waits for buffer memory; kept apart so the fast path has no
// defers.
func (p *Producer) reserveSlow(ctx context.Context, n int64) error {
	limit := p.cfg.bufferMemory
	var timedOut atomic.Bool
	wake := func() {
		p.memMu.Lock()
		p.memCond.Broadcast()
		p.memMu.Unlock()
	}
	t := time.AfterFunc(p.cfg.maxBlock, func() { timedOut.Store(true); wake() })
	defer t.Stop()
	stop := context.AfterFunc(ctx, wake)
	defer stop()
	p.memMu.Lock()
	defer p.memMu.Unlock()
	p.memWaiters.Add(1)
	defer p.memWaiters.Add(-1)
	for {
		if p.memUsed.Add(n) <= limit {
			return nil
		}
		p.memUsed.Add(-n)
		switch {
		case p.aborting.Load() || p.closing.Load():
			return ErrClosed
		case ctx.Err() != nil:
			// The caller gave up; the buffer being full is why it waited,
			// not why the record failed.
			return ctx.Err()
		case timedOut.Load():
			return fmt.Errorf("%w: no space within max.block.ms %v", ErrBufferFull, p.cfg.maxBlock)
		}
		p.memCond.Wait()
	}
}

func (p *Producer) releaseMem(n int64) {
	p.memUsed.Add(-n)
	if p.memWaiters.Load() > 0 {
		p.memMu.Lock()
		p.memCond.Broadcast()
		p.memMu.Unlock()
	}
}

// finished accounts for n records having been called back.
func (p *Producer) finished(n int64) {
	if p.buffered.Add(-n) == 0 && p.idleWaiters.Load() > 0 {
		p.idleMu.Lock()
		p.idleCond.Broadcast()
		p.idleMu.Unlock()
	}
}

// topicState is what the producer knows of one topic.
type topicState struct {
	name  string
	parts atomic.Pointer[[]*partState] // nil until metadata names the partitions

	pendingN atomic.Int32 // len(pending), read without the lock
	applyMu  sync.Mutex   // serializes applying metadata to the topic

	mu      sync.Mutex // guards the fields below
	pending []pendingRec
	lastErr error
	unknown int  // metadata answers of UNKNOWN_TOPIC_OR_PARTITION while records are parked
	purged  bool // removed by PurgeTopics: nothing may be parked any more
}

type pendingRec struct {
	r     *tributary.Record
	cb    func(*tributary.Record, error)
	ctx   context.Context // nil if it cannot be cancelled
	size  int64
	body0 int
	at    time.Time
}

func (p *Producer) topic(name string) *topicState {
	if m := p.topicMap.Load(); m != nil {
		if t := (*m)[name]; t != nil {
			return t
		}
	}
	p.topicsMu.Lock()
	t := p.topics[name]
	if t == nil {
		t = &topicState{name: name}
		p.topics[name] = t
		m := maps.Clone(p.topics)
		p.topicMap.Store(&m)
	}
	p.topicsMu.Unlock()
	// Apply what the cache may already know, then ask for fresh metadata.
	p.applyTopic(t, p.cl.CachedMetadata())
	if t.parts.Load() == nil {
		p.wakeMeta()
	}
	return t
}

type parkResult int

const (
	parked    parkResult = iota
	notParked            // nothing is parked and the partitions are known: route it
	purged               // PurgeTopics dropped the topic meanwhile
)

// addPending parks a record until the topic's partitions are known, or
// behind records parked earlier that are not yet routed, so the order of
// Produce calls is kept.
func (t *topicState) addPending(r *tributary.Record, cb func(*tributary.Record, error), ctx context.Context, size int64, body0 int) parkResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.purged {
		return purged
	}
	if t.parts.Load() != nil && len(t.pending) == 0 {
		return notParked
	}
	t.pending = append(t.pending, pendingRec{r, cb, ctx, size, body0, time.Now()})
	t.pendingN.Add(1)
	return parked
}

// route partitions r and appends it to its partition's open batch.
func (p *Producer) route(t *topicState, parts []*partState, r *tributary.Record, cb func(*tributary.Record, error), ctx context.Context, size int64, body0 int) {
	n := int32(len(parts))
	var pi int32
	if p.manual {
		pi = r.Partition
		if pi < 0 || pi >= n {
			p.failRecord(r, cb, size, fmt.Errorf("topic %q has %d partitions, record names partition %d: %w", t.name, n, pi, tributary.ErrUnknownTopicOrPartition))
			return
		}
	} else {
		pi = p.cfg.part.Partition(r, n)
		if pi < 0 || pi >= n {
			pi = 0
		}
	}
	r.Partition = pi
	ts := r.Timestamp.UnixMilli()
	ps := parts[pi]
	ps.mu.Lock()
	if ps.purged {
		ps.mu.Unlock()
		p.failRecord(r, cb, size, fmt.Errorf("topic %q: %w", t.name, ErrTopicPurged))
		return
	}
	if ps.tryAppend(r, cb, ctx, ts, size, body0, p.cfg.batchSize) {
		ps.mu.Unlock()
		return
	}
	// The open batch is full: it is complete, so a sticky partitioner
	// moves on and the record goes to its new choice (Java's
	// abortOnNewBatch, KIP-480).
	if p.observer != nil {
		s := ps.sealOpenLocked()
		ps.mu.Unlock()
		if s != nil {
			s.wake()
		}
		p.observer.OnNewBatch(t.name, pi, n)
		if npi := p.cfg.part.Partition(r, n); npi >= 0 && npi < n && npi != pi {
			pi = npi
			r.Partition = pi
			ps = parts[pi]
		}
		ps.mu.Lock()
		if ps.purged {
			ps.mu.Unlock()
			p.failRecord(r, cb, size, fmt.Errorf("topic %q: %w", t.name, ErrTopicPurged))
			return
		}
	}
	s := ps.appendNewLocked(p, r, cb, ctx, ts, size, body0)
	ps.mu.Unlock()
	if s != nil {
		s.wake()
	}
}

func (p *Producer) failRecord(r *tributary.Record, cb func(*tributary.Record, error), size int64, err error) {
	if p.txn != nil {
		err = p.txn.recordFailed(err, false)
	}
	cb(r, err)
	p.releaseMem(size)
	p.finished(1)
}

// partState is one partition's queue of batches and its idempotence state.
type partState struct {
	t  *topicState
	id int32

	mu       sync.Mutex // guards everything below
	purged   bool       // removed by PurgeTopics: nothing may be queued any more
	leader   int32
	sink     *sink    // the leader's sink; nil without a leader
	queue    []*batch // unsent batches, oldest first; the last may be open
	inflight int      // batches sent and not yet answered
	inSink   *sink    // the sink those batches went through
	retry    []*batch // failed batches waiting for the in-flight ones
	retrying bool
	backoff  time.Time // no sending before this
	attempts int
	nextSeq  int32 // sequence for the next new batch
	ackedSeq int32 // sequence after the last acknowledged batch

	txnAdded  bool // in the current transaction (AddPartitionsToTxn answered)
	txnAdding bool // queued for AddPartitionsToTxn
}

// tryAppend appends to the open batch if the record fits.
func (ps *partState) tryAppend(r *tributary.Record, cb func(*tributary.Record, error), ctx context.Context, ts, size int64, body0, batchSize int) bool {
	if len(ps.queue) == 0 {
		return false
	}
	b := ps.queue[len(ps.queue)-1]
	if b.full {
		return false
	}
	body := bodyAt(body0, ts-b.firstTs, int32(len(b.recs)))
	if len(b.buf)+varintLen(int64(body))+body > batchSize {
		return false
	}
	b.append(r, cb, ctx, ts, size, body0)
	return true
}

// sealOpenLocked closes the open batch to appends and returns the sink to
// wake, since a full batch is ready to send.
func (ps *partState) sealOpenLocked() *sink {
	if len(ps.queue) == 0 {
		return nil
	}
	if b := ps.queue[len(ps.queue)-1]; !b.full {
		b.full = true
		return ps.sink
	}
	return nil
}

// appendNewLocked appends r, opening a new batch if the open one cannot
// take it. It returns the sink to wake.
func (ps *partState) appendNewLocked(p *Producer, r *tributary.Record, cb func(*tributary.Record, error), ctx context.Context, ts, size int64, body0 int) *sink {
	if ps.tryAppend(r, cb, ctx, ts, size, body0, p.cfg.batchSize) {
		return nil
	}
	ps.sealOpenLocked()
	b := newBatch(&p.free, ps, time.Now(), p.cfg.batchSize+recordBatchOverhead)
	if cap(b.recs) == 0 {
		// A fresh batch: guess how many records like this one fit, so
		// the callback list does not grow by doubling.
		b.recs = make([]promised, 0, min(p.cfg.batchSize/(body0+2)+1, 4096))
	}
	b.append(r, cb, ctx, ts, size, body0)
	if len(b.buf) >= p.cfg.batchSize {
		b.full = true // an oversized record travels alone
	}
	ps.queue = append(ps.queue, b)
	return ps.sink
}

// dropCancelledLocked removes, from the unsent batch ps.queue[i], the
// records whose Produce ctx has ended, rebuilding the batch from the rest
// (or removing it if none is left). It returns the removed records, to be
// failed with failCancelled once ps.mu is released. Batches already
// written into a request are left alone: the broker's answer decides them.
func (ps *partState) dropCancelledLocked(p *Producer, i int) []promised {
	b := ps.queue[i]
	if !b.hasCtx || b.sent {
		return nil
	}
	n := 0
	for _, pr := range b.recs {
		if pr.ctx != nil && pr.ctx.Err() != nil {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	dropped := make([]promised, 0, n)
	var nb *batch
	if n < len(b.recs) {
		nb = newBatch(&p.free, ps, b.created, len(b.buf))
	}
	for _, pr := range b.recs {
		if pr.ctx != nil && pr.ctx.Err() != nil {
			dropped = append(dropped, pr)
			continue
		}
		nb.append(pr.r, pr.cb, pr.ctx, pr.r.Timestamp.UnixMilli(), pr.size, bodySize0(pr.r))
	}
	if nb != nil {
		nb.full = b.full
		ps.queue[i] = nb
	} else {
		ps.queue = slices.Delete(ps.queue, i, i+1)
	}
	clear(b.recs) // the survivors now belong to nb
	b.recs = b.recs[:0]
	b.mem = 0
	b.release(&p.free, p.cfg.batchSize)
	return dropped
}

// failCancelled fails records removed for their ctx with its error.
func (p *Producer) failCancelled(prs []promised) {
	for _, pr := range prs {
		pr.r.Offset = -1
		p.failRecord(pr.r, pr.cb, pr.size, pr.ctx.Err())
	}
}

// failBatch calls back every record of b with err and frees it.
func (p *Producer) failBatch(b *batch, err error) {
	if p.txn != nil {
		err = p.txn.recordFailed(err, b.seq >= 0)
	}
	for _, pr := range b.recs {
		pr.r.Offset = -1
		pr.cb(pr.r, err)
	}
	p.releaseMem(b.mem)
	p.finished(int64(len(b.recs)))
	b.release(&p.free, p.cfg.batchSize)
}

// failEverything fails all buffered records; used when Close gives up.
func (p *Producer) failEverything(err error) {
	p.topicsMu.RLock()
	topics := make([]*topicState, 0, len(p.topics))
	for _, t := range p.topics {
		topics = append(topics, t)
	}
	p.topicsMu.RUnlock()
	for _, t := range topics {
		p.failTopic(t, err, false)
	}
}
