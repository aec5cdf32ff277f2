package producer

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"math/bits"
	"sync"
	"time"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/internal/compress"
)

// recordBatchOverhead is the RecordBatch v2 header: baseOffset(8)
// batchLength(4) partitionLeaderEpoch(4) magic(1) crc(4) attributes(2)
// lastOffsetDelta(4) baseTimestamp(8) maxTimestamp(8) producerId(8)
// producerEpoch(2) baseSequence(4) recordCount(4).
const recordBatchOverhead = 61

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// promised is a record awaiting its callback.
type promised struct {
	r    *tributary.Record
	cb   func(*tributary.Record, error)
	ctx  context.Context // nil when Produce's ctx can never be cancelled
	size int64           // buffer memory the record reserved
}

// batch is one partition's RecordBatch being filled or in flight. Records
// are encoded as they are appended, into buf after a reserved header, so a
// record costs no allocation once buffers are warm; batches and their
// buffers are pooled.
//
// Fields are guarded by the owning partition's mutex while the batch is in
// the partition's queue; once a sink takes it, the sink and then the
// response handler own it.
type batch struct {
	p       *partState
	buf     []byte // header placeholder + uncompressed records
	recs    []promised
	firstTs int64
	maxTs   int64
	created time.Time
	mem     int64 // buffer memory reserved by the records
	full    bool  // closed to appends
	hasCtx  bool  // some record has a cancellable ctx
	sent    bool  // written into a request at least once

	// Set when first sent; rewritten when the producer epoch is bumped.
	wire    []byte // what goes on the wire; aliases buf unless compressed
	zbuf    []byte // compressed bytes' buffer, kept for reuse
	pid     int64
	epoch   int16
	seq     int32 // -1 until assigned
	txn     bool  // part of a transaction: the header's transactional bit is set
	lastErr error
}

// freeList keeps released batches for reuse, like the Java client's
// BufferPool keeps batch.size buffers: a sync.Pool is emptied by every GC,
// and a busy producer (or an in-process broker) collects often, so batch
// buffers would be reallocated and cleared over and over. At most max
// batches are kept, which bounds the retained memory by buffer.memory.
type freeList struct {
	mu   sync.Mutex
	free []*batch
	max  int
}

func (f *freeList) get() *batch {
	f.mu.Lock()
	if n := len(f.free); n > 0 {
		b := f.free[n-1]
		f.free[n-1] = nil
		f.free = f.free[:n-1]
		f.mu.Unlock()
		return b
	}
	f.mu.Unlock()
	return new(batch)
}

func (f *freeList) put(b *batch) {
	f.mu.Lock()
	if len(f.free) < f.max {
		f.free = append(f.free, b)
	}
	f.mu.Unlock()
}

func newBatch(f *freeList, p *partState, now time.Time, sizeHint int) *batch {
	b := f.get()
	b.p = p
	if sizeHint = max(sizeHint, recordBatchOverhead); cap(b.buf) < sizeHint {
		b.buf = make([]byte, recordBatchOverhead, sizeHint)
	}
	b.buf = b.buf[:recordBatchOverhead]
	b.created = now
	b.seq = -1
	b.pid, b.epoch = -1, -1
	return b
}

func (b *batch) release(f *freeList, batchSize int) {
	clear(b.recs)
	b.recs = b.recs[:0]
	b.p, b.wire, b.lastErr = nil, nil, nil
	b.mem, b.full, b.firstTs, b.maxTs = 0, false, 0, 0
	b.hasCtx, b.sent, b.txn = false, false, false
	// Keep only buffers of the usual size; one grown by an oversized
	// record would pin its memory.
	// (make rounds capacities up to a size class, hence the slack).
	if cap(b.buf) > 2*(batchSize+recordBatchOverhead) {
		return
	}
	if cap(b.zbuf) > 2*batchSize+1024 {
		b.zbuf = nil
	}
	f.put(b)
}

func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	return (bits.Len64(u|1) + 6) / 7
}

// bodyAt adjusts body0, a record's encoded size without its length prefix
// at zero deltas (one byte each), to the given deltas.
func bodyAt(body0 int, tsDelta int64, offDelta int32) int {
	return body0 - 2 + varintLen(tsDelta) + varintLen(int64(offDelta))
}

// bodySize0 is the encoded size of r without its length prefix, with
// zero timestamp and offset deltas; computed once per record.
func bodySize0(r *tributary.Record) int {
	n := 3
	if r.Key == nil {
		n++
	} else {
		n += varintLen(int64(len(r.Key))) + len(r.Key)
	}
	if r.Value == nil {
		n++
	} else {
		n += varintLen(int64(len(r.Value))) + len(r.Value)
	}
	n += varintLen(int64(len(r.Headers)))
	for _, h := range r.Headers {
		n += varintLen(int64(len(h.Key))) + len(h.Key)
		if h.Value == nil {
			n++
		} else {
			n += varintLen(int64(len(h.Value))) + len(h.Value)
		}
	}
	return n
}

func appendBytes(dst, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(v)))
	return append(dst, v...)
}

// append encodes r into the batch. The caller checked that it fits.
func (b *batch) append(r *tributary.Record, cb func(*tributary.Record, error), ctx context.Context, ts int64, mem int64, body0 int) {
	if len(b.recs) == 0 {
		b.firstTs, b.maxTs = ts, ts
	} else if ts > b.maxTs {
		b.maxTs = ts
	}
	tsDelta := ts - b.firstTs
	offDelta := int32(len(b.recs))
	dst := binary.AppendVarint(b.buf, int64(bodyAt(body0, tsDelta, offDelta)))
	dst = append(dst, 0) // attributes: unused
	dst = binary.AppendVarint(dst, tsDelta)
	dst = binary.AppendVarint(dst, int64(offDelta))
	dst = appendBytes(dst, r.Key)
	dst = appendBytes(dst, r.Value)
	dst = binary.AppendVarint(dst, int64(len(r.Headers)))
	for _, h := range r.Headers {
		dst = binary.AppendVarint(dst, int64(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = appendBytes(dst, h.Value)
	}
	b.buf = dst
	b.recs = append(b.recs, promised{r, cb, ctx, mem})
	b.mem += mem
	if ctx != nil {
		b.hasCtx = true
	}
}

// seal builds the wire form: compresses the records if asked (keeping the
// uncompressed form when compression does not help would be a protocol
// violation of the attributes, so we always use the codec), then writes the
// header and CRC.
func (b *batch) seal(codec Codec) error {
	if codec == NoCompression {
		b.wire = b.buf
	} else {
		z, err := compress.Compress(compress.Codec(codec), append(b.zbuf[:0], make([]byte, recordBatchOverhead)...), b.buf[recordBatchOverhead:])
		if err != nil {
			return err
		}
		b.zbuf = z
		b.wire = z
	}
	b.writeHeader(codec)
	return nil
}

// writeHeader fills the header of wire; it is rerun when pid, epoch or
// sequence change, which the CRC covers.
func (b *batch) writeHeader(codec Codec) {
	w := b.wire
	be := binary.BigEndian
	be.PutUint64(w[0:], 0)
	be.PutUint32(w[8:], uint32(len(w)-12))
	be.PutUint32(w[12:], 0xffffffff) // partitionLeaderEpoch: the broker sets it
	w[16] = 2
	attrs := uint16(codec)
	if b.txn {
		attrs |= 0x10 // transactional
	}
	be.PutUint16(w[21:], attrs)
	be.PutUint32(w[23:], uint32(len(b.recs)-1))
	be.PutUint64(w[27:], uint64(b.firstTs))
	be.PutUint64(w[35:], uint64(b.maxTs))
	be.PutUint64(w[43:], uint64(b.pid))
	be.PutUint16(w[51:], uint16(b.epoch))
	be.PutUint32(w[53:], uint32(b.seq))
	be.PutUint32(w[57:], uint32(len(b.recs)))
	be.PutUint32(w[17:], crc32.Checksum(w[21:], castagnoli))
}
