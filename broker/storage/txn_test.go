package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/internal/batch"
	"github.com/tributary/tributary/internal/batch/batchtest"
	"github.com/tributary/tributary/internal/vfs"
)

// txnProd is a transactional producer: its id, epoch and next sequence.
type txnProd struct {
	pid   int64
	epoch int16
	seq   int32
}

func (p *txnProd) batch(ts int64, key string, n int, transactional bool) []byte {
	o := batchtest.Opts{ProducerID: p.pid, ProducerEpoch: p.epoch, BaseSequence: p.seq, BaseTimestamp: ts, Transactional: transactional}
	recs := make([]batchtest.Rec, n)
	for i := range recs {
		recs[i] = batchtest.Rec{Key: []byte(key), Value: fmt.Appendf(nil, "p%d-s%d", p.pid, int(p.seq)+i), TsDelta: int64(i)}
	}
	return batchtest.Build(o, recs...)
}

// send appends n transactional records keyed key.
func (p *txnProd) send(t *testing.T, l *Log, ts int64, key string, n int) AppendResult {
	t.Helper()
	r, err := l.Append(p.batch(ts, key, n, true), 0)
	require.NoError(t, err)
	p.seq += int32(n)
	return r
}

func (p *txnProd) end(t *testing.T, l *Log, commit bool) AppendResult {
	t.Helper()
	r, err := l.AppendMarker(Marker{ProducerID: p.pid, ProducerEpoch: p.epoch, Commit: commit}, 0)
	require.NoError(t, err)
	return r
}

// rawBatches walks every batch of l from its log start to its end.
func rawBatches(t *testing.T, l *Log) [][]byte {
	t.Helper()
	var out [][]byte
	off, end := l.LogStartOffset(), l.LogEndOffset()
	for off < end {
		fs, err := l.Read(off, end, 1<<30, true)
		require.NoError(t, err)
		require.NotZero(t, fs.Len, "no progress at %d", off)
		b := sliceBytes(t, fs)
		for len(b) > 0 {
			h, err := batch.ParseHeader(b)
			require.NoError(t, err)
			out = append(out, b[:h.Size()])
			off = h.LastOffset() + 1
			b = b[h.Size():]
		}
	}
	return out
}

// txnModel derives, independently of the log's state, what the stored
// batches say about transactions: the aborted ones (in marker order) and
// the open ones.
func txnModel(t *testing.T, batches [][]byte) (aborted []AbortedTxn, open map[int64]int64) {
	t.Helper()
	open = map[int64]int64{}
	for _, b := range batches {
		h, err := batch.ParseHeader(b)
		require.NoError(t, err)
		if h.ProducerID < 0 {
			continue
		}
		if h.IsControl() {
			region, err := batch.RecordsRegion(b, nil, 1<<20)
			require.NoError(t, err)
			it := batch.NewRecords(region, h.RecordCount)
			var r batch.Record
			if !it.Next(&r) {
				continue
			}
			abort := binary.BigEndian.Uint16(r.Key[2:]) == 0
			if first, ok := open[h.ProducerID]; ok {
				if abort {
					aborted = append(aborted, AbortedTxn{h.ProducerID, first, h.BaseOffset})
				}
				delete(open, h.ProducerID)
			}
			continue
		}
		if _, ok := open[h.ProducerID]; !ok && h.IsTransactional() {
			open[h.ProducerID] = h.BaseOffset
		}
	}
	return aborted, open
}

func modelLSO(hw int64, open map[int64]int64) int64 {
	for _, f := range open {
		hw = min(hw, f)
	}
	return hw
}

func TestLastStableOffsetFollowsTransactions(t *testing.T) {
	c := newClock()
	l := openT(t, t.TempDir(), testConfig(), c)
	defer l.Close()
	a, b := &txnProd{pid: 1}, &txnProd{pid: 2}

	mustAppend(t, l, mkBatch(0, c.Ms(), "plain", 1)) // 0
	require.Equal(t, int64(1), l.LastStableOffset())
	a.send(t, l, c.Ms(), "a", 2) // 1-2
	require.Equal(t, int64(1), l.LastStableOffset())
	b.send(t, l, c.Ms(), "b", 2) // 3-4
	a.send(t, l, c.Ms(), "a", 1) // 5
	mustAppend(t, l, mkBatch(0, c.Ms(), "plain", 1))
	require.Equal(t, int64(1), l.LastStableOffset())
	require.Equal(t, int64(1), l.Stats().LastStable)
	require.Equal(t, int64(7), l.HighWatermark())

	// A non-transactional batch while the transaction is open.
	_, err := l.Append(a.batch(c.Ms(), "a", 1, false), 0)
	require.ErrorIs(t, err, tributary.ErrInvalidTxnState)

	res := a.end(t, l, true) // commit at 7
	require.Equal(t, int64(7), res.BaseOffset)
	require.Equal(t, int64(3), l.LastStableOffset(), "b's transaction is now the oldest")
	res = b.end(t, l, false) // abort at 8
	require.Equal(t, int64(8), res.BaseOffset)
	require.Equal(t, int64(9), l.LastStableOffset())
	require.Equal(t, []AbortedTxn{{ProducerID: 2, FirstOffset: 3, LastOffset: 8}}, l.AbortedTransactions(0, 9))
	require.Empty(t, l.AbortedTransactions(9, 9))
	require.Empty(t, l.AbortedTransactions(0, 3), "a fetch below the transaction's first offset")

	// A marker with no open transaction is written and moves nothing.
	res = a.end(t, l, false)
	require.Equal(t, int64(9), res.BaseOffset)
	require.Len(t, l.AbortedTransactions(0, 10), 1)

	// The LSO never passes the high watermark.
	b.send(t, l, c.Ms(), "b", 1) // 10
	l.SetHighWatermark(6)
	require.Equal(t, int64(6), l.LastStableOffset())
	l.SetHighWatermark(l.LogEndOffset())
	require.Equal(t, int64(10), l.LastStableOffset())

	ps := l.Producers()
	require.Len(t, ps, 2)
	require.Equal(t, ProducerInfo{ProducerID: 1, Epoch: 0, LastSequence: 2, LastTimestamp: c.Ms(), CoordinatorEpoch: 0, TxnStartOffset: -1}, ps[0])
	require.Equal(t, int64(10), ps[1].TxnStartOffset)
	require.Equal(t, int32(2), ps[1].LastSequence)

	// A producer with an open transaction outlives producer.id.expiration.ms.
	c.Add(25 * time.Hour)
	require.NoError(t, l.EnforceRetention())
	ps = l.Producers()
	require.Len(t, ps, 1)
	require.Equal(t, int64(2), ps[0].ProducerID)
}

func TestMarkerFencing(t *testing.T) {
	c := newClock()
	l := openT(t, t.TempDir(), testConfig(), c)
	defer l.Close()
	p := &txnProd{pid: 7}
	p.send(t, l, c.Ms(), "k", 2)

	// The coordinator bumps the epoch and aborts (InitProducerId of a
	// new instance): the old producer is fenced.
	_, err := l.AppendMarker(Marker{ProducerID: 7, ProducerEpoch: 1, Commit: false, CoordinatorEpoch: 3}, 0)
	require.NoError(t, err)
	require.Equal(t, l.LogEndOffset(), l.LastStableOffset())

	_, err = l.Append(p.batch(c.Ms(), "k", 1, true), 0)
	require.ErrorIs(t, err, tributary.ErrInvalidProducerEpoch, "a zombie's transactional append")
	_, err = l.AppendMarker(Marker{ProducerID: 7, ProducerEpoch: 0, Commit: true, CoordinatorEpoch: 3}, 0)
	require.ErrorIs(t, err, tributary.ErrProducerFenced)
	require.Equal(t, tributary.ErrInvalidProducerEpoch.Code, tributary.CodeOf(err), "Kafka's code for an old-epoch marker")
	_, err = l.AppendMarker(Marker{ProducerID: 7, ProducerEpoch: 1, Commit: true, CoordinatorEpoch: 2}, 0)
	require.ErrorIs(t, err, tributary.ErrTransactionCoordinatorFenced)
	// Nothing of the refused appends landed.
	end := l.LogEndOffset()
	require.Equal(t, int64(3), end)

	// The new epoch starts at sequence 0 and runs a transaction.
	np := &txnProd{pid: 7, epoch: 1}
	np.send(t, l, c.Ms(), "k", 1)
	require.Equal(t, int64(3), l.LastStableOffset())
	_, err = l.AppendMarker(Marker{ProducerID: 7, ProducerEpoch: 1, Commit: true, CoordinatorEpoch: 4}, 0)
	require.NoError(t, err)
	require.Equal(t, l.LogEndOffset(), l.LastStableOffset())
	ps := l.Producers()
	require.Equal(t, int32(4), ps[0].CoordinatorEpoch)
	require.Equal(t, int16(1), ps[0].Epoch)

	// The marker is Kafka's control batch.
	bs := rawBatches(t, l)
	h, err := batch.ParseHeader(bs[len(bs)-1])
	require.NoError(t, err)
	require.True(t, h.IsControl())
	require.True(t, h.IsTransactional())
	require.Equal(t, int32(-1), h.BaseSequence)
	require.Equal(t, int32(1), h.RecordCount)
	_, err = batch.Validate(bs[len(bs)-1], 1<<20)
	require.NoError(t, err)
	region, err := batch.RecordsRegion(bs[len(bs)-1], nil, 1<<20)
	require.NoError(t, err)
	it := batch.NewRecords(region, 1)
	var r batch.Record
	require.True(t, it.Next(&r))
	require.Equal(t, []byte{0, 0, 0, 1}, r.Key)
	require.Equal(t, []byte{0, 0, 0, 0, 0, 4}, r.Value)

	// Clients cannot produce control batches.
	_, err = l.Append(markerBatch(Marker{ProducerID: 7, ProducerEpoch: 1}, c.Ms()), 0)
	require.ErrorIs(t, err, tributary.ErrInvalidRecord)
}

func TestAppendCoordinator(t *testing.T) {
	c := newClock()
	l := openT(t, t.TempDir(), testConfig(), c)
	defer l.Close()
	coord := func(epoch int16) []byte {
		o := batchtest.Opts{ProducerID: 9, ProducerEpoch: epoch, BaseSequence: -1, BaseTimestamp: c.Ms(), Transactional: true}
		return batchtest.Build(o, batchtest.Rec{Key: []byte("group"), Value: []byte("offset")})
	}
	_, err := l.Append(coord(2), 0)
	require.ErrorIs(t, err, tributary.ErrOutOfOrderSequenceNumber, "a client must send sequences")
	res, err := l.AppendCoordinator(coord(2), 0)
	require.NoError(t, err)
	require.Equal(t, int64(0), res.BaseOffset)
	_, err = l.AppendCoordinator(coord(2), 0)
	require.NoError(t, err, "no sequence, no duplicate check")
	require.Equal(t, int64(0), l.LastStableOffset())
	_, err = l.AppendCoordinator(coord(1), 0)
	require.ErrorIs(t, err, tributary.ErrInvalidProducerEpoch)
	_, err = l.AppendMarker(Marker{ProducerID: 9, ProducerEpoch: 2, Commit: true}, 0)
	require.NoError(t, err)
	require.Equal(t, int64(3), l.LastStableOffset())
	require.Empty(t, l.AbortedTransactions(0, 3))
}

func threeProducers() []*txnProd { return []*txnProd{{pid: 1}, {pid: 2}, {pid: 3}} }

// abortWorkload appends, over several segments, interleaved
// transactions of producers ps, some aborted, plus plain records (a
// marker may find no open transaction: it is written all the same).
func abortWorkload(t *testing.T, l *Log, c *clock, rng *rand.Rand, ps []*txnProd, rounds int) {
	for range rounds {
		p := ps[rng.IntN(len(ps))]
		switch k := rng.IntN(6); {
		case k < 3:
			p.send(t, l, c.Ms(), fmt.Sprintf("k%d", rng.IntN(5)), 1+rng.IntN(3))
		case k < 5:
			p.end(t, l, k == 3)
		default:
			mustAppend(t, l, mkBatch(0, c.Ms(), "plain", 1+rng.IntN(2)))
		}
	}
}

// requireAbortedMatch checks AbortedTransactions over many windows
// against the filter the API promises, over the model.
func requireAbortedMatch(t *testing.T, l *Log, model []AbortedTxn) {
	t.Helper()
	end := l.LastStableOffset()
	for from := l.LogStartOffset(); from <= end; from += 3 {
		for upTo := from + 1; upTo <= end; upTo += 7 {
			var want []AbortedTxn
			for _, a := range model {
				if a.LastOffset >= from && a.FirstOffset < upTo {
					want = append(want, a)
				}
			}
			require.Equal(t, want, l.AbortedTransactions(from, upTo), "window [%d, %d)", from, upTo)
		}
	}
}

func TestAbortedTransactionsAcrossSegmentsAndRestarts(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	cfg := testConfig()
	cfg.SegmentBytes = 600
	l := openT(t, dir, cfg, c)
	rng := rand.New(rand.NewPCG(1, 2))
	ps := threeProducers()
	abortWorkload(t, l, c, rng, ps, 120)
	require.Greater(t, l.Stats().Segments, 5)
	model, open := txnModel(t, rawBatches(t, l))
	require.Greater(t, len(model), 5)
	requireAbortedMatch(t, l, model)
	require.Equal(t, modelLSO(l.HighWatermark(), open), l.LastStableOffset())

	// Kafka's file format, one per segment holding abort markers.
	require.NoError(t, l.Close())
	var n int
	files, _ := filepath.Glob(filepath.Join(dir, "*"+txnIndexExt))
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		require.Zero(t, len(b)%txnEntrySize)
		n += len(b) / txnEntrySize
		require.Equal(t, uint16(0), binary.BigEndian.Uint16(b))
	}
	require.Equal(t, len(model), n)

	// A clean restart reads them; open transactions come back from the
	// snapshot (version 2), and an abort after the restart indexes the
	// right first offset.
	l = openT(t, dir, cfg, c)
	requireAbortedMatch(t, l, model)
	require.Equal(t, modelLSO(l.HighWatermark(), open), l.LastStableOffset())
	for _, p := range ps {
		if _, ok := open[p.pid]; ok {
			p.end(t, l, false)
		}
	}
	abortWorkload(t, l, c, rng, ps, 60)
	model, open = txnModel(t, rawBatches(t, l))
	requireAbortedMatch(t, l, model)

	// A crash: no snapshot at the end, no flush of the newest indexes.
	crash(l)
	l = openT(t, dir, cfg, c)
	requireAbortedMatch(t, l, model)
	require.Equal(t, modelLSO(l.HighWatermark(), open), l.LastStableOffset())

	// Lost and torn index files: a missing .txnindex of a segment the
	// recovery rescans is rebuilt; garbage past whole entries is cut.
	crash(l)
	files, _ = filepath.Glob(filepath.Join(dir, "*"+txnIndexExt))
	require.NotEmpty(t, files)
	last := files[len(files)-1]
	require.NoError(t, os.Remove(last))
	require.NoError(t, os.Remove(filepath.Join(dir, recoveryPointFile)))
	for _, f := range files[:len(files)-1] {
		fh, err := os.OpenFile(f, os.O_APPEND|os.O_WRONLY, 0)
		require.NoError(t, err)
		_, err = fh.Write([]byte("torn entry"))
		require.NoError(t, err)
		require.NoError(t, fh.Close())
	}
	l = openT(t, dir, cfg, c)
	requireAbortedMatch(t, l, model)
	require.NoError(t, l.Close())
	for _, f := range files[:len(files)-1] {
		st, err := os.Stat(f)
		require.NoError(t, err)
		require.Zero(t, st.Size()%txnEntrySize, "%s cut to whole entries", f)
	}
}

func TestTxnIndexDecoderSurvivesGarbage(t *testing.T) {
	es := []abortedEntry{{1, 5, 9, 10}, {2, 3, 12, 13}}
	b := appendTxnEntries(nil, es)
	require.Equal(t, es, decodeTxnIndex(b))
	require.Equal(t, es, decodeTxnIndex(append(b, 0, 0, 1)))
	require.Equal(t, es[:1], decodeTxnIndex(b[:txnEntrySize+20]))
	bad := append([]byte(nil), b...)
	bad[txnEntrySize+1] = 1 // version 1
	require.Equal(t, es[:1], decodeTxnIndex(bad))
	out := appendTxnEntries(nil, []abortedEntry{{1, 9, 5, 10}}) // first > last
	require.Empty(t, decodeTxnIndex(out))
	require.Empty(t, decodeTxnIndex(appendTxnEntries(nil, []abortedEntry{es[1], es[0]})[txnEntrySize:txnEntrySize]))
	require.Equal(t, es[1:], decodeTxnIndex(appendTxnEntries(nil, []abortedEntry{es[1], es[0]})))
}

func FuzzDecodeTxnIndex(f *testing.F) {
	f.Add(appendTxnEntries(nil, []abortedEntry{{1, 5, 9, 10}, {2, 3, 12, 13}}))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		es := decodeTxnIndex(b)
		require.LessOrEqual(t, len(es)*txnEntrySize, len(b))
		// What decodes re-encodes to the same prefix.
		require.True(t, bytes.Equal(b[:len(es)*txnEntrySize], appendTxnEntries(nil, es)))
	})
}

func TestSnapshotReadsVersion1(t *testing.T) {
	m := map[int64]producerEntry{4: {epoch: 2, lastTs: 99, n: 1, batches: [maxRetainedBatches]batchMeta{{0, 4, 10, 14, -1}}, txnFirst: 12, coordEpoch: 3}}
	v2 := encodeSnapshot(m)
	got, err := decodeSnapshot(v2)
	require.NoError(t, err)
	require.Equal(t, m, got)
	// The same producer as version 1 wrote it: no transaction fields.
	be := binary.BigEndian
	v1 := []byte(snapshotMagic)
	v1 = be.AppendUint16(v1, 1)
	v1 = be.AppendUint32(v1, 1)
	v1 = be.AppendUint64(v1, 4)
	v1 = be.AppendUint16(v1, 2)
	v1 = be.AppendUint64(v1, 99)
	v1 = append(v1, 1)
	for _, v := range []uint64{0, 4} {
		v1 = be.AppendUint32(v1, uint32(v))
	}
	for _, v := range []int64{10, 14, -1} {
		v1 = be.AppendUint64(v1, uint64(v))
	}
	v1 = be.AppendUint32(v1, crc32.Checksum(v1, castagnoli))
	got, err = decodeSnapshot(v1)
	require.NoError(t, err)
	want := m[4]
	want.txnFirst, want.coordEpoch = -1, -1
	require.Equal(t, want, got[4])
}

func TestFollowerReplicatesMarkers(t *testing.T) {
	c := newClock()
	cfg := testConfig()
	cfg.SegmentBytes = 500
	leader := openT(t, t.TempDir(), cfg, c)
	defer leader.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	abortWorkload(t, leader, c, rng, threeProducers(), 80)
	model, open := txnModel(t, rawBatches(t, leader))
	require.NotEmpty(t, model)

	fdir := t.TempDir()
	f := openT(t, fdir, cfg, c)
	bs := rawBatches(t, leader)
	for i := 0; i < len(bs); {
		n := min(1+rng.IntN(4), len(bs)-i)
		var chunk []byte
		for _, b := range bs[i : i+n] {
			chunk = append(chunk, b...)
		}
		_, err := f.AppendAsFollower(chunk)
		require.NoError(t, err)
		i += n
	}
	f.SetHighWatermark(leader.HighWatermark())
	require.Equal(t, leader.LastStableOffset(), f.LastStableOffset())
	require.Equal(t, modelLSO(f.HighWatermark(), open), f.LastStableOffset())
	requireAbortedMatch(t, f, model)
	require.Equal(t, leader.Producers(), withTs(f.Producers(), leader.Producers()))
	require.NoError(t, f.Close())
	files, _ := filepath.Glob(filepath.Join(fdir, "*"+txnIndexExt))
	require.NotEmpty(t, files)
	f = openT(t, fdir, cfg, c)
	f.SetHighWatermark(leader.HighWatermark())
	requireAbortedMatch(t, f, model)

	// Truncating below the last abort marker takes its entry and
	// reopens its transaction.
	lastAbort := model[len(model)-1]
	require.NoError(t, f.TruncateTo(lastAbort.LastOffset))
	require.Equal(t, lastAbort.LastOffset, f.LogEndOffset())
	m2, open2 := txnModel(t, rawBatches(t, f))
	require.Equal(t, model[:len(model)-1], m2)
	require.Contains(t, open2, lastAbort.ProducerID)
	f.SetHighWatermark(f.LogEndOffset())
	require.Equal(t, modelLSO(f.HighWatermark(), open2), f.LastStableOffset())
	requireAbortedMatch(t, f, m2)
	require.NoError(t, f.Close())
	f = openT(t, fdir, cfg, c)
	f.SetHighWatermark(f.LogEndOffset())
	requireAbortedMatch(t, f, m2)
	require.Equal(t, modelLSO(f.HighWatermark(), open2), f.LastStableOffset())
	require.NoError(t, f.Close())
}

// withTs copies the timestamps of want into got: a follower stamps
// producers with its own clock at replay.
func withTs(got, want []ProducerInfo) []ProducerInfo {
	for i := range got {
		if i < len(want) {
			got[i].LastTimestamp = want[i].LastTimestamp
		}
	}
	return got
}

func TestRetentionStopsAtLastStableOffset(t *testing.T) {
	c := newClock()
	cfg := testConfig()
	cfg.SegmentBytes = 300
	cfg.RetentionMs = 1000
	l := openT(t, t.TempDir(), cfg, c)
	defer l.Close()
	for range 3 {
		mustAppend(t, l, mkBatch(0, c.Ms(), "old", 3))
	}
	p := &txnProd{pid: 5}
	first := p.send(t, l, c.Ms(), "t", 2).BaseOffset
	for range 10 {
		mustAppend(t, l, mkBatch(0, c.Ms(), "mid", 3))
	}
	require.Greater(t, l.Stats().Segments, 4)
	require.Equal(t, first, l.LastStableOffset())

	require.ErrorIs(t, l.DeleteRecordsBefore(first+1), tributary.ErrOffsetOutOfRange)
	c.Add(time.Hour)
	require.NoError(t, l.EnforceRetention())
	require.LessOrEqual(t, l.LogStartOffset(), first, "the open transaction stays")
	_, err := l.Read(first, l.HighWatermark(), 1<<20, true)
	require.NoError(t, err)

	p.end(t, l, true)
	require.NoError(t, l.EnforceRetention())
	require.Greater(t, l.LogStartOffset(), first)
	require.NoError(t, l.DeleteRecordsBefore(l.LastStableOffset()))
}

// TestTxnIndexPowerLoss cuts power at points of a transactional workload
// with rolls and flushes: the reopened log's aborted transactions and
// LSO are what its surviving batches say.
func TestTxnIndexPowerLoss(t *testing.T) {
	run := func(crashAt int64, seed uint64) (int64, *vfs.MemFS) {
		mem := vfs.NewMem()
		ifs := vfs.NewInject(mem)
		c := newClock()
		cfg := testConfig()
		cfg.SegmentBytes = 500
		cfg.FlushMessages = 7
		var ops int64
		var shot *vfs.MemFS
		rng := rand.New(rand.NewPCG(seed, 9))
		ifs.SetHook(func(vfs.Op, string) error {
			ops++
			if ops == crashAt {
				shot = mem.CrashCloneTorn(rand.New(rand.NewPCG(uint64(crashAt), seed)))
			}
			return nil
		})
		l, err := Open("/d/t-0", cfg, Options{Now: c.Now, FS: ifs, Files: NewFileCache(16)})
		require.NoError(t, err)
		ps := threeProducers()
		for i := range 3 {
			abortWorkload(t, l, c, rng, ps, 40)
			if i == 1 {
				require.NoError(t, l.Close())
				l, err = Open("/d/t-0", cfg, Options{Now: c.Now, FS: ifs, Files: NewFileCache(16)})
				require.NoError(t, err)
			}
		}
		crash(l)
		return ops, shot
	}
	total, _ := run(0, 1)
	step := max(1, total/int64(2*crashPoints()))
	for at := int64(1); at <= total; at += step {
		_, shot := run(at, 1)
		require.NotNil(t, shot)
		c := newClock()
		cfg := testConfig()
		cfg.SegmentBytes = 500
		l, err := Open("/d/t-0", cfg, Options{Now: c.Now, FS: shot, Files: NewFileCache(16)})
		require.NoError(t, err, "crash at op %d", at)
		model, open := txnModel(t, rawBatches(t, l))
		require.Equal(t, modelLSO(l.HighWatermark(), open), l.LastStableOffset(), "crash at op %d", at)
		require.Equal(t, model, l.AbortedTransactions(0, l.HighWatermark()), "crash at op %d", at)
		require.NoError(t, l.Close())
	}
}

// TestCleanerHandlesTransactions compacts a log whose keys are written by
// plain producers, committed transactions and aborted ones.
func TestCleanerHandlesTransactions(t *testing.T) {
	c := newClock()
	cfg := compactConfig()
	cfg.DeleteRetentionMs = 1000
	l := openT(t, t.TempDir(), cfg, c)
	defer l.Close()
	put := func(k, v string) { mustAppend(t, l, keyedBatch(0, c.Ms(), [2]string{k, v})) }

	put("a", "a0")
	put("b", "b0")
	ab := &txnProd{pid: 1}
	cm := &txnProd{pid: 2}
	tx := func(p *txnProd, k, v string) {
		o := batchtest.Opts{ProducerID: p.pid, ProducerEpoch: p.epoch, BaseSequence: p.seq, BaseTimestamp: c.Ms(), Transactional: true}
		_, err := l.Append(batchtest.Build(o, batchtest.Rec{Key: []byte(k), Value: []byte(v)}), 0)
		require.NoError(t, err)
		p.seq++
	}
	tx(ab, "a", "a-aborted")
	tx(cm, "b", "b-committed")
	tx(ab, "c", "c-aborted")
	ab.end(t, l, false)
	cm.end(t, l, true)
	for i := range 30 {
		put(fmt.Sprintf("f%d", i), "filler")
	}
	// An open transaction: nothing from its first offset is cleaned.
	op := &txnProd{pid: 3}
	tx(op, "a", "a-open")
	lso := l.LastStableOffset()
	for i := range 30 {
		put(fmt.Sprintf("g%d", i), "filler")
	}
	require.NoError(t, l.Flush())
	require.Less(t, lso, l.HighWatermark())

	st := l.CleanState()
	require.LessOrEqual(t, st.FirstUncleanable, lso)
	_, err := l.Clean(CleanOptions{Force: true})
	require.NoError(t, err)
	newest := func() map[string]string {
		m := map[string]string{}
		stable := l.LastStableOffset()
		for _, r := range readLog(t, l) {
			if r.off < stable && len(r.key) > 0 && r.key[0] != 0 {
				m[r.key] = string(r.value)
			}
		}
		return m
	}
	got := newest()
	require.Equal(t, "a0", got["a"], "an aborted record never shadows a committed one")
	require.Equal(t, "b-committed", got["b"])
	require.NotContains(t, got, "c")
	markers := func() (n int) {
		for _, b := range rawBatches(t, l) {
			h, _ := batch.ParseHeader(b)
			if h.IsControl() && h.RecordCount > 0 && h.BaseOffset < lso {
				n++
			}
		}
		return n
	}
	require.Equal(t, 2, markers(), "markers stay while their batches were seen")
	// The open transaction's record is untouched.
	var seen bool
	for _, r := range readLog(t, l) {
		if string(r.value) == "a-open" {
			seen = true
		}
	}
	require.True(t, seen)
	require.NotEmpty(t, l.AbortedTransactions(0, lso), "the aborted transaction's entry survives the swap")

	// Supersede b's committed record; later passes find no batch of
	// either transaction, set the markers' delete horizon, and drop
	// them once it passed.
	op.end(t, l, false)
	put("b", "b1")
	// Each producer writes again outside a transaction: its emptied
	// transactional batch is no longer its last, so it can go (Kafka
	// keeps a producer's last batch, and a marker while it stays).
	for _, p := range []*txnProd{ab, cm, op} {
		_, err := l.Append(p.batch(c.Ms(), fmt.Sprintf("z%d", p.pid), 1, false), 0)
		require.NoError(t, err)
		p.seq++
	}
	for pass := 0; pass < 3; pass++ {
		for i := range 30 {
			put(fmt.Sprintf("h%d-%d", pass, i), "filler")
		}
		require.NoError(t, l.Flush())
		res, err := l.Clean(CleanOptions{Force: true})
		require.NoError(t, err)
		if pass == 1 {
			require.Zero(t, res.MarkersDropped, "the horizon has not passed")
			c.Add(2 * time.Second)
		}
	}
	require.Zero(t, markers())
	got = newest()
	require.Equal(t, "a0", got["a"])
	require.Equal(t, "b1", got["b"])
	for _, r := range readLog(t, l) {
		require.NotEqual(t, "a-open", string(r.value), "the aborted open transaction went too")
	}

	// The cleaned log reopens to the same state.
	require.NoError(t, l.Close())
	l2 := openT(t, l.Dir(), cfg, c)
	defer l2.Close()
	require.Equal(t, l2.LogEndOffset(), l2.LastStableOffset())
	model, open := txnModel(t, rawBatches(t, l2))
	require.Empty(t, open)
	_ = model
}

// committedView is what a read_committed consumer sees of l: the newest
// value of every key, records of indexed aborted transactions and
// control batches skipped.
func committedView(t *testing.T, l *Log) map[string]string {
	t.Helper()
	aborted := l.AbortedTransactions(l.LogStartOffset(), l.HighWatermark())
	view := map[string]string{}
	for _, b := range rawBatches(t, l) {
		h, err := batch.ParseHeader(b)
		require.NoError(t, err)
		if h.IsControl() || h.BaseOffset >= l.LastStableOffset() {
			continue
		}
		skip := false
		for _, a := range aborted {
			if h.IsTransactional() && a.ProducerID == h.ProducerID && h.BaseOffset >= a.FirstOffset && h.BaseOffset <= a.LastOffset {
				skip = true
			}
		}
		if skip {
			continue
		}
		kvs, _ := decodeKV(t, b)
		for _, r := range kvs {
			view[r.key] = string(r.value)
		}
	}
	return view
}

// TestCleanWithTransactionsCrashAtEveryStep cuts power at points of a
// cleaning pass over a log with committed and aborted transactions: the
// reopened log shows a read_committed consumer what it showed before.
func TestCleanWithTransactionsCrashAtEveryStep(t *testing.T) {
	build := func(l *Log, c *clock) {
		rng := rand.New(rand.NewPCG(8, 8))
		ps := threeProducers()
		for i := range 150 {
			p := ps[rng.IntN(len(ps))]
			k := fmt.Sprintf("k%d", rng.IntN(12))
			switch r := rng.IntN(8); {
			case r < 4:
				p.send(t, l, c.Ms(), k, 1+rng.IntN(2))
			case r < 6:
				p.end(t, l, r == 4)
			default:
				mustAppend(t, l, keyedBatch(0, c.Ms(), [2]string{k, fmt.Sprintf("plain-%d", i)}))
			}
		}
		for _, p := range ps {
			p.end(t, l, true)
		}
	}
	run := func(crashAt int64) (int64, *vfs.MemFS, map[string]string) {
		mem := vfs.NewMem()
		ifs := vfs.NewInject(mem)
		c := newClock()
		cfg := compactConfig()
		cfg.SegmentBytes = 700
		l, err := Open("/d/t-0", cfg, Options{Now: c.Now, FS: ifs, Files: NewFileCache(16)})
		require.NoError(t, err)
		build(l, c)
		require.NoError(t, l.Flush())
		require.NoError(t, l.CheckpointRecoveryPoint())
		view := committedView(t, l)
		aborted := l.AbortedTransactions(0, l.HighWatermark())
		require.NotEmpty(t, aborted)
		ops, shot, res := cleanCountingOps(t, l, ifs, mem, crashAt)
		require.Equal(t, view, committedView(t, l), "the pass itself")
		for _, b := range rawBatches(t, l) {
			h, _ := batch.ParseHeader(b)
			for _, a := range aborted {
				if !h.IsControl() && h.ProducerID == a.ProducerID && h.BaseOffset >= a.FirstOffset && h.BaseOffset <= a.LastOffset && h.LastOffset() < res.End {
					require.Zero(t, h.RecordCount, "aborted records at %d survived", h.BaseOffset)
				}
			}
		}
		crash(l)
		return ops, shot, view
	}
	total, _, view := run(0)
	require.NotEmpty(t, view)
	step := max(1, total/int64(2*crashPoints()))
	for at := int64(1); at <= total; at += step {
		_, shot, _ := run(at)
		require.NotNil(t, shot)
		c := newClock()
		cfg := compactConfig()
		cfg.SegmentBytes = 700
		l, err := Open("/d/t-0", cfg, Options{Now: c.Now, FS: shot, Files: NewFileCache(16)})
		require.NoError(t, err, "crash at op %d", at)
		require.Equal(t, view, committedView(t, l), "crash at op %d", at)
		require.Equal(t, l.HighWatermark(), l.LastStableOffset(), "crash at op %d: every transaction ended", at)
		require.NoError(t, l.Close())
	}
}
