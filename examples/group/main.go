// Command group is one member of a consumer group: it prints the
// partitions it is given and the records it reads, and commits after each
// batch it printed.
//
//	go run ./examples/group -brokers 127.0.0.1:9092 -topic orders -group billing
//
// -brokers defaults to $TRIBUTARY_BROKERS, as in the tributary CLI.
//
// Run two in separate terminals and watch the partitions split between
// them; stop one (Ctrl-C) and the other takes its partitions over from
// the offsets it committed. -cooperative switches to incremental
// rebalancing (KIP-429): a member then keeps the partitions that stay
// with it while the group rebalances.
package main

import (
	"context"
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
	group := flag.String("group", "tributary-example-group", "consumer group")
	cooperative := flag.Bool("cooperative", false, "use the cooperative-sticky assignor only (incremental rebalancing)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	show := func(what string) func([]tributary.TopicPartition) {
		return func(tps []tributary.TopicPartition) {
			if len(tps) == 0 {
				return // a cooperative rebalance that gave this member nothing new
			}
			ps := make([]string, len(tps))
			for i, tp := range tps {
				ps[i] = fmt.Sprintf("%s[%d]", tp.Topic, tp.Partition)
			}
			log.Printf("%s: %s", what, strings.Join(ps, " "))
		}
	}
	opts := []consumer.Opt{
		consumer.SeedBrokers(strings.Split(*brokers, ",")...),
		consumer.Group(*group),
		consumer.Topics(*topic),
		consumer.AutoOffsetReset(consumer.ResetEarliest),
		consumer.AutoCommit(false), // we commit after printing
		consumer.OnAssigned(show("assigned")),
		consumer.OnRevoked(show("revoked")),
		consumer.OnLost(show("lost")),
	}
	if *cooperative {
		opts = append(opts, consumer.Assignors(consumer.CooperativeSticky()))
	}
	c, err := consumer.New(opts...)
	if err != nil {
		log.Fatal(err)
	}
	for {
		recs, err := c.Poll(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break // Ctrl-C: Poll returns no records with this error
			}
			log.Print(err)
			continue
		}
		for _, r := range recs {
			fmt.Printf("%s[%d]@%d key=%q value=%q\n", r.Topic, r.Partition, r.Offset, r.Key, r.Value)
		}
		// A rebalance may have moved partitions since Poll: the
		// coordinator then refuses the commit and the new owner re-reads
		// these records, which is at-least-once delivery.
		if err := c.Commit(ctx, recs...); err != nil && ctx.Err() == nil {
			log.Printf("commit: %v", err)
		}
	}
	// Shutting down: ctx is done, so the last commit (in case Ctrl-C cut
	// the loop's short) and the leave get a fresh context. Every record
	// Poll returned was printed, so committing positions loses nothing.
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Commit(shutdown); err != nil {
		log.Printf("final commit: %v", err)
	}
	if err := c.Close(shutdown); err != nil {
		log.Print(err)
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
