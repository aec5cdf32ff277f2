package txn

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// everyState leaves one transactional id in each state Kafka writes, and
// one expired (tombstoned), and returns the ids by state.
func everyState(t *testing.T) (*harness, []string) {
	h := newHarness(t, func(c *Config) { c.ExpirationMs = int64(time.Hour / time.Millisecond) })
	h.producer("expired").mustInit()
	h.advance(time.Hour)
	require.Equal(t, codeNotFound, h.describe("expired").ErrorCode)

	h.producer("empty").mustInit()
	on := h.producer("ongoing").mustInit()
	require.Zero(t, on.add("t", 0, 1))
	require.Zero(t, on.addOffsets("g"))

	end := func(id string, commit, complete bool) {
		p := h.producer(id).mustInit()
		require.Zero(t, p.add("t", 2))
		require.Zero(t, p.add("u", 0))
		require.Zero(t, p.end(commit))
		if complete {
			h.writeMarkers()
		}
	}
	end("ccommit", true, true)
	end("cabort", false, true)
	end("pcommit", true, false)
	end("pabort", false, false)

	// An ongoing transaction fenced by a new instance: PrepareAbort at a
	// bumped epoch.
	f := h.producer("fenced").mustInit()
	require.Zero(t, f.add("t", 3))
	require.Equal(t, codeConcurrent, h.producer("fenced").init())

	ids := []string{"empty", "ongoing", "pcommit", "pabort", "ccommit", "cabort", "fenced"}
	want := []string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "PrepareAbort"}
	for i, id := range ids {
		require.Equal(t, want[i], h.state(id), id)
	}
	return h, ids
}

func TestLoadRebuildsEveryState(t *testing.T) {
	h, ids := everyState(t)
	n := h.replay()
	for _, id := range ids {
		assert.Equal(t, h.describe(id), n.describe(id), id)
	}
	assert.Equal(t, codeNotFound, n.describe("expired").ErrorCode, "the tombstone deletes")
	list := kmsg.NewPtrListTransactionsRequest()
	assert.Equal(t, h.c.ListTransactions(h.now, list), n.c.ListTransactions(n.now, list))

	// Transactions left in PrepareCommit/PrepareAbort get their markers
	// written again, at the new coordinator epoch.
	var pending []MarkerJob
	for _, j := range h.markers {
		j.CoordinatorEpoch = n.epoch
		pending = append(pending, j)
	}
	assert.ElementsMatch(t, pending, n.markers)
	n.writeMarkers()
	assert.Equal(t, "CompleteCommit", n.state("pcommit"))
	assert.Equal(t, "CompleteAbort", n.state("pabort"))
	assert.Equal(t, "CompleteAbort", n.state("fenced"))

	// The reloaded coordinator carries on: the fenced id's new instance
	// gets the epoch after the fence, the zombie stays fenced.
	p := n.producer("fenced").mustInit()
	assert.Equal(t, int16(2), p.epoch)
	on := n.producer("ongoing")
	on.pid, on.epoch = h.describe("ongoing").ProducerID, 0
	require.Zero(t, on.end(true))
	assert.Equal(t, []TopicPartition{{OffsetsTopic, h.cfg.GroupPartition("g")}, {"t", 0}, {"t", 1}}, n.markers[len(n.markers)-1].Partitions)

	// And a second replay, of everything, agrees with the first.
	m := n.replay()
	for _, id := range ids {
		assert.Equal(t, n.describe(id), m.describe(id), id)
	}
}

func TestLoadOfCompactedLogAgrees(t *testing.T) {
	h, ids := everyState(t)
	// Compaction keeps the last record of each key, and eventually drops
	// tombstones.
	last := make(map[string]int)
	for i, r := range h.records {
		last[string(r.Key)] = i
	}
	var compacted []Record
	for i, r := range h.records {
		if last[string(r.Key)] == i && r.Value != nil {
			compacted = append(compacted, r)
		}
	}
	h.records = compacted
	n := h.replay()
	for _, id := range ids {
		assert.Equal(t, h.describe(id), n.describe(id), id)
	}
}

func TestLoadReadsValueV1(t *testing.T) {
	h := newHarness(t)
	v := kmsg.NewTxnMetadataValue()
	v.Version = 1
	v.ProducerID, v.ProducerEpoch, v.TimeoutMillis = 1002, 0, 30000
	v.State = 1
	v.Topics = []kmsg.TxnMetadataValueTopic{{Topic: "t", Partitions: []int32{4}}}
	v.LastUpdateTimestamp, v.StartTimestamp = 5, 4
	v.PreviousProducerID, v.NextProducerID, v.ClientTransactionVersion = 600, -1, 0
	part := Partition("v1", 50)
	require.NoError(t, h.c.Load(part, txnKey("v1"), v.AppendTo(nil)))
	h.c.Loaded(h.now, part, 3)
	assert.Equal(t, kmsg.DescribeTransactionsResponseTransactionState{
		TransactionalID: "v1", State: "Ongoing", TimeoutMillis: 30000, StartTimestamp: 4,
		ProducerID: 1002, ProducerEpoch: 0,
		Topics: []kmsg.DescribeTransactionsResponseTransactionStateTopic{{Topic: "t", Partitions: []int32{4}}},
	}, h.describe("v1"))
	assert.Equal(t, int64(600), h.c.txns["v1"].prevProducerID)
}

func TestLoadRejectsMalformedRecords(t *testing.T) {
	good := kmsg.NewTxnMetadataValue()
	good.ProducerID, good.ProducerEpoch, good.TimeoutMillis, good.State = 7, 0, 1000, 0
	goodValue := good.AppendTo(nil)
	value := func(f func(*kmsg.TxnMetadataValue)) []byte {
		v := good
		f(&v)
		return v.AppendTo(nil)
	}
	id := "x"
	part := Partition(id, 50)
	for _, tc := range []struct {
		name      string
		partition int32
		key       []byte
		value     []byte
	}{
		{"empty key", part, nil, goodValue},
		{"one-byte key", part, []byte{0}, goodValue},
		{"truncated key", part, txnKey(id)[:3], goodValue},
		{"wrong partition", part + 1, txnKey(id), goodValue},
		{"empty value", part, txnKey(id), []byte{}},
		{"truncated value", part, txnKey(id), goodValue[:len(goodValue)-3]},
		{"value version 2", part, txnKey(id), value(func(v *kmsg.TxnMetadataValue) { v.Version = 2 })},
		{"negative value version", part, txnKey(id), value(func(v *kmsg.TxnMetadataValue) { v.Version = -1 })},
		{"unknown state", part, txnKey(id), value(func(v *kmsg.TxnMetadataValue) { v.State = 9 })},
		{"Dead state", part, txnKey(id), value(func(v *kmsg.TxnMetadataValue) { v.State = 6 })},
		{"PrepareEpochFence state", part, txnKey(id), value(func(v *kmsg.TxnMetadataValue) { v.State = 7 })},
		{"negative producer id", part, txnKey(id), value(func(v *kmsg.TxnMetadataValue) { v.ProducerID = -1 })},
		{"negative epoch", part, txnKey(id), value(func(v *kmsg.TxnMetadataValue) { v.ProducerEpoch = -1 })},
		{"huge topic count", part, txnKey(id), func() []byte {
			b := value(func(v *kmsg.TxnMetadataValue) { v.State = 1; v.Topics = []kmsg.TxnMetadataValueTopic{} })
			binary.BigEndian.PutUint32(b[17:], 1<<30) // the array length after version, pid, epoch, timeout, state
			return b
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.loadState(id, 7, 3, stateCompleteCommit)
			before := h.describe(id)
			// Replay the partition: the good record, then the bad one.
			h.c.BeginLoad(tc.partition)
			if tc.partition != part {
				h.c.BeginLoad(part)
			}
			require.NoError(t, h.c.Load(part, txnKey(id), baseline(7, 3, stateCompleteCommit, h.now)))
			err := h.c.Load(tc.partition, tc.key, tc.value)
			require.ErrorIs(t, err, ErrMalformedRecord)
			h.c.Loaded(h.now, part, 1)
			h.c.Loaded(h.now, tc.partition, 1)
			assert.Equal(t, before, h.describe(id), "a malformed record changes nothing")
		})
	}
}

func TestLoadSkipsUnknownKeyVersions(t *testing.T) {
	h := newHarness(t)
	key := txnKey("x")
	binary.BigEndian.PutUint16(key, 1)
	require.NoError(t, h.c.Load(0, key, []byte("anything")))
	binary.BigEndian.PutUint16(key, 0xffff)
	require.NoError(t, h.c.Load(0, key, nil))
}

func TestBeginLoadDropsPreviousState(t *testing.T) {
	h := newHarness(t)
	h.producer("tx").mustInit()
	part := Partition("tx", 50)
	h.c.BeginLoad(part)
	h.c.Loaded(h.now, part, 5)
	assert.Equal(t, codeNotFound, h.describe("tx").ErrorCode, "a reload starts from what the log holds")
}

// FuzzLoad feeds arbitrary records to Load. Invariants: Load never
// panics; a record it rejects changes nothing; a record it accepts can be
// written back (store) and read again to the same state; and the
// coordinator keeps answering every API afterwards without panicking.
func FuzzLoad(f *testing.F) {
	v := kmsg.NewTxnMetadataValue()
	v.ProducerID, v.ProducerEpoch, v.TimeoutMillis, v.State = 7, 0, 1000, 0
	f.Add(txnKey("tx"), v.AppendTo(nil), false)
	v.State, v.Topics = 2, []kmsg.TxnMetadataValueTopic{{Topic: "t", Partitions: []int32{0, 1}}}
	f.Add(txnKey("tx"), v.AppendTo(nil), false)
	v.Version, v.PreviousProducerID = 1, 3
	f.Add(txnKey("tx"), v.AppendTo(nil), false)
	f.Add(txnKey("tx"), []byte(nil), true)

	f.Fuzz(func(t *testing.T, key, value []byte, tombstone bool) {
		h := &harness{t: t, now: t0, nextPID: 1000, epoch: 1}
		h.cfg = testConfig(h)
		h.cfg.NumPartitions = 1 // every id maps to partition 0
		c, err := New(h.cfg)
		require.NoError(t, err)
		h.c = c
		if tombstone {
			value = nil
		}
		c.BeginLoad(0)
		require.NoError(t, c.Load(0, txnKey("tx"), baseline(7, 3, stateOngoing, h.now, kmsg.TxnMetadataValueTopic{Topic: "t", Partitions: []int32{9}})))
		before := *c.txns["tx"]
		err = c.Load(0, key, value)
		if err != nil {
			require.ErrorIs(t, err, ErrMalformedRecord)
			got := c.txns["tx"]
			require.NotNil(t, got)
			require.Equal(t, before.producerID, got.producerID)
			require.Equal(t, before.partitions, got.partitions)
		}
		c.Loaded(h.now, 0, 2)
		out := c.Drain()
		for _, j := range out.Markers {
			c.MarkersWritten(h.now, j)
		}
		c.Drain()

		// Round trip of whatever was accepted.
		for id, tx := range c.txns {
			c.store(tx)
			rec := c.Drain().Records
			require.Len(t, rec, 1)
			c2, err := New(h.cfg)
			require.NoError(t, err)
			require.NoError(t, c2.Load(0, rec[0].Key, rec[0].Value), "re-reading %q", id)
			got := c2.txns[id]
			require.NotNil(t, got)
			require.Equal(t, tx.producerID, got.producerID)
			require.Equal(t, tx.epoch, got.epoch)
			require.Equal(t, tx.state, got.state)
			require.Equal(t, len(tx.partitions), len(got.partitions))
		}

		for id := range c.txns {
			d := kmsg.NewPtrDescribeTransactionsRequest()
			d.TransactionalIDs = []string{id}
			c.DescribeTransactions(h.now, d)
			p := h.producer(id)
			p.init()
			p.add("t", 0)
			p.end(true)
		}
		c.ListTransactions(h.now, kmsg.NewPtrListTransactionsRequest())
		c.Tick(h.now.Add(24 * time.Hour))
		c.Tick(h.now.Add(30 * 24 * time.Hour))
	})
}

// baseline encodes a well-formed value, as loadState writes it.
func baseline(pid int64, epoch int16, s state, now time.Time, topics ...kmsg.TxnMetadataValueTopic) []byte {
	v := kmsg.NewTxnMetadataValue()
	v.ProducerID, v.ProducerEpoch, v.TimeoutMillis, v.State = pid, epoch, 60000, kmsg.TransactionState(s)
	v.LastUpdateTimestamp, v.StartTimestamp = now.UnixMilli(), -1
	if s != stateEmpty {
		v.Topics = topics
		v.StartTimestamp = now.UnixMilli()
	}
	return v.AppendTo(nil)
}
