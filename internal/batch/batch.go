package batch

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"sync"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/internal/compress"
)

// Byte positions of the header fields.
const (
	offBaseOffset      = 0
	offLength          = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offRecordCount     = 57

	// HeaderSize is the size of the fixed RecordBatch v2 header.
	HeaderSize = 61
	// LengthOverhead is the bytes before and including batchLength:
	// a batch occupies batchLength+LengthOverhead bytes.
	LengthOverhead = 12
	// MinLength is the smallest valid batchLength (a header, no records).
	MinLength = HeaderSize - LengthOverhead
)

// Attribute bits.
const (
	AttrCodecMask     = 0x07
	AttrLogAppendTime = 0x08
	AttrTransactional = 0x10
	AttrControl       = 0x20
	AttrDeleteHorizon = 0x40
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Preallocated errors: validating hostile input must not allocate.
var (
	ErrShort          = fmt.Errorf("%w: batch shorter than its header", tributary.ErrCorruptMessage)
	ErrBadLength      = fmt.Errorf("%w: batch length inconsistent with the bytes", tributary.ErrCorruptMessage)
	ErrOldMagic       = fmt.Errorf("%w: message format below v2 (magic 2)", tributary.ErrUnsupportedForMessageFormat)
	ErrBadMagic       = fmt.Errorf("%w: unknown magic byte", tributary.ErrCorruptMessage)
	ErrBadCRC         = fmt.Errorf("%w: batch CRC-32C mismatch", tributary.ErrCorruptMessage)
	ErrBadCodec       = fmt.Errorf("%w: unknown compression codec", tributary.ErrCorruptMessage)
	ErrBadCount       = fmt.Errorf("%w: record count does not match the records present", tributary.ErrCorruptMessage)
	ErrBadRecord      = fmt.Errorf("%w: malformed record", tributary.ErrCorruptMessage)
	ErrBadOffsetDelta = fmt.Errorf("%w: record offset deltas not increasing within lastOffsetDelta", tributary.ErrCorruptMessage)
	ErrBadDecompress  = fmt.Errorf("%w: records do not decompress", tributary.ErrCorruptMessage)
	ErrTooLarge       = fmt.Errorf("%w: decompressed records exceed the limit", tributary.ErrMessageTooLarge)
)

// Header is the decoded fixed header of a RecordBatch v2.
type Header struct {
	BaseOffset           int64
	Length               int32
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	RecordCount          int32
}

// ParseHeader decodes the header at the start of b. It checks only that
// the header is present and the magic byte is 2; Validate checks the rest.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < offMagic+1 {
		return Header{}, ErrShort
	}
	if m := int8(b[offMagic]); m != 2 {
		if m == 0 || m == 1 {
			return Header{}, ErrOldMagic
		}
		return Header{}, ErrBadMagic
	}
	if len(b) < HeaderSize {
		return Header{}, ErrShort
	}
	be := binary.BigEndian
	return Header{
		BaseOffset:           int64(be.Uint64(b[offBaseOffset:])),
		Length:               int32(be.Uint32(b[offLength:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[offLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  be.Uint32(b[offCRC:]),
		Attributes:           int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(be.Uint32(b[offLastOffsetDelta:])),
		BaseTimestamp:        int64(be.Uint64(b[offBaseTimestamp:])),
		MaxTimestamp:         int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(be.Uint32(b[offBaseSequence:])),
		RecordCount:          int32(be.Uint32(b[offRecordCount:])),
	}, nil
}

// Size is the bytes the whole batch occupies.
func (h *Header) Size() int64 { return int64(h.Length) + LengthOverhead }

// LastOffset is the offset of the batch's last record.
func (h *Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Codec is the compression codec of the records region.
func (h *Header) Codec() compress.Codec { return compress.Codec(h.Attributes & AttrCodecMask) }

// IsTransactional reports attribute bit 4.
func (h *Header) IsTransactional() bool { return h.Attributes&AttrTransactional != 0 }

// IsControl reports attribute bit 5 (transaction markers).
func (h *Header) IsControl() bool { return h.Attributes&AttrControl != 0 }

// IsLogAppendTime reports attribute bit 3: every record's timestamp is
// MaxTimestamp.
func (h *Header) IsLogAppendTime() bool { return h.Attributes&AttrLogAppendTime != 0 }

// LastSequence is the sequence number of the batch's last record; Kafka
// sequences wrap from math.MaxInt32 to 0.
func (h *Header) LastSequence() int32 { return IncrementSequence(h.BaseSequence, h.LastOffsetDelta) }

// IncrementSequence adds inc to seq the way Kafka does: past
// math.MaxInt32 the sequence continues from 0.
func IncrementSequence(seq, inc int32) int32 {
	if seq > math.MaxInt32-inc {
		return inc - (math.MaxInt32 - seq) - 1
	}
	return seq + inc
}

// SizeAt returns the total size of the batch starting at b from its length
// field, or -1 if b is shorter than the length field or the length is
// below MinLength.
func SizeAt(b []byte) int64 {
	if len(b) < LengthOverhead {
		return -1
	}
	n := int32(binary.BigEndian.Uint32(b[offLength:]))
	if n < MinLength {
		return -1
	}
	return int64(n) + LengthOverhead
}

// ComputeCRC returns the CRC-32C of b[21:], the range the batch CRC covers.
func ComputeCRC(b []byte) uint32 { return crc32.Checksum(b[offAttributes:], castagnoli) }

// SetBaseOffset rewrites the base offset (outside the CRC).
func SetBaseOffset(b []byte, off int64) { binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(off)) }

// SetPartitionLeaderEpoch rewrites the leader epoch (outside the CRC).
func SetPartitionLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(epoch))
}

// SetLogAppendTime marks the batch as LogAppendTime with timestamp ts (the
// broker's clock) and recomputes the CRC. b must be exactly one batch.
func SetLogAppendTime(b []byte, ts int64) {
	be := binary.BigEndian
	attrs := be.Uint16(b[offAttributes:]) | AttrLogAppendTime
	be.PutUint16(b[offAttributes:], attrs)
	be.PutUint64(b[offMaxTimestamp:], uint64(ts))
	be.PutUint32(b[offCRC:], ComputeCRC(b))
}

// SetMaxTimestamp rewrites maxTimestamp and recomputes the CRC. b must be
// exactly one batch.
func SetMaxTimestamp(b []byte, ts int64) {
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(ts))
	binary.BigEndian.PutUint32(b[offCRC:], ComputeCRC(b))
}

// Info is what Validate learned about a batch.
type Info struct {
	Header
	// NumRecords is the records actually walked (equal to RecordCount
	// for a valid batch).
	NumRecords int32
	// MaxTimestamp is the largest record timestamp (for LogAppendTime
	// batches, the header's maxTimestamp), or -1 with no records.
	MaxTimestamp int64
	// MaxTimestampDelta is the offset delta of the first record carrying
	// MaxTimestamp, or -1 with no records.
	MaxTimestampDelta int32
	// NullKeys counts the records without a key (a compacted topic
	// refuses them).
	NullKeys int32
}

// OffsetOfMaxTimestamp is the offset of the first record carrying
// MaxTimestamp, or -1 with no records.
func (i *Info) OffsetOfMaxTimestamp() int64 {
	if i.MaxTimestampDelta < 0 {
		return -1
	}
	return i.BaseOffset + int64(i.MaxTimestampDelta)
}

// bufPool holds decompression buffers; buffers that grew past maxPooled
// are dropped so one huge batch does not pin memory.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

const maxPooled = 4 << 20

// GetBuffer and PutBuffer lend the package's decompression buffers to
// callers that decompress records themselves (RecordsRegion).
func GetBuffer() *[]byte { return bufPool.Get().(*[]byte) }

// PutBuffer returns a buffer from GetBuffer.
func PutBuffer(p *[]byte) {
	if cap(*p) <= maxPooled {
		*p = (*p)[:0]
		bufPool.Put(p)
	}
}

// Validate checks that b is exactly one well-formed RecordBatch v2: the
// header, batchLength against len(b), the CRC, the codec, and every record
// (lengths consistent, offset deltas increasing and within
// lastOffsetDelta, count equal to recordCount). Compressed records are
// decompressed into a pooled buffer and may not exceed limit bytes.
// Valid input is checked without allocating.
func Validate(b []byte, limit int) (Info, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return Info{}, err
	}
	if h.Length < MinLength || int64(len(b)) != h.Size() {
		return Info{}, ErrBadLength
	}
	if ComputeCRC(b) != h.CRC {
		return Info{}, ErrBadCRC
	}
	if h.Attributes&AttrCodecMask > int16(compress.ZSTD) {
		return Info{}, ErrBadCodec
	}
	if h.RecordCount < 0 || h.LastOffsetDelta < 0 {
		return Info{}, ErrBadCount
	}
	info := Info{Header: h, MaxTimestamp: -1, MaxTimestampDelta: -1}
	region := b[HeaderSize:]
	if c := h.Codec(); c != compress.None {
		p := GetBuffer()
		defer PutBuffer(p)
		out, err := compress.Decompress(c, (*p)[:0], region, limit)
		if cap(out) > cap(*p) {
			*p = out[:0]
		}
		if err != nil {
			if err == compress.ErrTooLarge {
				return Info{}, ErrTooLarge
			}
			return Info{}, ErrBadDecompress
		}
		region = out
	}
	if err := walk(&info, region); err != nil {
		return Info{}, err
	}
	return info, nil
}

func walk(info *Info, region []byte) error {
	h := &info.Header
	// A record is at least 7 bytes, so the count is bounded by the bytes
	// present before any work is done for it.
	if int64(h.RecordCount) > int64(len(region)) {
		return ErrBadCount
	}
	it := Records{b: region, left: h.RecordCount}
	var r Record
	prev := int32(-1)
	for it.Next(&r) {
		if r.OffsetDelta <= prev || r.OffsetDelta > h.LastOffsetDelta {
			return ErrBadOffsetDelta
		}
		prev = r.OffsetDelta
		info.NumRecords++
		if r.Key == nil {
			info.NullKeys++
		}
		ts := h.BaseTimestamp + r.TimestampDelta
		if h.IsLogAppendTime() {
			ts = h.MaxTimestamp
		}
		if ts > info.MaxTimestamp || info.MaxTimestampDelta < 0 {
			info.MaxTimestamp = ts
			info.MaxTimestampDelta = r.OffsetDelta
		}
	}
	return it.Err()
}

// RecordsRegion returns the records bytes of the batch b: a view of b when
// it is uncompressed, else its decompression appended to dst (at most
// limit bytes).
func RecordsRegion(b []byte, dst []byte, limit int) ([]byte, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) < h.Size() || h.Length < MinLength {
		return nil, ErrBadLength
	}
	region := b[HeaderSize:h.Size()]
	c := h.Codec()
	if c == compress.None {
		return region, nil
	}
	if c > compress.ZSTD {
		return nil, ErrBadCodec
	}
	out, err := compress.Decompress(c, dst, region, limit)
	if err != nil {
		if err == compress.ErrTooLarge {
			return nil, ErrTooLarge
		}
		return nil, ErrBadDecompress
	}
	return out, nil
}
