package broker_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tributary/tributary/broker"
	"github.com/tributary/tributary/broker/brokertest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

var (
	benchRecords   = flag.Int("bench.records", 1_000_000, "records produced and consumed by BenchmarkProduceConsume1M")
	benchInProcess = flag.Bool("bench.inprocess", false, "run our broker in-process in BenchmarkProduceConsume1M (for -cpuprofile/-memprofile) instead of as a subprocess")
	benchConsole   = flag.Bool("bench.console", true, "run our broker with its console and metrics (http.listener) in BenchmarkProduceConsume1M; false turns http.listener off")
	benchWatch     = flag.Bool("bench.watch", true, "with -bench.console, load console pages and /metrics once a second during BenchmarkProduceConsume1M, as someone watching it would")
)

type throughput struct {
	produce, consume time.Duration
}

// runProduceConsume produces n records of 100 bytes to partition 0 of
// topic at addr with kgo's defaults (acks=all, idempotent,
// snappy) and then consumes them all from the start.
func runProduceConsume(b *testing.B, addr, topic string, n int) throughput {
	b.Helper()
	rng := rand.New(rand.NewPCG(7, 7))
	// Distinct random values (windows of a 16 MiB random buffer), so
	// the producer's compression cannot shrink the workload.
	payload := make([]byte, 16<<20)
	for i := range payload {
		payload[i] = byte(rng.IntN(256))
	}
	ctx := context.Background()
	runtime.GC()

	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close()
	var (
		mu   sync.Mutex
		perr error
	)
	start := time.Now()
	for i := range n {
		off := (i * 100) % (len(payload) - 100)
		prod.Produce(ctx, &kgo.Record{Value: payload[off : off+100]}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				perr = err
				mu.Unlock()
			}
		})
	}
	if err := prod.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	tp := throughput{produce: time.Since(start)}
	mu.Lock()
	err = perr
	mu.Unlock()
	if err != nil {
		b.Fatal(err)
	}
	prod.Close()
	runtime.GC()

	cons, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		b.Fatal(err)
	}
	defer cons.Close()
	start = time.Now()
	got := 0
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for got < n {
		fs := cons.PollFetches(cctx)
		if err := fs.Err0(); err != nil {
			b.Fatalf("consume: %v after %d records", err, got)
		}
		got += fs.NumRecords()
	}
	tp.consume = time.Since(start)
	return tp
}

// BenchmarkProduceConsume1M compares our broker, writing to disk, with
// kfake (in memory) on the same workload in the same run:
//
//	go test ./broker -run '^$' -bench ProduceConsume1M -benchtime 1x
//
// Both run twice, alternating (ours, kfake, ours, kfake), each round on a
// fresh topic, and the better round of each counts: the client's runtime
// warms up (heap growth) over the first rounds, and whichever side ran
// first would otherwise pay for it.
//
// Metrics: records/s and MB/s (of record values) for produce and consume
// on each, our/kfake ratios, and our broker's peak RSS (VmHWM, over both
// rounds) in MB. -bench.records changes the count; -bench.inprocess runs
// our broker inside the test binary so -cpuprofile and -memprofile see it
// (RSS is then not reported). By default the broker runs its console and
// metrics and the benchmark loads console pages and /metrics once a
// second; -bench.watch=false loads none, -bench.console=false turns
// http.listener off: the three give the cost of each.
func BenchmarkProduceConsume1M(b *testing.B) {
	n := *benchRecords
	const rounds = 2
	for range b.N {
		var oursAddr string
		var proc *brokertest.Process
		var httpAddr string
		if *benchInProcess {
			bb := brokertest.Start(b, func(c *broker.Config) {
				if !*benchConsole {
					c.HTTPListener = ""
				}
			})
			oursAddr, httpAddr = bb.Addr(), bb.HTTPAddr()
		} else {
			var overrides []string
			if !*benchConsole {
				overrides = append(overrides, "http.listener=")
			}
			proc = brokertest.StartProcess(b, b.TempDir(), overrides...)
			oursAddr, httpAddr = proc.Addr(), proc.HTTPAddr()
		}
		topics := make([]string, rounds)
		for i := range topics {
			topics[i] = fmt.Sprint("bench-", i)
			createTopic(b, oursAddr, topics[i], 1, nil)
		}
		if *benchConsole && httpAddr == "" {
			b.Fatal("the broker reported no console address")
		}
		stopConsole := func() {}
		if *benchWatch {
			stopConsole = watchConsole(b, httpAddr, topics[0])
		}
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topics...))
		if err != nil {
			b.Fatal(err)
		}

		var ours, theirs throughput
		best := func(acc *throughput, t throughput) {
			if acc.produce == 0 || t.produce < acc.produce {
				acc.produce = t.produce
			}
			if acc.consume == 0 || t.consume < acc.consume {
				acc.consume = t.consume
			}
		}
		for i, topic := range topics {
			best(&ours, runProduceConsume(b, oursAddr, topic, n))
			best(&theirs, runProduceConsume(b, c.ListenAddrs()[0], topic, n))
			b.Logf("round %d: ours %v / %v, kfake %v / %v", i, ours.produce, ours.consume, theirs.produce, theirs.consume)
		}
		c.Close()
		stopConsole()

		rssMB := -1.0
		if proc != nil {
			rss, err := proc.PeakRSS()
			if err != nil {
				b.Fatal(err)
			}
			rssMB = float64(rss) / (1 << 20)
			if err := proc.Stop(); err != nil {
				b.Fatal(err)
			}
		}

		rate := func(d time.Duration) float64 { return float64(n) / d.Seconds() }
		mb := func(d time.Duration) float64 { return float64(n) * 100 / (1 << 20) / d.Seconds() }
		b.ReportMetric(rate(ours.produce), "ours-produce-rec/s")
		b.ReportMetric(mb(ours.produce), "ours-produce-MB/s")
		b.ReportMetric(rate(ours.consume), "ours-consume-rec/s")
		b.ReportMetric(mb(ours.consume), "ours-consume-MB/s")
		b.ReportMetric(rate(theirs.produce), "kfake-produce-rec/s")
		b.ReportMetric(mb(theirs.produce), "kfake-produce-MB/s")
		b.ReportMetric(rate(theirs.consume), "kfake-consume-rec/s")
		b.ReportMetric(mb(theirs.consume), "kfake-consume-MB/s")
		b.ReportMetric(rate(ours.produce)/rate(theirs.produce), "produce-ratio")
		b.ReportMetric(rate(ours.consume)/rate(theirs.consume), "consume-ratio")
		if rssMB >= 0 {
			b.ReportMetric(rssMB, "ours-peak-RSS-MB")
		}
		fmt.Printf("produce/consume %d x 100 B: ours %.0f / %.0f rec/s, kfake %.0f / %.0f rec/s, ratio %.2f / %.2f, our peak RSS %.1f MB\n",
			n, rate(ours.produce), rate(ours.consume), rate(theirs.produce), rate(theirs.consume),
			rate(ours.produce)/rate(theirs.produce), rate(ours.consume)/rate(theirs.consume), rssMB)
	}
}

// BenchmarkReplicationRF3 measures what synchronous replication costs:
// the same acks=all workload (BenchmarkProduceConsume1M's, kgo with its
// defaults) into a topic of replication factor 1 and one of replication
// factor 3, with min.insync.replicas 2, on one cluster of three broker
// processes, alternating twice and keeping each side's better round:
//
//	go test ./broker -run '^$' -bench ReplicationRF3 -benchtime 1x
//
// Kafka's own published figure for 3x synchronous replication is about
// half the unreplicated throughput. -bench.inprocess runs the three nodes
// inside the test binary, for -cpuprofile.
func BenchmarkReplicationRF3(b *testing.B) {
	n := *benchRecords
	for range b.N {
		var addr string
		if *benchInProcess {
			addr = brokertest.StartCluster(b, 3).Addrs()[0]
		} else {
			addr = brokertest.StartProcessCluster(b, 3).Nodes[0].Addr()
		}
		var rf1, rf3 throughput
		best := func(acc *throughput, t throughput) {
			if acc.produce == 0 || t.produce < acc.produce {
				acc.produce = t.produce
			}
			if acc.consume == 0 || t.consume < acc.consume {
				acc.consume = t.consume
			}
		}
		for round := range 2 {
			t1, t3 := fmt.Sprint("rf1-", round), fmt.Sprint("rf3-", round)
			createTopicRF(b, addr, t1, 1, map[string]string{})
			createTopicRF(b, addr, t3, 3, map[string]string{"min.insync.replicas": "2"})
			best(&rf1, runProduceConsume(b, addr, t1, n))
			best(&rf3, runProduceConsume(b, addr, t3, n))
			b.Logf("round %d: RF1 %v / %v, RF3 %v / %v", round, rf1.produce, rf1.consume, rf3.produce, rf3.consume)
		}
		rate := func(d time.Duration) float64 { return float64(n) / d.Seconds() }
		b.ReportMetric(rate(rf1.produce), "rf1-produce-rec/s")
		b.ReportMetric(rate(rf3.produce), "rf3-produce-rec/s")
		b.ReportMetric(rate(rf3.produce)/rate(rf1.produce), "rf3/rf1-produce")
		b.ReportMetric(rate(rf1.consume), "rf1-consume-rec/s")
		b.ReportMetric(rate(rf3.consume), "rf3-consume-rec/s")
		fmt.Printf("acks=all %d x 100 B: RF1 %.0f rec/s, RF3 %.0f rec/s, ratio %.2f (consume %.0f / %.0f rec/s)\n",
			n, rate(rf1.produce), rate(rf3.produce), rate(rf3.produce)/rate(rf1.produce), rate(rf1.consume), rate(rf3.consume))
	}
}

// createTopicRF creates a one-partition topic with replication factor rf.
func createTopicRF(t testing.TB, addr, name string, rf int16, configs map[string]string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cfgs := map[string]*string{}
	for k, v := range configs {
		cfgs[k] = &v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, rf, cfgs, name); err != nil {
		t.Fatal(err)
	}
	// Until every broker knows the topic, a producer may be told it
	// does not exist.
	for {
		md, err := kadm.NewClient(cl).Metadata(ctx, name)
		if err == nil && md.Topics[name].Err == nil && len(md.Topics[name].Partitions) == 1 && md.Topics[name].Partitions[0].Leader >= 0 {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("topic %s not ready: %v", name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// watchConsole stands for a person with the console open and Prometheus
// scraping during the benchmark: once a second it loads the overview, the
// topic list and the topic's page, browses its last records and scrapes
// /metrics. It returns a function that stops it and reports how many
// loads failed. addr "" (console off) does nothing.
func watchConsole(b *testing.B, addr, topic string) (stop func()) {
	if addr == "" {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	var loads, failed int
	wg.Add(1)
	go func() {
		defer wg.Done()
		cl := &http.Client{Timeout: 30 * time.Second}
		paths := []string{"/", "/topics", "/topics/" + topic, "/topics/" + topic + "/messages?partition=0&offset=-20", "/groups", "/metrics"}
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			for _, p := range paths {
				loads++
				resp, err := cl.Get("http://" + addr + p)
				if err != nil {
					failed++
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed++
				}
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		if failed > 0 {
			b.Errorf("console: %d of %d page loads failed during the benchmark", failed, loads)
		}
		b.Logf("console: %d page loads during the benchmark", loads)
	}
}
