package broker

// EndTxn: v0–4. Commits or aborts a transaction: the coordinator writes
// PrepareCommit/PrepareAbort to __transaction_state, answers, and writes
// the markers to every partition of the transaction in the background
// (txncoord.go). v5 (KIP-890 part 2: an epoch bump per transaction) is
// not advertised: transaction.version stays below 2.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/txn"
)

func init() { register(26, 0, 4, handleEndTxn) }

func handleEndTxn(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.EndTxnRequest)
	return b.txnRequest(req, []string{r.TransactionalID}, func(e *tributary.Error) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = e.Code
		return resp
	}, func(c *txn.Coordinator, now time.Time) kmsg.Response {
		return c.EndTxn(now, r)
	})
}
