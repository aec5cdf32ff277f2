// Command admin walks through a topic's life with Tributary's admin
// client: create it, find it in the topic list, change one of its configs,
// and delete it.
//
//	go run ./examples/admin -brokers 127.0.0.1:9092 -topic admin-example
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/admin"
)

func main() {
	brokers := flag.String("brokers", defaultBrokers(), "comma-separated seed brokers (default $TRIBUTARY_BROKERS, as the tributary CLI)")
	topicFlag := flag.String("topic", "tributary-admin-example", "topic to create and delete")
	partitionsFlag := flag.Int("partitions", 3, "partition count")
	rfFlag := flag.Int("rf", 1, "replication factor")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout, strings.Split(*brokers, ","), *topicFlag, *partitionsFlag, *rfFlag); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, out io.Writer, brokers []string, topic string, partitions, rf int) error {
	a, err := admin.New(admin.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer a.Close()

	// Create. A leftover from an earlier run is fine.
	err = a.CreateTopic(ctx, topic, int32(partitions), int16(rf), map[string]string{"retention.ms": "3600000"})
	switch {
	case errors.Is(err, tributary.ErrTopicAlreadyExists):
		fmt.Fprintf(out, "topic %q already exists\n", topic)
	case err != nil:
		return fmt.Errorf("create: %w", err)
	default:
		fmt.Fprintf(out, "created %q with %d partitions\n", topic, partitions)
	}

	// List. Brokers learn of a new topic asynchronously; wait for it.
	var listing admin.TopicListing
	for found := false; !found; {
		topics, err := a.ListTopics(ctx)
		if err != nil {
			return fmt.Errorf("list: %w", err)
		}
		for _, t := range topics {
			if t.Topic == topic {
				listing, found = t, true
			}
		}
		if !found {
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				return fmt.Errorf("topic %q never showed up: %w", topic, ctx.Err())
			}
		}
	}
	fmt.Fprintf(out, "listed %q: id %s, %d partitions, replication factor %d\n",
		listing.Topic, listing.ID, listing.Partitions, listing.ReplicationFactor)

	// Alter a config, then read it back.
	res, err := a.AlterTopicConfigs(ctx, []admin.AlterConfig{admin.SetConfig("retention.ms", "86400000")}, []string{topic})
	if err == nil {
		err = res.FirstErr()
	}
	if err != nil {
		return fmt.Errorf("alter config: %w", err)
	}
	cfgs, err := a.DescribeTopicConfigs(ctx, topic)
	if err == nil {
		err = cfgs.FirstErr()
	}
	if err != nil {
		return fmt.Errorf("describe configs: %w", err)
	}
	if c, ok := cfgs[0].Lookup("retention.ms"); ok {
		fmt.Fprintf(out, "retention.ms is now %s (source %s)\n", c.ValueOr("?"), c.Source)
	}

	// Delete.
	del, err := a.DeleteTopics(ctx, topic)
	if err == nil {
		err = del.FirstErr()
	}
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	fmt.Fprintf(out, "deleted %q\n", topic)
	return nil
}

// defaultBrokers is $TRIBUTARY_BROKERS, as for the tributary CLI, or a
// local broker.
func defaultBrokers() string {
	if b := os.Getenv("TRIBUTARY_BROKERS"); b != "" {
		return b
	}
	return "127.0.0.1:9092"
}
