package consumer_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/broker"
	"github.com/tributary/tributary/broker/brokertest"
)

// TestMain starts the examples' broker, runs the tests and examples, and
// stops it.
func TestMain(m *testing.M) {
	brokertest.Main(m, func(cfg *broker.Config) {
		cfg.GroupInitialRebalanceDelayMs = 0 // a lone member need not wait for others
		cfg.OffsetsTopicNumPartitions = 1
	})
}

// exampleSeeds is the examples' broker (TRIBUTARY_BROKERS, set by
// brokertest.Main).
func exampleSeeds() string { return os.Getenv("TRIBUTARY_BROKERS") }

// exampleTopic creates topic with one partition holding values, for an
// example to consume.
func exampleTopic(topic string, values ...string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(exampleSeeds()), kgo.DefaultProduceTopic(topic))
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
