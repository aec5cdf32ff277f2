package broker_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/brokertest"
	"github.com/tributary/tributary/partitioner"
	"github.com/tributary/tributary/producer"
)

// chaosDuration is how long the chaos test keeps killing brokers: a short
// run in every `go test`, TRIBUTARY_CHAOS=<duration> for a long one.
func chaosDuration(t *testing.T) time.Duration {
	if v := os.Getenv("TRIBUTARY_CHAOS"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(t, err, "TRIBUTARY_CHAOS")
		return d
	}
	if testing.Short() {
		return 8 * time.Second
	}
	return 20 * time.Second
}

// seqLog records what one producer had acknowledged, per partition.
type seqLog struct {
	mu    sync.Mutex
	acked map[int32]map[int]bool
	n     atomic.Int64
}

// isrString shows each partition's leader, epoch and ISR.
func isrString(pd kadm.PartitionDetails) string {
	var b strings.Builder
	for _, p := range pd.Sorted() {
		fmt.Fprintf(&b, "[p%d leader %d epoch %d isr %v] ", p.Partition, p.Leader, p.LeaderEpoch, p.ISR)
	}
	return b.String()
}

func (s *seqLog) ack(p int32, seq int) {
	s.mu.Lock()
	if s.acked == nil {
		s.acked = map[int32]map[int]bool{}
	}
	if s.acked[p] == nil {
		s.acked[p] = map[int]bool{}
	}
	s.acked[p][seq] = true
	s.mu.Unlock()
	s.n.Add(1)
}

// TestChaosKillAndPartitionBrokers runs three broker processes with a
// topic of replication factor 3 and min.insync.replicas 2, and produces
// with acks=all and idempotence from franz-go and from our producer while
// one broker at a time is killed with SIGKILL and restarted, or paused
// (SIGSTOP, a broker cut off the network) and resumed, over and over.
// Then every acknowledged record must be read back exactly once and in
// order per partition, and a consumer group that committed through it
// must find its last acknowledged commit.
func TestChaosKillAndPartitionBrokers(t *testing.T) {
	dur := chaosDuration(t)
	c := brokertest.StartProcessCluster(t, 3)
	const topic, partitions = "chaos", 3
	admCl := clusterClient(t, c.Addrs())
	adm := kadm.NewClient(admCl)
	ctx, cancel := context.WithTimeout(context.Background(), dur+3*time.Minute)
	defer cancel()
	_, err := adm.CreateTopic(ctx, partitions, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, topic)
	require.NoError(t, err)
	describe(t, adm, topic)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var kgoLog, ourLog seqLog
	var produceErrs atomic.Int64

	// produceLoop sends one record per partition per round, "name-p-seq",
	// until stop, and logs what was acknowledged; send produces one
	// round and reports, per partition, whether it was acknowledged.
	produceLoop := func(name string, lg *seqLog, send func(vals [][]byte) []error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				vals := make([][]byte, partitions)
				for p := range vals {
					vals[p] = []byte(fmt.Sprintf("%s-%d-%d", name, p, seq))
				}
				for p, err := range send(vals) {
					if err != nil {
						produceErrs.Add(1)
						continue
					}
					lg.ack(int32(p), seq)
				}
			}
		}()
	}

	// franz-go: acks=all, idempotent (its defaults).
	kcl := clusterClient(t, c.Addrs(), kgo.RecordDeliveryTimeout(2*time.Minute))
	produceLoop("kgo", &kgoLog, func(vals [][]byte) []error {
		recs := make([]*kgo.Record, len(vals))
		for p, v := range vals {
			recs[p] = &kgo.Record{Topic: topic, Partition: int32(p), Value: v}
		}
		errs := make([]error, len(vals))
		for _, r := range kcl.ProduceSync(ctx, recs...) { // in completion order
			errs[r.Record.Partition] = r.Err
		}
		return errs
	})

	// Ours: acks=all, idempotent by default.
	ours, err := producer.New(producer.SeedBrokers(c.Addrs()...), producer.Partitioner(partitioner.Manual()),
		producer.DeliveryTimeout(2*time.Minute), producer.Linger(2*time.Millisecond))
	require.NoError(t, err)
	produceLoop("ours", &ourLog, func(vals [][]byte) []error {
		recs := make([]*tributary.Record, len(vals))
		for p, v := range vals {
			recs[p] = &tributary.Record{Topic: topic, Partition: int32(p), Value: v}
		}
		errs := make([]error, len(vals))
		for i, r := range ours.ProduceSync(ctx, recs...) { // in record order
			errs[i] = r.Err
		}
		return errs
	})

	// A consumer group reading through it, committing as it goes.
	var lastCommitted sync.Map // partition → offset acknowledged by the coordinator
	grp := clusterClient(t, c.Addrs(), kgo.ConsumerGroup("chaos-group"), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			fs := grp.PollFetches(pctx)
			pcancel()
			if fs.NumRecords() == 0 {
				continue
			}
			cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
			grp.CommitRecords(cctx, fs.Records()...)
			ccancel()
			// What the coordinator now says is committed is what must
			// never go backwards.
			cur := grp.CommittedOffsets()
			for p, o := range cur[topic] {
				lastCommitted.Store(p, o.Offset)
			}
		}
	}()

	// Time without a reachable leader, per partition: sampled every
	// 100 ms from the metadata; a leader that is down or paused counts
	// as none, since no client can reach it.
	var down sync.Map           // node id → true while killed or paused
	var leaderless atomic.Int64 // partition-samples without a leader
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			mctx, mcancel := context.WithTimeout(ctx, 100*time.Millisecond)
			md, err := adm.Metadata(mctx, topic)
			mcancel()
			if err != nil || md.Topics[topic].Err != nil {
				continue
			}
			for _, p := range md.Topics[topic].Partitions {
				if _, isDown := down.Load(p.Leader); p.Leader < 0 || isDown {
					leaderless.Add(1)
				}
			}
		}
	}()

	// The chaos: one broker at a time.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	end := time.Now().Add(dur)
	kills, pauses := 0, 0
	for time.Now().Before(end) {
		nd := c.Nodes[rng.IntN(len(c.Nodes))]
		var blow string
		if rng.IntN(3) == 0 {
			p := nd.Process()
			down.Store(nd.ID, true)
			blow = fmt.Sprintf("pause of node %d", nd.ID)
			t.Logf("chaos: %s at %s", blow, time.Now().Format("15:04:05.000"))
			require.NoError(t, p.Pause())
			time.Sleep(time.Duration(1500+rng.IntN(2500)) * time.Millisecond)
			require.NoError(t, p.Resume())
			down.Delete(nd.ID)
			pauses++
		} else {
			down.Store(nd.ID, true)
			blow = fmt.Sprintf("kill of node %d", nd.ID)
			t.Logf("chaos: %s at %s", blow, time.Now().Format("15:04:05.000"))
			nd.Kill()
			time.Sleep(time.Duration(200+rng.IntN(1500)) * time.Millisecond)
			nd.Start()
			down.Delete(nd.ID)
			kills++
		}
		t.Logf("chaos: node %d back at %s", nd.ID, time.Now().Format("15:04:05.000"))
		// Let the node rejoin every ISR before the next blow, so one
		// broker at a time is down, as the test promises. The last
		// state seen goes into the failure, to say which partition
		// stayed short.
		var last kadm.PartitionDetails
		waitFor(t, 60*time.Second, "full ISRs", func() bool {
			last = describe(t, adm, topic)
			return fullISR(last, 3)
		}, func() string { return fmt.Sprintf("after the %s: %s", blow, isrString(last)) })
	}
	close(stop)
	wg.Wait()
	require.NoError(t, ours.Close(ctx))

	// Read everything back.
	var ends kadm.ListedOffsets
	waitFor(t, 30*time.Second, "the end offsets", func() bool {
		ends, err = adm.ListEndOffsets(ctx, topic)
		return err == nil && ends.Error() == nil
	})
	rd := clusterClient(t, c.Addrs(), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]map[int32][]int{"kgo": {}, "ours": {}}
	read := map[int32]int64{}
	for {
		done := true
		for p := int32(0); p < partitions; p++ {
			if read[p] < ends[topic][p].Offset {
				done = false
			}
		}
		if done {
			break
		}
		fs := rd.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "reading back")
		fs.EachRecord(func(r *kgo.Record) {
			read[r.Partition] = r.Offset + 1
			parts := strings.Split(string(r.Value), "-")
			seq, _ := strconv.Atoi(parts[2])
			seen[parts[0]][r.Partition] = append(seen[parts[0]][r.Partition], seq)
		})
	}
	var lost, dups, acked int
	for name, lg := range map[string]*seqLog{"kgo": &kgoLog, "ours": &ourLog} {
		for p := int32(0); p < partitions; p++ {
			got := seen[name][p]
			count := map[int]int{}
			for i, s := range got {
				count[s]++
				if i > 0 && s <= got[i-1] {
					t.Errorf("%s partition %d: seq %d after %d: out of order or duplicated", name, p, s, got[i-1])
				}
			}
			for s, n := range count {
				if n > 1 {
					dups += n - 1
					t.Errorf("%s partition %d: seq %d stored %d times", name, p, s, n)
				}
			}
			for s := range lg.acked[p] {
				acked++
				if count[s] == 0 {
					lost++
					t.Errorf("%s partition %d: acknowledged seq %d is missing", name, p, s)
				}
			}
		}
	}
	// The group's committed offsets never went back.
	// (A connection the last restart cut may fail one call: ask again.)
	var gofs kadm.OffsetResponses
	waitFor(t, 30*time.Second, "the group's committed offsets", func() bool {
		gofs, err = adm.FetchOffsets(ctx, "chaos-group")
		return err == nil && gofs.Error() == nil
	})
	lastCommitted.Range(func(k, v any) bool {
		p, want := k.(int32), v.(int64)
		o, ok := gofs.Lookup(topic, p)
		require.True(t, ok, "partition %d has no committed offset", p)
		require.GreaterOrEqual(t, o.At, want, "partition %d: committed offset went back", p)
		return true
	})
	elections := 0
	for _, p := range describe(t, adm, topic) {
		elections += int(p.LeaderEpoch) // every leader change bumps it once
	}
	t.Logf("chaos for %v: %d kills, %d pauses; acknowledged %d records (kgo %d, ours %d), lost %d, duplicated %d, produce errors %d; %d leader elections, %.1f s without a reachable leader (summed over %d partitions)",
		dur, kills, pauses, acked, kgoLog.n.Load(), ourLog.n.Load(), lost, dups, produceErrs.Load(),
		elections, float64(leaderless.Load())/10, partitions)
	require.Positive(t, kgoLog.n.Load())
	require.Positive(t, ourLog.n.Load())
}
