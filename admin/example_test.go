package admin_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"
	"testing"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/admin"
	"github.com/tributary/tributary/broker/brokertest"
	"github.com/tributary/tributary/producer"
)

// TestMain starts a Tributary broker on 127.0.0.1:0 for the examples and
// points TRIBUTARY_BROKERS at it, as a deployment would point it at Kafka.
func TestMain(m *testing.M) { brokertest.Main(m) }

// Create a topic, then describe it.
func Example() {
	ctx := context.Background()
	seeds := strings.Split(os.Getenv("TRIBUTARY_BROKERS"), ",") // e.g. "kafka-1:9092,kafka-2:9092"
	a, err := admin.New(admin.SeedBrokers(seeds...))
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()

	// Replication factor 1: the example's cluster has one broker.
	err = a.CreateTopic(ctx, "orders", 3, 1, map[string]string{"retention.ms": "86400000"})
	if err != nil && !errors.Is(err, tributary.ErrTopicAlreadyExists) {
		log.Fatal(err)
	}

	topics, err := a.DescribeTopics(ctx, "orders", "no-such-topic")
	if err != nil {
		log.Fatal(err) // nothing could be done at all
	}
	// One result per topic: one bad topic does not hide the others.
	for _, t := range topics {
		if t.Err != nil {
			fmt.Println(t.Topic, "error:", t.Err)
			continue
		}
		fmt.Println(t.Topic, "partitions:", len(t.Partitions))
		for _, p := range t.Partitions {
			fmt.Printf("  partition %d leader %d replicas %v\n", p.Partition, p.Leader, p.Replicas)
		}
	}
	// Output:
	// orders partitions: 3
	//   partition 0 leader 1 replicas [1]
	//   partition 1 leader 1 replicas [1]
	//   partition 2 leader 1 replicas [1]
	// no-such-topic error: UNKNOWN_TOPIC_OR_PARTITION
}

// How far behind is a consumer group? Lag compares the group's committed
// offsets with the partitions' end offsets.
func ExampleClient_Lag() {
	ctx := context.Background()
	seeds := strings.Split(os.Getenv("TRIBUTARY_BROKERS"), ",")
	a, err := admin.New(admin.SeedBrokers(seeds...))
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()

	// Ten records on a one-partition topic, of which the group "billing"
	// has processed four.
	if err := a.CreateTopic(ctx, "invoices", 1, 1, nil); err != nil {
		log.Fatal(err)
	}
	p, err := producer.New(producer.SeedBrokers(seeds...))
	if err != nil {
		log.Fatal(err)
	}
	for i := range 10 {
		p.Produce(ctx, &tributary.Record{Topic: "invoices", Value: fmt.Appendf(nil, "invoice-%d", i)}, nil)
	}
	if err := p.Close(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := a.CommitOffsets(ctx, "billing", admin.NewPartitionOffset("invoices", 0, 4)); err != nil {
		log.Fatal(err)
	}

	lags, err := a.Lag(ctx, "billing")
	if err != nil {
		log.Fatal(err)
	}
	for _, g := range lags {
		fmt.Println(g.Group, g.State, "total lag", g.Total)
		for _, p := range g.Partitions {
			fmt.Printf("  %s[%d] committed %d end %d lag %d\n", p.Topic, p.Partition, p.Committed, p.End, p.Lag)
		}
	}
	// Output:
	// billing Empty total lag 6
	//   invoices[0] committed 4 end 10 lag 6
}

// Plan a replay of the last three records of a topic for a stopped group.
func ExampleClient_ResetGroupOffsets() {
	ctx := context.Background()
	a, err := admin.New(admin.SeedBrokers(strings.Split(os.Getenv("TRIBUTARY_BROKERS"), ",")...))
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()

	if err := a.CreateTopic(ctx, "payments", 1, 1, nil); err != nil {
		log.Fatal(err)
	}
	p, err := producer.New(producer.SeedBrokers(strings.Split(os.Getenv("TRIBUTARY_BROKERS"), ",")...))
	if err != nil {
		log.Fatal(err)
	}
	for i := range 5 {
		p.Produce(ctx, &tributary.Record{Topic: "payments", Value: fmt.Appendf(nil, "payment-%d", i)}, nil)
	}
	if err := p.Close(ctx); err != nil {
		log.Fatal(err)
	}

	// The group "audit" has read all five.
	if _, err := a.CommitOffsets(ctx, "audit", admin.NewPartitionOffset("payments", 0, 5)); err != nil {
		log.Fatal(err)
	}
	// ValidateOnly shows the plan; drop it to apply.
	plan, err := a.ResetGroupOffsets(ctx, "audit", admin.ShiftBy(-3), []string{"payments"}, admin.ValidateOnly())
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range plan {
		fmt.Println(p.Topic, p.Partition, "would move to", p.At, p.Err)
	}
	// Output:
	// payments 0 would move to 2 <nil>
}
