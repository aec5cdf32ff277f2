package storage

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/internal/batch"
	"github.com/tributary/tributary/internal/batch/batchtest"
	"github.com/tributary/tributary/internal/compress"
	"github.com/tributary/tributary/internal/vfs"
)

func compactConfig() Config {
	cfg := testConfig()
	cfg.Compact = true
	cfg.SegmentBytes = 1024
	cfg.IndexIntervalBytes = 128
	cfg.RetentionMs, cfg.RetentionBytes = -1, -1
	return cfg
}

// keyedBatch builds one batch of records key=value (nil value: tombstone).
func keyedBatch(codec compress.Codec, ts int64, pairs ...[2]string) []byte {
	o := batchtest.NonIdempotent(ts)
	o.Codec = codec
	recs := make([]batchtest.Rec, len(pairs))
	for i, p := range pairs {
		recs[i] = batchtest.Rec{Key: []byte(p[0]), TsDelta: int64(i)}
		if p[1] != "\x00" {
			recs[i].Value = []byte(p[1])
		}
	}
	return batchtest.Build(o, recs...)
}

// readLog (readAll's base) reads the whole log through Read as a
// consumer does, advancing past each batch's last offset (empty batches
// and gaps included), every batch checked (decodeKV).
func readLog(t *testing.T, l *Log) []kv {
	t.Helper()
	var out []kv
	off := l.LogStartOffset()
	hw := l.HighWatermark()
	for off < hw {
		fs, err := l.Read(off, hw, 1<<30, true)
		require.NoError(t, err)
		require.NotZero(t, fs.Len, "no progress at %d", off)
		recs, end := decodeKV(t, sliceBytes(t, fs))
		for _, r := range recs {
			if r.off >= off {
				out = append(out, r)
			}
		}
		off = max(off, end)
	}
	for i := 1; i < len(out); i++ {
		require.Greater(t, out[i].off, out[i-1].off, "offsets increase")
	}
	return out
}

// history is everything appended: the model the cleaned log is checked
// against.
type history struct {
	recs []kv
}

func (h *history) append(t *testing.T, l *Log, codec compress.Codec, ts int64, pairs ...[2]string) {
	t.Helper()
	r := mustAppend(t, l, keyedBatch(codec, ts, pairs...))
	for i, p := range pairs {
		var v []byte
		if p[1] != "\x00" {
			v = []byte(p[1])
		}
		h.recs = append(h.recs, kv{off: r.BaseOffset + int64(i), key: p[0], value: v, ts: ts + int64(i)})
	}
}

// newest maps each key to its newest record.
func (h *history) newest() map[string]kv {
	m := map[string]kv{}
	for _, r := range h.recs {
		m[r.key] = r
	}
	return m
}

// requireCompacted checks what a consumer reads after a pass that mapped
// [0, end): below end exactly the newest record of every key within
// [0, end) (tombstones included unless dropped), from end on everything;
// and every key's newest record of the whole history is there.
func requireCompacted(t *testing.T, l *Log, h *history, end int64, tombstonesGone bool) []kv {
	t.Helper()
	got := readLog(t, l)
	newestBelow := map[string]int64{}
	for _, r := range h.recs {
		if r.off < end {
			newestBelow[r.key] = r.off
		}
	}
	var want []kv
	for _, r := range h.recs {
		if r.off >= end || (newestBelow[r.key] == r.off && !(tombstonesGone && r.value == nil)) {
			want = append(want, r)
		}
	}
	require.Equal(t, len(want), len(got), "records after cleaning")
	for i := range want {
		require.Equal(t, want[i].off, got[i].off)
		require.Equal(t, want[i].key, got[i].key)
		require.Equal(t, want[i].value, got[i].value, "offset %d", want[i].off)
	}
	return got
}

func fillVersions(t *testing.T, l *Log, h *history, rng *rand.Rand, codec compress.Codec, keys, batches int, ts int64) {
	t.Helper()
	for i := range batches {
		n := 1 + rng.IntN(4)
		pairs := make([][2]string, n)
		for j := range pairs {
			k := rng.IntN(keys)
			pairs[j] = [2]string{fmt.Sprintf("key-%03d", k), fmt.Sprintf("v%d-%d-%d", k, i, j)}
		}
		h.append(t, l, codec, ts+int64(i), pairs...)
	}
}

// Many versions of a set of keys: a pass leaves the newest of each key
// below the cleanable end, with the original offsets (gaps), and a
// consumer reading from the start sees exactly that.
func TestCleanKeepsNewestOfEveryKey(t *testing.T) {
	for _, codec := range []compress.Codec{compress.None, compress.Snappy, compress.ZSTD} {
		t.Run(codec.String(), func(t *testing.T) {
			c := newClock()
			l := openT(t, t.TempDir(), compactConfig(), c)
			defer l.Close()
			var h history
			rng := rand.New(rand.NewPCG(1, uint64(codec)))
			fillVersions(t, l, &h, rng, codec, 40, 600, c.Ms())
			require.NoError(t, l.Flush())
			st := l.CleanState()
			require.True(t, st.Due, "%+v", st)
			require.Zero(t, st.CleanBytes)
			sizeBefore := l.Size()

			res, err := l.Clean(CleanOptions{})
			require.NoError(t, err)
			require.True(t, res.Cleaned)
			require.Equal(t, st.FirstUncleanable, res.End)
			require.Less(t, res.RecordsKept, res.RecordsRead)
			require.Less(t, l.Size(), sizeBefore/2, "the log shrank")
			requireCompacted(t, l, &h, res.End, false)
			after := l.CleanState()
			require.Equal(t, res.End, after.FirstDirty)
			require.False(t, after.Due)

			// It reopens the same, after a clean and an unclean stop.
			require.NoError(t, l.Close())
			l = openT(t, l.Dir(), compactConfig(), c)
			requireCompacted(t, l, &h, res.End, false)
			crash(l)
			l = openT(t, l.Dir(), compactConfig(), c)
			requireCompacted(t, l, &h, res.End, false)
			require.Equal(t, res.End, l.CleanState().FirstDirty, "the checkpoint survives")

			// More versions: the next pass cleans the new head against
			// the clean tail.
			fillVersions(t, l, &h, rng, codec, 40, 400, c.Ms())
			require.NoError(t, l.Flush())
			res, err = l.Clean(CleanOptions{Force: true})
			require.NoError(t, err)
			require.True(t, res.Cleaned)
			requireCompacted(t, l, &h, res.End, false)
		})
	}
}

// A dedupe buffer too small for the dirty head cleans it over several
// passes, each ending on a segment boundary, and ends where one big
// buffer would.
func TestCleanSmallMapSeveralPasses(t *testing.T) {
	c := newClock()
	l := openT(t, t.TempDir(), compactConfig(), c)
	defer l.Close()
	var h history
	rng := rand.New(rand.NewPCG(2, 2))
	fillVersions(t, l, &h, rng, compress.None, 300, 800, c.Ms())
	require.NoError(t, l.Flush())
	m := NewOffsetMap(16 * 128) // 115 keys
	target := l.CleanState().FirstUncleanable
	passes := 0
	for end := int64(0); end < target; passes++ {
		require.Less(t, passes, 50)
		res, err := l.Clean(CleanOptions{Map: m, Force: true})
		require.NoError(t, err)
		require.Greater(t, res.End, end, "each pass moves on")
		end = res.End
	}
	require.Greater(t, passes, 1, "the head did not fit one pass")
	got := readLog(t, l)
	// Below the end each key at most once, and it is its newest record.
	newest := h.newest()
	seen := map[string]bool{}
	for _, r := range got {
		if r.off >= target {
			continue
		}
		require.False(t, seen[r.key], "key %s twice below the clean end", r.key)
		seen[r.key] = true
	}
	for k, r := range newest {
		i := slices.IndexFunc(got, func(g kv) bool { return g.off == r.off })
		require.GreaterOrEqual(t, i, 0, "newest record of %s (offset %d) kept", k, r.off)
		require.Equal(t, r.value, got[i].value)
	}
}

// Tombstones survive the pass that first sees them for
// delete.retention.ms (the batch's delete horizon), then go.
func TestCleanTombstonesAfterDeleteRetention(t *testing.T) {
	c := newClock()
	cfg := compactConfig()
	cfg.DeleteRetentionMs = 60_000
	l := openT(t, t.TempDir(), cfg, c)
	defer l.Close()
	var h history
	rng := rand.New(rand.NewPCG(3, 3))
	fillVersions(t, l, &h, rng, compress.None, 20, 200, c.Ms())
	for k := range 5 {
		h.append(t, l, compress.None, c.Ms(), [2]string{fmt.Sprintf("key-%03d", k), "\x00"})
	}
	fillVersions(t, l, &h, rng, compress.None, 20, 0, c.Ms())
	// Roll past the tombstones with keys that do not touch them.
	for i := range 60 {
		h.append(t, l, compress.None, c.Ms(), [2]string{fmt.Sprintf("other-%d", i%7), "x"})
	}
	require.NoError(t, l.Flush())
	res, err := l.Clean(CleanOptions{Force: true})
	require.NoError(t, err)
	got := requireCompacted(t, l, &h, res.End, false)
	tombs := 0
	for _, r := range got {
		if r.value == nil {
			tombs++
			require.Equal(t, r.ts, h.recs[slices.IndexFunc(h.recs, func(x kv) bool { return x.off == r.off })].ts,
				"a rebased batch keeps its record timestamps")
		}
	}
	require.Equal(t, 5, tombs, "tombstones kept on the first pass")
	require.Zero(t, res.TombstonesDropped)

	more := func() {
		for i := range 60 {
			h.append(t, l, compress.None, c.Ms(), [2]string{fmt.Sprintf("other-%d", i%7), "y"})
		}
		require.NoError(t, l.Flush())
	}
	c.Add(30 * time.Second)
	more()
	res, err = l.Clean(CleanOptions{Force: true})
	require.NoError(t, err)
	require.True(t, res.Cleaned)
	requireCompacted(t, l, &h, res.End, false)
	require.Zero(t, res.TombstonesDropped, "within delete.retention.ms")

	c.Add(31 * time.Second)
	more()
	res, err = l.Clean(CleanOptions{Force: true})
	require.NoError(t, err)
	require.EqualValues(t, 5, res.TombstonesDropped)
	requireCompacted(t, l, &h, res.End, true)
}

// The dirty ratio gates a pass: below min.cleanable.dirty.ratio the log
// is left alone, above it it is cleaned, and max.compaction.lag.ms
// forces a pass below it. min.compaction.lag.ms keeps young segments
// dirty.
func TestCleanRatioAndLags(t *testing.T) {
	c := newClock()
	cfg := compactConfig()
	cfg.MinCleanableDirtyRatio = 0.6
	l := openT(t, t.TempDir(), cfg, c)
	defer l.Close()
	var h history
	rng := rand.New(rand.NewPCG(4, 4))
	fillVersions(t, l, &h, rng, compress.None, 500, 300, c.Ms())
	require.NoError(t, l.Flush())
	res, err := l.Clean(CleanOptions{})
	require.NoError(t, err)
	require.True(t, res.Cleaned, "all dirty: ratio 1")

	// A little new dirty data: the ratio stays under 0.6.
	fillVersions(t, l, &h, rng, compress.None, 500, 40, c.Ms())
	require.NoError(t, l.Flush())
	st := l.CleanState()
	require.Positive(t, st.DirtyBytes)
	require.Less(t, st.Ratio, 0.6)
	require.False(t, st.Due)
	res, err = l.Clean(CleanOptions{})
	require.NoError(t, err)
	require.False(t, res.Cleaned, "below the ratio nothing is cleaned")
	require.Equal(t, st.FirstDirty, l.CleanState().FirstDirty)

	// max.compaction.lag.ms: the oldest dirty record is old enough.
	cfg.MaxCompactionLagMs = 10_000
	l.SetConfig(cfg)
	require.False(t, l.CleanState().Due)
	c.Add(11 * time.Second)
	st = l.CleanState()
	require.True(t, st.MaxLagDue)
	require.True(t, st.Due)
	res, err = l.Clean(CleanOptions{})
	require.NoError(t, err)
	require.True(t, res.Cleaned, "forced by max.compaction.lag.ms")

	// min.compaction.lag.ms: young segments are not cleanable.
	cfg.MaxCompactionLagMs = 0
	cfg.MinCompactionLagMs = 60_000
	cfg.MinCleanableDirtyRatio = 0.01
	l.SetConfig(cfg)
	fillVersions(t, l, &h, rng, compress.None, 500, 200, c.Ms())
	require.NoError(t, l.Flush())
	st = l.CleanState()
	require.Zero(t, st.DirtyBytes, "younger than min.compaction.lag.ms")
	require.False(t, st.Due)
	c.Add(61 * time.Second)
	st = l.CleanState()
	require.Positive(t, st.DirtyBytes)
	require.True(t, st.Due)
}

// A compacted log refuses records without a key, naming the reason.
func TestCompactRefusesKeylessRecords(t *testing.T) {
	c := newClock()
	l := openT(t, t.TempDir(), compactConfig(), c)
	defer l.Close()
	_, err := l.Append(mkBatch(compress.None, c.Ms(), "k", 1), 0) // keyed
	require.NoError(t, err)
	o := batchtest.NonIdempotent(c.Ms())
	_, err = l.Append(batchtest.Build(o, batchtest.Rec{Key: []byte("a"), Value: []byte("1")}, batchtest.Rec{Value: []byte("no key")}), 0)
	require.ErrorIs(t, err, tributary.ErrInvalidRecord)
	require.Contains(t, err.Error(), "Compacted topic cannot accept message without key")
	require.EqualValues(t, 1, l.LogEndOffset(), "nothing of the batch was appended")
}

// The last batch of a producer the log tracks is kept, emptied of its
// superseded records, so its sequence state could be rebuilt from the
// log; a consumer reads past it.
func TestCleanKeepsProducersLastBatch(t *testing.T) {
	c := newClock()
	l := openT(t, t.TempDir(), compactConfig(), c)
	defer l.Close()
	var h history
	o := batchtest.Opts{ProducerID: 42, ProducerEpoch: 3, BaseSequence: 0, BaseTimestamp: c.Ms()}
	r := mustAppend(t, l, batchtest.Build(o, batchtest.Rec{Key: []byte("a"), Value: []byte("p1")}, batchtest.Rec{Key: []byte("b"), Value: []byte("p2")}))
	h.recs = append(h.recs, kv{off: r.BaseOffset, key: "a", value: []byte("p1")}, kv{off: r.BaseOffset + 1, key: "b", value: []byte("p2")})
	last := r.LastOffset
	rng := rand.New(rand.NewPCG(5, 5))
	for range 200 {
		h.append(t, l, compress.None, c.Ms(), [2]string{"a", fmt.Sprint(rng.Int())}, [2]string{"b", fmt.Sprint(rng.Int())})
	}
	require.NoError(t, l.Flush())
	res, err := l.Clean(CleanOptions{Force: true})
	require.NoError(t, err)
	require.True(t, res.Cleaned)
	requireCompacted(t, l, &h, res.End, false)

	// The producer's batch is still there, empty, with its sequence.
	fs, err := l.Read(0, l.HighWatermark(), 1<<20, true)
	require.NoError(t, err)
	raw := sliceBytes(t, fs)
	hd, err := batch.ParseHeader(raw)
	require.NoError(t, err)
	require.EqualValues(t, 42, hd.ProducerID)
	require.EqualValues(t, 3, hd.ProducerEpoch)
	require.EqualValues(t, 0, hd.BaseSequence)
	require.Equal(t, last, hd.LastOffset())
	require.Zero(t, hd.RecordCount)
	epoch, known := l.ProducerState(42)
	require.True(t, known)
	require.EqualValues(t, 3, epoch)
}

// cleanCountingOps runs one forced cleaning pass on l, counting the
// filesystem operations it makes through ifs, and clones mem as a power
// cut would leave it at operation crashAt (nil when the pass makes fewer).
func cleanCountingOps(t *testing.T, l *Log, ifs *vfs.InjectFS, mem *vfs.MemFS, crashAt int64) (int64, *vfs.MemFS, CleanResult) {
	t.Helper()
	var ops int64
	var shot *vfs.MemFS
	ifs.SetHook(func(vfs.Op, string) error {
		ops++
		if ops == crashAt {
			shot = mem.CrashClone()
		}
		return nil
	})
	defer ifs.SetHook(nil)
	res, err := l.Clean(CleanOptions{Force: true})
	require.NoError(t, err)
	require.True(t, res.Cleaned)
	return ops, shot, res
}

// A crash (power cut: only what was fsynced survives) at every
// filesystem operation of a cleaning pass leaves a log that opens and
// reads back either as before the pass or as after it — every key's
// newest record there, nothing lost — and a later pass finishes the job.
func TestCleanCrashAtEveryStep(t *testing.T) {
	run := func(crashAt int64) (int64, *vfs.MemFS, *history, int64) {
		mem := vfs.NewMem()
		ifs := vfs.NewInject(mem)
		c := newClock()
		cfg := compactConfig()
		cfg.SegmentBytes = 700 // several groups per pass
		l, err := Open("/d/t-0", cfg, Options{Now: c.Now, FS: ifs, Files: NewFileCache(16)})
		require.NoError(t, err)
		var h history
		rng := rand.New(rand.NewPCG(6, 6))
		fillVersions(t, l, &h, rng, compress.None, 30, 250, c.Ms())
		require.NoError(t, l.Flush())
		require.NoError(t, l.CheckpointRecoveryPoint())
		ops, shot, res := cleanCountingOps(t, l, ifs, mem, crashAt)
		crash(l)
		return ops, shot, &h, res.End
	}
	total, _, _, _ := run(0)
	require.Greater(t, total, int64(20))
	// Every operation with -powerloss.points at or above their number;
	// an even sample otherwise.
	step := max(1, total/int64(3*crashPoints()))
	t.Logf("%d filesystem operations in the pass, crashing at every %d", total, step)
	for at := int64(1); at <= total; at += step {
		_, shot, h, end := run(at)
		require.NotNil(t, shot)
		c := newClock()
		l, err := Open("/d/t-0", compactConfig(), Options{Now: c.Now, FS: shot, Files: NewFileCache(16)})
		require.NoError(t, err, "crash at op %d", at)
		got := readLog(t, l)
		// Every key's newest record is there, with its value.
		for k, r := range h.newest() {
			i := slices.IndexFunc(got, func(g kv) bool { return g.off == r.off })
			require.GreaterOrEqual(t, i, 0, "crash at op %d: newest record of %s lost", at, k)
			require.Equal(t, r.value, got[i].value)
		}
		// Whatever survived is a record that was written, at its offset.
		for _, g := range got {
			i := slices.IndexFunc(h.recs, func(x kv) bool { return x.off == g.off })
			require.GreaterOrEqual(t, i, 0)
			require.Equal(t, h.recs[i].value, g.value, "crash at op %d offset %d", at, g.off)
		}
		ents, err := shot.ReadDir("/d/t-0")
		require.NoError(t, err)
		for _, e := range ents {
			require.NotContains(t, e, cleanedSuffix, "crash at op %d: leftover %s", at, e)
			require.NotContains(t, e, swapSuffix)
		}
		// A later pass ends where the uninterrupted one did.
		res, err := l.Clean(CleanOptions{Force: true})
		require.NoError(t, err)
		if res.End == 0 {
			res.End = l.CleanState().FirstDirty
		}
		require.Equal(t, end, res.End, "crash at op %d", at)
		requireCompacted(t, l, h, end, false)
		require.NoError(t, l.Close())
	}
}

// BenchmarkClean measures a cleaning pass over a 64 MiB dirty log of
// 100-byte values in batches of 100 records, with a given share of
// duplicate keys (dup: the fraction of records a pass removes). It
// reports the MB/s of log read and written; compare the two codecs and
// ratios in one run:
//
//	go test ./broker/storage/ -run '^$' -bench Clean -benchtime 3x
func BenchmarkClean(b *testing.B) {
	for _, dup := range []float64{0.5, 0.9, 0.99} {
		for _, codec := range []compress.Codec{compress.None, compress.LZ4} {
			b.Run(fmt.Sprintf("dup=%.2f/%s", dup, codec), func(b *testing.B) {
				const total = 64 << 20
				const perBatch, valueSize = 100, 100
				records := total / (valueSize + 20)
				keys := max(1, int(float64(records)*(1-dup)))
				cfg := DefaultConfig()
				cfg.Compact = true
				cfg.SegmentBytes = 4 << 20 // compressed logs roll too
				cfg.RetentionMs, cfg.RetentionBytes = -1, -1
				m := NewOffsetMap(128 << 20)
				var read, written int64
				var kept, seen int64
				var elapsed time.Duration
				for range b.N {
					b.StopTimer()
					l, err := Open(b.TempDir(), cfg, Options{})
					require.NoError(b, err)
					rng := rand.New(rand.NewPCG(9, 9))
					recs := make([]batchtest.Rec, perBatch)
					val := make([]byte, valueSize)
					for i := 0; i < records; i += perBatch {
						for j := range recs {
							recs[j] = batchtest.Rec{Key: fmt.Appendf(nil, "key-%09d", rng.IntN(keys)), Value: val, TsDelta: int64(j)}
						}
						o := batchtest.NonIdempotent(time.Now().UnixMilli())
						o.Codec = codec
						if _, err := l.Append(batchtest.Build(o, recs...), 0); err != nil {
							b.Fatal(err)
						}
					}
					require.NoError(b, l.Flush())
					b.StartTimer()
					start := time.Now()
					res, err := l.Clean(CleanOptions{Map: m, Force: true})
					elapsed += time.Since(start)
					b.StopTimer()
					require.NoError(b, err)
					require.True(b, res.Cleaned)
					read += res.BytesRead
					written += res.BytesWritten
					kept += res.RecordsKept
					seen += res.RecordsRead
					require.NoError(b, l.Close())
					b.StartTimer()
				}
				sec := elapsed.Seconds()
				b.ReportMetric(float64(read)/sec/1e6, "MB/s-read")
				b.ReportMetric(float64(written)/sec/1e6, "MB/s-written")
				b.ReportMetric(1-float64(kept)/float64(seen), "dup-ratio")
			})
		}
	}
}

// Cleaning runs beside appends, reads and DeleteRecords: producers are
// held only for a swap, a pass whose segments went meanwhile gives up
// cleanly, and the log ends compacted with every key's newest record.
func TestCleanConcurrentWithAppendsAndReads(t *testing.T) {
	c := newClock()
	cfg := compactConfig()
	cfg.MinCleanableDirtyRatio = 0.1
	l := openT(t, t.TempDir(), cfg, c)
	defer l.Close()
	var h history
	done := make(chan struct{})
	errc := make(chan error, 2)
	go func() {
		defer close(done)
		rng := rand.New(rand.NewPCG(7, 7))
		for i := range 3000 {
			k := rng.IntN(50)
			b := keyedBatch(compress.None, c.Ms(), [2]string{fmt.Sprintf("key-%03d", k), fmt.Sprintf("v%d", i)})
			r, err := l.Append(b, 0)
			if err != nil {
				errc <- err
				return
			}
			h.recs = append(h.recs, kv{off: r.BaseOffset, key: fmt.Sprintf("key-%03d", k), value: fmt.Appendf(nil, "v%d", i)})
			if i%200 == 0 {
				if err := l.Flush(); err != nil {
					errc <- err
					return
				}
			}
			if i == 1500 {
				if err := l.DeleteRecordsBefore(3); err != nil {
					errc <- err
					return
				}
			}
		}
	}()
	go func() {
		for {
			select {
			case <-done:
				errc <- nil
				return
			default:
			}
			// The start may move between the two calls (DeleteRecords).
			if _, err := l.Read(l.LogStartOffset(), l.HighWatermark(), 1<<16, true); err != nil && !errors.Is(err, tributary.ErrOffsetOutOfRange) {
				errc <- err
				return
			}
		}
	}()
	m := NewOffsetMap(1 << 20)
	passes := 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		res, err := l.Clean(CleanOptions{Map: m})
		if err != nil {
			require.ErrorIs(t, err, ErrCleanAborted)
		}
		if res.Cleaned {
			passes++
		}
	}
	require.NoError(t, <-errc)
	require.Positive(t, passes)
	require.NoError(t, l.Flush())
	l.Clean(CleanOptions{Map: m, Force: true})
	got := readLog(t, l)
	for k, r := range h.newest() {
		i := slices.IndexFunc(got, func(g kv) bool { return g.off == r.off })
		require.GreaterOrEqual(t, i, 0, "newest record of %s kept", k)
		require.Equal(t, r.value, got[i].value)
	}
}

// Throttle paces a pass and can stop it; its error comes back as itself
// and the log is as before.
func TestCleanThrottleStops(t *testing.T) {
	c := newClock()
	l := openT(t, t.TempDir(), compactConfig(), c)
	defer l.Close()
	var h history
	fillVersions(t, l, &h, rand.New(rand.NewPCG(8, 8)), compress.None, 20, 300, c.Ms())
	require.NoError(t, l.Flush())
	stop := errors.New("shutting down")
	var seen int64
	// In the map phase, and at the first batch of the rewrite (the map
	// phase reads the dirty bytes).
	for _, after := range []int64{1, l.CleanState().DirtyBytes} {
		seen = 0
		_, err := l.Clean(CleanOptions{Force: true, Throttle: func(n int64) error {
			seen += n
			if seen > after {
				return stop
			}
			return nil
		}})
		require.ErrorIs(t, err, stop)
		require.Equal(t, len(h.recs), len(readLog(t, l)), "nothing cleaned")
	}
	seen = 0
	res, err := l.Clean(CleanOptions{Force: true, Throttle: func(n int64) error { seen += n; return nil }})
	require.NoError(t, err)
	require.Equal(t, res.BytesRead+res.BytesWritten, seen, "every byte read and written is told")
	requireCompacted(t, l, &h, res.End, false)
}
