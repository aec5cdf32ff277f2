package broker

// DescribeTransactions (v0) and ListTransactions (v0–1), KIP-664: what
// the transaction coordinator on this broker holds. Each broker answers
// for the transactional ids it coordinates, as in Kafka (admin clients
// ask every broker and merge).

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

func init() {
	register(65, 0, 0, handleDescribeTransactions)
	register(66, 0, 1, handleListTransactions)
}

func handleDescribeTransactions(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.DescribeTransactionsRequest)
	return b.callTxns(req, &txnCall{ids: r.TransactionalIDs, run: func(tc *txnCoordinator, now time.Time) kmsg.Response {
		resp := tc.c.DescribeTransactions(now, r)
		// Ids whose partition is loading or led elsewhere: say so.
		for i := range resp.TransactionStates {
			s := &resp.TransactionStates[i]
			if e := tc.idError(s.TransactionalID); e != nil {
				s.ErrorCode = e.Code
			}
		}
		return resp
	}})
}

func handleListTransactions(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.ListTransactionsRequest)
	return b.callTxns(req, &txnCall{run: func(tc *txnCoordinator, now time.Time) kmsg.Response {
		resp := tc.c.ListTransactions(now, r)
		if tc.anyLoading() {
			resp.ErrorCode = tributary.ErrCoordinatorLoadInProgress.Code
		}
		return resp
	}})
}
