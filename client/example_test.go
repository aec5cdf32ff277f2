package client_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/admin"
	"github.com/tributary/tributary/broker/brokertest"
	"github.com/tributary/tributary/client"
	"github.com/tributary/tributary/producer"
)

// TestMain starts a Tributary broker on 127.0.0.1:0 for the examples and
// points TRIBUTARY_BROKERS at it, as a deployment would point it at Kafka.
func TestMain(m *testing.M) { brokertest.Main(m) }

// One client shared by a producer and an admin: one set of connections and
// one metadata cache. Whoever creates the client closes it, after the
// producer and admin built on it.
func Example_sharedClient() {
	ctx := context.Background()
	seeds := strings.Split(os.Getenv("TRIBUTARY_BROKERS"), ",") // e.g. "kafka-1:9092,kafka-2:9092"
	cl, err := client.New(client.SeedBrokers(seeds...), client.ClientID("order-service"))
	if err != nil {
		log.Fatal(err) // a malformed seed is reported here, with how to fix it
	}
	defer cl.Close()

	adm, err := admin.New(admin.WithClient(cl))
	if err != nil {
		log.Fatal(err)
	}
	defer adm.Close() // leaves cl open
	if err := adm.CreateTopic(ctx, "shipments", 2, 1, nil); err != nil {
		log.Fatal(err)
	}

	p, err := producer.New(producer.WithClient(cl))
	if err != nil {
		log.Fatal(err)
	}
	for _, id := range []string{"s-1", "s-2", "s-3", "s-4"} {
		p.Produce(ctx, &tributary.Record{Topic: "shipments", Key: []byte(id), Value: []byte("packed")}, nil)
	}
	if err := p.Close(ctx); err != nil { // flushes; leaves cl open
		log.Fatal(err)
	}

	ends, err := adm.ListEndOffsets(ctx, "shipments")
	if err != nil {
		log.Fatal(err)
	}
	total := int64(0)
	for _, o := range ends {
		total += o.Offset
	}
	fmt.Println("records in shipments:", total)
	// Output:
	// records in shipments: 4
}

// requestCounter is a hook counting the requests the client writes.
type requestCounter struct{ n atomic.Int64 }

func (c *requestCounter) OnBrokerWrite(_ client.BrokerInfo, _ int16, _ int, _ time.Duration, err error) {
	if err == nil {
		c.n.Add(1)
	}
}

// Hooks observe the client without wrapping it: here, a count of the
// requests written. examples/hooks-prometheus exports such counts to
// Prometheus.
func ExampleWithHooks() {
	ctx := context.Background()
	var requests requestCounter
	cl, err := client.New(client.SeedBrokers(strings.Split(os.Getenv("TRIBUTARY_BROKERS"), ",")...), client.WithHooks(&requests))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()

	if _, err := cl.Request(ctx, kmsg.NewPtrListGroupsRequest()); err != nil {
		log.Fatal(err)
	}
	fmt.Println("requests written:", requests.n.Load())
	// Output:
	// requests written: 1
}

// New checks the seeds and says how to fix a bad one.
func ExampleSeedBrokers() {
	_, err := client.New(client.SeedBrokers("kafka-1:9092,kafka-2:9092"))
	fmt.Println(err)
	_, err = client.New(client.SeedBrokers("PLAINTEXT://kafka-1:9092"))
	fmt.Println(err)
	// Output:
	// client: seed broker "kafka-1:9092,kafka-2:9092" is a comma-separated list; split it: pass each broker as its own "host:port" argument, e.g. SeedBrokers("kafka-1:9092", "kafka-2:9092") (strings.Split(list, ",") does it)
	// client: seed broker "PLAINTEXT://kafka-1:9092" has a scheme; drop "PLAINTEXT://": the address is host:port, the listener name (PLAINTEXT, SSL) is not part of it
}
