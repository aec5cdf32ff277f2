package broker

import (
	"testing"
	"time"
)

func newTestBudget(t *testing.T, capacity int64) (*memBudget, chan struct{}) {
	closing := make(chan struct{})
	t.Cleanup(func() { close(closing) })
	m := &memBudget{}
	m.init(capacity, func(f func()) { go f() }, closing)
	return m, closing
}

// acquireAsync starts an acquire and returns a channel reporting its
// result.
func acquireAsync(m *memBudget, size int64, dead chan struct{}) chan bool {
	ch := make(chan bool, 1)
	go func() { ch <- m.acquire(size, dead) }()
	return ch
}

func waitWaiters(t *testing.T, m *memBudget, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, w := m.stats(); w == n {
			return
		}
		if time.Now().After(deadline) {
			_, w := m.stats()
			t.Fatalf("%d waiters, want %d", w, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func expectGranted(t *testing.T, ch chan bool) {
	t.Helper()
	select {
	case ok := <-ch:
		if !ok {
			t.Fatal("acquire gave up")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("acquire still waiting")
	}
}

// A frame larger than the whole budget is served alone; a second large
// one waits for it; small frames still pass from the reserve.
func TestMemBudgetLargeAloneSmallFromReserve(t *testing.T) {
	const capacity = 80 << 20
	m, _ := newTestBudget(t, capacity)
	if !m.acquire(95<<20, nil) {
		t.Fatal("a frame above the budget was not admitted alone")
	}
	dead := make(chan struct{})
	second := acquireAsync(m, 20<<20, dead)
	waitWaiters(t, m, 1)
	// Small requests: everything (95 MiB) is above capacity, but the
	// reserve (10 MiB) admits them.
	for range 10 {
		if !m.acquire(1<<20, nil) {
			t.Fatal("small frame refused")
		}
	}
	third := acquireAsync(m, 1<<20, nil) // reserve exhausted: waits
	waitWaiters(t, m, 2)
	m.release(1 << 20)
	expectGranted(t, third)
	close(dead) // the waiting large frame's connection dies
	if <-second {
		t.Fatal("acquire succeeded on a dead connection")
	}
	waitWaiters(t, m, 0)
	if used, _ := m.stats(); used != 95<<20+10<<20 {
		t.Fatalf("used %d after a cancelled wait", used)
	}
}

// Large frames are admitted in order: a huge waiter is not starved by
// later, smaller large frames that would fit.
func TestMemBudgetLargeFIFO(t *testing.T) {
	m, _ := newTestBudget(t, 64<<20)
	if !m.acquire(10<<20, nil) {
		t.Fatal("first")
	}
	huge := acquireAsync(m, 100<<20, nil)
	waitWaiters(t, m, 1)
	later := acquireAsync(m, 10<<20, nil)
	waitWaiters(t, m, 2)
	m.release(10 << 20)
	expectGranted(t, huge)
	waitWaiters(t, m, 1)
	m.release(100 << 20) // >= reclaimMin: given back after a GC
	expectGranted(t, later)
}

// -1 (Kafka's default) is unbounded.
func TestMemBudgetUnbounded(t *testing.T) {
	m, _ := newTestBudget(t, -1)
	for range 10 {
		if !m.acquire(100<<20, nil) {
			t.Fatal("refused")
		}
	}
}
