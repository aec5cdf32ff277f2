package broker

import (
	"io"
	"math/bits"
	"sync"
)

// Request frames and encoded responses come from size-classed pools so a
// busy connection reuses the same few buffers instead of allocating one
// per request. Classes are powers of two from 4 KiB to 1 MiB
// (smallFrameMax); larger buffers are allocated at their exact size and
// left to the GC, so a burst of large requests does not stay pinned in a
// pool after it ends (membudget.go gives that memory back to the OS).
const (
	minBufShift = 12
	maxBufShift = 20
)

var bufPools [maxBufShift - minBufShift + 1]sync.Pool

func bufClass(n int) int {
	if n <= 1<<minBufShift {
		return 0
	}
	c := bits.Len(uint(n-1)) - minBufShift
	if c > maxBufShift-minBufShift {
		return -1
	}
	return c
}

// getBuf returns a buffer of length n.
func getBuf(n int) *[]byte {
	c := bufClass(n)
	if c < 0 {
		b := make([]byte, n)
		return &b
	}
	if v := bufPools[c].Get(); v != nil {
		bp := v.(*[]byte)
		*bp = (*bp)[:n]
		return bp
	}
	b := make([]byte, n, 1<<(c+minBufShift))
	return &b
}

// putBuf returns a buffer obtained from getBuf (or grown by append) to
// its pool.
func putBuf(bp *[]byte) {
	if bp == nil {
		return
	}
	c := cap(*bp)
	if c < 1<<minBufShift || c > 1<<maxBufShift || c&(c-1) != 0 {
		return // not a class size (grown by append, or huge): let it go
	}
	*bp = (*bp)[:0]
	bufPools[bits.Len(uint(c))-1-minBufShift].Put(bp)
}

// readRequestFrame reads a size-byte frame body from r into a buffer of
// exactly that size, allocated once: the caller has reserved size bytes
// of queued.max.request.bytes (membudget.go), so a client that announces
// a large frame and stalls holds at most that reservation, and a large
// frame never costs a doubling series of copies.
func readRequestFrame(r io.Reader, size int) (*[]byte, error) {
	bp := getBuf(size)
	if _, err := io.ReadFull(r, *bp); err != nil {
		putBuf(bp)
		return nil, err
	}
	return bp, nil
}
