package admin_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/admin"
)

func Example() {
	ctx := context.Background()
	a, err := admin.New(admin.SeedBrokers("localhost:9092"))
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()

	err = a.CreateTopic(ctx, "orders", 6, 3, map[string]string{"cleanup.policy": "compact"})
	if err != nil && !errors.Is(err, tributary.ErrTopicAlreadyExists) {
		log.Fatal(err)
	}

	// Many items, one result each: one bad topic does not hide the others.
	res, err := a.DeleteTopics(ctx, "old-a", "old-b")
	if err != nil {
		log.Fatal(err) // nothing could be done at all
	}
	for _, r := range res {
		switch {
		case errors.Is(r.Err, tributary.ErrUnknownTopicOrPartition):
			fmt.Println(r.Topic, "was already gone")
		case r.Err != nil:
			fmt.Println(r.Topic, "failed:", r.Err)
		}
	}
}

func ExampleClient_Lag() {
	ctx := context.Background()
	a, err := admin.New(admin.SeedBrokers("localhost:9092"))
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()

	lags, err := a.Lag(ctx, "billing")
	if err != nil {
		log.Fatal(err)
	}
	for _, g := range lags {
		fmt.Println(g.Group, g.State, "total lag", g.Total)
		for _, p := range g.Partitions {
			fmt.Printf("  %s[%d] committed %d end %d lag %d member %q\n", p.Topic, p.Partition, p.Committed, p.End, p.Lag, p.MemberID)
		}
	}
}

func ExampleClient_ResetGroupOffsets() {
	ctx := context.Background()
	a, err := admin.New(admin.SeedBrokers("localhost:9092"))
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()

	// Replay the last 100 records of every partition of "orders" for the
	// (stopped) group "billing". Drop ValidateOnly to apply it.
	plan, err := a.ResetGroupOffsets(ctx, "billing", admin.ShiftBy(-100), []string{"orders"}, admin.ValidateOnly())
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range plan {
		fmt.Println(p.Topic, p.Partition, p.At, p.Err)
	}
}
