package producer_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/brokertest"
	"github.com/tributary/tributary/producer"
)

// TestMain starts a Tributary broker on 127.0.0.1:0 for the examples and
// points TRIBUTARY_BROKERS at it, as a deployment would point it at Kafka.
func TestMain(m *testing.M) { brokertest.Main(m) }

// Produce records and wait for each one's outcome.
func Example() {
	ctx := context.Background()
	seeds := strings.Split(os.Getenv("TRIBUTARY_BROKERS"), ",") // e.g. "kafka-1:9092,kafka-2:9092"
	p, err := producer.New(producer.SeedBrokers(seeds...))
	if err != nil {
		log.Fatal(err)
	}
	// Close flushes what is buffered; give it a deadline of its own.
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			log.Print(err)
		}
	}()

	results := p.ProduceSync(ctx,
		&tributary.Record{Topic: "orders", Key: []byte("alice"), Value: []byte("book")},
		&tributary.Record{Topic: "orders", Key: []byte("bob"), Value: []byte("pen")},
		&tributary.Record{Topic: "orders", Key: []byte("alice"), Value: []byte("lamp")},
	)
	for _, r := range results {
		if r.Err != nil {
			log.Fatal(r.Err)
		}
		fmt.Printf("%s %s -> %s[%d] offset %d\n", r.Record.Key, r.Record.Value, r.Record.Topic, r.Record.Partition, r.Record.Offset)
	}
	// Output:
	// alice book -> orders[0] offset 0
	// bob pen -> orders[0] offset 1
	// alice lamp -> orders[0] offset 2
}

// Produce asynchronously: the callback reports each record, then Flush
// waits for all of them.
func ExampleProducer_Produce() {
	ctx := context.Background()
	p, err := producer.New(producer.SeedBrokers(strings.Split(os.Getenv("TRIBUTARY_BROKERS"), ",")...))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(context.Background())

	var offsets []int64 // appended by callbacks; one partition calls back in order
	for i := range 5 {
		r := &tributary.Record{Topic: "clicks", Value: fmt.Appendf(nil, "click-%d", i)}
		p.Produce(ctx, r, func(r *tributary.Record, err error) {
			if err != nil {
				log.Print(err) // e.g. ErrDeliveryTimeout; r is the record
				return
			}
			offsets = append(offsets, r.Offset)
		})
	}
	if err := p.Flush(ctx); err != nil {
		log.Fatal(err)
	}
	slices.Sort(offsets)
	fmt.Println("acknowledged offsets", offsets)

	// A record whose ctx ends before it is sent is not sent.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	p.Produce(cancelled, &tributary.Record{Topic: "clicks", Value: []byte("late")}, func(_ *tributary.Record, err error) {
		fmt.Println("cancelled record:", err)
	})
	// Output:
	// acknowledged offsets [0 1 2 3 4]
	// cancelled record: context canceled
}
