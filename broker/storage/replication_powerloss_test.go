package storage

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/internal/batch"
	"github.com/tributary/tributary/internal/compress"
	"github.com/tributary/tributary/internal/vfs"
)

// replState is what a replication workload knows is durable.
type replState struct {
	written    map[int64]string // offset -> value of the record stored there now
	durableEnd int64            // every offset below it was fsynced
	durableLSO int64            // a returned DeleteRecords/TruncateFully set this log start
	durableHW  int64            // a returned CheckpointHighWatermark wrote this (-1: none)
}

type replShot struct {
	fs *vfs.MemFS
	st replState
}

func replConfig() Config {
	cfg := testConfig()
	cfg.SegmentBytes = 420
	cfg.IndexIntervalBytes = 100
	return cfg
}

// runReplPowerLoss drives a log as a replica would: leader appends at a
// growing epoch, follower appends, new epochs assigned at the log end,
// truncations (partial and full), high watermark checkpoints, flushes,
// DeleteRecords, retention and restarts. When crashAt > 0 it photographs
// the filesystem as a power cut would leave it just before operation
// crashAt. It returns the number of filesystem operations.
func runReplPowerLoss(t *testing.T, seed uint64, crashAt int64, torn bool) (int64, *replShot) {
	t.Helper()
	mem := vfs.NewMem()
	ifs := vfs.NewInject(mem)
	cfg := replConfig()
	c := newClock()
	rng := rand.New(rand.NewPCG(seed, 11))
	tornRng := rand.New(rand.NewPCG(seed, uint64(crashAt)))
	st := replState{written: map[int64]string{}, durableHW: -1}
	var shot *replShot
	var ops int64
	ifs.SetHook(func(vfs.Op, string) error {
		ops++
		if ops == crashAt {
			cl := mem.CrashClone()
			if torn {
				cl = mem.CrashCloneTorn(tornRng)
			}
			cp := st
			cp.written = maps.Clone(st.written)
			shot = &replShot{fs: cl, st: cp}
		}
		return nil
	})
	open := func() *Log {
		l, err := plOpen(ifs, cfg, c)
		require.NoError(t, err)
		return l
	}
	l := open()
	epoch := int32(0)
	counter := 0
	record := func(base int64, tag string, n int) {
		for i := range n {
			st.written[base+int64(i)] = fmt.Sprintf("%s-%d", tag, i)
		}
	}
	forget := func(from int64) {
		for off := range st.written {
			if off >= from {
				delete(st.written, off)
			}
		}
	}
	for range 60 {
		tag := fmt.Sprintf("v%d", counter)
		counter++
		n := 1 + rng.IntN(3)
		switch x := rng.IntN(100); {
		case x < 35:
			// Recorded first: a power cut during the call may keep it.
			leo := l.LogEndOffset()
			record(leo, tag, n)
			res, err := l.Append(mkBatch(compress.None, c.Ms(), tag, n), epoch)
			require.NoError(t, err)
			require.Equal(t, leo, res.BaseOffset)
		case x < 50:
			leo := l.LogEndOffset()
			b := mkBatch(compress.None, c.Ms(), tag, n)
			batch.SetBaseOffset(b, leo)
			batch.SetPartitionLeaderEpoch(b, epoch)
			record(leo, tag, n)
			_, err := l.AppendAsFollower(b)
			require.NoError(t, err)
		case x < 58:
			epoch++
			if rng.IntN(2) == 0 {
				require.NoError(t, l.AssignEpochStartOffset(epoch, l.LogEndOffset()))
			}
		case x < 66:
			end := l.LogEndOffset()
			require.NoError(t, l.Flush())
			st.durableEnd = max(st.durableEnd, end)
		case x < 74:
			ls, leo := l.LogStartOffset(), l.LogEndOffset()
			to := ls + rng.Int64N(leo-ls+1)
			// While the call runs either log may survive a power cut;
			// the cut may fall up to a batch (3 records) below to, and
			// the high watermark follows it down.
			durable := st.durableEnd
			st.durableEnd = min(st.durableEnd, max(to-2, 0))
			st.durableHW = min(st.durableHW, max(to-2, 0))
			require.NoError(t, l.TruncateTo(to))
			forget(l.LogEndOffset())
			st.durableHW = min(st.durableHW, l.LogEndOffset())
			if l.LogEndOffset() < leo {
				// A cut returns durable, the whole log with it.
				st.durableEnd = l.LogEndOffset()
			} else {
				st.durableEnd = durable
			}
		case x < 77:
			to := l.LogEndOffset() + int64(rng.IntN(5)) - 2
			to = max(to, 0)
			st.durableEnd = min(st.durableEnd, to)
			st.durableLSO = min(st.durableLSO, to)
			st.durableHW = min(st.durableHW, to)
			require.NoError(t, l.TruncateFullyAndStartAt(to))
			forget(0)
			st.durableEnd, st.durableLSO = to, to
		case x < 85:
			ls, leo := l.LogStartOffset(), l.LogEndOffset()
			l.SetHighWatermark(ls + rng.Int64N(leo-ls+1))
			hw := l.HighWatermark()
			// It may move back (tests do that; a truncation does too).
			st.durableHW = min(st.durableHW, hw)
			require.NoError(t, l.CheckpointHighWatermark())
			st.durableHW = hw
		case x < 89:
			ls, hw := l.LogStartOffset(), l.HighWatermark()
			off := ls + (hw-ls)/2
			require.NoError(t, l.DeleteRecordsBefore(off))
			st.durableLSO = max(st.durableLSO, off)
		case x < 93:
			c.Add(time.Minute)
			require.NoError(t, l.EnforceRetention())
		case x < 97:
			end := l.LogEndOffset()
			require.NoError(t, l.Close())
			st.durableEnd = max(st.durableEnd, end)
			l = open()
		default:
			crash(l) // kill -9: the page cache (the mem FS) keeps everything
			l = open()
		}
	}
	require.NoError(t, l.Close())
	return ops, shot
}

// checkReplPowerLoss reopens a crash clone and checks what replication
// relies on: the log opens with every record it holds being the one last
// written at its offset (a truncated tail never comes back), nothing
// fsynced is lost, the leader epoch cache describes the batches that
// survived (its file was never behind the log), and the high watermark
// lies within the log and not below a returned checkpoint.
func checkReplPowerLoss(t *testing.T, shot *replShot) {
	t.Helper()
	c := newClock()
	l, err := plOpen(shot.fs, replConfig(), c)
	require.NoError(t, err, "the log must open after a power cut")
	ls, leo := l.LogStartOffset(), l.LogEndOffset()
	require.GreaterOrEqual(t, leo, shot.st.durableEnd, "fsynced records lost")
	if leo > shot.st.durableLSO {
		require.GreaterOrEqual(t, ls, shot.st.durableLSO, "a returned DeleteRecords was undone")
	}
	raw := rawLog(t, l)
	recs := decodeBatches(t, raw)
	var kept []rec
	for _, r := range recs {
		if r.off >= ls {
			kept = append(kept, r)
		}
	}
	requireContiguous(t, kept, ls, leo)
	for _, r := range kept {
		require.Equal(t, shot.st.written[r.off], r.value, "offset %d", r.off)
	}

	// Every surviving batch's epoch is the one the cache gives its
	// offset; entries ascend and lie inside the log.
	es := l.Epochs()
	for i := 1; i < len(es); i++ {
		require.Greater(t, es[i].Epoch, es[i-1].Epoch, "epochs %v", es)
		require.GreaterOrEqual(t, es[i].StartOffset, es[i-1].StartOffset, "epochs %v", es)
	}
	for _, e := range es {
		require.GreaterOrEqual(t, e.StartOffset, ls, "epochs %v", es)
		// At the log end only for an empty log, whose log start moved
		// the entry there (Kafka's truncateFromStart).
		if e.StartOffset == leo {
			require.Equal(t, ls, leo, "epochs %v", es)
		}
		require.LessOrEqual(t, e.StartOffset, leo, "epochs %v", es)
	}
	for pos := 0; pos < len(raw); {
		h, err := batch.ParseHeader(raw[pos:])
		require.NoError(t, err)
		pos += int(h.Size())
		if h.LastOffset() < ls {
			continue
		}
		at := max(h.BaseOffset, ls)
		got := UndefinedEpoch
		for _, e := range es {
			if e.StartOffset <= at {
				got = e.Epoch
			}
		}
		require.Equal(t, h.PartitionLeaderEpoch, got, "batch at %d, epochs %v", h.BaseOffset, es)
	}

	hw := l.HighWatermark()
	require.GreaterOrEqual(t, hw, ls)
	require.LessOrEqual(t, hw, leo)
	if shot.st.durableHW >= 0 {
		require.GreaterOrEqual(t, hw, min(shot.st.durableHW, leo), "a checkpointed high watermark went back")
	}

	// The log takes leader and follower writes after it and reopens.
	mustAppend(t, l, mkBatch(compress.None, c.Ms(), "after", 2))
	b := mkBatch(compress.None, c.Ms(), "after-f", 1)
	batch.SetBaseOffset(b, leo+2)
	batch.SetPartitionLeaderEpoch(b, 1000)
	_, err = l.AppendAsFollower(b)
	require.NoError(t, err)
	require.NoError(t, l.Close())
	l, err = plOpen(shot.fs, replConfig(), c)
	require.NoError(t, err)
	require.EqualValues(t, leo+3, l.LogEndOffset())
	require.Equal(t, int32(1000), l.LatestEpoch())
	require.NoError(t, l.Close())
}

// Power loss at random points of a replica's life: the leader epoch and
// high-watermark checkpoints and truncations go through the same vfs as
// the segments, so the crash clone sees exactly what was fsynced.
func TestReplicationPowerLoss(t *testing.T) {
	points := crashPoints()
	rng := rand.New(rand.NewPCG(5, 99))
	for p := range points {
		seed := uint64(7_000_003 + p)
		total, _ := runReplPowerLoss(t, seed, -1, false)
		k := 1 + rng.Int64N(total)
		torn := p%2 == 1
		_, shot := runReplPowerLoss(t, seed, k, torn)
		require.NotNil(t, shot)
		t.Run(fmt.Sprintf("seed=%d,op=%d/%d,torn=%v", seed, k, total, torn), func(t *testing.T) {
			checkReplPowerLoss(t, shot)
		})
	}
}
