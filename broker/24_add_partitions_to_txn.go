package broker

// AddPartitionsToTxn: v0–5. The transaction coordinator (broker/txn)
// records the partitions a producer is about to write in its transaction,
// so that EndTxn knows where to write markers. v0–3 carry one
// transaction; v4+ (KIP-890) a batch of them, each answered on its own,
// and may only verify (VerifyOnly) without adding.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/txn"
)

func init() { register(24, 0, 5, handleAddPartitionsToTxn) }

func handleAddPartitionsToTxn(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.AddPartitionsToTxnRequest)
	var ids []string
	if r.Version < 4 {
		ids = []string{r.TransactionalID}
	} else {
		for _, t := range r.Transactions {
			ids = append(ids, t.TransactionalID)
		}
	}
	return b.txnRequest(req, ids, func(e *tributary.Error) kmsg.Response {
		return addPartitionsError(r, e.Code)
	}, func(c *txn.Coordinator, now time.Time) kmsg.Response {
		return c.AddPartitionsToTxn(now, r)
	})
}

// addPartitionsError answers every partition of r with code.
func addPartitionsError(r *kmsg.AddPartitionsToTxnRequest, code int16) *kmsg.AddPartitionsToTxnResponse {
	resp := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if r.Version < 4 {
		for _, t := range r.Topics {
			rt := kmsg.NewAddPartitionsToTxnResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	resp.ErrorCode = code
	for _, tx := range r.Transactions {
		rtx := kmsg.NewAddPartitionsToTxnResponseTransaction()
		rtx.TransactionalID = tx.TransactionalID
		for _, t := range tx.Topics {
			rt := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
				rp.Partition, rp.ErrorCode = p, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			rtx.Topics = append(rtx.Topics, rt)
		}
		resp.Transactions = append(resp.Transactions, rtx)
	}
	return resp
}
