// Command producer produces keyed records to a Kafka topic with
// Tributary's producer and prints where each one landed.
//
//	go run ./examples/producer -brokers 127.0.0.1:9092 -topic orders -n 10
//
// Keys are "key-0", "key-1", ... so the same key always goes to the same
// partition, the one Java's default partitioner would choose.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/producer"
)

func main() {
	brokers := flag.String("brokers", defaultBrokers(), "comma-separated seed brokers (default $TRIBUTARY_BROKERS, as the tributary CLI)")
	topic := flag.String("topic", "tributary-example", "topic to produce to")
	n := flag.Int("n", 10, "number of records")
	keys := flag.Int("keys", 4, "number of distinct keys")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	// A topic that does not exist (with auto-creation off) or brokers that
	// cannot be reached fail the records within seconds, with an error
	// that says which.
	p, err := producer.New(producer.SeedBrokers(strings.Split(*brokers, ",")...))
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Close(cctx); err != nil {
			log.Print(err)
		}
	}()

	recs := make([]*tributary.Record, *n)
	for i := range recs {
		recs[i] = &tributary.Record{
			Topic:   *topic,
			Key:     []byte("key-" + strconv.Itoa(i%max(*keys, 1))),
			Value:   []byte("value-" + strconv.Itoa(i)),
			Headers: []tributary.Header{{Key: "source", Value: []byte("examples/producer")}},
		}
	}
	failed := 0
	for _, res := range p.ProduceSync(ctx, recs...) {
		r := res.Record
		if res.Err != nil {
			failed++
			fmt.Printf("%s key=%s: error: %v\n", r.Topic, r.Key, res.Err)
			continue
		}
		fmt.Printf("%s key=%s partition=%d offset=%d\n", r.Topic, r.Key, r.Partition, r.Offset)
	}
	if failed > 0 {
		log.Printf("%d of %d records failed", failed, len(recs))
		os.Exit(1)
	}
}

// defaultBrokers is $TRIBUTARY_BROKERS, as for the tributary CLI, or a
// local broker.
func defaultBrokers() string {
	if b := os.Getenv("TRIBUTARY_BROKERS"); b != "" {
		return b
	}
	return "127.0.0.1:9092"
}
