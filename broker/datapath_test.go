package broker

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWaitersAreBoundedAndWoken pins the fetch-wakeup bookkeeping: a
// notify reaches exactly the waiters parked on that partition, a burst of
// notifies coalesces into one pending wakeup without blocking, and
// unwatching leaves nothing behind.
func TestWaitersAreBoundedAndWoken(t *testing.T) {
	b := &Broker{}
	b.data.watch.byPart = make(map[*partition]map[*waiter]struct{})
	p0, p1, p2 := &partition{}, &partition{}, &partition{}

	w1 := b.newWaiter([]*partition{p0, p1})
	w2 := b.newWaiter([]*partition{p0})
	require.Len(t, b.data.watch.byPart, 2)

	for range 1000 { // must not block although nobody drains
		b.notifyPartition(p1)
	}
	b.notifyPartition(p2) // nobody waits here: no entry is created
	require.Len(t, b.data.watch.byPart, 2)

	select {
	case <-w1.ch:
	default:
		t.Fatal("waiter on p1 not woken")
	}
	select {
	case <-w1.ch:
		t.Fatal("burst of notifies should coalesce into one wakeup")
	case <-w2.ch:
		t.Fatal("waiter not on p1 was woken")
	default:
	}

	b.notifyPartition(p0)
	for _, w := range []*waiter{w1, w2} {
		select {
		case <-w.ch:
		case <-time.After(time.Second):
			t.Fatal("waiter on p0 not woken")
		}
	}

	b.unwatch(w1)
	b.unwatch(w2)
	require.Empty(t, b.data.watch.byPart)
	require.Zero(t, b.data.nwatch.Load())
}

// TestProducerIDAllocatorTakesControllerBlocks pins the id allocation:
// ids come from the blocks the controller hands out, a new block is asked
// for only when one runs out, ids are never repeated, and a failed block
// allocation fails the request instead of reusing ids.
func TestProducerIDAllocatorTakesControllerBlocks(t *testing.T) {
	var next int64
	calls := 0
	var fail error
	var a pidAllocator
	a.init(func() (int64, int32, error) {
		calls++
		if fail != nil {
			return 0, 0, fail
		}
		first := next
		next += 1000
		return first, 1000, nil
	})
	seen := map[int64]bool{}
	var last int64
	for range 1500 {
		id, err := a.allocate()
		require.NoError(t, err)
		require.False(t, seen[id], "id %d handed out twice", id)
		seen[id] = true
		last = id
	}
	require.Equal(t, 2, calls, "one block per 1000 ids")
	require.EqualValues(t, 1499, last)

	// KIP-360 bump: only for the epoch last issued.
	e, ok := a.bump(last, 0)
	require.True(t, ok)
	require.Equal(t, int16(1), e)
	_, ok = a.bump(last, 0)
	require.False(t, ok, "a stale epoch is not bumped")

	for range 500 {
		_, err := a.allocate()
		require.NoError(t, err)
	}
	fail = errors.New("no quorum")
	_, err := a.allocate()
	require.ErrorIs(t, err, fail, "an exhausted block with no controller fails, never reuses")
}
