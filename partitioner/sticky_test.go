package partitioner

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// within asserts got is within tol (a fraction) of want. The tolerances in
// this file are many standard deviations wide, so a uniform generator
// never trips them while a skewed choice (off-by-one in the skip, a
// partition never chosen) does.
func within(t *testing.T, want float64, got int, tol float64, msg string, args ...any) {
	t.Helper()
	require.InDeltaf(t, want, float64(got), want*tol, msg, args...)
}

func TestStickyStaysUntilItsBatchCompletes(t *testing.T) {
	const n = 12
	p := Sticky()
	obs := p.(BatchObserver)
	cur := p.Partition(rec("t", []byte("k1")), n)
	require.True(t, cur >= 0 && cur < n)
	for i := range 1000 {
		// Keys do not matter to Sticky.
		require.Equal(t, cur, p.Partition(rec("t", []byte{byte(i)}), n))
	}

	// Completions of other partitions, of other topics, and of a topic
	// never seen, do not move it.
	for other := range int32(n) {
		if other != cur {
			obs.OnNewBatch("t", other, n)
		}
	}
	obs.OnNewBatch("other-topic", cur, n)
	obs.OnNewBatch("never-seen", cur, n)
	require.Equal(t, cur, p.Partition(rec("t", nil), n))

	obs.OnNewBatch("t", cur, n)
	next := p.Partition(rec("t", nil), n)
	require.NotEqual(t, cur, next)
	require.True(t, next >= 0 && next < n)

	// A late duplicate notification about the old partition is ignored.
	obs.OnNewBatch("t", cur, n)
	require.Equal(t, next, p.Partition(rec("t", nil), n))
}

func TestStickyTopicsAreIndependent(t *testing.T) {
	const n = 50
	p := Sticky()
	obs := p.(BatchObserver)
	a := p.Partition(rec("a", nil), n)
	b := p.Partition(rec("b", nil), n)
	for range 20 {
		obs.OnNewBatch("a", p.Partition(rec("a", nil), n), n)
	}
	require.NotEqual(t, a, p.Partition(rec("a", nil), n), "a moved at least once in 20 switches (never back to itself in one step)")
	require.Equal(t, b, p.Partition(rec("b", nil), n), "b must not move when a's batches complete")
}

func TestStickySinglePartition(t *testing.T) {
	p := Sticky()
	obs := p.(BatchObserver)
	for range 100 {
		require.Equal(t, int32(0), p.Partition(rec("t", nil), 1))
		obs.OnNewBatch("t", 0, 1)
	}
}

// TestStickyPartitionCountShrinks: a sticky partition beyond the current
// count (topic deleted and recreated smaller) is replaced on the next
// record rather than returned out of range.
func TestStickyPartitionCountShrinks(t *testing.T) {
	p := Sticky()
	obs := p.(BatchObserver)
	var cur int32
	for cur = p.Partition(rec("t", nil), 100); cur < 10; cur = p.Partition(rec("t", nil), 100) {
		obs.OnNewBatch("t", cur, 100)
	}
	for range 100 {
		got := p.Partition(rec("t", nil), 3)
		require.True(t, got >= 0 && got < 3, "got %d", got)
	}
	// Growing back does not move it: new partitions are used after the
	// next batch, as in Java.
	got := p.Partition(rec("t", nil), 3)
	require.Equal(t, got, p.Partition(rec("t", nil), 100))
}

// TestStickyFirstChoiceUniform: each new partitioner's first partition for a
// topic is uniform over all n.
func TestStickyFirstChoiceUniform(t *testing.T) {
	const (
		n      = 8
		trials = 40000
	)
	var counts [n]int
	for range trials {
		counts[Sticky().Partition(rec("t", nil), n)]++
	}
	for i, c := range counts {
		within(t, trials/n, c, 0.1, "partition %d chosen first %d times", i, c)
	}
}

// TestStickySwitchUniformAmongOthers drives many batch completions and
// checks the switch never stays put, goes to each other partition equally
// often from every partition, and so spreads load evenly overall.
func TestStickySwitchUniformAmongOthers(t *testing.T) {
	const (
		n        = 5
		switches = 200000
	)
	p := Sticky()
	obs := p.(BatchObserver)
	var trans [n][n]int
	var visits [n]int
	cur := p.Partition(rec("t", nil), n)
	for range switches {
		obs.OnNewBatch("t", cur, n)
		next := p.Partition(rec("t", nil), n)
		trans[cur][next]++
		visits[next]++
		cur = next
	}
	for from := range n {
		require.Zerof(t, trans[from][from], "switched from %d to itself", from)
		for to := range n {
			if to != from {
				// Each from visited ~switches/n times, split over n-1 targets.
				within(t, switches/n/(n-1), trans[from][to], 0.1, "transitions %d->%d", from, to)
			}
		}
		within(t, switches/n, visits[from], 0.05, "visits to %d", from)
	}
}

// TestStickyConcurrentFirstPickAgrees: goroutines racing on a topic's first
// keyless record must all get the same partition, or they would open a
// batch on every partition at once.
func TestStickyConcurrentFirstPickAgrees(t *testing.T) {
	for range 50 {
		const g = 16
		p := Sticky()
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			got   [g]int32
		)
		for i := range g {
			wg.Go(func() {
				<-start
				got[i] = p.Partition(rec("t", nil), 1000)
			})
		}
		close(start)
		wg.Wait()
		for i := range g {
			require.Equal(t, got[0], got[i])
		}
	}
}

// TestStickyConcurrentDuplicateNotifications: many goroutines reporting
// the same completed batch at once move the partition off it, and leave
// one agreed partition.
func TestStickyConcurrentDuplicateNotifications(t *testing.T) {
	const n = 10
	for range 50 {
		p := Sticky()
		obs := p.(BatchObserver)
		prev := p.Partition(rec("t", nil), n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 16 {
			wg.Go(func() {
				<-start
				obs.OnNewBatch("t", prev, n)
			})
		}
		close(start)
		wg.Wait()
		next := p.Partition(rec("t", nil), n)
		require.NotEqual(t, prev, next)
		require.Equal(t, next, p.Partition(rec("t", nil), n))
	}
}

// TestConcurrentProduceAndSwitch exercises every sticky partitioner from
// many goroutines over several topics, as a producer does, mainly for the
// race detector; every result must be in range.
func TestConcurrentProduceAndSwitch(t *testing.T) {
	topics := []string{"a", "b", "c"}
	for name, p := range map[string]Partitioner{
		"Default": Default(), "XXHash": XXHash(), "Sticky": Sticky(), "Sarama": Sarama(), "RoundRobin": RoundRobin(),
	} {
		t.Run(name, func(t *testing.T) {
			const n = 6
			obs, _ := p.(BatchObserver)
			var wg sync.WaitGroup
			errs := make(chan int32, 1)
			for w := range 8 {
				wg.Go(func() {
					for i := range 5000 {
						topic := topics[(w+i)%len(topics)]
						var key []byte
						if i%3 == 0 {
							key = []byte{byte(i), byte(w)}
						}
						got := p.Partition(rec(topic, key), n)
						if got < 0 || got >= n {
							select {
							case errs <- got:
							default:
							}
							return
						}
						if obs != nil && i%50 == 0 {
							obs.OnNewBatch(topic, got, n)
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for got := range errs {
				t.Fatalf("partition %d out of range [0,%d)", got, n)
			}
		})
	}
}
