package txn

// EndTxn: v0–5, with the semantics of v0–v4 (transaction.version 0/1).
//
// Commit or abort of an ongoing transaction writes PrepareCommit or
// PrepareAbort; once that record is durable the producer is answered and
// the markers are written asynchronously (Output.Markers), after which
// MarkersWritten completes the transaction. A retry after completion with
// the same outcome succeeds (the client may not have seen the answer);
// the other outcome is INVALID_TXN_STATE. A retry while the markers are
// still being written is CONCURRENT_TRANSACTIONS. EndTxn on a transaction
// that never started (Empty) is INVALID_TXN_STATE. An unknown
// transactional id or another producer id is INVALID_PRODUCER_ID_MAPPING;
// another epoch is PRODUCER_FENCED (INVALID_PRODUCER_EPOCH below v2).
//
// v5 (KIP-890, transaction.version 2) bumps the epoch on every EndTxn in
// Kafka. This package does not: a v5 request is handled as v4 and its
// response carries the unchanged producer id and epoch, so the broker
// should not advertise v5 (nor transaction.version 2).

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// EndTxn answers EndTxn. Any record it produces must be durable before
// the response is sent; marker jobs start after that.
func (c *Coordinator) EndTxn(now time.Time, req *kmsg.EndTxnRequest) *kmsg.EndTxnResponse {
	ms := now.UnixMilli()
	c.observe(ms)
	resp := kmsg.NewPtrEndTxnResponse()
	resp.Version = req.Version
	fail := func(err *tributary.Error) *kmsg.EndTxnResponse {
		if err == tributary.ErrProducerFenced && req.Version < 2 {
			err = tributary.ErrInvalidProducerEpoch
		}
		resp.ErrorCode = err.Code
		resp.ProducerID, resp.ProducerEpoch = -1, -1
		return resp
	}
	if req.TransactionalID == "" {
		return fail(tributary.ErrInvalidRequest)
	}
	t, err := c.lookup(req.TransactionalID)
	switch {
	case err != nil:
		return fail(err)
	case t == nil || t.producerID != req.ProducerID:
		return fail(tributary.ErrInvalidProducerIdMapping)
	case t.epoch != req.ProducerEpoch:
		return fail(tributary.ErrProducerFenced)
	}

	commit := req.Commit
	switch t.state {
	case stateOngoing:
		if commit {
			t.state = statePrepareCommit
		} else {
			t.state = statePrepareAbort
		}
		t.updateMs = ms
		c.store(t)
		c.emitMarkers(t)
	case stateCompleteCommit, stateCompleteAbort:
		if commit != (t.state == stateCompleteCommit) {
			return fail(tributary.ErrInvalidTxnState)
		}
		// A retry of the EndTxn that completed the transaction.
	case statePrepareCommit, statePrepareAbort:
		if commit != (t.state == statePrepareCommit) {
			return fail(tributary.ErrInvalidTxnState)
		}
		return fail(tributary.ErrConcurrentTransactions)
	default: // Empty
		return fail(tributary.ErrInvalidTxnState)
	}
	resp.ProducerID, resp.ProducerEpoch = t.producerID, t.epoch
	return resp
}
