package broker_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/broker/brokertest"
)

// BenchmarkTxnVsIdempotent produces the same records (100 B, random, to
// one partition of our broker running as its own process) once with an
// idempotent producer and once in transactions of txnSize records, in
// the same run, alternating twice, and reports both rates and their ratio
// (-bench.txnsize sets the transaction size; the idempotent run flushes
// at the same boundaries):
//
//	go test ./broker -run '^$' -bench TxnVsIdempotent -benchtime 1x
var benchTxnSize = flag.Int("bench.txnsize", 1000, "records per transaction in BenchmarkTxnVsIdempotent")

func BenchmarkTxnVsIdempotent(b *testing.B) {
	const n = 200_000
	txnSize := *benchTxnSize
	proc := brokertest.StartProcess(b, b.TempDir())
	rng := rand.New(rand.NewPCG(3, 3))
	payload := make([]byte, 4<<20)
	for i := range payload {
		payload[i] = byte(rng.IntN(256))
	}
	run := func(round int, txn bool) time.Duration {
		topic := fmt.Sprintf("bench-txn-%d-%v", round, txn)
		createTopicRF(b, proc.Addr(), topic, 1, nil)
		opts := []kgo.Opt{kgo.SeedBrokers(proc.Addr()), kgo.DefaultProduceTopic(topic)}
		if txn {
			opts = append(opts, kgo.TransactionalID(topic))
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		ctx := context.Background()
		start := time.Now()
		for i := 0; i < n; i += txnSize {
			if txn {
				if err := cl.BeginTransaction(); err != nil {
					b.Fatal(err)
				}
			}
			for j := i; j < i+txnSize; j++ {
				off := (j * 100) % (len(payload) - 100)
				cl.Produce(ctx, &kgo.Record{Value: payload[off : off+100]}, func(_ *kgo.Record, err error) {
					if err != nil {
						b.Error(err)
					}
				})
			}
			// kgo's EndTransaction does not flush: what is still
			// buffered would be produced after it, outside the
			// transaction (and refused).
			if err := cl.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			if txn {
				if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
					b.Fatal(err)
				}
			}
		}
		return time.Since(start)
	}
	for i := 0; i < b.N; i++ {
		best := map[bool]time.Duration{}
		for round := 0; round < 2; round++ {
			for _, txn := range []bool{false, true} {
				d := run(round, txn)
				if best[txn] == 0 || d < best[txn] {
					best[txn] = d
				}
			}
		}
		idem := float64(n) / best[false].Seconds()
		txn := float64(n) / best[true].Seconds()
		b.ReportMetric(idem, "idempotent-rec/s")
		b.ReportMetric(txn, "txn-rec/s")
		b.ReportMetric(txn/idem, "txn/idempotent")
	}
}
