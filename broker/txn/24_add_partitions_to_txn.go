package txn

// AddPartitionsToTxn: v0–5.
//
// v0–v3 come from producers: one transaction, its partitions added before
// the producer writes to them. The first add of a transaction moves it to
// Ongoing and starts its timeout; partitions already in an ongoing
// transaction are acknowledged without a record. Errors apply to every
// partition of the request: INVALID_PRODUCER_ID_MAPPING for an unknown
// transactional id or another producer id, PRODUCER_FENCED for another
// epoch (INVALID_PRODUCER_EPOCH below v2), CONCURRENT_TRANSACTIONS while
// the previous transaction's commit or abort is being written.
//
// v4+ (KIP-890 part 1) come from brokers and batch several transactions,
// answered one by one. VerifyOnly asks whether the partitions are already
// in the transaction without adding them: NONE for those that are,
// TRANSACTION_ABORTABLE for the others (Kafka 3.8+; 3.6 answered
// INVALID_TXN_STATE), after the same producer checks as an add.
//
// When Config.PartitionExists is set, a transaction naming a partition
// that does not exist is refused as Kafka refuses it: the missing
// partitions UNKNOWN_TOPIC_OR_PARTITION, the others OPERATION_NOT_ATTEMPTED.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// AddPartitionsToTxn answers AddPartitionsToTxn. Any record it produces
// must be durable before the response is sent.
func (c *Coordinator) AddPartitionsToTxn(now time.Time, req *kmsg.AddPartitionsToTxnRequest) *kmsg.AddPartitionsToTxnResponse {
	ms := now.UnixMilli()
	c.observe(ms)
	resp := kmsg.NewPtrAddPartitionsToTxnResponse()
	resp.Version = req.Version

	if req.Version < 4 {
		var parts []TopicPartition
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				parts = append(parts, TopicPartition{t.Topic, p})
			}
		}
		codes := c.addPartitions(ms, req.TransactionalID, req.ProducerID, req.ProducerEpoch, parts, false, true, req.Version)
		for _, rt := range groupCodes(parts, codes) {
			t := kmsg.NewAddPartitionsToTxnResponseTopic()
			t.Topic = rt.topic
			for _, pc := range rt.parts {
				p := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				p.Partition, p.ErrorCode = pc.partition, pc.code
				t.Partitions = append(t.Partitions, p)
			}
			resp.Topics = append(resp.Topics, t)
		}
		return resp
	}

	for _, rtx := range req.Transactions {
		var parts []TopicPartition
		for _, t := range rtx.Topics {
			for _, p := range t.Partitions {
				parts = append(parts, TopicPartition{t.Topic, p})
			}
		}
		codes := c.addPartitions(ms, rtx.TransactionalID, rtx.ProducerID, rtx.ProducerEpoch, parts, rtx.VerifyOnly, true, req.Version)
		tx := kmsg.NewAddPartitionsToTxnResponseTransaction()
		tx.TransactionalID = rtx.TransactionalID
		for _, rt := range groupCodes(parts, codes) {
			t := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
			t.Topic = rt.topic
			for _, pc := range rt.parts {
				p := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
				p.Partition, p.ErrorCode = pc.partition, pc.code
				t.Partitions = append(t.Partitions, p)
			}
			tx.Topics = append(tx.Topics, t)
		}
		resp.Transactions = append(resp.Transactions, tx)
	}
	return resp
}

// addPartitions adds (or, verifyOnly, checks) parts for one transaction
// and returns the error code of each partition.
func (c *Coordinator) addPartitions(ms int64, id string, pid int64, epoch int16, parts []TopicPartition, verifyOnly, checkExists bool, version int16) map[TopicPartition]int16 {
	codes := make(map[TopicPartition]int16, len(parts))
	all := func(err *tributary.Error) map[TopicPartition]int16 {
		if err == tributary.ErrProducerFenced && version < 2 {
			err = tributary.ErrInvalidProducerEpoch
		}
		for _, tp := range parts {
			codes[tp] = err.Code
		}
		return codes
	}
	if id == "" {
		return all(tributary.ErrInvalidRequest)
	}
	if exists := c.cfg.PartitionExists; exists != nil && checkExists {
		missing := false
		for _, tp := range parts {
			if !exists(tp.Topic, tp.Partition) {
				codes[tp] = tributary.ErrUnknownTopicOrPartition.Code
				missing = true
			}
		}
		if missing {
			for _, tp := range parts {
				if _, ok := codes[tp]; !ok {
					codes[tp] = tributary.ErrOperationNotAttempted.Code
				}
			}
			return codes
		}
	}

	t, err := c.lookup(id)
	switch {
	case err != nil:
		return all(err)
	case t == nil || t.producerID != pid:
		return all(tributary.ErrInvalidProducerIdMapping)
	case t.epoch != epoch:
		return all(tributary.ErrProducerFenced)
	case t.state == statePrepareCommit || t.state == statePrepareAbort:
		return all(tributary.ErrConcurrentTransactions)
	}

	if verifyOnly {
		for _, tp := range parts {
			if _, ok := t.partitions[tp]; ok {
				codes[tp] = 0
			} else {
				codes[tp] = tributary.ErrTransactionAbortable.Code
			}
		}
		return codes
	}

	added := false
	for _, tp := range parts {
		codes[tp] = 0
		if _, ok := t.partitions[tp]; !ok || t.state != stateOngoing {
			added = true
		}
	}
	if !added {
		return codes // already in the ongoing transaction: nothing to record
	}
	if t.state != stateOngoing {
		// The first add starts the transaction and its timeout.
		t.partitions = make(map[TopicPartition]struct{})
		t.startMs = ms
		t.state = stateOngoing
	}
	for _, tp := range parts {
		t.partitions[tp] = struct{}{}
	}
	t.updateMs = ms
	c.store(t)
	return codes
}

type topicCodes struct {
	topic string
	parts []partitionCode
}

type partitionCode struct {
	partition int32
	code      int16
}

// groupCodes lists each requested partition once with its code, grouped
// by topic in request order.
func groupCodes(parts []TopicPartition, codes map[TopicPartition]int16) []topicCodes {
	var out []topicCodes
	index := make(map[string]int)
	seen := make(map[TopicPartition]bool)
	for _, tp := range parts {
		if seen[tp] {
			continue
		}
		seen[tp] = true
		i, ok := index[tp.Topic]
		if !ok {
			i = len(out)
			index[tp.Topic] = i
			out = append(out, topicCodes{topic: tp.Topic})
		}
		out[i].parts = append(out[i].parts, partitionCode{tp.Partition, codes[tp]})
	}
	return out
}
