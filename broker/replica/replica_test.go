package replica

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/storage"
	"github.com/tributary/tributary/internal/batch/batchtest"
)

func TestConfigValidation(t *testing.T) {
	_, err := New(DefaultConfig(1))
	require.Error(t, err, "Transport and AlterPartition are required")
	cfg := DefaultConfig(1)
	cfg.Transport = &transport{}
	cfg.AlterPartition = func(context.Context, AlterPartitionRequest) (State, error) { return State{}, nil }
	cfg.FetchBackoff = 0
	_, err = New(cfg)
	require.Error(t, err, "zero durations are refused, not defaulted")
	cfg.FetchBackoff = time.Second
	m, err := New(cfg)
	require.NoError(t, err)
	m.Close()
	m.Close() // idempotent
}

// Appends on the leader reach both followers; the HW is the smallest log
// end over the ISR, and acks=all completes only once every ISR follower
// has the records.
func TestReplicationHWAndAcksAll(t *testing.T) {
	c := newCluster(t, 3, nil)
	leader := c.node(1)

	var end int64
	for i := range 5 {
		r, err := c.produce(1, fmt.Sprintf("a%d", i), 10, -1, 2)
		require.NoError(t, err)
		end = r.LastOffset + 1
	}
	eventually(t, "HW covers the first appends", func() bool { return leader.p.HighWatermark() == end })
	done, err := leader.p.AckedAfterAppend(end, 2)
	require.True(t, done)
	require.NoError(t, err)
	c.requireIdentical(1)

	// Node 3 stops fetching: node 2 gets the new records, the HW stays
	// at node 3's log end, and acks=all waits.
	c.setCut(3, true)
	time.Sleep(30 * time.Millisecond) // let an in-flight fetch of node 3 finish
	n3 := c.node(3).log.LogEndOffset()
	r, err := c.produce(1, "b", 7, -1, 2)
	require.NoError(t, err)
	end = r.LastOffset + 1
	eventually(t, "node 2 has the records", func() bool { return c.node(2).log.LogEndOffset() == end })
	for range 3 { // several fetch rounds of node 2 later, still not committed
		before := c.fetchCount(2)
		eventually(t, "node 2 fetches again", func() bool { return c.fetchCount(2) > before })
		done, err := leader.p.AckedAfterAppend(end, 2)
		require.False(t, done)
		require.NoError(t, err)
		require.Equal(t, n3, leader.p.HighWatermark(), "the HW never passes an ISR member")
		require.LessOrEqual(t, c.node(2).log.HighWatermark(), n3, "followers learn only the leader's HW")
	}

	c.setCut(3, false)
	eventually(t, "acks=all completes", func() bool {
		done, err := leader.p.AckedAfterAppend(end, 2)
		require.NoError(t, err)
		return done
	})
	require.GreaterOrEqual(t, c.node(3).log.LogEndOffset(), end, "committed only with node 3 holding it")
	require.GreaterOrEqual(t, c.node(2).log.LogEndOffset(), end)
	eventually(t, "followers learn the HW", func() bool {
		return c.node(2).log.HighWatermark() == end && c.node(3).log.HighWatermark() == end
	})
	c.requireIdentical(1)
	require.Equal(t, []int32{1, 2, 3}, leader.p.ISR())
}

// A follower that stops fetching leaves the ISR after
// replica.lag.time.max.ms; restarted, it catches up and comes back.
func TestISRShrinkAndExpand(t *testing.T) {
	c := newCluster(t, 3, nil)
	leader := c.node(1)
	r, err := c.produce(1, "a", 5, -1, 3)
	require.NoError(t, err)
	eventually(t, "committed", func() bool { return leader.p.HighWatermark() == r.LastOffset+1 })

	// Node 3 dies. Until the lag time passes it stays in the ISR, and
	// acks=all with min.insync.replicas=3 waits.
	n3dir := c.stop(3).dir
	r, err = c.produce(1, "b", 5, -1, 3)
	require.NoError(t, err)
	end := r.LastOffset + 1
	c.clk.Add(9 * time.Second)
	time.Sleep(20 * time.Millisecond) // several ISR checks
	require.Equal(t, []int32{1, 2, 3}, c.state().ISR)
	done, _ := leader.p.AckedAfterAppend(end, 3)
	require.False(t, done)

	c.clk.Add(2 * time.Second)
	eventually(t, "ISR shrinks", func() bool { return slices.Equal(leader.p.ISR(), []int32{1, 2}) })
	require.Equal(t, []int32{1, 2}, c.state().ISR, "through the controller")
	// The shrink moved the HW (node 2 has everything) and the parked
	// acks=all produce learns the ISR is now too small.
	eventually(t, "HW moves without node 3", func() bool { return leader.p.HighWatermark() == end })
	done, err = leader.p.AckedAfterAppend(end, 3)
	require.True(t, done)
	require.ErrorIs(t, err, tributary.ErrNotEnoughReplicasAfterAppend)
	done, err = leader.p.AckedAfterAppend(end, 2)
	require.True(t, done)
	require.NoError(t, err)

	// min.insync.replicas: acks=all is refused below it, acks=1 is not.
	_, err = c.produce(1, "c", 1, -1, 3)
	require.ErrorIs(t, err, tributary.ErrNotEnoughReplicas)
	require.ErrorIs(t, leader.p.CheckProduce(-1, 3), tributary.ErrNotEnoughReplicas)
	require.NoError(t, leader.p.CheckProduce(1, 3))
	r, err = c.produce(1, "d", 4, 1, 3)
	require.NoError(t, err)
	end = r.LastOffset + 1

	// Node 3 comes back, catches up and rejoins the ISR.
	hwBefore := leader.p.HighWatermark()
	nd := c.start(3, n3dir)
	nd.m.Apply(nd.p, c.state())
	eventually(t, "ISR expands", func() bool { return slices.Equal(leader.p.ISR(), []int32{1, 2, 3}) })
	require.GreaterOrEqual(t, leader.p.HighWatermark(), hwBefore, "the HW never goes backwards")
	c.requireIdentical(1)
	eventually(t, "all committed", func() bool { return leader.p.HighWatermark() == end })
	_, err = c.produce(1, "e", 1, -1, 3)
	require.NoError(t, err)
}

// The old leader wrote records nobody replicated; after a new leader
// takes over and it rejoins as follower, OffsetForLeaderEpoch truncation
// makes every log identical and nothing below the old HW is lost.
func TestLeaderChangeTruncatesDivergentTail(t *testing.T) {
	c := newCluster(t, 3, nil)
	var want []string
	for i := range 4 {
		tag := fmt.Sprintf("c%d", i)
		r, err := c.produce(1, tag, 3, -1, 2)
		require.NoError(t, err)
		for j := range 3 {
			want = append(want, fmt.Sprintf("%s-%d", tag, j))
		}
		end := r.LastOffset + 1
		eventually(t, "committed", func() bool { done, _ := c.node(1).p.AckedAfterAppend(end, 2); return done })
	}
	committed := c.node(1).p.HighWatermark()
	require.EqualValues(t, 12, committed)
	c.requireIdentical(1)

	// Node 1 is cut off and keeps taking acks=1 writes no one sees.
	c.setCut(1, true)
	time.Sleep(30 * time.Millisecond)
	for i := range 3 {
		_, err := c.produce(1, fmt.Sprintf("lost%d", i), 2, 1, 1)
		require.NoError(t, err)
	}
	require.EqualValues(t, 18, c.node(1).log.LogEndOffset())

	// The controller moves leadership to node 2 with the ISR it has.
	c.elect(2, 2, 3)
	require.True(t, c.node(2).p.IsLeader())
	r, err := c.produce(2, "new", 2, -1, 2)
	require.NoError(t, err)
	want = append(want, "new-0", "new-1")
	end := r.LastOffset + 1
	eventually(t, "new leader commits", func() bool { done, _ := c.node(2).p.AckedAfterAppend(end, 2); return done })

	// Node 1 heals and learns the new state.
	c.setCut(1, false)
	require.ErrorIs(t, c.node(1).p.CheckProduce(1, 1), nil, "still thinks it leads until told")
	c.propagate()
	require.False(t, c.node(1).p.IsLeader())
	require.ErrorIs(t, c.node(1).p.CheckProduce(1, 1), tributary.ErrNotLeaderOrFollower)
	c.requireIdentical(2)
	require.Equal(t, want, values(t, rawLog(t, c.node(1).log)), "the unreplicated tail is gone, everything committed stays")
	eventually(t, "node 1 rejoins the ISR", func() bool { return slices.Equal(c.node(2).p.ISR(), []int32{1, 2, 3}) })
	require.GreaterOrEqual(t, c.node(2).p.HighWatermark(), committed)
}

// Two failovers in a row (KAFKA-6361, KIP-279): the follower holds an
// epoch the leader never saw, and the leader answers with an epoch the
// follower never saw, so truncation takes two OffsetForLeaderEpoch rounds.
func TestFastDoubleFailover(t *testing.T) {
	c := newCluster(t, 3, nil)
	_, err := c.produce(1, "base", 4, -1, 2) // 0..3, epoch 0
	require.NoError(t, err)
	c.requireIdentical(1)

	// Epoch 1: node 3 leads alone and writes 4..5.
	c.setCut(1, true)
	c.setCut(2, true)
	c.elect(3, 3)
	_, err = c.produce(3, "e1", 2, 1, 1)
	require.NoError(t, err)
	// Epoch 2: node 2 leads alone and writes 4..5 too.
	c.setCut(3, true)
	c.setCut(2, false)
	c.elect(2, 2)
	_, err = c.produce(2, "e2", 2, 1, 1)
	require.NoError(t, err)
	// Epoch 3: node 3 leads again and writes 6..8.
	c.setCut(2, true)
	c.setCut(3, false)
	c.elect(3, 3)
	_, err = c.produce(3, "e3", 3, 1, 1)
	require.NoError(t, err)
	require.Equal(t, []storage.EpochEntry{{Epoch: 0, StartOffset: 0}, {Epoch: 2, StartOffset: 4}}, c.node(2).log.Epochs())
	require.Equal(t, []storage.EpochEntry{{Epoch: 0, StartOffset: 0}, {Epoch: 1, StartOffset: 4}, {Epoch: 3, StartOffset: 6}},
		c.node(3).log.Epochs())

	// Everyone heals and follows node 3. Node 2 asks for epoch 2; node
	// 3 answers epoch 1 ending at 6; node 2 has no epoch 1, so it cuts
	// where its epoch 0 ends (4) and asks again.
	before := c.ofleCount(2)
	c.setCut(1, false)
	c.setCut(2, false)
	c.propagate()
	c.requireIdentical(3)
	require.GreaterOrEqual(t, c.ofleCount(2)-before, int64(2), "two rounds")
	require.Equal(t, []string{"base-0", "base-1", "base-2", "base-3", "e1-0", "e1-1", "e3-0", "e3-1", "e3-2"},
		values(t, rawLog(t, c.node(2).log)))
}

// A follower whose log ends below the leader's log start starts over at
// it; one whose log start is mid-batch on the leader restarts at the
// batch.
func TestFollowerOutOfRange(t *testing.T) {
	c := newCluster(t, 2, nil)
	r, err := c.produce(1, "a", 5, -1, 1) // 0..4
	require.NoError(t, err)
	c.requireIdentical(1)
	dir2 := c.stop(2).dir

	// Node 2 gone: the leader goes on, the ISR shrinks (a follower at
	// the leader's log end counts as caught up however long it is
	// silent, as in Kafka, so the shrink needs the new records first),
	// and the leader deletes records below 12, inside batch 10..14.
	for i := range 3 {
		r, err = c.produce(1, fmt.Sprintf("b%d", i), 5, 1, 1) // 5..19
		require.NoError(t, err)
	}
	c.clk.Add(11 * time.Second)
	eventually(t, "ISR shrinks", func() bool { return slices.Equal(c.node(1).p.ISR(), []int32{1}) })
	require.EqualValues(t, 20, c.node(1).p.HighWatermark())
	require.NoError(t, c.node(1).log.DeleteRecordsBefore(12))

	nd := c.start(2, dir2)
	nd.m.Apply(nd.p, c.state())
	eventually(t, "node 2 catches up", func() bool { return nd.log.LogEndOffset() == 20 })
	raw := rawLog(t, nd.log)
	require.Equal(t, []string{"b1-0", "b1-1", "b1-2", "b1-3", "b1-4", "b2-0", "b2-1", "b2-2", "b2-3", "b2-4"}, values(t, raw))
	eventually(t, "node 2 follows the leader's log start", func() bool { return nd.log.LogStartOffset() == 12 })
	eventually(t, "ISR expands", func() bool { return slices.Equal(c.node(1).p.ISR(), []int32{1, 2}) })
	_ = r
}

// KIP-320 and leadership checks on the leader side.
func TestLeaderEpochValidation(t *testing.T) {
	c := newCluster(t, 2, nil)
	c.elect(1, 1, 2) // epoch 1
	p := c.node(1).p
	require.NoError(t, p.ValidateLeaderEpoch(-1))
	require.NoError(t, p.ValidateLeaderEpoch(1))
	require.ErrorIs(t, p.ValidateLeaderEpoch(0), tributary.ErrFencedLeaderEpoch)
	require.ErrorIs(t, p.ValidateLeaderEpoch(2), tributary.ErrUnknownLeaderEpoch)
	require.ErrorIs(t, c.node(2).p.ValidateLeaderEpoch(1), tributary.ErrNotLeaderOrFollower)
	_, err := p.FollowerFetch(2, 0, 0, -1)
	require.ErrorIs(t, err, tributary.ErrFencedLeaderEpoch)
	_, err = p.FollowerFetch(7, 0, 1, -1)
	require.ErrorIs(t, err, tributary.ErrNotLeaderOrFollower, "not a replica")
	_, err = p.FollowerFetch(2, 99, 1, -1)
	require.ErrorIs(t, err, tributary.ErrOffsetOutOfRange)
	_, err = c.node(2).p.EndOffsetForEpoch(1, 0)
	require.ErrorIs(t, err, tributary.ErrNotLeaderOrFollower)

	_, err = c.produce(1, "x", 3, -1, 1) // 0..2 in epoch 1
	require.NoError(t, err)
	eo, err := p.EndOffsetForEpoch(1, 1)
	require.NoError(t, err)
	require.Equal(t, EpochEndOffset{Epoch: 1, EndOffset: 3}, eo)

	// A follower whose last fetched epoch is not the leader's at its
	// offset is told where it diverges, and nothing is recorded.
	c.elect(1, 1, 2) // epoch 2 starts at 3
	div, err := p.FollowerFetch(2, 3, 2, 1)
	require.NoError(t, err)
	require.Nil(t, div, "epoch 1 ends at 3 here too")
	div, err = p.FollowerFetch(2, 3, 2, 0) // epoch 0 has no batches; its end is epoch 1's start
	require.NoError(t, err)
	require.NotNil(t, div)
	_, err = c.produce(1, "y", 2, -1, 1)
	require.NoError(t, err)
	div, err = p.FollowerFetch(2, 5, 2, 1)
	require.NoError(t, err)
	require.Equal(t, &EpochEndOffset{Epoch: 1, EndOffset: 3}, div, "epoch 1 ended at 3 on the leader")
}

// A refused AlterPartition is not repeated until the next metadata
// update; an in-flight one is never doubled.
func TestAlterPartitionRefusedWaitsForApply(t *testing.T) {
	c := newCluster(t, 3, nil)
	leader := c.node(1)
	c.stop(3)
	_, err := c.produce(1, "a", 1, 1, 1)
	require.NoError(t, err)
	// The controller moved on (a partition epoch the leader has not
	// seen): the shrink is refused with INVALID_UPDATE_VERSION.
	c.mu.Lock()
	c.sts[0].PartitionEpoch += 5
	c.mu.Unlock()
	c.clk.Add(11 * time.Second)
	eventually(t, "an AlterPartition is sent", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.alters) > 0 })
	time.Sleep(50 * time.Millisecond) // many ISR checks
	c.mu.Lock()
	n := len(c.alters)
	c.mu.Unlock()
	require.Equal(t, 1, n, "refused once, not retried before an Apply")
	require.Equal(t, []int32{1, 2, 3}, leader.p.ISR())

	c.propagate() // the metadata update
	eventually(t, "ISR shrinks after the update", func() bool { return slices.Equal(leader.p.ISR(), []int32{1, 2}) })
}

// A refusal that arrives after the metadata update it refers to must not
// hold the partition: the update was already applied, so no further one
// is coming, and holding would freeze the ISR (here: the shrink of a dead
// follower) until something unrelated moved the partition. Kafka ignores
// an AlterPartition answer for a state it has replaced.
func TestAlterPartitionRefusalAfterItsApplyNotHeld(t *testing.T) {
	var raced atomic.Bool
	var c *cluster
	c = newCluster(t, 3, func(cfg *Config) {
		id := cfg.NodeID
		cfg.AlterPartition = func(ctx context.Context, req AlterPartitionRequest) (State, error) {
			if id == 1 && raced.CompareAndSwap(false, true) {
				// The controller changed the partition meanwhile, and
				// that change reaches the leader before the refusal.
				c.mu.Lock()
				c.sts[0].PartitionEpoch++
				c.mu.Unlock()
				c.propagate()
				return State{}, tributary.ErrInvalidUpdateVersion
			}
			return c.alterPartition(id, req)
		}
	})
	leader := c.node(1)
	c.stop(3)
	_, err := c.produce(1, "a", 1, 1, 1)
	require.NoError(t, err)
	c.clk.Add(11 * time.Second)
	eventually(t, "the ISR shrinks after the stale refusal", func() bool {
		return slices.Equal(leader.p.ISR(), []int32{1, 2})
	})
	require.True(t, raced.Load())
}

// A replica refused as a new ISR member because it is still fenced
// (INELIGIBLE_REPLICA) joins once the controller unfences it, with no
// partition change in between to trigger an Apply: the leader tries
// again on its own, as Kafka's does on the follower's next fetch.
func TestAlterPartitionIneligibleRetried(t *testing.T) {
	c := newCluster(t, 3, nil)
	leader := c.node(1)
	n3 := c.stop(3)
	_, err := c.produce(1, "a", 1, 1, 1) // node 3 falls behind
	require.NoError(t, err)
	c.clk.Add(11 * time.Second)
	eventually(t, "ISR shrinks", func() bool { return slices.Equal(leader.p.ISR(), []int32{1, 2}) })

	c.mu.Lock()
	c.fenced[3] = true
	refusedFrom := len(c.alters)
	c.mu.Unlock()
	nd := c.start(3, n3.dir)
	nd.m.Apply(nd.p, c.state())
	eventually(t, "the expansion is refused twice", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.alters) >= refusedFrom+2
	})
	require.Equal(t, []int32{1, 2}, leader.p.ISR())

	c.mu.Lock()
	c.fenced[3] = false // unfenced: no partition state changes
	c.mu.Unlock()
	eventually(t, "ISR expands without an Apply", func() bool { return slices.Equal(leader.p.ISR(), []int32{1, 2, 3}) })
}

// Partitions stop cleanly: after Remove no fetch touches the log, and
// Close leaves no goroutine behind (the race detector and Cleanup catch
// stragglers writing to closed logs).
func TestRemoveStopsFetching(t *testing.T) {
	c := newCluster(t, 2, nil)
	_, err := c.produce(1, "a", 3, -1, 1)
	require.NoError(t, err)
	c.requireIdentical(1)
	nd := c.node(2)
	nd.m.Remove(nd.p)
	before := c.fetchCount(2)
	_, err = c.produce(1, "b", 3, 1, 1)
	require.NoError(t, err)
	time.Sleep(50 * time.Millisecond)
	// A request built before Remove may still go out (its answer is
	// dropped), but the fetcher stops after it.
	require.LessOrEqual(t, c.fetchCount(2), before+1)
	require.EqualValues(t, 3, nd.log.LogEndOffset())
	nd.m.mu.Lock()
	require.Empty(t, nd.m.mu.fetchers)
	nd.m.mu.Unlock()
}

// A restarted follower keeps its HW from the checkpoint instead of
// exposing its whole log, and its epochs from the epoch cache.
func TestRestartKeepsHWAndEpochs(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.elect(1, 1, 2, 3)
	r, err := c.produce(1, "a", 4, -1, 3)
	require.NoError(t, err)
	c.requireIdentical(1)
	eventually(t, "node 2 knows the HW", func() bool { return c.node(2).log.HighWatermark() == r.LastOffset+1 })
	// Node 3 is cut; node 2 gets more records, uncommitted.
	c.setCut(3, true)
	time.Sleep(30 * time.Millisecond)
	_, err = c.produce(1, "b", 4, 1, 1)
	require.NoError(t, err)
	eventually(t, "node 2 has them", func() bool { return c.node(2).log.LogEndOffset() == 8 })
	nd := c.stop(2)
	nd = c.start(2, nd.dir)
	require.EqualValues(t, 8, nd.log.LogEndOffset())
	require.EqualValues(t, 4, nd.log.HighWatermark(), "not the log end: 4..7 are uncommitted")
	require.Equal(t, c.node(1).log.Epochs(), nd.log.Epochs())
	nd.m.Apply(nd.p, c.state())
	c.setCut(3, false)
	c.requireIdentical(1)
}

// Two partitions led by different nodes, concurrent acks=all producers
// on both, and a leader change in the middle: every acknowledged record
// is on every replica exactly once, in order.
func TestConcurrentProduceAcrossLeaders(t *testing.T) {
	c := newClusterParts(t, 3, []int32{1, 2}, nil)
	type acked struct {
		part int
		tag  string
	}
	var mu sync.Mutex
	var acks []acked
	produce := func(part int, worker int, stop <-chan struct{}) {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			st := c.stateOf(part)
			tag := fmt.Sprintf("p%d-w%d-%d", part, worker, i)
			nd := c.node(st.Leader)
			if nd == nil {
				continue
			}
			r, err := c.producePart(st.Leader, part, tag, 3, -1, 2)
			if err != nil {
				time.Sleep(time.Millisecond) // not leader any more, or ISR too small
				continue
			}
			end := r.LastOffset + 1
			p := nd.parts[part]
			deadline := time.Now().Add(10 * time.Second)
			for {
				done, err := p.AckedAfterAppend(end, 2)
				if done {
					if err == nil {
						mu.Lock()
						acks = append(acks, acked{part, tag})
						mu.Unlock()
					}
					break
				}
				if time.Now().After(deadline) {
					break // a timed-out produce is not acknowledged
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for part := range 2 {
		for w := range 2 {
			wg.Add(1)
			go func() { defer wg.Done(); produce(part, w, stop) }()
		}
	}
	time.Sleep(100 * time.Millisecond)
	c.electPart(0, 3, 1, 2, 3) // leadership of partition 0 moves
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()

	c.requireIdenticalPart(0, 3)
	c.requireIdenticalPart(1, 2)
	for part, leader := range []int32{3, 2} {
		got := values(t, rawLog(t, c.node(leader).logs[part]))
		seen := map[string]int{}
		for _, v := range got {
			seen[v]++
		}
		n := 0
		for _, a := range acks {
			if a.part != part {
				continue
			}
			n++
			for j := range 3 {
				require.Equal(t, 1, seen[fmt.Sprintf("%s-%d", a.tag, j)], "acked record %s-%d", a.tag, j)
			}
		}
		require.NotZero(t, n, "partition %d acknowledged nothing", part)
		t.Logf("partition %d: %d acked batches, %d records stored", part, n, len(got))
	}
}

// A follower that has not heard of the leader's new epoch is fenced
// (FENCED_LEADER_EPOCH) and one that heard of an epoch the leader has not
// is told UNKNOWN_LEADER_EPOCH; both back off, fetch nothing, and
// resume once the metadata reaches the lagging side.
func TestEpochFencingBacksOff(t *testing.T) {
	c := newCluster(t, 2, nil)
	_, err := c.produce(1, "a", 2, -1, 2)
	require.NoError(t, err)
	c.requireIdentical(1)
	n1, n2 := c.node(1), c.node(2)
	eventually(t, "committed", func() bool { return n1.p.HighWatermark() == 2 })

	// Epoch 1 reaches only the leader. (A fetch that passed the epoch
	// check just before may still carry data; wait it out.)
	c.mu.Lock()
	c.sts[0].LeaderEpoch++
	c.sts[0].PartitionEpoch++
	c.mu.Unlock()
	n1.m.Apply(n1.p, c.state())
	before := c.fetchCount(2)
	eventually(t, "node 2 is fenced", func() bool { return c.fetchCount(2) > before+1 })
	_, err = c.produce(1, "b", 2, 1, 1)
	require.NoError(t, err)
	before = c.fetchCount(2)
	eventually(t, "node 2 keeps trying", func() bool { return c.fetchCount(2)+c.ofleCount(2) > before+2 })
	require.EqualValues(t, 2, n2.log.LogEndOffset(), "a fenced follower gets nothing")
	require.EqualValues(t, 2, n1.p.HighWatermark())
	n2.m.Apply(n2.p, c.state())
	c.requireIdentical(1)
	eventually(t, "committed", func() bool { return n1.p.HighWatermark() == 4 })

	// Epoch 2 reaches only the follower.
	c.mu.Lock()
	c.sts[0].LeaderEpoch++
	c.sts[0].PartitionEpoch++
	c.mu.Unlock()
	n2.m.Apply(n2.p, c.state())
	before = c.ofleCount(2)
	eventually(t, "node 2 is refused", func() bool { return c.ofleCount(2) > before+1 })
	_, err = c.produce(1, "c", 2, 1, 1)
	require.NoError(t, err)
	before = c.fetchCount(2) + c.ofleCount(2)
	eventually(t, "node 2 keeps trying", func() bool { return c.fetchCount(2)+c.ofleCount(2) > before+2 })
	require.EqualValues(t, 4, n2.log.LogEndOffset(), "a leader behind the follower's epoch serves nothing")
	n1.m.Apply(n1.p, c.state())
	c.requireIdentical(1)
}

// Close and Remove leave no goroutine behind.
func TestNoGoroutineLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	c := newClusterParts(t, 3, []int32{1, 2, 3}, nil)
	for i := range 3 {
		_, err := c.producePart(int32(i+1), i, "x", 3, -1, 2)
		require.NoError(t, err)
	}
	for i := range 3 {
		c.requireIdenticalPart(i, int32(i+1))
	}
	c.stop(3) // followers of node 3 back off and retry
	time.Sleep(20 * time.Millisecond)
	nd := c.node(2)
	for _, p := range nd.parts {
		nd.m.Remove(p)
	}
	for _, nd := range c.nodeList() {
		c.stop(nd.id)
	}
	eventually(t, "goroutines exit", func() bool { return runtime.NumGoroutine() <= base })
}

// A single replica commits on append: through AppendAsLeader, and
// through Appended after an append made to the log directly.
func TestSingleReplicaCommitsAtOnce(t *testing.T) {
	c := newCluster(t, 1, nil)
	nd := c.node(1)
	r, err := c.produce(1, "a", 3, -1, 1)
	require.NoError(t, err)
	require.Equal(t, r.LastOffset+1, nd.p.HighWatermark())
	done, err := nd.p.AckedAfterAppend(r.LastOffset+1, 1)
	require.True(t, done)
	require.NoError(t, err)

	r, err = nd.log.Append(batchtest.Build(batchtest.NonIdempotent(0), batchtest.Values(2, 10)...), nd.p.LeaderEpoch())
	require.NoError(t, err)
	require.EqualValues(t, 3, nd.p.HighWatermark(), "replication owns the HW now")
	nd.p.Appended()
	require.Equal(t, r.LastOffset+1, nd.p.HighWatermark())
}

// A reassignment keeps the leader epoch and moves the partition epoch:
// an added replica starts following, catches up and joins the ISR; a
// removed one stops, and the HW no longer waits for it.
func TestReassignmentAddsAndRemovesReplicas(t *testing.T) {
	c := newCluster(t, 3, nil)
	set := func(replicas, isr, adding, removing []int32) {
		c.mu.Lock()
		st := &c.sts[0]
		st.Replicas, st.ISR, st.Adding, st.Removing = replicas, isr, adding, removing
		st.PartitionEpoch++
		c.mu.Unlock()
		c.propagate()
	}
	set([]int32{1, 2}, []int32{1, 2}, nil, nil) // node 3 is not a replica yet
	leader, n2, n3 := c.node(1), c.node(2), c.node(3)
	r, err := c.produce(1, "a", 5, -1, 2)
	require.NoError(t, err)
	eventually(t, "committed on 1,2", func() bool { return leader.p.HighWatermark() == r.LastOffset+1 })
	require.EqualValues(t, 0, n3.log.LogEndOffset())

	set([]int32{1, 2, 3}, []int32{1, 2}, []int32{3}, nil)
	eventually(t, "node 3 joins the ISR", func() bool { return slices.Equal(leader.p.ISR(), []int32{1, 2, 3}) })
	require.EqualValues(t, 0, leader.p.LeaderEpoch(), "no leader change")
	c.requireIdentical(1)

	set([]int32{1, 3}, []int32{1, 3}, nil, []int32{2})
	require.False(t, n2.p.IsLeader())
	require.Nil(t, n2.p.Followers())
	fs := leader.p.Followers()
	require.Len(t, fs, 1, "node 2's state is forgotten")
	require.Equal(t, int32(3), fs[0].ID)
	require.True(t, fs[0].InISR)
	require.EqualValues(t, 5, fs[0].LogEndOffset)
	before := c.fetchCount(2)
	r, err = c.produce(1, "b", 5, -1, 2)
	require.NoError(t, err)
	eventually(t, "committed without node 2", func() bool { return leader.p.HighWatermark() == r.LastOffset+1 })
	require.EqualValues(t, 5, n2.log.LogEndOffset(), "node 2 stopped replicating")
	require.LessOrEqual(t, c.fetchCount(2), before+1)
	require.EqualValues(t, 10, n3.log.LogEndOffset())
}

// Damaged fetch answers never reach a follower's log: a flipped byte
// fails the CRC and the follower backs off; a batch cut short at the end
// of an answer is left for the next fetch.
func TestDamagedFetchAnswers(t *testing.T) {
	c := newCluster(t, 2, nil)
	_, err := c.produce(1, "a", 3, -1, 1)
	require.NoError(t, err)
	c.requireIdentical(1)
	n2 := c.node(2)

	var damaged atomic.Int64
	c.mu.Lock()
	c.mangle = func(id int32, b []byte) []byte {
		if id != 2 || len(b) == 0 {
			return b
		}
		damaged.Add(1)
		b = append([]byte(nil), b...)
		b[len(b)-1] ^= 0x55 // inside the last batch's records: CRC mismatch
		return b
	}
	c.mu.Unlock()
	_, err = c.produce(1, "b", 3, 1, 1)
	require.NoError(t, err)
	eventually(t, "damaged answers", func() bool { return damaged.Load() >= 3 })
	require.EqualValues(t, 3, n2.log.LogEndOffset(), "nothing damaged is appended")

	// Two batches per answer, the second cut short: the first is
	// appended, the rest comes with the next fetch.
	_, err = c.produce(1, "c", 3, 1, 1)
	require.NoError(t, err)
	c.mu.Lock()
	c.mangle = func(id int32, b []byte) []byte {
		if id != 2 || len(b) < 20 {
			return b
		}
		return b[:len(b)-7]
	}
	c.mu.Unlock()
	eventually(t, "all but the last batch", func() bool { return n2.log.LogEndOffset() >= 6 })
	c.mu.Lock()
	c.mangle = nil
	c.mu.Unlock()
	c.requireIdentical(1)
}
