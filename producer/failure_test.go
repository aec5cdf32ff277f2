package producer

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker"
	"github.com/tributary/tributary/broker/brokertest"
	"github.com/tributary/tributary/client"
	"github.com/tributary/tributary/internal/stalldial"
)

// backend is a cluster with a topic "t" of 3 partitions.
type backend struct {
	name  string
	start func(t *testing.T) []string
}

var backends = []backend{
	{"kfake", func(t *testing.T) []string { return newCluster(t).ListenAddrs() }},
	{"tributary", func(t *testing.T) []string {
		b := brokertest.Start(t, func(c *broker.Config) { c.NumPartitions = 3 })
		// The first produce to "t" creates it (auto.create.topics.enable).
		p := newProducer(t, []string{b.Addr()})
		require.NoError(t, p.ProduceSync(context.Background(), &tributary.Record{Topic: "t", Value: []byte("init")}).FirstErr())
		return []string{b.Addr()}
	}},
}

func forEachBackend(t *testing.T, fn func(t *testing.T, addrs []string)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, b.start(t)) })
	}
}

// stallDialer is a stalldial.Dialer that also records, through the
// client's hook, the key of each request written.
type stallDialer struct {
	stalldial.Dialer
	written chan int16
}

func newStallDialer() *stallDialer { return &stallDialer{written: make(chan int16, 1024)} }

// hold stalls answers and forgets the writes seen so far.
func (d *stallDialer) hold() {
	for len(d.written) > 0 {
		<-d.written
	}
	d.Hold()
}

func (d *stallDialer) release() { d.Release() }

func (d *stallDialer) OnBrokerWrite(_ client.BrokerInfo, key int16, _ int, _ time.Duration, _ error) {
	select {
	case d.written <- key:
	default:
	}
}

// waitWritten waits until a request with key was written.
func (d *stallDialer) waitWritten(t *testing.T, key kmsg.Key) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case k := <-d.written:
			if k == int16(key) {
				return
			}
		case <-timeout:
			t.Fatalf("no %v request written", key)
		}
	}
}

// stalledProducer returns a producer on its own client whose answers can
// be held, warmed up so the topic and producer id are known.
func stalledProducer(t *testing.T, addrs []string, opts ...Opt) (*Producer, *stallDialer) {
	d := newStallDialer()
	// Partition 0 only: a connection to another leader could not be set
	// up with reads held.
	p := newProducer(t, addrs, append([]Opt{ClientOptions(client.Dialer(d.Dial), client.WithHooks(d)), Partitioner(partitionerManual())}, opts...)...)
	require.NoError(t, p.ProduceSync(context.Background(), &tributary.Record{Topic: "t", Value: []byte("warm")}).FirstErr())
	return p, d
}

type outcome struct {
	r   *tributary.Record
	err error
}

func produceAsync(p *Producer, ctx context.Context, value string) chan outcome {
	ch := make(chan outcome, 1)
	p.Produce(ctx, &tributary.Record{Topic: "t", Value: []byte(value)}, func(r *tributary.Record, err error) {
		ch <- outcome{r, err}
	})
	return ch
}

func await(t *testing.T, ch chan outcome) outcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(15 * time.Second):
		t.Fatal("no callback")
		return outcome{}
	}
}

// A record whose ctx is done is refused at once with ctx.Err().
func TestProduceDoneContext(t *testing.T) {
	forEachBackend(t, func(t *testing.T, addrs []string) {
		p := newProducer(t, addrs)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var got error
		called := false
		p.Produce(ctx, &tributary.Record{Topic: "t", Value: []byte("x")}, func(_ *tributary.Record, err error) {
			got, called = err, true
		})
		require.True(t, called, "the callback runs before Produce returns")
		require.ErrorIs(t, got, context.Canceled)
		require.NotErrorIs(t, got, ErrBufferFull)
	})
}

// A buffered record whose ctx ends before it is written into a request
// fails with the ctx's error, without being sent; the other records of its
// batch are sent.
func TestBufferedRecordCancelled(t *testing.T) {
	forEachBackend(t, func(t *testing.T, addrs []string) {
		// A long linger keeps the batch in the buffer.
		p := newProducer(t, addrs, Linger(time.Minute), DeliveryTimeout(time.Hour), Partitioner(partitionerManual()))
		ctx, cancel := context.WithCancel(context.Background())
		gone := make(chan outcome, 1)
		p.Produce(ctx, &tributary.Record{Topic: "t", Partition: 0, Value: []byte("cancelled")}, func(r *tributary.Record, err error) { gone <- outcome{r, err} })
		kept := make(chan outcome, 1)
		p.Produce(context.Background(), &tributary.Record{Topic: "t", Partition: 0, Value: []byte("kept")}, func(r *tributary.Record, err error) { kept <- outcome{r, err} })
		dctx, dcancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer dcancel()
		slow := make(chan outcome, 1)
		p.Produce(dctx, &tributary.Record{Topic: "t", Partition: 0, Value: []byte("deadline")}, func(r *tributary.Record, err error) { slow <- outcome{r, err} })
		cancel()
		require.ErrorIs(t, await(t, gone).err, context.Canceled)
		require.ErrorIs(t, await(t, slow).err, context.DeadlineExceeded)

		require.NoError(t, p.Flush(context.Background()))
		o := await(t, kept)
		require.NoError(t, o.err)
		require.GreaterOrEqual(t, o.r.Offset, int64(0))
	})
}

// Buffer memory full and the ctx ends: the record fails with ctx's error,
// not ErrBufferFull.
func TestBlockedOnMemoryCancelled(t *testing.T) {
	forEachBackend(t, func(t *testing.T, addrs []string) {
		p, d := stalledProducer(t, addrs, BufferMemory(2048), BatchSize(1024), Linger(0))
		d.hold()
		defer d.release()
		first := produceAsync(p, context.Background(), strings.Repeat("x", 1500))
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		o := await(t, produceAsync(p, ctx, strings.Repeat("y", 1500)))
		require.ErrorIs(t, o.err, context.DeadlineExceeded)
		require.NotErrorIs(t, o.err, ErrBufferFull)
		d.release()
		require.NoError(t, await(t, first).err)
	})
}

// A record already written into a request is decided by the broker's
// answer, whatever happens to its ctx meanwhile.
func TestInflightRecordIgnoresCancel(t *testing.T) {
	forEachBackend(t, func(t *testing.T, addrs []string) {
		p, d := stalledProducer(t, addrs, Linger(0))
		d.hold()
		ctx, cancel := context.WithCancel(context.Background())
		ch := produceAsync(p, ctx, "in flight")
		d.waitWritten(t, kmsg.Produce)
		cancel()
		d.release()
		o := await(t, ch)
		require.NoError(t, o.err)
		require.GreaterOrEqual(t, o.r.Offset, int64(0))
	})
}

// ProduceSync returns when its ctx ends, even with the request unanswered.
func TestProduceSyncHonoursContext(t *testing.T) {
	forEachBackend(t, func(t *testing.T, addrs []string) {
		p, d := stalledProducer(t, addrs, Linger(0))
		d.hold()
		defer d.release()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		res := p.ProduceSync(ctx, &tributary.Record{Topic: "t", Value: []byte("x")}, &tributary.Record{Topic: "t", Value: []byte("y")})
		require.Less(t, time.Since(start), 3*time.Second)
		require.Len(t, res, 2)
		for _, r := range res {
			require.ErrorIs(t, r.Err, context.DeadlineExceeded)
		}
	})
}

// Close on a shared client used to wait for the unanswered request (up to
// request timeout + produce timeout, ~10s and more) and spun in 1ms sleeps.
// It now keeps its ctx's deadline; the record fails with ErrClosed.
func TestCloseSharedClientHonoursDeadline(t *testing.T) {
	forEachBackend(t, func(t *testing.T, addrs []string) {
		d := newStallDialer()
		cl, err := client.New(client.SeedBrokers(addrs...), client.Dialer(d.Dial), client.WithHooks(d),
			client.RetryBackoff(10*time.Millisecond))
		require.NoError(t, err)
		defer cl.Close()
		p, err := New(WithClient(cl), Linger(0), Partitioner(partitionerManual()))
		require.NoError(t, err)
		require.NoError(t, p.ProduceSync(context.Background(), &tributary.Record{Topic: "t", Value: []byte("warm")}).FirstErr())

		d.hold()
		defer d.release()
		ch := produceAsync(p, context.Background(), "stuck")
		d.waitWritten(t, kmsg.Produce)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		err = p.Close(ctx)
		took := time.Since(start)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Less(t, took, 3*time.Second, "Close took %v with a 1s deadline", took)
		o := await(t, ch)
		require.ErrorIs(t, o.err, ErrClosed)
		// The late answer is ignored: nothing is called back twice.
		d.release()
		_, err = cl.Request(context.Background(), kmsg.NewPtrMetadataRequest())
		require.NoError(t, err)
		select {
		case o := <-ch:
			t.Fatalf("second callback: %v", o.err)
		default:
		}
	})
}

// With every seed down, a record failed only after MaxBlock (60s), blaming
// the topic. It now fails as soon as the client has tried every broker.
func TestNoReachableBrokerFailsFast(t *testing.T) {
	var addrs []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addrs = append(addrs, ln.Addr().String())
		ln.Close()
	}
	p := newProducer(t, addrs, ClientOptions(client.DialTimeout(time.Second)))
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := p.ProduceSync(ctx, &tributary.Record{Topic: "t", Value: []byte("x")}).FirstErr()
	took := time.Since(start)
	require.ErrorIs(t, err, client.ErrConnection)
	require.Contains(t, err.Error(), "cannot reach any broker")
	require.NotErrorIs(t, err, tributary.ErrUnknownTopicOrPartition)
	require.Less(t, took, 5*time.Second)
}

// A topic that does not exist, with auto-creation off, fails after
// UnknownTopicRetries+1 answers saying so, not after MaxBlock.
func TestMissingTopicFailsAfterUnknownTopicRetries(t *testing.T) {
	forEachBackend(t, func(t *testing.T, addrs []string) {
		var answers int
		var mu sync.Mutex
		counter := metadataCounter(func() { mu.Lock(); answers++; mu.Unlock() })
		p := newProducer(t, addrs, ClientOptions(client.AllowAutoTopicCreation(false), client.WithHooks(counter)))
		start := time.Now()
		err := p.ProduceSync(context.Background(), &tributary.Record{Topic: "does-not-exist", Value: []byte("x")}).FirstErr()
		require.ErrorIs(t, err, tributary.ErrUnknownTopicOrPartition)
		require.NotErrorIs(t, err, ErrDeliveryTimeout)
		require.Less(t, time.Since(start), 15*time.Second)
		mu.Lock()
		defer mu.Unlock()
		require.GreaterOrEqual(t, answers, 5)
		require.Less(t, answers, 20)
	})
}

type metadataCounter func()

func (f metadataCounter) OnBrokerRead(_ client.BrokerInfo, key int16, _ int, _ time.Duration, err error) {
	if key == int16(kmsg.Metadata) && err == nil {
		f()
	}
}

type batchCounter struct {
	mu      sync.Mutex
	records int
	bytes   int
}

func (b *batchCounter) OnProduceBatchWritten(_ client.BrokerInfo, topic string, _ int32, m client.ProduceBatchMetrics) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if topic == "t" && m.BaseOffset >= 0 {
		b.records += m.NumRecords
		b.bytes += m.CompressedBytes
	}
}

func TestProduceBatchHook(t *testing.T) {
	forEachBackend(t, func(t *testing.T, addrs []string) {
		h := &batchCounter{}
		p := newProducer(t, addrs, ClientOptions(client.WithHooks(h)))
		var recs []*tributary.Record
		for range 50 {
			recs = append(recs, &tributary.Record{Topic: "t", Value: []byte("hello")})
		}
		require.NoError(t, p.ProduceSync(context.Background(), recs...).FirstErr())
		h.mu.Lock()
		defer h.mu.Unlock()
		require.Equal(t, 50, h.records)
		require.Greater(t, h.bytes, 50*5)
	})
}

// PurgeTopics drops a topic's state from the producer and its client:
// buffered records fail with ErrTopicPurged, and producing to the topic
// again works (under a new epoch, as its sequences restart).
func TestPurgeTopics(t *testing.T) {
	forEachBackend(t, func(t *testing.T, addrs []string) {
		p := newProducer(t, addrs, Linger(time.Minute), DeliveryTimeout(time.Hour), Partitioner(partitionerManual()))
		ctx := context.Background()
		first := produceAsync(p, ctx, "first")
		require.NoError(t, p.Flush(ctx))
		require.NoError(t, await(t, first).err)

		buffered := produceAsync(p, ctx, "buffered")
		p.PurgeTopics("t")
		o := await(t, buffered)
		require.ErrorIs(t, o.err, ErrTopicPurged)
		p.topicsMu.RLock()
		require.NotContains(t, p.topics, "t")
		p.topicsMu.RUnlock()
		require.NotContains(t, p.Client().CachedMetadata().Topics, "t")

		again := produceAsync(p, ctx, "again")
		require.NoError(t, p.Flush(ctx))
		o = await(t, again)
		require.NoError(t, o.err)
		require.Greater(t, o.r.Offset, int64(0))
	})
}
