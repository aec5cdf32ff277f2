package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/admin"
	"github.com/tributary/tributary/client"
	"github.com/tributary/tributary/consumer"
	"github.com/tributary/tributary/producer"
)

var perfCmd = &branch{
	name:    "perf",
	summary: "load generators: produce or consume N records, report throughput and latency",
	subs: []*leaf{
		{name: "perf produce", args: "TOPIC [-n RECORDS] [-s SIZE] [--acks all|1|0] [--throughput N]", summary: "produce records as fast as possible; report records/s, MB/s and latency percentiles", flags: perfProduce},
		{name: "perf consume", args: "TOPIC [-n RECORDS]", summary: "consume records from the start; report records/s and MB/s", flags: perfConsume},
	},
}

// maxLatencySamples bounds the memory perf produce spends on latencies:
// beyond it, every k-th record is sampled.
const maxLatencySamples = 1 << 20

// progress prints a line to w every second while running, Kafka perf-test
// style, from the counters the load loop updates.
type progress struct {
	interval       time.Duration // between lines; 0 means a second
	records, bytes atomic.Int64
	latSum, latMax atomic.Int64 // µs, since the last line (produce only)
	latN           atomic.Int64
}

func (p *progress) run(ctx context.Context, w io.Writer, verb string, withLatency bool) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		every := p.interval
		if every <= 0 {
			every = time.Second
		}
		tick := time.NewTicker(every)
		defer tick.Stop()
		last, lastBytes, lastAt := int64(0), int64(0), time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				n, b := p.records.Load(), p.bytes.Load()
				secs := now.Sub(lastAt).Seconds()
				line := fmt.Sprintf("%d records %s, %.1f records/s (%.2f MB/s)", n-last, verb, float64(n-last)/secs, float64(b-lastBytes)/secs/1e6)
				if withLatency {
					ln, ls, lm := p.latN.Swap(0), p.latSum.Swap(0), p.latMax.Swap(0)
					if ln > 0 {
						line += fmt.Sprintf(", %.1f ms avg latency, %.1f ms max latency", float64(ls)/float64(ln)/1e3, float64(lm)/1e3)
					}
				}
				fmt.Fprintln(w, line+".")
				last, lastBytes, lastAt = n, b, now
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

type perfProduceJSON struct {
	Records       int64   `json:"records"`
	Failed        int64   `json:"failed"`
	Bytes         int64   `json:"bytes"`
	Seconds       float64 `json:"seconds"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"`
	AvgLatencyMs  float64 `json:"avg_latency_ms"`
	P50LatencyMs  float64 `json:"p50_latency_ms"`
	P95LatencyMs  float64 `json:"p95_latency_ms"`
	P99LatencyMs  float64 `json:"p99_latency_ms"`
	MaxLatencyMs  float64 `json:"max_latency_ms"`
}

func perfProduce(f *flagSet) func(context.Context, *tool, []string) error {
	var records, size, throughput, batchSize int
	var acks, compression string
	var linger time.Duration
	f.Int(&records, "n", "num-records", "N", 100000, "records to produce")
	f.Int(&size, "s", "record-size", "BYTES", 100, "value size of each record")
	f.String(&acks, "", "acks", "all|1|0", "all", "acknowledgements the broker waits for")
	f.Int(&throughput, "", "throughput", "N", -1, "cap on records/s (-1: as fast as possible)")
	f.Int(&batchSize, "", "batch-size", "BYTES", 0, "producer batch size (0: the SDK default, 16384)")
	f.String(&compression, "", "compression", "CODEC", "none", "none, gzip, snappy, lz4 or zstd")
	f.Var(durationValue{&linger}, "", "linger", "DURATION", "5ms", "how long a batch waits for more records")
	linger = 5 * time.Millisecond
	return func(ctx context.Context, t *tool, args []string) error {
		if len(args) != 1 {
			return usagef("name exactly one topic")
		}
		topic := args[0]
		if records <= 0 {
			return usagef("-n must be positive")
		}
		if size < 0 {
			return usagef("-s must not be negative")
		}
		if throughput == 0 || throughput < -1 {
			return usagef("--throughput must be positive, or -1 for no limit")
		}
		ack, ok := map[string]int16{"all": producer.AcksAll, "-1": producer.AcksAll, "1": producer.AcksLeader, "0": producer.AcksNone}[acks]
		if !ok {
			return usagef("--acks must be all, 1 or 0, not %q", acks)
		}
		codec, ok := map[string]producer.Codec{"none": producer.NoCompression, "gzip": producer.Gzip, "snappy": producer.Snappy, "lz4": producer.LZ4, "zstd": producer.ZSTD}[compression]
		if !ok {
			return usagef("--compression must be none, gzip, snappy, lz4 or zstd, not %q", compression)
		}
		opts := []producer.Opt{producer.ClientOptions(t.clientOpts()...), producer.Acks(ack), producer.Linger(linger), producer.Compression(codec)}
		if batchSize > 0 {
			opts = append(opts, producer.BatchSize(batchSize))
		}
		p, err := producer.New(opts...)
		if err != nil {
			return err
		}
		defer p.Close(context.Background())
		if _, err := checkTopic(ctx, p.Client(), topic, -1); err != nil {
			return err
		}

		// One payload of random upper-case letters, shared by every
		// record, as Kafka's ProducerPerformance does.
		payload := make([]byte, size)
		for i := range payload {
			payload[i] = byte('A' + rand.IntN(26))
		}
		every := max(1, records/maxLatencySamples)
		lats := make([]int64, (records+every-1)/every) // µs; -1 for failed
		var (
			prog   progress
			failed atomic.Int64
			firstE atomic.Pointer[error]
			latSum atomic.Int64
			latMax atomic.Int64
		)
		stop := prog.run(ctx, t.stderr, "sent", true)
		begin := time.Now()
		sent := 0
		for i := 0; i < records && ctx.Err() == nil; i++ {
			if throughput > 0 {
				if due := begin.Add(time.Duration(float64(i) / float64(throughput) * float64(time.Second))); time.Until(due) > 0 {
					time.Sleep(time.Until(due))
				}
			}
			at := time.Now()
			p.Produce(ctx, &tributary.Record{Topic: topic, Value: payload}, func(_ *tributary.Record, err error) {
				us := time.Since(at).Microseconds()
				if err != nil {
					failed.Add(1)
					firstE.CompareAndSwap(nil, &err)
					if i%every == 0 {
						lats[i/every] = -1
					}
					return
				}
				prog.records.Add(1)
				prog.bytes.Add(int64(size))
				prog.latN.Add(1)
				prog.latSum.Add(us)
				atomicMax(&prog.latMax, us)
				latSum.Add(us)
				atomicMax(&latMax, us)
				if i%every == 0 {
					lats[i/every] = us
				}
			})
			sent++
		}
		flushErr := p.Flush(ctx)
		elapsed := time.Since(begin)
		stop()
		if sent < records && ctx.Err() != nil {
			lats = lats[:(sent+every-1)/every]
		}
		ok64 := prog.records.Load()
		res := perfProduceJSON{
			Records: ok64, Failed: failed.Load(), Bytes: prog.bytes.Load(), Seconds: elapsed.Seconds(),
			RecordsPerSec: float64(ok64) / elapsed.Seconds(), MBPerSec: float64(prog.bytes.Load()) / elapsed.Seconds() / 1e6,
			MaxLatencyMs: float64(latMax.Load()) / 1e3,
		}
		if ok64 > 0 {
			res.AvgLatencyMs = float64(latSum.Load()) / float64(ok64) / 1e3
		}
		samples := slices.DeleteFunc(lats, func(l int64) bool { return l < 0 })
		slices.Sort(samples)
		res.P50LatencyMs, res.P95LatencyMs, res.P99LatencyMs = percentile(samples, 0.50), percentile(samples, 0.95), percentile(samples, 0.99)
		if t.json() {
			if err := writeJSON(t.stdout, res); err != nil {
				return err
			}
		} else {
			tb := newTable(t.stdout, "RECORDS", "RECORDS/S", "MB/S", "AVG-LATENCY", "P50", "P95", "P99", "MAX")
			tb.row(res.Records, fmt.Sprintf("%.1f", res.RecordsPerSec), fmt.Sprintf("%.2f", res.MBPerSec),
				ms(res.AvgLatencyMs), ms(res.P50LatencyMs), ms(res.P95LatencyMs), ms(res.P99LatencyMs), ms(res.MaxLatencyMs))
			tb.flush()
		}
		if e := firstE.Load(); e != nil {
			return fmt.Errorf("%d of %d records failed: %w", res.Failed, sent, *e)
		}
		if flushErr != nil && ctx.Err() == nil {
			return flushErr
		}
		return nil
	}
}

func ms(v float64) string { return fmt.Sprintf("%.2f ms", v) }

// percentile is the nearest-rank percentile of sorted µs samples, in ms.
func percentile(sorted []int64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	i = min(max(i, 0), len(sorted)-1)
	return float64(sorted[i]) / 1e3
}

func atomicMax(a *atomic.Int64, v int64) {
	for {
		cur := a.Load()
		if v <= cur || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

type perfConsumeJSON struct {
	Records       int64   `json:"records"`
	Bytes         int64   `json:"bytes"`
	Seconds       float64 `json:"seconds"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"`
}

func perfConsume(f *flagSet) func(context.Context, *tool, []string) error {
	var records int
	var timeout time.Duration
	f.Int(&records, "n", "num-records", "N", 0, "records to consume (0: every record in the topic when the test starts)")
	f.Var(durationValue{&timeout}, "", "timeout", "DURATION", "10s", "give up when no record arrives for this long")
	timeout = 10 * time.Second
	return func(ctx context.Context, t *tool, args []string) error {
		if len(args) != 1 {
			return usagef("name exactly one topic")
		}
		topic := args[0]
		if records < 0 {
			return usagef("-n must not be negative")
		}
		if timeout <= 0 {
			return usagef("--timeout must be positive")
		}
		cl, err := client.New(t.clientOpts()...)
		if err != nil {
			return err
		}
		defer cl.Close()
		ps, err := checkTopic(ctx, cl, topic, -1)
		if err != nil {
			return err
		}
		a, err := admin.New(admin.WithClient(cl))
		if err != nil {
			return err
		}
		ends, err := a.ListEndOffsets(ctx, topic)
		if err != nil {
			return err
		}
		if err := ends.FirstErr(); err != nil {
			return err
		}
		starts, err := a.ListStartOffsets(ctx, topic)
		if err != nil {
			return err
		}
		want := int64(records)
		if want == 0 {
			for _, e := range ends {
				if s, ok := starts.Lookup(e.Topic, e.Partition); ok && s.Err == nil {
					want += max(e.Offset-s.Offset, 0)
				}
			}
		}
		c, err := consumer.New(consumer.WithClient(cl), consumer.AutoOffsetReset(consumer.ResetEarliest))
		if err != nil {
			return err
		}
		defer c.Close(context.Background())
		offs := make(map[tributary.TopicPartition]int64, len(ps))
		for _, p := range ps {
			offs[tributary.TopicPartition{Topic: topic, Partition: p.Partition}] = consumer.Earliest
		}
		if err := c.AssignOffsets(offs); err != nil {
			return err
		}

		var prog progress
		stop := prog.run(ctx, t.stderr, "consumed", false)
		begin := time.Now()
		lastRecord := begin
		var got, bytes int64
		var timedOut bool
		for got < want && ctx.Err() == nil {
			pctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
			recs, err := c.Poll(pctx)
			cancel()
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					if time.Since(lastRecord) > timeout {
						timedOut = true
						break
					}
					continue
				}
				if ctx.Err() != nil {
					break
				}
				stop()
				return err
			}
			if len(recs) > 0 {
				lastRecord = time.Now()
			}
			if int64(len(recs)) > want-got {
				recs = recs[:want-got] // report exactly the records asked for
			}
			for _, r := range recs {
				n := int64(len(r.Key) + len(r.Value))
				bytes += n
				prog.bytes.Add(n)
			}
			got += int64(len(recs))
			prog.records.Add(int64(len(recs)))
		}
		elapsed := time.Since(begin)
		if timedOut {
			elapsed = lastRecord.Sub(begin) // the wait is not throughput
		}
		stop()
		secs := max(elapsed.Seconds(), 1e-9)
		res := perfConsumeJSON{Records: got, Bytes: bytes, Seconds: elapsed.Seconds(), RecordsPerSec: float64(got) / secs, MBPerSec: float64(bytes) / secs / 1e6}
		if t.json() {
			if err := writeJSON(t.stdout, res); err != nil {
				return err
			}
		} else {
			tb := newTable(t.stdout, "RECORDS", "MB", "SECONDS", "RECORDS/S", "MB/S")
			tb.row(res.Records, fmt.Sprintf("%.2f", float64(bytes)/1e6), fmt.Sprintf("%.3f", res.Seconds), fmt.Sprintf("%.1f", res.RecordsPerSec), fmt.Sprintf("%.2f", res.MBPerSec))
			tb.flush()
		}
		if timedOut {
			return fmt.Errorf("only %d of %d records arrived; none for %v", got, want, timeout)
		}
		return nil
	}
}

type durationValue struct{ p *time.Duration }

func (d durationValue) String() string {
	if d.p == nil {
		return ""
	}
	return d.p.String()
}

func (d durationValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 5ms or 10s", s)
	}
	*d.p = v
	return nil
}
