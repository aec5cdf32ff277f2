package producer

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/producer/internal/ptest"
)

// produceWhile produces recs from one goroutine while disturb runs once
// about a third of the way through, then waits for every callback.
func produceWhile(t *testing.T, p *Producer, recs []*tributary.Record, disturb func()) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	wg.Add(len(recs))
	for i, r := range recs {
		if i == len(recs)/3 {
			disturb()
		}
		p.Produce(context.Background(), r, func(_ *tributary.Record, err error) {
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			wg.Done()
		})
		if i%500 == 0 {
			time.Sleep(time.Millisecond) // spread the records over many requests
		}
	}
	done := make(chan struct{})
	start := time.Now()
	defer func() { t.Logf("acknowledged %d records in %v after the last Produce", len(recs), time.Since(start)) }()
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("records not acknowledged")
	}
	require.Empty(t, errs)
}

// The leader of partitions moves mid-stream: the old leader answers
// NOT_LEADER_OR_FOLLOWER, the producer refreshes metadata, and retries
// at the new leader without losing, duplicating or reordering records.
func TestFaultLeaderMoves(t *testing.T) {
	c := newCluster(t)
	p := newProducer(t, c.ListenAddrs(), BatchSize(1024))
	recs := ptest.MakeRecords("t", 20000, true)
	produceWhile(t, p, recs, func() {
		for part := range int32(6) {
			require.NoError(t, c.MoveTopicPartition("t", part, (c.LeaderFor("t", part)+1)%3))
		}
	})
	ptest.CheckDelivery(t, recs, ptest.Consume(t, c.ListenAddrs(), "t", len(recs)), true, 6)
}

// Brokers answer NOT_LEADER_OR_FOLLOWER without a leader change (a
// stale broker view); retries go to the same leader after a refresh.
func TestFaultNotLeaderErrors(t *testing.T) {
	c := newCluster(t)
	p := newProducer(t, c.ListenAddrs(), BatchSize(1024))
	recs := ptest.MakeRecords("t", 20000, true)
	var h *kfake.FaultHandle
	produceWhile(t, p, recs, func() {
		h = c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotLeaderForPartition, Count: 20})
	})
	require.Equal(t, 20, h.Hits())
	ptest.CheckDelivery(t, recs, ptest.Consume(t, c.ListenAddrs(), "t", len(recs)), true, 6)
}

// REQUEST_TIMED_OUT after the append: the batch is in the log but the
// producer does not know; its retry must be deduplicated by the broker
// through the idempotent sequence numbers.
func TestFaultAppendedButTimedOutIsDeduplicated(t *testing.T) {
	c := newCluster(t)
	p := newProducer(t, c.ListenAddrs(), BatchSize(1024))
	recs := ptest.MakeRecords("t", 20000, true)
	var h *kfake.FaultHandle
	produceWhile(t, p, recs, func() {
		h = c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.RequestTimedOut, Count: 15})
	})
	require.Equal(t, 15, h.Hits())
	ptest.CheckDelivery(t, recs, ptest.Consume(t, c.ListenAddrs(), "t", len(recs)), true, 6)
}

// Without idempotence the same fault duplicates records: this is what the
// previous test's deduplication protects against (and shows the fault
// really hits appended batches).
func TestFaultTimedOutWithoutIdempotenceDuplicates(t *testing.T) {
	c := newCluster(t)
	p := newProducer(t, c.ListenAddrs(), Idempotence(false), MaxInFlight(1))
	h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.RequestTimedOut, Count: 1})
	res := p.ProduceSync(context.Background(), &tributary.Record{Topic: "t", Key: []byte("k"), Value: []byte("v0")})
	require.NoError(t, res.FirstErr())
	require.Equal(t, 1, h.Hits())
	got := ptest.ConsumeN(t, c.ListenAddrs(), "t", 2)
	require.Len(t, got, 2)
}

// The connection dies with produce requests in flight (some answered,
// some not); everything is retried on a new connection exactly once.
func TestFaultConnectionDrops(t *testing.T) {
	c := newCluster(t)
	p := newProducer(t, c.ListenAddrs(), BatchSize(1024))
	var n atomic.Int32
	recs := ptest.MakeRecords("t", 20000, true)
	produceWhile(t, p, recs, func() {
		c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
			if n.Add(1) > 10 {
				return nil, nil, false
			}
			c.KeepControl()
			if n.Load()%2 == 0 {
				return nil, nil, false
			}
			return nil, errors.New("injected disconnect"), true
		})
	})
	require.GreaterOrEqual(t, n.Load(), int32(10))
	ptest.CheckDelivery(t, recs, ptest.Consume(t, c.ListenAddrs(), "t", len(recs)), true, 6)
}

// OUT_OF_ORDER_SEQUENCE_NUMBER on the batch the broker should have
// accepted next means the broker lost our state: the producer bumps its
// epoch (a second InitProducerId), restarts sequences and delivers.
func TestFaultOutOfOrderSequenceBumpsEpoch(t *testing.T) {
	for _, code := range []*kerr.Error{kerr.OutOfOrderSequenceNumber, kerr.UnknownProducerID} {
		t.Run(code.Message, func(t *testing.T) {
			c := newCluster(t)
			inits := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.InitProducerID}, Observe: true, Count: -1})
			p := newProducer(t, c.ListenAddrs(), BatchSize(1024))
			recs := ptest.MakeRecords("t", 5000, true)
			var h *kfake.FaultHandle
			produceWhile(t, p, recs, func() {
				h = c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Partitions: []int32{2}, Err: code, Count: 1})
			})
			require.Equal(t, 1, h.Hits())
			require.GreaterOrEqual(t, inits.Hits(), 2, "no epoch bump")
			ptest.CheckDelivery(t, recs, ptest.Consume(t, c.ListenAddrs(), "t", len(recs)), true, 6)
		})
	}
}

// A partition without a leader holds its records until one is elected.
func TestFaultBrokerRemovedAndReturns(t *testing.T) {
	c := newCluster(t)
	p := newProducer(t, c.ListenAddrs(), BatchSize(1024))
	recs := ptest.MakeRecords("t", 10000, true)
	produceWhile(t, p, recs, func() {
		h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Nodes: []int32{1}, Err: kerr.LeaderNotAvailable, Count: -1})
		time.AfterFunc(300*time.Millisecond, h.Remove)
	})
	ptest.CheckDelivery(t, recs, ptest.Consume(t, c.ListenAddrs(), "t", len(recs)), true, 6)
}

// A broker leaves the cluster mid-stream: its partitions get new leaders,
// the client drops the node, and the records reach the new leaders.
func TestFaultBrokerLeavesCluster(t *testing.T) {
	c := newCluster(t)
	p := newProducer(t, c.ListenAddrs(), BatchSize(1024))
	recs := ptest.MakeRecords("t", 20000, true)
	produceWhile(t, p, recs, func() {
		require.NoError(t, c.RemoveNode(c.LeaderFor("t", 0)))
	})
	m := p.Client().CachedMetadata()
	require.Len(t, m.Brokers, 2)
	ptest.CheckDelivery(t, recs, ptest.Consume(t, c.ListenAddrs(), "t", len(recs)), true, 6)
}

// All leaders change at once (an election everywhere) while producing.
func TestFaultShuffleLeaders(t *testing.T) {
	c := newCluster(t)
	p := newProducer(t, c.ListenAddrs(), BatchSize(1024))
	recs := ptest.MakeRecords("t", 20000, true)
	produceWhile(t, p, recs, func() {
		// Twice, with requests in flight in between; both happen before
		// the records are read back, which franz-go's consumer (rightly)
		// would take for lost data under its feet.
		c.ShufflePartitionLeaders()
		go func() {
			time.Sleep(5 * time.Millisecond)
			c.ShufflePartitionLeaders()
		}()
	})
	ptest.CheckDelivery(t, recs, ptest.Consume(t, c.ListenAddrs(), "t", len(recs)), true, 6)
}
