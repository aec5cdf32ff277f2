package batch_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/internal/batch"
	"github.com/tributary/tributary/internal/batch/batchtest"
	"github.com/tributary/tributary/internal/compress"
)

var codecs = []compress.Codec{compress.None, compress.Gzip, compress.Snappy, compress.LZ4, compress.ZSTD}

const limit = 1 << 20

func sample(c compress.Codec) []byte {
	o := batchtest.NonIdempotent(1_700_000_000_000)
	o.Codec = c
	return batchtest.Build(o,
		batchtest.Rec{Key: []byte("k0"), Value: []byte("v0"), TsDelta: 5},
		batchtest.Rec{Key: nil, Value: []byte("v1"), TsDelta: 9, Headers: []kmsg.Header{{Key: "h", Value: []byte("hv")}, {Key: "n", Value: nil}}},
		batchtest.Rec{Key: []byte("k2"), Value: nil, TsDelta: 9},
	)
}

func TestValidateEveryCodec(t *testing.T) {
	for _, c := range codecs {
		t.Run(c.String(), func(t *testing.T) {
			b := sample(c)
			info, err := batch.Validate(b, limit)
			require.NoError(t, err)
			require.EqualValues(t, 3, info.NumRecords)
			require.EqualValues(t, 3, info.RecordCount)
			require.Equal(t, c, info.Codec())
			require.EqualValues(t, 1_700_000_000_009, info.MaxTimestamp)
			require.EqualValues(t, 1, info.OffsetOfMaxTimestamp(), "first record with the max timestamp")
			require.EqualValues(t, len(b), info.Size())

			region, err := batch.RecordsRegion(b, nil, limit)
			require.NoError(t, err)
			it := batch.NewRecords(region, info.RecordCount)
			var r batch.Record
			var keys, vals []string
			var hdrs []string
			for it.Next(&r) {
				keys = append(keys, str(r.Key))
				vals = append(vals, str(r.Value))
				for {
					k, v, ok := r.Headers.Next()
					if !ok {
						break
					}
					hdrs = append(hdrs, string(k)+"="+str(v))
				}
			}
			require.NoError(t, it.Err())
			require.Equal(t, []string{"k0", "<nil>", "k2"}, keys)
			require.Equal(t, []string{"v0", "v1", "<nil>"}, vals)
			require.Equal(t, []string{"h=hv", "n=<nil>"}, hdrs)
		})
	}
}

func str(b []byte) string {
	if b == nil {
		return "<nil>"
	}
	return string(b)
}

func TestValidateRejects(t *testing.T) {
	good := sample(compress.None)
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	fixCRC := func(b []byte) []byte {
		crc := batch.ComputeCRC(b)
		b[17], b[18], b[19], b[20] = byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc)
		return b
	}
	cases := []struct {
		name string
		b    []byte
		want error
		code *tributary.Error
	}{
		{"empty", nil, batch.ErrShort, tributary.ErrCorruptMessage},
		{"partial header", good[:40], batch.ErrShort, tributary.ErrCorruptMessage},
		{"truncated", good[:len(good)-1], batch.ErrBadLength, tributary.ErrCorruptMessage},
		{"trailing", append(bytes.Clone(good), 0), batch.ErrBadLength, tributary.ErrCorruptMessage},
		{"magic 1", mut(func(b []byte) []byte { b[16] = 1; return b }), batch.ErrOldMagic, tributary.ErrUnsupportedForMessageFormat},
		{"magic 3", mut(func(b []byte) []byte { b[16] = 3; return b }), batch.ErrBadMagic, tributary.ErrCorruptMessage},
		{"flipped record byte", mut(func(b []byte) []byte { b[len(b)-3] ^= 0x40; return b }), batch.ErrBadCRC, tributary.ErrCorruptMessage},
		{"codec 7", mut(func(b []byte) []byte { b[22] |= 7; return fixCRC(b) }), batch.ErrBadCodec, tributary.ErrCorruptMessage},
		{"count too high", mut(func(b []byte) []byte { b[60] = 4; return fixCRC(b) }), batch.ErrBadCount, tributary.ErrCorruptMessage},
		{"count too low", mut(func(b []byte) []byte { b[60] = 2; return fixCRC(b) }), batch.ErrBadCount, tributary.ErrCorruptMessage},
		{"record length lies", mut(func(b []byte) []byte { b[61] += 2; return fixCRC(b) }), batch.ErrBadRecord, tributary.ErrCorruptMessage},
		{"offset delta beyond last", mut(func(b []byte) []byte { b[26] = 1; return fixCRC(b) }), batch.ErrBadOffsetDelta, tributary.ErrCorruptMessage},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := batch.Validate(c.b, limit)
			require.ErrorIs(t, err, c.want)
			require.ErrorIs(t, err, c.code)
			require.Equal(t, c.code.Code, tributary.CodeOf(err))
		})
	}
}

func TestZipBombIsBounded(t *testing.T) {
	big := make([]byte, 4<<20) // zeros compress ~1000x
	o := batchtest.NonIdempotent(0)
	o.Codec = compress.ZSTD
	b := batchtest.Build(o, batchtest.Rec{Value: big})
	require.Less(t, len(b), 64<<10)
	_, err := batch.Validate(b, 1<<20)
	require.ErrorIs(t, err, batch.ErrTooLarge)
	require.Equal(t, tributary.ErrMessageTooLarge.Code, tributary.CodeOf(err))
	_, err = batch.Validate(b, 8<<20)
	require.NoError(t, err)
}

func TestRewriteInPlace(t *testing.T) {
	for _, c := range codecs {
		b := sample(c)
		before, err := batch.Validate(b, limit)
		require.NoError(t, err)
		batch.SetBaseOffset(b, 1000)
		batch.SetPartitionLeaderEpoch(b, 7)
		after, err := batch.Validate(b, limit)
		require.NoError(t, err, "base offset and leader epoch are outside the CRC")
		require.EqualValues(t, 1000, after.BaseOffset)
		require.EqualValues(t, 7, after.PartitionLeaderEpoch)
		require.EqualValues(t, 1002, after.LastOffset())
		require.Equal(t, before.OffsetOfMaxTimestamp()+1000, after.OffsetOfMaxTimestamp())

		batch.SetLogAppendTime(b, 42)
		lat, err := batch.Validate(b, limit)
		require.NoError(t, err, "CRC recomputed")
		require.True(t, lat.IsLogAppendTime())
		require.EqualValues(t, 42, lat.MaxTimestamp)
		require.EqualValues(t, 1000, lat.OffsetOfMaxTimestamp())

		// kmsg agrees with what we wrote.
		var kb kmsg.RecordBatch
		require.NoError(t, kb.ReadFrom(b))
		require.EqualValues(t, 1000, kb.FirstOffset)
		require.EqualValues(t, 42, kb.MaxTimestamp)
		require.EqualValues(t, 8|int16(c), kb.Attributes)
	}
}

func TestIncrementSequenceWraps(t *testing.T) {
	require.EqualValues(t, 5, batch.IncrementSequence(2, 3))
	require.EqualValues(t, math.MaxInt32, batch.IncrementSequence(math.MaxInt32-1, 1))
	require.EqualValues(t, 0, batch.IncrementSequence(math.MaxInt32, 1))
	require.EqualValues(t, 2, batch.IncrementSequence(math.MaxInt32-1, 4))
}

func TestValidateDoesNotAllocate(t *testing.T) {
	b := batchtest.Build(batchtest.NonIdempotent(0), batchtest.Values(100, 100)...)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := batch.Validate(b, limit); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs)
	bad := bytes.Clone(b)
	bad[100] ^= 1
	allocs = testing.AllocsPerRun(100, func() {
		if _, err := batch.Validate(bad, limit); !errors.Is(err, batch.ErrBadCRC) {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs, "rejecting does not allocate either")
}

func BenchmarkValidate(b *testing.B) {
	for _, c := range []compress.Codec{compress.None, compress.Snappy, compress.ZSTD} {
		o := batchtest.NonIdempotent(0)
		o.Codec = c
		bb := batchtest.Build(o, batchtest.Values(100, 100)...)
		b.Run(c.String(), func(b *testing.B) {
			b.SetBytes(100 * 100)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := batch.Validate(bb, limit); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestKgoProducedBatches validates batches exactly as franz-go's producer
// sends them and reads back every record through the iterator.
func TestKgoProducedBatches(t *testing.T) {
	for _, c := range codecs {
		t.Run(c.String(), func(t *testing.T) {
			// Compressible values: kgo sends uncompressed when
			// compressing does not shrink the batch.
			values := []string{strings.Repeat("alpha", 50), "", strings.Repeat("gamma-", 90), "delta"}
			bs, err := batchtest.FromKgo(c, values...)
			require.NoError(t, err)
			require.NotEmpty(t, bs)
			var got []string
			for _, b := range bs {
				info, err := batch.Validate(b, limit)
				require.NoError(t, err)
				require.Equal(t, c, info.Codec())
				require.GreaterOrEqual(t, info.ProducerID, int64(0), "kgo is idempotent by default")
				region, err := batch.RecordsRegion(b, nil, limit)
				require.NoError(t, err)
				it := batch.NewRecords(region, info.RecordCount)
				var r batch.Record
				for it.Next(&r) {
					got = append(got, string(r.Value))
					k, v, ok := r.Headers.Next()
					require.True(t, ok)
					require.Equal(t, "i", string(k))
					require.Equal(t, string(r.Key), string(v))
				}
				require.NoError(t, it.Err())
			}
			require.Equal(t, values, got)
		})
	}
}
