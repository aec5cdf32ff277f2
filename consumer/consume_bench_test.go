package consumer

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/brokertest"
)

const (
	benchRecords    = 1_000_000
	benchValueBytes = 100
	benchPartitions = 6
	benchTopic      = "bench"
)

// benchFill produces benchRecords records of benchValueBytes bytes to
// benchTopic at addrs, so both consumers read the same data in one run.
func benchFill(b *testing.B, addrs []string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic(benchTopic),
		kgo.ProducerLinger(10*time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), benchPartitions, 1, nil, benchTopic); err != nil &&
		!errors.Is(err, kerr.TopicAlreadyExists) {
		b.Fatal(err)
	}
	value := make([]byte, benchValueBytes)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		perr error
	)
	wg.Add(benchRecords)
	for range benchRecords {
		cl.Produce(context.Background(), &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				perr = err
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	if perr != nil {
		b.Fatal(perr)
	}
}

// BenchmarkConsume reads the same 1,000,000 records of 100 bytes with
// Tributary's consumer and with franz-go's, from one kfake cluster and
// from our broker (in process), reporting records/s; run with -benchmem
// for allocations:
//
//	go test ./consumer/ -run - -bench Consume -benchmem -benchtime 3x
func BenchmarkConsume(b *testing.B) {
	b.Run("kfake", func(b *testing.B) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(c.Close)
		benchConsumers(b, c.ListenAddrs())
	})
	b.Run("broker", func(b *testing.B) {
		benchConsumers(b, []string{brokertest.Start(b).Addr()})
	})
}

// reportConsume reports records/s and the process CPU time per record,
// which includes the garbage collector and, in process, the broker, but
// is steadier than wall time on a machine shared with other work.
func reportConsume(b *testing.B, cpu time.Duration) {
	b.ReportMetric(float64(benchRecords*b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(benchRecords*b.N), "cpu-ns/record")
}

func benchConsumers(b *testing.B, addrs []string) {
	benchFill(b, addrs)
	tps := make([]tributary.TopicPartition, benchPartitions)
	for i := range tps {
		tps[i] = tributary.TopicPartition{Topic: benchTopic, Partition: int32(i)}
	}
	b.Run("tributary", func(b *testing.B) {
		b.ReportAllocs()
		cpu := processCPU()
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
		reportConsume(b, processCPU()-cpu)
	})
	b.Run("kgo", func(b *testing.B) {
		b.ReportAllocs()
		cpu := processCPU()
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
		reportConsume(b, processCPU()-cpu)
	})
}
