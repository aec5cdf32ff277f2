package txn

// DescribeTransactions: v0.
//
// One answer per requested transactional id: its state, producer id and
// epoch, timeout, start time and partitions; NOT_COORDINATOR or
// COORDINATOR_LOAD_IN_PROGRESS when its partition is not (yet) led here,
// TRANSACTIONAL_ID_NOT_FOUND when unknown, INVALID_REQUEST for "".
// Authorisation (and hiding topics the principal may not describe) is the
// caller's.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// DescribeTransactions answers DescribeTransactions. It changes nothing.
func (c *Coordinator) DescribeTransactions(now time.Time, req *kmsg.DescribeTransactionsRequest) *kmsg.DescribeTransactionsResponse {
	c.observe(now.UnixMilli())
	resp := kmsg.NewPtrDescribeTransactionsResponse()
	resp.Version = req.Version
	for _, id := range req.TransactionalIDs {
		s := kmsg.NewDescribeTransactionsResponseTransactionState()
		s.TransactionalID = id
		t, err := c.lookup(id)
		switch {
		case id == "":
			s.ErrorCode = tributary.ErrInvalidRequest.Code
		case err != nil:
			s.ErrorCode = err.Code
		case t == nil || t.epoch == -1:
			s.ErrorCode = tributary.ErrTransactionalIdNotFound.Code
		default:
			s.State = t.state.String()
			s.ProducerID = t.producerID
			s.ProducerEpoch = t.epoch
			s.TimeoutMillis = t.timeoutMs
			s.StartTimestamp = t.startMs
			for _, tp := range t.sortedPartitions() {
				if n := len(s.Topics); n > 0 && s.Topics[n-1].Topic == tp.Topic {
					s.Topics[n-1].Partitions = append(s.Topics[n-1].Partitions, tp.Partition)
					continue
				}
				st := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
				st.Topic = tp.Topic
				st.Partitions = []int32{tp.Partition}
				s.Topics = append(s.Topics, st)
			}
		}
		resp.TransactionStates = append(resp.TransactionStates, s)
	}
	return resp
}
