package broker

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func startInternal(t *testing.T, dir string) *Broker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.LogDirs = []string{dir}
	cfg.Listener = ln
	cfg.HTTPListener = "127.0.0.1:0"
	cfg.Logger = slog.New(slog.DiscardHandler)
	b, err := New(cfg)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { b.Run(context.Background()); close(done) }()
	<-b.Ready()
	t.Cleanup(func() { b.Close(); <-done })
	return b
}

// A panicking handler closes its connection and nothing else: the
// broker keeps serving others.
func TestHandlerPanicClosesOnlyItsConnection(t *testing.T) {
	orig := apis[60]
	t.Cleanup(func() { apis[60] = orig }) // after the broker is closed
	b := startInternal(t, t.TempDir())
	// No connection exists yet, so nothing reads the table concurrently.
	apis[60] = apiHandler{min: orig.min, max: orig.max, fn: func(*Broker, *request) (any, error) { panic("boom") }}

	send := func(nc net.Conn, req kmsg.Request) error {
		var f []byte
		f = append(f, 0, 0, 0, 0)
		f = binary.BigEndian.AppendUint16(f, uint16(req.Key()))
		f = binary.BigEndian.AppendUint16(f, uint16(req.GetVersion()))
		f = binary.BigEndian.AppendUint32(f, 1)
		f = binary.BigEndian.AppendUint16(f, 0)
		if req.IsFlexible() {
			f = append(f, 0)
		}
		f = req.AppendTo(f)
		binary.BigEndian.PutUint32(f, uint32(len(f)-4))
		_, err := nc.Write(f)
		return err
	}
	bad, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	good, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()

	if err := send(bad, kmsg.NewPtrDescribeClusterRequest()); err != nil {
		t.Fatal(err)
	}
	bad.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.ReadFull(bad, make([]byte, 4)); err == nil {
		t.Fatal("got a response from a panicking handler")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("connection not closed after a handler panic")
	}

	av := kmsg.NewPtrApiVersionsRequest()
	if err := send(good, av); err != nil {
		t.Fatal(err)
	}
	good.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.ReadFull(good, make([]byte, 4)); err != nil {
		t.Fatalf("other connection not served: %v", err)
	}
}

func TestLogDirOwnership(t *testing.T) {
	dir := t.TempDir()
	b := startInternal(t, dir)
	id := b.clusterID

	cfg := DefaultConfig()
	cfg.LogDirs = []string{dir}
	cfg.Logger = slog.New(slog.DiscardHandler)
	if _, err := New(cfg); err == nil {
		t.Fatal("a second broker opened a log dir in use")
	}
	b.Close()

	cfg.NodeID = 2
	if _, err := New(cfg); err == nil {
		t.Fatal("a broker with another node.id opened the log dir")
	}
	cfg.NodeID = 1
	cfg.ClusterID = "someoneElse"
	if _, err := New(cfg); err == nil {
		t.Fatal("a broker with another cluster.id opened the log dir")
	}
	cfg.ClusterID = ""
	b2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if b2.clusterID != id {
		t.Fatalf("cluster id changed across restart: %s then %s", id, b2.clusterID)
	}
}

func TestBufClasses(t *testing.T) {
	for _, n := range []int{0, 1, 4096, 4097, 1 << 20, 8 << 20, 8<<20 + 1} {
		bp := getBuf(n)
		if len(*bp) != n {
			t.Fatalf("getBuf(%d) has len %d", n, len(*bp))
		}
		putBuf(bp)
	}
}

// Close waits for every goroutine the broker started, including those of
// connections still open, and is idempotent.
func TestCloseStopsEveryGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.LogDirs = []string{dir}
	cfg.Listener = ln
	cfg.HTTPListener = "127.0.0.1:0"
	cfg.Logger = slog.New(slog.DiscardHandler)
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	<-b.Ready()
	if err := b.createTopic("t", 2, 1, nil); err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	for range 5 {
		c, err := net.Dial("tcp", b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	time.Sleep(50 * time.Millisecond)
	cancel() // ctx ending closes the broker
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := b.Run(context.Background()); err == nil {
		t.Fatal("Run after Close succeeded")
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines left (had %d):\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// A large frame is read into one buffer of its declared size: no
// doubling series of buffers and copies (which cost twice the bytes
// received). What a frame announced but never sent may cost is bounded by
// queued.max.request.bytes instead (TestStalledLargeFramesBoundedRSS).
func TestReadFrameAllocatesDeclaredSizeOnce(t *testing.T) {
	const size = 40<<20 + 5
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	bp, err := readRequestFrame(io.LimitReader(zeroReader{}, size), size)
	if err != nil || len(*bp) != size {
		t.Fatalf("large frame: %v", err)
	}
	runtime.ReadMemStats(&ms)
	if grew := ms.TotalAlloc - before; grew > size+1<<20 {
		t.Fatalf("allocated %d bytes to read a %d-byte frame", grew, size)
	}
	if _, err := readRequestFrame(io.LimitReader(zeroReader{}, 100), 4<<20); err == nil {
		t.Fatal("short frame read without error")
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
