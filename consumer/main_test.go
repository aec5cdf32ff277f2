package consumer_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/broker"
)

// seeds is the address of the broker the examples run against: a
// Tributary broker started in this process on 127.0.0.1:0 (yours would
// be "localhost:9092").
var seeds string

// TestMain starts the examples' broker, runs the tests and examples, and
// stops it.
func TestMain(m *testing.M) {
	stop, err := startExampleBroker()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the examples' broker:", err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

func startExampleBroker() (stop func(), err error) {
	dir, err := os.MkdirTemp("", "tributary-consumer-examples-")
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
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.GroupInitialRebalanceDelayMs = 0 // a lone member need not wait for others
	cfg.OffsetsTopicNumPartitions = 1
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
		os.RemoveAll(dir)
		return nil, fmt.Errorf("broker did not listen within 30s")
	}
	seeds = b.Addr()
	return func() {
		b.Close()
		<-ran
		os.RemoveAll(dir)
	}, nil
}

// exampleTopic creates topic with one partition holding values, for an
// example to consume.
func exampleTopic(topic string, values ...string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds), kgo.DefaultProduceTopic(topic))
	if err != nil {
		panic(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		panic(err)
	}
	var recs []*kgo.Record
	for _, v := range values {
		recs = append(recs, &kgo.Record{Value: []byte(v)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		panic(err)
	}
}
