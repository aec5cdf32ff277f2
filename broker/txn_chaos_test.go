package broker_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/broker/brokertest"
)

const (
	pipelineEnv      = "TRIBUTARY_TXN_PIPELINE" // comma-separated seed brokers
	pipelineIn       = "etl-in"
	pipelineOut      = "etl-out"
	pipelineParts    = 3
	pipelineTxnSize  = 300
	pipelineGroup    = "etl-group"
	pipelineTxnID    = "etl-pipeline"
	pipelineDeadline = 10 * time.Minute
	pipelinePause    = 30 * time.Millisecond
)

// runPipeline is the exactly-once consume-transform-produce loop the
// chaos test runs as its own process: it reads etl-in in a group with
// read_committed, copies each record to the same partition of etl-out
// and commits its offsets in the same transaction, a few hundred records
// at a time, through franz-go's GroupTransactSession. It runs until
// killed. Its exit code is non-zero when it gives up.
func runPipeline() int {
	seeds := strings.Split(os.Getenv(pipelineEnv), ",")
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(seeds...),
		kgo.TransactionalID(pipelineTxnID),
		kgo.TransactionTimeout(10*time.Second),
		kgo.ConsumerGroup(pipelineGroup),
		kgo.ConsumeTopics(pipelineIn),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxPartitionBytes(pipelineTxnSize*40/pipelineParts),
		kgo.RetryTimeout(2*time.Minute),
		kgo.RecordDeliveryTimeout(2*time.Minute),
		kgo.SessionTimeout(3*time.Second),
		kgo.HeartbeatInterval(500*time.Millisecond),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipeline:", err)
		return 2
	}
	defer sess.Close()
	ctx, cancel := context.WithTimeout(context.Background(), pipelineDeadline)
	defer cancel()
	for ctx.Err() == nil {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		fs := sess.PollRecords(pctx, pipelineTxnSize)
		pcancel()
		if fs.NumRecords() == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			fmt.Fprintln(os.Stderr, "pipeline: begin:", err)
			return 3
		}
		var perr atomic.Value
		fs.EachRecord(func(r *kgo.Record) {
			out := &kgo.Record{Topic: pipelineOut, Partition: r.Partition, Key: r.Key, Value: r.Value}
			sess.Produce(ctx, out, func(_ *kgo.Record, err error) {
				if err != nil {
					perr.Store(err)
				}
			})
		})
		commit := kgo.TryCommit
		if perr.Load() != nil {
			commit = kgo.TryAbort
		}
		// End flushes, commits the offsets in the transaction and ends
		// it; on any failure it aborts and the records are read again.
		if _, err := sess.End(ctx, commit); err != nil {
			fmt.Fprintln(os.Stderr, "pipeline: end:", err)
		}
		// A pause between transactions, so that a run lasts long
		// enough for the test's kills to land inside it (unthrottled,
		// a single node copies the input in a few seconds).
		time.Sleep(pipelinePause)
	}
	return 0
}

// pipelineProc is the pipeline as a child process.
type pipelineProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startPipeline(t *testing.T, seeds []string) *pipelineProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), pipelineEnv+"="+strings.Join(seeds, ","))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	require.NoError(t, cmd.Start())
	p := &pipelineProc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	return p
}

func (p *pipelineProc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// txnChaosEvents is how many kills the chaos test deals: 9 in a full
// run, 6 with -short; TRIBUTARY_TXN_CHAOS=<n> for a longer one.
func txnChaosEvents() int {
	if v, err := strconv.Atoi(os.Getenv("TRIBUTARY_TXN_CHAOS")); err == nil && v > 0 {
		return v
	}
	if testing.Short() {
		return 6
	}
	return 9
}

// txnChaosRecords is how many records the pipeline copies: 100,000 in a
// full run, 20,000 with -short (the race-detector pass).
func txnChaosRecords() int {
	if testing.Short() {
		return 20000
	}
	return 100000
}

// TestTxnChaosPipeline copies sequenced records through an exactly-once
// pipeline (its own process, transactions of a few hundred records)
// while the broker is killed with SIGKILL and restarted and while the
// pipeline itself is killed and restarted. The output, read with
// read_committed, must hold every input record exactly once and in
// order, and a read_committed reader running all along must never see
// an aborted or duplicated record. With three nodes, one broker at a
// time is killed.
func TestTxnChaosPipeline(t *testing.T) {
	for _, nodes := range []int{1, 3} {
		t.Run(fmt.Sprintf("nodes=%d", nodes), func(t *testing.T) { txnChaos(t, nodes) })
	}
}

func txnChaos(t *testing.T, nodes int) {
	n := txnChaosRecords()
	// Short group timeouts, so that a killed pipeline's member is
	// replaced in seconds, not after Kafka's 45 s session.
	c := brokertest.StartProcessCluster(t, nodes, "group.initial.rebalance.delay.ms=0", "group.min.session.timeout.ms=1000")
	seeds := c.Addrs()
	rf := int16(min(nodes, 3))
	admCl := clusterClient(t, seeds)
	adm := kadm.NewClient(admCl)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cfg := map[string]*string{}
	if nodes > 1 {
		cfg["min.insync.replicas"] = kadm.StringPtr("2")
	}
	for _, topic := range []string{pipelineIn, pipelineOut} {
		_, err := adm.CreateTopic(ctx, pipelineParts, rf, cfg, topic)
		require.NoError(t, err)
	}

	// The input: per partition, values "p-i" for i = 0, 1, ...
	in := clusterClient(t, seeds, kgo.ProducerLinger(5*time.Millisecond))
	var recs []*kgo.Record
	for i := range n {
		p := int32(i % pipelineParts)
		recs = append(recs, &kgo.Record{Topic: pipelineIn, Partition: p, Value: fmt.Appendf(nil, "%d-%d", p, i/pipelineParts)})
		if len(recs) == 1000 {
			require.NoError(t, in.ProduceSync(ctx, recs...).FirstErr())
			recs = recs[:0]
		}
	}
	require.NoError(t, in.ProduceSync(ctx, recs...).FirstErr())
	perPart := map[int32]int{}
	for i := range n {
		perPart[int32(i%pipelineParts)]++
	}

	// The concurrent read_committed reader: per partition, each value
	// must be the next in sequence; anything else is a duplicate or a
	// record of an aborted transaction.
	var (
		mu       sync.Mutex
		next     = map[int32]int{}
		badRead  []string
		readDone = make(chan struct{})
	)
	reader := clusterClient(t, seeds, kgo.ConsumeTopics(pipelineOut), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	go func() {
		defer close(readDone)
		for ctx.Err() == nil {
			fs := reader.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) {
				mu.Lock()
				defer mu.Unlock()
				want := fmt.Sprintf("%d-%d", r.Partition, next[r.Partition])
				if string(r.Value) != want {
					badRead = append(badRead, fmt.Sprintf("partition %d offset %d: %q, want %q", r.Partition, r.Offset, r.Value, want))
					return
				}
				next[r.Partition]++
			})
			mu.Lock()
			complete := true
			for p, want := range perPart {
				if next[p] < want {
					complete = false
				}
			}
			mu.Unlock()
			if complete || len(badRead) > 0 {
				return
			}
		}
	}()
	// progress is how many records the reader has, and whether it saw
	// a bad one.
	progress := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		s := 0
		for _, v := range next {
			s += v
		}
		return s, len(badRead) > 0
	}

	// Chaos: once the pipeline has made progress since the last blow,
	// kill it or a broker (SIGKILL, then restart), two broker kills to one
	// pipeline kill, until txnChaosEvents blows were dealt; then let it
	// finish. Waiting for progress makes every blow land on a pipeline in
	// the middle of its work (a blow every second or so starves it: a
	// restarted member waits out rejoining before it copies anything).
	//
	// The pipeline's progress is what it committed: the sum of etl-out's
	// last stable offsets (records and markers), which the reader lags
	// behind (it reconnects after a kill).
	var committed int64
	copied := func() int {
		lctx, lcancel := context.WithTimeout(ctx, time.Second)
		defer lcancel()
		offs, err := adm.ListCommittedOffsets(lctx, pipelineOut)
		if err != nil {
			return int(committed)
		}
		sum := int64(0)
		offs.Each(func(o kadm.ListedOffset) {
			if o.Err == nil {
				sum += o.Offset
			}
		})
		committed = max(committed, sum)
		return int(committed)
	}
	pipe := startPipeline(t, seeds)
	defer func() { pipe.kill() }()
	kills, pipeKills := 0, 0
	start := time.Now()
	last := copied()
	events := txnChaosEvents()
	step := max(pipelineTxnSize, n/(events+2)) // blows spread over the run
	for round := 0; round < events; round++ {
		deadline := time.Now().Add(90 * time.Second)
		for {
			got, bad := copied(), false
			if _, bad = progress(); got >= n || bad || got >= last+step {
				break
			}
			require.True(t, time.Now().Before(deadline), "no progress for 90s after blow %d (%d of %d copied)", round, got, n)
			select {
			case <-readDone:
			case <-time.After(50 * time.Millisecond):
			}
		}
		if _, bad := progress(); copied() >= n || bad {
			break
		}
		// Somewhere inside the next transactions.
		time.Sleep(time.Duration(rand.IntN(500)) * time.Millisecond)
		switch round % 3 {
		case 0, 1:
			nd := c.Nodes[(round/3+round)%len(c.Nodes)]
			nd.Kill()
			kills++
			nd.Start()
		case 2:
			pipe.kill()
			pipeKills++
			pipe = startPipeline(t, seeds)
		}
		last = copied()
		t.Logf("blow %d: about %d of %d copied", round, last, n)
	}
	select {
	case <-readDone:
	case <-ctx.Done():
	}
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, badRead, "the read_committed reader saw records out of sequence")
	for p, want := range perPart {
		require.Equal(t, want, next[p], "partition %d: copied %d of %d", p, next[p], want)
	}
	require.GreaterOrEqual(t, kills, 2, "too few broker kills landed during the run")
	require.GreaterOrEqual(t, pipeKills, 1, "no pipeline kill landed during the run")
	t.Logf("copied %d records exactly once through %d broker kills and %d pipeline kills in %v", n, kills, pipeKills, time.Since(start).Round(time.Millisecond))

	// A fresh read_committed read of the whole output agrees.
	out := clusterClient(t, seeds, kgo.ConsumeTopics(pipelineOut), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[int32]int{}
	total := 0
	for total < n {
		fs := out.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "re-read %d of %d", total, n)
		fs.EachRecord(func(r *kgo.Record) {
			require.Equal(t, strconv.Itoa(int(r.Partition))+"-"+strconv.Itoa(seen[r.Partition]), string(r.Value))
			seen[r.Partition]++
			total++
		})
	}
}
