package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"io"
	"math/big"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

func newCluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(3), kfake.SeedTopics(6, "t")}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func newClient(t *testing.T, addrs []string, opts ...Opt) *Client {
	t.Helper()
	cl, err := New(append([]Opt{SeedBrokers(addrs...), RetryBackoff(10 * time.Millisecond)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

func TestMetadataAndLeaders(t *testing.T) {
	c := newCluster(t)
	cl := newClient(t, c.ListenAddrs())
	ctx := context.Background()

	m, err := cl.Metadata(ctx, "t", "missing")
	require.NoError(t, err)
	require.Len(t, m.Brokers, 3)
	require.Len(t, m.Topics["t"].Partitions, 6)
	require.ErrorIs(t, m.Topics["missing"].Err, tributary.ErrUnknownTopicOrPartition)

	for p := range int32(6) {
		leader, _, err := cl.PartitionLeader(ctx, "t", p)
		require.NoError(t, err)
		require.Equal(t, c.LeaderFor("t", p), leader)
	}
	_, err = cl.TopicPartitions(ctx, "missing")
	require.ErrorIs(t, err, tributary.ErrUnknownTopicOrPartition)
	_, _, err = cl.PartitionLeader(ctx, "t", 6)
	require.ErrorIs(t, err, tributary.ErrUnknownTopicOrPartition)

	// A moved leader shows up after a refresh triggered by the caller.
	old := c.LeaderFor("t", 0)
	next := (old + 1) % 3
	require.NoError(t, c.MoveTopicPartition("t", 0, next))
	upd := cl.MetadataUpdated()
	cl.TriggerMetadataRefresh()
	select {
	case <-upd:
	case <-time.After(5 * time.Second):
		t.Fatal("no metadata update")
	}
	leader, _, err := cl.PartitionLeader(ctx, "t", 0)
	require.NoError(t, err)
	require.Equal(t, next, leader)
}

func TestRequestPipelinedConcurrent(t *testing.T) {
	c := newCluster(t)
	cl := newClient(t, c.ListenAddrs(), MaxInflightPerConn(4))
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := kmsg.NewPtrMetadataRequest()
			req.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("t")}}
			resp, err := cl.Request(ctx, req)
			if err == nil && len(resp.(*kmsg.MetadataResponse).Topics[0].Partitions) != 6 {
				err = errors.New("wrong response matched to request")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func TestAdminRequestGoesToController(t *testing.T) {
	c := newCluster(t)
	cl := newClient(t, c.ListenAddrs())
	ctrl := int32(-2)
	c.ControlKey(int16(kmsg.CreateTopics), func(kmsg.Request) (kmsg.Response, error, bool) {
		ctrl = c.CurrentNode()
		return nil, nil, false
	})
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "new", 2, 1
	req.Topics = append(req.Topics, rt)
	resp, err := cl.Request(context.Background(), req)
	require.NoError(t, err)
	require.Zero(t, resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode)
	m, err := cl.Metadata(context.Background())
	require.NoError(t, err)
	require.Equal(t, m.ControllerID, ctrl)
	require.Len(t, m.Topics["new"].Partitions, 2)
}

func TestVersionLimit(t *testing.T) {
	c := newCluster(t)
	cl := newClient(t, c.ListenAddrs())
	var got int16 = -1
	c.ControlKey(int16(kmsg.Metadata), func(r kmsg.Request) (kmsg.Response, error, bool) {
		got = r.GetVersion()
		return nil, nil, false
	})
	_, err := cl.Request(context.Background(), Limit(kmsg.NewPtrMetadataRequest(), 1, 7))
	require.NoError(t, err)
	require.Equal(t, int16(7), got)
	// kfake speaks Produce from v3 only.
	_, err = cl.Request(context.Background(), Limit(kmsg.NewPtrProduceRequest(), 0, 2))
	require.ErrorIs(t, err, tributary.ErrUnsupportedVersion)
}

func TestCloseFailsPending(t *testing.T) {
	c := newCluster(t)
	cl, err := New(SeedBrokers(c.ListenAddrs()...))
	require.NoError(t, err)
	_, err = cl.Metadata(context.Background())
	require.NoError(t, err)
	// Park a request in kfake so it is in flight when we close.
	arrived, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	c.ControlKey(int16(kmsg.ListGroups), func(kmsg.Request) (kmsg.Response, error, bool) {
		close(arrived)
		c.SleepControl(func() { <-release })
		return nil, nil, false
	})
	done := make(chan error, 1)
	go func() {
		_, err := cl.Request(context.Background(), kmsg.NewPtrListGroupsRequest())
		done <- err
	}()
	<-arrived
	cl.Close()
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("pending request not failed by Close")
	}
	_, err = cl.Request(context.Background(), kmsg.NewPtrListGroupsRequest())
	require.ErrorIs(t, err, ErrClosed)
}

// fakeBroker accepts one connection and runs fn on it.
func fakeBroker(t *testing.T, fn func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		fn(nc)
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

func readReq(nc net.Conn) (key, version int16, corr int32, err error) {
	var sz [4]byte
	if _, err = io.ReadFull(nc, sz[:]); err != nil {
		return
	}
	buf := make([]byte, binary.BigEndian.Uint32(sz[:]))
	if _, err = io.ReadFull(nc, buf); err != nil {
		return
	}
	return int16(binary.BigEndian.Uint16(buf)), int16(binary.BigEndian.Uint16(buf[2:])), int32(binary.BigEndian.Uint32(buf[4:])), nil
}

func writeResp(nc net.Conn, corr int32, body []byte) {
	out := binary.BigEndian.AppendUint32(nil, uint32(4+len(body)))
	out = binary.BigEndian.AppendUint32(out, uint32(corr))
	nc.Write(append(out, body...))
}

// A broker that does not know ApiVersions v4 answers in v0 with
// UNSUPPORTED_VERSION and its own maximum; the client retries at that one.
func TestApiVersionsFallback(t *testing.T) {
	var versions []int16
	addr := fakeBroker(t, func(nc net.Conn) {
		for {
			key, v, corr, err := readReq(nc)
			if err != nil || key != 18 {
				return
			}
			versions = append(versions, v)
			resp := kmsg.NewPtrApiVersionsResponse()
			if v > 2 {
				resp.SetVersion(0)
				resp.ErrorCode = tributary.ErrUnsupportedVersion.Code
				resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: 18, MaxVersion: 2}}
			} else {
				resp.SetVersion(v)
				resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: 18, MaxVersion: 2}, {ApiKey: 3, MaxVersion: 5}}
			}
			writeResp(nc, corr, resp.AppendTo(nil))
		}
	})
	cl := newClient(t, []string{addr})
	b := cl.seeds[0]
	v, err := b.MaxVersion(context.Background(), 3)
	require.NoError(t, err)
	require.Equal(t, int16(5), v)
	require.Equal(t, []int16{kmsg.NewPtrApiVersionsRequest().MaxVersion(), 2}, versions)
}

// A response larger than BrokerMaxReadBytes closes the connection without
// allocating for it.
func TestResponseSizeLimit(t *testing.T) {
	addr := fakeBroker(t, func(nc net.Conn) {
		_, _, _, err := readReq(nc)
		if err != nil {
			return
		}
		nc.Write([]byte{0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1})
		io.Copy(io.Discard, nc)
	})
	cl := newClient(t, []string{addr}, BrokerMaxReadBytes(1<<20))
	_, err := cl.seeds[0].MaxVersion(context.Background(), 3)
	require.ErrorIs(t, err, ErrConnection)
	require.Contains(t, err.Error(), "limit")
}

// A silent broker trips RequestTimeout instead of hanging the caller.
func TestRequestTimeout(t *testing.T) {
	c := newCluster(t)
	cl := newClient(t, c.ListenAddrs(), RequestTimeout(200*time.Millisecond))
	_, err := cl.Metadata(context.Background())
	require.NoError(t, err)
	c.ControlKey(int16(kmsg.ListGroups), func(kmsg.Request) (kmsg.Response, error, bool) {
		return nil, nil, true // swallow: no answer
	})
	b, err := cl.Broker(context.Background(), 0)
	require.NoError(t, err)
	start := time.Now()
	_, err = b.Request(context.Background(), kmsg.NewPtrListGroupsRequest())
	require.ErrorIs(t, err, ErrConnection)
	require.ErrorIs(t, err, tributary.ErrRequestTimedOut)
	require.Less(t, time.Since(start), 3*time.Second)
}

func TestSASLPlain(t *testing.T) {
	c := newCluster(t, kfake.EnableSASL(), kfake.Superuser("PLAIN", "admin", "secret"))
	cl := newClient(t, c.ListenAddrs(), SASL(Plain("admin", "secret")))
	_, err := cl.Metadata(context.Background(), "t")
	require.NoError(t, err)

	bad := newClient(t, c.ListenAddrs(), SASL(Plain("admin", "wrong")))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = bad.Metadata(ctx, "t")
	// kfake closes the connection on bad credentials; Kafka answers
	// SASL_AUTHENTICATION_FAILED first. Either way the request fails.
	require.True(t, errors.Is(err, tributary.ErrSaslAuthenticationFailed) || errors.Is(err, ErrConnection), "%v", err)
}

func TestOptionsValidated(t *testing.T) {
	_, err := New()
	require.Error(t, err)
	_, err = New(SeedBrokers("nohost"))
	require.Error(t, err)
	_, err = New(SeedBrokers("a:1"), RetryBackoff(2*time.Second), RetryBackoffMax(time.Second))
	require.Error(t, err)
}

func waitUpdate(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no metadata update")
	}
}

// Metadata is refreshed every MetadataMaxAge without anyone asking.
func TestMetadataMaxAge(t *testing.T) {
	c := newCluster(t)
	cl := newClient(t, c.ListenAddrs(), MetadataMaxAge(100*time.Millisecond))
	_, err := cl.Metadata(context.Background(), "t")
	require.NoError(t, err)
	next := (c.LeaderFor("t", 1) + 1) % 3
	require.NoError(t, c.MoveTopicPartition("t", 1, next))
	deadline := time.Now().Add(5 * time.Second)
	for {
		waitUpdate(t, cl.MetadataUpdated())
		if cl.CachedMetadata().Topics["t"].Partitions[1].Leader == next {
			return
		}
		require.True(t, time.Now().Before(deadline), "leader change never seen")
	}
}

// Losing a connection triggers a metadata refresh, and concurrent
// triggers coalesce into few requests.
func TestConnectionLossRefreshesAndCoalesces(t *testing.T) {
	c := newCluster(t)
	cl := newClient(t, c.ListenAddrs(), RetryBackoff(50*time.Millisecond))
	_, err := cl.Metadata(context.Background(), "t")
	require.NoError(t, err)
	var mu sync.Mutex
	metadataReqs := 0
	c.ControlKey(int16(kmsg.Metadata), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		mu.Lock()
		metadataReqs++
		mu.Unlock()
		return nil, nil, false
	})
	c.ControlKey(int16(kmsg.ListGroups), func(kmsg.Request) (kmsg.Response, error, bool) {
		return nil, errors.New("drop"), true
	})
	upd := cl.MetadataUpdated()
	b, err := cl.Broker(context.Background(), 0)
	require.NoError(t, err)
	_, err = b.Request(context.Background(), kmsg.NewPtrListGroupsRequest())
	require.ErrorIs(t, err, ErrConnection)
	waitUpdate(t, upd)
	waitRefreshIdle(t, cl)

	// Hold the next metadata request at the broker while 100 triggers
	// arrive: they can only ask for one more refresh after it.
	held, release := make(chan struct{}, 1), make(chan struct{})
	mu.Lock()
	metadataReqs = 0
	mu.Unlock()
	var seen atomic.Int32 // the control above counts; this one holds the first
	c.ControlKey(int16(kmsg.Metadata), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if seen.Add(1) == 1 {
			held <- struct{}{}
			c.SleepControl(func() { <-release })
		}
		return nil, nil, false
	})
	cl.TriggerMetadataRefresh()
	<-held
	for range 100 {
		cl.TriggerMetadataRefresh()
	}
	close(release)
	waitRefreshIdle(t, cl)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 2, metadataReqs, "100 triggers during a refresh coalesce into one more")
}

// waitRefreshIdle waits until no background metadata refresh is running
// or asked for.
func waitRefreshIdle(t *testing.T, cl *Client) {
	t.Helper()
	require.Eventually(t, func() bool {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		return !cl.refreshing
	}, 10*time.Second, time.Millisecond)
}

// Backoff doubles from RetryBackoff to RetryBackoffMax with ±20% jitter.
func TestBackoff(t *testing.T) {
	cl := newClient(t, []string{"127.0.0.1:1"}, RetryBackoff(100*time.Millisecond), RetryBackoffMax(time.Second))
	for attempt, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 10: time.Second} {
		d := cl.backoff(attempt)
		require.GreaterOrEqual(t, d, want*8/10, "attempt %d", attempt)
		require.LessOrEqual(t, d, want*12/10, "attempt %d", attempt)
	}
}

// An unreachable cluster fails requests with ErrConnection once ctx ends,
// instead of hanging.
func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	cl := newClient(t, []string{addr}, DialTimeout(200*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = cl.Metadata(ctx)
	require.ErrorIs(t, err, ErrConnection)
}

// MaxInflightPerConn bounds the requests awaiting answers on a connection:
// a broker that reads but never answers sees exactly that many.
func TestInflightBounded(t *testing.T) {
	var got atomic.Int32
	addr := fakeBroker(t, func(nc net.Conn) {
		for {
			key, v, corr, err := readReq(nc)
			if err != nil {
				return
			}
			if key == 18 {
				resp := kmsg.NewPtrApiVersionsResponse()
				resp.SetVersion(v)
				resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: 18, MaxVersion: v}, {ApiKey: 16, MaxVersion: 4}}
				writeResp(nc, corr, resp.AppendTo(nil))
				continue
			}
			got.Add(1) // never answered
		}
	})
	cl := newClient(t, []string{addr}, MaxInflightPerConn(3), RequestTimeout(time.Minute))
	b := cl.seeds[0]
	failed := make(chan error, 10)
	for range 10 {
		b.Do(context.Background(), kmsg.NewPtrListGroupsRequest(), func(_ kmsg.Response, err error) { failed <- err })
	}
	// The writer stops with 3 in flight and 7 queued, and the broker has
	// read exactly those 3: the state is checked, not waited out.
	require.Eventually(t, func() bool {
		b.mu.Lock()
		cn := b.conns[kindGeneral]
		b.mu.Unlock()
		if cn == nil {
			return false
		}
		cn.mu.Lock()
		defer cn.mu.Unlock()
		return cn.inflight.n == 3 && cn.queue.n == 7 && got.Load() == 3
	}, 10*time.Second, time.Millisecond)
	cl.Close()
	for range 10 {
		require.ErrorIs(t, <-failed, ErrClosed)
	}
}

// waitGoroutines waits for the goroutine count to drop back to n.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines left, want %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Close stops every goroutine the client started.
func TestCloseLeaksNoGoroutines(t *testing.T) {
	c := newCluster(t)
	base := runtime.NumGoroutine()
	cl, err := New(SeedBrokers(c.ListenAddrs()...), MetadataMaxAge(10*time.Millisecond))
	require.NoError(t, err)
	_, err = cl.Metadata(context.Background(), "t")
	require.NoError(t, err)
	for id := range int32(3) {
		b, err := cl.Broker(context.Background(), id)
		require.NoError(t, err)
		_, err = b.Request(context.Background(), kmsg.NewPtrListGroupsRequest())
		require.NoError(t, err)
	}
	upd := cl.MetadataUpdated()
	cl.TriggerMetadataRefresh()
	waitUpdate(t, upd)
	cl.Close()
	// kfake serves each closed connection on a goroutine of its own that
	// exits as it notices the close.
	waitGoroutines(t, base)
}

// A broker answering garbage gets a decode error and a closed
// connection, never a panic.
func TestGarbageResponse(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 50 {
		body := make([]byte, rng.IntN(64))
		for i := range body {
			body[i] = byte(rng.IntN(256))
		}
		addr := fakeBroker(t, func(nc net.Conn) {
			_, _, corr, err := readReq(nc)
			if err != nil {
				return
			}
			writeResp(nc, corr, body)
			io.Copy(io.Discard, nc)
		})
		cl := newClient(t, []string{addr})
		_, err := cl.seeds[0].MaxVersion(context.Background(), 3)
		if err == nil {
			continue // random bytes can be a valid, if odd, ApiVersions answer
		}
		require.True(t, errors.Is(err, ErrConnection) || tributary.CodeOf(err) > 0, "%v", err)
		cl.Close()
	}
}

// A broker that hangs up on ApiVersions v4+ (as Azure Event Hubs does) is
// reached on a new connection at v3.
func TestApiVersionsHangUpFallback(t *testing.T) {
	var mu sync.Mutex
	var versions []int16
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			func() {
				defer nc.Close()
				for {
					key, v, corr, err := readReq(nc)
					if err != nil || key != 18 {
						return
					}
					mu.Lock()
					versions = append(versions, v)
					mu.Unlock()
					if v > 3 {
						return // hang up
					}
					resp := kmsg.NewPtrApiVersionsResponse()
					resp.SetVersion(v)
					resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: 18, MaxVersion: 3}, {ApiKey: 3, MaxVersion: 9}}
					writeResp(nc, corr, resp.AppendTo(nil))
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	cl := newClient(t, []string{ln.Addr().String()})
	b := cl.seeds[0]
	_, err = b.MaxVersion(context.Background(), 3)
	require.ErrorIs(t, err, ErrConnection)
	// Past the shared dial-failure backoff, the next call dials again.
	require.Eventually(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return time.Since(b.dialErrAt[kindGeneral]) >= cl.cfg.retryBackoff
	}, 10*time.Second, time.Millisecond)
	v, err := b.MaxVersion(context.Background(), 3)
	require.NoError(t, err)
	require.Equal(t, int16(9), v)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, kmsg.NewPtrApiVersionsRequest().MaxVersion(), versions[0])
	for _, v := range versions[1:] { // the background metadata refresh may dial too
		require.Equal(t, int16(3), v)
	}
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// TLS connections verify the broker against the host of its address.
func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	c := newCluster(t, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}}))
	cl := newClient(t, c.ListenAddrs(), TLS(&tls.Config{RootCAs: pool}))
	m, err := cl.Metadata(context.Background(), "t")
	require.NoError(t, err)
	require.Len(t, m.Topics["t"].Partitions, 6)

	// Without trusting the certificate the handshake fails.
	bad := newClient(t, c.ListenAddrs(), TLS(&tls.Config{}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = bad.Metadata(ctx, "t")
	require.ErrorIs(t, err, ErrConnection)
}
