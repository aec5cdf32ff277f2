package broker

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tributary/tributary/broker/storage"
	"github.com/tributary/tributary/internal/batch/batchtest"
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

// TestProducerIDBlocksSurviveRestart pins the id allocation: ids are
// unique, the persisted block end always covers every id handed out, and
// a restarted allocator starts past it.
func TestProducerIDBlocksSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	var a pidAllocator
	require.NoError(t, a.init(dir))
	seen := map[int64]bool{}
	var last int64
	for range pidBlockSize + 500 {
		id, err := a.allocate()
		require.NoError(t, err)
		require.False(t, seen[id], "id %d handed out twice", id)
		seen[id] = true
		last = id
	}
	var b pidAllocator // the broker restarted (or crashed) on the same dir
	require.NoError(t, b.init(dir))
	id, err := b.allocate()
	require.NoError(t, err)
	require.Greater(t, id, last)
	require.Equal(t, int64(2*pidBlockSize), id, "restart skips the rest of the persisted block")

	// KIP-360 bump: only for the epoch last issued.
	e, ok := b.bump(id, 0)
	require.True(t, ok)
	require.Equal(t, int16(1), e)
	_, ok = b.bump(id, 0)
	require.False(t, ok, "a stale epoch is not bumped")
	_, ok = b.bump(last, 0)
	require.False(t, ok, "ids from before the restart are unknown")

	require.NoError(t, os.WriteFile(filepath.Join(dir, pidBlockFile), []byte("garbage"), 0o644))
	var c pidAllocator
	require.Error(t, c.init(dir), "a corrupt block file must not silently restart ids at 0")
}

// TestAcksAllParksOnHighWatermark pins the structure replication will
// use: an acks=all produce parks until the high watermark covers its
// batch, wakes when it moves (notifyPartition), and gives up at the
// request timeout or broker shutdown.
func TestAcksAllParksOnHighWatermark(t *testing.T) {
	l, err := storage.Open(t.TempDir(), storage.Config{
		SegmentBytes: 1 << 20, SegmentMs: 1 << 40, RetentionMs: -1, RetentionBytes: -1,
		IndexIntervalBytes: 4096, SegmentIndexBytes: 1 << 20, FlushMessages: 1 << 62, FlushMs: 1 << 62,
		MaxMessageBytes: 1 << 20, ProducerIDExpirationMs: 1 << 40,
	}, storage.Options{})
	require.NoError(t, err)
	defer l.Close()
	b := &Broker{closing: make(chan struct{})}
	b.data.watch.byPart = make(map[*partition]map[*waiter]struct{})
	p := &partition{log: l}

	res, err := l.Append(batchtest.Build(batchtest.NonIdempotent(time.Now().UnixMilli()), batchtest.Values(3, 10)...), 0)
	require.NoError(t, err)
	target := res.LastOffset + 1
	require.True(t, b.waitHighWatermark(p, target, time.Second), "one replica: covered at once")

	l.SetHighWatermark(0) // a follower has not caught up
	start := time.Now()
	require.False(t, b.waitHighWatermark(p, target, 100*time.Millisecond))
	require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)

	go func() {
		time.Sleep(50 * time.Millisecond)
		l.SetHighWatermark(target)
		b.notifyPartition(p)
	}()
	start = time.Now()
	require.True(t, b.waitHighWatermark(p, target, 5*time.Second))
	require.Less(t, time.Since(start), 2*time.Second, "woken by the watermark move, not the timeout")

	l.SetHighWatermark(0)
	time.AfterFunc(50*time.Millisecond, func() { close(b.closing) })
	require.False(t, b.waitHighWatermark(p, target, 5*time.Second), "shutdown ends the wait")
	require.Empty(t, b.data.watch.byPart)
}
