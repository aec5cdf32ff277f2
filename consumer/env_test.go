package consumer

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/brokertest"
	"github.com/tributary/tributary/client"
)

// env is one cluster for one test, kfake or our broker, with a kgo client
// to produce test data and administer topics.
type env struct {
	name  string
	addrs []string
	kf    *kfake.Cluster
	kcl   *kgo.Client
	adm   *kadm.Client
}

type backend struct {
	name  string
	start func(t *testing.T) ([]string, *kfake.Cluster)
}

var backends = []backend{
	{"kfake", func(t *testing.T) ([]string, *kfake.Cluster) {
		c, err := kfake.NewCluster(kfake.NumBrokers(3))
		require.NoError(t, err)
		t.Cleanup(c.Close)
		return c.ListenAddrs(), c
	}},
	{"tributary", func(t *testing.T) ([]string, *kfake.Cluster) {
		b := brokertest.Start(t)
		return []string{b.Addr()}, nil
	}},
}

// forEachBackend runs fn against kfake and against our broker.
func forEachBackend(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, newEnv(t, b)) })
	}
}

// forEachGroupBackend is forEachBackend for group tests (see
// groupOnBroker).
func forEachGroupBackend(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	for _, b := range backends {
		if b.name == "tributary" && !groupOnBroker {
			continue
		}
		t.Run(b.name, func(t *testing.T) { fn(t, newEnv(t, b)) })
	}
}

func newEnv(t *testing.T, b backend) *env {
	t.Helper()
	addrs, kf := b.start(t)
	kcl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ProducerLinger(0))
	require.NoError(t, err)
	t.Cleanup(kcl.Close)
	return &env{name: b.name, addrs: addrs, kf: kf, kcl: kcl, adm: kadm.NewClient(kcl)}
}

// testLogger logs to t at DEBUG with TRIBUTARY_DEBUG set, else at WARN.
func testLogger(t *testing.T) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("TRIBUTARY_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: level}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// topic creates a topic with n partitions and returns its name.
func (e *env) topic(t *testing.T, n int32) string {
	t.Helper()
	name := fmt.Sprintf("t-%s-%d", t.Name(), time.Now().UnixNano())
	name = sanitize(name)
	resp, err := e.adm.CreateTopic(testCtx(t), n, 1, nil, name)
	require.NoError(t, err)
	require.NoError(t, resp.Err)
	return name
}

func sanitize(s string) string {
	out := []byte(s)
	for i, c := range out {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			out[i] = '_'
		}
	}
	if len(out) > 200 {
		out = out[len(out)-200:]
	}
	return string(out)
}

// produce writes n records to topic with kgo (keys k-i, values v-i,
// a header, timestamps ms apart) and returns them as Tributary records,
// with the partitions and offsets the broker gave them.
func (e *env) produce(t *testing.T, cl *kgo.Client, topic string, n int) []*tributary.Record {
	t.Helper()
	if cl == nil {
		cl = e.kcl
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{
			Topic:     topic,
			Key:       []byte(fmt.Sprintf("k-%d", i)),
			Value:     []byte(fmt.Sprintf("v-%d", i)),
			Headers:   []kgo.RecordHeader{{Key: "h", Value: []byte(fmt.Sprint(i))}, {Key: "empty"}},
			Timestamp: base.Add(time.Duration(i) * time.Millisecond),
		}
	}
	res := cl.ProduceSync(testCtx(t), recs...)
	require.NoError(t, res.FirstErr())
	out := make([]*tributary.Record, n)
	for i, r := range recs {
		hs := make([]tributary.Header, len(r.Headers))
		for j, h := range r.Headers {
			hs[j] = tributary.Header{Key: h.Key, Value: h.Value}
		}
		out[i] = &tributary.Record{Topic: r.Topic, Partition: r.Partition, Key: r.Key, Value: r.Value,
			Headers: hs, Timestamp: r.Timestamp, Offset: r.Offset}
	}
	return out
}

// newConsumer creates a consumer on e with fast retries, closed at cleanup.
func (e *env) newConsumer(t *testing.T, opts ...Opt) *Consumer {
	t.Helper()
	c, err := New(append([]Opt{
		SeedBrokers(e.addrs...),
		ClientOptions(client.RetryBackoff(10*time.Millisecond), client.RetryBackoffMax(200*time.Millisecond)),
		ClientOptions(client.Logger(testLogger(t))),
		FetchMaxWait(100 * time.Millisecond),
	}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.Close(ctx)
	})
	return c
}

// allPartitions lists topic's partitions 0..n-1.
func allPartitions(topic string, n int32) []tributary.TopicPartition {
	out := make([]tributary.TopicPartition, n)
	for i := range out {
		out[i] = tributary.TopicPartition{Topic: topic, Partition: int32(i)}
	}
	return out
}

// collector polls a consumer on its own goroutine and keeps what it got.
type collector struct {
	c      *Consumer
	mu     sync.Mutex
	recs   []*tributary.Record
	errs   []error
	cancel context.CancelFunc
	done   chan struct{}
}

func collect(t *testing.T, c *Consumer) *collector {
	ctx, cancel := context.WithCancel(context.Background())
	col := &collector{c: c, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(col.done)
		for {
			recs, err := c.Poll(ctx)
			if ctx.Err() != nil {
				return
			}
			col.mu.Lock()
			col.recs = append(col.recs, recs...)
			if err != nil {
				col.errs = append(col.errs, err)
				if err == ErrClosed {
					col.mu.Unlock()
					return
				}
			}
			col.mu.Unlock()
		}
	}()
	t.Cleanup(col.stop)
	return col
}

func (col *collector) stop() {
	col.cancel()
	<-col.done
}

func (col *collector) count() int {
	col.mu.Lock()
	defer col.mu.Unlock()
	return len(col.recs)
}

func (col *collector) snapshot() []*tributary.Record {
	col.mu.Lock()
	defer col.mu.Unlock()
	return append([]*tributary.Record(nil), col.recs...)
}

// pollN polls c until it has n records or the deadline passes.
func pollN(t *testing.T, c *Consumer, n int, within time.Duration) []*tributary.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var out []*tributary.Record
	for len(out) < n {
		recs, err := c.Poll(ctx)
		if ctx.Err() != nil {
			c.mu.Lock()
			var states []string
			for _, p := range c.order {
				states = append(states, fmt.Sprintf("%s[%d] off=%d pos=%d leader=%d/%d inflight=%v held=%v stopped=%v paused=%v hw=%d buf=%d",
					p.tp.Topic, p.tp.Partition, p.offset, p.position, p.leader, p.leaderEpoch, p.inflight, p.held, p.stopped, p.paused, p.hw, len(p.buf)))
			}
			c.mu.Unlock()
			t.Fatalf("got %d of %d records before the deadline; partitions: %v", len(out), n, states)
		}
		require.NoError(t, err)
		out = append(out, recs...)
	}
	return out
}

// pollNone checks that c has nothing more to return: every partition it
// consumes (and has not paused) has been fetched to its end (the high
// watermark, or the last stable offset with ReadCommitted), Poll has
// returned all of it, and nothing is buffered. It waits for that state
// instead of polling for a while and seeing nothing: on a loaded machine
// a quiet interval proves nothing, while the state proves that no record
// is pending, and Poll skips paused partitions by construction.
func pollNone(t *testing.T, c *Consumer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !caughtUp(c) {
		if time.Now().After(deadline) {
			t.Fatalf("the consumer never caught up with nothing left to return: %v", partStates(c))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// caughtUp reports whether every unpaused partition of c has been read
// to its end, with nothing buffered.
func caughtUp(c *Consumer) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.parts) == 0 {
		return false
	}
	for _, p := range c.parts {
		if p.paused {
			continue
		}
		end := p.hw
		if c.cfg.isolation == ReadCommitted && p.lso >= 0 {
			end = p.lso
		}
		if p.held || p.position < 0 || end < 0 || p.position != end || len(p.buf) > 0 {
			return false
		}
	}
	return true
}

// settle waits until the consumers together own exactly n partitions and
// have each caught up: with collectors polling them, every record up to
// the end has been collected, and no rebalance is redelivering any.
func settle(t *testing.T, n int, cs ...*Consumer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		owned := 0
		all := true
		for _, c := range cs {
			owned += len(c.Assignment())
			all = all && caughtUp(c)
		}
		if owned == n && all {
			return
		}
		if time.Now().After(deadline) {
			var states [][]string
			for _, c := range cs {
				states = append(states, partStates(c))
			}
			t.Fatalf("consumers own %d of %d partitions or have not caught up: %v", owned, n, states)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func partStates(c *Consumer) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var states []string
	for _, p := range c.order {
		states = append(states, fmt.Sprintf("%s[%d] off=%d pos=%d leader=%d/%d inflight=%v held=%v stopped=%v paused=%v hw=%d lso=%d buf=%d",
			p.tp.Topic, p.tp.Partition, p.offset, p.position, p.leader, p.leaderEpoch, p.inflight, p.held, p.stopped, p.paused, p.hw, p.lso, len(p.buf)))
	}
	return states
}

func eventually(t *testing.T, within time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf(msg, args...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
