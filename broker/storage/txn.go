package storage

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/internal/batch"
)

// Partition-level transactions (KIP-98), as Kafka's ProducerStateManager,
// UnifiedLog and TransactionIndex keep them.
//
// A transactional batch (attribute bit 4) from a producer with no open
// transaction opens one at the batch's first offset; the coordinator's
// marker (a control batch) closes it. The last stable offset (LSO) is the
// high watermark or the first offset of the oldest open transaction,
// whichever is lower: read_committed consumers read below it. Every
// aborted transaction is recorded, when its marker is appended, in the
// .txnindex of the segment holding the marker, so a read_committed fetch
// learns which producers' records to skip (AbortedTransactions).

// Marker is a transaction marker (a control batch) the coordinator writes.
type Marker struct {
	ProducerID       int64
	ProducerEpoch    int16
	Commit           bool // false: abort
	CoordinatorEpoch int32
}

// AbortedTxn is an aborted transaction of one producer: its records lie
// in [FirstOffset, LastOffset], LastOffset being its abort marker.
type AbortedTxn struct{ ProducerID, FirstOffset, LastOffset int64 }

// ProducerInfo is what the log tracks of one producer (DescribeProducers).
type ProducerInfo struct {
	ProducerID       int64
	Epoch            int16
	LastSequence     int32 // -1: no sequenced batch retained
	LastTimestamp    int64
	CoordinatorEpoch int32
	TxnStartOffset   int64 // -1: no open transaction
}

// abortedEntry is one .txnindex entry. lso is the last stable offset
// right after the marker (Kafka's AbortedTxn.lastStableOffset): once an
// entry's lso reaches a fetch's upper bound, no later entry can concern it.
type abortedEntry struct {
	pid, first, last, lso int64
}

// .txnindex entries, Kafka's format (big-endian): version int16 = 0,
// producerId int64, firstOffset int64, lastOffset int64,
// lastStableOffset int64.
const (
	txnEntrySize = 34
	txnIndexExt  = ".txnindex"
)

func appendTxnEntries(buf []byte, es []abortedEntry) []byte {
	be := binary.BigEndian
	for _, e := range es {
		buf = be.AppendUint16(buf, 0)
		buf = be.AppendUint64(buf, uint64(e.pid))
		buf = be.AppendUint64(buf, uint64(e.first))
		buf = be.AppendUint64(buf, uint64(e.last))
		buf = be.AppendUint64(buf, uint64(e.lso))
	}
	return buf
}

// decodeTxnIndex reads a .txnindex: whole entries only, up to the first
// one that cannot be right (unknown version, negative or inverted
// offsets, markers out of order). A torn or damaged tail is what a crash
// leaves; recovery rebuilds the entries the log past its snapshot holds.
func decodeTxnIndex(b []byte) []abortedEntry {
	be := binary.BigEndian
	var es []abortedEntry
	for ; len(b) >= txnEntrySize; b = b[txnEntrySize:] {
		e := abortedEntry{
			pid:   int64(be.Uint64(b[2:])),
			first: int64(be.Uint64(b[10:])),
			last:  int64(be.Uint64(b[18:])),
			lso:   int64(be.Uint64(b[26:])),
		}
		if be.Uint16(b) != 0 || e.pid < 0 || e.first < 0 || e.first > e.last || e.lso < 0 {
			break
		}
		if n := len(es); n > 0 && e.last <= es[n-1].last {
			break
		}
		es = append(es, e)
	}
	return es
}

// Control record types of a transaction marker's key.
const (
	ctrlAbort  = 0
	ctrlCommit = 1
)

// markerBatch builds the control batch of m: one record whose key is
// Kafka's EndTransactionMarker key {version 0, type} and whose value is
// {version 0, coordinator epoch}; attributes control|transactional,
// baseSequence -1, base offset 0 (Append assigns it).
func markerBatch(m Marker, ts int64) []byte {
	be := binary.BigEndian
	typ := uint16(ctrlAbort)
	if m.Commit {
		typ = ctrlCommit
	}
	key := be.AppendUint16(be.AppendUint16(nil, 0), typ)
	val := be.AppendUint32(be.AppendUint16(nil, 0), uint32(m.CoordinatorEpoch))
	rec := batch.AppendRecord(nil, &batch.Record{Key: key, Value: val}, 0)
	b := make([]byte, batch.HeaderSize, batch.HeaderSize+len(rec))
	be.PutUint64(b[0:], 0)
	be.PutUint32(b[8:], uint32(batch.HeaderSize-batch.LengthOverhead+len(rec)))
	be.PutUint32(b[12:], 0xffffffff) // partitionLeaderEpoch -1: stamped at append
	b[16] = 2
	be.PutUint16(b[21:], batch.AttrControl|batch.AttrTransactional)
	be.PutUint32(b[23:], 0)
	be.PutUint64(b[27:], uint64(ts))
	be.PutUint64(b[35:], uint64(ts))
	be.PutUint64(b[43:], uint64(m.ProducerID))
	be.PutUint16(b[51:], uint16(m.ProducerEpoch))
	be.PutUint32(b[53:], 0xffffffff) // baseSequence -1
	be.PutUint32(b[57:], 1)
	b = append(b, rec...)
	be.PutUint32(b[17:], batch.ComputeCRC(b))
	return b
}

// ParseMarker decodes the transaction marker of control batch b (header
// h): whether it commits and its coordinator epoch. ok is false for an
// empty control batch or a control record that is not a transaction
// marker. The coordinators read markers of their internal topics with it.
func ParseMarker(h *batch.Header, b []byte) (commit bool, coordEpoch int32, ok bool) {
	if h.RecordCount < 1 || int64(len(b)) < h.Size() {
		return false, 0, false
	}
	region, err := batch.RecordsRegion(b[:h.Size()], nil, 1<<20)
	if err != nil {
		return false, 0, false
	}
	it := batch.NewRecords(region, h.RecordCount)
	var r batch.Record
	if !it.Next(&r) || len(r.Key) < 4 {
		return false, 0, false
	}
	be := binary.BigEndian
	switch be.Uint16(r.Key[2:]) {
	case ctrlAbort:
	case ctrlCommit:
		commit = true
	default:
		return false, 0, false
	}
	coordEpoch = -1
	if len(r.Value) >= 6 {
		coordEpoch = int32(be.Uint32(r.Value[2:]))
	}
	return commit, coordEpoch, true
}

var (
	// Kafka (ProducerAppendInfo.checkProducerEpoch, since 2.7) answers
	// INVALID_PRODUCER_EPOCH to a marker of an older epoch; the error
	// also matches tributary.ErrProducerFenced for callers that think of
	// it as fencing. CodeOf gives Kafka's code.
	errMarkerEpoch = fmt.Errorf("%w: transaction marker's producer epoch is older than the current one (%w)",
		tributary.ErrInvalidProducerEpoch, tributary.ErrProducerFenced)
	// Kafka's checkCoordinatorEpoch: TransactionCoordinatorFencedException.
	errCoordFenced = fmt.Errorf("%w: transaction marker from an older coordinator epoch", tributary.ErrTransactionCoordinatorFenced)
	errTxnState    = fmt.Errorf("%w: non-transactional batch while the producer's transaction is open", tributary.ErrInvalidTxnState)
)

// beginTxnLocked opens a transaction of pid at off.
func (l *Log) beginTxnLocked(pid int64, e *producerEntry, off int64) {
	e.txnFirst = off
	if l.ongoing == nil {
		l.ongoing = make(map[int64]int64)
	}
	l.ongoing[pid] = off
}

// endTxnLocked applies a marker at offset to pid's entry e and the open
// transactions; an abort of an open transaction is returned as its
// .txnindex entry (Kafka writes none for a marker with no open
// transaction: it moves nothing).
func (l *Log) endTxnLocked(pid int64, e *producerEntry, epoch int16, coordEpoch int32, commit bool, offset, now int64) (abortedEntry, bool) {
	e.bumpEpoch(epoch)
	e.coordEpoch = coordEpoch
	e.lastTs = now
	first := e.txnFirst
	if first < 0 {
		return abortedEntry{}, false
	}
	e.txnFirst = -1
	delete(l.ongoing, pid)
	if commit {
		return abortedEntry{}, false
	}
	return abortedEntry{pid: pid, first: first, last: offset, lso: l.firstUnstableAfter(offset)}, true
}

// firstUnstableAfter is the lastStableOffset of an entry for a marker at
// offset: the first offset of the oldest transaction still open, or the
// offset after the marker.
func (l *Log) firstUnstableAfter(offset int64) int64 {
	lso := offset + 1
	for _, f := range l.ongoing {
		lso = min(lso, f)
	}
	return lso
}

// lsoLocked is the last stable offset.
func (l *Log) lsoLocked() int64 {
	lso := l.hw
	for _, f := range l.ongoing {
		lso = min(lso, f)
	}
	return max(lso, l.logStart)
}

// rebuildOngoingLocked derives the open transactions from the producers
// (after they were reloaded).
func (l *Log) rebuildOngoingLocked() {
	l.ongoing = make(map[int64]int64)
	for pid, e := range l.producers {
		if e.txnFirst >= 0 {
			l.ongoing[pid] = e.txnFirst
		}
	}
}

// LastStableOffset is the offset below which every transaction is
// decided: read_committed fetches and ListOffsets read below it.
func (l *Log) LastStableOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lsoLocked()
}

// AppendMarker appends the control batch of m as the leader at
// leaderEpoch: one record, Kafka's EndTransactionMarker key {version 0,
// type 0 abort / 1 commit} and value {version 0, coordinator epoch};
// attributes control|transactional; baseSequence -1. It ends the
// producer's ongoing transaction (a marker with no open transaction is
// still written, as Kafka does), records an aborted one in the active
// segment's .txnindex, and moves the LSO.
//
// A marker whose producer epoch is older than the producer's current one
// fails with INVALID_PRODUCER_EPOCH (the error also matches
// tributary.ErrProducerFenced); one whose coordinator epoch is older than
// the last marker's fails with TRANSACTION_COORDINATOR_FENCED, as in
// Kafka's ProducerAppendInfo.appendEndTxnMarker.
func (l *Log) AppendMarker(m Marker, leaderEpoch int32) (AppendResult, error) {
	if m.ProducerID < 0 || m.ProducerEpoch < 0 {
		return AppendResult{}, errTxnPID
	}
	return l.appendFrom(markerBatch(m, l.nowMs()), leaderEpoch, originMarker, &m)
}

// AppendCoordinator appends batches written by a broker-side coordinator
// (the group coordinator's transactional offset commits: transactional
// batches with a producer id/epoch but baseSequence -1). Sequence checks
// are skipped; epoch fencing and ongoing-transaction tracking still
// apply.
func (l *Log) AppendCoordinator(batches []byte, leaderEpoch int32) (AppendResult, error) {
	return l.appendFrom(batches, leaderEpoch, originCoordinator, nil)
}

// AbortedTransactions returns, in offset order, the aborted transactions
// that a read_committed fetch of [from, upTo) must skip: every indexed
// aborted transaction with LastOffset >= from and FirstOffset < upTo
// (Kafka's collectAbortedTransactions over the segments from the one
// holding from).
func (l *Log) AbortedTransactions(from, upTo int64) []AbortedTxn {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []AbortedTxn
	if l.closed || from >= upTo {
		return nil
	}
	for si := l.segmentFor(from); si < len(l.segs); si++ {
		for _, e := range l.segs[si].txns {
			if e.last >= from && e.first < upTo {
				out = append(out, AbortedTxn{ProducerID: e.pid, FirstOffset: e.first, LastOffset: e.last})
			}
			if e.lso >= upTo {
				// No transaction open at this marker began below upTo:
				// later entries cannot concern the fetch.
				return out
			}
		}
	}
	return out
}

// Producers lists the producers the log tracks (DescribeProducers), by id.
func (l *Log) Producers() []ProducerInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]ProducerInfo, 0, len(l.producers))
	for pid, e := range l.producers {
		p := ProducerInfo{ProducerID: pid, Epoch: e.epoch, LastSequence: -1, LastTimestamp: e.lastTs,
			CoordinatorEpoch: e.coordEpoch, TxnStartOffset: e.txnFirst}
		if e.n > 0 {
			p.LastSequence = e.batches[e.n-1].lastSeq
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ProducerID < out[j].ProducerID })
	return out
}

// addAborted records an aborted transaction in segment s's index
// (reaching the file at the next flush, roll or Close, like the other
// indexes; recovery rebuilds what a crash loses).
func (s *segment) addAborted(e abortedEntry) {
	s.txns = append(s.txns, e)
	s.txnDirty = true
	s.dirty = true
}

// dropAbortedFrom removes the entries of markers at or after off.
func (s *segment) dropAbortedFrom(off int64) {
	n := len(s.txns)
	for n > 0 && s.txns[n-1].last >= off {
		n--
	}
	if n < len(s.txns) {
		s.txns = s.txns[:n]
		s.txnOnDisk = min(s.txnOnDisk, n)
		s.txnSynced = -1 // the cut must be synced
		s.txnDirty = true
		s.dirty = true
	}
}

// checkCoordinatorBatch applies a coordinator's batch or a marker (m set)
// at offset off to the producer's pending entry: Kafka's epoch and
// coordinator-epoch checks, then the transaction it opens or ends.
func (l *Log) checkCoordinatorBatch(o *overlayEntry, h *batch.Header, m *Marker, off, now int64) error {
	e := &o.entry
	if h.ProducerEpoch < 0 {
		return errNegativeEpoch
	}
	if o.exists && h.ProducerEpoch < e.epoch {
		if m != nil {
			return errMarkerEpoch
		}
		return errStaleEpoch
	}
	o.exists = true
	if m != nil {
		if e.coordEpoch > m.CoordinatorEpoch {
			return errCoordFenced
		}
		e.bumpEpoch(h.ProducerEpoch)
		e.coordEpoch = m.CoordinatorEpoch
		e.lastTs = now
		if e.txnFirst >= 0 && !m.Commit {
			l.ended = append(l.ended, abortedEntry{pid: o.pid, first: e.txnFirst, last: off})
		}
		e.txnFirst = -1
		return nil
	}
	if e.txnFirst >= 0 && !h.IsTransactional() {
		return errTxnState
	}
	e.bumpEpoch(h.ProducerEpoch)
	e.lastTs = now
	if h.IsTransactional() && e.txnFirst < 0 {
		e.txnFirst = off
	}
	return nil
}

// expireProducersLocked forgets producers idle past
// producer.id.expiration.ms; one with an open transaction stays (Kafka's
// isProducerExpired).
func (l *Log) expireProducersLocked(now int64) {
	for pid, e := range l.producers {
		if e.txnFirst < 0 && now-e.lastTs >= l.cfg.ProducerIDExpirationMs {
			delete(l.producers, pid)
		}
	}
}

// txnTracker follows transactions through one cleaning pass, batch by
// batch in offset order (Kafka's CleanedTransactionMetadata): which data
// batches belong to aborted transactions, and whether a marker's
// transaction still has batches in the log.
type txnTracker struct {
	aborted   []abortedEntry // indexed aborted transactions not reached yet, by first offset
	open      map[int64]*trackedAbort
	committed map[int64]bool // producers with a committed transaction's batch seen
}

type trackedAbort struct {
	e        abortedEntry
	observed bool // a batch of it was seen (it may still be in the log)
}

func newTxnTracker(aborted []abortedEntry) *txnTracker {
	return &txnTracker{aborted: aborted, open: map[int64]*trackedAbort{}, committed: map[int64]bool{}}
}

func (t *txnTracker) reach(off int64) {
	for len(t.aborted) > 0 && t.aborted[0].first <= off {
		e := t.aborted[0]
		t.aborted = t.aborted[1:]
		if _, ok := t.open[e.pid]; !ok {
			t.open[e.pid] = &trackedAbort{e: e}
		}
	}
}

// onBatch reports whether data batch h belongs to an aborted
// transaction: its records go.
func (t *txnTracker) onBatch(h *batch.Header) bool {
	t.reach(h.LastOffset())
	if !h.IsTransactional() || h.ProducerID < 0 {
		return false
	}
	if a, ok := t.open[h.ProducerID]; ok {
		a.observed = true
		return true
	}
	t.committed[h.ProducerID] = true
	return false
}

// onControl reports whether control batch b may go once its delete
// horizon passed: its transaction has no batch left in this pass. An
// aborted transaction whose batches were still seen keeps its marker and
// its index entry (returned for the cleaned segment).
func (t *txnTracker) onControl(h *batch.Header, b []byte) (discardable bool, keep *abortedEntry) {
	t.reach(h.LastOffset())
	if h.RecordCount == 0 {
		return true, nil // emptied by an earlier pass
	}
	commit, _, ok := ParseMarker(h, b)
	if !ok {
		return false, nil
	}
	if commit {
		seen := t.committed[h.ProducerID]
		delete(t.committed, h.ProducerID)
		return !seen, nil
	}
	a, open := t.open[h.ProducerID]
	delete(t.open, h.ProducerID)
	if open && a.observed {
		return false, &a.e
	}
	return true, nil
}

// HasOpenTransaction reports whether producer pid has a transaction open
// in this partition: its next transactional batch joins that transaction
// rather than starting one (the broker verifies only a starting one with
// the coordinator).
func (l *Log) HasOpenTransaction(pid int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.ongoing[pid]
	return ok
}
