package broker

import (
	"io"
	"math/bits"
	"sync"
)

// Request frames and encoded responses come from size-classed pools so a
// busy connection reuses the same few buffers instead of allocating one
// per request. Classes are powers of two from 4 KiB to 8 MiB; larger
// buffers are allocated and left to the GC so that one huge request does
// not pin its memory in a pool.
const (
	minBufShift = 12
	maxBufShift = 23
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

// readRequestFrame reads a size-byte frame body from r. Frames up to 1 MiB are
// read into one pooled buffer; larger ones grow as bytes arrive, so a
// client that announces 100 MB and sends nothing makes the broker hold
// 1 MiB, not 100 MB.
func readRequestFrame(r io.Reader, size int) (*[]byte, error) {
	const step = 1 << 20
	if size <= step {
		bp := getBuf(size)
		if _, err := io.ReadFull(r, *bp); err != nil {
			putBuf(bp)
			return nil, err
		}
		return bp, nil
	}
	bp := getBuf(step)
	read := 0
	for read < size {
		if read == len(*bp) {
			nb := getBuf(min(2*read, size))
			copy(*nb, (*bp)[:read])
			putBuf(bp)
			bp = nb
		}
		n, err := io.ReadFull(r, (*bp)[read:])
		read += n
		if err != nil {
			putBuf(bp)
			return nil, err
		}
	}
	return bp, nil
}
