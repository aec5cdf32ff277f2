package producer_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/producer"
)

// BenchmarkTxnProduce compares transactional with idempotent
// non-transactional throughput against the same kfake cluster, one
// 100-byte record per op, Java's batching defaults; the transactional
// producer commits every txnSize records. Reports records/s:
//
//	go test ./producer -run '^$' -bench TxnProduce -benchtime 200000x
func BenchmarkTxnProduce(b *testing.B) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(6, "bench"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	value := make([]byte, 100)
	for _, txnSize := range []int{0, 500, 5000} {
		name := "idempotent"
		if txnSize > 0 {
			name = fmt.Sprintf("txn-%d", txnSize)
		}
		b.Run(name, func(b *testing.B) {
			opts := []producer.Opt{producer.SeedBrokers(c.ListenAddrs()...)}
			if txnSize > 0 {
				opts = append(opts, producer.TransactionalID("bench-"+name))
			}
			p, err := producer.New(opts...)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			defer p.Close(ctx)
			var failed atomic.Int64
			cb := func(_ *tributary.Record, err error) {
				if err != nil {
					failed.Add(1)
				}
			}
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if txnSize > 0 && i%txnSize == 0 {
					if i > 0 {
						if err := p.CommitTxn(ctx); err != nil {
							b.Fatal(err)
						}
					}
					if err := p.BeginTxn(); err != nil {
						b.Fatal(err)
					}
				}
				p.Produce(ctx, &tributary.Record{Topic: "bench", Value: value}, cb)
			}
			if txnSize > 0 {
				if err := p.CommitTxn(ctx); err != nil {
					b.Fatal(err)
				}
			} else if err := p.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d records failed", n)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
		})
	}
}
