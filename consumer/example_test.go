package consumer_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/consumer"
)

// A group member that handles records, commits after each batch
// (at-least-once), and shuts down without losing or repeating anything:
// the loop stops when its context ends, and the last commit and the leave
// get a fresh context. A second member started afterwards goes on exactly
// where the first stopped.
func Example() {
	exampleTopic("orders", "order-1", "order-2", "order-3", "order-4", "order-5")

	// In a service: signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM).
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	opts := []consumer.Opt{
		consumer.SeedBrokers(exampleSeeds()),
		consumer.Group("billing"),
		consumer.Topics("orders"),
		consumer.AutoOffsetReset(consumer.ResetEarliest),
		consumer.AutoCommit(false),
		consumer.MaxPollRecords(1), // one record per Poll, to stop after the third
	}
	c, err := consumer.New(opts...)
	if err != nil {
		log.Fatal(err)
	}
	handled := 0
	for {
		recs, err := c.Poll(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break // shutting down; Poll returned no records
			}
			log.Print(err)
			continue
		}
		for _, r := range recs {
			fmt.Printf("first member: %s\n", r.Value)
			handled++
		}
		if err := c.Commit(ctx, recs...); err != nil && ctx.Err() == nil {
			log.Print(err)
		}
		if handled == 3 {
			stop() // here, the SIGTERM
		}
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Commit(shutdown); err != nil { // everything Poll returned was handled
		log.Print(err)
	}
	if err := c.Close(shutdown); err != nil {
		log.Print(err)
	}

	// The next member of the group starts after the last commit.
	c2, err := consumer.New(opts...)
	if err != nil {
		log.Fatal(err)
	}
	defer c2.Close(shutdown)
	for handled < 5 {
		recs, err := c2.Poll(shutdown)
		if err != nil {
			log.Fatal(err)
		}
		for _, r := range recs {
			fmt.Printf("second member: %s\n", r.Value)
			handled++
		}
		if err := c2.Commit(shutdown, recs...); err != nil {
			log.Print(err)
		}
	}
	// Output:
	// first member: order-1
	// first member: order-2
	// first member: order-3
	// second member: order-4
	// second member: order-5
}

// Partitions picked by hand, without a group: the last two records of
// partition 0, then nothing is committed (there is no group to commit to).
func ExampleConsumer_AssignOffsets() {
	exampleTopic("events", "a", "b", "c", "d")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := consumer.New(consumer.SeedBrokers(exampleSeeds()))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)
	tp := tributary.TopicPartition{Topic: "events", Partition: 0}
	if err := c.AssignOffsets(map[tributary.TopicPartition]int64{tp: 2}); err != nil {
		log.Fatal(err)
	}
	for seen := 0; seen < 2; {
		recs, err := c.Poll(ctx)
		if err != nil {
			log.Fatal(err)
		}
		for _, r := range recs {
			fmt.Printf("%s[%d]@%d %s\n", r.Topic, r.Partition, r.Offset, r.Value)
			seen++
		}
	}
	pos, _ := c.Position(tp)
	fmt.Println("position:", pos)
	fmt.Println("commit:", c.Commit(ctx))
	// Output:
	// events[0]@2 c
	// events[0]@3 d
	// position: 4
	// commit: consumer: no group configured
}
