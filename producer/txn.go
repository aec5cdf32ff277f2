package producer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/client"
	"github.com/tributary/tributary/consumer"
	"github.com/tributary/tributary/internal/clientx"
)

// Transactions (KIP-98), as the Java producer runs them:
//
//   - InitTransactions (or the first BeginTxn) finds the transaction
//     coordinator (FindCoordinator, key type 1) and sends InitProducerId
//     with the transactional id: the coordinator bumps the id's epoch,
//     fencing any older producer with the same id and aborting its open
//     transaction.
//   - BeginTxn is local: Produce accepts records from then on.
//   - Before a partition's first batch in a transaction goes out, the sink
//     leaves it queued and hands the partition to addLoop, which adds all
//     partitions waiting at that moment with one AddPartitionsToTxn
//     (v0–v3), retrying CONCURRENT_TRANSACTIONS, COORDINATOR_LOAD_IN_PROGRESS
//     and NOT_COORDINATOR; the partition's batches are then sent with the
//     transactional bit set.
//   - SendOffsetsToTxn: AddOffsetsToTxn to the transaction coordinator,
//     then TxnOffsetCommit to the group coordinator.
//   - CommitTxn flushes, then EndTxn(commit). AbortTxn fails what is not
//     yet sent, waits for what is in flight, then EndTxn(abort) and, if a
//     sequenced batch failed (its sequence numbers are a gap now), bumps
//     the epoch with InitProducerId (KIP-360) to restart sequences.
//
// EndTxn stays at v4 and Produce at v11: KIP-890's implicit partition add
// and per-transaction epoch bump (EndTxn v5, transaction.version 2) are
// not used.
//
// Locking: txnManager.endMu serializes the application's transaction
// calls and is held across their I/O; txnManager.mu guards the state and
// is a leaf (never held with partState.mu or across I/O). The adder runs
// while holding addSem, which the end of a transaction takes too, so
// that EndTxn never races an AddPartitionsToTxn.

var (
	// ErrFenced is the fatal transactional error: a newer producer with
	// the same transactional id fenced this one (PRODUCER_FENCED,
	// INVALID_PRODUCER_EPOCH), or it is not allowed to use the id
	// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED). The producer can do
	// nothing more but Close; every later call and record fails with
	// this error. The broker's error is wrapped too, so
	// errors.Is(err, tributary.ErrProducerFenced) also works.
	ErrFenced = errors.New("producer: fenced (the transactional id is taken over or not authorized)")
	// ErrAbortableTxn is any other failure inside a transaction (a
	// record failed, an offset commit was refused, the coordinator
	// answered an error): the transaction cannot commit. Call AbortTxn,
	// then the application may start over with BeginTxn. The cause is
	// wrapped.
	ErrAbortableTxn = errors.New("producer: transaction failed; abort it")
	// ErrNoTxn fails records produced by a transactional producer
	// outside BeginTxn … CommitTxn/AbortTxn, and CommitTxn, AbortTxn and
	// SendOffsetsToTxn without an open transaction.
	ErrNoTxn = errors.New("producer: no transaction in progress (transactional producers produce between BeginTxn and CommitTxn/AbortTxn)")
	// ErrTxnInProgress is returned by BeginTxn while a transaction is
	// open (or its commit or abort did not finish: retry that first).
	ErrTxnInProgress = errors.New("producer: a transaction is already in progress")
	// ErrNotTransactional is returned by the transaction methods of a
	// producer without TransactionalID.
	ErrNotTransactional = errors.New("producer: not transactional (no TransactionalID)")
	// ErrTxnAborted fails the records AbortTxn (or Close) dropped before
	// they were sent.
	ErrTxnAborted = errors.New("producer: transaction aborted")
)

// fatalTxnCode reports the Kafka errors that end a transactional
// producer, as Java's TransactionManager treats them.
func fatalTxnCode(code int16) bool {
	switch code {
	case tributary.ErrProducerFenced.Code, tributary.ErrInvalidProducerEpoch.Code,
		tributary.ErrTransactionalIdAuthorizationFailed.Code:
		return true
	}
	return false
}

type txnStatus uint8

const (
	txnReady  txnStatus = iota // no transaction
	txnOpen                    // between BeginTxn and CommitTxn/AbortTxn
	txnEnding                  // CommitTxn or AbortTxn started and did not finish
)

type txnErr struct {
	err   error
	fatal bool
}

type txnManager struct {
	p  *Producer
	id string

	open   atomic.Bool            // Produce accepts records
	failed atomic.Pointer[txnErr] // the transaction's (or producer's, if fatal) error
	wake   chan struct{}          // wakes addLoop
	addSem chan struct{}          // held by an add in progress, and by the end of a transaction

	endMu sync.Mutex // serializes InitTransactions, BeginTxn, SendOffsetsToTxn, CommitTxn, AbortTxn

	mu         sync.Mutex // guards the fields below; a leaf
	status     txnStatus
	inited     bool
	needBump   bool            // a sequenced batch failed: bump the epoch at abort
	pendingEnd int8            // 1 commit, 2 abort: an EndTxn sent whose outcome is unknown (its ctx ended)
	nAdded     int             // partitions added to the transaction
	groups     map[string]bool // groups whose offsets are in the transaction
	addQ       []*partState
	addCancel  context.CancelFunc // stops the add in progress

	coordMu sync.Mutex // guards coord and coordOK
	coord   int32
	coordOK bool
}

func newTxnManager(p *Producer) *txnManager {
	return &txnManager{
		p:      p,
		id:     p.cfg.transactionalID,
		wake:   make(chan struct{}, 1),
		addSem: make(chan struct{}, 1),
		groups: make(map[string]bool),
	}
}

func (p *Producer) txnOrErr() (*txnManager, error) {
	if p.txn == nil {
		return nil, ErrNotTransactional
	}
	if p.closing.Load() {
		return nil, ErrClosed
	}
	return p.txn, nil
}

// err is the transaction's error, nil while it is healthy.
func (t *txnManager) err() error {
	if e := t.failed.Load(); e != nil {
		return e.err
	}
	return nil
}

func (t *txnManager) fatalErr() error {
	if e := t.failed.Load(); e != nil && e.fatal {
		return e.err
	}
	return nil
}

// produceErr is why Produce must refuse a record now, or nil.
func (t *txnManager) produceErr() error {
	if e := t.failed.Load(); e != nil {
		return e.err
	}
	if !t.open.Load() {
		return ErrNoTxn
	}
	return nil
}

// setFatal makes cause the producer's fatal error and returns it wrapped
// in ErrFenced (the first fatal error stays).
func (t *txnManager) setFatal(cause error) error {
	t.mu.Lock()
	if e := t.failed.Load(); e != nil && e.fatal {
		t.mu.Unlock()
		return e.err
	}
	err := cause
	if !errors.Is(cause, ErrFenced) {
		err = fmt.Errorf("%w: %w", ErrFenced, cause)
	}
	t.failed.Store(&txnErr{err: err, fatal: true})
	t.open.Store(false)
	t.mu.Unlock()
	t.p.clx.Logger().Error("transactional producer fenced", "transactional_id", t.id, "err", err)
	t.p.wakeAllSinks() // their queued batches fail now
	return err
}

// setAbortable fails the open transaction with cause, unless it already
// failed, and returns the transaction's error.
func (t *txnManager) setAbortable(cause error) error {
	if fatalTxnCode(tributary.CodeOf(cause)) {
		return t.setFatal(cause)
	}
	t.mu.Lock()
	if e := t.failed.Load(); e != nil {
		t.mu.Unlock()
		return e.err
	}
	err := cause
	if !errors.Is(cause, ErrAbortableTxn) {
		err = fmt.Errorf("%w: %w", ErrAbortableTxn, cause)
	}
	t.failed.Store(&txnErr{err: err})
	t.mu.Unlock()
	t.p.wakeAllSinks() // their queued batches fail now
	return err
}

// classify turns an error of a transactional request into the fatal or
// abortable error it means for the transaction. A ctx error leaves the
// transaction as it is: the call may be retried.
func (t *txnManager) classify(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil || errors.Is(err, ErrClosed) {
		return fmt.Errorf("producer: %s: %w", what, err)
	}
	if fatalTxnCode(tributary.CodeOf(err)) || errors.Is(err, ErrFenced) {
		return t.setFatal(fmt.Errorf("%s: %w", what, err))
	}
	return t.setAbortable(fmt.Errorf("%s: %w", what, err))
}

// recordFailed is told of every record that fails, and returns the error
// to report for it: inside a transaction the transaction cannot commit
// any more, and the record's error says so (ErrAbortableTxn or ErrFenced
// wrapping the cause). sequenced says the record's batch had sequence
// numbers, which are a gap now.
func (t *txnManager) recordFailed(err error, sequenced bool) error {
	t.mu.Lock()
	if sequenced {
		t.needBump = true
	}
	active := t.status != txnReady
	t.mu.Unlock()
	if !active || errors.Is(err, ErrTxnAborted) || errors.Is(err, ErrClosed) {
		return err
	}
	if errors.Is(err, ErrFenced) || errors.Is(err, ErrAbortableTxn) {
		if t.failed.Load() == nil {
			t.setAbortable(err)
		}
		return err
	}
	t.setAbortable(err)
	return fmt.Errorf("%w: %w", ErrAbortableTxn, err)
}

func (t *txnManager) markBump() {
	t.mu.Lock()
	t.needBump = true
	t.mu.Unlock()
}

// ---- coordinator ----

func (t *txnManager) coordinator(ctx context.Context) (int32, error) {
	t.coordMu.Lock()
	if t.coordOK {
		id := t.coord
		t.coordMu.Unlock()
		return id, nil
	}
	t.coordMu.Unlock()
	id, err := findCoordinator(ctx, t.p, 1, t.id)
	if err != nil {
		return -1, err
	}
	t.coordMu.Lock()
	t.coord, t.coordOK = id, true
	t.coordMu.Unlock()
	return id, nil
}

func (t *txnManager) forgetCoordinator() {
	t.coordMu.Lock()
	t.coordOK = false
	t.coordMu.Unlock()
}

// findCoordinator looks up the coordinator of key (type 0 group, 1
// transactional id), retrying while it is not available.
func findCoordinator(ctx context.Context, p *Producer, typ int8, key string) (int32, error) {
	for attempt := 1; ; attempt++ {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorType = typ
		req.CoordinatorKey = key            // v0-v3
		req.CoordinatorKeys = []string{key} // v4+
		raw, err := p.cl.Request(ctx, req)
		if err == nil {
			resp := raw.(*kmsg.FindCoordinatorResponse)
			code, id, msg := resp.ErrorCode, resp.NodeID, resp.ErrorMessage
			if len(resp.Coordinators) > 0 {
				c := resp.Coordinators[0]
				code, id, msg = c.ErrorCode, c.NodeID, c.ErrorMessage
			}
			if err = kafkaErr(code, msg); err == nil {
				return id, nil
			}
		}
		if ctx.Err() != nil || !retriableErr(err) {
			return -1, fmt.Errorf("finding the coordinator of %q: %w", key, err)
		}
		if werr := clientx.Sleep(ctx, p.clx.Backoff(attempt)); werr != nil {
			return -1, fmt.Errorf("finding the coordinator of %q: %w (last error: %w)", key, werr, err)
		}
	}
}

func kafkaErr(code int16, msg *string) error {
	err := tributary.ErrorForCode(code)
	if err != nil && msg != nil && *msg != "" && *msg != err.Error() {
		err = fmt.Errorf("%w: %s", err, *msg)
	}
	return err
}

// coordRetry reports whether a coordinator's error code is worth a retry,
// forgetting the coordinator when it moved.
func (t *txnManager) coordRetry(err error) bool {
	switch tributary.CodeOf(err) {
	case tributary.ErrNotCoordinator.Code, tributary.ErrCoordinatorNotAvailable.Code:
		t.forgetCoordinator()
		return true
	case tributary.ErrCoordinatorLoadInProgress.Code, tributary.ErrConcurrentTransactions.Code:
		return true
	}
	if errors.Is(err, client.ErrConnection) || errors.Is(err, client.ErrUnknownBroker) {
		t.forgetCoordinator()
		return true
	}
	return tributary.IsRetriable(err)
}

// backoff is the wait before retry attempt; CONCURRENT_TRANSACTIONS (the
// previous transaction's markers are still being written) clears within
// milliseconds, so it is retried sooner, as Java does.
func (t *txnManager) backoff(attempt int, err error) time.Duration {
	d := t.p.clx.Backoff(attempt)
	if tributary.CodeOf(err) == tributary.ErrConcurrentTransactions.Code {
		d = min(d, 20*time.Millisecond)
	}
	return d
}

// call sends a request built by build to the transaction coordinator and
// returns the error code of its answer, retrying coordinator moves,
// loading and CONCURRENT_TRANSACTIONS until ctx ends.
func (t *txnManager) call(ctx context.Context, build func() kmsg.Request, code func(kmsg.Response) error) (kmsg.Response, error) {
	for attempt := 1; ; attempt++ {
		id, err := t.coordinator(ctx)
		var resp kmsg.Response
		if err == nil {
			resp, err = t.p.cl.RequestBroker(ctx, id, build())
			if err == nil {
				if err = code(resp); err == nil {
					return resp, nil
				}
			}
		}
		if ctx.Err() != nil || errors.Is(err, client.ErrClosed) || !t.coordRetry(err) {
			return resp, err
		}
		if werr := clientx.Sleep(ctx, t.backoff(attempt, err)); werr != nil {
			return resp, fmt.Errorf("%w (last error: %w)", werr, err)
		}
	}
}

// ---- the application's calls ----

// InitTransactions registers the transactional id with its coordinator
// (Java: initTransactions): it fences older producers with the same id,
// aborts their open transaction, and waits for that to finish. BeginTxn
// calls it the first time if the application did not, bounded by
// MaxBlock; calling it first bounds it by ctx instead and fences a zombie
// before any input is read. Calling it again does nothing.
func (p *Producer) InitTransactions(ctx context.Context) error {
	t, err := p.txnOrErr()
	if err != nil {
		return err
	}
	t.endMu.Lock()
	defer t.endMu.Unlock()
	return t.init(ctx)
}

func (t *txnManager) init(ctx context.Context) error {
	if err := t.fatalErr(); err != nil {
		return err
	}
	t.mu.Lock()
	inited := t.inited
	t.mu.Unlock()
	if inited {
		return nil
	}
	id, epoch, err := t.initProducerID(ctx, -1, -1)
	if err != nil {
		return err
	}
	t.p.producerID.set(id, epoch)
	t.p.producerID.resetSequences()
	t.mu.Lock()
	t.inited = true
	t.mu.Unlock()
	return nil
}

// initProducerID sends InitProducerId with the transactional id; with a
// current id and epoch (v3+) the coordinator bumps that epoch.
func (t *txnManager) initProducerID(ctx context.Context, id int64, epoch int16) (int64, int16, error) {
	resp, err := t.call(ctx, func() kmsg.Request {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID = kmsg.StringPtr(t.id)
		req.TransactionTimeoutMillis = int32(t.p.cfg.txnTimeout.Milliseconds())
		req.ProducerID, req.ProducerEpoch = id, epoch
		return req
	}, func(r kmsg.Response) error {
		return tributary.ErrorForCode(r.(*kmsg.InitProducerIDResponse).ErrorCode)
	})
	if err != nil {
		err = fmt.Errorf("producer: init transactional id %q: %w", t.id, err)
		if fatalTxnCode(tributary.CodeOf(err)) {
			err = t.setFatal(err)
		}
		return -1, -1, err
	}
	r := resp.(*kmsg.InitProducerIDResponse)
	return r.ProducerID, r.ProducerEpoch, nil
}

// BeginTxn starts a transaction: from now until CommitTxn or AbortTxn,
// Produce accepts records, and they commit or abort together. The first
// BeginTxn initializes the transactional id (see InitTransactions), so it
// may block up to MaxBlock; later ones only change local state.
func (p *Producer) BeginTxn() error {
	t, err := p.txnOrErr()
	if err != nil {
		return err
	}
	t.endMu.Lock()
	defer t.endMu.Unlock()
	if err := t.fatalErr(); err != nil {
		return err
	}
	t.mu.Lock()
	status := t.status
	t.mu.Unlock()
	if status != txnReady {
		return ErrTxnInProgress
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.maxBlock)
	defer cancel()
	if err := t.init(ctx); err != nil {
		return err
	}
	t.mu.Lock()
	t.status = txnOpen
	t.mu.Unlock()
	t.open.Store(true)
	return nil
}

// SendOffsetsToTxn commits a consumer group's offsets as part of the
// transaction (Java: sendOffsetsToTransaction): they apply only if the
// transaction commits, which is what makes consume-transform-produce
// exactly once. offsets are positions, the offset of the next record to
// consume (a record's Offset+1), as in consumer.CommitOffsets; group is
// the consumer's GroupMetadata(), so the group coordinator refuses the
// commit from a member that lost the partitions in a rebalance.
//
// Any failure, ctx ending included, makes the transaction abortable
// (ErrAbortableTxn), or the producer fenced (ErrFenced): a transaction
// must not commit its output without its offsets.
func (p *Producer) SendOffsetsToTxn(ctx context.Context, offsets map[tributary.TopicPartition]int64, group consumer.GroupMetadata) error {
	t, err := p.txnOrErr()
	if err != nil {
		return err
	}
	if group.Group == "" {
		return errors.New("producer: SendOffsetsToTxn needs a group id (the consumer has no Group)")
	}
	t.endMu.Lock()
	defer t.endMu.Unlock()
	if err := t.err(); err != nil {
		return err
	}
	t.mu.Lock()
	status, added := t.status, t.groups[group.Group]
	t.mu.Unlock()
	if status != txnOpen {
		return ErrNoTxn
	}
	if len(offsets) == 0 {
		return nil
	}
	pid, epoch := p.producerID.current()
	if !added {
		_, err := t.call(ctx, func() kmsg.Request {
			req := kmsg.NewPtrAddOffsetsToTxnRequest()
			req.TransactionalID = t.id
			req.ProducerID, req.ProducerEpoch = pid, epoch
			req.Group = group.Group
			return client.Limit(req, 0, 3)
		}, func(r kmsg.Response) error {
			return tributary.ErrorForCode(r.(*kmsg.AddOffsetsToTxnResponse).ErrorCode)
		})
		if err != nil {
			return t.offsetsFailed(ctx, "add offsets to transaction", err)
		}
		t.mu.Lock()
		t.groups[group.Group] = true
		t.mu.Unlock()
	}
	if err := t.txnOffsetCommit(ctx, pid, epoch, offsets, group); err != nil {
		return t.offsetsFailed(ctx, "transactional offset commit", err)
	}
	return nil
}

// offsetsFailed is classify for SendOffsetsToTxn, except that a ctx that
// ended fails the transaction too: committing it without the offsets
// would let the input be processed again.
func (t *txnManager) offsetsFailed(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil && !errors.Is(err, ErrClosed) {
		return t.setAbortable(fmt.Errorf("%s: %w", what, err))
	}
	return t.classify(ctx, what, err)
}

// txnOffsetCommit sends TxnOffsetCommit (v0–v3) to the group's
// coordinator, retrying coordinator moves and loading.
func (t *txnManager) txnOffsetCommit(ctx context.Context, pid int64, epoch int16, offsets map[tributary.TopicPartition]int64, g consumer.GroupMetadata) error {
	p := t.p
	byTopic := make(map[string][]kmsg.TxnOffsetCommitRequestTopicPartition)
	for tp, off := range offsets {
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Partition = tp.Partition
		rp.Offset = off
		rp.LeaderEpoch = -1
		byTopic[tp.Topic] = append(byTopic[tp.Topic], rp)
	}
	topics := make([]string, 0, len(byTopic))
	for name := range byTopic {
		topics = append(topics, name)
	}
	slices.Sort(topics)
	coord, known := int32(-1), false
	for attempt := 1; ; attempt++ {
		var err error
		if !known {
			coord, err = findCoordinator(ctx, p, 0, g.Group)
			known = err == nil
		}
		if err == nil {
			req := kmsg.NewPtrTxnOffsetCommitRequest()
			req.TransactionalID = t.id
			req.Group = g.Group
			req.ProducerID, req.ProducerEpoch = pid, epoch
			req.Generation, req.MemberID = g.Generation, g.MemberID
			if g.InstanceID != "" {
				req.InstanceID = kmsg.StringPtr(g.InstanceID)
			}
			for _, name := range topics {
				rt := kmsg.NewTxnOffsetCommitRequestTopic()
				rt.Topic = name
				rt.Partitions = byTopic[name]
				req.Topics = append(req.Topics, rt)
			}
			var raw kmsg.Response
			raw, err = p.cl.RequestBroker(ctx, coord, client.Limit(req, 0, 3))
			if err == nil {
				err = firstTxnOffsetCommitErr(raw.(*kmsg.TxnOffsetCommitResponse))
				if err == nil {
					return nil
				}
			}
		}
		switch code := tributary.CodeOf(err); {
		case code == tributary.ErrNotCoordinator.Code || code == tributary.ErrCoordinatorNotAvailable.Code,
			errors.Is(err, client.ErrConnection), errors.Is(err, client.ErrUnknownBroker):
			known = false
		case code == tributary.ErrCoordinatorLoadInProgress.Code, code == tributary.ErrConcurrentTransactions.Code,
			code == tributary.ErrUnstableOffsetCommit.Code, tributary.IsRetriable(err):
		default:
			return err
		}
		if ctx.Err() != nil {
			return err
		}
		if werr := clientx.Sleep(ctx, t.backoff(attempt, err)); werr != nil {
			return fmt.Errorf("%w (last error: %w)", werr, err)
		}
	}
}

func firstTxnOffsetCommitErr(resp *kmsg.TxnOffsetCommitResponse) error {
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if rp.ErrorCode != 0 {
				return fmt.Errorf("%s[%d]: %w", rt.Topic, rp.Partition, tributary.ErrorForCode(rp.ErrorCode))
			}
		}
	}
	return nil
}

// CommitTxn commits the transaction (Java: commitTransaction): it flushes
// every record produced since BeginTxn, then asks the coordinator to
// commit, which makes the records (and offsets sent with
// SendOffsetsToTxn) visible at once. If a record or an offset commit
// failed, nothing is committed and the ErrAbortableTxn is returned: call
// AbortTxn. ErrFenced means the producer must be closed.
//
// When ctx ends first, CommitTxn returns ctx's error and the transaction
// stays open but closed to new records: call CommitTxn again to finish
// it. If it ended while flushing, AbortTxn may be called instead; once
// the commit request went out, only CommitTxn (as in Java).
func (p *Producer) CommitTxn(ctx context.Context) error {
	return p.endTxn(ctx, true)
}

// AbortTxn aborts the transaction (Java: abortTransaction): records not
// yet sent fail with ErrTxnAborted, those in flight are waited for, and
// the coordinator writes abort markers, so read_committed consumers never
// see any of them; offsets sent with SendOffsetsToTxn are discarded. After
// an ErrAbortableTxn this is the way on; then BeginTxn may start again.
// When ctx ends first, AbortTxn returns ctx's error: call it again.
func (p *Producer) AbortTxn(ctx context.Context) error {
	return p.endTxn(ctx, false)
}

func (p *Producer) endTxn(ctx context.Context, commit bool) error {
	t, err := p.txnOrErr()
	if err != nil {
		return err
	}
	t.endMu.Lock()
	defer t.endMu.Unlock()
	return t.end(ctx, commit)
}

// end commits or aborts; endMu held.
func (t *txnManager) end(ctx context.Context, commit bool) error {
	p := t.p
	if err := t.fatalErr(); err != nil {
		return err
	}
	what := "abort"
	if commit {
		what = "commit"
	}
	t.mu.Lock()
	status := t.status
	if status == txnOpen {
		t.status = txnEnding
	}
	t.mu.Unlock()
	if status == txnReady {
		return ErrNoTxn
	}
	want := int8(2)
	if commit {
		want = 1
	}
	t.mu.Lock()
	pending := t.pendingEnd
	t.mu.Unlock()
	if pending != 0 && pending != want {
		// The coordinator may have acted on the earlier EndTxn; as in
		// Java, only the same call may finish it.
		other := "CommitTxn"
		if pending == 2 {
			other = "AbortTxn"
		}
		return fmt.Errorf("producer: the previous %s did not finish; call %s again", other, other)
	}
	if err := t.err(); commit && err != nil {
		return err
	}
	// No new records from here on; wait for Produce calls already past
	// the check, so that none lands after the flush.
	t.open.Store(false)
	p.txnEnding.Store(true)
	p.waitProducing(ctx)
	p.txnEnding.Store(false)
	if !commit {
		p.failEverything(ErrTxnAborted)
	}
	if err := p.Flush(ctx); err != nil {
		return fmt.Errorf("producer: %s transaction: %w", what, err)
	}
	if err := t.err(); commit && err != nil {
		return err
	}
	if err := t.fatalErr(); err != nil {
		return err
	}
	// No AddPartitionsToTxn may be running or start while EndTxn goes
	// out.
	t.mu.Lock()
	if t.addCancel != nil {
		t.addCancel()
	}
	t.mu.Unlock()
	select {
	case t.addSem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("producer: %s transaction: %w", what, ctx.Err())
	}
	defer func() { <-t.addSem }()

	t.mu.Lock()
	needEnd := t.nAdded > 0 || len(t.groups) > 0
	t.mu.Unlock()
	if needEnd {
		t.mu.Lock()
		t.pendingEnd = want
		t.mu.Unlock()
		pid, epoch := p.producerID.current()
		_, err := t.call(ctx, func() kmsg.Request {
			req := kmsg.NewPtrEndTxnRequest()
			req.TransactionalID = t.id
			req.ProducerID, req.ProducerEpoch = pid, epoch
			req.Commit = commit
			return client.Limit(req, 0, 4)
		}, func(r kmsg.Response) error {
			return tributary.ErrorForCode(r.(*kmsg.EndTxnResponse).ErrorCode)
		})
		if err != nil {
			if ctx.Err() == nil {
				t.mu.Lock()
				t.pendingEnd = 0 // a definite answer
				t.mu.Unlock()
			}
			return t.classify(ctx, what+" transaction", err)
		}
	}
	t.mu.Lock()
	bump := t.needBump
	t.mu.Unlock()
	if bump && !commit {
		// A failed sequenced batch left a gap in its partition's
		// sequence numbers; a new epoch restarts them at 0 (KIP-360).
		id, epoch := p.producerID.current()
		nid, nepoch, err := t.initProducerID(ctx, id, epoch)
		if err != nil {
			return fmt.Errorf("producer: abort transaction: bumping the epoch: %w", err)
		}
		p.producerID.set(nid, nepoch)
		p.producerID.resetSequences()
		p.clx.Logger().Info("transactional producer epoch bumped", "transactional_id", t.id, "producer_id", nid, "epoch", nepoch)
		t.mu.Lock()
		t.needBump = false
		t.mu.Unlock()
	}
	t.reset()
	return nil
}

// reset returns to txnReady after a commit or abort: every partition
// leaves the transaction.
func (t *txnManager) reset() {
	p := t.p
	t.mu.Lock()
	t.status = txnReady
	t.pendingEnd = 0
	t.nAdded = 0
	clear(t.groups)
	t.addQ = nil // every partition's flags are cleared below
	if e := t.failed.Load(); e != nil && !e.fatal {
		t.failed.Store(nil)
	}
	t.mu.Unlock()
	p.topicsMu.RLock()
	defer p.topicsMu.RUnlock()
	for _, ts := range p.topics {
		parts := ts.parts.Load()
		if parts == nil {
			continue
		}
		for _, ps := range *parts {
			ps.mu.Lock()
			ps.txnAdded, ps.txnAdding = false, false
			ps.mu.Unlock()
		}
	}
}

// abortOnClose aborts an open transaction when the producer closes.
func (t *txnManager) abortOnClose(ctx context.Context) error {
	t.endMu.Lock()
	defer t.endMu.Unlock()
	t.mu.Lock()
	status := t.status
	t.mu.Unlock()
	if status == txnReady || t.fatalErr() != nil {
		return nil
	}
	return t.end(ctx, false)
}

// ---- adding partitions ----

// queueAdd hands partitions to addLoop. Called by a sink with no lock
// held, after it marked them txnAdding.
func (t *txnManager) queueAdd(pss []*partState) {
	if len(pss) == 0 {
		return
	}
	t.mu.Lock()
	ok := t.status != txnReady
	if ok {
		t.addQ = append(t.addQ, pss...)
	}
	t.mu.Unlock()
	if !ok {
		// The transaction ended meanwhile; its reset may have run
		// before we marked them.
		for _, ps := range pss {
			ps.mu.Lock()
			ps.txnAdding = false
			ps.mu.Unlock()
		}
		return
	}
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// addLoop adds queued partitions to the transaction, all that are queued
// at once in one request.
func (t *txnManager) addLoop() {
	p := t.p
	defer p.wg.Done()
	for {
		select {
		case <-t.wake:
		case <-p.ctx.Done():
			return
		}
		select {
		case t.addSem <- struct{}{}:
		case <-p.ctx.Done():
			return
		}
		t.mu.Lock()
		q := t.addQ
		t.addQ = nil
		ok := t.status != txnReady
		ctx, cancel := context.WithCancel(p.ctx)
		t.addCancel = cancel
		t.mu.Unlock()
		if ok && len(q) > 0 {
			t.addPartitions(ctx, q)
		}
		t.mu.Lock()
		t.addCancel = nil
		t.mu.Unlock()
		cancel()
		<-t.addSem
	}
}

// addPartitions sends AddPartitionsToTxn for pss until each is added or
// the transaction fails, retrying the coordinator's transient errors up
// to DeliveryTimeout.
func (t *txnManager) addPartitions(ctx context.Context, pss []*partState) {
	p := t.p
	start := time.Now()
	pid, epoch := p.producerID.current()
	pending := pss
	defer func() {
		// Whatever was not added (the transaction failed or ended)
		// may be queued again; a sink fails or re-adds it.
		for _, ps := range pending {
			ps.mu.Lock()
			ps.txnAdding = false
			ps.mu.Unlock()
		}
		p.wakeAllSinks()
	}()
	for attempt := 1; len(pending) > 0; attempt++ {
		if t.err() != nil || ctx.Err() != nil {
			return
		}
		byTopic := make(map[string][]int32)
		var names []string
		for _, ps := range pending {
			if _, ok := byTopic[ps.t.name]; !ok {
				names = append(names, ps.t.name)
			}
			byTopic[ps.t.name] = append(byTopic[ps.t.name], ps.id)
		}
		var retryErr error
		id, err := t.coordinator(ctx)
		if err == nil {
			req := kmsg.NewPtrAddPartitionsToTxnRequest()
			req.TransactionalID = t.id
			req.ProducerID, req.ProducerEpoch = pid, epoch
			for _, name := range names {
				rt := kmsg.NewAddPartitionsToTxnRequestTopic()
				rt.Topic = name
				rt.Partitions = byTopic[name]
				req.Topics = append(req.Topics, rt)
			}
			var raw kmsg.Response
			raw, err = p.cl.RequestBroker(ctx, id, client.Limit(req, 0, 3))
			if err == nil {
				resp := raw.(*kmsg.AddPartitionsToTxnResponse)
				codes := make(map[string]map[int32]int16)
				for _, rt := range resp.Topics {
					m := make(map[int32]int16, len(rt.Partitions))
					for _, rp := range rt.Partitions {
						m[rp.Partition] = rp.ErrorCode
					}
					codes[rt.Topic] = m
				}
				var still []*partState
				var failure error
				for _, ps := range pending {
					code, ok := codes[ps.t.name][ps.id]
					perr := tributary.ErrorForCode(code)
					switch {
					case !ok:
						perr = fmt.Errorf("no answer for %s[%d]: %w", ps.t.name, ps.id, tributary.ErrNetworkException)
						still, retryErr = append(still, ps), perr
					case perr == nil:
						ps.mu.Lock()
						ps.txnAdded, ps.txnAdding = true, false
						ps.mu.Unlock()
						t.mu.Lock()
						t.nAdded++
						t.mu.Unlock()
					case code == tributary.ErrOperationNotAttempted.Code || t.coordRetry(perr):
						// OPERATION_NOT_ATTEMPTED: another partition of
						// the request failed; this one is fine to retry.
						still = append(still, ps)
						if code != tributary.ErrOperationNotAttempted.Code {
							retryErr = perr
						}
					default:
						still = append(still, ps)
						failure = fmt.Errorf("add %s[%d] to transaction: %w", ps.t.name, ps.id, perr)
					}
				}
				pending = still
				if failure != nil {
					t.setAbortable(failure)
					return
				}
				if len(pending) == 0 {
					return
				}
				if retryErr == nil {
					retryErr = tributary.ErrOperationNotAttempted
				}
				err = retryErr
			}
		}
		if err != nil && !errors.Is(err, client.ErrClosed) && ctx.Err() == nil && !t.coordRetry(err) {
			t.setAbortable(fmt.Errorf("add partitions to transaction: %w", err))
			return
		}
		if time.Since(start) > p.cfg.deliveryTimeout {
			t.setAbortable(fmt.Errorf("%w: adding partitions to the transaction: %w", ErrDeliveryTimeout, err))
			return
		}
		if clientx.Sleep(ctx, t.backoff(attempt, err)) != nil {
			return
		}
	}
}
