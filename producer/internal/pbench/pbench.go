// Package pbench holds the producer benchmarks' runners, shared by the
// benchmark against kfake and the one against the Tributary broker: the
// same workload through this producer and through franz-go's kgo.
package pbench

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/producer"
)

var benchTopicSeq atomic.Int32

func benchTopic(b *testing.B, addrs []string) string {
	b.Helper()
	return benchTopicFor(b, addrs)
}

func benchTopicFor(b *testing.B, addrs []string) string {
	b.Helper()
	topic, drop := newTopic(b, addrs)
	b.Cleanup(drop)
	return topic
}

// newTopic creates a fresh 6-partition topic; drop deletes it (kfake keeps
// every record in memory, and later rounds must not pay for earlier ones
// in GC work) and collects garbage so each round starts from the same heap.
func newTopic(b *testing.B, addrs []string) (string, func()) {
	b.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		b.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	topic := fmt.Sprintf("bench-%d", benchTopicSeq.Add(1))
	resp, err := adm.CreateTopic(context.Background(), 6, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	return topic, func() {
		adm.DeleteTopics(context.Background(), topic)
		cl.Close()
		runtime.GC()
	}
}

type benchRunner struct {
	name string
	// run produces n records to topic and returns how long it took.
	run func(b *testing.B, addrs []string, topic string, n int, batchBytes int) time.Duration
}

var benchValue = make([]byte, 100)

func runTributary(b *testing.B, addrs []string, topic string, n, batchBytes int) time.Duration {
	p, err := producer.New(producer.SeedBrokers(addrs...), producer.BatchSize(batchBytes), producer.Linger(5*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(context.Background())
	// Warm up metadata and the producer id outside the timing.
	if err := p.ProduceSync(context.Background(), &tributary.Record{Topic: topic, Value: benchValue}).FirstErr(); err != nil {
		b.Fatal(err)
	}
	var failed atomic.Int64
	cb := func(_ *tributary.Record, err error) { // one callback, so the loop allocates only the record
		if err != nil {
			failed.Add(1)
		}
	}
	return timeProduce(b, n, func(ctx context.Context) { p.Produce(ctx, &tributary.Record{Topic: topic, Value: benchValue}, cb) }, p.Flush, &failed)
}

func runKgo(b *testing.B, addrs []string, topic string, n, batchBytes int) time.Duration {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ProducerBatchMaxBytes(int32(batchBytes)),
		kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Value: benchValue}).FirstErr(); err != nil {
		b.Fatal(err)
	}
	var failed atomic.Int64
	cb := func(_ *kgo.Record, err error) { // one callback, so the loop allocates only the record
		if err != nil {
			failed.Add(1)
		}
	}
	return timeProduce(b, n, func(ctx context.Context) { cl.Produce(ctx, &kgo.Record{Topic: topic, Value: benchValue}, cb) }, cl.Flush, &failed)
}

// timeProduce times n calls of produce followed by flush, with the
// benchmark timer running only around them, and fails b if any record
// failed (counted by their callbacks); both clients are measured by this one loop.
func timeProduce(b *testing.B, n int, produce func(context.Context), flush func(context.Context) error, failed *atomic.Int64) time.Duration {
	ctx := context.Background()
	b.StartTimer()
	start := time.Now()
	for range n {
		produce(ctx)
	}
	if err := flush(ctx); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if failed.Load() > 0 {
		b.Fatalf("%d records failed", failed.Load())
	}
	return elapsed
}

var benchRunners = []benchRunner{{"tributary", runTributary}, {"kgo", runKgo}}

// PerClient runs one sub-benchmark per client and batch size, b.N
// records each, for -benchmem's per-record allocation figures.
func PerClient(b *testing.B, addrs []string, name string) {
	for _, batchBytes := range []int{16384, 1 << 20} {
		for _, r := range benchRunners {
			b.Run(fmt.Sprintf("%s/%s/batch=%d", r.name, name, batchBytes), func(b *testing.B) {
				topic := benchTopic(b, addrs)
				b.ReportAllocs()
				b.StopTimer()
				b.ResetTimer()
				elapsed := r.run(b, addrs, topic, b.N, batchBytes)
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
			})
		}
	}
}

// Compare alternates the two clients, 1,000,000 records each per round
// (b.N rounds), so both see the same machine load, and reports the median
// records/s of each and their ratio.
func Compare(b *testing.B, addrs []string) {
	const n = 1_000_000
	for _, batchBytes := range []int{16384, 1 << 20} {
		b.Run(fmt.Sprintf("batch=%d", batchBytes), func(b *testing.B) {
			rates := make([][]float64, len(benchRunners))
			cpus := make([][]float64, len(benchRunners))
			b.StopTimer()
			b.ResetTimer()
			for i := range b.N {
				for j := range benchRunners {
					k := (i + j) % len(benchRunners) // alternate who goes first
					topic, drop := newTopic(b, addrs)
					c0 := processCPU()
					elapsed := benchRunners[k].run(b, addrs, topic, n, batchBytes)
					cpus[k] = append(cpus[k], (processCPU() - c0).Seconds())
					rates[k] = append(rates[k], n/elapsed.Seconds())
					drop()
				}
			}
			med := make([]float64, len(benchRunners))
			cpu := make([]float64, len(benchRunners))
			for j := range benchRunners {
				med[j], cpu[j] = median(rates[j]), median(cpus[j])
				b.ReportMetric(med[j], benchRunners[j].name+"-records/s")
			}
			b.ReportMetric(med[0]/med[1], "ratio")
			b.Logf("batch=%d: tributary %.0f records/s, kgo %.0f records/s, ratio %.2f; process CPU per round (client+broker) tributary %.0fms, kgo %.0fms (medians of %d rounds of %d records)",
				batchBytes, med[0], med[1], med[0]/med[1], cpu[0]*1000, cpu[1]*1000, b.N, n)
		})
	}
}

func median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}
