package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/client"
)

// Transactions (KIP-664): which producers write to a partition, which
// transactional ids exist, and what one transaction holds. These are the
// tools for finding a hanging transaction (one that holds back the last
// stable offset, so read_committed consumers stall).

// ActiveProducer is one producer with state on a partition.
type ActiveProducer struct {
	ProducerID    int64
	ProducerEpoch int32
	// LastSequence is the sequence number of the producer's last record,
	// -1 if none.
	LastSequence int32
	// LastTimestamp is the timestamp of the producer's last record
	// (zero if unknown).
	LastTimestamp time.Time
	// CoordinatorEpoch is the epoch of the transaction coordinator that
	// wrote the producer's last transaction marker, -1 if none.
	CoordinatorEpoch int32
	// CurrentTxnStartOffset is the first offset of the producer's open
	// transaction on the partition, -1 if none is open.
	CurrentTxnStartOffset int64
}

// PartitionProducers are the active producers of one partition.
type PartitionProducers struct {
	Topic     string
	Partition int32
	Producers []ActiveProducer
	Err       error
}

// DescribedProducers are DescribeProducers' results sorted by topic and
// partition.
type DescribedProducers []PartitionProducers

// FirstErr returns the first failed partition's error, naming it, or nil.
func (ds DescribedProducers) FirstErr() error {
	return firstErr(ds, func(d PartitionProducers) (string, error) { return fmt.Sprintf("%s[%d]", d.Topic, d.Partition), d.Err })
}

// Lookup returns the result for one partition.
func (ds DescribedProducers) Lookup(topic string, partition int32) (PartitionProducers, bool) {
	return lookupPartition(ds, topic, partition, func(d PartitionProducers) (string, int32) { return d.Topic, d.Partition })
}

// DescribeProducers asks each partition's leader for the producers with
// state on it (DescribeProducers v0, KIP-664). topics maps a topic to its
// partitions; a nil or empty slice means every partition. A partition
// that failed carries its error.
func (a *Client) DescribeProducers(ctx context.Context, topics map[string][]int32) (DescribedProducers, error) {
	out, err := askLeaders(ctx, a, topics, func(ps []tributary.TopicPartition) kmsg.Request {
		req := kmsg.NewPtrDescribeProducersRequest()
		for _, g := range groupByTopic(ps) {
			rt := kmsg.NewDescribeProducersRequestTopic()
			rt.Topic = g.topic
			rt.Partitions = g.partitions
			req.Topics = append(req.Topics, rt)
		}
		return req
	}, func(raw kmsg.Response) (as []partitionAnswer[PartitionProducers]) {
		for _, rt := range raw.(*kmsg.DescribeProducersResponse).Topics {
			for _, rp := range rt.Partitions {
				pp := PartitionProducers{Topic: rt.Topic, Partition: rp.Partition, Err: kafkaErr(rp.ErrorCode, rp.ErrorMessage)}
				for _, ap := range rp.ActiveProducers {
					var ts time.Time
					if ap.LastTimestamp >= 0 {
						ts = time.UnixMilli(ap.LastTimestamp)
					}
					pp.Producers = append(pp.Producers, ActiveProducer{
						ProducerID: ap.ProducerID, ProducerEpoch: ap.ProducerEpoch,
						LastSequence: ap.LastSequence, LastTimestamp: ts,
						CoordinatorEpoch: ap.CoordinatorEpoch, CurrentTxnStartOffset: ap.CurrentTxnStartOffset,
					})
				}
				sort.Slice(pp.Producers, func(i, j int) bool { return pp.Producers[i].ProducerID < pp.Producers[j].ProducerID })
				as = append(as, partitionAnswer[PartitionProducers]{
					tp: tributary.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}, code: rp.ErrorCode, answer: pp,
				})
			}
		}
		return as
	}, func(tp tributary.TopicPartition, err error) PartitionProducers {
		return PartitionProducers{Topic: tp.Topic, Partition: tp.Partition, Err: err}
	})
	if err != nil {
		return nil, fmt.Errorf("admin: describe producers: %w", err)
	}
	return out, nil
}

// ListedTransaction is one transactional id as ListTransactions shows it.
type ListedTransaction struct {
	TransactionalID string
	ProducerID      int64
	// State is the coordinator's state of the id: "Empty", "Ongoing",
	// "PrepareCommit", "PrepareAbort", "CompleteCommit",
	// "CompleteAbort", "Dead", "PrepareEpochFence".
	State string
	// Coordinator is the node that answered for the id (its
	// coordinator, on Kafka).
	Coordinator int32
}

// ListedTransactions are ListTransactions' results sorted by id.
type ListedTransactions []ListedTransaction

// TxnFilter narrows ListTransactions. The zero value lists everything.
type TxnFilter struct {
	// States keeps ids in one of these states (e.g. "Ongoing").
	States []string
	// ProducerIDs keeps ids currently held by one of these producers.
	ProducerIDs []int64
	// MinDuration keeps transactions open at least this long
	// (ListTransactions v1+, KIP-994; refused by older brokers).
	MinDuration time.Duration
}

// ListTransactions lists the transactional ids of every broker (each
// knows only those it coordinates), filtered by f. If some broker cannot
// answer, the ids of the others are returned with an error naming the
// brokers that failed.
func (a *Client) ListTransactions(ctx context.Context, f TxnFilter) (ListedTransactions, error) {
	meta, err := a.metadata(ctx, []string{})
	if err != nil {
		return nil, fmt.Errorf("admin: list transactions: %w", err)
	}
	var (
		mu   sync.Mutex
		out  ListedTransactions
		errs []error
		wg   sync.WaitGroup
	)
	nodes := make([]int32, 0, len(meta.Brokers))
	for _, b := range meta.Brokers {
		nodes = append(nodes, b.NodeID)
	}
	a.knowBrokers(ctx, nodes)
	for _, b := range meta.Brokers {
		wg.Go(func() {
			req := kmsg.NewPtrListTransactionsRequest()
			req.StateFilters = f.States
			req.ProducerIDFilters = f.ProducerIDs
			req.DurationFilterMillis = -1
			var r kmsg.Request = client.Limit(req, 0, 1)
			if f.MinDuration > 0 {
				req.DurationFilterMillis = f.MinDuration.Milliseconds()
				r = client.Limit(req, 1, 1)
			}
			raw, err := a.cl.RequestBroker(ctx, b.NodeID, r)
			var resp *kmsg.ListTransactionsResponse
			if err == nil {
				resp = raw.(*kmsg.ListTransactionsResponse)
				if resp.ErrorCode != 0 {
					err = kafkaErr(resp.ErrorCode, nil)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("broker %d: %w", b.NodeID, err))
				return
			}
			for _, s := range resp.TransactionStates {
				out = append(out, ListedTransaction{
					TransactionalID: s.TransactionalID, ProducerID: s.ProducerID,
					State: s.TransactionState, Coordinator: b.NodeID,
				})
			}
		})
	}
	wg.Wait()
	// Kafka brokers list only the ids they coordinate; some
	// Kafka-compatible ones (kfake) list all of them on every broker:
	// keep one entry per id, the lowest node's.
	sort.Slice(out, func(i, j int) bool {
		if out[i].TransactionalID != out[j].TransactionalID {
			return out[i].TransactionalID < out[j].TransactionalID
		}
		return out[i].Coordinator < out[j].Coordinator
	})
	out = slices.CompactFunc(out, func(a, b ListedTransaction) bool { return a.TransactionalID == b.TransactionalID })
	if len(errs) > 0 {
		return out, fmt.Errorf("admin: list transactions: %w", errors.Join(errs...))
	}
	return out, nil
}

// TxnPartition is a partition of a transaction.
type TxnPartition struct {
	Topic     string
	Partition int32
}

// DescribedTransaction is one transactional id as its coordinator
// describes it (DescribeTransactions v0).
type DescribedTransaction struct {
	TransactionalID string
	// Coordinator is the node that answered.
	Coordinator int32
	// State: see ListedTransaction.State.
	State         string
	ProducerID    int64
	ProducerEpoch int16
	// Timeout is the transaction timeout the producer asked for.
	Timeout time.Duration
	// Started is when the open transaction started; zero without one.
	Started time.Time
	// Partitions are the partitions in the open transaction, sorted.
	Partitions []TxnPartition
	Err        error
}

// DescribedTransactions are DescribeTransactions' results in request
// order.
type DescribedTransactions []DescribedTransaction

// FirstErr returns the first failed id's error, naming it, or nil.
func (ds DescribedTransactions) FirstErr() error {
	return firstErr(ds, func(d DescribedTransaction) (string, error) { return d.TransactionalID, d.Err })
}

// On returns the described transactional id.
func (ds DescribedTransactions) On(id string) (DescribedTransaction, bool) {
	return lookup(ds, id, func(d DescribedTransaction) string { return d.TransactionalID })
}

// DescribeTransactions describes transactional ids, asking each id's
// transaction coordinator (FindCoordinator key type 1). An unknown id
// fails alone with tributary.ErrTransactionalIdNotFound.
func (a *Client) DescribeTransactions(ctx context.Context, ids ...string) (DescribedTransactions, error) {
	out, err := askCoordinatorsOf(ctx, a, 1, ids, func(ids []string) kmsg.Request {
		req := kmsg.NewPtrDescribeTransactionsRequest()
		req.TransactionalIDs = ids
		return req
	}, func(node int32, raw kmsg.Response) (as []groupAnswer[DescribedTransaction]) {
		for _, s := range raw.(*kmsg.DescribeTransactionsResponse).TransactionStates {
			d := DescribedTransaction{
				TransactionalID: s.TransactionalID, Coordinator: node, State: s.State,
				ProducerID: s.ProducerID, ProducerEpoch: s.ProducerEpoch,
				Timeout: time.Duration(s.TimeoutMillis) * time.Millisecond,
				Err:     kafkaErr(s.ErrorCode, nil),
			}
			if s.StartTimestamp > 0 {
				d.Started = time.UnixMilli(s.StartTimestamp)
			}
			for _, t := range s.Topics {
				for _, p := range t.Partitions {
					d.Partitions = append(d.Partitions, TxnPartition{Topic: t.Topic, Partition: p})
				}
			}
			sort.Slice(d.Partitions, func(i, j int) bool {
				return tpLess(d.Partitions[i].Topic, d.Partitions[i].Partition, d.Partitions[j].Topic, d.Partitions[j].Partition)
			})
			as = append(as, groupAnswer[DescribedTransaction]{s.TransactionalID, s.ErrorCode, d})
		}
		return as
	}, func(id string, err error) DescribedTransaction {
		return DescribedTransaction{TransactionalID: id, Coordinator: -1, Err: err}
	})
	if err != nil {
		return nil, fmt.Errorf("admin: describe transactions: %w", err)
	}
	return out, nil
}
