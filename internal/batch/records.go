package batch

import (
	"encoding/binary"
	"math"
)

// Record is one record of a batch, as views into the records region: Key
// and Value alias the buffer (nil for Kafka's null) and stay valid only
// as long as it does.
type Record struct {
	Attributes     int8
	TimestampDelta int64
	OffsetDelta    int32
	Key            []byte
	Value          []byte
	// Headers iterates the record's headers.
	Headers Headers
}

// Headers iterates the headers of one record.
type Headers struct {
	b []byte
	n int32
}

// Len is the number of headers.
func (h Headers) Len() int { return int(h.n) }

// Next returns the next header; ok is false at the end. The region was
// checked when the record was read, so Next cannot fail.
func (h *Headers) Next() (key, value []byte, ok bool) {
	if h.n <= 0 {
		return nil, nil, false
	}
	h.n--
	key, h.b, _ = readNullable(h.b)
	value, h.b, _ = readNullable(h.b)
	return key, value, true
}

// Records iterates a records region (uncompressed; see RecordsRegion)
// without allocating.
type Records struct {
	b    []byte
	left int32
	err  error
}

// NewRecords iterates count records in region.
func NewRecords(region []byte, count int32) Records { return Records{b: region, left: count} }

// Next reads the next record into r; it returns false at the end or on
// malformed input (see Err).
func (it *Records) Next(r *Record) bool {
	if it.err != nil {
		return false
	}
	if it.left <= 0 {
		if len(it.b) != 0 {
			it.err = ErrBadCount // bytes beyond the declared count
		}
		return false
	}
	if len(it.b) == 0 {
		it.err = ErrBadCount // fewer records than declared
		return false
	}
	length, n := varint32(it.b)
	if n <= 0 || length < 0 || int64(length) > int64(len(it.b)-n) {
		it.err = ErrBadRecord
		return false
	}
	body := it.b[n : n+int(length)]
	if !parseRecord(body, r) {
		it.err = ErrBadRecord
		return false
	}
	it.b = it.b[n+int(length):]
	it.left--
	return true
}

// Err is the error that stopped iteration, nil at a clean end.
func (it *Records) Err() error { return it.err }

// parseRecord decodes a record body (after its length) and checks that it
// is consumed exactly.
func parseRecord(b []byte, r *Record) bool {
	if len(b) < 1 {
		return false
	}
	r.Attributes = int8(b[0])
	b = b[1:]
	ts, n := binary.Varint(b)
	if n <= 0 {
		return false
	}
	r.TimestampDelta = ts
	b = b[n:]
	od, n := varint32(b)
	if n <= 0 {
		return false
	}
	r.OffsetDelta = od
	b = b[n:]
	var ok bool
	if r.Key, b, ok = readNullable(b); !ok {
		return false
	}
	if r.Value, b, ok = readNullable(b); !ok {
		return false
	}
	hc, n := varint32(b)
	if n <= 0 || hc < 0 || int64(hc) > int64(len(b)-n)/2 {
		return false
	}
	b = b[n:]
	hstart := b
	for range hc {
		kl, n := varint32(b)
		if n <= 0 || kl < 0 || int64(kl) > int64(len(b)-n) {
			return false // header keys are never null
		}
		b = b[n+int(kl):]
		if _, b, ok = readNullable(b); !ok {
			return false
		}
	}
	if len(b) != 0 {
		return false // record length disagrees with its fields
	}
	r.Headers = Headers{b: hstart, n: hc}
	return true
}

// readNullable reads a varint length and that many bytes; -1 is null.
func readNullable(b []byte) (v, rest []byte, ok bool) {
	l, n := varint32(b)
	if n <= 0 || l < -1 || int64(l) > int64(len(b)-n) {
		return nil, b, false
	}
	if l == -1 {
		return nil, b[n:], true
	}
	return b[n : n+int(l) : n+int(l)], b[n+int(l):], true
}

// varint32 decodes a zigzag varint that must fit an int32 (Kafka's
// varint); n <= 0 on error.
func varint32(b []byte) (int32, int) {
	v, n := binary.Varint(b)
	if n <= 0 || n > 5 || v < math.MinInt32 || v > math.MaxInt32 {
		return 0, -1
	}
	return int32(v), n
}

// AppendRecord appends r encoded as a record with the timestamp delta
// tsDelta (the cleaner rebases deltas when it sets a batch's delete
// horizon) and r's offset delta, key, value and headers.
func AppendRecord(dst []byte, r *Record, tsDelta int64) []byte {
	var body [3 * binary.MaxVarintLen64]byte
	n := 0
	body[n] = byte(r.Attributes)
	n++
	n += binary.PutVarint(body[n:], tsDelta)
	n += binary.PutVarint(body[n:], int64(r.OffsetDelta))
	size := n + nullableSize(r.Key) + nullableSize(r.Value) + varintLen(int64(r.Headers.n)) + len(r.Headers.b)
	dst = binary.AppendVarint(dst, int64(size))
	dst = append(dst, body[:n]...)
	dst = appendNullable(dst, r.Key)
	dst = appendNullable(dst, r.Value)
	dst = binary.AppendVarint(dst, int64(r.Headers.n))
	return append(dst, r.Headers.b...)
}

func varintLen(v int64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutVarint(b[:], v)
}

func nullableSize(b []byte) int {
	if b == nil {
		return varintLen(-1)
	}
	return varintLen(int64(len(b))) + len(b)
}

func appendNullable(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}
