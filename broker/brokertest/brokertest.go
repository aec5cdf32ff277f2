// Package brokertest starts real Tributary brokers for tests: in-process
// on 127.0.0.1:0 with data in t.TempDir() (Start), or as a `tributary
// broker` subprocess (StartProcess) for crash and resource tests. Both
// are stopped by t.Cleanup.
package brokertest

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tributary/tributary/broker"
)

// Broker is an in-process broker started by Start.
type Broker struct {
	*broker.Broker
	// Dir is the log dir; it survives Restart.
	Dir string

	overrides []func(*broker.Config)
	runErr    chan error
	stopped   bool
}

// Start starts a broker on 127.0.0.1:0 with its log dir in t.TempDir(),
// waits until it listens, and stops it when the test ends. Overrides
// adjust the configuration (after the test defaults: log.dirs, listener,
// a logger writing to t.Log at WARN and above, http.listener on
// 127.0.0.1:0).
func Start(t testing.TB, overrides ...func(*broker.Config)) *Broker {
	t.Helper()
	b := &Broker{Dir: filepath.Join(t.TempDir(), "data"), overrides: overrides}
	b.start(t)
	t.Cleanup(func() { b.stop(t) })
	return b
}

// Addr is host:port of the broker's listener.
func (b *Broker) Addr() string { return b.Broker.Addr() }

// HTTPAddr is host:port of the broker's console and /metrics, "" when an
// override turned http.listener off.
func (b *Broker) HTTPAddr() string { return b.Broker.HTTPAddr() }

// Restart closes the broker and starts a new one on the same log dir (on
// a new port).
func (b *Broker) Restart(t testing.TB) {
	t.Helper()
	b.stop(t)
	b.start(t)
}

func (b *Broker) start(t testing.TB) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("brokertest: listen: %v", err)
	}
	cfg := broker.DefaultConfig()
	cfg.LogDirs = []string{b.Dir}
	cfg.Listener = ln
	cfg.Listeners = "PLAINTEXT://" + ln.Addr().String()
	// The console and /metrics on a free port, so parallel tests do not
	// collide on 9644; HTTPAddr tells where. An override may set "" (off).
	cfg.HTTPListener = "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg.ShutdownTimeout = 5 * time.Second
	for _, o := range b.overrides {
		o(&cfg)
	}
	br, err := broker.New(cfg)
	if err != nil {
		ln.Close()
		t.Fatalf("brokertest: new broker: %v", err)
	}
	b.Broker = br
	b.stopped = false
	b.runErr = make(chan error, 1)
	go func() { b.runErr <- br.Run(context.Background()) }()
	select {
	case <-br.Ready():
	case err := <-b.runErr:
		t.Fatalf("brokertest: broker stopped before listening: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatalf("brokertest: broker did not start listening within 10s")
	}
}

func (b *Broker) stop(t testing.TB) {
	if b.stopped {
		return
	}
	b.stopped = true
	if err := b.Broker.Close(); err != nil {
		t.Errorf("brokertest: close: %v", err)
	}
	select {
	case err := <-b.runErr:
		if err != nil {
			t.Errorf("brokertest: run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("brokertest: Run did not return after Close")
	}
}

// testWriter sends log lines to t.Log, and to stderr once the test is
// over (a late line must not panic the test binary).
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	defer func() {
		if recover() != nil {
			os.Stderr.Write(p)
		}
	}()
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}
