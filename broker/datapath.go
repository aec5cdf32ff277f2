package broker

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/tributary/tributary"
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
	b.data.pids.init(func() (int64, int32, error) {
		ctx, cancel := b.adminCtx(10000)
		defer cancel()
		return b.ctrl.AllocateProducerIDs(ctx, b.cfg.NodeID, b.brokerEpoch.Load())
	})
	return nil
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

// waitAcked parks an acks=all produce until the replica manager says the
// high watermark covers end (the ISR has the batch), the ISR shrank below
// minISR after the append (NOT_ENOUGH_REPLICAS_AFTER_APPEND), leadership
// moved (NOT_LEADER_OR_FOLLOWER), the timeout passed (REQUEST_TIMED_OUT)
// or the broker closes. The replica manager's HighWatermarkMoved wakes it.
func (b *Broker) waitAcked(p *partition, end int64, minISR int, timeout time.Duration) error {
	if done, err := p.rep.AckedAfterAppend(end, minISR); done || err != nil {
		return err
	}
	w := b.newWaiter([]*partition{p})
	defer b.unwatch(w)
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		if done, err := p.rep.AckedAfterAppend(end, minISR); done || err != nil {
			return err
		}
		select {
		case <-w.ch:
		case <-t.C:
			if done, err := p.rep.AckedAfterAppend(end, minISR); done || err != nil {
				return err
			}
			return tributary.ErrRequestTimedOut
		case <-b.closing:
			return errorf(tributary.ErrRequestTimedOut, "broker is shutting down")
		}
	}
}
