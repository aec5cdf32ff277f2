package consumer

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary"
)

const (
	benchRecords    = 1_000_000
	benchValueBytes = 100
	benchPartitions = 6
	benchTopic      = "bench"
)

var (
	benchOnce    sync.Once
	benchCluster *kfake.Cluster
	benchErr     error
)

// benchSetup fills one kfake cluster with benchRecords records of
// benchValueBytes bytes, once per test binary, so both consumers read the
// same data in the same run.
func benchSetup(b *testing.B) []string {
	benchOnce.Do(func() {
		benchCluster, benchErr = kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(benchPartitions, benchTopic))
		if benchErr != nil {
			return
		}
		var cl *kgo.Client
		cl, benchErr = kgo.NewClient(kgo.SeedBrokers(benchCluster.ListenAddrs()...), kgo.DefaultProduceTopic(benchTopic),
			kgo.ProducerLinger(10*time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(100_000))
		if benchErr != nil {
			return
		}
		defer cl.Close()
		value := make([]byte, benchValueBytes)
		var wg sync.WaitGroup
		var mu sync.Mutex
		wg.Add(benchRecords)
		for range benchRecords {
			cl.Produce(context.Background(), &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
				if err != nil {
					mu.Lock()
					benchErr = err
					mu.Unlock()
				}
				wg.Done()
			})
		}
		wg.Wait()
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchCluster.ListenAddrs()
}

// BenchmarkConsume reads the same 1,000,000 records of 100 bytes from one
// kfake cluster with Tributary's consumer and with franz-go's, reporting
// records/s; run with -benchmem for allocations:
//
//	go test ./consumer/ -run - -bench Consume -benchmem -benchtime 3x
func BenchmarkConsume(b *testing.B) {
	addrs := benchSetup(b)
	tps := make([]tributary.TopicPartition, benchPartitions)
	for i := range tps {
		tps[i] = tributary.TopicPartition{Topic: benchTopic, Partition: int32(i)}
	}
	b.Run("tributary", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c, err := New(SeedBrokers(addrs...), AutoOffsetReset(ResetEarliest))
			if err != nil {
				b.Fatal(err)
			}
			if err := c.Assign(tps...); err != nil {
				b.Fatal(err)
			}
			n := 0
			for n < benchRecords {
				recs, err := c.Poll(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				n += len(recs)
			}
			c.Close(context.Background())
		}
		b.ReportMetric(float64(benchRecords*b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("kgo", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(benchTopic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for n < benchRecords {
				fs := cl.PollFetches(context.Background())
				if err := fs.Err0(); err != nil {
					b.Fatal(err)
				}
				n += fs.NumRecords()
			}
			cl.Close()
		}
		b.ReportMetric(float64(benchRecords*b.N)/b.Elapsed().Seconds(), "records/s")
	})
}
