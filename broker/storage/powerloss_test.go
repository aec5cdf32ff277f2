package storage

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/internal/compress"
	"github.com/tributary/tributary/internal/vfs"
)

// -powerloss.points sets how many crash points each power-loss scenario
// tries; go test runs a short sample, CI or a soak a long one:
//
//	go test ./broker/storage/ -run PowerLoss -powerloss.points=2000 -v
var powerLossPoints = flag.Int("powerloss.points", 0, "crash points per power-loss scenario (0: 24, or 8 with -short)")

func crashPoints() int {
	switch {
	case *powerLossPoints > 0:
		return *powerLossPoints
	case testing.Short():
		return 8
	}
	return 24
}

// plState is what the workload knows is durable, and what it wrote.
type plState struct {
	written    map[int64]string // offset -> value, for every record handed to Append
	durableEnd int64            // every offset below it was fsynced (Flush, flush.messages=1, Close)
	durableLSO int64            // DeleteRecordsBefore returned with this log start
}

// crashShot is the filesystem a power cut at the k-th operation left,
// with what was durable then and the log start the interrupted call
// ended with (records from there up to durableEnd must survive).
type crashShot struct {
	fs      *vfs.MemFS
	st      plState
	callLS  int64
	pending bool
}

type plScenario struct {
	name          string
	flushMessages int64
	retention     bool
}

func plConfig(sc plScenario) Config {
	cfg := testConfig()
	cfg.SegmentBytes = 420
	cfg.IndexIntervalBytes = 100
	if sc.flushMessages > 0 {
		cfg.FlushMessages = sc.flushMessages
	}
	if sc.retention {
		cfg.RetentionBytes = 1500
	}
	return cfg
}

func plOpen(fs vfs.FS, cfg Config, c *clock) (*Log, error) {
	return Open("/data/t-0", cfg, Options{Now: c.Now, FS: fs, Files: NewFileCache(16)})
}

// runPowerLossWorkload drives a log through appends, rolls, flushes,
// checkpoints, retention, DeleteRecords, clean restarts and kill -9
// restarts, all chosen by seed. When crashAt > 0 it photographs the
// filesystem as a power cut would leave it just before operation
// crashAt (torn: unsynced tails partly kept). It returns the number of
// filesystem operations.
func runPowerLossWorkload(t *testing.T, sc plScenario, seed uint64, crashAt int64, torn bool) (int64, *crashShot) {
	t.Helper()
	mem := vfs.NewMem()
	ifs := vfs.NewInject(mem)
	cfg := plConfig(sc)
	c := newClock()
	rng := rand.New(rand.NewPCG(seed, 7))
	tornRng := rand.New(rand.NewPCG(seed, uint64(crashAt)))
	st := plState{written: map[int64]string{}}
	var shot *crashShot
	var ops int64
	ifs.SetHook(func(vfs.Op, string) error {
		ops++
		if ops == crashAt {
			cl := mem.CrashClone()
			if torn {
				cl = mem.CrashCloneTorn(tornRng)
			}
			cp := st
			shot = &crashShot{fs: cl, st: cp, pending: true}
		}
		return nil
	})
	l, err := plOpen(ifs, cfg, c)
	require.NoError(t, err)
	endCall := func() {
		if shot != nil && shot.pending {
			shot.pending = false
			shot.callLS = l.LogStartOffset()
		}
	}
	counter := 0
	for range 70 {
		switch x := rng.IntN(100); {
		case x < 55:
			n := 1 + rng.IntN(3)
			tag := fmt.Sprintf("v%d", counter)
			counter++
			base := l.LogEndOffset()
			for i := range n {
				st.written[base+int64(i)] = fmt.Sprintf("%s-%d", tag, i)
			}
			res, err := l.Append(mkBatch(compress.None, c.Ms(), tag, n), 0)
			require.NoError(t, err)
			require.Equal(t, base, res.BaseOffset)
			if sc.flushMessages == 1 {
				st.durableEnd = res.LastOffset + 1 // acknowledged = durable
			}
		case x < 67:
			end := l.LogEndOffset()
			require.NoError(t, l.Flush())
			st.durableEnd = max(st.durableEnd, end)
		case x < 72:
			require.NoError(t, l.CheckpointRecoveryPoint())
			require.NoError(t, l.CheckpointLogStartOffset())
		case x < 84:
			c.Add(time.Minute)
			require.NoError(t, l.EnforceRetention())
		case x < 90:
			ls, hw := l.LogStartOffset(), l.HighWatermark()
			off := ls + (hw-ls)/2
			require.NoError(t, l.DeleteRecordsBefore(off))
			st.durableLSO = max(st.durableLSO, off)
		case x < 95:
			end := l.LogEndOffset()
			require.NoError(t, l.Close())
			st.durableEnd = max(st.durableEnd, end)
			endCall()
			l, err = plOpen(ifs, cfg, c)
			require.NoError(t, err)
		default:
			// kill -9: the page cache (the mem FS) keeps everything.
			crash(l)
			endCall()
			l, err = plOpen(ifs, cfg, c)
			require.NoError(t, err)
		}
		endCall()
	}
	require.NoError(t, l.Close())
	endCall()
	return ops, shot
}

// checkPowerLoss reopens the crash clone and checks: the log opens, every
// record it holds is the one written at that offset, nothing fsynced is
// missing, a DeleteRecords that returned stays, and the log takes writes
// and closes cleanly after.
func checkPowerLoss(t *testing.T, sc plScenario, shot *crashShot) {
	t.Helper()
	c := newClock()
	l, err := plOpen(shot.fs, plConfig(sc), c)
	require.NoError(t, err, "the log must open after a power cut")
	ls, leo := l.LogStartOffset(), l.LogEndOffset()
	require.GreaterOrEqual(t, leo, shot.st.durableEnd, "fsynced records lost")
	if leo > shot.st.durableLSO {
		require.GreaterOrEqual(t, ls, shot.st.durableLSO, "a returned DeleteRecords was undone")
	}
	if need := shot.callLS; need < shot.st.durableEnd {
		require.LessOrEqual(t, ls, need, "fsynced records below the log start lost")
	}
	recs := readAll(t, l)
	requireContiguous(t, recs, ls, leo)
	for _, r := range recs {
		require.Equal(t, shot.st.written[r.off], r.value, "offset %d", r.off)
	}
	mustAppend(t, l, mkBatch(compress.None, c.Ms(), "after", 2))
	require.NoError(t, l.Close())
	l, err = plOpen(shot.fs, plConfig(sc), c)
	require.NoError(t, err)
	require.EqualValues(t, leo+2, l.LogEndOffset())
	require.NoError(t, l.Close())
}

// Power loss at random points of appends, rolls, retention, flushes,
// checkpoints, snapshots, DeleteRecords and restarts loses nothing that
// was fsynced and always leaves a log that opens. With flush.messages=1
// every acknowledged append survives.
func TestPowerLoss(t *testing.T) {
	scenarios := []plScenario{
		{name: "flush.messages=1", flushMessages: 1},
		{name: "explicit-flush", flushMessages: math.MaxInt64},
		{name: "retention", flushMessages: math.MaxInt64, retention: true},
	}
	points := crashPoints()
	tried := 0
	for si, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(si), 99))
			for p := range points {
				seed := uint64(si*1_000_003 + p)
				total, _ := runPowerLossWorkload(t, sc, seed, -1, false)
				k := 1 + rng.Int64N(total)
				torn := p%2 == 1
				_, shot := runPowerLossWorkload(t, sc, seed, k, torn)
				require.NotNil(t, shot)
				t.Run(fmt.Sprintf("seed=%d,op=%d/%d,torn=%v", seed, k, total, torn), func(t *testing.T) {
					checkPowerLoss(t, sc, shot)
				})
				tried++
			}
		})
	}
	t.Logf("power-loss crash points tried: %d", tried)
}
