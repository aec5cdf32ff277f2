package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/brokertest"
)

// Seeds are checked in New, with errors that say how to fix them: a bad
// seed otherwise surfaced only later as an odd dial error, or not at all
// ("a:9092,b:9092" split by SplitHostPort into host "a:9092,b" ...).
func TestSeedValidation(t *testing.T) {
	for _, c := range []struct {
		seed string
		want string // "" means valid
	}{
		{"localhost:9092", ""},
		{"10.0.0.1:9092", ""},
		{"[::1]:9092", ""},
		{"kafka-1.example.com:19092", ""},
		{"a:9092,b:9092", "comma-separated list; split it"},
		{"PLAINTEXT://localhost:9092", `drop "PLAINTEXT://"`},
		{"SSL://kafka:9093", `drop "SSL://"`},
		{" localhost:9092", "contains whitespace; trim it"},
		{"localhost:9092\n", "contains whitespace"},
		{"localhost", `has no port; add one, e.g. "localhost:9092"`},
		{"localhost:", `port "" is not a number`},
		{"localhost:kafka", `port "kafka" is not a number`},
		{"localhost:70000", `port "70000" is not a number from 1 to 65535`},
		{":9092", "has no host"},
		{"", "empty seed broker address"},
	} {
		_, err := New(SeedBrokers(c.seed))
		if c.want == "" {
			require.NoError(t, err, "seed %q", c.seed)
			continue
		}
		require.Error(t, err, "seed %q", c.seed)
		require.Contains(t, err.Error(), c.want, "seed %q", c.seed)
		require.Contains(t, err.Error(), "seed broker", "seed %q: the error must name what is wrong", c.seed)
	}
}

// deadAddr returns an address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// With every seed down, requests used to retry for the whole ctx (the
// producer's 60s MaxBlock, 41s for an admin CreateTopic) and then report
// something unrelated. Now they fail once each broker refused, typed.
func TestUnreachableBrokersFailFast(t *testing.T) {
	cl := newClient(t, []string{deadAddr(t), deadAddr(t)}, DialTimeout(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, req := range []kmsg.Request{kmsg.NewPtrMetadataRequest(), kmsg.NewPtrCreateTopicsRequest()} {
		start := time.Now()
		_, err := cl.Request(ctx, req)
		took := time.Since(start)
		require.ErrorIs(t, err, ErrConnection, "%T", req)
		require.Contains(t, err.Error(), "cannot reach any broker")
		require.Less(t, took, 5*time.Second, "%T took %v", req, took)
	}
	start := time.Now()
	_, err := cl.Metadata(ctx, "t")
	require.ErrorIs(t, err, ErrConnection)
	require.Less(t, time.Since(start), 5*time.Second)
}

// A stalled broker pushed back on nobody: every Do queued without limit.
// Now the queue is bounded and Do waits for room, giving up with its ctx.
func TestRequestQueueBounded(t *testing.T) {
	c := newCluster(t)
	cl := newClient(t, c.ListenAddrs()[:1], MaxInflightPerConn(1), MaxQueuedPerConn(2))
	ctx := context.Background()
	_, err := cl.Metadata(ctx)
	require.NoError(t, err)
	b, err := cl.Broker(ctx, 0)
	require.NoError(t, err)

	release := make(chan struct{})
	stalled := make(chan struct{}, 16)
	c.ControlKey(int16(kmsg.ListGroups), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		stalled <- struct{}{}
		c.SleepControl(func() { <-release })
		return nil, nil, false
	})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	do := func(ctx context.Context) {
		wg.Add(1)
		b.Do(ctx, kmsg.NewPtrListGroupsRequest(), func(_ kmsg.Response, err error) {
			errs <- err
			wg.Done()
		})
	}
	do(ctx) // written, held by the broker
	<-stalled
	do(ctx) // queued
	do(ctx) // queued: the queue is full
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	doneDo := make(chan struct{})
	go func() { do(short); close(doneDo) }()
	select {
	case err := <-errs:
		// Failed while the broker still holds the first request: it
		// never entered the queue.
		require.ErrorIs(t, err, context.DeadlineExceeded)
	case <-time.After(10 * time.Second):
		t.Fatal("Do on a full queue did not give up with its ctx")
	}
	<-doneDo
	close(release)
	wg.Wait()
	for range 3 {
		require.NoError(t, <-errs)
	}
}

func TestPurgeTopics(t *testing.T) {
	c := newCluster(t)
	cl := newClient(t, c.ListenAddrs())
	ctx := context.Background()
	_, err := cl.Metadata(ctx, "t", "gone")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"t", "gone"}, cl.trackedTopics())
	require.Contains(t, cl.CachedMetadata().Topics, "gone")

	cl.PurgeTopics("gone")
	require.ElementsMatch(t, []string{"t"}, cl.trackedTopics())
	require.NotContains(t, cl.CachedMetadata().Topics, "gone")
	require.Contains(t, cl.CachedMetadata().Topics, "t")

	// A refresh does not bring it back.
	upd := cl.MetadataUpdated()
	cl.TriggerMetadataRefresh()
	select {
	case <-upd:
	case <-time.After(10 * time.Second):
		t.Fatal("no refresh")
	}
	require.NotContains(t, cl.CachedMetadata().Topics, "gone")
}

// recorder counts hook calls.
type recorder struct {
	mu                          sync.Mutex
	connects, disconnects       int
	writes, reads               map[int16]int
	writeBytes, readBytes       int
	connectErrs                 int
	maxLatency                  time.Duration
	disconnectErr, lastWriteErr error
}

func newRecorder() *recorder {
	return &recorder{writes: map[int16]int{}, reads: map[int16]int{}}
}

func (r *recorder) OnBrokerConnect(_ BrokerInfo, _ time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.connectErrs++
		return
	}
	r.connects++
}

func (r *recorder) OnBrokerDisconnect(_ BrokerInfo, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.disconnects++
	r.disconnectErr = err
}

func (r *recorder) OnBrokerWrite(_ BrokerInfo, key int16, bytes int, _ time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes[key]++
	r.writeBytes += bytes
	r.lastWriteErr = err
}

func (r *recorder) OnBrokerRead(_ BrokerInfo, key int16, bytes int, lat time.Duration, _ error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reads[key]++
	r.readBytes += bytes
	r.maxLatency = max(r.maxLatency, lat)
}

func TestHooks(t *testing.T) {
	_, err := New(SeedBrokers("localhost:9092"), WithHooks(struct{}{}))
	require.ErrorContains(t, err, "implements none of the Hook* interfaces")

	b := brokertest.Start(t)
	cases := map[string][]string{"kfake": newCluster(t).ListenAddrs(), "tributary": {b.Addr()}}
	for name, addrs := range cases {
		t.Run(name, func(t *testing.T) {
			rec := newRecorder()
			cl, err := New(SeedBrokers(addrs...), WithHooks(rec))
			require.NoError(t, err)
			require.Len(t, cl.Hooks(), 1)
			_, err = cl.Metadata(context.Background())
			require.NoError(t, err)
			_, err = cl.Request(context.Background(), kmsg.NewPtrListGroupsRequest())
			require.NoError(t, err)

			rec.mu.Lock()
			require.GreaterOrEqual(t, rec.connects, 1)
			require.Equal(t, 0, rec.connectErrs)
			require.GreaterOrEqual(t, rec.writes[int16(kmsg.Metadata)], 1)
			require.GreaterOrEqual(t, rec.reads[int16(kmsg.Metadata)], 1)
			require.Equal(t, rec.writes[int16(kmsg.ListGroups)], rec.reads[int16(kmsg.ListGroups)])
			require.Greater(t, rec.writeBytes, 20)
			require.Greater(t, rec.readBytes, 20)
			require.Greater(t, rec.maxLatency, time.Duration(0))
			require.NoError(t, rec.lastWriteErr)
			connects := rec.connects
			rec.mu.Unlock()

			cl.Close()
			rec.mu.Lock()
			defer rec.mu.Unlock()
			require.Equal(t, connects, rec.disconnects, "every connection reports its end")
			require.True(t, errors.Is(rec.disconnectErr, ErrClosed), "%v", rec.disconnectErr)
		})
	}

	// A failed dial is reported too.
	rec := newRecorder()
	cl := newClient(t, []string{deadAddr(t)}, WithHooks(rec))
	_, err = cl.Metadata(context.Background())
	require.Error(t, err)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.GreaterOrEqual(t, rec.connectErrs, 1)
	require.False(t, strings.Contains(err.Error(), "UNKNOWN_TOPIC"))
}

// The client's own errors carry no Kafka code: tributary.IsRetriable is
// false for each, as its docs say, and ErrUnreachable is a connection error.
func TestClientErrorsRetriable(t *testing.T) {
	for _, err := range []error{ErrClosed, ErrConnection, ErrUnknownBroker, ErrUnreachable} {
		require.False(t, tributary.IsRetriable(err), "%v", err)
		require.Equal(t, tributary.ErrUnknownServerError.Code, tributary.CodeOf(err), "%v", err)
	}
	ue := &unreachableError{addrs: []string{"a:1"}, last: fmt.Errorf("%w: dial a:1: refused", ErrConnection)}
	require.ErrorIs(t, ue, ErrUnreachable)
	require.ErrorIs(t, ue, ErrConnection)
	require.NotErrorIs(t, ue, ErrClosed)
}
