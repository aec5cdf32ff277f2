package broker

import (
	"sync"
	"sync/atomic"
	"time"
)

// dataPath holds the state of the produce/fetch path: producer id
// allocation and the fetches (and, with replication, acks=all produces)
// parked until a partition's log moves.
//
// Locks: watch's mutex and pids.mu are leaves (nothing else is taken
// while either is held); partition.produceMu is never held across a wait.
type dataPath struct {
	pids pidAllocator

	// nwatch counts registered waiters so that an append with nobody
	// waiting (the common case under load) skips the mutex entirely.
	nwatch atomic.Int64
	watch  struct {
		sync.Mutex
		// byPart holds, per partition, the waiters parked on it. An
		// entry exists only while someone waits, so the map is bounded
		// by the partitions named in requests currently in flight.
		byPart map[*partition]map[*waiter]struct{}
	}
}

// waiter is one parked request. Its channel has room for one wakeup: a
// burst of appends coalesces into a single pending signal, so notifying
// never blocks and never allocates.
type waiter struct {
	ch    chan struct{}
	parts []*partition
}

// initDataPath is called by New after the topics are loaded.
func (b *Broker) initDataPath() error {
	b.data.watch.byPart = make(map[*partition]map[*waiter]struct{})
	return b.data.pids.init(b.cfg.LogDirs[0])
}

// closeDataPath is called by Close after the listener stops and before
// the logs are closed. Parked requests return on b.closing themselves.
func (b *Broker) closeDataPath() {}

// newWaiter registers a waiter on parts. The caller must re-check its
// condition after registering (an append between the first check and the
// registration would otherwise be missed) and must call unwatch.
func (b *Broker) newWaiter(parts []*partition) *waiter {
	w := &waiter{ch: make(chan struct{}, 1), parts: parts}
	d := &b.data
	d.watch.Lock()
	for _, p := range parts {
		set := d.watch.byPart[p]
		if set == nil {
			set = make(map[*waiter]struct{}, 1)
			d.watch.byPart[p] = set
		}
		set[w] = struct{}{}
	}
	d.nwatch.Add(1)
	d.watch.Unlock()
	return w
}

func (b *Broker) unwatch(w *waiter) {
	d := &b.data
	d.watch.Lock()
	for _, p := range w.parts {
		if set := d.watch.byPart[p]; set != nil {
			delete(set, w)
			if len(set) == 0 {
				delete(d.watch.byPart, p)
			}
		}
	}
	d.nwatch.Add(-1)
	d.watch.Unlock()
}

// notifyPartition wakes everything parked on p: called after an append
// (the end offset and, on one replica, the high watermark moved) and
// after anything else that changes what a fetch of p would return.
func (b *Broker) notifyPartition(p *partition) {
	d := &b.data
	if d.nwatch.Load() == 0 {
		return
	}
	d.watch.Lock()
	for w := range d.watch.byPart[p] {
		select {
		case w.ch <- struct{}{}:
		default:
		}
	}
	d.watch.Unlock()
}

// waitHighWatermark parks until p's high watermark reaches target, the
// timeout passes or the broker closes; it reports whether the target was
// reached. With a single replica the high watermark follows the log end
// offset, so an acks=all produce returns on the first check; replication
// moves the watermark later and calls notifyPartition.
func (b *Broker) waitHighWatermark(p *partition, target int64, timeout time.Duration) bool {
	if p.log.HighWatermark() >= target {
		return true
	}
	w := b.newWaiter([]*partition{p})
	defer b.unwatch(w)
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		if p.log.HighWatermark() >= target {
			return true
		}
		select {
		case <-w.ch:
		case <-t.C:
			return p.log.HighWatermark() >= target
		case <-b.closing:
			return false
		}
	}
}
