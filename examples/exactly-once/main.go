// Command exactly-once is a consume-transform-produce pipeline with
// Kafka transactions: it reads an input topic as a member of a consumer
// group, uppercases each value, and writes the result to an output topic.
// The output records and the group's input offsets are committed in the
// same transaction, so every input record appears in the output exactly
// once for read_committed readers, even when the pipeline crashes or is
// restarted mid-batch: a transaction either commits both the output and
// the offsets, or neither, and the next run starts from the offsets that
// did commit.
//
//	go run ./examples/exactly-once -brokers 127.0.0.1:9092 -in words -out WORDS -group upper
//
// -brokers defaults to $TRIBUTARY_BROKERS, as in the tributary CLI. The
// broker must support transactions (Kafka 2.5+; franz-go's kfake).
//
// What it shows:
//   - producer.TransactionalID makes the producer transactional;
//     InitTransactions at start fences any older instance with the same id.
//   - consumer.Isolation(ReadCommitted) so the pipeline never reads an
//     aborted upstream record, and AutoCommit(false): offsets are
//     committed only by the transaction (SendOffsetsToTxn, with the
//     consumer's GroupMetadata so a member that lost its partitions in a
//     rebalance cannot commit them).
//   - the error handling: ErrFenced ends the instance (another one took
//     over); anything else aborts the transaction and rewinds the
//     consumer to the committed offsets, so the batch is processed again.
//
// Run several instances with the same -group: the partitions split
// between them, each with its own transactional id.
package main

import (
	"bytes"
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
	"github.com/tributary/tributary/producer"
)

func main() {
	host, _ := os.Hostname()
	brokers := flag.String("brokers", defaultBrokers(), "comma-separated seed brokers (default: TRIBUTARY_BROKERS, as the tributary CLI reads it, else 127.0.0.1:9092)")
	in := flag.String("in", "tributary-example-in", "input topic")
	out := flag.String("out", "tributary-example-out", "output topic")
	group := flag.String("group", "tributary-example-upper", "consumer group")
	txnID := flag.String("txn-id", fmt.Sprintf("tributary-example-upper-%s-%d", host, os.Getpid()),
		"transactional id, unique per running instance (a restarted instance may reuse its old id to fence a zombie predecessor)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := config{brokers: strings.Split(*brokers, ","), in: *in, out: *out, group: *group, txnID: *txnID, logf: log.Printf}
	if err := run(ctx, cfg); err != nil {
		log.Fatal(err)
	}
}

type config struct {
	brokers          []string
	in, out          string
	group, txnID     string
	logf             func(format string, args ...any)
	onCommit         func(n int) // called after each committed transaction, for tests
	consumerOpts     []consumer.Opt
	producerOpts     []producer.Opt
	transactionLimit time.Duration // bounds one transaction's commit; default 30s
}

// run copies cfg.in to cfg.out, uppercased, until ctx ends.
func run(ctx context.Context, cfg config) error {
	c, err := consumer.New(append([]consumer.Opt{
		consumer.SeedBrokers(cfg.brokers...),
		consumer.Group(cfg.group),
		consumer.Topics(cfg.in),
		consumer.AutoCommit(false),                 // the transaction commits the offsets
		consumer.Isolation(consumer.ReadCommitted), // never read an aborted input record
		consumer.AutoOffsetReset(consumer.ResetEarliest),
	}, cfg.consumerOpts...)...)
	if err != nil {
		return err
	}
	p, err := producer.New(append([]producer.Opt{
		producer.SeedBrokers(cfg.brokers...),
		producer.TransactionalID(cfg.txnID),
	}, cfg.producerOpts...)...)
	if err != nil {
		c.Close(context.Background())
		return err
	}
	defer func() {
		// Close aborts a transaction still open; a fresh ctx, since ctx
		// is done when we get here.
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Close(shutdown)
		c.Close(shutdown)
	}()
	// Fence a zombie with our id before reading anything.
	if err := p.InitTransactions(ctx); err != nil {
		return fmt.Errorf("init transactions: %w", err)
	}
	limit := cfg.transactionLimit
	if limit == 0 {
		limit = 30 * time.Second
	}
	for {
		recs, err := c.Poll(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			cfg.logf("poll: %v", err)
			continue
		}
		if len(recs) == 0 {
			continue
		}
		err = transform(ctx, p, c, cfg.out, recs, limit)
		switch {
		case err == nil:
			if cfg.onCommit != nil {
				cfg.onCommit(len(recs))
			}
		case errors.Is(err, producer.ErrFenced):
			// Another instance has our transactional id: it owns the
			// work now, and this producer can do nothing more.
			return err
		default:
			// The transaction was aborted: nothing of it is visible and
			// the group's offsets did not move. Go back to them and
			// process the batch again.
			cfg.logf("transaction aborted, retrying the batch: %v", err)
			rewind(c, recs)
		}
	}
}

// transform writes recs, uppercased, and their offsets in one
// transaction; on any error but fencing it aborts the transaction.
func transform(ctx context.Context, p *producer.Producer, c *consumer.Consumer, out string, recs []*tributary.Record, limit time.Duration) error {
	err := p.BeginTxn()
	if errors.Is(err, producer.ErrTxnInProgress) {
		// The abort of an earlier batch did not finish; finish it.
		if err = p.AbortTxn(ctx); err == nil {
			err = p.BeginTxn()
		}
	}
	if err != nil {
		return err
	}
	tctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	offsets := make(map[tributary.TopicPartition]int64)
	for _, r := range recs {
		// Errors of single records need no callback: they make the
		// transaction abortable, and CommitTxn reports it.
		p.Produce(tctx, &tributary.Record{Topic: out, Key: r.Key, Value: bytes.ToUpper(r.Value), Headers: r.Headers}, nil)
		offsets[tributary.TopicPartition{Topic: r.Topic, Partition: r.Partition}] = r.Offset + 1
	}
	err = p.SendOffsetsToTxn(tctx, offsets, c.GroupMetadata())
	if err == nil {
		err = p.CommitTxn(tctx)
	}
	if err == nil || errors.Is(err, producer.ErrFenced) {
		return err
	}
	// A fresh ctx: tctx may be what ran out.
	actx, acancel := context.WithTimeout(context.Background(), limit)
	defer acancel()
	if aerr := p.AbortTxn(actx); aerr != nil {
		return errors.Join(err, fmt.Errorf("abort: %w", aerr))
	}
	return err
}

// rewind moves the partitions of recs back to the group's committed
// offsets. A partition no longer assigned is skipped: its new owner
// starts from the committed offset anyway.
func rewind(c *consumer.Consumer, recs []*tributary.Record) {
	seen := make(map[tributary.TopicPartition]bool)
	for _, r := range recs {
		tp := tributary.TopicPartition{Topic: r.Topic, Partition: r.Partition}
		if !seen[tp] {
			seen[tp] = true
			c.Seek(tp, consumer.Committed)
		}
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
