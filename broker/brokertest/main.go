package brokertest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/tributary/tributary/broker"
)

// Main runs a package's tests and examples against one broker it starts
// in this process: on 127.0.0.1:0, data in a temporary directory, no
// console listener (so parallel packages never fight over a port), logs
// discarded, and TRIBUTARY_BROKERS pointing at it, as a deployment would
// point it at Kafka. Overrides adjust the configuration. Use it as
//
//	func TestMain(m *testing.M) { brokertest.Main(m) }
//
// Examples cannot take a *testing.T, which is why Start does not serve.
func Main(m *testing.M, overrides ...func(*broker.Config)) {
	stop, err := startMain(overrides)
	if err != nil {
		fmt.Fprintln(os.Stderr, "brokertest: starting the package's broker:", err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

func startMain(overrides []func(*broker.Config)) (stop func(), err error) {
	dir, err := os.MkdirTemp("", "tributary-brokertest-")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cfg := broker.DefaultConfig()
	cfg.LogDirs = []string{dir}
	cfg.Listener = ln
	cfg.Listeners = "PLAINTEXT://" + ln.Addr().String()
	cfg.HTTPListener = ""
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, o := range overrides {
		o(&cfg)
	}
	b, err := broker.New(cfg)
	if err != nil {
		ln.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	ran := make(chan error, 1)
	go func() { ran <- b.Run(context.Background()) }()
	select {
	case <-b.Ready():
	case err := <-ran:
		os.RemoveAll(dir)
		return nil, fmt.Errorf("broker stopped before listening: %w", err)
	case <-time.After(30 * time.Second):
		b.Close()
		<-ran
		os.RemoveAll(dir)
		return nil, fmt.Errorf("broker did not listen within 30s")
	}
	os.Setenv("TRIBUTARY_BROKERS", b.Addr())
	return func() {
		b.Close()
		<-ran
		os.RemoveAll(dir)
	}, nil
}
