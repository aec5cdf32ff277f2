package txn

// InitProducerId: v0–5, for transactional producers.
//
// A new transactional id gets a fresh producer id at epoch 0. A known one
// whose last transaction is complete gets its epoch bumped, which fences
// the producer that held the old epoch; when the epoch would reach
// Short.MAX_VALUE-1 a new producer id is allocated instead. A transaction
// still ongoing is aborted first, with its own epoch bump, and the request
// is answered CONCURRENT_TRANSACTIONS so the client retries once the abort
// markers are written; a commit or abort in progress is answered
// CONCURRENT_TRANSACTIONS too.
//
// v3+ (KIP-360) carries the producer id and epoch the client holds: a
// client whose id is neither the current one nor (with an exhausted
// epoch) the one it was rotated from is fenced; one presenting the epoch
// it had before its last bump is retrying that bump and gets the same
// epoch back. PRODUCER_FENCED is answered INVALID_PRODUCER_EPOCH below
// v4, as Kafka does for clients that predate it.
//
// Without a transactional id the request is the idempotent producer's:
// a fresh producer id at epoch 0.

import (
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// InitProducerID answers InitProducerId. Any record it produces must be
// durable before the response is sent.
func (c *Coordinator) InitProducerID(now time.Time, req *kmsg.InitProducerIDRequest) *kmsg.InitProducerIDResponse {
	ms := now.UnixMilli()
	c.observe(ms)
	resp := kmsg.NewPtrInitProducerIDResponse()
	resp.Version = req.Version
	fail := func(err *tributary.Error) *kmsg.InitProducerIDResponse {
		if err == tributary.ErrProducerFenced && req.Version < 4 {
			err = tributary.ErrInvalidProducerEpoch
		}
		resp.ErrorCode = err.Code
		resp.ProducerID = -1
		resp.ProducerEpoch = -1
		return resp
	}

	// The producer id and epoch the client holds (KIP-360), both or
	// neither.
	expected := false
	if req.Version >= 3 {
		switch {
		case req.ProducerID == -1 && req.ProducerEpoch == -1:
		case req.ProducerID == -1 || req.ProducerEpoch == -1:
			return fail(tributary.ErrInvalidRequest)
		default:
			expected = true
		}
	}

	// Kafka's idempotent path ignores the KIP-360 fields once they pass
	// the check above: a fresh id is always safe without transactions.
	if req.TransactionalID == nil {
		pid, err := c.allocate()
		if err != nil {
			return fail(err)
		}
		resp.ProducerID, resp.ProducerEpoch = pid, 0
		return resp
	}
	id := *req.TransactionalID
	switch {
	case id == "":
		return fail(tributary.ErrInvalidRequest)
	case req.TransactionTimeoutMillis <= 0 || req.TransactionTimeoutMillis > c.cfg.MaxTimeoutMs:
		return fail(tributary.ErrInvalidTransactionTimeout)
	}

	t, err := c.lookup(id)
	if err != nil {
		return fail(err)
	}
	if t == nil {
		pid, err := c.allocate()
		if err != nil {
			return fail(err)
		}
		// Not durable until the transition below is recorded, as in
		// Kafka, which caches the new metadata before appending it.
		t = &txn{
			id:             id,
			partition:      Partition(id, c.cfg.NumPartitions),
			producerID:     pid,
			prevProducerID: -1,
			epoch:          -1,
			lastEpoch:      -1,
			timeoutMs:      req.TransactionTimeoutMillis,
			state:          stateEmpty,
			startMs:        -1,
			updateMs:       ms,
		}
		c.txns[id] = t
		defer func() {
			// A failed request leaves no unrecorded id behind.
			if t.epoch == -1 {
				delete(c.txns, id)
			}
		}()
	}

	if expected {
		// Kafka's isValidProducerId: a brand-new id (epoch -1), the
		// current producer id, or the previous one retrying after its
		// exhausted epoch made the coordinator rotate ids.
		valid := t.epoch == -1 || req.ProducerID == t.producerID ||
			(req.ProducerID == t.prevProducerID && epochExhausted(req.ProducerEpoch))
		if !valid {
			return fail(tributary.ErrProducerFenced)
		}
	}

	switch t.state {
	case statePrepareCommit, statePrepareAbort:
		return fail(tributary.ErrConcurrentTransactions)

	case stateOngoing:
		if t.epoch == math.MaxInt16 {
			// Kafka cannot fence past Short.MAX_VALUE either (it throws);
			// unreachable unless the log was written by something else.
			return fail(tributary.ErrUnknownServerError)
		}
		// Abort the previous producer's transaction with an epoch bump
		// that is never handed out; the client retries, and its retry
		// bumps again (or rotates the id if the fence exhausted the
		// epochs).
		c.fenceAndAbort(t, ms)
		return fail(tributary.ErrConcurrentTransactions)
	}

	// Empty, CompleteCommit or CompleteAbort.
	newPID, newEpoch, lastEpoch := t.producerID, t.epoch, t.lastEpoch
	switch {
	case epochExhausted(t.epoch) && (!expected || req.ProducerEpoch == t.epoch):
		pid, err := c.allocate()
		if err != nil {
			return fail(err)
		}
		newPID, newEpoch, lastEpoch = pid, 0, -1
		if expected {
			lastEpoch = t.epoch
		}
	case !expected:
		newEpoch, lastEpoch = t.epoch+1, -1
	case t.epoch == -1 || req.ProducerEpoch == t.epoch:
		newEpoch, lastEpoch = t.epoch+1, t.epoch
	case req.ProducerEpoch == t.lastEpoch:
		// A retry of a bump whose answer the client never got: answer
		// the same epoch again.
	default:
		return fail(tributary.ErrProducerFenced)
	}
	t.prevProducerID = t.producerID
	t.producerID, t.epoch, t.lastEpoch = newPID, newEpoch, lastEpoch
	t.timeoutMs = req.TransactionTimeoutMillis
	t.state = stateEmpty
	t.partitions = nil
	t.startMs = -1
	t.updateMs = ms
	c.store(t)

	resp.ProducerID, resp.ProducerEpoch = t.producerID, t.epoch
	return resp
}
