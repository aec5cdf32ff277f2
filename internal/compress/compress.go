// Package compress implements Kafka's record batch compression codecs
// (gzip, snappy, lz4, zstd) for both the SDK and the broker.
//
// Compress appends to a caller-owned buffer and Decompress never produces
// more than a caller-given limit, so a hostile batch (a "zip bomb") cannot
// make either side allocate without bound. Encoders and decoders are pooled
// because building them dominates the cost of small batches.
package compress

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Codec is the compression type stored in bits 0-2 of a batch's attributes.
type Codec int8

const (
	None   Codec = 0
	Gzip   Codec = 1
	Snappy Codec = 2
	LZ4    Codec = 3
	ZSTD   Codec = 4
)

func (c Codec) String() string {
	switch c {
	case None:
		return "none"
	case Gzip:
		return "gzip"
	case Snappy:
		return "snappy"
	case LZ4:
		return "lz4"
	case ZSTD:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// ParseCodec maps Kafka's compression.type names to a Codec.
func ParseCodec(s string) (Codec, error) {
	switch s {
	case "none", "uncompressed", "":
		return None, nil
	case "gzip":
		return Gzip, nil
	case "snappy":
		return Snappy, nil
	case "lz4":
		return LZ4, nil
	case "zstd":
		return ZSTD, nil
	}
	return None, fmt.Errorf("unknown compression type %q", s)
}

var (
	// ErrTooLarge means the decompressed data would exceed the given limit.
	ErrTooLarge = errors.New("compress: decompressed size exceeds limit")
	// ErrUnknownCodec means the attributes name a codec Kafka does not define.
	ErrUnknownCodec = errors.New("compress: unknown codec")
)

var (
	gzipWriters = sync.Pool{New: func() any { w, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression); return w }}
	gzipReaders sync.Pool
	lz4Writers  = sync.Pool{New: func() any { return lz4.NewWriter(nil) }}
	lz4Readers  = sync.Pool{New: func() any { return lz4.NewReader(nil) }}
	zstdEnc     = sync.Pool{New: func() any {
		e, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
		return e
	}}
	zstdDec = sync.Pool{New: func() any {
		d, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdMaxWindow))
		return d
	}}
)

// zstdMaxWindow bounds the window a zstd frame may declare. The decoder
// allocates the declared window up front, so without a bound an 11-byte
// frame claiming a 320 MiB window (found by FuzzDecompress) made every
// decode allocate 320 MiB. 16 MiB covers every compression level up to
// 19 (window log 23); frames from levels 20-22 on unknown-size streams
// are refused as corrupt.
const zstdMaxWindow = 16 << 20

// appendWriter adapts a byte slice to io.Writer.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

// Compress appends src compressed with c to dst and returns the result.
func Compress(c Codec, dst, src []byte) ([]byte, error) {
	switch c {
	case None:
		return append(dst, src...), nil
	case Gzip:
		w := gzipWriters.Get().(*gzip.Writer)
		defer gzipWriters.Put(w)
		aw := &appendWriter{b: dst}
		w.Reset(aw)
		if _, err := w.Write(src); err != nil {
			return dst, err
		}
		if err := w.Close(); err != nil {
			return dst, err
		}
		return aw.b, nil
	case Snappy:
		// Raw snappy block: what librdkafka and franz-go send and every
		// Kafka (including the Java client) reads.
		n := snappy.MaxEncodedLen(len(src))
		dst = grow(dst, n)
		out := snappy.Encode(dst[len(dst):len(dst)+n], src)
		return dst[:len(dst)+len(out)], nil
	case LZ4:
		w := lz4Writers.Get().(*lz4.Writer)
		defer lz4Writers.Put(w)
		aw := &appendWriter{b: dst}
		w.Reset(aw)
		if _, err := w.Write(src); err != nil {
			return dst, err
		}
		if err := w.Close(); err != nil {
			return dst, err
		}
		return aw.b, nil
	case ZSTD:
		e := zstdEnc.Get().(*zstd.Encoder)
		defer zstdEnc.Put(e)
		return e.EncodeAll(src, dst), nil
	}
	return dst, ErrUnknownCodec
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), len(b)+n)
	copy(nb, b)
	return nb
}

// xerialMagic opens snappy data framed by the Java client's xerial
// SnappyOutputStream (the Java producer's format).
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// Decompress appends the decompression of src to dst, failing with
// ErrTooLarge rather than producing more than limit bytes.
func Decompress(c Codec, dst, src []byte, limit int) ([]byte, error) {
	switch c {
	case None:
		if len(src) > limit {
			return dst, ErrTooLarge
		}
		return append(dst, src...), nil
	case Gzip:
		var r *gzip.Reader
		if v := gzipReaders.Get(); v != nil {
			r = v.(*gzip.Reader)
			if err := r.Reset(bytes.NewReader(src)); err != nil {
				return dst, err
			}
		} else {
			var err error
			if r, err = gzip.NewReader(bytes.NewReader(src)); err != nil {
				return dst, err
			}
		}
		defer gzipReaders.Put(r)
		return readLimited(dst, r, limit)
	case Snappy:
		if bytes.HasPrefix(src, xerialMagic) {
			return decodeXerial(dst, src, limit)
		}
		return decodeSnappyBlock(dst, src, limit)
	case LZ4:
		r := lz4Readers.Get().(*lz4.Reader)
		defer lz4Readers.Put(r)
		r.Reset(bytes.NewReader(src))
		return readLimited(dst, r, limit)
	case ZSTD:
		d := zstdDec.Get().(*zstd.Decoder)
		defer zstdDec.Put(d)
		if err := d.Reset(bytes.NewReader(src)); err != nil {
			return dst, err
		}
		return readLimited(dst, d, limit)
	}
	return dst, ErrUnknownCodec
}

func decodeSnappyBlock(dst, src []byte, limit int) ([]byte, error) {
	n, err := snappy.DecodedLen(src)
	if err != nil {
		return dst, err
	}
	if n > limit {
		return dst, ErrTooLarge
	}
	dst = grow(dst, n)
	out, err := s2.Decode(dst[len(dst):len(dst)+n], src)
	if err != nil {
		return dst, err
	}
	return dst[:len(dst)+len(out)], nil
}

// decodeXerial reads the xerial framing: an 8-byte magic, two 4-byte
// versions, then chunks of a 4-byte big-endian length and a snappy block.
func decodeXerial(dst, src []byte, limit int) ([]byte, error) {
	if len(src) < 16 {
		return dst, errors.New("compress: short xerial snappy header")
	}
	start := len(dst)
	src = src[16:]
	for len(src) > 0 {
		if len(src) < 4 {
			return dst, errors.New("compress: truncated xerial snappy chunk")
		}
		n := binary.BigEndian.Uint32(src)
		src = src[4:]
		if uint64(n) > uint64(len(src)) {
			return dst, errors.New("compress: truncated xerial snappy chunk")
		}
		var err error
		dst, err = decodeSnappyBlock(dst, src[:n], limit-(len(dst)-start))
		if err != nil {
			return dst, err
		}
		src = src[n:]
	}
	return dst, nil
}

func readLimited(dst []byte, r io.Reader, limit int) ([]byte, error) {
	start := len(dst)
	for {
		if len(dst)-start > limit {
			return dst, ErrTooLarge
		}
		if cap(dst) == len(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			if len(dst)-start > limit {
				return dst, ErrTooLarge
			}
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}
