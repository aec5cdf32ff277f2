package storage

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/internal/batch"
	"github.com/tributary/tributary/internal/batch/batchtest"
	"github.com/tributary/tributary/internal/compress"
)

// hundredByteBatch is 100 records of 100 bytes, as a producer sends them.
func hundredByteBatch(codec compress.Codec, pid int64) []byte {
	o := batchtest.NonIdempotent(time.Now().UnixMilli())
	o.Codec = codec
	if pid >= 0 {
		o.ProducerID, o.ProducerEpoch, o.BaseSequence = pid, 0, 0
	}
	return batchtest.Build(o, batchtest.Values(100, 100)...)
}

// appendLoop appends b n times, resetting what Append rewrote in place
// (and advancing the sequence for an idempotent batch) so each round is a
// fresh produce.
func appendLoop(tb testing.TB, l *Log, b []byte, n int, seq *int32) {
	for range n {
		batch.SetBaseOffset(b, 0)
		if seq != nil {
			// The sequence is inside the CRC: rewrite it and re-sum.
			b[53], b[54], b[55], b[56] = byte(*seq>>24), byte(*seq>>16), byte(*seq>>8), byte(*seq)
			*seq += 100
			crc := batch.ComputeCRC(b)
			b[17], b[18], b[19], b[20] = byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc)
		}
		if _, err := l.Append(b, 1); err != nil {
			tb.Fatal(err)
		}
	}
}

func BenchmarkAppend(b *testing.B) {
	for _, tc := range []struct {
		name  string
		codec compress.Codec
		pid   int64
	}{
		{"none", compress.None, -1},
		{"none-idempotent", compress.None, 1},
		{"snappy", compress.Snappy, -1},
		{"zstd", compress.ZSTD, -1},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.SegmentBytes = 64 << 20
			cfg.RetentionBytes = 128 << 20
			cfg.FileDeleteDelayMs = 0
			l, err := Open(b.TempDir(), cfg, Options{})
			require.NoError(b, err)
			defer l.Close()
			bb := hundredByteBatch(tc.codec, tc.pid)
			var seq *int32
			if tc.pid >= 0 {
				seq = new(int32)
			}
			b.SetBytes(100 * 100)
			b.ReportAllocs()
			b.ResetTimer()
			for n := b.N; n > 0; n -= 1000 {
				appendLoop(b, l, bb, min(n, 1000), seq)
				// Keep the disk use bounded, as the broker's retention would.
				require.NoError(b, l.EnforceRetention())
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

func BenchmarkRead(b *testing.B) {
	l, err := Open(b.TempDir(), DefaultConfig(), Options{})
	require.NoError(b, err)
	defer l.Close()
	appendLoop(b, l, hundredByteBatch(compress.None, -1), 1000, nil)
	end := l.LogEndOffset()
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		if _, err := l.Read((i*137)%end, end, 1<<20, true); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func TestAppendDoesNotAllocate(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	l := openT(t, t.TempDir(), testConfig(), newClock())
	defer l.Close()
	for _, pid := range []int64{-1, 5} {
		b := hundredByteBatch(compress.None, pid)
		var seq *int32
		if pid >= 0 {
			seq = new(int32)
		}
		appendLoop(t, l, b, 10, seq) // warm the scratch slices and index
		allocs := testing.AllocsPerRun(200, func() { appendLoop(t, l, b, 1, seq) })
		require.Zero(t, allocs, "pid %d", pid)
	}
}

// TestMillionRecordsStayOffHeap pushes 1,000,000 × 100-byte records
// through one partition log (write, then read back as a consumer would)
// and checks the heap stays small: segment data lives in files only.
func TestMillionRecordsStayOffHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("writes ~110 MB")
	}
	cfg := DefaultConfig()
	cfg.SegmentBytes = 32 << 20
	l := openT(t, t.TempDir(), cfg, newClock())
	defer l.Close()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	b := hundredByteBatch(compress.None, -1)
	start := time.Now()
	appendLoop(t, l, b, 10_000, nil)
	wrote := time.Since(start)
	require.EqualValues(t, 1_000_000, l.LogEndOffset())

	var peak uint64
	buf := make([]byte, 1<<20)
	start = time.Now()
	for off := int64(0); off < l.HighWatermark(); {
		fs, err := l.Read(off, l.HighWatermark(), 1<<20, true)
		require.NoError(t, err)
		n, err := fs.File.ReadAt(buf[:fs.Len], fs.Pos)
		require.NoError(t, err)
		// last batch in the slice tells where to continue
		var last batch.Header
		for p := 0; p < n; {
			h, err := batch.ParseHeader(buf[p:])
			require.NoError(t, err)
			last = h
			p += int(h.Size())
		}
		off = last.LastOffset() + 1
	}
	read := time.Since(start)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	peak = after.HeapInuse
	t.Logf("append %v (%.0f records/s), read %v; heap in use %d KB before, %d KB after; log %d MB",
		wrote, 1e6/wrote.Seconds(), read, before.HeapInuse>>10, peak>>10, l.Size()>>20)
	require.Less(t, peak, before.HeapInuse+16<<20)
}
