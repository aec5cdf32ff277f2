package txn

// ListTransactions: v0–2.
//
// Every transactional id of the partitions led here, filtered by state
// names (unknown names are echoed in UnknownStateFilters and match
// nothing), by producer ids, by v1's DurationFilterMillis (only
// transactions running longer than that) and by v2's
// TransactionalIDPattern (a regular expression the whole id must match,
// as Java's Matcher.matches; Go's RE2 syntax, so patterns using Java-only
// constructs are answered INVALID_REGULAR_EXPRESSION). While any partition
// is loading the answer is COORDINATOR_LOAD_IN_PROGRESS, as in Kafka.
// Authorisation filtering is the caller's.

import (
	"regexp"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// ListTransactions answers ListTransactions. It changes nothing.
func (c *Coordinator) ListTransactions(now time.Time, req *kmsg.ListTransactionsRequest) *kmsg.ListTransactionsResponse {
	ms := now.UnixMilli()
	c.observe(ms)
	resp := kmsg.NewPtrListTransactionsResponse()
	resp.Version = req.Version
	for _, p := range c.parts {
		if p.loading {
			resp.ErrorCode = tributary.ErrCoordinatorLoadInProgress.Code
			return resp
		}
	}

	states := make(map[state]bool)
	for _, name := range req.StateFilters {
		if s, ok := stateByName(name); ok {
			states[s] = true
		} else {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, name)
		}
	}
	pids := make(map[int64]bool)
	for _, pid := range req.ProducerIDFilters {
		pids[pid] = true
	}
	duration := int64(-1)
	if req.Version >= 1 {
		duration = req.DurationFilterMillis
	}
	var pattern *regexp.Regexp
	if req.Version >= 2 && req.TransactionalIDPattern != nil && *req.TransactionalIDPattern != "" {
		re, err := regexp.Compile(`^(?:` + *req.TransactionalIDPattern + `)$`)
		if err != nil {
			resp.ErrorCode = tributary.ErrInvalidRegularExpression.Code
			return resp
		}
		pattern = re
	}

	for _, id := range c.sortedIDs() {
		t := c.txns[id]
		switch {
		case !c.Owns(t.partition) || t.epoch == -1:
		case len(req.StateFilters) > 0 && !states[t.state]:
		case len(pids) > 0 && !pids[t.producerID]:
		case duration >= 0 && ms-t.startMs <= duration:
		case pattern != nil && !pattern.MatchString(id):
		default:
			s := kmsg.NewListTransactionsResponseTransactionState()
			s.TransactionalID = id
			s.ProducerID = t.producerID
			s.TransactionState = t.state.String()
			resp.TransactionStates = append(resp.TransactionStates, s)
		}
	}
	return resp
}
