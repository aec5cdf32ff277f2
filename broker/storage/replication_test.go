package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/internal/compress"
)

// appendEpoch appends one n-record batch tagged tag at leader epoch e.
func appendEpoch(t *testing.T, l *Log, c *clock, e int32, tag string, n int) AppendResult {
	t.Helper()
	r, err := l.Append(mkBatch(compress.None, c.Ms(), tag, n), e)
	require.NoError(t, err)
	return r
}

// rawLog reads every byte of l from its log start to its end, as a
// follower fetch would (up to the log end, not the HW).
func rawLog(t *testing.T, l *Log) []byte {
	t.Helper()
	var out []byte
	off, end := l.LogStartOffset(), l.LogEndOffset()
	for off < end {
		fs, err := l.Read(off, end, 1<<30, true)
		require.NoError(t, err)
		require.NotZero(t, fs.Len, "no progress at %d", off)
		b := sliceBytes(t, fs)
		out = append(out, b...)
		recs := decodeBatches(t, b)
		off = recs[len(recs)-1].off + 1
	}
	return out
}

func values(recs []rec) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.value)
	}
	return out
}

func TestEndOffsetForEpochSemantics(t *testing.T) {
	c := newClock()
	l := openT(t, t.TempDir(), testConfig(), c)
	defer l.Close()

	e, off := l.EndOffsetForEpoch(0)
	require.Equal(t, UndefinedEpoch, e, "empty cache")
	require.Equal(t, UndefinedOffset, off)

	appendEpoch(t, l, c, 2, "a", 3) // 0..2 in epoch 2
	appendEpoch(t, l, c, 2, "b", 2) // 3..4
	require.NoError(t, l.AssignEpochStartOffset(5, 5))
	appendEpoch(t, l, c, 5, "c", 4) // 5..8
	require.NoError(t, l.AssignEpochStartOffset(7, 9))
	require.Equal(t, []EpochEntry{{2, 0}, {5, 5}, {7, 9}}, l.Epochs())
	// A leader's own appends at its epoch add nothing more.
	appendEpoch(t, l, c, 7, "d", 1) // 9

	for _, tc := range []struct {
		req     int32
		epoch   int32
		end     int64
		comment string
	}{
		{-1, -1, -1, "undefined request"},
		{1, 1, 0, "below the first: itself and the first start (Kafka)"},
		{2, 2, 5, "first epoch ends where epoch 5 starts"},
		{3, 2, 5, "gap: largest epoch below, next start"},
		{5, 5, 9, ""},
		{6, 5, 9, ""},
		{7, 7, 10, "latest epoch: the log end"},
		{8, -1, -1, "above every known epoch"},
	} {
		e, off := l.EndOffsetForEpoch(tc.req)
		require.Equal(t, tc.epoch, e, "req %d %s", tc.req, tc.comment)
		require.Equal(t, tc.end, off, "req %d %s", tc.req, tc.comment)
	}

	// Assigning an older epoch at a lower offset replaces what follows
	// (a leader taking over a truncated log).
	require.NoError(t, l.AssignEpochStartOffset(6, 7))
	require.Equal(t, []EpochEntry{{2, 0}, {5, 5}, {6, 7}}, l.Epochs())
	// A stale append epoch does not rewrite history.
	appendEpoch(t, l, c, 1, "e", 1)
	require.Equal(t, []EpochEntry{{2, 0}, {5, 5}, {6, 7}}, l.Epochs())
}

func TestEpochCacheSurvivesRestartAndIsRebuilt(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	cfg := testConfig()
	cfg.SegmentBytes = 300 // several segments
	l := openT(t, dir, cfg, c)
	for e := int32(0); e < 4; e++ {
		for i := range 3 {
			appendEpoch(t, l, c, e, fmt.Sprintf("e%d-%d", e, i), 2)
		}
	}
	want := []EpochEntry{{0, 0}, {1, 6}, {2, 12}, {3, 18}}
	require.Equal(t, want, l.Epochs())
	require.Greater(t, len(l.segs), 2)
	require.NoError(t, l.Close())

	l = openT(t, dir, cfg, c)
	require.Equal(t, want, l.Epochs(), "from the checkpoint")
	require.NoError(t, l.Close())

	require.NoError(t, os.Remove(filepath.Join(dir, leaderEpochFile)))
	l = openT(t, dir, cfg, c)
	require.Equal(t, want, l.Epochs(), "rebuilt from batch headers")
	require.NoError(t, l.Close())
	_, err := os.Stat(filepath.Join(dir, leaderEpochFile))
	require.NoError(t, err, "the rebuilt cache is written back")

	// A torn file is rebuilt too.
	b, err := os.ReadFile(filepath.Join(dir, leaderEpochFile))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, leaderEpochFile), b[:len(b)-5], 0o644))
	l = openT(t, dir, cfg, c)
	require.Equal(t, want, l.Epochs(), "rebuilt from a torn file")

	// A flipped byte fails the CRC.
	require.NoError(t, l.Close())
	b[6] ^= 0xff
	require.NoError(t, os.WriteFile(filepath.Join(dir, leaderEpochFile), b, 0o644))
	l = openT(t, dir, cfg, c)
	require.Equal(t, want, l.Epochs(), "rebuilt from a corrupt file")
	require.NoError(t, l.Close())
}

func TestEpochCacheTrimmedAfterCrashTruncation(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	l := openT(t, dir, testConfig(), c)
	appendEpoch(t, l, c, 1, "a", 2)
	require.NoError(t, l.Flush())
	appendEpoch(t, l, c, 2, "b", 2) // 2..3, lost below
	require.Equal(t, []EpochEntry{{1, 0}, {2, 2}}, l.Epochs())
	crash(l)
	// Tear the epoch-2 batch: the file is now ahead of the log.
	seg := filepath.Join(dir, fmt.Sprintf("%020d.log", 0))
	fi, err := os.Stat(seg)
	require.NoError(t, err)
	require.NoError(t, os.Truncate(seg, fi.Size()-3))

	l = openT(t, dir, testConfig(), c)
	defer l.Close()
	require.EqualValues(t, 2, l.LogEndOffset())
	require.Equal(t, []EpochEntry{{1, 0}}, l.Epochs())
	e, end := l.EndOffsetForEpoch(2)
	require.Equal(t, UndefinedEpoch, e)
	require.Equal(t, UndefinedOffset, end)
}

func TestEpochCacheFollowsLogStart(t *testing.T) {
	c := newClock()
	l := openT(t, t.TempDir(), testConfig(), c)
	defer l.Close()
	appendEpoch(t, l, c, 0, "a", 4) // 0..3
	appendEpoch(t, l, c, 1, "b", 4) // 4..7
	appendEpoch(t, l, c, 2, "c", 4) // 8..11
	require.NoError(t, l.DeleteRecordsBefore(6))
	require.Equal(t, []EpochEntry{{1, 6}, {2, 8}}, l.Epochs())
	e, end := l.EndOffsetForEpoch(0)
	require.Equal(t, int32(0), e)
	require.EqualValues(t, 6, end, "an epoch before the log start ends where the data starts")
}

func TestAppendAsFollowerKeepsLeaderBatches(t *testing.T) {
	c := newClock()
	cfg := testConfig()
	cfg.LogAppendTime = true // the leader stamps; the follower must keep it
	leader := openT(t, t.TempDir(), cfg, c)
	defer leader.Close()
	follower := openT(t, t.TempDir(), testConfig(), c)
	defer follower.Close()

	appendEpoch(t, leader, c, 3, "a", 3)
	c.Add(5 * time.Second)
	_, err := leader.Append(idemBatch(7, 1, 0, 2, c.Ms()), 3)
	require.NoError(t, err)
	require.NoError(t, leader.AssignEpochStartOffset(4, leader.LogEndOffset()))
	c.Add(5 * time.Second)
	_, err = leader.Append(idemBatch(7, 1, 2, 2, c.Ms()), 4)
	require.NoError(t, err)
	raw := rawLog(t, leader)

	c.Add(time.Minute) // the follower's clock must not show up anywhere
	r, err := follower.AppendAsFollower(append([]byte(nil), raw...))
	require.NoError(t, err)
	require.EqualValues(t, 0, r.BaseOffset)
	require.EqualValues(t, 6, r.LastOffset)
	require.Equal(t, raw, rawLog(t, follower), "offsets, epochs and timestamps kept byte for byte")
	require.Equal(t, leader.Epochs(), follower.Epochs())
	require.EqualValues(t, 0, follower.HighWatermark(), "appends do not move a follower's HW")

	// Producer state came along: the next sequence is accepted when this
	// replica leads, and a retry of the last batch is a duplicate.
	dup, err := follower.Append(idemBatch(7, 1, 2, 2, c.Ms()), 5)
	require.NoError(t, err)
	require.True(t, dup.Duplicate)
	require.EqualValues(t, 5, dup.BaseOffset)
	_, err = follower.Append(idemBatch(7, 1, 5, 1, c.Ms()), 5)
	require.ErrorIs(t, err, tributary.ErrOutOfOrderSequenceNumber)
	next, err := follower.Append(idemBatch(7, 1, 4, 1, c.Ms()), 5)
	require.NoError(t, err)
	require.EqualValues(t, 7, next.BaseOffset)
}

func TestAppendAsFollowerRejects(t *testing.T) {
	c := newClock()
	leader := openT(t, t.TempDir(), testConfig(), c)
	defer leader.Close()
	appendEpoch(t, leader, c, 0, "a", 2)
	appendEpoch(t, leader, c, 0, "b", 2)
	raw := rawLog(t, leader)
	first := decodeBatches(t, raw)
	require.Len(t, first, 4)
	size := len(raw) / 2 // two equal batches

	follower := openT(t, t.TempDir(), testConfig(), c)
	defer follower.Close()
	_, err := follower.AppendAsFollower(append([]byte(nil), raw[size:]...))
	require.ErrorIs(t, err, tributary.ErrOffsetOutOfRange, "must start at the log end")

	bad := append([]byte(nil), raw...)
	bad[len(bad)-1] ^= 1
	_, err = follower.AppendAsFollower(bad)
	require.ErrorIs(t, err, tributary.ErrCorruptMessage, "CRC")
	require.EqualValues(t, 0, follower.LogEndOffset(), "nothing of a bad request is appended")

	_, err = follower.AppendAsFollower(append([]byte(nil), raw[:size+10]...))
	require.ErrorIs(t, err, tributary.ErrCorruptMessage, "partial batch")

	gap := append(append([]byte(nil), raw[:size]...), raw[:size]...)
	_, err = follower.AppendAsFollower(gap)
	require.ErrorIs(t, err, tributary.ErrCorruptMessage, "offsets must be contiguous")
	require.EqualValues(t, 0, follower.LogEndOffset())

	_, err = follower.AppendAsFollower(append([]byte(nil), raw...))
	require.NoError(t, err)
	require.EqualValues(t, 4, follower.LogEndOffset())
}

// A follower's log with a divergent tail, truncated and refilled, ends
// up identical to the leader's, across segments.
func TestTruncateToAcrossSegments(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	cfg := testConfig()
	cfg.SegmentBytes = 250
	l := openT(t, dir, cfg, c)
	for i := range 10 {
		appendEpoch(t, l, c, int32(i/4), fmt.Sprintf("x%d", i), 2) // epochs 0,0,0,0,1,1,1,1,2,2
	}
	require.Greater(t, len(l.segs), 3)
	l.SetHighWatermark(18)
	require.NoError(t, l.Flush())
	segsBefore := len(l.segs)

	require.NoError(t, l.TruncateTo(9)) // inside batch 8..9: the batch goes
	require.EqualValues(t, 8, l.LogEndOffset())
	require.EqualValues(t, 8, l.HighWatermark(), "HW clamped")
	require.Less(t, len(l.segs), segsBefore)
	require.Equal(t, []EpochEntry{{0, 0}, {1, 8}}[:1], l.Epochs(), "epoch 1 started at 8 and is gone")
	require.EqualValues(t, 8, l.recoveryPoint)
	recs := readAll(t, l)
	requireContiguous(t, recs, 0, 8)
	require.Equal(t, "x3-1", recs[7].value)

	// No-ops: at or past the end.
	require.NoError(t, l.TruncateTo(8))
	require.NoError(t, l.TruncateTo(100))
	require.EqualValues(t, 8, l.LogEndOffset())
	// ... except for an epoch that began at the end without a batch.
	require.NoError(t, l.AssignEpochStartOffset(4, 8))
	require.NoError(t, l.TruncateTo(100))
	require.Equal(t, []EpochEntry{{4, 8}}, l.Epochs()[1:])
	require.NoError(t, l.TruncateTo(8))
	require.Equal(t, []EpochEntry{{0, 0}}, l.Epochs())

	// New data after the cut, then a crash: recovery sees exactly it.
	appendEpoch(t, l, c, 5, "y", 3)
	crash(l)
	l = openT(t, dir, cfg, c)
	defer l.Close()
	recs = readAll(t, l)
	requireContiguous(t, recs, 0, 11)
	require.Equal(t, []string{"y-0", "y-1", "y-2"}, values(recs[8:]))
	require.Equal(t, []EpochEntry{{0, 0}, {5, 8}}, l.Epochs())
}

func TestTruncateToMidSegmentIndexes(t *testing.T) {
	c := newClock()
	cfg := testConfig()
	cfg.IndexIntervalBytes = 1 // an index entry per batch
	l := openT(t, t.TempDir(), cfg, c)
	defer l.Close()
	for i := range 20 {
		c.Add(time.Second)
		appendEpoch(t, l, c, 0, fmt.Sprintf("z%d", i), 1)
	}
	require.Len(t, l.segs, 1)
	require.NoError(t, l.TruncateTo(12))
	s := l.segs[0]
	for _, e := range s.idx {
		require.Less(t, int64(e.pos), s.size)
		require.Less(t, s.base+int64(e.rel), int64(12))
	}
	for _, e := range s.tidx {
		require.Less(t, s.base+int64(e.rel), int64(12))
	}
	// Timestamp lookups see no trace of the cut records.
	o, ts, ok, err := l.OffsetForTimestamp(c.Ms(), 1<<62)
	require.NoError(t, err)
	require.False(t, ok, "%d %d", o, ts)
	off, _, ok, err := l.MaxTimestamp(1 << 62)
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, 11, off)
	// Every remaining offset is still found through the indexes.
	for o := int64(0); o < 12; o++ {
		fs, err := l.Read(o, 12, 1, true)
		require.NoError(t, err)
		require.Equal(t, []rec{{off: o, ts: decodeBatches(t, sliceBytes(t, fs))[0].ts, value: fmt.Sprintf("z%d-0", o)}}, decodeBatches(t, sliceBytes(t, fs)))
	}
}

func TestTruncateToRebuildsProducerState(t *testing.T) {
	c := newClock()
	cfg := testConfig()
	cfg.SegmentBytes = 300 // rolls write snapshots the rebuild starts from
	l := openT(t, t.TempDir(), cfg, c)
	defer l.Close()
	var seq int32
	for range 8 {
		_, err := l.Append(idemBatch(9, 0, seq, 2, c.Ms()), 0)
		require.NoError(t, err)
		seq += 2
	}
	require.Greater(t, len(l.segs), 2)
	require.NoError(t, l.TruncateTo(10)) // keeps sequences 0..9
	// The batch with sequence 10 is no longer stored: not a duplicate
	// any more, but the next in line.
	r, err := l.Append(idemBatch(9, 0, 10, 2, c.Ms()), 1)
	require.NoError(t, err)
	require.False(t, r.Duplicate)
	require.EqualValues(t, 10, r.BaseOffset)
	// And sequence 8 is still a duplicate of offset 8.
	r, err = l.Append(idemBatch(9, 0, 8, 2, c.Ms()), 1)
	require.NoError(t, err)
	require.True(t, r.Duplicate)
	require.EqualValues(t, 8, r.BaseOffset)
}

func TestTruncateNeverBelowLogStart(t *testing.T) {
	c := newClock()
	l := openT(t, t.TempDir(), testConfig(), c)
	defer l.Close()
	appendEpoch(t, l, c, 0, "a", 5) // 0..4
	appendEpoch(t, l, c, 0, "b", 5) // 5..9
	require.NoError(t, l.DeleteRecordsBefore(3))

	require.NoError(t, l.TruncateTo(1)) // raised to 3: batch 0..4 holds it
	require.EqualValues(t, 3, l.LogStartOffset())
	require.EqualValues(t, 3, l.LogEndOffset(), "restarted empty at the log start")
	_, err := l.AppendAsFollower(mkFollowerBatch(t, c, 3, 2, 0))
	require.NoError(t, err)
	require.EqualValues(t, 5, l.LogEndOffset())
	require.Error(t, l.TruncateTo(-1))
}

// mkFollowerBatch is a leader's batch of n records at base offset base
// and epoch e, as a fetch response carries it.
func mkFollowerBatch(t *testing.T, c *clock, base int64, n int, e int32) []byte {
	t.Helper()
	l := openT(t, t.TempDir(), testConfig(), c)
	defer l.Close()
	require.NoError(t, l.TruncateFullyAndStartAt(base))
	appendEpoch(t, l, c, e, "f", n)
	return rawLog(t, l)
}

func TestTruncateFullyAndStartAt(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	l := openT(t, dir, testConfig(), c)
	_, err := l.Append(idemBatch(4, 0, 0, 3, c.Ms()), 2)
	require.NoError(t, err)
	l.SetHighWatermark(3)
	require.NoError(t, l.TruncateFullyAndStartAt(100))
	require.EqualValues(t, 100, l.LogStartOffset())
	require.EqualValues(t, 100, l.LogEndOffset())
	require.EqualValues(t, 100, l.HighWatermark())
	require.Empty(t, l.Epochs())
	_, known := l.ProducerState(4)
	require.False(t, known)
	_, err = l.Read(50, 200, 100, true)
	require.ErrorIs(t, err, tributary.ErrOffsetOutOfRange)

	_, err = l.AppendAsFollower(mkFollowerBatch(t, c, 100, 3, 7))
	require.NoError(t, err)
	require.NoError(t, l.Close())
	l = openT(t, dir, testConfig(), c)
	defer l.Close()
	require.EqualValues(t, 100, l.LogStartOffset())
	require.EqualValues(t, 103, l.LogEndOffset())
	require.Equal(t, []EpochEntry{{7, 100}}, l.Epochs())
	requireContiguous(t, decodeBatches(t, rawLog(t, l)), 100, 103)
	require.EqualValues(t, 100, l.HighWatermark(), "a follower's HW comes from its leader")
}

func TestHighWatermarkCheckpoint(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	l := openT(t, dir, testConfig(), c)
	appendEpoch(t, l, c, 0, "a", 10)
	require.NoError(t, l.Close())
	// Single replica: no checkpoint, the HW starts at the log end and
	// follows appends.
	l = openT(t, dir, testConfig(), c)
	require.EqualValues(t, 10, l.HighWatermark())
	appendEpoch(t, l, c, 0, "b", 2)
	require.EqualValues(t, 12, l.HighWatermark())
	_, err := os.Stat(filepath.Join(dir, highWatermarkFile))
	require.True(t, errors.Is(err, os.ErrNotExist))

	// Replicated: restored from the checkpoint, not the log end.
	l.SetHighWatermark(7)
	require.NoError(t, l.Close())
	l = openT(t, dir, testConfig(), c)
	require.EqualValues(t, 7, l.HighWatermark())
	appendEpoch(t, l, c, 0, "c", 2)
	require.EqualValues(t, 7, l.HighWatermark(), "appends no longer move it")

	// The periodic checkpoint survives a crash; later moves do not.
	l.SetHighWatermark(13)
	require.NoError(t, l.CheckpointHighWatermark())
	l.SetHighWatermark(14)
	crash(l)
	l = openT(t, dir, testConfig(), c)
	require.EqualValues(t, 13, l.HighWatermark())

	// Clamped to a log that lost its tail.
	require.NoError(t, l.TruncateTo(11)) // inside batch "b" 10..11
	require.EqualValues(t, 10, l.HighWatermark())
	require.NoError(t, l.Close())
	l = openT(t, dir, testConfig(), c)
	defer l.Close()
	require.EqualValues(t, 10, l.HighWatermark())
}

// A follower rolls its own segments (by its own segment.bytes) and
// recovers what it replicated after a crash.
func TestAppendAsFollowerRollsAndRecovers(t *testing.T) {
	c := newClock()
	leader := openT(t, t.TempDir(), testConfig(), c)
	defer leader.Close()
	for i := range 12 {
		appendEpoch(t, leader, c, int32(i/5), fmt.Sprintf("r%d", i), 3)
	}
	raw := rawLog(t, leader)

	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 400
	f := openT(t, dir, cfg, c)
	// Feed it the way fetches do: a few batches at a time.
	for pos := 0; pos < len(raw); {
		end := pos
		for k := 0; k < 3 && end < len(raw); k++ {
			end += int(batchSize(raw[end:]))
		}
		_, err := f.AppendAsFollower(append([]byte(nil), raw[pos:end]...))
		require.NoError(t, err)
		pos = end
	}
	require.Greater(t, len(f.segs), 2)
	require.Equal(t, raw, rawLog(t, f))
	require.Equal(t, leader.Epochs(), f.Epochs())
	crash(f)
	f = openT(t, dir, cfg, c)
	defer f.Close()
	require.Equal(t, raw, rawLog(t, f))
	require.Equal(t, leader.Epochs(), f.Epochs())
}

func batchSize(b []byte) int64 { return int64(binary.BigEndian.Uint32(b[8:])) + 12 }
