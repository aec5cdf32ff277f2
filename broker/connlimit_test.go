package broker_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary/broker"
	"github.com/tributary/tributary/broker/brokertest"
)

// failingListener makes the first len(errs) Accept calls fail with the
// given errors, the way the kernel reports running out of descriptors,
// then accepts normally.
type failingListener struct {
	net.Listener
	mu   sync.Mutex
	errs []error
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		l.mu.Unlock()
		return nil, err
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

func acceptErr(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}

// lineCounter is a slog handler counting records whose message has a
// prefix, and passing everything to next.
type lineCounter struct {
	slog.Handler
	prefix string
	n      *atomic.Int64
}

func (h lineCounter) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, h.prefix) {
		h.n.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h lineCounter) WithAttrs(as []slog.Attr) slog.Handler {
	return lineCounter{h.Handler.WithAttrs(as), h.prefix, h.n}
}

func (h lineCounter) WithGroup(g string) slog.Handler {
	return lineCounter{h.Handler.WithGroup(g), h.prefix, h.n}
}

// Issue 12: EMFILE from Accept stopped the broker ("accept failed;
// stopping"). Accept errors are retried with a growing delay, and logged
// a line per interval, not per failure.
func TestAcceptEMFILEDoesNotStopBroker(t *testing.T) {
	var lines atomic.Int64
	errs := []error{
		acceptErr(syscall.EMFILE), acceptErr(syscall.EMFILE), acceptErr(syscall.ENFILE),
		acceptErr(syscall.ECONNABORTED), acceptErr(syscall.EMFILE), acceptErr(syscall.EMFILE),
		acceptErr(syscall.EPROTO), acceptErr(syscall.EMFILE),
	}
	b := brokertest.Start(t, func(c *broker.Config) {
		c.Listener = &failingListener{Listener: c.Listener, errs: errs}
		c.Logger = slog.New(lineCounter{c.Logger.Handler(), "accept failed", &lines})
	})
	adm := newAdmin(t, b.Addr())
	_, err := adm.CreateTopic(ctx5(t), 1, 1, nil, "after-emfile")
	require.NoError(t, err)
	st := b.ConnStats()
	assert.EqualValues(t, len(errs), st.AcceptErrors)
	// 8 failures within ~1.3 s of back-off: one line, two if the clock
	// straddles the interval.
	assert.LessOrEqual(t, lines.Load(), int64(2), "accept failures must be logged with rate limiting")
	assert.GreaterOrEqual(t, lines.Load(), int64(1))
}

// apiVersionsRoundTrip reports whether c is served: an ApiVersions
// request answered.
func apiVersionsRoundTrip(c *rawConn) bool {
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write(frame(kmsg.NewPtrApiVersionsRequest(), 1, "limit")); err != nil {
		return false
	}
	_, _, err := c.read()
	return err == nil
}

func waitOpen(t *testing.T, b *brokertest.Broker, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for b.ConnStats().Open != want {
		if time.Now().After(deadline) {
			t.Fatalf("open connections: %d, want %d", b.ConnStats().Open, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// max.connections.per.ip refuses the connection beyond it at once; the
// dynamic max.connections.per.ip.overrides raises it for one address.
func TestMaxConnectionsPerIP(t *testing.T) {
	var refusedLines atomic.Int64
	b := brokertest.Start(t, func(c *broker.Config) {
		c.MaxConnectionsPerIp = 4
		c.Logger = slog.New(lineCounter{c.Logger.Handler(), "refused connection", &refusedLines})
	})
	var raws []*rawConn
	for range 4 {
		c := dialRaw(t, b.Addr())
		require.True(t, apiVersionsRoundTrip(c))
		raws = append(raws, c)
	}
	for range 5 {
		dialRaw(t, b.Addr()).expectClosed()
	}
	assert.EqualValues(t, 5, b.ConnStats().Refused)
	// 5 refusals within the 5 s interval: one line (two if the clock
	// straddles it).
	assert.LessOrEqual(t, refusedLines.Load(), int64(2), "refusals are logged with rate limiting")
	assert.GreaterOrEqual(t, refusedLines.Load(), int64(1))
	for _, c := range raws[:2] {
		c.nc.Close()
	}
	waitOpen(t, b, 2)

	adm := newAdmin(t, b.Addr())
	rs, err := adm.AlterBrokerConfigs(ctx5(t), []kadm.AlterConfig{{Name: "max.connections.per.ip.overrides", Value: kadm.StringPtr("127.0.0.1:6, otherhost.invalid:1")}})
	require.NoError(t, err)
	for _, r := range rs {
		require.NoError(t, r.Err, r.ErrMessage)
	}
	rs, err = adm.AlterBrokerConfigs(ctx5(t), []kadm.AlterConfig{{Name: "max.connections.per.ip.overrides", Value: kadm.StringPtr("127.0.0.1")}})
	require.NoError(t, err)
	require.Len(t, rs, 1)
	require.Error(t, rs[0].Err, "an override without a count is refused")
	adm.Close()
	waitOpen(t, b, 2)
	for range 4 {
		c := dialRaw(t, b.Addr())
		require.True(t, apiVersionsRoundTrip(c))
	}
	dialRaw(t, b.Addr()).expectClosed()
	assert.EqualValues(t, 6, b.ConnStats().Refused)
}

// max.connections bounds all connections; it is dynamic.
func TestMaxConnections(t *testing.T) {
	b := brokertest.Start(t, func(c *broker.Config) { c.MaxConnections = 3 })
	for range 3 {
		require.True(t, apiVersionsRoundTrip(dialRaw(t, b.Addr())))
	}
	dialRaw(t, b.Addr()).expectClosed()
	assert.EqualValues(t, 1, b.ConnStats().Refused)
	// All 3 are in use; a restart drops them so that the admin client
	// can connect and raise the limit.
	b.Restart(t)
	adm := newAdmin(t, b.Addr())
	rs, err := adm.AlterBrokerConfigs(ctx5(t), []kadm.AlterConfig{{Name: "max.connections", Value: kadm.StringPtr("10")}}, 1)
	require.NoError(t, err)
	for _, r := range rs {
		require.NoError(t, r.Err, r.ErrMessage)
	}
	for range 5 {
		require.True(t, apiVersionsRoundTrip(dialRaw(t, b.Addr())))
	}
	assert.EqualValues(t, 0, b.ConnStats().Refused)
}

// queued.max.request.bytes: a request larger than the whole budget (but
// within socket.request.max.bytes) is still served when it is alone, and
// every reservation is given back once the responses are written.
func TestRequestLargerThanBudgetServedAlone(t *testing.T) {
	b := brokertest.Start(t, func(c *broker.Config) { c.QueuedMaxRequestBytes = 2 << 20 })
	createTopic(t, b.Addr(), "big", 1, map[string]string{"max.message.bytes": "10485760"})
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("big"), kgo.ProducerBatchMaxBytes(10<<20), kgo.ProducerBatchCompression(kgo.NoCompression()))
	value := make([]byte, 6<<20)
	for i := range value {
		value[i] = byte(i)
	}
	require.NoError(t, cl.ProduceSync(testCtx(t), &kgo.Record{Value: value}).FirstErr())
	require.NoError(t, cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("small")}).FirstErr())
	cl.Close()
	// A consumer closed afterwards, so that no long-polling fetch holds
	// budget when it is checked.
	cons := newClient(t, b.Addr(), kgo.ConsumeTopics("big"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(20<<20), kgo.FetchMaxPartitionBytes(20<<20))
	var got []*kgo.Record
	for len(got) < 2 {
		fs := cons.PollFetches(testCtx(t))
		require.NoError(t, fs.Err0())
		got = append(got, fs.Records()...)
	}
	require.Len(t, got, 2)
	assert.Equal(t, value, got[0].Value)
	cons.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := b.ConnStats()
		if st.QueuedBytes == 0 && st.QueuedWaiting == 0 {
			break
		}
		require.False(t, time.Now().After(deadline), "request budget not given back: %+v", st)
		time.Sleep(5 * time.Millisecond)
	}
}
