package txn

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/group"
)

var (
	codeNotCoordinator = tributary.ErrNotCoordinator.Code
	codeLoading        = tributary.ErrCoordinatorLoadInProgress.Code
	codeFenced         = tributary.ErrProducerFenced.Code
	codeBadEpoch       = tributary.ErrInvalidProducerEpoch.Code
	codeConcurrent     = tributary.ErrConcurrentTransactions.Code
	codeBadState       = tributary.ErrInvalidTxnState.Code
	codeBadMapping     = tributary.ErrInvalidProducerIdMapping.Code
	codeBadTimeout     = tributary.ErrInvalidTransactionTimeout.Code
	codeInvalidRequest = tributary.ErrInvalidRequest.Code
	codeNotFound       = tributary.ErrTransactionalIdNotFound.Code
	codeAbortable      = tributary.ErrTransactionAbortable.Code
)

func TestInitNewTransactionalIDGetsFreshProducerIDAtEpochZero(t *testing.T) {
	h := newHarness(t)
	p := h.producer("tx").mustInit()
	assert.Equal(t, int64(1001), p.pid)
	assert.Equal(t, int16(0), p.epoch)

	require.Len(t, h.records, 1)
	id, v := h.lastValue()
	assert.Equal(t, "tx", id)
	assert.Equal(t, int16(0), v.Version, "Kafka writes v0 without transaction.version 2")
	assert.Equal(t, kmsg.TransactionState(0), v.State)
	assert.Equal(t, int64(1001), v.ProducerID)
	assert.Equal(t, int32(60000), v.TimeoutMillis)
	assert.Nil(t, v.Topics, "Empty is written with a null partition list, as Kafka does")
	assert.Equal(t, int64(-1), v.StartTimestamp)
	assert.Equal(t, t0.UnixMilli(), v.LastUpdateTimestamp)
	assert.Equal(t, "Empty", h.state("tx"))
}

func TestInitWithoutTransactionalIDIsIdempotentProducer(t *testing.T) {
	h := newHarness(t)
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = 4
	resp := h.c.InitProducerID(h.now, req)
	assert.Zero(t, resp.ErrorCode)
	assert.Equal(t, int64(1001), resp.ProducerID)
	assert.Zero(t, resp.ProducerEpoch)
	assert.Empty(t, h.drain().Records)

	req.ProducerID = 5 // without an epoch
	assert.Equal(t, codeInvalidRequest, h.c.InitProducerID(h.now, req).ErrorCode)
	req.ProducerEpoch = 3
	resp = h.c.InitProducerID(h.now, req)
	assert.Zero(t, resp.ErrorCode)
	assert.Equal(t, int64(1002), resp.ProducerID, "a fresh id, not a bump")
}

func TestInitRejectsBadRequests(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxTimeoutMs = 1000 })
	for _, tc := range []struct {
		name    string
		id      string
		timeout int32
		pid     int64
		epoch   int16
		want    int16
	}{
		{"zero timeout", "tx", 0, -1, -1, codeBadTimeout},
		{"negative timeout", "tx", -5, -1, -1, codeBadTimeout},
		{"timeout above max", "tx", 1001, -1, -1, codeBadTimeout},
		{"timeout at max", "tx", 1000, -1, -1, 0},
		{"empty id", "", 1000, -1, -1, codeInvalidRequest},
		{"producer id without epoch", "tx2", 1000, 5, -1, codeInvalidRequest},
		{"epoch without producer id", "tx2", 1000, -1, 3, codeInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrInitProducerIDRequest()
			req.Version = 4
			req.TransactionalID = kmsg.StringPtr(tc.id)
			req.TransactionTimeoutMillis = tc.timeout
			req.ProducerID, req.ProducerEpoch = tc.pid, tc.epoch
			resp := h.c.InitProducerID(h.now, req)
			assert.Equal(t, tc.want, resp.ErrorCode)
			if tc.want != 0 {
				assert.Equal(t, int64(-1), resp.ProducerID)
				assert.Equal(t, int16(-1), resp.ProducerEpoch)
			}
		})
	}
	h.drain()
	assert.Len(t, h.records, 1, "only the successful init is recorded")
	assert.Equal(t, codeNotFound, h.describe("tx2").ErrorCode, "a refused init leaves no id behind")
}

func TestAllocatorErrorIsAnswered(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.AllocateProducerID = func() (int64, error) { return 0, tributary.ErrCoordinatorLoadInProgress }
	})
	assert.Equal(t, codeLoading, h.producer("tx").init())
	assert.Equal(t, codeNotFound, h.describe("tx").ErrorCode)
	assert.Empty(t, h.records)
}

func TestRequestsForPartitionsNotLedHere(t *testing.T) {
	h := &harness{t: t, now: t0, nextPID: 1000}
	h.cfg = testConfig(h)
	c, err := New(h.cfg)
	require.NoError(t, err)
	h.c = c
	p := h.producer("tx")
	p.pid, p.epoch = 1, 0
	part := Partition("tx", 50)

	check := func(want int16) {
		t.Helper()
		assert.Equal(t, want, p.init(), "InitProducerId")
		assert.Equal(t, want, p.add("t", 0), "AddPartitionsToTxn")
		assert.Equal(t, want, p.addOffsets("g"), "AddOffsetsToTxn")
		assert.Equal(t, want, p.end(true), "EndTxn")
		assert.Equal(t, want, h.describe("tx").ErrorCode, "DescribeTransactions")
	}
	check(codeNotCoordinator)
	assert.False(t, h.c.Owns(part))

	h.c.BeginLoad(part)
	check(codeLoading)
	list := h.c.ListTransactions(h.now, kmsg.NewPtrListTransactionsRequest())
	assert.Equal(t, codeLoading, list.ErrorCode)

	h.c.Loaded(h.now, part, 1)
	assert.True(t, h.c.Owns(part))
	assert.Zero(t, p.init())

	h.c.Unload(part)
	check(codeNotCoordinator)
	assert.Empty(t, h.c.txns, "unload forgets the partition's ids")
}

func TestCommitFlow(t *testing.T) {
	h := newHarness(t)
	p := h.producer("tx").mustInit()
	n := len(h.records)

	h.now = h.now.Add(time.Second)
	require.Zero(t, p.add("orders", 1, 0))
	assert.Equal(t, "Ongoing", h.state("tx"))
	assert.Equal(t, h.now.UnixMilli(), h.describe("tx").StartTimestamp, "the first add starts the transaction")
	assert.Len(t, h.records, n+1)

	h.now = h.now.Add(time.Second)
	require.Zero(t, p.add("orders", 0), "a partition already in the transaction")
	assert.Len(t, h.records, n+1, "re-adding writes no record")
	require.Zero(t, p.add("audit", 3))
	require.Zero(t, p.addOffsets("g"))
	assert.Len(t, h.records, n+3)
	assert.Equal(t, t0.Add(time.Second).UnixMilli(), h.describe("tx").StartTimestamp, "later adds keep the start time")

	require.Zero(t, p.end(true))
	assert.Equal(t, "PrepareCommit", h.state("tx"))
	_, v := h.lastValue()
	assert.Equal(t, kmsg.TransactionState(2), v.State)
	require.Len(t, v.Topics, 3)
	require.Len(t, h.markers, 1)
	job := h.markers[0]
	assert.Equal(t, MarkerJob{
		TransactionalID: "tx", ProducerID: p.pid, ProducerEpoch: 0, Commit: true, CoordinatorEpoch: 1,
		Partitions: []TopicPartition{
			{OffsetsTopic, group.Partition("g", 50)},
			{"audit", 3}, {"orders", 0}, {"orders", 1},
		},
	}, job)

	// While the markers are written, the producer must wait.
	assert.Equal(t, codeConcurrent, p.end(true), "a retried commit")
	assert.Equal(t, codeBadState, p.end(false), "an abort of a committing transaction")
	assert.Equal(t, codeConcurrent, p.add("orders", 2))
	assert.Equal(t, codeConcurrent, p.addOffsets("g"))
	assert.Equal(t, codeConcurrent, p.init())
	assert.Equal(t, "PrepareCommit", h.state("tx"))

	h.now = h.now.Add(time.Second)
	h.writeMarkers()
	assert.Equal(t, "CompleteCommit", h.state("tx"))
	_, v = h.lastValue()
	assert.Equal(t, kmsg.TransactionState(4), v.State)
	assert.Empty(t, v.Topics)
	assert.NotNil(t, v.Topics, "complete states keep a non-null (empty) list")
	assert.Equal(t, h.now.UnixMilli(), v.LastUpdateTimestamp)

	assert.Zero(t, p.end(true), "a commit retried after completion succeeds")
	assert.Equal(t, codeBadState, p.end(false))

	// The next transaction starts with the next add, same epoch.
	require.Zero(t, p.add("orders", 5))
	d := h.describe("tx")
	assert.Equal(t, "Ongoing", d.State)
	assert.Equal(t, h.now.UnixMilli(), d.StartTimestamp)
	require.Len(t, d.Topics, 1)
	assert.Equal(t, []int32{5}, d.Topics[0].Partitions, "the previous transaction's partitions are gone")
}

func TestAbortFlow(t *testing.T) {
	h := newHarness(t)
	p := h.producer("tx").mustInit()
	require.Zero(t, p.add("orders", 0))
	require.Zero(t, p.end(false))
	assert.Equal(t, "PrepareAbort", h.state("tx"))
	require.Len(t, h.markers, 1)
	assert.False(t, h.markers[0].Commit)
	assert.Equal(t, codeConcurrent, p.end(false))
	assert.Equal(t, codeBadState, p.end(true))
	h.writeMarkers()
	assert.Equal(t, "CompleteAbort", h.state("tx"))
	assert.Zero(t, p.end(false))
	assert.Equal(t, codeBadState, p.end(true))
}

func TestEndTxnErrors(t *testing.T) {
	h := newHarness(t)
	p := h.producer("tx").mustInit()

	assert.Equal(t, codeBadState, p.end(true), "nothing to commit in Empty")
	assert.Equal(t, codeBadState, p.end(false))

	unknown := h.producer("nobody")
	unknown.pid, unknown.epoch = 5, 0
	assert.Equal(t, codeBadMapping, unknown.end(true))
	assert.Equal(t, codeBadMapping, unknown.add("t", 0))
	assert.Equal(t, codeBadMapping, unknown.addOffsets("g"))

	require.Zero(t, p.add("t", 0))
	other := *p
	other.pid++
	assert.Equal(t, codeBadMapping, other.end(true), "another producer id")
	assert.Equal(t, codeBadMapping, other.add("t", 0))

	for _, tc := range []struct {
		version int16
		want    int16
	}{{0, codeBadEpoch}, {1, codeBadEpoch}, {2, codeFenced}, {3, codeFenced}, {4, codeFenced}} {
		stale := *p
		stale.version = tc.version
		stale.epoch = p.epoch + 1 // any other epoch, older or newer
		assert.Equal(t, tc.want, stale.end(true), "EndTxn v%d", tc.version)
		assert.Equal(t, tc.want, stale.addOffsets("g"), "AddOffsetsToTxn v%d", tc.version)
		assert.Equal(t, tc.want, stale.add("t", 0), "AddPartitionsToTxn v%d", min(tc.version, 3))
	}

	empty := *p
	empty.id = ""
	assert.Equal(t, codeInvalidRequest, empty.end(true))
	assert.Equal(t, codeInvalidRequest, empty.add("t", 0))
	assert.Equal(t, "Ongoing", h.state("tx"), "no error changed the transaction")
}

func TestEndTxnV5AnswersProducerIDAndEpochWithoutBump(t *testing.T) {
	h := newHarness(t)
	p := h.producer("tx").mustInit()
	require.Zero(t, p.add("t", 0))
	req := kmsg.NewPtrEndTxnRequest()
	req.Version = 5
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = "tx", p.pid, p.epoch, true
	resp := h.c.EndTxn(h.now, req)
	assert.Zero(t, resp.ErrorCode)
	assert.Equal(t, p.pid, resp.ProducerID)
	assert.Equal(t, p.epoch, resp.ProducerEpoch)
	resp = h.c.EndTxn(h.now, req)
	assert.Equal(t, codeConcurrent, resp.ErrorCode)
	assert.Equal(t, int64(-1), resp.ProducerID)
}

func TestInitBumpsEpochAndFencesOldProducer(t *testing.T) {
	h := newHarness(t)
	p1 := h.producer("tx").mustInit()
	p2 := h.producer("tx").mustInit()
	assert.Equal(t, p1.pid, p2.pid, "same producer id")
	assert.Equal(t, int16(1), p2.epoch)

	assert.Equal(t, codeFenced, p1.add("t", 0))
	p1.version = 1
	assert.Equal(t, codeBadEpoch, p1.add("t", 0), "v1 predates PRODUCER_FENCED")
	assert.Zero(t, p2.add("t", 0))
	p1.version = 4
	assert.Equal(t, codeFenced, p1.end(true))
	assert.Equal(t, "Ongoing", h.state("tx"))
}

func TestInitAbortsOngoingTransactionOfPreviousProducer(t *testing.T) {
	h := newHarness(t)
	p1 := h.producer("tx").mustInit()
	require.Zero(t, p1.add("orders", 0, 1))

	// A new instance with the same transactional id: the ongoing
	// transaction is aborted at a bumped epoch that fences p1, and the new
	// instance retries.
	p2 := h.producer("tx")
	assert.Equal(t, codeConcurrent, p2.init())
	assert.Equal(t, "PrepareAbort", h.state("tx"))
	_, v := h.lastValue()
	assert.Equal(t, kmsg.TransactionState(3), v.State, "PrepareEpochFence is never written")
	assert.Equal(t, int16(1), v.ProducerEpoch)
	require.Len(t, h.markers, 1)
	assert.Equal(t, MarkerJob{
		TransactionalID: "tx", ProducerID: p1.pid, ProducerEpoch: 1, Commit: false, CoordinatorEpoch: 1,
		Partitions: []TopicPartition{{"orders", 0}, {"orders", 1}},
	}, h.markers[0])

	assert.Equal(t, codeFenced, p1.end(true), "the zombie cannot commit")
	assert.Equal(t, codeFenced, p1.add("orders", 2))
	assert.Equal(t, codeConcurrent, p2.init(), "still aborting")

	h.writeMarkers()
	assert.Equal(t, "CompleteAbort", h.state("tx"))
	require.Zero(t, p2.init())
	assert.Equal(t, p1.pid, p2.pid)
	assert.Equal(t, int16(2), p2.epoch, "the retry bumps again")
	assert.Equal(t, codeFenced, p1.end(false))
}

func TestKIP360RecoveryAndRetriedBump(t *testing.T) {
	h := newHarness(t)
	p := h.producer("tx").mustInit()
	pid := p.pid

	// The producer bumps its own epoch (e.g. after UNKNOWN_PRODUCER_ID).
	require.Zero(t, p.recover())
	assert.Equal(t, pid, p.pid)
	assert.Equal(t, int16(1), p.epoch)

	// Its answer was lost and it retries with the epoch it had: same epoch.
	lost := *p
	lost.epoch = 0
	require.Zero(t, lost.recover())
	assert.Equal(t, int16(1), lost.epoch, "a retried bump returns the same epoch")

	stale := *p
	stale.epoch = 7
	assert.Equal(t, codeFenced, stale.recover(), "an epoch that is neither current nor previous")
	stale.version = 3
	assert.Equal(t, codeBadEpoch, stale.recover(), "v3 predates PRODUCER_FENCED")

	other := *p
	other.version = 4
	other.pid = 4242
	assert.Equal(t, codeFenced, other.recover(), "another producer id")

	// A newer instance initialises without KIP-360 fields: the last-epoch
	// memory is cleared, so the old producer's retry is fenced.
	p2 := h.producer("tx").mustInit()
	assert.Equal(t, int16(2), p2.epoch)
	assert.Equal(t, codeFenced, p.recover())

	// An id the coordinator does not know (expired) with KIP-360 fields:
	// a fresh producer id at epoch 0.
	fresh := h.producer("new")
	fresh.pid, fresh.epoch = 77, 3
	require.Zero(t, fresh.recover())
	assert.Equal(t, int16(0), fresh.epoch)
	assert.NotEqual(t, int64(77), fresh.pid)
}

// loadState puts a transactional id straight into the coordinator through
// a record, as if it had been written by a previous coordinator.
func (h *harness) loadState(id string, pid int64, epoch int16, s state, topics ...kmsg.TxnMetadataValueTopic) {
	h.t.Helper()
	part := Partition(id, h.cfg.NumPartitions)
	h.c.BeginLoad(part)
	require.NoError(h.t, h.c.Load(part, txnKey(id), baseline(pid, epoch, s, h.now, topics...)))
	h.c.Loaded(h.now, part, h.epoch)
	h.drain()
}

func TestEpochExhaustionRotatesProducerID(t *testing.T) {
	h := newHarness(t)
	h.loadState("tx", 500, math.MaxInt16-2, stateCompleteCommit)
	p := h.producer("tx").mustInit()
	assert.Equal(t, int64(500), p.pid)
	assert.Equal(t, int16(math.MaxInt16-1), p.epoch, "the last usable epoch")

	p2 := h.producer("tx").mustInit()
	assert.Equal(t, int64(1001), p2.pid, "exhausted: a new producer id")
	assert.Equal(t, int16(0), p2.epoch)
	assert.Equal(t, codeBadMapping, p.add("t", 0), "the old producer id is gone")

	// KIP-360: the holder of an exhausted epoch rotates too, and its retry
	// (presenting the old id and epoch again) gets the same answer.
	h.loadState("kip", 600, math.MaxInt16-1, stateCompleteAbort)
	k := h.producer("kip")
	k.pid, k.epoch = 600, math.MaxInt16-1
	require.Zero(t, k.recover())
	assert.Equal(t, int64(1002), k.pid)
	assert.Equal(t, int16(0), k.epoch)
	retry := h.producer("kip")
	retry.pid, retry.epoch = 600, math.MaxInt16-1
	require.Zero(t, retry.recover())
	assert.Equal(t, int64(1002), retry.pid, "a retried rotation returns the same id")
	assert.Equal(t, int16(0), retry.epoch)
}

func TestFenceAtLastEpochThenRotate(t *testing.T) {
	h := newHarness(t)
	h.loadState("tx", 500, math.MaxInt16-1, stateOngoing,
		kmsg.TxnMetadataValueTopic{Topic: "t", Partitions: []int32{0}})
	p := h.producer("tx")
	assert.Equal(t, codeConcurrent, p.init())
	assert.Equal(t, int16(math.MaxInt16), h.describe("tx").ProducerEpoch, "the fence may use Short.MAX_VALUE")
	h.writeMarkers()
	require.Zero(t, p.init())
	assert.Equal(t, int64(1001), p.pid)
	assert.Equal(t, int16(0), p.epoch)
}

func TestTickAbortsTimedOutTransactions(t *testing.T) {
	h := newHarness(t)
	slow := h.producer("slow")
	slow.timeout = 5000
	slow.mustInit()
	fast := h.producer("fast")
	fast.timeout = 60000
	fast.mustInit()
	require.Zero(t, slow.add("t", 0))
	require.Zero(t, fast.add("t", 1))

	at, ok := h.c.NextDeadline()
	require.True(t, ok)
	assert.True(t, t0.Add(10*time.Second).Equal(at), "the abort check runs every 10s, not at %v", at)

	h.advance(5 * time.Second)
	assert.Empty(t, h.markers, "not due yet")
	out := h.advance(5 * time.Second)
	require.Len(t, out.Markers, 1)
	assert.Equal(t, "slow", out.Markers[0].TransactionalID)
	assert.False(t, out.Markers[0].Commit)
	assert.Equal(t, int16(1), out.Markers[0].ProducerEpoch, "aborted at a bumped epoch")
	assert.Equal(t, "PrepareAbort", h.state("slow"))
	assert.Equal(t, "Ongoing", h.state("fast"))
	at, _ = h.c.NextDeadline()
	assert.True(t, t0.Add(20*time.Second).Equal(at))

	assert.Equal(t, codeFenced, slow.end(true), "the timed-out producer is fenced")
	h.writeMarkers()
	assert.Equal(t, "CompleteAbort", h.state("slow"))
	assert.Equal(t, codeFenced, slow.add("t", 0))

	out = h.advance(50 * time.Second)
	assert.Empty(t, out.Markers, "60s after its start the 60s transaction is not yet over its timeout")
	out = h.advance(10 * time.Second)
	require.Len(t, out.Markers, 1)
	assert.Equal(t, "fast", out.Markers[0].TransactionalID)
}

func TestTickExpiresIdleTransactionalIDs(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.ExpirationMs = int64(2 * time.Hour / time.Millisecond)
	})
	idle := h.producer("idle").mustInit()
	busy := h.producer("busy").mustInit()
	require.Zero(t, busy.add("t", 0))
	done := h.producer("done").mustInit()
	require.Zero(t, done.add("t", 1))
	require.Zero(t, done.end(true))
	h.writeMarkers()

	h.advance(time.Hour)
	assert.Zero(t, h.describe("idle").ErrorCode, "idle for 1h of 2h")
	_ = idle
	h.advance(time.Hour)
	assert.Equal(t, codeNotFound, h.describe("idle").ErrorCode)
	assert.Equal(t, codeNotFound, h.describe("done").ErrorCode)
	_, v := h.lastValue()
	assert.Nil(t, v, "expiry writes a tombstone")
	// The busy producer's transaction timed out long ago and was
	// aborted, but its markers are not written: Prepare* never expires.
	assert.Equal(t, "PrepareAbort", h.state("busy"))

	// An expired id starts over with a fresh producer id.
	again := h.producer("idle").mustInit()
	assert.NotEqual(t, idle.pid, again.pid)
	assert.Equal(t, int16(0), again.epoch)
}

func TestAddPartitionsBatchedV4AndVerifyOnly(t *testing.T) {
	h := newHarness(t)
	a := h.producer("a").mustInit()
	require.Zero(t, a.add("t", 0))
	b := h.producer("b").mustInit()
	n := len(h.records)

	txn := func(id string, pid int64, epoch int16, verify bool, parts ...int32) kmsg.AddPartitionsToTxnRequestTransaction {
		rt := kmsg.NewAddPartitionsToTxnRequestTransaction()
		rt.TransactionalID, rt.ProducerID, rt.ProducerEpoch, rt.VerifyOnly = id, pid, epoch, verify
		tt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
		tt.Topic, tt.Partitions = "t", parts
		rt.Topics = []kmsg.AddPartitionsToTxnRequestTransactionTopic{tt}
		return rt
	}
	codes := func(r kmsg.AddPartitionsToTxnResponseTransaction) map[int32]int16 {
		m := make(map[int32]int16)
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				m[p.Partition] = p.ErrorCode
			}
		}
		return m
	}

	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version = 5
	req.Transactions = []kmsg.AddPartitionsToTxnRequestTransaction{
		txn("a", a.pid, a.epoch, true, 0, 1),
		txn("b", b.pid, b.epoch, false, 2),
		txn("ghost", 9, 0, false, 3),
		txn("a", a.pid, a.epoch+1, true, 0),
	}
	resp := h.c.AddPartitionsToTxn(h.now, req)
	h.drain()
	require.Len(t, resp.Transactions, 4)
	assert.Equal(t, "a", resp.Transactions[0].TransactionalID)
	assert.Equal(t, map[int32]int16{0: 0, 1: codeAbortable}, codes(resp.Transactions[0]))
	assert.Equal(t, map[int32]int16{2: 0}, codes(resp.Transactions[1]))
	assert.Equal(t, map[int32]int16{3: codeBadMapping}, codes(resp.Transactions[2]))
	assert.Equal(t, map[int32]int16{0: codeFenced}, codes(resp.Transactions[3]))
	assert.Len(t, h.records, n+1, "only b's add is recorded; verification writes nothing")
	assert.Len(t, h.describe("a").Topics[0].Partitions, 1, "verify did not add")
	assert.Equal(t, "Ongoing", h.state("b"))

	require.Zero(t, a.end(true))
	resp = h.c.AddPartitionsToTxn(h.now, &kmsg.AddPartitionsToTxnRequest{Version: 4,
		Transactions: []kmsg.AddPartitionsToTxnRequestTransaction{txn("a", a.pid, a.epoch, true, 0)}})
	assert.Equal(t, map[int32]int16{0: codeConcurrent}, codes(resp.Transactions[0]))
}

func TestAddPartitionsToMissingPartitionAddsNothing(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.PartitionExists = func(topic string, p int32) bool { return topic == "t" && p < 2 }
	})
	p := h.producer("tx").mustInit()
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version = 3
	req.TransactionalID, req.ProducerID, req.ProducerEpoch = "tx", p.pid, p.epoch
	req.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "t", Partitions: []int32{0, 5}}, {Topic: "nope", Partitions: []int32{0}}}
	resp := h.c.AddPartitionsToTxn(h.now, req)
	require.Len(t, resp.Topics, 2)
	assert.Equal(t, tributary.ErrOperationNotAttempted.Code, resp.Topics[0].Partitions[0].ErrorCode)
	assert.Equal(t, tributary.ErrUnknownTopicOrPartition.Code, resp.Topics[0].Partitions[1].ErrorCode)
	assert.Equal(t, tributary.ErrUnknownTopicOrPartition.Code, resp.Topics[1].Partitions[0].ErrorCode)
	assert.Equal(t, "Empty", h.state("tx"))
	assert.Zero(t, p.addOffsets("g"), "the offsets partition is not checked")
}

func TestDescribeAndListTransactions(t *testing.T) {
	h := newHarness(t)
	a := h.producer("a").mustInit()
	require.Zero(t, a.add("t", 1, 0))
	h.now = h.now.Add(time.Minute)
	b := h.producer("b").mustInit()
	require.Zero(t, b.add("t", 2))
	h.producer("c").mustInit()

	d := h.describe("a")
	assert.Equal(t, kmsg.DescribeTransactionsResponseTransactionState{
		TransactionalID: "a", State: "Ongoing", TimeoutMillis: 60000, StartTimestamp: t0.UnixMilli(),
		ProducerID: a.pid, ProducerEpoch: 0,
		Topics: []kmsg.DescribeTransactionsResponseTransactionStateTopic{{Topic: "t", Partitions: []int32{0, 1}}},
	}, d)
	assert.Equal(t, codeNotFound, h.describe("zzz").ErrorCode)
	assert.Equal(t, codeInvalidRequest, h.describe("").ErrorCode)

	list := func(mod func(*kmsg.ListTransactionsRequest)) ([]string, *kmsg.ListTransactionsResponse) {
		req := kmsg.NewPtrListTransactionsRequest()
		req.Version = 2
		mod(req)
		resp := h.c.ListTransactions(h.now, req)
		var ids []string
		for _, s := range resp.TransactionStates {
			ids = append(ids, s.TransactionalID+"/"+s.TransactionState)
		}
		return ids, resp
	}
	ids, _ := list(func(*kmsg.ListTransactionsRequest) {})
	assert.Equal(t, []string{"a/Ongoing", "b/Ongoing", "c/Empty"}, ids)
	ids, resp := list(func(r *kmsg.ListTransactionsRequest) { r.StateFilters = []string{"Empty", "Bogus"} })
	assert.Equal(t, []string{"c/Empty"}, ids)
	assert.Equal(t, []string{"Bogus"}, resp.UnknownStateFilters)
	ids, _ = list(func(r *kmsg.ListTransactionsRequest) { r.ProducerIDFilters = []int64{b.pid} })
	assert.Equal(t, []string{"b/Ongoing"}, ids)
	ids, _ = list(func(r *kmsg.ListTransactionsRequest) {
		r.StateFilters = []string{"Ongoing"}
		r.DurationFilterMillis = 30000
	})
	assert.Equal(t, []string{"a/Ongoing"}, ids, "only transactions running longer than 30s")
	ids, _ = list(func(r *kmsg.ListTransactionsRequest) { r.TransactionalIDPattern = kmsg.StringPtr("[ab]") })
	assert.Equal(t, []string{"a/Ongoing", "b/Ongoing"}, ids)
	ids, _ = list(func(r *kmsg.ListTransactionsRequest) { r.TransactionalIDPattern = kmsg.StringPtr("a") })
	assert.Equal(t, []string{"a/Ongoing"}, ids, "the pattern must match the whole id")
	_, resp = list(func(r *kmsg.ListTransactionsRequest) { r.TransactionalIDPattern = kmsg.StringPtr("(") })
	assert.Equal(t, tributary.ErrInvalidRegularExpression.Code, resp.ErrorCode)
}

func TestMarkersWrittenIgnoresStaleJobs(t *testing.T) {
	h := newHarness(t)
	p := h.producer("tx").mustInit()
	require.Zero(t, p.add("t", 0))
	require.Zero(t, p.end(true))
	job := h.markers[0]
	part := Partition("tx", 50)

	wrong := job
	wrong.Commit = false
	h.c.MarkersWritten(h.now, wrong)
	wrong = job
	wrong.ProducerEpoch++
	h.c.MarkersWritten(h.now, wrong)
	wrong = job
	wrong.CoordinatorEpoch = 7
	h.c.MarkersWritten(h.now, wrong)
	assert.Empty(t, h.drain().Records)
	assert.Equal(t, "PrepareCommit", h.state("tx"))

	// Taken over by another leader epoch: the old job is stale, the
	// re-emitted one completes the transaction.
	n := h.replay()
	n.c.MarkersWritten(n.now, job)
	assert.Empty(t, n.drain().Records)
	require.Len(t, n.markers, 1)
	assert.Equal(t, int32(2), n.markers[0].CoordinatorEpoch)
	n.writeMarkers()
	assert.Equal(t, "CompleteCommit", n.state("tx"))

	h.c.Unload(part)
	h.c.MarkersWritten(h.now, job)
	assert.Empty(t, h.drain().Records)
	h.c.MarkersWritten(h.now, job) // twice, harmless
}

func TestConfigValidation(t *testing.T) {
	_, err := New(DefaultConfig())
	assert.ErrorContains(t, err, "AllocateProducerID")
	assert.ErrorContains(t, err, "GroupPartition")
	h := &harness{}
	cfg := testConfig(h)
	cfg.NumPartitions = 0
	cfg.MaxTimeoutMs = -1
	_, err = New(cfg)
	assert.ErrorContains(t, err, "NumPartitions")
	assert.ErrorContains(t, err, "MaxTimeoutMs")
	_, err = New(testConfig(h))
	assert.NoError(t, err)
}

func TestPartitionIsKafkas(t *testing.T) {
	// Java: "my-txn".hashCode() == -1061187895, Utils.abs(...) % 50 == 45.
	assert.Equal(t, int32(45), Partition("my-txn", 50))
	assert.Equal(t, group.Partition("x", 50), Partition("x", 50))
}

func TestAllocatorPlainErrorIsUnknownServerError(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.AllocateProducerID = func() (int64, error) { return 0, assert.AnError }
	})
	assert.Equal(t, tributary.ErrUnknownServerError.Code, h.producer("tx").init())
	req := kmsg.NewPtrInitProducerIDRequest()
	assert.Equal(t, tributary.ErrUnknownServerError.Code, h.c.InitProducerID(h.now, req).ErrorCode, "idempotent too")
}

func TestOngoingAtMaxEpochCannotBeFenced(t *testing.T) {
	// Never written by a coordinator (epochs stop at Short.MAX_VALUE-1
	// before a fence), but a log may hold anything: refuse rather than
	// wrap the epoch around.
	h := newHarness(t)
	h.loadState("tx", 500, math.MaxInt16, stateOngoing, kmsg.TxnMetadataValueTopic{Topic: "t", Partitions: []int32{0}})
	assert.Equal(t, tributary.ErrUnknownServerError.Code, h.producer("tx").init())
	h.advance(time.Hour)
	assert.Equal(t, "Ongoing", h.state("tx"), "the timeout cannot fence it either")
	assert.Empty(t, h.markers)
}
