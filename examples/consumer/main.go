// Command consumer prints the records of a Kafka topic with Tributary's
// consumer.
//
//	go run ./examples/consumer -brokers 127.0.0.1:9092 -topic orders
//
// -brokers defaults to $TRIBUTARY_BROKERS, as in the tributary CLI.
//
// Without -group it assigns itself every partition of the topic and reads
// from the start (-from latest to wait for new records), committing
// nothing. With -group it joins that consumer group instead, starts from
// the group's committed offsets and auto-commits what it printed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/consumer"
)

func main() {
	brokers := flag.String("brokers", defaultBrokers(), "comma-separated seed brokers (default: TRIBUTARY_BROKERS, as the tributary CLI reads it, else 127.0.0.1:9092)")
	topic := flag.String("topic", "tributary-example", "topic to consume")
	group := flag.String("group", "", "consumer group to join (empty: assign every partition by hand)")
	from := flag.String("from", "earliest", "where to start without a committed offset: earliest or latest")
	n := flag.Int("n", 0, "stop after this many records (0: run until interrupted)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	reset := consumer.ResetEarliest
	if *from == "latest" {
		reset = consumer.ResetLatest
	}
	opts := []consumer.Opt{
		consumer.SeedBrokers(strings.Split(*brokers, ",")...),
		consumer.AutoOffsetReset(reset),
	}
	if *group != "" {
		opts = append(opts, consumer.Group(*group), consumer.Topics(*topic))
	}
	c, err := consumer.New(opts...)
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Close(cctx); err != nil {
			log.Print(err)
		}
	}()

	if *group == "" {
		mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		partitions, err := c.Client().TopicPartitions(mctx, *topic)
		cancel()
		if err != nil {
			log.Fatalf("topic %s: %v", *topic, err)
		}
		tps := make([]tributary.TopicPartition, len(partitions))
		for i, p := range partitions {
			tps[i] = tributary.TopicPartition{Topic: *topic, Partition: p.Partition}
		}
		if err := c.Assign(tps...); err != nil {
			log.Fatal(err)
		}
	}

	seen := 0
	for *n == 0 || seen < *n {
		recs, err := c.Poll(ctx)
		if errors.Is(err, context.Canceled) {
			return
		}
		if err != nil {
			log.Print(err)
			continue
		}
		for _, r := range recs {
			fmt.Printf("%s[%d]@%d %s key=%q value=%q", r.Topic, r.Partition, r.Offset, r.Timestamp.Format(time.RFC3339Nano), r.Key, r.Value)
			for _, h := range r.Headers {
				fmt.Printf(" %s=%q", h.Key, h.Value)
			}
			fmt.Println()
		}
		seen += len(recs)
	}
}

// defaultBrokers is TRIBUTARY_BROKERS, the variable the tributary CLI
// reads, or the local broker's default address.
func defaultBrokers() string {
	if b := os.Getenv("TRIBUTARY_BROKERS"); b != "" {
		return b
	}
	return "127.0.0.1:9092"
}
