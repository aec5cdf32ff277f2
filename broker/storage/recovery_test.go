package storage

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/internal/compress"
)

func segFile(dir string, base int64, ext string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", base, ext))
}

// fillLog appends n batches of 5 records (codec varies) and returns the
// byte position where each batch starts in its segment file, plus its
// segment's base.
type batchLoc struct {
	seg, pos, size int64
}

func fillLog(t *testing.T, l *Log, n int) []batchLoc {
	t.Helper()
	var locs []batchLoc
	for i := range n {
		b := mkBatch(allCodecs[i%len(allCodecs)], int64(1000+i), fmt.Sprintf("r%d", i), 5)
		size := int64(len(b))
		mustAppend(t, l, b)
		act := l.active()
		locs = append(locs, batchLoc{seg: act.base, pos: act.size - size, size: size})
	}
	return locs
}

func TestRecoveryTruncatedTail(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, clean := range []bool{false, true} {
		for trial := range 4 {
			t.Run(fmt.Sprintf("clean=%v/%d", clean, trial), func(t *testing.T) {
				dir := t.TempDir()
				cfg := testConfig()
				cfg.SegmentBytes = 1500
				cfg.IndexIntervalBytes = 200
				l := openT(t, dir, cfg, newClock())
				locs := fillLog(t, l, 30)
				if trial%2 == 0 {
					require.NoError(t, l.Flush()) // recovery point at the end
				}
				if clean {
					require.NoError(t, l.Close())
				} else {
					crash(l)
				}
				last := locs[len(locs)-1]
				cut := last.pos + rng.Int64N(last.size) // inside the last batch
				require.NoError(t, os.Truncate(segFile(dir, last.seg, ".log"), cut))

				l = openT(t, dir, cfg, newClock())
				defer l.Close()
				require.EqualValues(t, 29*5, l.LogEndOffset())
				require.EqualValues(t, 29*5, l.HighWatermark())
				requireContiguous(t, readAll(t, l), 0, 29*5)
				fi, err := os.Stat(segFile(dir, last.seg, ".log"))
				require.NoError(t, err)
				require.Equal(t, last.pos, fi.Size(), "torn bytes cut off")
				r := mustAppend(t, l, mkBatch(compress.None, 5000, "after", 2))
				require.EqualValues(t, 29*5, r.BaseOffset)
				requireContiguous(t, readAll(t, l), 0, 29*5+2)
			})
		}
	}
}

func TestRecoveryFlippedByteInLastBatch(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, testConfig(), newClock())
	locs := fillLog(t, l, 10)
	crash(l)
	last := locs[len(locs)-1]
	flipByte(t, segFile(dir, last.seg, ".log"), last.pos+last.size-4)

	l = openT(t, dir, testConfig(), newClock())
	defer l.Close()
	require.EqualValues(t, 45, l.LogEndOffset())
	requireContiguous(t, readAll(t, l), 0, 45)
}

func flipByte(t *testing.T, path string, at int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	b := []byte{0}
	_, err = f.ReadAt(b, at)
	require.NoError(t, err)
	b[0] ^= 0x10
	_, err = f.WriteAt(b, at)
	require.NoError(t, err)
}

// A corrupt batch in an older segment above the recovery point cuts the
// log there and drops every later segment, as Kafka's recovery does: it
// is the unflushed tail a crash tore.
func TestRecoveryCorruptMiddleSegmentDropsLater(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 1000
	l := openT(t, dir, cfg, newClock())
	locs := fillLog(t, l, 40)
	crash(l)
	// As if the crash came before any roll's flush had checkpointed the
	// recovery point: recovery starts at the first segment.
	require.NoError(t, os.Remove(filepath.Join(dir, recoveryPointFile)))
	bad := locs[7]
	require.NotEqual(t, bad.seg, locs[len(locs)-1].seg)
	flipByte(t, segFile(dir, bad.seg, ".log"), bad.pos+30) // inside the CRC range

	l = openT(t, dir, cfg, newClock())
	defer l.Close()
	require.EqualValues(t, 35, l.LogEndOffset())
	requireContiguous(t, readAll(t, l), 0, 35)
	require.NoFileExists(t, segFile(dir, locs[len(locs)-1].seg, ".log"))
	r := mustAppend(t, l, mkBatch(compress.None, 1, "x", 1))
	require.EqualValues(t, 35, r.BaseOffset)
}

// Below the recovery point segments are trusted after an unclean
// shutdown; only the tail is re-validated.
func TestRecoveryStartsAtRecoveryPoint(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 1000
	l := openT(t, dir, cfg, newClock())
	fillLog(t, l, 20)
	require.NoError(t, l.Flush())
	locs := fillLog(t, l, 20)
	crash(l)
	last := locs[len(locs)-1]
	require.NoError(t, os.Truncate(segFile(dir, last.seg, ".log"), last.pos+5))
	l = openT(t, dir, cfg, newClock())
	defer l.Close()
	require.EqualValues(t, 39*5, l.LogEndOffset())
	requireContiguous(t, readAll(t, l), 0, 39*5)
}

func TestRecoveryGarbageTail(t *testing.T) {
	for _, tail := range [][]byte{make([]byte, 4096), []byte{0, 0, 0, 0, 0, 0, 0, 9, 0x7f, 0xff, 0xff, 0xff}, []byte{1, 2, 3}} {
		dir := t.TempDir()
		l := openT(t, dir, testConfig(), newClock())
		fillLog(t, l, 5)
		crash(l)
		f, err := os.OpenFile(segFile(dir, 0, ".log"), os.O_WRONLY|os.O_APPEND, 0)
		require.NoError(t, err)
		_, err = f.Write(tail) // zeros (preallocation), a huge length, a partial header
		require.NoError(t, err)
		f.Close()
		l = openT(t, dir, testConfig(), newClock())
		require.EqualValues(t, 25, l.LogEndOffset())
		requireContiguous(t, readAll(t, l), 0, 25)
		require.NoError(t, l.Close())
	}
}

func snapshotIndexes(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, pat := range []string{"*.index", "*.timeindex"} {
		m, _ := filepath.Glob(filepath.Join(dir, pat))
		for _, f := range m {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			out[filepath.Base(f)] = b
		}
	}
	return out
}

func TestMissingIndexesRebuilt(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 2000
	cfg.IndexIntervalBytes = 150
	l := openT(t, dir, cfg, newClock())
	fillLog(t, l, 40)
	require.NoError(t, l.Close())
	before := snapshotIndexes(t, dir)
	require.Greater(t, len(before), 4)
	for name, b := range before {
		if filepath.Ext(name) == ".index" {
			require.NotEmpty(t, b, name)
		}
	}
	removeIndexes(t, dir)

	l = openT(t, dir, cfg, newClock())
	require.Equal(t, before, snapshotIndexes(t, dir), "rebuilt byte for byte")
	requireContiguous(t, readAll(t, l), 0, 200)
	off, ts, ok, err := l.OffsetForTimestamp(1017, 200)
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, 13*5+4, off) // batch i holds timestamps 1000+i … 1004+i
	require.EqualValues(t, 1017, ts)
	fs, err := l.Read(123, 200, 1, true)
	require.NoError(t, err)
	require.EqualValues(t, 120, decodeBatches(t, sliceBytes(t, fs))[0].off)
	require.NoError(t, l.Close())
}

func TestCorruptIndexRebuilt(t *testing.T) {
	cases := map[string]func(t *testing.T, dir string){
		"garbage index": func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(segFile(dir, 0, ".index"), []byte("not an index at all!!!!"), 0o644))
		},
		"index points nowhere": func(t *testing.T, dir string) {
			b, _ := os.ReadFile(segFile(dir, 0, ".index"))
			b[len(b)-1]++ // last entry's position off by one
			require.NoError(t, os.WriteFile(segFile(dir, 0, ".index"), b, 0o644))
		},
		"time index out of order": func(t *testing.T, dir string) {
			b, _ := os.ReadFile(segFile(dir, 0, ".timeindex"))
			copy(b[:8], []byte{0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
			require.NoError(t, os.WriteFile(segFile(dir, 0, ".timeindex"), b, 0o644))
		},
		"truncated time index": func(t *testing.T, dir string) {
			require.NoError(t, os.Truncate(segFile(dir, 0, ".timeindex"), 5))
		},
	}
	for name, corrupt := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig()
			cfg.IndexIntervalBytes = 100
			l := openT(t, dir, cfg, newClock())
			fillLog(t, l, 20)
			require.NoError(t, l.Close())
			before := snapshotIndexes(t, dir)
			corrupt(t, dir)
			l = openT(t, dir, cfg, newClock())
			defer l.Close()
			require.Equal(t, before, snapshotIndexes(t, dir))
			requireContiguous(t, readAll(t, l), 0, 100)
			off, _, ok, err := l.OffsetForTimestamp(1012, 100)
			require.NoError(t, err)
			require.True(t, ok)
			require.EqualValues(t, 8*5+4, off)
		})
	}
}

func TestOpenRemovesLeftovers(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, testConfig(), newClock())
	fillLog(t, l, 3)
	require.NoError(t, l.Close())
	for _, name := range []string{"00000000000000000007.log.deleted", "00000000000000000099.index", "00000000000000000099.timeindex", "recovery-point-checkpoint.tmp"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644))
	}
	l = openT(t, dir, testConfig(), newClock())
	defer l.Close()
	for _, name := range []string{"00000000000000000007.log.deleted", "00000000000000000099.index", "00000000000000000099.timeindex", "recovery-point-checkpoint.tmp"} {
		require.NoFileExists(t, filepath.Join(dir, name))
	}
	requireContiguous(t, readAll(t, l), 0, 15)
}
