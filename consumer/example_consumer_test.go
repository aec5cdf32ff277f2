package consumer_test

import (
	"context"
	"log"

	"github.com/tributary/tributary/consumer"
)

// A group member that processes records and commits after each batch
// (at-least-once). Start several with the same Group to share the work.
func ExampleConsumer() {
	ctx := context.Background()
	c, err := consumer.New(
		consumer.SeedBrokers("localhost:9092"),
		consumer.Group("billing"),
		consumer.Topics("orders"),
		consumer.AutoCommit(false),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)
	for {
		recs, err := c.Poll(ctx)
		if err != nil {
			log.Print(err)
			continue
		}
		for _, r := range recs {
			log.Printf("%s[%d]@%d %s", r.Topic, r.Partition, r.Offset, r.Value)
		}
		if err := c.Commit(ctx, recs...); err != nil {
			log.Print(err)
		}
	}
}
