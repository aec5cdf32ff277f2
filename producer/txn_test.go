package producer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/client"
	"github.com/tributary/tributary/consumer"
)

// The transactional producer against kfake, which implements Kafka's
// transaction coordinator, markers and read_committed fetches.

// txnCluster seeds one-partition topics unless parts says otherwise: in
// one partition, reading up to a record produced last proves that
// nothing hidden before it was returned.
func txnCluster(t *testing.T, parts int32, topics ...string) *kfake.Cluster {
	t.Helper()
	return newCluster(t, kfake.SeedTopics(parts, topics...))
}

func txnProducer(t *testing.T, addrs []string, id string, opts ...Opt) *Producer {
	t.Helper()
	return newProducer(t, addrs, append([]Opt{TransactionalID(id), Linger(time.Millisecond)}, opts...)...)
}

func rec(topic, v string) *tributary.Record {
	return &tributary.Record{Topic: topic, Key: []byte(v), Value: []byte(v)}
}

// produceTxn produces values in the open transaction and waits for them.
func produceTxn(t *testing.T, p *Producer, topic string, vals ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var recs []*tributary.Record
	for _, v := range vals {
		recs = append(recs, rec(topic, v))
	}
	require.NoError(t, p.ProduceSync(ctx, recs...).FirstErr())
}

func vals(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%03d", prefix, i)
	}
	return out
}

// readUntil consumes every partition of topic from the start with the
// given isolation until it has seen the value last, and returns the values
// seen, "end" markers included. Waiting for a record written after the
// ones that must stay hidden proves they are hidden, without sleeping.
func readUntil(t *testing.T, addrs []string, topic string, parts int32, iso consumer.IsolationLevel, last string, atLeast ...int) []string {
	t.Helper()
	c, err := consumer.New(consumer.SeedBrokers(addrs...), consumer.Isolation(iso),
		consumer.AutoOffsetReset(consumer.ResetEarliest), consumer.FetchMaxWait(50*time.Millisecond))
	require.NoError(t, err)
	defer c.Close(context.Background())
	var tps []tributary.TopicPartition
	for i := range parts {
		tps = append(tps, tributary.TopicPartition{Topic: topic, Partition: i})
	}
	require.NoError(t, c.Assign(tps...))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []string
	for !containsStr(got, last) || len(atLeast) > 0 && len(got) < atLeast[0] {
		recs, err := c.Poll(ctx)
		require.NoError(t, err, "seen so far: %v", got)
		for _, r := range recs {
			got = append(got, string(r.Value))
		}
	}
	return got
}

func containsStr(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func sortedCopy(ss []string) []string {
	out := append([]string(nil), ss...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func TestTxnCommitVisibleAbortHidden(t *testing.T) {
	c := txnCluster(t, 1, "out")
	addrs := c.ListenAddrs()
	p := txnProducer(t, addrs, "tx-commit")
	ctx := context.Background()

	require.NoError(t, p.BeginTxn())
	produceTxn(t, p, "out", vals("a", 30)...)
	require.NoError(t, p.CommitTxn(ctx))

	// Flushed, so written to the log, then aborted.
	require.NoError(t, p.BeginTxn())
	produceTxn(t, p, "out", vals("b", 30)...)
	require.NoError(t, p.AbortTxn(ctx))

	// Aborted before being flushed: dropped with ErrTxnAborted.
	require.NoError(t, p.BeginTxn())
	var dropped atomic.Int32
	for _, v := range vals("c", 5) {
		p.Produce(ctx, rec("out", v), func(_ *tributary.Record, err error) {
			if err != nil {
				dropped.Add(1)
			}
		})
	}
	require.NoError(t, p.AbortTxn(ctx))

	require.NoError(t, p.BeginTxn())
	produceTxn(t, p, "out", append(vals("d", 30), "end")...)
	require.NoError(t, p.CommitTxn(ctx))

	got := readUntil(t, addrs, "out", 1, consumer.ReadCommitted, "end")
	want := append(append(vals("a", 30), vals("d", 30)...), "end")
	require.Equal(t, sortedCopy(want), sortedCopy(got), "read_committed sees exactly the committed records")

	all := readUntil(t, addrs, "out", 1, consumer.ReadUncommitted, "end", 91)
	for _, v := range vals("b", 30) {
		require.Contains(t, all, v, "aborted records are in the log, hidden only from read_committed")
	}
}

func TestTxnProduceOutsideTxn(t *testing.T) {
	c := txnCluster(t, 1, "out")
	p := txnProducer(t, c.ListenAddrs(), "tx-outside")
	ctx := context.Background()
	err := p.ProduceSync(ctx, rec("out", "x")).FirstErr()
	require.ErrorIs(t, err, ErrNoTxn)
	require.ErrorIs(t, p.CommitTxn(ctx), ErrNoTxn)
	require.ErrorIs(t, p.AbortTxn(ctx), ErrNoTxn)

	require.NoError(t, p.BeginTxn())
	require.ErrorIs(t, p.BeginTxn(), ErrTxnInProgress)
	produceTxn(t, p, "out", "y")
	require.NoError(t, p.CommitTxn(ctx))
	require.ErrorIs(t, p.ProduceSync(ctx, rec("out", "z")).FirstErr(), ErrNoTxn)

	// A committed transaction with nothing in it needs no coordinator.
	require.NoError(t, p.BeginTxn())
	require.NoError(t, p.CommitTxn(ctx))

	plain := newProducer(t, c.ListenAddrs())
	require.ErrorIs(t, plain.BeginTxn(), ErrNotTransactional)
}

func TestTxnOptions(t *testing.T) {
	_, err := New(SeedBrokers("127.0.0.1:1"), TransactionalID("x"), Idempotence(false))
	require.ErrorContains(t, err, "requires idempotence")
	_, err = New(SeedBrokers("127.0.0.1:1"), TransactionalID("x"), Acks(AcksLeader))
	require.ErrorContains(t, err, "requires Acks")
	_, err = New(SeedBrokers("127.0.0.1:1"), TransactionTimeout(time.Second))
	require.ErrorContains(t, err, "needs TransactionalID")
	_, err = New(SeedBrokers("127.0.0.1:1"), TransactionalID("x"), TransactionTimeout(0))
	require.ErrorContains(t, err, "TransactionTimeout")
	p, err := New(SeedBrokers("127.0.0.1:1"), TransactionalID("x"), TransactionTimeout(10*time.Second))
	require.NoError(t, err)
	require.True(t, p.cfg.idempotent)
	require.NoError(t, p.Close(context.Background()))
}

func TestTxnFenced(t *testing.T) {
	c := txnCluster(t, 1, "out")
	addrs := c.ListenAddrs()
	ctx := context.Background()
	p1 := txnProducer(t, addrs, "tx-fence")
	require.NoError(t, p1.BeginTxn())
	produceTxn(t, p1, "out", vals("zombie", 10)...)

	// A new instance with the same id fences p1 and aborts its
	// transaction.
	p2 := txnProducer(t, addrs, "tx-fence")
	require.NoError(t, p2.InitTransactions(ctx))

	err := p1.CommitTxn(ctx)
	require.ErrorIs(t, err, ErrFenced)
	require.True(t, errors.Is(err, tributary.ErrProducerFenced) || errors.Is(err, tributary.ErrInvalidProducerEpoch), "the broker's error is wrapped: %v", err)
	require.ErrorIs(t, p1.ProduceSync(ctx, rec("out", "late")).FirstErr(), ErrFenced)
	require.ErrorIs(t, p1.BeginTxn(), ErrFenced)
	require.ErrorIs(t, p1.CommitTxn(ctx), ErrFenced)
	require.ErrorIs(t, p1.AbortTxn(ctx), ErrFenced)

	require.NoError(t, p2.BeginTxn())
	produceTxn(t, p2, "out", "end")
	require.NoError(t, p2.CommitTxn(ctx))
	got := readUntil(t, addrs, "out", 1, consumer.ReadCommitted, "end")
	require.Equal(t, []string{"end"}, got, "the zombie's records were aborted")
}

// A producer fenced in the middle of a transaction: its later records are
// refused (a real Kafka answers INVALID_PRODUCER_EPOCH, kfake
// INVALID_TXN_STATE, as the new epoch aborted the transaction), and its
// EndTxn is fenced, after which nothing works.
func TestTxnFencedOnProduce(t *testing.T) {
	c := txnCluster(t, 1, "out")
	addrs := c.ListenAddrs()
	ctx := context.Background()
	p1 := txnProducer(t, addrs, "tx-fence-produce")
	require.NoError(t, p1.BeginTxn())
	produceTxn(t, p1, "out", "first") // "out" partitions now in the transaction
	p2 := txnProducer(t, addrs, "tx-fence-produce")
	require.NoError(t, p2.InitTransactions(ctx))
	var res Results
	for range 3 {
		res = append(res, p1.ProduceSync(ctx, rec("out", "x"))...)
	}
	err := res.FirstErr()
	require.Error(t, err)
	require.True(t, errors.Is(err, ErrFenced) || errors.Is(err, ErrAbortableTxn), "%v", err)
	err = p1.CommitTxn(ctx)
	require.True(t, errors.Is(err, ErrFenced) || errors.Is(err, ErrAbortableTxn), "%v", err)
	require.ErrorIs(t, p1.AbortTxn(ctx), ErrFenced)
	require.ErrorIs(t, p1.ProduceSync(ctx, rec("out", "late")).FirstErr(), ErrFenced)
	require.ErrorIs(t, p1.BeginTxn(), ErrFenced)
}

func TestTxnSendOffsets(t *testing.T) {
	c := txnCluster(t, 1, "in", "out")
	addrs := c.ListenAddrs()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seed := newProducer(t, addrs)
	var in []*tributary.Record
	for _, v := range vals("in", 20) {
		in = append(in, rec("in", v))
	}
	require.NoError(t, seed.ProduceSync(ctx, in...).FirstErr())

	cons, err := consumer.New(consumer.SeedBrokers(addrs...), consumer.Group("etl"), consumer.Topics("in"),
		consumer.AutoCommit(false), consumer.AutoOffsetReset(consumer.ResetEarliest),
		consumer.Isolation(consumer.ReadCommitted), consumer.FetchMaxWait(50*time.Millisecond))
	require.NoError(t, err)
	defer cons.Close(context.Background())
	var polled []*tributary.Record
	for len(polled) < len(in) {
		recs, err := cons.Poll(ctx)
		require.NoError(t, err)
		polled = append(polled, recs...)
	}
	offsets := map[tributary.TopicPartition]int64{}
	for _, r := range polled {
		tp := tributary.TopicPartition{Topic: r.Topic, Partition: r.Partition}
		offsets[tp] = max(offsets[tp], r.Offset+1)
	}
	gm := cons.GroupMetadata()
	require.Equal(t, "etl", gm.Group)
	require.GreaterOrEqual(t, gm.Generation, int32(0))

	p := txnProducer(t, addrs, "tx-offsets")
	committed := func() map[tributary.TopicPartition]int64 {
		tps := make([]tributary.TopicPartition, 0, len(offsets))
		for tp := range offsets {
			tps = append(tps, tp)
		}
		got, err := cons.CommittedOffsets(ctx, tps...)
		require.NoError(t, err)
		out := map[tributary.TopicPartition]int64{}
		for tp, off := range got {
			if off >= 0 {
				out[tp] = off
			}
		}
		return out
	}

	// Aborted: the group's offsets do not move.
	require.NoError(t, p.BeginTxn())
	produceTxn(t, p, "out", "aborted")
	require.NoError(t, p.SendOffsetsToTxn(ctx, offsets, gm))
	require.NoError(t, p.AbortTxn(ctx))
	require.Empty(t, committed())

	// Committed: they do, with the output.
	require.NoError(t, p.BeginTxn())
	produceTxn(t, p, "out", "end")
	require.NoError(t, p.SendOffsetsToTxn(ctx, offsets, gm))
	require.NoError(t, p.CommitTxn(ctx))
	require.Equal(t, offsets, committed())
	require.Equal(t, []string{"end"}, readUntil(t, addrs, "out", 1, consumer.ReadCommitted, "end"))

	// A stale generation is refused, and the transaction must abort.
	require.NoError(t, p.BeginTxn())
	stale := gm
	stale.Generation += 5
	err = p.SendOffsetsToTxn(ctx, offsets, stale)
	require.ErrorIs(t, err, ErrAbortableTxn)
	require.ErrorIs(t, err, tributary.ErrIllegalGeneration)
	require.ErrorIs(t, p.CommitTxn(ctx), ErrAbortableTxn)
	require.NoError(t, p.AbortTxn(ctx))
	require.NoError(t, p.BeginTxn())
	require.NoError(t, p.CommitTxn(ctx))
}

// holdEndTxn makes kfake hold the first EndTxn unanswered until release.
func holdEndTxn(c *kfake.Cluster) (release func()) {
	ch := make(chan struct{})
	var held atomic.Bool
	c.ControlKey(int16(kmsg.EndTxn), func(kmsg.Request) (kmsg.Response, error, bool) {
		if held.CompareAndSwap(false, true) {
			c.SleepControl(func() { <-ch })
		}
		return nil, nil, false
	})
	return func() { close(ch) }
}

// CommitTxn gives up when its ctx ends, even while the coordinator does
// not answer EndTxn; a later CommitTxn finishes the transaction.
func TestTxnCommitCtxCancel(t *testing.T) {
	c := txnCluster(t, 1, "out")
	addrs := c.ListenAddrs()
	p := txnProducer(t, addrs, "tx-cancel")
	require.NoError(t, p.BeginTxn())
	produceTxn(t, p, "out", "end")

	release := holdEndTxn(c)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := p.CommitTxn(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 5*time.Second)
	require.ErrorIs(t, p.ProduceSync(context.Background(), rec("out", "late")).FirstErr(), ErrNoTxn)
	require.ErrorContains(t, p.AbortTxn(context.Background()), "call CommitTxn again", "the commit may have happened")
	require.ErrorIs(t, p.BeginTxn(), ErrTxnInProgress)
	release()

	require.NoError(t, p.CommitTxn(context.Background()))
	require.Equal(t, []string{"end"}, readUntil(t, addrs, "out", 1, consumer.ReadCommitted, "end"))
}

// Close with an open transaction aborts it, so the partition's last
// stable offset moves on and later records become readable.
func TestTxnCloseAborts(t *testing.T) {
	c := txnCluster(t, 1, "out")
	addrs := c.ListenAddrs()
	ctx := context.Background()
	p, err := New(SeedBrokers(addrs...), TransactionalID("tx-close"), ClientOptions(client.RetryBackoff(10*time.Millisecond)))
	require.NoError(t, err)
	require.NoError(t, p.BeginTxn())
	produceTxn(t, p, "out", vals("open", 10)...)
	var droppedErr atomic.Value
	p.Produce(ctx, rec("out", "unsent"), func(_ *tributary.Record, err error) {
		if err != nil {
			droppedErr.Store(err)
		}
	})
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, p.Close(cctx))

	// The coordinator saw the abort: the transaction is not ongoing.
	plain := newProducer(t, addrs)
	require.NoError(t, plain.ProduceSync(ctx, rec("out", "end")).FirstErr())
	got := readUntil(t, addrs, "out", 1, consumer.ReadCommitted, "end")
	require.Equal(t, []string{"end"}, got)
	if e, _ := droppedErr.Load().(error); e != nil {
		require.True(t, errors.Is(e, ErrTxnAborted) || errors.Is(e, ErrClosed), "%v", e)
	}
}

// AddPartitionsToTxn answered CONCURRENT_TRANSACTIONS (the previous
// transaction's markers are still being written) and NOT_COORDINATOR is
// retried; one request adds all the partitions waiting at that moment.
func TestTxnAddPartitionsRetries(t *testing.T) {
	c := txnCluster(t, 3, "out", "out2")
	addrs := c.ListenAddrs()
	var calls atomic.Int32
	var maxParts atomic.Int32
	c.ControlKey(int16(kmsg.AddPartitionsToTxn), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kr.(*kmsg.AddPartitionsToTxnRequest)
		n := int32(0)
		for _, rt := range req.Topics {
			n += int32(len(rt.Partitions))
		}
		if n > maxParts.Load() {
			maxParts.Store(n)
		}
		code := int16(0)
		switch calls.Add(1) {
		case 1:
			code = tributary.ErrConcurrentTransactions.Code
		case 2:
			code = tributary.ErrNotCoordinator.Code
		case 3:
			code = tributary.ErrCoordinatorLoadInProgress.Code
		default:
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewAddPartitionsToTxnResponseTopic()
			st.Topic = rt.Topic
			for _, part := range rt.Partitions {
				sp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				sp.Partition = part
				sp.ErrorCode = code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	p := txnProducer(t, addrs, "tx-retry", Partitioner(partitionerManual()))
	ctx := context.Background()
	require.NoError(t, p.BeginTxn())
	var recs []*tributary.Record
	for i := range 3 {
		for _, topic := range []string{"out", "out2"} {
			recs = append(recs, &tributary.Record{Topic: topic, Partition: int32(i), Value: []byte(topic)})
		}
	}
	recs = append(recs, &tributary.Record{Topic: "out", Partition: 0, Value: []byte("end")})
	require.NoError(t, p.Flush(ctx))
	require.NoError(t, p.ProduceSync(ctx, recs...).FirstErr())
	require.NoError(t, p.CommitTxn(ctx))
	require.GreaterOrEqual(t, calls.Load(), int32(4))
	require.Greater(t, maxParts.Load(), int32(1), "partitions are added in batches")
	got := readUntil(t, addrs, "out", 3, consumer.ReadCommitted, "end", 4)
	require.Len(t, got, 4)
}

// A record that fails inside a transaction makes it abortable: CommitTxn
// refuses, AbortTxn recovers, and the next transaction commits.
func TestTxnAbortableRecovers(t *testing.T) {
	c := txnCluster(t, 1, "out")
	addrs := c.ListenAddrs()
	p := txnProducer(t, addrs, "tx-abortable")
	ctx := context.Background()
	var failed atomic.Bool
	c.ControlKey(int16(kmsg.Produce), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !failed.CompareAndSwap(false, true) {
			return nil, nil, false
		}
		req := kr.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = tributary.ErrInvalidRecord.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	require.NoError(t, p.BeginTxn())
	err := p.ProduceSync(ctx, rec("out", "bad")).FirstErr()
	require.ErrorIs(t, err, tributary.ErrInvalidRecord)
	err = p.CommitTxn(ctx)
	require.ErrorIs(t, err, ErrAbortableTxn)
	require.ErrorIs(t, err, tributary.ErrInvalidRecord)
	require.NotErrorIs(t, err, ErrFenced)
	require.NoError(t, p.AbortTxn(ctx))

	require.NoError(t, p.BeginTxn())
	produceTxn(t, p, "out", "end")
	require.NoError(t, p.CommitTxn(ctx))
	require.Equal(t, []string{"end"}, readUntil(t, addrs, "out", 1, consumer.ReadCommitted, "end"))
}

// Records produced from several goroutines while CommitTxn runs: each
// either made it into the transaction (its callback succeeded, and it is
// visible after the commit) or was refused with ErrNoTxn; none is lost
// or left in limbo.
func TestTxnConcurrentProduceDuringCommit(t *testing.T) {
	c := txnCluster(t, 1, "out")
	addrs := c.ListenAddrs()
	p := txnProducer(t, addrs, "tx-concurrent")
	ctx := context.Background()
	require.NoError(t, p.BeginTxn())

	var (
		mu       sync.Mutex
		ok       = map[string]bool{}
		refused  atomic.Int64
		produced atomic.Int64
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	for g := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				v := fmt.Sprintf("g%d-%05d", g, i)
				produced.Add(1)
				p.Produce(ctx, rec("out", v), func(_ *tributary.Record, err error) {
					switch {
					case err == nil:
						mu.Lock()
						ok[v] = true
						mu.Unlock()
					case errors.Is(err, ErrNoTxn):
						refused.Add(1)
					default:
						t.Errorf("record %s: %v", v, err)
					}
				})
				if refused.Load() > 100 {
					return
				}
			}
		})
	}
	require.Eventually(t, func() bool { return produced.Load() > 2000 }, 20*time.Second, time.Millisecond)
	require.NoError(t, p.CommitTxn(ctx))
	require.Eventually(t, func() bool { return refused.Load() > 0 }, 20*time.Second, time.Millisecond)
	stop.Store(true)
	wg.Wait()
	require.NoError(t, p.Flush(ctx))

	require.NoError(t, p.BeginTxn())
	produceTxn(t, p, "out", "end")
	require.NoError(t, p.CommitTxn(ctx))
	got := readUntil(t, addrs, "out", 1, consumer.ReadCommitted, "end")
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, len(ok)+1)
	for _, v := range got[:len(got)-1] {
		require.True(t, ok[v], "%s visible without a successful callback", v)
	}
	require.Equal(t, produced.Load(), int64(len(ok))+refused.Load())
}

// InitProducerId answered CONCURRENT_TRANSACTIONS (the previous
// instance's transaction is still being aborted) and EndTxn answered
// NOT_COORDINATOR and COORDINATOR_LOAD_IN_PROGRESS are retried, the
// coordinator looked up again.
func TestTxnCoordinatorRetries(t *testing.T) {
	c := txnCluster(t, 1, "out")
	addrs := c.ListenAddrs()
	var inits, ends, finds atomic.Int32
	c.ControlKey(int16(kmsg.InitProducerID), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if inits.Add(1) > 1 {
			return nil, nil, false
		}
		resp := kr.ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.ErrorCode = tributary.ErrConcurrentTransactions.Code
		return resp, nil, true
	})
	c.ControlKey(int16(kmsg.EndTxn), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		code := int16(0)
		switch ends.Add(1) {
		case 1:
			code = tributary.ErrNotCoordinator.Code
		case 2:
			code = tributary.ErrCoordinatorLoadInProgress.Code
		default:
			return nil, nil, false
		}
		resp := kr.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = code
		return resp, nil, true
	})
	c.ControlKey(int16(kmsg.FindCoordinator), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if kr.(*kmsg.FindCoordinatorRequest).CoordinatorType == 1 {
			finds.Add(1)
		}
		return nil, nil, false
	})
	p := txnProducer(t, addrs, "tx-coord")
	ctx := context.Background()
	require.NoError(t, p.BeginTxn())
	produceTxn(t, p, "out", "end")
	require.NoError(t, p.CommitTxn(ctx))
	require.Equal(t, int32(2), inits.Load())
	require.Equal(t, int32(3), ends.Load())
	require.GreaterOrEqual(t, finds.Load(), int32(2), "NOT_COORDINATOR makes it look the coordinator up again")
	require.Equal(t, []string{"end"}, readUntil(t, addrs, "out", 1, consumer.ReadCommitted, "end"))
}

// AbortTxn gives up when its ctx ends while the coordinator does not
// answer, and a later AbortTxn finishes.
func TestTxnAbortCtxCancel(t *testing.T) {
	c := txnCluster(t, 1, "out")
	addrs := c.ListenAddrs()
	p := txnProducer(t, addrs, "tx-abort-cancel")
	require.NoError(t, p.BeginTxn())
	produceTxn(t, p, "out", "aborted")
	release := holdEndTxn(c)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	require.ErrorIs(t, p.AbortTxn(ctx), context.DeadlineExceeded)
	require.Less(t, time.Since(start), 5*time.Second)
	require.ErrorIs(t, p.BeginTxn(), ErrTxnInProgress)
	release()
	require.NoError(t, p.AbortTxn(context.Background()))
	require.NoError(t, p.BeginTxn())
	produceTxn(t, p, "out", "end")
	require.NoError(t, p.CommitTxn(context.Background()))
	require.Equal(t, []string{"end"}, readUntil(t, addrs, "out", 1, consumer.ReadCommitted, "end"))
}
