package producer_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tributary/tributary/producer/internal/pbench"
)

// BenchmarkProduce compares this producer with franz-go's kgo against the
// same in-process kfake cluster, one record per op, 100-byte values,
// acks=all, idempotent, with the same batching settings for both (Java's
// defaults: batch.size 16384, linger.ms 5, no compression). Run the
// assignment's 1,000,000 records with:
//
//	go test ./producer -run '^$' -bench Produce -benchtime 1000000x -benchmem
//
// records/s is reported per sub-benchmark; allocs/op is allocations per
// record (each includes the benchmark's own allocation of the record).
func BenchmarkProduce(b *testing.B) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	pbench.PerClient(b, c.ListenAddrs(), "kfake")
}

// BenchmarkProduceVsKgo alternates the two clients, 1,000,000 records
// each per round, so both see the same machine load, and reports the
// median records/s of each and their ratio. Use -benchtime 5x for five
// rounds:
//
//	go test ./producer -run '^$' -bench ProduceVsKgo -benchtime 5x
func BenchmarkProduceVsKgo(b *testing.B) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	pbench.Compare(b, c.ListenAddrs())
}
