package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/internal/batch"
)

// maxRetainedBatches is how many batches per producer are remembered for
// duplicate detection; producers keep at most this many in flight.
const maxRetainedBatches = 5

type batchMeta struct {
	firstSeq, lastSeq int32
	firstOff, lastOff int64
	logAppendTime     int64
}

// producerEntry is what the log knows of one idempotent producer.
type producerEntry struct {
	epoch   int16
	n       uint8 // batches held, oldest first
	batches [maxRetainedBatches]batchMeta
	// lastTs is when the producer last appended, in ms: the broker's
	// clock at append, or the batch's maxTimestamp when replayed from
	// the log (Kafka's choice). producer.id.expiration.ms counts from it.
	lastTs int64
	// txnFirst is the first offset of the producer's ongoing
	// transaction, -1 when none is open; coordEpoch is the epoch of the
	// transaction coordinator that wrote its last marker (-1: none).
	// Entries are made by newProducerEntry, so both start at -1.
	txnFirst   int64
	coordEpoch int32
}

func newProducerEntry() producerEntry { return producerEntry{txnFirst: -1, coordEpoch: -1} }

// bumpEpoch moves the entry to a newer epoch, forgetting the old epoch's
// batches (a new epoch restarts sequences), as a marker or a coordinator
// batch does without a sequence of its own.
func (e *producerEntry) bumpEpoch(epoch int16) {
	if epoch > e.epoch {
		e.epoch, e.n = epoch, 0
	}
}

func (e *producerEntry) push(epoch int16, m batchMeta, ts int64) {
	if epoch != e.epoch {
		e.epoch, e.n = epoch, 0
	}
	if int(e.n) == maxRetainedBatches {
		copy(e.batches[:], e.batches[1:])
		e.n--
	}
	e.batches[e.n] = m
	e.n++
	e.lastTs = ts
}

var (
	errNegativeSeq   = fmt.Errorf("%w: idempotent batch without a sequence", tributary.ErrOutOfOrderSequenceNumber)
	errSeqGap        = fmt.Errorf("%w: sequence does not follow the last one", tributary.ErrOutOfOrderSequenceNumber)
	errNewEpochSeq   = fmt.Errorf("%w: a new producer epoch must start at sequence 0", tributary.ErrOutOfOrderSequenceNumber)
	errStaleEpoch    = fmt.Errorf("%w: producer epoch is older than the current one", tributary.ErrInvalidProducerEpoch)
	errNegativeEpoch = fmt.Errorf("%w: idempotent batch without an epoch", tributary.ErrInvalidProducerEpoch)
)

// checkSequence applies Kafka's ProducerAppendInfo rules to a batch from a
// known (exists) or unknown producer. It returns the matching batch when
// the batch repeats one already stored.
func checkSequence(e *producerEntry, exists bool, h *batch.Header) (dup *batchMeta, err error) {
	if h.ProducerEpoch < 0 {
		return nil, errNegativeEpoch
	}
	if h.BaseSequence < 0 {
		return nil, errNegativeSeq
	}
	if !exists {
		// Since KIP-360 (Kafka 2.5) an unknown producer may start at
		// any sequence: its state may have expired or been deleted
		// with the segments that held it.
		return nil, nil
	}
	switch {
	case h.ProducerEpoch < e.epoch:
		return nil, errStaleEpoch
	case h.ProducerEpoch > e.epoch:
		if h.BaseSequence != 0 {
			return nil, errNewEpochSeq
		}
		return nil, nil
	}
	last := h.LastSequence()
	for i := range int(e.n) {
		if m := &e.batches[i]; m.firstSeq == h.BaseSequence && m.lastSeq == last {
			return m, nil
		}
	}
	if e.n == 0 {
		return nil, nil
	}
	if h.BaseSequence != batch.IncrementSequence(e.batches[e.n-1].lastSeq, 1) {
		return nil, errSeqGap
	}
	return nil, nil
}

// Producer-state snapshot file format (all big-endian):
//
//	magic "TRPS" | version uint16 = 2 | count uint32 |
//	count × { producerId int64 | epoch int16 | lastTs int64 |
//	          coordinatorEpoch int32 | txnFirstOffset int64 | n uint8 |
//	          n × { firstSeq int32 | lastSeq int32 | firstOffset int64 |
//	                lastOffset int64 | logAppendTime int64 } } |
//	crc32c uint32 over everything before it
//
// Version 1 lacked coordinatorEpoch and txnFirstOffset (-1 when no
// transaction is open); it is still read, with neither known. A snapshot
// named N covers every batch below offset N.
const (
	snapshotMagic   = "TRPS"
	snapshotVersion = 2
	snapshotExt     = ".snapshot"
)

func snapshotPath(dir string, off int64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", off, snapshotExt))
}

func encodeSnapshot(m map[int64]producerEntry) []byte {
	pids := make([]int64, 0, len(m))
	for pid := range m {
		pids = append(pids, pid)
	}
	sort.Slice(pids, func(i, j int) bool { return pids[i] < pids[j] })
	be := binary.BigEndian
	b := []byte(snapshotMagic)
	b = be.AppendUint16(b, snapshotVersion)
	b = be.AppendUint32(b, uint32(len(pids)))
	for _, pid := range pids {
		e := m[pid]
		b = be.AppendUint64(b, uint64(pid))
		b = be.AppendUint16(b, uint16(e.epoch))
		b = be.AppendUint64(b, uint64(e.lastTs))
		b = be.AppendUint32(b, uint32(e.coordEpoch))
		b = be.AppendUint64(b, uint64(e.txnFirst))
		b = append(b, e.n)
		for _, bm := range e.batches[:e.n] {
			b = be.AppendUint32(b, uint32(bm.firstSeq))
			b = be.AppendUint32(b, uint32(bm.lastSeq))
			b = be.AppendUint64(b, uint64(bm.firstOff))
			b = be.AppendUint64(b, uint64(bm.lastOff))
			b = be.AppendUint64(b, uint64(bm.logAppendTime))
		}
	}
	return be.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

var errBadSnapshot = errors.New("storage: corrupt producer snapshot")

func decodeSnapshot(b []byte) (map[int64]producerEntry, error) {
	be := binary.BigEndian
	if len(b) < 14 || string(b[:4]) != snapshotMagic {
		return nil, errBadSnapshot
	}
	version := be.Uint16(b[4:])
	if version != 1 && version != 2 {
		return nil, errBadSnapshot
	}
	fixed := 19 // per producer before its batches
	if version == 2 {
		fixed = 31
	}
	if crc32.Checksum(b[:len(b)-4], castagnoli) != be.Uint32(b[len(b)-4:]) {
		return nil, errBadSnapshot
	}
	count := be.Uint32(b[6:])
	b = b[10 : len(b)-4]
	if uint64(count)*uint64(fixed) > uint64(len(b)) {
		return nil, errBadSnapshot
	}
	m := make(map[int64]producerEntry, count)
	for range count {
		if len(b) < fixed {
			return nil, errBadSnapshot
		}
		pid := int64(be.Uint64(b))
		e := newProducerEntry()
		e.epoch, e.lastTs = int16(be.Uint16(b[8:])), int64(be.Uint64(b[10:]))
		if version == 2 {
			e.coordEpoch = int32(be.Uint32(b[18:]))
			e.txnFirst = int64(be.Uint64(b[22:]))
			if e.txnFirst < -1 {
				return nil, errBadSnapshot
			}
		}
		e.n = b[fixed-1]
		b = b[fixed:]
		if e.n > maxRetainedBatches || len(b) < int(e.n)*32 {
			return nil, errBadSnapshot
		}
		for i := range int(e.n) {
			e.batches[i] = batchMeta{
				firstSeq:      int32(be.Uint32(b)),
				lastSeq:       int32(be.Uint32(b[4:])),
				firstOff:      int64(be.Uint64(b[8:])),
				lastOff:       int64(be.Uint64(b[16:])),
				logAppendTime: int64(be.Uint64(b[24:])),
			}
			b = b[32:]
		}
		m[pid] = e
	}
	if len(b) != 0 {
		return nil, errBadSnapshot
	}
	return m, nil
}

// snapshotOffsets returns the offsets of the snapshot files among a
// directory's names, ascending.
func snapshotOffsets(names []string) []int64 {
	var offs []int64
	for _, name := range names {
		if !strings.HasSuffix(name, snapshotExt) {
			continue
		}
		if off, err := strconv.ParseInt(strings.TrimSuffix(name, snapshotExt), 10, 64); err == nil && off >= 0 {
			offs = append(offs, off)
		}
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	return offs
}

// replayProducerLocked records a stored batch (its header as written,
// and for a control batch its bytes, body) in the producer state, without
// sequence or epoch checks: how recovery replays the log and how a
// follower takes the leader's batches (Kafka's AppendOrigin.REPLICATION
// logs what the leader would have refused). A transaction marker ends the
// producer's ongoing transaction; when it aborts one, the aborted
// transaction is returned for the .txnindex of the marker's segment.
func (l *Log) replayProducerLocked(h *batch.Header, body []byte, now int64) (abortedEntry, bool) {
	if h.ProducerID < 0 {
		return abortedEntry{}, false
	}
	if l.producers == nil {
		l.producers = make(map[int64]producerEntry)
	}
	e, ok := l.producers[h.ProducerID]
	if !ok {
		e = newProducerEntry()
	}
	if h.IsControl() {
		commit, coordEpoch, ok := ParseMarker(h, body)
		if !ok {
			// An empty control batch: the cleaner removed the marker's
			// record with its whole transaction.
			return abortedEntry{}, false
		}
		ae, aborted := l.endTxnLocked(h.ProducerID, &e, h.ProducerEpoch, coordEpoch, commit, h.BaseOffset, now)
		l.producers[h.ProducerID] = e
		return ae, aborted
	}
	if h.BaseSequence >= 0 {
		lat := int64(-1)
		if h.IsLogAppendTime() {
			lat = h.MaxTimestamp
		}
		e.push(h.ProducerEpoch, batchMeta{
			firstSeq: h.BaseSequence, lastSeq: h.LastSequence(),
			firstOff: h.BaseOffset, lastOff: h.LastOffset(), logAppendTime: lat,
		}, now)
	} else {
		// A coordinator's batch (transactional offset commits) has no
		// sequence: only its epoch counts.
		e.bumpEpoch(h.ProducerEpoch)
		e.lastTs = now
	}
	if h.IsTransactional() && e.txnFirst < 0 {
		l.beginTxnLocked(h.ProducerID, &e, h.BaseOffset)
	}
	l.producers[h.ProducerID] = e
	return abortedEntry{}, false
}
