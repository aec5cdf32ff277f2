package broker_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary/broker"
	"github.com/tributary/tributary/broker/brokertest"
)

// txnBatch is rawBatch with the transactional attribute: n records of
// values "<prefix>-<i>".
func txnBatch(pid int64, epoch int16, seq int32, prefix string, n int) []byte {
	b := rawBatch(pid, epoch, seq, n, 1)
	// Rebuild the records with readable values; rawBatch's layout is
	// kept (header, then records) so only the body changes.
	var recs []byte
	for i := range n {
		v := fmt.Sprintf("%s-%d", prefix, i)
		var body []byte
		body = append(body, 0)
		body = binary.AppendVarint(body, 0)
		body = binary.AppendVarint(body, int64(i))
		body = binary.AppendVarint(body, -1)
		body = binary.AppendVarint(body, int64(len(v)))
		body = append(body, v...)
		body = binary.AppendUvarint(body, 0)
		recs = binary.AppendVarint(recs, int64(len(body)))
		recs = append(recs, body...)
	}
	b = append(b[:61], recs...)
	be := binary.BigEndian
	be.PutUint32(b[8:], uint32(49+len(recs)))
	be.PutUint16(b[21:], 0x10) // transactional
	be.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

// readCommitted reads every record of topic from the start with
// isolation level isolation until want records arrived.
func readIsolated(t *testing.T, addr, topic string, want int, committed bool) []*kgo.Record {
	t.Helper()
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	return consume(t, addr, topic, want, kgo.FetchIsolationLevel(iso))
}

// A committed transaction is visible to read_committed consumers, an
// aborted one is not (and never will be), and both are visible to
// read_uncommitted ones; while a transaction is open the last stable
// offset holds read_committed readers before it.
func TestTxnCommitAbortAndLastStableOffset(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b.Addr(), "txn-a", 2, nil)
	cl := newClient(t, b.Addr(), kgo.TransactionalID("txn-a-producer"), kgo.DefaultProduceTopic("txn-a"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := testCtx(t)
	produce := func(prefix string, n int) {
		for i := range n {
			r := &kgo.Record{Partition: int32(i % 2), Value: fmt.Appendf(nil, "%s-%d", prefix, i)}
			require.NoError(t, cl.ProduceSync(ctx, r).FirstErr())
		}
	}
	require.NoError(t, cl.BeginTransaction())
	produce("c1", 10)
	require.NoError(t, cl.EndTransaction(ctx, kgo.TryCommit))
	require.NoError(t, cl.BeginTransaction())
	produce("a1", 6)
	require.NoError(t, cl.EndTransaction(ctx, kgo.TryAbort))

	// An open transaction: the LSO stops at its first record.
	require.NoError(t, cl.BeginTransaction())
	produce("c2", 4)
	lso, hw := listLatest(t, cl, "txn-a", 0, 1), listLatest(t, cl, "txn-a", 0, 0)
	require.Less(t, lso, hw, "the open transaction must hold the LSO back")
	require.NoError(t, cl.EndTransaction(ctx, kgo.TryCommit))
	require.Eventually(t, func() bool { return listLatest(t, cl, "txn-a", 0, 1) == listLatest(t, cl, "txn-a", 0, 0) },
		10*time.Second, 20*time.Millisecond, "the LSO must reach the HW once the commit marker is written")

	got := readIsolated(t, b.Addr(), "txn-a", 14, true)
	for _, r := range got {
		require.NotContains(t, string(r.Value), "a1-", "an aborted record reached a read_committed consumer")
	}
	require.Len(t, got, 14)
	all := readIsolated(t, b.Addr(), "txn-a", 20, false)
	require.Len(t, all, 20, "read_uncommitted sees aborted records too")
}

// listLatest is ListOffsets latest for one partition at an isolation
// level (0 read_uncommitted: the HW; 1 read_committed: the LSO).
func listLatest(t *testing.T, cl *kgo.Client, topic string, partition int32, isolation int8) int64 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = 5
	req.IsolationLevel = isolation
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = partition, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t), cl)
	require.NoError(t, err)
	p := resp.Topics[0].Partitions[0]
	require.Zero(t, p.ErrorCode)
	return p.Offset
}

// A zombie producer (an old epoch of a transactional id) is fenced once a
// new instance initialises the id: its open transaction is aborted, and
// its late Produce, TxnOffsetCommit and EndTxn are refused and land in no
// transaction.
// initTxnPID sends InitProducerId for the transactional id until the
// coordinator has loaded and no transaction of an earlier epoch is still
// ending (what a client retries); any other error fails the test.
func initTxnPID(t *testing.T, ctx context.Context, cl *kgo.Client, id string) (int64, int16) {
	t.Helper()
	for {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.Version = 4
		req.TransactionalID = kmsg.StringPtr(id)
		req.TransactionTimeoutMillis = 60000
		req.ProducerID, req.ProducerEpoch = -1, -1
		resp, err := req.RequestWith(ctx, cl)
		require.NoError(t, err)
		if resp.ErrorCode == kerr.ConcurrentTransactions.Code || resp.ErrorCode == kerr.CoordinatorLoadInProgress.Code {
			require.NoError(t, ctx.Err())
			time.Sleep(20 * time.Millisecond) // the client's retry backoff
			continue
		}
		require.Zero(t, resp.ErrorCode, "InitProducerId: %v", kerr.ErrorForCode(resp.ErrorCode))
		return resp.ProducerID, resp.ProducerEpoch
	}
}

func TestTxnZombieFenced(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b.Addr(), "zombie", 1, nil)
	cl := newClient(t, b.Addr())
	ctx := testCtx(t)
	const id, group = "zombie-txn", "zombie-group"

	addPartition := func(pid int64, epoch int16) int16 {
		req := kmsg.NewPtrAddPartitionsToTxnRequest()
		req.Version = 3
		req.TransactionalID, req.ProducerID, req.ProducerEpoch = id, pid, epoch
		rt := kmsg.NewAddPartitionsToTxnRequestTopic()
		rt.Topic, rt.Partitions = "zombie", []int32{0}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		require.NoError(t, err)
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	addOffsets := func(pid int64, epoch int16) int16 {
		req := kmsg.NewPtrAddOffsetsToTxnRequest()
		req.Version = 3
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group = id, pid, epoch, group
		resp, err := req.RequestWith(ctx, cl)
		require.NoError(t, err)
		return resp.ErrorCode
	}
	txnCommit := func(pid int64, epoch int16, offset int64) int16 {
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.Version = 3
		req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = id, group, pid, epoch
		req.Generation = -1
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = "zombie"
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = 0, offset
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		require.NoError(t, err)
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	endTxn := func(pid int64, epoch int16, commit bool) int16 {
		req := kmsg.NewPtrEndTxnRequest()
		req.Version = 3
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = id, pid, epoch, commit
		resp, err := req.RequestWith(ctx, cl)
		require.NoError(t, err)
		return resp.ErrorCode
	}
	produce := func(pid int64, epoch int16, seq int32, prefix string) int16 {
		req := kmsg.NewPtrProduceRequest()
		req.Version = 9
		req.Acks = -1
		req.TimeoutMillis = 5000
		req.TransactionID = kmsg.StringPtr(id)
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "zombie"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = txnBatch(pid, epoch, seq, prefix, 3)
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, seed(cl))
		require.NoError(t, err)
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	// Older epoch answers: PRODUCER_FENCED, or INVALID_PRODUCER_EPOCH on
	// request versions that predate it.
	fenced := []int16{kerr.ProducerFenced.Code, kerr.InvalidProducerEpoch.Code}

	zpid, zepoch := initTxnPID(t, ctx, cl, id)
	require.Zero(t, addPartition(zpid, zepoch))
	require.Zero(t, produce(zpid, zepoch, 0, "zombie"))
	require.Zero(t, addOffsets(zpid, zepoch))
	require.Zero(t, txnCommit(zpid, zepoch, 3))

	// The new instance: the zombie's open transaction is aborted and its
	// epoch fenced.
	npid, nepoch := initTxnPID(t, ctx, cl, id)
	require.Equal(t, zpid, npid)
	require.Greater(t, nepoch, zepoch)

	require.Contains(t, fenced, produce(zpid, zepoch, 3, "late"), "late Produce")
	require.Contains(t, fenced, txnCommit(zpid, zepoch, 6), "late TxnOffsetCommit")
	require.Contains(t, fenced, endTxn(zpid, zepoch, true), "late EndTxn")

	// The new instance commits one transaction of its own.
	require.Zero(t, addPartition(npid, nepoch))
	require.Zero(t, produce(npid, nepoch, 0, "fresh"))
	require.Zero(t, endTxn(npid, nepoch, true))

	got := readIsolated(t, b.Addr(), "zombie", 3, true)
	require.Len(t, got, 3)
	for _, r := range got {
		require.Contains(t, string(r.Value), "fresh-", "a zombie's record was committed")
	}
	// None of the zombie's offsets were committed, even with
	// require_stable (which waits out pending ones).
	require.Eventually(t, func() bool {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version = 7
		req.Group = group
		req.RequireStable = true
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic, rt.Partitions = "zombie", []int32{0}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		require.NoError(t, err)
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode == kerr.UnstableOffsetCommit.Code {
			return false
		}
		require.Zero(t, p.ErrorCode)
		require.EqualValues(t, -1, p.Offset, "the zombie's offset commit took effect")
		return true
	}, 10*time.Second, 20*time.Millisecond)
}

// transaction.timeout.ms is bounded by transaction.max.timeout.ms, and a
// transaction left open past its timeout is aborted by the coordinator:
// read_committed readers then move past it.
func TestTxnTimeoutAborts(t *testing.T) {
	b := brokertest.Start(t, func(c *broker.Config) {
		c.TransactionMaxTimeoutMs = 5000
		c.TransactionAbortTimedOutCleanupIntervalMs = 100
	})
	createTopic(t, b.Addr(), "txn-timeout", 1, nil)

	tooLong := newClient(t, b.Addr(), kgo.TransactionalID("too-long"), kgo.TransactionTimeout(time.Minute))
	err := tooLong.BeginTransaction()
	if err == nil {
		err = tooLong.ProduceSync(testCtx(t), &kgo.Record{Topic: "txn-timeout", Value: []byte("x")}).FirstErr()
	}
	require.ErrorIs(t, err, kerr.InvalidTransactionTimeout)

	cl := newClient(t, b.Addr(), kgo.TransactionalID("hangs"), kgo.TransactionTimeout(time.Second),
		kgo.DefaultProduceTopic("txn-timeout"))
	ctx := testCtx(t)
	require.NoError(t, cl.BeginTransaction())
	require.NoError(t, cl.ProduceSync(ctx, kgo.StringRecord("left-open")).FirstErr())
	hw := listLatest(t, cl, "txn-timeout", 0, 0)
	require.EqualValues(t, 0, listLatest(t, cl, "txn-timeout", 0, 1))
	// Never ended: the coordinator aborts it after about a second and
	// the abort marker lets the LSO pass it.
	require.Eventually(t, func() bool { return listLatest(t, cl, "txn-timeout", 0, 1) > hw-1 }, 15*time.Second, 50*time.Millisecond,
		"the timed-out transaction was not aborted")
	other := newClient(t, b.Addr(), kgo.DefaultProduceTopic("txn-timeout"))
	require.NoError(t, other.ProduceSync(ctx, kgo.StringRecord("after")).FirstErr())
	got := readIsolated(t, b.Addr(), "txn-timeout", 1, true)
	require.Equal(t, "after", string(got[0].Value))
	// The producer learns it was fenced when it tries to commit.
	err = cl.EndTransaction(ctx, kgo.TryCommit)
	require.Error(t, err)
}

// The coordinator's state survives a restart: a transaction committed
// before it stays committed, and a new instance of the id gets a higher
// epoch than any before.
func TestTxnStateSurvivesRestart(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b.Addr(), "txn-restart", 1, nil)
	cl := newClient(t, b.Addr(), kgo.TransactionalID("durable"), kgo.DefaultProduceTopic("txn-restart"))
	ctx := testCtx(t)
	require.NoError(t, cl.BeginTransaction())
	require.NoError(t, cl.ProduceSync(ctx, kgo.StringRecord("one")).FirstErr())
	require.NoError(t, cl.EndTransaction(ctx, kgo.TryCommit))
	_, epoch, err := cl.ProducerID(ctx)
	require.NoError(t, err)
	cl.Close()

	b.Restart(t)
	cl = newClient(t, b.Addr(), kgo.TransactionalID("durable"), kgo.DefaultProduceTopic("txn-restart"))
	require.NoError(t, cl.BeginTransaction())
	require.NoError(t, cl.ProduceSync(ctx, kgo.StringRecord("two")).FirstErr())
	require.NoError(t, cl.EndTransaction(ctx, kgo.TryCommit))
	_, epoch2, err := cl.ProducerID(ctx)
	require.NoError(t, err)
	require.Greater(t, epoch2, epoch)
	got := readIsolated(t, b.Addr(), "txn-restart", 2, true)
	require.Equal(t, "one", string(got[0].Value))
	require.Equal(t, "two", string(got[1].Value))
}

// DescribeProducers, DescribeTransactions and ListTransactions (KIP-664)
// show an open transaction as kadm reads them: the producer with its
// transaction's first offset on the partition, the transactional id
// Ongoing with that partition, listed under the Ongoing filter.
func TestTxnDescribeAndList(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b.Addr(), "txn-desc", 1, nil)
	cl := newClient(t, b.Addr(), kgo.TransactionalID("described"), kgo.DefaultProduceTopic("txn-desc"))
	adm := newAdmin(t, b.Addr())
	ctx := testCtx(t)
	require.NoError(t, cl.BeginTransaction())
	require.NoError(t, cl.ProduceSync(ctx, kgo.StringRecord("open")).FirstErr())
	pid, epoch, err := cl.ProducerID(ctx)
	require.NoError(t, err)

	prods, err := adm.DescribeProducers(ctx, kadm.TopicsSet{"txn-desc": {0: {}}})
	require.NoError(t, err)
	var found bool
	prods.EachPartition(func(p kadm.DescribedProducersPartition) {
		require.NoError(t, p.Err)
		for _, ap := range p.ActiveProducers {
			if ap.ProducerID == pid {
				found = true
				require.Equal(t, epoch, ap.ProducerEpoch)
				require.EqualValues(t, 0, ap.CurrentTxnStartOffset, "the open transaction starts at offset 0")
			}
		}
	})
	require.True(t, found, "DescribeProducers does not show the transactional producer")

	txns, err := adm.DescribeTransactions(ctx, "described")
	require.NoError(t, err)
	d := txns["described"]
	require.NoError(t, d.Err)
	require.Equal(t, "Ongoing", d.State)
	require.Equal(t, pid, d.ProducerID)
	require.Contains(t, d.Topics, "txn-desc")

	listed, err := adm.ListTransactions(ctx, nil, []string{"Ongoing"})
	require.NoError(t, err)
	require.Contains(t, listed, "described")
	require.NoError(t, cl.EndTransaction(ctx, kgo.TryCommit))
	require.Eventually(t, func() bool {
		listed, err := adm.ListTransactions(ctx, nil, []string{"Ongoing"})
		return err == nil && len(listed) == 0
	}, 10*time.Second, 20*time.Millisecond, "a committed transaction is still listed Ongoing")
}

// An open transaction survives a SIGKILL of the broker: after the
// restart the last stable offset still stops at its first record (the
// partition rebuilt its producer state from the snapshot and log tail),
// and a new instance of the transactional id aborts it, after which the
// LSO passes it and read_committed readers never see its records.
func TestTxnOpenAcrossKill(t *testing.T) {
	c := brokertest.StartProcessCluster(t, 1)
	addr := c.Addrs()[0]
	createTopic(t, addr, "txn-kill", 1, nil)
	plain := newClient(t, addr, kgo.DefaultProduceTopic("txn-kill"))
	ctx := testCtx(t)
	require.NoError(t, plain.ProduceSync(ctx, kgo.StringRecord("before")).FirstErr())
	cl := newClient(t, addr, kgo.TransactionalID("killed"), kgo.DefaultProduceTopic("txn-kill"))
	require.NoError(t, cl.BeginTransaction())
	require.NoError(t, cl.ProduceSync(ctx, kgo.StringRecord("open-1"), kgo.StringRecord("open-2")).FirstErr())
	require.NoError(t, plain.ProduceSync(ctx, kgo.StringRecord("after")).FirstErr())
	require.EqualValues(t, 1, listLatest(t, plain, "txn-kill", 0, 1))
	cl.Close()

	c.Nodes[0].Kill()
	c.Nodes[0].Start()
	require.Eventually(t, func() bool {
		req := kmsg.NewPtrListOffsetsRequest()
		req.Version, req.IsolationLevel = 5, 1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "txn-kill"
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = 0, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, plain)
		return err == nil && resp.Topics[0].Partitions[0].ErrorCode == 0
	}, 20*time.Second, 50*time.Millisecond)
	require.EqualValues(t, 1, listLatest(t, plain, "txn-kill", 0, 1), "after the kill the LSO must still stop at the open transaction")

	// The next instance of the id aborts it.
	cl2 := newClient(t, addr, kgo.TransactionalID("killed"), kgo.DefaultProduceTopic("txn-kill"))
	require.NoError(t, cl2.BeginTransaction())
	require.NoError(t, cl2.ProduceSync(ctx, kgo.StringRecord("second")).FirstErr())
	require.NoError(t, cl2.EndTransaction(ctx, kgo.TryCommit))
	got := readIsolated(t, addr, "txn-kill", 3, true)
	var vals []string
	for _, r := range got {
		vals = append(vals, string(r.Value))
	}
	require.Equal(t, []string{"before", "after", "second"}, vals)
}

// A transactional batch that would open a transaction in a partition the
// producer never added to it (a buggy client, or a zombie writing to a
// partition the fencing marker never reached) is refused after the
// coordinator says so: it would otherwise hold the partition's last
// stable offset forever, since no coordinator would ever end it.
func TestTxnProduceVerifiedWithCoordinator(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b.Addr(), "verified", 2, nil)
	cl := newClient(t, b.Addr())
	ctx := testCtx(t)
	const id = "verify-txn"
	produce := func(pid int64, epoch int16, partition int32) int16 {
		req := kmsg.NewPtrProduceRequest()
		req.Version = 9
		req.Acks = -1
		req.TimeoutMillis = 5000
		req.TransactionID = kmsg.StringPtr(id)
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "verified"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = partition
		rp.Records = txnBatch(pid, epoch, 0, "v", 2)
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, seed(cl))
		require.NoError(t, err)
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	addPartition := func(pid int64, epoch int16, partition int32) {
		req := kmsg.NewPtrAddPartitionsToTxnRequest()
		req.Version = 3
		req.TransactionalID, req.ProducerID, req.ProducerEpoch = id, pid, epoch
		rt := kmsg.NewAddPartitionsToTxnRequestTopic()
		rt.Topic, rt.Partitions = "verified", []int32{partition}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		require.NoError(t, err)
		require.Zero(t, resp.Topics[0].Partitions[0].ErrorCode)
	}

	pid, epoch := initTxnPID(t, ctx, cl, id)
	// No AddPartitionsToTxn at all: refused, nothing written, the LSO
	// not held.
	require.Equal(t, kerr.InvalidTxnState.Code, produce(pid, epoch, 0))
	require.EqualValues(t, 0, listLatest(t, cl, "verified", 0, 0))

	// Added: accepted; the other partition, not added, still refused.
	addPartition(pid, epoch, 0)
	require.Zero(t, produce(pid, epoch, 0))
	require.Equal(t, kerr.InvalidTxnState.Code, produce(pid, epoch, 1))

	// A new instance fences this one; the zombie's first write to
	// partition 1 (which no marker reached) is refused as fenced.
	npid, nepoch := initTxnPID(t, ctx, cl, id)
	require.Equal(t, pid, npid)
	require.Greater(t, nepoch, epoch)
	require.Contains(t, []int16{kerr.ProducerFenced.Code, kerr.InvalidProducerEpoch.Code}, produce(pid, epoch, 1))
	require.Equal(t, listLatest(t, cl, "verified", 1, 0), listLatest(t, cl, "verified", 1, 1), "nothing may hold partition 1's LSO")
}
