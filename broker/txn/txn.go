package txn

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// state is a transaction's state, numbered as Kafka numbers it in
// TxnMetadataValue.State (kmsg.TransactionState).
type state int8

const (
	stateEmpty             state = 0
	stateOngoing           state = 1
	statePrepareCommit     state = 2
	statePrepareAbort      state = 3
	stateCompleteCommit    state = 4
	stateCompleteAbort     state = 5
	stateDead              state = 6 // Kafka's in-memory state while expiring; never written
	statePrepareEpochFence state = 7 // Kafka's in-memory state while fencing; never written
)

// String is Kafka's name for the state, as DescribeTransactions and
// ListTransactions show it.
func (s state) String() string { return kmsg.TransactionState(s).String() }

// expirable reports whether an idle transactional id in this state may be
// expired (Kafka's isExpirationAllowed).
func (s state) expirable() bool {
	return s == stateEmpty || s == stateCompleteCommit || s == stateCompleteAbort
}

func stateByName(name string) (state, bool) {
	for s := stateEmpty; s <= statePrepareEpochFence; s++ {
		if s.String() == name {
			return s, true
		}
	}
	return 0, false
}

// Producer epochs stop at Short.MAX_VALUE-1 so the coordinator can always
// bump once more to fence (Kafka's TransactionMetadata.isEpochExhausted).
func epochExhausted(epoch int16) bool { return epoch >= math.MaxInt16-1 }

// txn is the coordinator's view of one transactional id, Kafka's
// TransactionMetadata. There is no pending state: a transition's record is
// appended by the owner before anything else happens to this id, so the
// state here is always the one being made durable.
type txn struct {
	id        string
	partition int32

	producerID int64
	// prevProducerID is the producer id before the last InitProducerId
	// (Kafka's previousProducerId): a retried InitProducerId of a producer
	// whose exhausted epoch made the coordinator rotate its id presents
	// this one. Only written in TxnMetadataValue v1, so lost on reload of
	// v0 records, as in Kafka before transaction.version 1.
	prevProducerID int64
	epoch          int16
	// lastEpoch is the epoch before a KIP-360 bump, so a retried bump
	// returns the same epoch. Kafka never writes it to the log: it is -1
	// after a reload.
	lastEpoch int16

	timeoutMs  int32
	state      state
	partitions map[TopicPartition]struct{}
	startMs    int64 // when the first partition was added; -1 when none
	updateMs   int64 // last transition, for expiry
}

func (t *txn) sortedPartitions() []TopicPartition {
	ps := make([]TopicPartition, 0, len(t.partitions))
	for tp := range t.partitions {
		ps = append(ps, tp)
	}
	sortPartitions(ps)
	return ps
}

// Record versions. The key has only version 0. Values are written in v0,
// the version Kafka writes unless transaction.version >= 1 (KIP-890),
// which this package does not implement; Load reads v0 and v1.
const (
	keyVersion   = 0
	valueVersion = 0
)

func txnKey(id string) []byte {
	k := kmsg.NewTxnMetadataKey()
	k.Version = keyVersion
	k.TransactionalID = id
	return k.AppendTo(nil)
}

// store records the transaction's current state.
func (c *Coordinator) store(t *txn) {
	v := kmsg.NewTxnMetadataValue()
	v.Version = valueVersion
	v.ProducerID = t.producerID
	v.ProducerEpoch = t.epoch
	v.TimeoutMillis = t.timeoutMs
	v.State = kmsg.TransactionState(t.state)
	v.LastUpdateTimestamp = t.updateMs
	v.StartTimestamp = t.startMs
	if t.state != stateEmpty {
		// Kafka writes a null partition list for Empty and a (possibly
		// empty) list otherwise.
		v.Topics = []kmsg.TxnMetadataValueTopic{}
		for _, tp := range t.sortedPartitions() {
			if n := len(v.Topics); n > 0 && v.Topics[n-1].Topic == tp.Topic {
				v.Topics[n-1].Partitions = append(v.Topics[n-1].Partitions, tp.Partition)
				continue
			}
			vt := kmsg.NewTxnMetadataValueTopic()
			vt.Topic = tp.Topic
			vt.Partitions = []int32{tp.Partition}
			v.Topics = append(v.Topics, vt)
		}
	}
	c.record(Record{Partition: t.partition, Key: txnKey(t.id), Value: v.AppendTo(nil)})
}

func (c *Coordinator) load(partition int32, key, value []byte) error {
	if len(key) < 2 {
		return fmt.Errorf("%w: key of %d bytes", ErrMalformedRecord, len(key))
	}
	if version := int16(binary.BigEndian.Uint16(key)); version != keyVersion {
		// Kafka skips keys of unknown versions ("a left over from an
		// aborted upgrade").
		return nil
	}
	var k kmsg.TxnMetadataKey
	if err := k.ReadFrom(key); err != nil {
		return fmt.Errorf("%w: key: %v", ErrMalformedRecord, err)
	}
	if want := Partition(k.TransactionalID, c.cfg.NumPartitions); want != partition {
		return fmt.Errorf("%w: transactional id %q belongs to partition %d, not %d", ErrMalformedRecord, k.TransactionalID, want, partition)
	}
	if value == nil {
		delete(c.txns, k.TransactionalID)
		return nil
	}
	var v kmsg.TxnMetadataValue
	if err := v.ReadFrom(value); err != nil {
		return fmt.Errorf("%w: transactional id %q: value: %v", ErrMalformedRecord, k.TransactionalID, err)
	}
	if v.Version < 0 || v.Version > 1 {
		return fmt.Errorf("%w: transactional id %q: value version %d", ErrMalformedRecord, k.TransactionalID, v.Version)
	}
	s := state(v.State)
	if s < stateEmpty || s > stateCompleteAbort {
		return fmt.Errorf("%w: transactional id %q: state %d", ErrMalformedRecord, k.TransactionalID, v.State)
	}
	if v.ProducerID < 0 || v.ProducerEpoch < 0 {
		return fmt.Errorf("%w: transactional id %q: producer id %d epoch %d", ErrMalformedRecord, k.TransactionalID, v.ProducerID, v.ProducerEpoch)
	}
	t := &txn{
		id:             k.TransactionalID,
		partition:      partition,
		producerID:     v.ProducerID,
		prevProducerID: v.PreviousProducerID,
		epoch:          v.ProducerEpoch,
		lastEpoch:      -1,
		timeoutMs:      v.TimeoutMillis,
		state:          s,
		startMs:        v.StartTimestamp,
		updateMs:       v.LastUpdateTimestamp,
	}
	if v.Version == 0 {
		t.prevProducerID = -1
	}
	if s != stateEmpty {
		t.partitions = make(map[TopicPartition]struct{})
		for _, vt := range v.Topics {
			for _, p := range vt.Partitions {
				t.partitions[TopicPartition{vt.Topic, p}] = struct{}{}
			}
		}
	}
	c.txns[t.id] = t
	return nil
}

// fenceAndAbort aborts t's ongoing transaction on the coordinator's own
// initiative (a newer producer's InitProducerId, or the timeout), bumping
// the epoch so the producer that ran it is fenced: Kafka's
// prepareFenceProducerEpoch followed by the transition to PrepareAbort at
// the bumped epoch. Kafka never writes the intermediate PrepareEpochFence.
func (c *Coordinator) fenceAndAbort(t *txn, ms int64) {
	t.epoch++
	t.lastEpoch = -1
	t.state = statePrepareAbort
	t.updateMs = ms
	c.store(t)
	c.emitMarkers(t)
}
