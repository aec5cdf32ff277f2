package producer_test

import (
	"context"
	"errors"
	"log"
	"os"
	"strings"
	"time"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/producer"
)

// Write to two topics atomically: read_committed consumers see both
// records or neither. (Compiled, not run: it needs a broker with
// transactions.)
func ExampleProducer_BeginTxn() {
	ctx := context.Background()
	seeds := strings.Split(os.Getenv("TRIBUTARY_BROKERS"), ",")
	p, err := producer.New(producer.SeedBrokers(seeds...), producer.TransactionalID("payments-1"))
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Close(ctx) // aborts a transaction left open
	}()

	if err := p.BeginTxn(); err != nil { // the first one fences older instances of "payments-1"
		log.Fatal(err)
	}
	p.Produce(ctx, &tributary.Record{Topic: "debits", Key: []byte("alice"), Value: []byte("-10")}, nil)
	p.Produce(ctx, &tributary.Record{Topic: "credits", Key: []byte("bob"), Value: []byte("+10")}, nil)
	switch err := p.CommitTxn(ctx); {
	case err == nil:
	case errors.Is(err, producer.ErrFenced):
		log.Fatal("another instance took over: ", err)
	default: // producer.ErrAbortableTxn: nothing was committed
		if err := p.AbortTxn(ctx); err != nil {
			log.Fatal(err)
		}
	}
}
