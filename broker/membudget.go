package broker

import (
	"runtime"
	"runtime/debug"
	"sync"
	"time"
)

// memBudget is queued.max.request.bytes: a broker-wide bound on the bytes
// of request frames being read or queued. A connection reserves a frame's
// declared size after its request header arrived and before it allocates
// the frame; it gives the reservation back when the response is written
// (or the connection dies). A connection whose frame does not fit waits,
// reading nothing more, so the kernel's socket buffers apply backpressure
// to the client.
//
// Two classes keep one stalled client from starving the rest:
//
//	large (> smallFrameMax): admitted while the large ones in memory
//	      total at most capacity - reserve, or when no other large frame
//	      is in memory (so a frame above the whole budget but within
//	      socket.request.max.bytes is still served, alone);
//	small (<= smallFrameMax): admitted while everything fits in capacity,
//	      or while the small ones alone fit in reserve (capacity/8).
//
// So at most max(capacity, socket.request.max.bytes + reserve) bytes are
// reserved, and however many large frames stall half-sent, clients with
// ordinary requests are still served from the reserve. Large frames are
// admitted in arrival order so a huge one is not starved by smaller large
// ones.
//
// A large frame's buffer is not pooled (bufpool.go caps pooled buffers at
// smallFrameMax); it becomes garbage when released. So that the budget
// bounds the heap and not only the live bytes, frames of reclaimMin or
// more keep their reservation until a garbage collection has made their
// memory reusable; once no large frame has been admitted for
// returnMemoryAfter, the freed memory is returned to the OS, so a burst
// does not leave the process's RSS at its peak.
const (
	smallFrameMax     = 1 << 20
	reclaimMin        = 16 << 20
	returnMemoryAfter = time.Second
	// defaultQueuedMaxRequestBytes is the default budget: one largest
	// request (socket.request.max.bytes).
	defaultQueuedMaxRequestBytes = 100 << 20
)

type memBudget struct {
	mu       sync.Mutex
	capacity int64 // <= 0: unbounded
	reserve  int64
	large    int64 // bytes reserved by large frames (including pendingGC)
	small    int64 // bytes reserved by small frames
	waiters  []*memWaiter

	pendingGC  int64         // large bytes released, waiting for a GC
	reclaiming bool          // the reclaim goroutine runs
	lastLarge  time.Time     // last large admission
	goFn       func(func())  // starts a tracked goroutine
	closing    chan struct{} // the broker's
}

type memWaiter struct {
	size    int64
	granted chan struct{} // closed on admission
}

func (m *memBudget) init(capacity int64, goFn func(func()), closing chan struct{}) {
	m.capacity = capacity
	m.reserve = capacity / 8
	m.goFn = goFn
	m.closing = closing
}

func (m *memBudget) bounded() bool { return m.capacity > 0 }

// fitsLocked applies the admission rules above.
func (m *memBudget) fitsLocked(size int64) bool {
	if size > smallFrameMax {
		return m.large == 0 || m.large+size <= m.capacity-m.reserve
	}
	return m.large+m.small+size <= m.capacity || m.small+size <= m.reserve
}

func (m *memBudget) takeLocked(size int64) {
	if size > smallFrameMax {
		m.large += size
		m.lastLarge = time.Now()
	} else {
		m.small += size
	}
}

// acquire reserves size bytes, waiting until they fit; false when dead
// closed first (nothing is then reserved).
func (m *memBudget) acquire(size int64, dead <-chan struct{}) bool {
	if !m.bounded() {
		return true
	}
	m.mu.Lock()
	if m.canJumpLocked(size) && m.fitsLocked(size) {
		m.takeLocked(size)
		m.mu.Unlock()
		return true
	}
	w := &memWaiter{size: size, granted: make(chan struct{})}
	m.waiters = append(m.waiters, w)
	m.mu.Unlock()
	select {
	case <-w.granted:
		return true
	case <-dead:
	case <-m.closing:
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-w.granted: // admitted while giving up: give it back
		m.releaseLocked(size)
		return false
	default:
	}
	for i, o := range m.waiters {
		if o == w {
			m.waiters = append(m.waiters[:i], m.waiters[i+1:]...)
			break
		}
	}
	m.grantLocked() // a large waiter that blocked others left
	return false
}

// canJumpLocked: a new large frame may not overtake a waiting large one.
func (m *memBudget) canJumpLocked(size int64) bool {
	if size <= smallFrameMax {
		return true
	}
	for _, w := range m.waiters {
		if w.size > smallFrameMax {
			return false
		}
	}
	return true
}

// release gives back a reservation made by acquire.
func (m *memBudget) release(size int64) {
	if !m.bounded() {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if size >= reclaimMin {
		m.pendingGC += size
		if !m.reclaiming {
			m.reclaiming = true
			m.goFn(m.reclaim)
		}
		return
	}
	m.releaseLocked(size)
}

func (m *memBudget) releaseLocked(size int64) {
	if size > smallFrameMax {
		m.large -= size
	} else {
		m.small -= size
	}
	m.grantLocked()
}

// grantLocked admits waiters in order; large ones strictly in order.
func (m *memBudget) grantLocked() {
	blockedLarge := false
	kept := m.waiters[:0]
	for _, w := range m.waiters {
		isLarge := w.size > smallFrameMax
		if !(isLarge && blockedLarge) && m.fitsLocked(w.size) {
			m.takeLocked(w.size)
			close(w.granted)
			continue
		}
		if isLarge {
			blockedLarge = true
		}
		kept = append(kept, w)
	}
	clear(m.waiters[len(kept):])
	m.waiters = kept
}

// reclaim runs a GC for released large frames, then gives their bytes
// back; when no large frame came for returnMemoryAfter it returns the
// freed memory to the OS.
func (m *memBudget) reclaim() {
	for {
		runtime.GC()
		m.mu.Lock()
		n := m.pendingGC
		m.pendingGC = 0
		if n > 0 {
			m.large -= n
			m.grantLocked()
			m.mu.Unlock()
			continue // more may have been released during the GC
		}
		m.mu.Unlock()
		t := time.NewTimer(returnMemoryAfter)
		select {
		case <-t.C:
		case <-m.closing:
			t.Stop()
		}
		m.mu.Lock()
		if m.pendingGC > 0 {
			m.mu.Unlock()
			continue
		}
		quiet := m.large == 0 && time.Since(m.lastLarge) >= returnMemoryAfter
		m.reclaiming = false
		m.mu.Unlock()
		if quiet {
			debug.FreeOSMemory()
		}
		return
	}
}

func (m *memBudget) stats() (int64, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.large + m.small, len(m.waiters)
}
