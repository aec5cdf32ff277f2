package broker

// AddOffsetsToTxn: v0–4. Adds the group's __consumer_offsets partition
// to the transaction, so that EndTxn writes a marker there too and the
// offsets sent with TxnOffsetCommit become visible (or vanish) with it.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/txn"
)

func init() { register(25, 0, 4, handleAddOffsetsToTxn) }

func handleAddOffsetsToTxn(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.AddOffsetsToTxnRequest)
	fail := func(e *tributary.Error) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
		resp.ErrorCode = e.Code
		return resp
	}
	// The marker must reach __consumer_offsets: make sure it exists.
	if e := b.ensureOffsetsTopic(req); e != nil {
		return fail(e), nil
	}
	return b.txnRequest(req, []string{r.TransactionalID}, fail, func(c *txn.Coordinator, now time.Time) kmsg.Response {
		return c.AddOffsetsToTxn(now, r)
	})
}
