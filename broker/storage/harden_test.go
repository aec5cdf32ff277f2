package storage

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
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

// logSink collects log lines for assertions.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func (s *logSink) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(s, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// within fails the test unless f returns before the deadline; the
// storage must answer readers while an fsync hangs.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s blocked for %v", what, d)
	}
}

// kill -9 after ten segments, a damaged batch header in segment 4: the
// restart is quick (only the active segment is rescanned, the rolls
// having flushed and checkpointed the recovery point), segments 5-10
// stay readable, the damage is logged as an error and reads of it
// answer CORRUPT_MESSAGE. Before, the whole log was rescanned from
// segment 0, cut at segment 4 and the six later segments deleted.
func TestCorruptionBelowRecoveryPointKeepsLaterSegments(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 1000
	cfg.IndexIntervalBytes = 1 << 20 // no index entries: reads scan headers
	l := openT(t, dir, cfg, newClock())
	var locs []batchLoc
	for len(l.segs) < 11 {
		locs = append(locs, fillLog(t, l, 1)...)
	}
	end := l.LogEndOffset()
	crash(l) // kill -9: no flush, no clean-shutdown marker

	seg4 := l.segs[3].base
	var bad batchLoc
	for _, loc := range locs {
		if loc.seg == seg4 && loc.pos > 0 {
			bad = loc
			break
		}
	}
	require.NotZero(t, bad.pos)
	flipByte(t, segFile(dir, seg4, ".log"), bad.pos+16) // the magic byte

	var sink logSink
	start := time.Now()
	l, err := Open(dir, cfg, Options{Now: newClock().Now, Logger: sink.logger()})
	require.NoError(t, err)
	took := time.Since(start)
	defer l.Close()
	require.Less(t, took, time.Second, "reopen")
	require.Contains(t, sink.String(), "from_segment=10", "only the active segment is rescanned")
	require.EqualValues(t, end, l.LogEndOffset(), "nothing truncated")
	for i := 1; i < 11; i++ {
		require.FileExists(t, segFile(dir, l.segs[i].base, ".log"))
	}

	// Segments 5-10 read as written.
	seg5 := l.segs[4].base
	hw := l.HighWatermark()
	var got []rec
	for off := seg5; off < hw; {
		fs, err := l.Read(off, hw, 1<<20, true)
		require.NoError(t, err)
		recs := decodeBatches(t, sliceBytes(t, fs))
		got = append(got, recs...)
		off = recs[len(recs)-1].off + 1
	}
	requireContiguous(t, got, seg5, hw)

	// The damaged batch: a clear error, logged loudly.
	badOff := int64(-1)
	for off := seg4; off < seg5; off++ {
		if _, err := l.Read(off, hw, 1, true); err != nil {
			require.ErrorIs(t, err, tributary.ErrCorruptMessage)
			badOff = off
			break
		}
	}
	require.NotEqual(t, int64(-1), badOff, "the damaged batch must not read as records")
	require.Contains(t, sink.String(), "level=ERROR")
	require.Contains(t, sink.String(), "corrupt")
	// The batches before it in the segment still read.
	fs, err := l.Read(seg4, hw, 1, true)
	require.NoError(t, err)
	require.NotZero(t, fs.Len)
}

// Damage in a record payload below the recovery point (inside the CRC,
// invisible to header parsing) is not a torn tail either: later
// segments stay, and a broker-side decode of the batch (a timestamp
// lookup) reports CORRUPT_MESSAGE instead of answering from bad bytes.
// Consumers detect it by the batch CRC, as with Kafka.
func TestPayloadCorruptionBelowRecoveryPoint(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 1000
	l := openT(t, dir, cfg, newClock())
	var locs []batchLoc
	for i := 0; len(l.segs) < 6; i++ {
		b := mkBatch(allCodecs[i%len(allCodecs)], int64(1000+10*i), fmt.Sprintf("r%d", i), 5)
		mustAppend(t, l, b)
		act := l.active()
		locs = append(locs, batchLoc{seg: act.base, pos: act.size - int64(len(b)), size: int64(len(b))})
	}
	end := l.LogEndOffset()
	crash(l)
	seg2 := l.segs[1].base
	var bad batchLoc
	badTs := int64(0)
	for i, loc := range locs {
		if loc.seg == seg2 {
			bad, badTs = loc, int64(1000+10*i+4) // its largest timestamp
			break
		}
	}
	flipByte(t, segFile(dir, seg2, ".log"), bad.pos+bad.size-2)
	l = openT(t, dir, cfg, newClock())
	defer l.Close()
	require.EqualValues(t, end, l.LogEndOffset())
	fs, err := l.Read(seg2, end, 1, true)
	require.NoError(t, err)
	_, err = batch.Validate(sliceBytes(t, fs), 1<<20)
	require.ErrorIs(t, err, batch.ErrBadCRC, "the client's CRC check catches it")
	_, _, _, err = l.OffsetForTimestamp(badTs, end)
	require.ErrorIs(t, err, tributary.ErrCorruptMessage)
}

func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd on this system")
	}
	return len(ents)
}

// Segments do not each hold a descriptor: with the cache bounded at 8, a
// log of 100 segments written, read end to end and reopened keeps at
// most 8 segment files open. Rolling never lists the directory.
func TestSegmentFilesBoundedByCache(t *testing.T) {
	dir := t.TempDir()
	cache := NewFileCache(8)
	cache.SetLease(0)
	ifs := vfs.NewInject(vfs.Default)
	cfg := testConfig()
	cfg.SegmentBytes = 1 // one batch per segment
	before := countFDs(t)
	l, err := Open(dir, cfg, Options{Now: newClock().Now, FS: ifs, Files: cache})
	require.NoError(t, err)
	readDirs := ifs.Count(vfs.OpReadDir)
	for i := range 100 {
		mustAppend(t, l, mkBatch(compress.None, 1, fmt.Sprintf("r%d", i), 2))
	}
	require.Len(t, l.segs, 100)
	require.Equal(t, readDirs, ifs.Count(vfs.OpReadDir), "rolls must not list the directory")
	requireContiguous(t, readAll(t, l), 0, 200)
	require.LessOrEqual(t, cache.Open(), 8)
	require.LessOrEqual(t, countFDs(t)-before, 8)
	require.NoError(t, l.Close())
	require.Zero(t, cache.Open())

	l, err = Open(dir, cfg, Options{Now: newClock().Now, Files: cache})
	require.NoError(t, err)
	defer l.Close()
	require.LessOrEqual(t, cache.Open(), 2, "Open opens only what it reads")
	requireContiguous(t, readAll(t, l), 0, 200)
	require.LessOrEqual(t, cache.Open(), 8)
	mustAppend(t, l, mkBatch(compress.None, 1, "more", 2))
}

// Out of descriptors, a read that must open a segment fails with
// KAFKA_STORAGE_ERROR, the log stays in service (appends go on, the
// active segment is held open) and reads work again once descriptors
// are back.
func TestTooManyOpenFilesFailsOnlyTheRequest(t *testing.T) {
	cache := NewFileCache(1)
	cache.SetLease(0)
	ifs := vfs.NewInject(vfs.NewMem())
	cfg := testConfig()
	cfg.SegmentBytes = 1
	l, err := Open("/d", cfg, Options{Now: newClock().Now, FS: ifs, Files: cache})
	require.NoError(t, err)
	defer l.Close()
	for i := range 5 {
		mustAppend(t, l, mkBatch(compress.None, 1, fmt.Sprintf("r%d", i), 2))
	}
	ifs.SetHook(func(op vfs.Op, path string) error {
		if op == vfs.OpOpen && strings.HasSuffix(path, ".log") {
			return syscall.EMFILE
		}
		return nil
	})
	hw := l.HighWatermark()
	_, err = l.Read(0, hw, 1<<20, true)
	require.ErrorIs(t, err, tributary.ErrKafkaStorageError)
	// The active segment is held open: its reads go on.
	fs, err := l.Read(hw-2, hw, 1<<20, true)
	require.NoError(t, err)
	require.NotZero(t, fs.Len)
	// An append that must roll cannot open its new segment: that
	// request fails, nothing else.
	_, err = l.Append(mkBatch(compress.None, 1, "during", 2), 0)
	require.ErrorIs(t, err, tributary.ErrKafkaStorageError)
	ifs.SetHook(nil)
	mustAppend(t, l, mkBatch(compress.None, 1, "after", 2))
	requireContiguous(t, readAll(t, l), 0, 12)
}

// A process whose descriptor limit is 64 grows a log to 200 segments
// (over 2x the limit), reads it all and reopens it. Run in a child
// process, which lowers its own RLIMIT_NOFILE.
func TestLowDescriptorLimit(t *testing.T) {
	if os.Getenv("STORAGE_FD_CHILD") == "" {
		if _, err := os.Stat("/proc/self/fd"); err != nil {
			t.Skip("needs a unix process model")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestLowDescriptorLimit$", "-test.count=1")
		cmd.Env = append(os.Environ(), "STORAGE_FD_CHILD="+t.TempDir())
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Contains(t, string(out), "PASS")
		return
	}
	dir := os.Getenv("STORAGE_FD_CHILD")
	rl := syscall.Rlimit{Cur: 64, Max: 64}
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl))
	DefaultFileCache().SetLimit(defaultOpenFiles()) // what a broker does after changing its limit
	cfg := testConfig()
	cfg.SegmentBytes = 1
	l := openT(t, dir, cfg, newClock())
	for i := range 200 {
		if _, err := l.Append(mkBatch(compress.None, 1, fmt.Sprintf("r%d", i), 1), 0); err != nil {
			ents, _ := os.ReadDir("/proc/self/fd")
			for _, e := range ents {
				p, _ := os.Readlink("/proc/self/fd/" + e.Name())
				t.Log(p)
			}
			t.Fatalf("append %d: %v (cache open %d)", i, err, DefaultFileCache().Open())
		}
	}
	requireContiguous(t, readAll(t, l), 0, 200)
	require.NoError(t, l.Close())
	l = openT(t, dir, cfg, newClock())
	requireContiguous(t, readAll(t, l), 0, 200)
	mustAppend(t, l, mkBatch(compress.None, 1, "after", 1))
	require.NoError(t, l.Close())
}

// A full disk fails appends with KAFKA_STORAGE_ERROR; once space
// returns the next append succeeds where the log left off (the torn
// half-write cut away first), and the log reopens intact. That holds
// when the failing append needed a new segment, too.
func TestFullDiskRecovers(t *testing.T) {
	for _, roll := range []bool{false, true} {
		t.Run(fmt.Sprintf("roll=%v", roll), func(t *testing.T) {
			mem := vfs.NewMem()
			ifs := vfs.NewInject(mem)
			var full vfs.DiskFull
			ifs.SetHook(full.Hook)
			cfg := testConfig()
			if roll {
				cfg.SegmentBytes = 1
			}
			l, err := Open("/d", cfg, Options{Now: newClock().Now, FS: ifs, Files: NewFileCache(8)})
			require.NoError(t, err)
			mustAppend(t, l, mkBatch(compress.None, 1, "a", 3))
			full.Set(true)
			for range 2 {
				_, err = l.Append(mkBatch(compress.None, 1, "lost", 3), 0)
				require.ErrorIs(t, err, tributary.ErrKafkaStorageError)
			}
			require.EqualValues(t, 3, l.LogEndOffset())
			full.Set(false)
			r := mustAppend(t, l, mkBatch(compress.None, 1, "b", 3))
			require.EqualValues(t, 3, r.BaseOffset)
			recs := readAll(t, l)
			requireContiguous(t, recs, 0, 6)
			require.Equal(t, "b-0", recs[3].value)
			require.NoError(t, l.Close())

			l, err = Open("/d", cfg, Options{Now: newClock().Now, FS: mem.CrashClone(), Files: NewFileCache(8)})
			require.NoError(t, err)
			defer l.Close()
			requireContiguous(t, readAll(t, l), 0, 6)
		})
	}
}

// Batches without timestamps (librdkafka sends timestamp -1) leave an
// empty time index. After a clean shutdown that index is valid: nothing
// is rebuilt or warned about, and retention.ms counts from the file's
// last write instead of deleting the segments at once.
func TestEmptyTimeIndexIsValid(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 300
	c := newClock()
	l := openT(t, dir, cfg, c)
	noTs := func(i int) []byte {
		return batchtest.Build(batchtest.NonIdempotent(-1), batchtest.Rec{Value: fmt.Appendf(nil, "v%d", i)})
	}
	for i := range 12 {
		mustAppend(t, l, noTs(i))
	}
	require.Greater(t, len(l.segs), 2)
	require.NoError(t, l.Close())
	idx := snapshotIndexes(t, dir)

	var sink logSink
	l, err := Open(dir, cfg, Options{Now: c.Now, Logger: sink.logger()})
	require.NoError(t, err)
	require.NotContains(t, sink.String(), "rebuilding")
	require.Equal(t, idx, snapshotIndexes(t, dir), "index files untouched")
	requireContiguous(t, readAll(t, l), 0, 12)

	c.Add(time.Hour)
	require.NoError(t, l.EnforceRetention())
	require.EqualValues(t, 0, l.LogStartOffset(), "retention.ms (7 days) has not passed")
	require.NoError(t, l.Close())
}

// A slow fsync (flush.messages=1 waiting on the disk) does not stop
// readers: Read, HighWatermark and LogEndOffset answer while it hangs.
func TestSlowSyncDoesNotBlockReaders(t *testing.T) {
	ifs := vfs.NewInject(vfs.NewMem())
	cfg := testConfig()
	cfg.FlushMessages = 1
	l, err := Open("/d", cfg, Options{Now: newClock().Now, FS: ifs, Files: NewFileCache(8)})
	require.NoError(t, err)
	mustAppend(t, l, mkBatch(compress.None, 1, "a", 2))

	gate := vfs.NewGate(vfs.OpSync)
	ifs.SetHook(gate.Hook)
	appended := make(chan error, 1)
	go func() {
		_, err := l.Append(mkBatch(compress.None, 1, "b", 2), 0)
		appended <- err
	}()
	select {
	case <-gate.Held():
	case <-time.After(10 * time.Second):
		t.Fatal("the append never reached fsync")
	}
	within(t, 5*time.Second, "Read", func() {
		fs, err := l.Read(0, 2, 1<<20, true)
		require.NoError(t, err)
		require.NotZero(t, fs.Len)
	})
	within(t, 5*time.Second, "HighWatermark", func() { l.HighWatermark() })
	within(t, 5*time.Second, "LogEndOffset", func() { l.LogEndOffset() })
	within(t, 5*time.Second, "LogStartOffset", func() { l.LogStartOffset() })
	select {
	case err := <-appended:
		t.Fatalf("append acknowledged before its fsync: %v", err)
	default:
	}
	gate.Open()
	require.NoError(t, <-appended)
	flushed := make(chan error, 1)
	gate2 := vfs.NewGate(vfs.OpSync)
	ifs.SetHook(gate2.Hook)
	mustAppendAsync := func() {
		_, err := l.Append(mkBatch(compress.None, 1, "c", 1), 0)
		flushed <- err
	}
	go mustAppendAsync()
	<-gate2.Held()
	within(t, 5*time.Second, "Read during Flush", func() {
		_, err := l.Read(0, l.HighWatermark(), 1<<20, true)
		require.NoError(t, err)
	})
	gate2.Open()
	require.NoError(t, <-flushed)
	ifs.SetHook(nil)
	require.NoError(t, l.Close())
}

// DeleteRecords returns only once the new log start offset would
// survive a power cut.
func TestDeleteRecordsIsDurable(t *testing.T) {
	mem := vfs.NewMem()
	l, err := Open("/d", testConfig(), Options{Now: newClock().Now, FS: mem, Files: NewFileCache(8)})
	require.NoError(t, err)
	mustAppend(t, l, mkBatch(compress.None, 1, "a", 10))
	require.NoError(t, l.Flush())
	require.NoError(t, l.DeleteRecordsBefore(5))
	l2, err := Open("/d", testConfig(), Options{Now: newClock().Now, FS: mem.CrashClone(), Files: NewFileCache(8)})
	require.NoError(t, err)
	require.EqualValues(t, 5, l2.LogStartOffset())
	require.NoError(t, l2.Close())
	require.NoError(t, l.Close())
}

// Every rename that publishes a file (checkpoints, snapshots, the clean
// shutdown marker, .deleted segments) is followed by an fsync of its
// directory before the call that made it returns.
func TestPublishingRenamesSyncTheDirectory(t *testing.T) {
	ifs := vfs.NewInject(vfs.NewMem())
	var mu sync.Mutex
	pending := map[string][]string{}
	ifs.SetHook(func(op vfs.Op, path string) error {
		mu.Lock()
		defer mu.Unlock()
		switch op {
		case vfs.OpRename:
			pending[filepath.Dir(path)] = append(pending[filepath.Dir(path)], path)
		case vfs.OpSyncDir:
			delete(pending, path)
		}
		return nil
	})
	check := func(what string) {
		mu.Lock()
		defer mu.Unlock()
		require.Empty(t, pending, "after %s", what)
	}
	cfg := testConfig()
	cfg.SegmentBytes = 200
	cfg.RetentionBytes = 400
	c := newClock()
	l, err := Open("/d", cfg, Options{Now: c.Now, FS: ifs, Files: NewFileCache(8)})
	require.NoError(t, err)
	check("Open")
	for i := range 20 {
		mustAppend(t, l, mkBatch(compress.None, 1, fmt.Sprintf("r%d", i), 1))
		check("Append")
	}
	require.NoError(t, l.EnforceRetention())
	check("EnforceRetention")
	require.NoError(t, l.DeleteRecordsBefore(l.HighWatermark()-1))
	check("DeleteRecordsBefore")
	require.NoError(t, l.CheckpointRecoveryPoint())
	check("CheckpointRecoveryPoint")
	require.NoError(t, l.Close())
	check("Close")
}

// Validation (decompression) of a produce request runs outside the lock
// readers take: while it is slow, Read and the offsets still answer.
func TestSlowValidationDoesNotBlockReaders(t *testing.T) {
	l := openT(t, t.TempDir(), testConfig(), newClock())
	defer l.Close()
	mustAppend(t, l, mkBatch(compress.ZSTD, 1, "a", 2))
	held, release := make(chan struct{}), make(chan struct{})
	testHookValidated = func() {
		close(held)
		<-release
	}
	defer func() { testHookValidated = nil }()
	appended := make(chan error, 1)
	go func() {
		_, err := l.Append(mkBatch(compress.ZSTD, 1, "b", 2), 0)
		appended <- err
	}()
	<-held
	within(t, 5*time.Second, "Read", func() {
		fs, err := l.Read(0, l.HighWatermark(), 1<<20, true)
		require.NoError(t, err)
		require.NotZero(t, fs.Len)
	})
	within(t, 5*time.Second, "LogEndOffset", func() { require.EqualValues(t, 2, l.LogEndOffset()) })
	close(release)
	require.NoError(t, <-appended)
	require.EqualValues(t, 4, l.LogEndOffset())
}
