package storage

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/internal/batch"
	"github.com/tributary/tributary/internal/compress"
	"github.com/tributary/tributary/internal/vfs"
)

// The fsyncs replication adds (the epoch file before a new epoch's first
// batch, AssignEpochStartOffset, a truncation, the HW checkpoint) run
// outside the lock readers take: fetches, the offsets and
// OffsetForLeaderEpoch answer while the disk hangs. And a new epoch's
// batch is not written before its epoch entry is durable.
func TestReplicationSyncsDoNotBlockReaders(t *testing.T) {
	ifs := vfs.NewInject(vfs.NewMem())
	c := newClock()
	l, err := Open("/d", testConfig(), Options{Now: c.Now, FS: ifs, Files: NewFileCache(8)})
	require.NoError(t, err)
	defer l.Close()
	appendEpoch(t, l, c, 1, "a", 2)
	appendEpoch(t, l, c, 1, "a2", 2)

	// gate holds fsyncs of files whose path contains name.
	gate := func(name string) *vfs.Gate {
		g := vfs.NewGate(vfs.OpSync)
		ifs.SetHook(func(op vfs.Op, path string) error {
			if strings.Contains(path, name) {
				return g.Hook(op, path)
			}
			return nil
		})
		return g
	}
	held := func(g *vfs.Gate, what string) {
		t.Helper()
		select {
		case <-g.Held():
		case <-time.After(10 * time.Second):
			t.Fatalf("%s never reached its fsync", what)
		}
	}
	readers := func(what string) {
		t.Helper()
		within(t, 5*time.Second, "Read during "+what, func() {
			fs, err := l.Read(0, 2, 1<<20, true)
			require.NoError(t, err)
			require.NotZero(t, fs.Len)
		})
		within(t, 5*time.Second, "offsets during "+what, func() {
			l.HighWatermark()
			l.LogEndOffset()
			l.LogStartOffset()
		})
		within(t, 5*time.Second, "EndOffsetForEpoch during "+what, func() {
			l.EndOffsetForEpoch(1)
			l.LatestEpoch()
			l.Epochs()
		})
	}

	// A new epoch: the append waits for the epoch file, readers do not.
	g := gate(leaderEpochFile)
	done := make(chan error, 1)
	go func() {
		_, err := l.Append(mkBatch(compress.None, c.Ms(), "b", 2), 2)
		done <- err
	}()
	held(g, "an append at a new epoch")
	readers("the epoch file's fsync")
	require.EqualValues(t, 4, l.LogEndOffset(), "a new epoch's batch was written before its entry was durable")
	g.Open()
	require.NoError(t, <-done)
	require.Equal(t, []EpochEntry{{1, 0}, {2, 4}}, l.Epochs())

	// A truncation: its segment fsync runs outside mu.
	g = gate(".log")
	go func() { done <- l.TruncateTo(4) }()
	held(g, "TruncateTo")
	readers("a truncation's fsync")
	g.Open()
	require.NoError(t, <-done)
	require.EqualValues(t, 4, l.LogEndOffset())
	require.Equal(t, []EpochEntry{{1, 0}}, l.Epochs())

	// A new leader's epoch.
	g = gate(leaderEpochFile)
	go func() { done <- l.AssignEpochStartOffset(3, 4) }()
	held(g, "AssignEpochStartOffset")
	readers("AssignEpochStartOffset's fsync")
	g.Open()
	require.NoError(t, <-done)
	e, end := l.EndOffsetForEpoch(3)
	require.Equal(t, int32(3), e)
	require.EqualValues(t, 4, end)

	// The HW checkpoint.
	l.SetHighWatermark(3)
	g = gate(highWatermarkFile)
	go func() { done <- l.CheckpointHighWatermark() }()
	held(g, "CheckpointHighWatermark")
	readers("the HW checkpoint's fsync")
	within(t, 5*time.Second, "SetHighWatermark during the HW checkpoint", func() { l.SetHighWatermark(4) })
	g.Open()
	require.NoError(t, <-done)
	ifs.SetHook(nil)
}

// A truncation into an older segment makes it the active one: it is
// held open for appends, the later segments leave the file cache, the
// producer snapshots above the cut go (from disk and from the Log's
// list), and appends, rolls and a restart carry on from the cut.
func TestTruncateIntoOlderSegmentKeepsCacheAndSnapshots(t *testing.T) {
	mem := vfs.NewMem()
	files := NewFileCache(4)
	c := newClock()
	cfg := testConfig()
	cfg.SegmentBytes = 300
	open := func() *Log {
		l, err := Open("/d", cfg, Options{Now: c.Now, FS: mem, Files: files})
		require.NoError(t, err)
		return l
	}
	l := open()
	for i := range 12 {
		appendEpoch(t, l, c, int32(i/4), "x", 2)
	}
	require.Greater(t, len(l.segs), 3)
	l.mu.Lock()
	snaps := append([]int64(nil), l.snapshots...)
	cut := l.segs[1].base + 2 // inside the second segment
	l.mu.Unlock()
	require.NotEmpty(t, snaps)

	require.NoError(t, l.TruncateTo(cut))
	require.EqualValues(t, cut, l.LogEndOffset())
	l.mu.Lock()
	require.Len(t, l.segs, 2)
	act := l.active()
	require.NotNil(t, act.wf, "the truncated segment takes appends: it must be held open")
	for _, o := range l.snapshots {
		require.LessOrEqual(t, o, cut, "snapshot list above the cut")
	}
	l.mu.Unlock()
	names, err := mem.ReadDir("/d")
	require.NoError(t, err)
	for _, n := range names {
		if off, ok := parseBase(n, ".snapshot"); ok {
			require.LessOrEqual(t, off, cut, "snapshot file above the cut: %s", n)
		}
	}
	for _, e := range l.Epochs() {
		require.Less(t, e.StartOffset, cut)
	}

	// Appends go on at the cut, roll, and the cache stays bounded.
	for range 10 {
		appendEpoch(t, l, c, 7, "y", 2)
	}
	require.LessOrEqual(t, files.Open(), 4+1)
	leo := l.LogEndOffset()
	require.NoError(t, l.Close())
	require.Zero(t, files.Open(), "files left open after Close")

	l = open()
	defer l.Close()
	require.Equal(t, leo, l.LogEndOffset())
	recs := readAll(t, l)
	requireContiguous(t, recs, 0, leo)
	for _, r := range recs[cut:] {
		require.True(t, strings.HasPrefix(r.value, "y-"), "offset %d holds %q", r.off, r.value)
	}
	require.Equal(t, int32(7), l.LatestEpoch())
	e, end := l.EndOffsetForEpoch(7)
	require.Equal(t, int32(7), e)
	require.Equal(t, leo, end)
}

// A full disk while a new epoch starts fails the append (its entry could
// not be published first) without failing the log; once space returns
// the epoch file and the batch are written, leader and follower alike,
// and a power cut after that keeps both.
func TestFullDiskAtNewEpochRecovers(t *testing.T) {
	for _, follower := range []bool{false, true} {
		t.Run(fmt.Sprintf("follower=%v", follower), func(t *testing.T) {
			mem := vfs.NewMem()
			ifs := vfs.NewInject(mem)
			var full vfs.DiskFull
			ifs.SetHook(full.Hook)
			c := newClock()
			cfg := testConfig()
			cfg.FlushMessages = 1
			l, err := Open("/d", cfg, Options{Now: c.Now, FS: ifs, Files: NewFileCache(8)})
			require.NoError(t, err)
			appendEpoch(t, l, c, 1, "a", 3)
			appendAt := func(e int32, tag string) error {
				b := mkBatch(compress.None, c.Ms(), tag, 3)
				if !follower {
					_, err := l.Append(b, e)
					return err
				}
				batch.SetBaseOffset(b, l.LogEndOffset())
				batch.SetPartitionLeaderEpoch(b, e)
				_, err := l.AppendAsFollower(b)
				return err
			}
			full.Set(true)
			for range 2 {
				require.ErrorIs(t, appendAt(2, "lost"), tributary.ErrKafkaStorageError)
			}
			require.EqualValues(t, 3, l.LogEndOffset())
			full.Set(false)
			require.NoError(t, appendAt(2, "b"))
			require.Equal(t, []EpochEntry{{1, 0}, {2, 3}}, l.Epochs())

			l2, err := Open("/d", cfg, Options{Now: c.Now, FS: mem.CrashClone(), Files: NewFileCache(8)})
			require.NoError(t, err)
			require.Equal(t, []EpochEntry{{1, 0}, {2, 3}}, l2.Epochs())
			requireContiguous(t, readAll(t, l2), 0, 6)
			require.NoError(t, l2.Close())
			require.NoError(t, l.Close())
		})
	}
}
