package broker

// Transactional produce verification (KIP-890 part 1, Kafka 3.6+): the
// first transactional batch of a producer in a partition (the one that
// would open a transaction there) is appended only if the transaction
// coordinator confirms, with AddPartitionsToTxn v4 VerifyOnly, that the
// partition was added to the producer's ongoing transaction at that
// epoch. Without it a zombie, or a client that skipped the add, opens a
// transaction no coordinator knows of: nothing would ever end it, and the
// partition's last stable offset (and with it every read_committed
// consumer, retention and the cleaner) would stop there for good.
//
// Batches that join a transaction already open in the partition are not
// checked again; that transaction's marker ends them. The partition's
// txnMu is held from the check to the append, and markers take it too,
// so a transaction cannot end between the coordinator's answer and the
// append (the window Kafka closes with its VerificationGuard). A coordinator that
// cannot be asked (moving, loading, unreachable) gets the retriable
// NOT_ENOUGH_REPLICAS, as Kafka answers then; a partition not in the
// transaction INVALID_TXN_STATE; a stale epoch the coordinator's fencing
// error.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/txn"
	"github.com/tributary/tributary/internal/batch"
)

// txnVerifyTimeout bounds the wait for a remote coordinator's answer.
const txnVerifyTimeout = 5 * time.Second

// verifyTxnProduce checks records (a produce request's batches for one
// partition p) against the coordinator when they would open a
// transaction. When the append may go ahead it returns a nil error and,
// if it verified, the unlock of p.txnMu, which the caller calls after
// the append: markers wait meanwhile (Kafka's VerificationGuard).
func (b *Broker) verifyTxnProduce(req *request, txnID string, topic string, p *partition, records []byte) (unlock func(), _ *tributary.Error) {
	h, err := batch.ParseHeader(records)
	if err != nil || !h.IsTransactional() || h.ProducerID < 0 {
		return nil, nil // validation at the append answers malformed batches
	}
	if p.log.HasOpenTransaction(h.ProducerID) {
		return nil, nil
	}
	p.txnMu.Lock()
	if p.log.HasOpenTransaction(h.ProducerID) {
		p.txnMu.Unlock()
		return nil, nil
	}
	if e := b.askVerify(req, txnID, topic, p, &h); e != nil {
		p.txnMu.Unlock()
		return nil, e
	}
	return p.txnMu.Unlock, nil
}

// askVerify asks the coordinator whether p is in the ongoing
// transaction of the batch's producer and epoch.
func (b *Broker) askVerify(req *request, txnID string, topic string, p *partition, h *batch.Header) *tributary.Error {
	v := kmsg.NewPtrAddPartitionsToTxnRequest()
	v.Version = 4
	tx := kmsg.NewAddPartitionsToTxnRequestTransaction()
	tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch, tx.VerifyOnly = txnID, h.ProducerID, h.ProducerEpoch, true
	tt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
	tt.Topic, tt.Partitions = topic, []int32{p.index}
	tx.Topics = []kmsg.AddPartitionsToTxnRequestTransactionTopic{tt}
	v.Transactions = []kmsg.AddPartitionsToTxnRequestTransaction{tx}

	resp, err := b.askTxnCoordinator(req, txnID, v)
	if err != nil {
		return tributary.ErrNotEnoughReplicas
	}
	code := resp.ErrorCode
	for _, rt := range resp.Transactions {
		for _, t := range rt.Topics {
			for _, rp := range t.Partitions {
				if rp.ErrorCode != 0 {
					code = rp.ErrorCode
				}
			}
		}
	}
	switch code {
	case 0:
		return nil
	case tributary.ErrNotCoordinator.Code, tributary.ErrCoordinatorNotAvailable.Code, tributary.ErrCoordinatorLoadInProgress.Code,
		tributary.ErrConcurrentTransactions.Code:
		return tributary.ErrNotEnoughReplicas
	case tributary.ErrTransactionAbortable.Code:
		// Not in the transaction. Produce v11 and older clients know
		// INVALID_TXN_STATE for that, as Kafka answers them.
		return tributary.ErrInvalidTxnState
	case tributary.ErrProducerFenced.Code, tributary.ErrInvalidProducerEpoch.Code, tributary.ErrInvalidProducerIdMapping.Code,
		tributary.ErrInvalidTxnState.Code:
		if e, ok := tributary.ErrorForCode(code).(*tributary.Error); ok {
			return e
		}
	}
	return tributary.ErrInvalidTxnState
}

// askTxnCoordinator sends a batched AddPartitionsToTxn to the
// coordinator of txnID: this broker's loop when it coordinates the id,
// the coordinating broker otherwise.
func (b *Broker) askTxnCoordinator(req *request, txnID string, v *kmsg.AddPartitionsToTxnRequest) (*kmsg.AddPartitionsToTxnResponse, error) {
	node, _, _, terr, _ := b.txnCoordinatorFor(txnID)
	if terr != nil {
		return nil, terr
	}
	if node == b.cfg.NodeID {
		raw, err := b.txnRequest(req, []string{txnID}, func(e *tributary.Error) kmsg.Response {
			return addPartitionsError(v, e.Code)
		}, func(c *txn.Coordinator, now time.Time) kmsg.Response {
			return c.AddPartitionsToTxn(now, v)
		})
		if err != nil {
			return nil, err
		}
		return raw.(*kmsg.AddPartitionsToTxnResponse), nil
	}
	ctx, cancel := context.WithTimeout(b.life, txnVerifyTimeout)
	defer cancel()
	return peerCall[*kmsg.AddPartitionsToTxnResponse](ctx, b, node, laneOther, v)
}
