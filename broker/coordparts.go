package broker

// What the group coordinator (groups.go) and the transaction coordinator
// (txncoord.go) share: each owns the partitions of an internal topic that
// this broker leads, loads each from its log before serving it, and
// follows leadership as it moves. coordParts is that bookkeeping; both
// embed it and their loop goroutine alone touches it.

import (
	"slices"
	"time"

	"github.com/tributary/tributary"
)

// partState is where one partition of an internal topic stands.
type partState uint8

const (
	partAbsent   partState = iota // the topic does not exist yet
	partLoading                   // queued to load, or being loaded
	partLoaded                    // its state is in the coordinator
	partFollower                  // another broker leads it (replication)
)

// loadRetryDelay spaces attempts to load a partition whose log could not
// be read.
const loadRetryDelay = time.Second

type coordParts struct {
	state  []partState // by partition
	toLoad []int32     // partitions queued to load, in order
	// retry holds partitions whose load failed, queued again at retryAt.
	retry   []int32
	retryAt time.Time
}

func newCoordParts(n int32) coordParts { return coordParts{state: make([]partState, n)} }

// partitionError says why partition p cannot be served now, or nil.
func (cp *coordParts) partitionError(p int32) *tributary.Error {
	if p < 0 || int(p) >= len(cp.state) {
		return tributary.ErrCoordinatorNotAvailable
	}
	switch cp.state[p] {
	case partAbsent:
		return tributary.ErrCoordinatorNotAvailable
	case partLoading:
		return tributary.ErrCoordinatorLoadInProgress
	case partFollower:
		return tributary.ErrNotCoordinator
	}
	return nil
}

// loaded reports whether partition p is served.
func (cp *coordParts) loaded(p int32) bool {
	return p >= 0 && int(p) < len(cp.state) && cp.state[p] == partLoaded
}

// anyLoading reports whether a partition is still loading.
func (cp *coordParts) anyLoading() bool {
	return slices.Contains(cp.state, partLoading)
}

// follow applies who leads p now: leading it queues a load unless it is
// loaded or queued; not leading it drops it from the queues (the caller
// unloads its state).
func (cp *coordParts) follow(p int32, leader bool) {
	if p < 0 || int(p) >= len(cp.state) {
		return
	}
	switch {
	case leader && cp.state[p] != partLoaded && cp.state[p] != partLoading:
		cp.state[p] = partLoading
		cp.toLoad = append(cp.toLoad, p)
	case !leader:
		cp.state[p] = partFollower
		cp.toLoad = slices.DeleteFunc(cp.toLoad, func(q int32) bool { return q == p })
		cp.retry = slices.DeleteFunc(cp.retry, func(q int32) bool { return q == p })
	}
}

// reload queues a loaded partition to load again (its state was
// dropped after a failed append).
func (cp *coordParts) reload(p int32) {
	if cp.state[p] == partLoaded {
		cp.state[p] = partLoading
		cp.toLoad = append(cp.toLoad, p)
	}
}

// loadFailed queues p to be loaded again after loadRetryDelay.
func (cp *coordParts) loadFailed(p int32) {
	cp.retry = append(cp.retry, p)
	if cp.retryAt.IsZero() {
		cp.retryAt = time.Now().Add(loadRetryDelay)
	}
}

// retryDue queues the partitions whose retry time came.
func (cp *coordParts) retryDue(now time.Time) {
	if !cp.retryAt.IsZero() && !now.Before(cp.retryAt) {
		cp.toLoad = append(cp.toLoad, cp.retry...)
		cp.retry, cp.retryAt = nil, time.Time{}
	}
}

// nextLoad pops the next partition to load.
func (cp *coordParts) nextLoad() (int32, bool) {
	if len(cp.toLoad) == 0 {
		return 0, false
	}
	p := cp.toLoad[0]
	cp.toLoad = cp.toLoad[1:]
	return p, true
}

// rearm sets timer to the earlier of the coordinator's deadline (ok
// false: none) and the next load retry.
func (cp *coordParts) rearm(timer *time.Timer, at time.Time, ok bool) {
	if !timer.Stop() {
		select {
		case <-timer.C:
		default:
		}
	}
	if !ok {
		at = time.Now().Add(time.Hour)
	}
	if !cp.retryAt.IsZero() && cp.retryAt.Before(at) {
		at = cp.retryAt
	}
	timer.Reset(max(time.Until(at), 0))
}

// coordLoop is the loop both coordinators run: serve calls and timer
// ticks until closing, and, while partitions wait to load, load one
// between calls so that a large topic does not stall the partitions
// already served.
func coordLoop[C any](cp *coordParts, calls <-chan C, timer *time.Timer, closing <-chan struct{}, serve func(C), tick func(), load func(int32)) {
	for {
		if len(cp.toLoad) > 0 {
			select {
			case call := <-calls:
				serve(call)
			case <-timer.C:
				tick()
			case <-closing:
				return
			default:
				p, _ := cp.nextLoad()
				load(p)
			}
			continue
		}
		select {
		case call := <-calls:
			serve(call)
		case <-timer.C:
			tick()
		case <-closing:
			return
		}
	}
}
