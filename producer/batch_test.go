package producer

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/internal/compress"
)

// decodeBatch parses wire with kmsg (an independent implementation of the
// RecordBatch v2 format) and checks header, CRC and every record.
func decodeBatch(t testing.TB, wire []byte) (kmsg.RecordBatch, []kmsg.Record) {
	t.Helper()
	var rb kmsg.RecordBatch
	require.NoError(t, rb.ReadFrom(wire))
	require.Equal(t, int8(2), rb.Magic)
	require.Equal(t, int32(len(wire)-12), rb.Length)
	require.Equal(t, uint32(rb.CRC), crc32.Checksum(wire[21:], crc32.MakeTable(crc32.Castagnoli)))
	region := rb.Records
	if codec := compress.Codec(rb.Attributes & 7); codec != compress.None {
		var err error
		region, err = compress.Decompress(codec, nil, region, 64<<20)
		require.NoError(t, err)
	}
	var recs []kmsg.Record
	for len(region) > 0 {
		l, n := binary.Varint(region)
		require.Greater(t, n, 0)
		var r kmsg.Record
		require.NoError(t, r.ReadFrom(region[:n+int(l)]))
		recs = append(recs, r)
		region = region[n+int(l):]
	}
	require.Len(t, recs, int(rb.NumRecords))
	require.Equal(t, rb.NumRecords-1, rb.LastOffsetDelta)
	return rb, recs
}

func encodeBatch(t testing.TB, recs []*tributary.Record, codec Codec, pid int64, epoch int16, seq int32) []byte {
	var f freeList
	b := newBatch(&f, nil, time.Now(), 0)
	for _, r := range recs {
		b.append(r, nil, nil, r.Timestamp.UnixMilli(), 0, bodySize0(r))
	}
	b.pid, b.epoch, b.seq = pid, epoch, seq
	require.NoError(t, b.seal(codec))
	return b.wire
}

func checkRoundTrip(t testing.TB, recs []*tributary.Record, codec Codec) {
	wire := encodeBatch(t, recs, codec, 77, 3, 1000)
	rb, got := decodeBatch(t, wire)
	require.Equal(t, int16(codec), rb.Attributes&7)
	require.Equal(t, int64(77), rb.ProducerID)
	require.Equal(t, int16(3), rb.ProducerEpoch)
	require.Equal(t, int32(1000), rb.FirstSequence)
	maxTs := recs[0].Timestamp.UnixMilli()
	for i, r := range recs {
		g := got[i]
		maxTs = max(maxTs, r.Timestamp.UnixMilli())
		require.Equal(t, int32(i), g.OffsetDelta)
		require.Equal(t, r.Timestamp.UnixMilli(), rb.FirstTimestamp+g.TimestampDelta64)
		require.Equal(t, r.Key == nil, g.Key == nil)
		require.True(t, bytes.Equal(r.Key, g.Key))
		require.Equal(t, r.Value == nil, g.Value == nil)
		require.True(t, bytes.Equal(r.Value, g.Value))
		require.Len(t, g.Headers, len(r.Headers))
		for j, h := range r.Headers {
			require.Equal(t, h.Key, g.Headers[j].Key)
			require.Equal(t, h.Value == nil, g.Headers[j].Value == nil)
			require.True(t, bytes.Equal(h.Value, g.Headers[j].Value))
		}
		// Our size arithmetic must agree with what we wrote.
		body := bodyAt(bodySize0(r), r.Timestamp.UnixMilli()-rb.FirstTimestamp, int32(i))
		require.Equal(t, int32(body), g.Length)
	}
	require.Equal(t, maxTs, rb.MaxTimestamp)
}

func randBytes(rng *rand.Rand, max int) []byte {
	switch rng.IntN(4) {
	case 0:
		return nil
	case 1:
		return []byte{}
	}
	b := make([]byte, rng.IntN(max))
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	return b
}

func randRecords(rng *rand.Rand) []*tributary.Record {
	n := 1 + rng.IntN(50)
	base := time.UnixMilli(rng.Int64N(1 << 42))
	recs := make([]*tributary.Record, n)
	for i := range recs {
		r := &tributary.Record{Key: randBytes(rng, 40), Value: randBytes(rng, 3000)}
		// Timestamps jump around, including before the first record's.
		r.Timestamp = base.Add(time.Duration(rng.Int64N(1<<40)-1<<39) * time.Microsecond)
		for range rng.IntN(4) {
			r.Headers = append(r.Headers, tributary.Header{Key: string(randBytes(rng, 10)), Value: randBytes(rng, 20)})
		}
		recs[i] = r
	}
	return recs
}

func TestBatchEncodingRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		recs := randRecords(rng)
		for _, codec := range []Codec{NoCompression, Gzip, Snappy, LZ4, ZSTD} {
			checkRoundTrip(t, recs, codec)
		}
	}
}

// A header rewrite (epoch bump) keeps the batch valid.
func TestBatchHeaderRewrite(t *testing.T) {
	recs := randRecords(rand.New(rand.NewPCG(3, 4)))
	var f freeList
	b := newBatch(&f, nil, time.Now(), 0)
	for _, r := range recs {
		b.append(r, nil, nil, r.Timestamp.UnixMilli(), 0, bodySize0(r))
	}
	b.pid, b.epoch, b.seq = 1, 0, 5
	require.NoError(t, b.seal(Gzip))
	b.pid, b.epoch, b.seq = 2, 1, 0
	b.writeHeader(Gzip)
	rb, _ := decodeBatch(t, b.wire)
	require.Equal(t, int64(2), rb.ProducerID)
	require.Equal(t, int16(1), rb.ProducerEpoch)
	require.Equal(t, int32(0), rb.FirstSequence)
}

func TestIncSeqWraps(t *testing.T) {
	require.Equal(t, int32(10), incSeq(5, 5))
	require.Equal(t, int32(0), incSeq(2147483647, 1))
	require.Equal(t, int32(4), incSeq(2147483640, 12))
}

func FuzzBatchEncoding(f *testing.F) {
	f.Add(uint64(1), uint64(2))
	f.Add(uint64(99), uint64(7))
	f.Fuzz(func(t *testing.T, a, b uint64) {
		recs := randRecords(rand.New(rand.NewPCG(a, b)))
		checkRoundTrip(t, recs, Codec(a%5))
	})
}
