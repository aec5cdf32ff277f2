package producer

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/client"
	"github.com/tributary/tributary/producer/internal/ptest"
)

func newCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(3), kfake.SeedTopics(6, "t")}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func newProducer(t testing.TB, addrs []string, opts ...Opt) *Producer {
	t.Helper()
	p, err := New(append([]Opt{
		SeedBrokers(addrs...),
		ClientOptions(client.RetryBackoff(10 * time.Millisecond)),
	}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Close(ctx)
	})
	return p
}

func produceAll(t *testing.T, p *Producer, recs []*tributary.Record) {
	t.Helper()
	ptest.ProduceAll(t, p.Produce, p.Flush, recs)
}

func TestProduceEveryCodec(t *testing.T) {
	codecs := []Codec{NoCompression, Gzip, Snappy, LZ4, ZSTD}
	var topics []string
	for _, c := range codecs {
		topics = append(topics, "t-"+c.String())
	}
	c := newCluster(t, kfake.SeedTopics(6, topics...))
	for _, codec := range codecs {
		t.Run(codec.String(), func(t *testing.T) {
			topic := "t-" + codec.String()
			p := newProducer(t, c.ListenAddrs(), Compression(codec), BatchSize(4096))
			recs := ptest.MakeRecords(topic, 3000, true)
			produceAll(t, p, recs)
			got := ptest.Consume(t, c.ListenAddrs(), topic, len(recs))
			ptest.CheckDelivery(t, recs, got, true, 6)
		})
	}
}

func TestProduceKeylessSticky(t *testing.T) {
	c := newCluster(t)
	p := newProducer(t, c.ListenAddrs(), BatchSize(2048))
	recs := ptest.MakeRecords("t", 2000, false)
	produceAll(t, p, recs)
	got := ptest.Consume(t, c.ListenAddrs(), "t", len(recs))
	ptest.CheckDelivery(t, recs, got, false, 6)
	// Sticky partitioning moves on after each full batch: with 2000
	// records in ~2KiB batches several partitions must be used.
	used := map[int32]bool{}
	for _, g := range got {
		used[g.Partition] = true
	}
	require.Greater(t, len(used), 2)
}

func TestProduceSyncAndAcks(t *testing.T) {
	c := newCluster(t)
	for _, acks := range []int16{AcksAll, AcksLeader, AcksNone} {
		t.Run(strconv.Itoa(int(acks)), func(t *testing.T) {
			topic := "t"
			p := newProducer(t, c.ListenAddrs(), Acks(acks))
			recs := []*tributary.Record{
				{Topic: topic, Key: []byte("a"), Value: []byte("x1")},
				{Topic: topic, Key: []byte("a"), Value: []byte("x2")},
			}
			res := p.ProduceSync(context.Background(), recs...)
			require.NoError(t, res.FirstErr())
			require.Equal(t, ptest.JavaPartition([]byte("a"), 6), res[0].Record.Partition)
			if acks == AcksNone {
				require.Equal(t, int64(-1), res[0].Record.Offset)
			} else {
				require.Equal(t, res[0].Record.Offset+1, res[1].Record.Offset)
			}
		})
	}
	_, err := New(SeedBrokers(c.ListenAddrs()...), Acks(AcksLeader), Idempotence(true))
	require.Error(t, err)
}

func TestManualPartitioner(t *testing.T) {
	c := newCluster(t)
	p := newProducer(t, c.ListenAddrs(), Partitioner(partitionerManual()))
	res := p.ProduceSync(context.Background(),
		&tributary.Record{Topic: "t", Partition: 4, Value: []byte("a")},
		&tributary.Record{Topic: "t", Partition: 6, Value: []byte("b")})
	require.NoError(t, res[0].Err)
	require.Equal(t, int32(4), res[0].Record.Partition)
	require.ErrorIs(t, res[1].Err, tributary.ErrUnknownTopicOrPartition)
}

func TestRecordTooLarge(t *testing.T) {
	c := newCluster(t, kfake.BrokerConfigs(map[string]string{"message.max.bytes": "2000"}))
	p := newProducer(t, c.ListenAddrs(), MaxRequestSize(10000))
	big := make([]byte, 20000)
	res := p.ProduceSync(context.Background(), &tributary.Record{Topic: "t", Value: big})
	require.ErrorIs(t, res.FirstErr(), ErrRecordTooLarge)

	// Within max.request.size but above the broker's message.max.bytes.
	res = p.ProduceSync(context.Background(), &tributary.Record{Topic: "t", Value: make([]byte, 5000)})
	require.ErrorIs(t, res.FirstErr(), ErrRecordTooLarge)
	require.ErrorIs(t, res.FirstErr(), tributary.ErrMessageTooLarge)

	// The producer still works afterwards (the epoch bump healed the gap).
	res = p.ProduceSync(context.Background(), &tributary.Record{Topic: "t", Key: []byte("k"), Value: []byte("ok")})
	require.NoError(t, res.FirstErr())
}

func TestUnknownTopicFailsAfterMaxBlock(t *testing.T) {
	c := newCluster(t)
	p := newProducer(t, c.ListenAddrs(), MaxBlock(300*time.Millisecond), UnknownTopicRetries(-1))
	start := time.Now()
	res := p.ProduceSync(context.Background(), &tributary.Record{Topic: "missing", Value: []byte("x")})
	require.ErrorIs(t, res.FirstErr(), tributary.ErrUnknownTopicOrPartition)
	require.ErrorIs(t, res.FirstErr(), ErrDeliveryTimeout)
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestTopicCreatedWhileWaiting(t *testing.T) {
	c := newCluster(t, kfake.AllowAutoTopicCreation())
	p := newProducer(t, c.ListenAddrs())
	res := p.ProduceSync(context.Background(), &tributary.Record{Topic: "auto", Key: []byte("k"), Value: []byte("x")})
	require.NoError(t, res.FirstErr())
}

func TestTopicAuthorizationFailed(t *testing.T) {
	c := newCluster(t, kfake.EnableSASL(), kfake.Superuser("PLAIN", "admin", "pw"),
		kfake.User("PLAIN", "bob", "pw"), kfake.EnableACLs())
	p := newProducer(t, c.ListenAddrs(), ClientOptions(client.SASL(client.Plain("bob", "pw"))), MaxBlock(5*time.Second))
	res := p.ProduceSync(context.Background(), &tributary.Record{Topic: "t", Value: []byte("x")})
	err := res.FirstErr()
	require.Error(t, err)
	require.ErrorIs(t, err, tributary.ErrTopicAuthorizationFailed)
}

func TestProduceAfterClose(t *testing.T) {
	c := newCluster(t)
	p := newProducer(t, c.ListenAddrs())
	require.NoError(t, p.Close(context.Background()))
	res := p.ProduceSync(context.Background(), &tributary.Record{Topic: "t", Value: []byte("x")})
	require.ErrorIs(t, res.FirstErr(), ErrClosed)
}

func TestCloseGivesUp(t *testing.T) {
	c := newCluster(t)
	p := newProducer(t, c.ListenAddrs(), MaxBlock(time.Minute), UnknownTopicRetries(-1))
	// Records for a topic that never appears cannot be flushed.
	var got error
	var wg sync.WaitGroup
	wg.Add(1)
	p.Produce(context.Background(), &tributary.Record{Topic: "never", Value: []byte("x")}, func(_ *tributary.Record, err error) {
		got = err
		wg.Done()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := p.Close(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	wg.Wait()
	require.ErrorIs(t, got, ErrClosed)
}

func TestBufferFull(t *testing.T) {
	c := newCluster(t)
	// Block sending: nothing is acknowledged, so memory is never released.
	c.ControlKey(0, func(kreq kmsgRequest) (kmsgResponse, error, bool) {
		c.KeepControl()
		c.SleepControl(func() { time.Sleep(200 * time.Millisecond) })
		return nil, nil, false
	})
	p := newProducer(t, c.ListenAddrs(), BufferMemory(16384), BatchSize(1024), NonBlocking(), Linger(0))
	var full int
	for i := range 1000 {
		p.Produce(context.Background(), &tributary.Record{Topic: "t", Value: make([]byte, 100), Key: []byte(strconv.Itoa(i))}, func(_ *tributary.Record, err error) {
			if errors.Is(err, ErrBufferFull) {
				full++
			}
		})
	}
	require.Greater(t, full, 0)

	q := newProducer(t, c.ListenAddrs(), BufferMemory(16384), BatchSize(1024), MaxBlock(100*time.Millisecond))
	start := time.Now()
	var blockedErr error
	for i := range 1000 {
		q.Produce(context.Background(), &tributary.Record{Topic: "t", Value: make([]byte, 100)}, func(_ *tributary.Record, err error) {
			if err != nil && blockedErr == nil {
				blockedErr = err
			}
		})
		if blockedErr != nil {
			break
		}
		_ = i
	}
	require.ErrorIs(t, blockedErr, ErrBufferFull)
	require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
}

func TestDeliveryTimeout(t *testing.T) {
	c := newCluster(t)
	c.ControlKey(0, func(kreq kmsgRequest) (kmsgResponse, error, bool) {
		c.KeepControl()
		return nil, errors.New("drop"), true // close the connection every time
	})
	p := newProducer(t, c.ListenAddrs(), DeliveryTimeout(600*time.Millisecond), RequestTimeout(500*time.Millisecond), Linger(0))
	start := time.Now()
	res := p.ProduceSync(context.Background(), &tributary.Record{Topic: "t", Value: []byte("x")})
	require.ErrorIs(t, res.FirstErr(), ErrDeliveryTimeout)
	require.ErrorIs(t, res.FirstErr(), client.ErrConnection)
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestOptionsValidated(t *testing.T) {
	_, err := New()
	require.Error(t, err)
	_, err = New(SeedBrokers("a:1"), MaxInFlight(6))
	require.Error(t, err)
	_, err = New(SeedBrokers("a:1"), Compression(Codec(9)))
	require.Error(t, err)
	_, err = New(SeedBrokers("a:1"), DeliveryTimeout(time.Second))
	require.Error(t, err)
	p, err := New(SeedBrokers("a:1"), Idempotence(false), MaxInFlight(10))
	require.NoError(t, err)
	p.Close(context.Background())
}

var _ = fmt.Sprint

// Several goroutines produce at once: each goroutine's records keep their
// order within each partition, and every record arrives once.
func TestConcurrentProducers(t *testing.T) {
	c := newCluster(t)
	p := newProducer(t, c.ListenAddrs(), BatchSize(2048), Linger(time.Millisecond))
	const goroutines, per = 4, 3000
	var wg sync.WaitGroup
	var failed atomic.Int32
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				r := &tributary.Record{Topic: "t", Key: []byte(strconv.Itoa(i % 13)), Value: []byte(fmt.Sprintf("%d-%d", g, i))}
				p.Produce(context.Background(), r, func(_ *tributary.Record, err error) {
					if err != nil {
						failed.Add(1)
					}
				})
			}
		}()
	}
	wg.Wait()
	require.NoError(t, p.Flush(context.Background()))
	require.Zero(t, failed.Load())
	got := ptest.Consume(t, c.ListenAddrs(), "t", goroutines*per)
	last := map[[2]int]int{}
	seen := map[string]bool{}
	for _, r := range got {
		require.False(t, seen[string(r.Value)], "duplicate %s", r.Value)
		seen[string(r.Value)] = true
		var g, i int
		_, err := fmt.Sscanf(string(r.Value), "%d-%d", &g, &i)
		require.NoError(t, err)
		k := [2]int{g, int(r.Partition)}
		if prev, ok := last[k]; ok {
			require.Greater(t, i, prev)
		}
		last[k] = i
	}
}

// Flush gives up when ctx ends and says how much is still pending.
func TestFlushContext(t *testing.T) {
	c := newCluster(t)
	c.ControlKey(0, func(kmsgRequest) (kmsgResponse, error, bool) {
		c.KeepControl()
		c.SleepControl(func() { time.Sleep(300 * time.Millisecond) })
		return nil, nil, false
	})
	p := newProducer(t, c.ListenAddrs())
	p.Produce(context.Background(), &tributary.Record{Topic: "t", Value: []byte("x")}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := p.Flush(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, p.Flush(context.Background()))
}

// Close stops every goroutine the producer (and its client) started.
func TestCloseLeaksNoGoroutines(t *testing.T) {
	c := newCluster(t)
	base := runtime.NumGoroutine()
	p, err := New(SeedBrokers(c.ListenAddrs()...))
	require.NoError(t, err)
	recs := ptest.MakeRecords("t", 1000, true)
	produceAll(t, p, recs)
	require.NoError(t, p.Close(context.Background()))
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines left, want %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A producer on a caller's client leaves the client open on Close.
func TestWithClient(t *testing.T) {
	c := newCluster(t)
	cl, err := client.New(client.SeedBrokers(c.ListenAddrs()...))
	require.NoError(t, err)
	defer cl.Close()
	p, err := New(WithClient(cl))
	require.NoError(t, err)
	require.NoError(t, p.ProduceSync(context.Background(), &tributary.Record{Topic: "t", Value: []byte("x")}).FirstErr())
	require.NoError(t, p.Close(context.Background()))
	_, err = cl.Metadata(context.Background(), "t")
	require.NoError(t, err)
}

// Without permission to write anywhere, InitProducerId is refused with
// CLUSTER_AUTHORIZATION_FAILED; records fail with it instead of waiting.
func TestIdempotentWriteNotAuthorized(t *testing.T) {
	c := newCluster(t, kfake.EnableSASL(), kfake.Superuser("PLAIN", "admin", "pw"), kfake.EnableACLs(),
		kfake.User("PLAIN", "reader", "pw", kfake.ACL{
			Resource: kmsg.ACLResourceTypeTopic, Name: "t", Pattern: kmsg.ACLResourcePatternTypeLiteral,
			Operation: kmsg.ACLOperationDescribe, Allow: true,
		}))
	p := newProducer(t, c.ListenAddrs(), ClientOptions(client.SASL(client.Plain("reader", "pw"))))
	start := time.Now()
	res := p.ProduceSync(context.Background(), &tributary.Record{Topic: "t", Value: []byte("x")})
	require.ErrorIs(t, res.FirstErr(), tributary.ErrClusterAuthorizationFailed)
	require.Less(t, time.Since(start), 5*time.Second)

	// Without idempotence the produce itself is refused per topic.
	q := newProducer(t, c.ListenAddrs(), ClientOptions(client.SASL(client.Plain("reader", "pw"))), Idempotence(false))
	res = q.ProduceSync(context.Background(), &tributary.Record{Topic: "t", Value: []byte("x")})
	require.ErrorIs(t, res.FirstErr(), tributary.ErrTopicAuthorizationFailed)
}

// A topic whose max.message.bytes is below the batch size: batches the
// broker refuses as MESSAGE_TOO_LARGE are split (as Java does) until they
// fit, and every record arrives once and in order.
func TestSplitsBatchTooLargeForTopic(t *testing.T) {
	c := newCluster(t, kfake.BrokerConfigs(map[string]string{"message.max.bytes": "3000"}))
	p := newProducer(t, c.ListenAddrs(), BatchSize(16384), Linger(50*time.Millisecond))
	recs := ptest.MakeRecords("t", 600, true)
	for _, r := range recs {
		r.Value = append(r.Value, make([]byte, 50)...)
	}
	res := p.ProduceSync(context.Background(), recs...)
	require.NoError(t, res.FirstErr())
	got := ptest.Consume(t, c.ListenAddrs(), "t", len(recs))
	for _, g := range got {
		g.Value = g.Value[:len(g.Value)-50]
	}
	for _, r := range recs {
		r.Value = r.Value[:len(r.Value)-50]
	}
	ptest.CheckDelivery(t, recs, got, true, 6)
}
