package storage

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/internal/batch"
	"github.com/tributary/tributary/internal/batch/batchtest"
	"github.com/tributary/tributary/internal/compress"
	"github.com/tributary/tributary/internal/vfs"
)

var allCodecs = []compress.Codec{compress.None, compress.Gzip, compress.Snappy, compress.LZ4, compress.ZSTD}

func TestAppendReadEveryCodec(t *testing.T) {
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			clk := newClock()
			l := openT(t, t.TempDir(), testConfig(), clk)
			defer l.Close()
			var want []string
			for i := range 4 {
				tag := fmt.Sprintf("b%d", i)
				r := mustAppend(t, l, mkBatch(c, clk.Ms(), tag, 3))
				require.EqualValues(t, 3*i, r.BaseOffset)
				require.EqualValues(t, 3*i+2, r.LastOffset)
				require.EqualValues(t, -1, r.LogAppendTime)
				require.False(t, r.Duplicate)
				for j := range 3 {
					want = append(want, fmt.Sprintf("%s-%d", tag, j))
				}
			}
			require.EqualValues(t, 12, l.LogEndOffset())
			require.EqualValues(t, 12, l.HighWatermark())
			got := readAll(t, l)
			requireContiguous(t, got, 0, 12)
			for i, r := range got {
				require.Equal(t, want[i], r.value)
			}
			// Stored batches carry the leader epoch and still validate.
			fs, err := l.Read(0, 12, 1<<20, false)
			require.NoError(t, err)
			raw := sliceBytes(t, fs)
			info, err := batch.Validate(raw[:batch.SizeAt(raw)], 1<<20)
			require.NoError(t, err)
			require.EqualValues(t, 0, info.PartitionLeaderEpoch)
		})
	}
}

func TestLeaderEpochAndMultiBatchRequest(t *testing.T) {
	l := openT(t, t.TempDir(), testConfig(), newClock())
	defer l.Close()
	req := append(mkBatch(compress.None, 1, "a", 2), mkBatch(compress.Snappy, 2, "b", 3)...)
	r, err := l.Append(req, 7)
	require.NoError(t, err)
	require.EqualValues(t, 0, r.BaseOffset)
	require.EqualValues(t, 4, r.LastOffset)
	fs, err := l.Read(0, 5, 1<<20, false)
	require.NoError(t, err)
	raw := sliceBytes(t, fs)
	require.Len(t, raw, len(req))
	h1, _ := batch.ParseHeader(raw)
	h2, _ := batch.ParseHeader(raw[h1.Size():])
	require.EqualValues(t, 7, h1.PartitionLeaderEpoch)
	require.EqualValues(t, 7, h2.PartitionLeaderEpoch)
	require.EqualValues(t, 0, h1.BaseOffset)
	require.EqualValues(t, 2, h2.BaseOffset)
}

func TestRejectsBadBatchesAtomically(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.MaxMessageBytes = 4096
	l := openT(t, dir, cfg, newClock())
	defer l.Close()
	mustAppend(t, l, mkBatch(compress.None, 1, "ok", 2))
	good := mkBatch(compress.None, 1, "g", 2)

	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-2] ^= 0xff
	magic1 := bytes.Clone(good)
	magic1[16] = 1
	short := good[:len(good)-3]
	big := batchtest.Build(batchtest.NonIdempotent(1), batchtest.Values(1, 5000)...)
	nonzeroBase := bytes.Clone(good)
	batch.SetBaseOffset(nonzeroBase, 5)
	control := bytes.Clone(good)
	control[22] |= batch.AttrControl
	batch.SetMaxTimestamp(control, 2) // recompute the CRC
	empty := batchtest.Build(batchtest.NonIdempotent(1))

	cases := []struct {
		name string
		req  []byte
		want *tributary.Error
	}{
		{"crc", badCRC, tributary.ErrCorruptMessage},
		{"second batch bad", append(bytes.Clone(good), badCRC...), tributary.ErrCorruptMessage},
		{"magic 1", magic1, tributary.ErrUnsupportedForMessageFormat},
		{"torn", short, tributary.ErrCorruptMessage},
		{"garbage tail", append(bytes.Clone(good), 1, 2, 3), tributary.ErrCorruptMessage},
		{"empty request", nil, tributary.ErrCorruptMessage},
		{"too large", big, tributary.ErrMessageTooLarge},
		{"base offset", nonzeroBase, tributary.ErrInvalidRecord},
		{"control", control, tributary.ErrInvalidRecord},
		{"no records", empty, tributary.ErrCorruptMessage},
	}
	size := l.Size()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := l.Append(c.req, 0)
			require.ErrorIs(t, err, c.want)
			require.Equal(t, c.want.Code, tributary.CodeOf(err))
			require.EqualValues(t, 2, l.LogEndOffset(), "nothing appended")
			require.Equal(t, size, l.Size())
		})
	}
	requireContiguous(t, readAll(t, l), 0, 2)
}

func TestRollBySize(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	one := mkBatch(compress.None, 1, "x", 10)
	cfg.SegmentBytes = int64(3*len(one) + 10) // three batches per segment
	l := openT(t, dir, cfg, newClock())
	for range 10 {
		mustAppend(t, l, mkBatch(compress.None, 1, "x", 10))
	}
	l.mu.Lock()
	bases := []int64{}
	for _, s := range l.segs {
		bases = append(bases, s.base)
		require.LessOrEqual(t, s.size, cfg.SegmentBytes)
	}
	l.mu.Unlock()
	require.Equal(t, []int64{0, 30, 60, 90}, bases)
	for _, b := range bases {
		for _, ext := range []string{".log", ".index", ".timeindex"} {
			require.FileExists(t, filepath.Join(dir, fmt.Sprintf("%020d%s", b, ext)))
		}
	}
	// A roll leaves a producer snapshot at the new base.
	require.FileExists(t, snapshotPath(dir, 90))
	// A read stops at the segment boundary; the next one continues.
	fs, err := l.Read(25, 100, 1<<20, false)
	require.NoError(t, err)
	recs := decodeBatches(t, sliceBytes(t, fs))
	require.EqualValues(t, 20, recs[0].off)
	require.EqualValues(t, 29, recs[len(recs)-1].off)
	requireContiguous(t, readAll(t, l), 0, 100)
	require.NoError(t, l.Close())

	l = openT(t, dir, cfg, newClock())
	defer l.Close()
	require.EqualValues(t, 100, l.LogEndOffset())
	requireContiguous(t, readAll(t, l), 0, 100)
	r := mustAppend(t, l, mkBatch(compress.None, 1, "x", 10))
	require.EqualValues(t, 100, r.BaseOffset)
}

func TestRollByTime(t *testing.T) {
	clk := newClock()
	cfg := testConfig()
	cfg.SegmentMs = 1000
	l := openT(t, t.TempDir(), cfg, clk)
	defer l.Close()
	mustAppend(t, l, mkBatch(compress.None, clk.Ms(), "a", 1))
	clk.Add(500 * time.Millisecond)
	mustAppend(t, l, mkBatch(compress.None, clk.Ms(), "a", 1))
	require.Len(t, l.segs, 1)
	clk.Add(600 * time.Millisecond) // 1100ms after the first batch
	mustAppend(t, l, mkBatch(compress.None, clk.Ms(), "a", 1))
	require.Len(t, l.segs, 2)
	require.EqualValues(t, 2, l.segs[1].base)

	// EnforceRetention rolls an idle segment too.
	clk.Add(2 * time.Second)
	require.NoError(t, l.EnforceRetention())
	require.Len(t, l.segs, 3)
	require.EqualValues(t, 3, l.segs[2].base)
	// An empty active segment is not rolled again.
	clk.Add(2 * time.Second)
	require.NoError(t, l.EnforceRetention())
	require.Len(t, l.segs, 3)
}

func TestRollWhenIndexFull(t *testing.T) {
	cfg := testConfig()
	cfg.IndexIntervalBytes = 0 // an index entry per batch
	cfg.SegmentIndexBytes = 48 // four time entries
	l := openT(t, t.TempDir(), cfg, newClock())
	defer l.Close()
	for i := range 12 {
		mustAppend(t, l, mkBatch(compress.None, int64(i), "a", 1))
	}
	require.Greater(t, len(l.segs), 2)
	for _, s := range l.segs {
		require.LessOrEqual(t, len(s.tidx)*tidxEntrySize, 48)
	}
	requireContiguous(t, readAll(t, l), 0, 12)
}

func TestRetentionBySize(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	cfg := testConfig()
	one := len(mkBatch(compress.None, 1, "x", 10))
	cfg.SegmentBytes = int64(2 * one) // two batches per segment
	cfg.RetentionBytes = int64(5 * one)
	cfg.RetentionMs = -1
	cfg.FileDeleteDelayMs = 1000
	l := openT(t, dir, cfg, clk)
	for range 10 {
		mustAppend(t, l, mkBatch(compress.None, clk.Ms(), "x", 10))
	}
	require.Len(t, l.segs, 5)
	held, err := l.Read(0, 100, 1<<20, false) // a slice of a segment about to go
	require.NoError(t, err)

	require.NoError(t, l.EnforceRetention())
	// 10 batches, retention 5: a segment goes while the rest still holds
	// at least 5 batches (Kafka's total - segment >= retention.bytes), so
	// two go and 6 batches remain.
	require.EqualValues(t, 40, l.LogStartOffset())
	require.Equal(t, int64(6*one), l.Size())
	require.Len(t, l.segs, 3)
	_, err = l.Read(0, 100, 1<<20, false)
	require.ErrorIs(t, err, tributary.ErrOffsetOutOfRange)

	// Files are renamed now and removed after file.delete.delay.ms; the
	// held slice stays readable meanwhile.
	require.FileExists(t, filepath.Join(dir, fmt.Sprintf("%020d.log.deleted", 0)))
	require.NoFileExists(t, filepath.Join(dir, fmt.Sprintf("%020d.log", 0)))
	require.Len(t, decodeBatches(t, sliceBytes(t, held)), 20)
	clk.Add(2 * time.Second)
	require.NoError(t, l.EnforceRetention())
	require.NoFileExists(t, filepath.Join(dir, fmt.Sprintf("%020d.log.deleted", 0)))
	require.NoError(t, l.Close())

	l = openT(t, dir, cfg, clk)
	defer l.Close()
	require.EqualValues(t, 40, l.LogStartOffset())
	requireContiguous(t, readAll(t, l), 40, 100)
}

func TestRetentionByTime(t *testing.T) {
	clk := newClock()
	cfg := testConfig()
	cfg.RetentionMs = 10_000
	cfg.SegmentMs = 1000
	l := openT(t, t.TempDir(), cfg, clk)
	defer l.Close()
	for range 5 {
		mustAppend(t, l, mkBatch(compress.None, clk.Ms(), "x", 2))
		clk.Add(1500 * time.Millisecond) // every append rolls
	}
	require.Len(t, l.segs, 5)
	// Segments hold timestamps t0, t0+1.5s, … t0+6s; now = t0+7.5s.
	require.NoError(t, l.EnforceRetention()) // rolls the active one
	require.Len(t, l.segs, 6)
	require.EqualValues(t, 0, l.LogStartOffset())
	clk.Add(5 * time.Second) // now = t0+12.5s: t0 and t0+1.5s are past 10s
	require.NoError(t, l.EnforceRetention())
	require.EqualValues(t, 4, l.LogStartOffset())
	require.Len(t, l.segs, 4)
	clk.Add(time.Hour)
	require.NoError(t, l.EnforceRetention())
	require.Len(t, l.segs, 1, "the active segment stays")
	require.EqualValues(t, 10, l.LogStartOffset())
	require.EqualValues(t, 10, l.LogEndOffset())
	r := mustAppend(t, l, mkBatch(compress.None, clk.Ms(), "x", 2))
	require.EqualValues(t, 10, r.BaseOffset)
	require.EqualValues(t, 10, r.LogStartOffset)
}

func TestDeleteRecordsBefore(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = int64(2 * len(mkBatch(compress.None, 1, "x", 10)))
	l := openT(t, dir, cfg, newClock())
	for range 6 {
		mustAppend(t, l, mkBatch(compress.None, 1, "x", 10))
	}
	require.Len(t, l.segs, 3)
	require.ErrorIs(t, l.DeleteRecordsBefore(61), tributary.ErrOffsetOutOfRange)
	require.NoError(t, l.DeleteRecordsBefore(25))
	require.EqualValues(t, 25, l.LogStartOffset())
	require.Len(t, l.segs, 2, "segment [0,20) deleted")
	_, err := l.Read(24, 60, 1<<20, false)
	require.ErrorIs(t, err, tributary.ErrOffsetOutOfRange)
	requireContiguous(t, readAll(t, l), 25, 60)
	require.NoError(t, l.DeleteRecordsBefore(10), "moving backwards is a no-op")
	require.EqualValues(t, 25, l.LogStartOffset())
	crash(l) // the checkpoint, not Close, must carry it

	l = openT(t, dir, cfg, newClock())
	require.EqualValues(t, 25, l.LogStartOffset())
	require.NoError(t, l.DeleteRecordsBefore(60)) // everything, up to the end
	require.EqualValues(t, 60, l.LogStartOffset())
	require.NoError(t, l.Close())
	l = openT(t, dir, cfg, newClock())
	defer l.Close()
	require.EqualValues(t, 60, l.LogStartOffset())
	require.EqualValues(t, 60, l.LogEndOffset())
	fs, err := l.Read(60, 60, 100, true)
	require.NoError(t, err)
	require.Zero(t, fs.Len)
}

func TestReadBounds(t *testing.T) {
	cfg := testConfig()
	cfg.IndexIntervalBytes = 100
	l := openT(t, t.TempDir(), cfg, newClock())
	defer l.Close()
	var sizes []int64
	for i := range 20 {
		b := mkBatch(compress.None, 1, fmt.Sprint(i), 5)
		sizes = append(sizes, int64(len(b)))
		mustAppend(t, l, b)
	}
	// offset in the middle of a batch starts at that batch
	fs, err := l.Read(12, 100, 1<<20, false)
	require.NoError(t, err)
	recs := decodeBatches(t, sliceBytes(t, fs))
	require.EqualValues(t, 10, recs[0].off)
	require.EqualValues(t, 99, recs[len(recs)-1].off)

	// maxOffset: whole batches below it only
	fs, err = l.Read(12, 33, 1<<20, false)
	require.NoError(t, err)
	recs = decodeBatches(t, sliceBytes(t, fs))
	require.EqualValues(t, 10, recs[0].off)
	require.EqualValues(t, 29, recs[len(recs)-1].off)
	fs, err = l.Read(12, 35, 1<<20, false)
	require.NoError(t, err)
	require.EqualValues(t, 34, decodeBatches(t, sliceBytes(t, fs))[len(decodeBatches(t, sliceBytes(t, fs)))-1].off)

	// maxBytes: whole batches within it
	fs, err = l.Read(0, 100, int32(sizes[0]+sizes[1]+sizes[2]-1), false)
	require.NoError(t, err)
	require.Equal(t, sizes[0]+sizes[1], fs.Len)
	fs, err = l.Read(0, 100, int32(sizes[0]+sizes[1]+sizes[2]), false)
	require.NoError(t, err)
	require.Equal(t, sizes[0]+sizes[1]+sizes[2], fs.Len)

	// minOne: the first batch even if it is larger than maxBytes
	fs, err = l.Read(7, 100, 10, false)
	require.NoError(t, err)
	require.Zero(t, fs.Len)
	fs, err = l.Read(7, 100, 10, true)
	require.NoError(t, err)
	require.Equal(t, sizes[1], fs.Len)
	recs = decodeBatches(t, sliceBytes(t, fs))
	require.EqualValues(t, 5, recs[0].off)

	// but never past maxOffset, even with minOne
	fs, err = l.Read(7, 8, 10, true)
	require.NoError(t, err)
	require.Zero(t, fs.Len)

	// offset == maxOffset: empty; beyond the end or below the start: out of range
	fs, err = l.Read(50, 50, 1<<20, true)
	require.NoError(t, err)
	require.Zero(t, fs.Len)
	fs, err = l.Read(100, 100, 1<<20, true)
	require.NoError(t, err)
	require.Zero(t, fs.Len)
	_, err = l.Read(101, 200, 1<<20, true)
	require.ErrorIs(t, err, tributary.ErrOffsetOutOfRange)
	_, err = l.Read(-1, 200, 1<<20, true)
	require.ErrorIs(t, err, tributary.ErrOffsetOutOfRange)

	// Every (offset, maxOffset, maxBytes) agrees with a brute force over
	// the batch list.
	starts := []int64{0}
	for _, s := range sizes {
		starts = append(starts, starts[len(starts)-1]+s)
	}
	for off := int64(0); off < 100; off += 3 {
		for maxOff := off; maxOff <= 100; maxOff += 7 {
			for _, mb := range []int32{0, 50, 200, 700, 5000} {
				fs, err := l.Read(off, maxOff, mb, true)
				require.NoError(t, err)
				bi := off / 5
				var want int64
				if off < maxOff && (bi+1)*5 <= maxOff {
					end := bi
					for end < 20 && (end+1)*5 <= maxOff && starts[end+1]-starts[bi] <= int64(mb) {
						end++
					}
					if end == bi {
						end = bi + 1 // minOne
					}
					want = starts[end] - starts[bi]
					require.Equal(t, starts[bi], fs.Pos, "off %d max %d mb %d", off, maxOff, mb)
				}
				require.Equal(t, want, fs.Len, "off %d max %d mb %d", off, maxOff, mb)
			}
		}
	}
}

func TestOffsetForTimestampAndMaxTimestamp(t *testing.T) {
	for _, c := range []compress.Codec{compress.None, compress.LZ4} {
		t.Run(c.String(), func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig()
			cfg.IndexIntervalBytes = 0
			cfg.SegmentBytes = 300
			l := openT(t, dir, cfg, newClock())
			// batch i holds 3 records with timestamps 1000+10i, +1, +2;
			// batch 7 holds an out-of-order maximum.
			for i := range 12 {
				ts := int64(1000 + 10*i)
				o := batchtest.NonIdempotent(ts)
				o.Codec = c
				recs := []batchtest.Rec{{Value: []byte("a")}, {Value: []byte("b"), TsDelta: 1}, {Value: []byte("c"), TsDelta: 2}}
				if i == 7 {
					recs[1].TsDelta = 5000
				}
				mustAppend(t, l, batchtest.Build(o, recs...))
			}
			require.Greater(t, len(l.segs), 2)
			check := func() {
				for _, tc := range []struct {
					ts, max    int64
					off, gotTs int64
					ok         bool
				}{
					{0, 36, 0, 1000, true},
					{1000, 36, 0, 1000, true},
					{1001, 36, 1, 1001, true},
					{1003, 36, 3, 1010, true},
					{1052, 36, 17, 1052, true},
					{1075, 36, 22, 6070, true}, // the late record in batch 7
					{1080, 36, 22, 6070, true},
					{6070, 36, 22, 6070, true},
					{6071, 36, 0, 0, false},
					{1075, 21, 0, 0, false},    // hit at/after maxOffset: none
					{1112, 36, 22, 6070, true}, // the late record comes first
					{1112, 21, 0, 0, false},
				} {
					off, ts, ok, err := l.OffsetForTimestamp(tc.ts, tc.max)
					require.NoError(t, err)
					require.Equal(t, tc.ok, ok, "ts %d", tc.ts)
					if tc.ok {
						require.Equal(t, tc.off, off, "ts %d", tc.ts)
						require.Equal(t, tc.gotTs, ts, "ts %d", tc.ts)
					}
				}
				off, ts, ok, err := l.MaxTimestamp(36)
				require.NoError(t, err)
				require.True(t, ok)
				require.EqualValues(t, 22, off)
				require.EqualValues(t, 6070, ts)
				off, ts, ok, err = l.MaxTimestamp(21) // the maximum is above the bound
				require.NoError(t, err)
				require.True(t, ok)
				require.EqualValues(t, 20, off)
				require.EqualValues(t, 1062, ts)
			}
			check()
			require.NoError(t, l.Close())
			// After a reopen the answers come from the loaded indexes;
			// after deleting them, from rebuilt ones.
			l = openT(t, dir, cfg, newClock())
			check()
			require.NoError(t, l.Close())
			removeIndexes(t, dir)
			l = openT(t, dir, cfg, newClock())
			defer l.Close()
			check()
		})
	}
	l := openT(t, t.TempDir(), testConfig(), newClock())
	defer l.Close()
	_, _, ok, err := l.MaxTimestamp(0)
	require.NoError(t, err)
	require.False(t, ok)
	_, _, ok, err = l.OffsetForTimestamp(0, 0)
	require.NoError(t, err)
	require.False(t, ok)
}

func removeIndexes(t *testing.T, dir string) {
	t.Helper()
	for _, pat := range []string{"*.index", "*.timeindex"} {
		m, _ := filepath.Glob(filepath.Join(dir, pat))
		for _, f := range m {
			require.NoError(t, os.Remove(f))
		}
	}
}

func TestLogAppendTime(t *testing.T) {
	clk := newClock()
	cfg := testConfig()
	cfg.LogAppendTime = true
	l := openT(t, t.TempDir(), cfg, clk)
	defer l.Close()
	r := mustAppend(t, l, mkBatch(compress.Gzip, 5, "a", 3))
	require.Equal(t, clk.Ms(), r.LogAppendTime)
	recs := readAll(t, l)
	for _, rc := range recs {
		require.Equal(t, clk.Ms(), rc.ts)
	}
	off, ts, ok, err := l.OffsetForTimestamp(clk.Ms(), 3)
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, 0, off)
	require.Equal(t, clk.Ms(), ts)
}

func TestIdempotentSequences(t *testing.T) {
	l := openT(t, t.TempDir(), testConfig(), newClock())
	defer l.Close()
	const pid = 42
	r0 := mustAppend(t, l, idemBatch(pid, 0, 0, 3, 1))
	r1 := mustAppend(t, l, idemBatch(pid, 0, 3, 2, 1))
	require.EqualValues(t, 3, r1.BaseOffset)
	mustAppend(t, l, mkBatch(compress.None, 1, "other", 4)) // non-idempotent in between

	// Retries of either stored batch are duplicates with the original offsets.
	d, err := l.Append(idemBatch(pid, 0, 0, 3, 1), 0)
	require.NoError(t, err)
	require.True(t, d.Duplicate)
	require.Equal(t, r0.BaseOffset, d.BaseOffset)
	require.Equal(t, r0.LastOffset, d.LastOffset)
	d, err = l.Append(idemBatch(pid, 0, 3, 2, 1), 0)
	require.NoError(t, err)
	require.True(t, d.Duplicate)
	require.EqualValues(t, 3, d.BaseOffset)
	require.EqualValues(t, 4, d.LastOffset)
	require.EqualValues(t, 9, l.LogEndOffset(), "duplicates appended nothing")

	_, err = l.Append(idemBatch(pid, 0, 6, 1, 1), 0) // expected 5
	require.ErrorIs(t, err, tributary.ErrOutOfOrderSequenceNumber)
	_, err = l.Append(idemBatch(pid, 0, 4, 1, 1), 0) // overlaps, not a stored batch
	require.ErrorIs(t, err, tributary.ErrOutOfOrderSequenceNumber)
	mustAppend(t, l, idemBatch(pid, 0, 5, 1, 1))

	// After 5 more batches the first is forgotten: its retry is a gap.
	for s := int32(6); s < 11; s++ {
		mustAppend(t, l, idemBatch(pid, 0, s, 1, 1))
	}
	_, err = l.Append(idemBatch(pid, 0, 0, 3, 1), 0)
	require.ErrorIs(t, err, tributary.ErrOutOfOrderSequenceNumber)

	// Epochs: a new epoch starts at 0, an older one is fenced.
	_, err = l.Append(idemBatch(pid, 1, 5, 1, 1), 0)
	require.ErrorIs(t, err, tributary.ErrOutOfOrderSequenceNumber)
	mustAppend(t, l, idemBatch(pid, 1, 0, 1, 1))
	_, err = l.Append(idemBatch(pid, 0, 11, 1, 1), 0)
	require.ErrorIs(t, err, tributary.ErrInvalidProducerEpoch)
	ep, known := l.ProducerState(pid)
	require.True(t, known)
	require.EqualValues(t, 1, ep)

	// An unknown producer may start anywhere (KIP-360).
	mustAppend(t, l, idemBatch(7, 3, 100, 2, 1))
	mustAppend(t, l, idemBatch(7, 3, 102, 1, 1))
	_, known = l.ProducerState(99)
	require.False(t, known)

	// Sequences wrap past MaxInt32 to 0.
	mustAppend(t, l, idemBatch(8, 0, math.MaxInt32-1, 2, 1))
	mustAppend(t, l, idemBatch(8, 0, 0, 1, 1))
	d, err = l.Append(idemBatch(8, 0, math.MaxInt32-1, 2, 1), 0)
	require.NoError(t, err)
	require.True(t, d.Duplicate)

	// Two batches of one producer in one request are checked in order,
	// and a bad second one rejects both.
	end := l.LogEndOffset()
	_, err = l.Append(append(idemBatch(9, 0, 0, 1, 1), idemBatch(9, 0, 2, 1, 1)...), 0)
	require.ErrorIs(t, err, tributary.ErrOutOfOrderSequenceNumber)
	require.Equal(t, end, l.LogEndOffset())
	_, known = l.ProducerState(9)
	require.False(t, known, "a rejected request leaves no producer state")
	r, err := l.Append(append(idemBatch(9, 0, 0, 1, 1), idemBatch(9, 0, 1, 1, 1)...), 0)
	require.NoError(t, err)
	require.Equal(t, end, r.BaseOffset)
}

func TestDuplicateAfterUncleanReopen(t *testing.T) {
	for _, roll := range []bool{false, true} {
		t.Run(fmt.Sprintf("roll=%v", roll), func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig()
			if roll {
				// Three batches per segment: snapshots at every roll,
				// then a replay of the batches after the newest.
				cfg.SegmentBytes = int64(3*len(idemBatch(1, 0, 0, 2, 1)) + 1)
			}
			l := openT(t, dir, cfg, newClock())
			var res []AppendResult
			for i := range 8 {
				res = append(res, mustAppend(t, l, idemBatch(1, 0, int32(2*i), 2, 1)))
				mustAppend(t, l, idemBatch(2, 5, int32(i), 1, 1))
			}
			if roll {
				names, _ := vfs.Default.ReadDir(dir)
				snaps := snapshotOffsets(names)
				require.NotEmpty(t, snaps)
			}
			crash(l)

			l = openT(t, dir, cfg, newClock())
			defer l.Close()
			require.EqualValues(t, 24, l.LogEndOffset())
			for i := 3; i < 8; i++ {
				d, err := l.Append(idemBatch(1, 0, int32(2*i), 2, 1), 0)
				require.NoError(t, err)
				require.True(t, d.Duplicate, "batch %d", i)
				require.Equal(t, res[i].BaseOffset, d.BaseOffset)
				require.Equal(t, res[i].LastOffset, d.LastOffset)
			}
			require.EqualValues(t, 24, l.LogEndOffset())
			_, err := l.Append(idemBatch(2, 5, 9, 1, 1), 0)
			require.ErrorIs(t, err, tributary.ErrOutOfOrderSequenceNumber)
			mustAppend(t, l, idemBatch(2, 5, 8, 1, 1))
			_, err = l.Append(idemBatch(2, 4, 0, 1, 1), 0)
			require.ErrorIs(t, err, tributary.ErrInvalidProducerEpoch)
		})
	}
}

func TestCorruptSnapshotFallsBack(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, testConfig(), newClock())
	r := mustAppend(t, l, idemBatch(1, 0, 0, 2, 1))
	require.NoError(t, l.Close())
	snap := snapshotPath(dir, 2)
	b, err := os.ReadFile(snap)
	require.NoError(t, err)
	b[len(b)-6] ^= 1
	require.NoError(t, os.WriteFile(snap, b, 0o644))
	// A snapshot beyond the end (from a log later truncated) is dropped.
	require.NoError(t, os.WriteFile(snapshotPath(dir, 1000), encodeSnapshot(nil), 0o644))

	l = openT(t, dir, testConfig(), newClock())
	defer l.Close()
	require.NoFileExists(t, snapshotPath(dir, 1000))
	d, err := l.Append(idemBatch(1, 0, 0, 2, 1), 0)
	require.NoError(t, err)
	require.True(t, d.Duplicate, "state replayed from the log")
	require.Equal(t, r.BaseOffset, d.BaseOffset)
}

func TestProducerExpiration(t *testing.T) {
	clk := newClock()
	cfg := testConfig()
	cfg.ProducerIDExpirationMs = 1000
	l := openT(t, t.TempDir(), cfg, clk)
	defer l.Close()
	mustAppend(t, l, idemBatch(1, 0, 0, 1, clk.Ms()))
	clk.Add(500 * time.Millisecond)
	require.NoError(t, l.EnforceRetention())
	_, known := l.ProducerState(1)
	require.True(t, known)
	clk.Add(600 * time.Millisecond)
	require.NoError(t, l.EnforceRetention())
	_, known = l.ProducerState(1)
	require.False(t, known)
	// Once expired, any sequence is accepted again.
	mustAppend(t, l, idemBatch(1, 0, 40, 1, clk.Ms()))
}

func TestSetHighWatermark(t *testing.T) {
	l := openT(t, t.TempDir(), testConfig(), newClock())
	defer l.Close()
	mustAppend(t, l, mkBatch(compress.None, 1, "a", 5))
	require.EqualValues(t, 5, l.HighWatermark())
	l.SetHighWatermark(100)
	require.EqualValues(t, 5, l.HighWatermark(), "never past the end")
	l.SetHighWatermark(3)
	mustAppend(t, l, mkBatch(compress.None, 1, "a", 5))
	require.EqualValues(t, 3, l.HighWatermark(), "replication owns it now")
	require.EqualValues(t, 10, l.LogEndOffset())
}

func TestFlushAdvancesRecoveryPoint(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.FlushMessages = 4
	l := openT(t, dir, cfg, newClock())
	mustAppend(t, l, mkBatch(compress.None, 1, "a", 3))
	require.NoError(t, l.CheckpointRecoveryPoint())
	_, ok := readCheckpointFS(vfs.Default, filepath.Join(dir, recoveryPointFile))
	require.False(t, ok, "no flush yet")
	mustAppend(t, l, mkBatch(compress.None, 1, "a", 3)) // 6 >= flush.messages
	// The flush moved the recovery point in memory; the file follows at
	// the periodic checkpoint (log.flush.offset.checkpoint.interval.ms).
	_, ok = readCheckpointFS(vfs.Default, filepath.Join(dir, recoveryPointFile))
	require.False(t, ok)
	require.NoError(t, l.CheckpointRecoveryPoint())
	rp, ok := readCheckpointFS(vfs.Default, filepath.Join(dir, recoveryPointFile))
	require.True(t, ok)
	require.EqualValues(t, 6, rp)
	mustAppend(t, l, mkBatch(compress.None, 1, "a", 1))
	require.NoError(t, l.Flush())
	require.NoError(t, l.CheckpointRecoveryPoint())
	rp, _ = readCheckpointFS(vfs.Default, filepath.Join(dir, recoveryPointFile))
	require.EqualValues(t, 7, rp)
	require.NoError(t, l.Close())
	require.FileExists(t, filepath.Join(dir, cleanShutdownFile))
	l = openT(t, dir, cfg, newClock())
	require.NoFileExists(t, filepath.Join(dir, cleanShutdownFile), "removed on open")
	require.NoError(t, l.Delete())
	require.NoDirExists(t, dir)
}

func TestClosedLog(t *testing.T) {
	l := openT(t, t.TempDir(), testConfig(), newClock())
	require.NoError(t, l.Close())
	require.NoError(t, l.Close())
	_, err := l.Append(mkBatch(compress.None, 1, "a", 1), 0)
	require.True(t, errors.Is(err, tributary.ErrKafkaStorageError))
	_, err = l.Read(0, 0, 1, true)
	require.Error(t, err)
}

// Consumers reading up to the high watermark while a producer appends
// and retention deletes see whole, contiguous batches (run with -race).
func TestConcurrentAppendRead(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 4096
	cfg.RetentionBytes = 64 << 10
	cfg.FileDeleteDelayMs = 1000
	l := openT(t, t.TempDir(), cfg, newClock())
	defer l.Close()
	const batches = 400
	done := make(chan struct{})
	errs := make(chan error, 3)
	go func() {
		defer close(done)
		for i := range batches {
			if _, err := l.Append(mkBatch(compress.Snappy, int64(i), "c", 4), 0); err != nil {
				errs <- err
				return
			}
			if i%50 == 0 {
				if err := l.EnforceRetention(); err != nil {
					errs <- err
					return
				}
			}
		}
	}()
	for range 2 {
		go func() {
			off := int64(0)
			for {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				hw := l.HighWatermark()
				fs, err := l.Read(off, hw, 2000, true)
				if errors.Is(err, tributary.ErrOffsetOutOfRange) {
					off = l.LogStartOffset() // deleted by retention: skip ahead
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				if fs.Len == 0 {
					continue
				}
				raw := make([]byte, fs.Len)
				if _, err := fs.File.ReadAt(raw, fs.Pos); err != nil {
					errs <- err
					return
				}
				for p := 0; p < len(raw); {
					info, err := batch.Validate(raw[p:p+int(batch.SizeAt(raw[p:]))], 1<<20)
					if err != nil {
						errs <- err
						return
					}
					if (p == 0 && (info.BaseOffset > off || info.LastOffset() < off)) || (p > 0 && info.BaseOffset != off) {
						errs <- fmt.Errorf("read at %d returned batch %d-%d", off, info.BaseOffset, info.LastOffset())
						return
					}
					off = info.LastOffset() + 1
					p += int(info.Size())
				}
			}
		}()
	}
	for range 2 {
		require.NoError(t, <-errs)
	}
	<-done
	select {
	case err := <-errs:
		require.NoError(t, err)
	default:
	}
	require.EqualValues(t, batches*4, l.LogEndOffset())
}

// Batches exactly as franz-go's idempotent producer sends them are
// stored, read back, and a retry of one is answered as a duplicate.
func TestKgoProducedBatches(t *testing.T) {
	l := openT(t, t.TempDir(), testConfig(), newClock())
	defer l.Close()
	var want []string
	for _, c := range allCodecs {
		vals := []string{c.String() + "-1", c.String() + "-2"}
		bs, err := batchtest.FromKgo(c, vals...)
		require.NoError(t, err)
		want = append(want, vals...)
		for _, b := range bs {
			retry := bytes.Clone(b)
			r := mustAppend(t, l, b)
			d, err := l.Append(retry, 0)
			require.NoError(t, err)
			require.True(t, d.Duplicate)
			require.Equal(t, r.BaseOffset, d.BaseOffset)
		}
	}
	var got []string
	for _, r := range readAll(t, l) {
		got = append(got, r.value)
	}
	require.Equal(t, want, got)
}

// A failed fsync takes the log out of service (KAFKA_STORAGE_ERROR, like
// Kafka marking the log dir offline) instead of acknowledging data that
// may not be there: after a failed fsync the kernel may have dropped the
// dirty pages. A reopen recovers it.
func TestSyncFailureFailsLog(t *testing.T) {
	dir := t.TempDir()
	ifs := vfs.NewInject(vfs.Default)
	l, err := Open(dir, testConfig(), Options{Now: newClock().Now, FS: ifs})
	require.NoError(t, err)
	mustAppend(t, l, mkBatch(compress.None, 1, "a", 2))
	require.NoError(t, l.Flush())
	ifs.SetHook(func(op vfs.Op, _ string) error {
		if op == vfs.OpSync {
			return syscall.EIO
		}
		return nil
	})
	mustAppend(t, l, mkBatch(compress.None, 1, "b", 2))
	require.ErrorIs(t, l.Flush(), tributary.ErrKafkaStorageError)
	_, err = l.Append(mkBatch(compress.None, 1, "c", 2), 0)
	require.ErrorIs(t, err, tributary.ErrKafkaStorageError)
	require.ErrorIs(t, l.Flush(), tributary.ErrKafkaStorageError)
	ifs.SetHook(nil)
	require.NoError(t, l.Close())
	require.NoFileExists(t, filepath.Join(dir, cleanShutdownFile), "a failed log is not closed cleanly")

	l = openT(t, dir, testConfig(), newClock())
	defer l.Close()
	requireContiguous(t, readAll(t, l), 0, 4)
	r := mustAppend(t, l, mkBatch(compress.None, 1, "d", 2))
	require.EqualValues(t, 4, r.BaseOffset)
}
