package storage

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"

	"github.com/tributary/tributary/internal/vfs"
)

// The leader epoch cache (Kafka's LeaderEpochFileCache): for every leader
// epoch whose batches the log holds, the offset its first batch got.
// Followers use it to find where their log diverges from a new leader's
// (OffsetForLeaderEpoch, KIP-101/279), consumers to detect truncation
// (KIP-320).
//
// It lives in memory (a handful of entries) and in the
// leader-epoch-checkpoint file, published like the other checkpoints
// (temporary file, fsync, rename, directory fsync) through the Log's
// vfs.FS, under flushMu and outside mu. Changes are rare (a new epoch, a
// truncation, a log start move). A new epoch is recorded, and the file
// published, before the batches carrying it are written (Append and
// AppendAsFollower do this under appendMu, before they take mu), so
// after a crash the file can only be ahead of the log, and Open trims it
// to the recovered end. A log start move only trims the cache in memory:
// the file may keep entries below the log start (Open trims those too)
// until the next checkpointEpochs.
//
// File format (big-endian): count uint32 | count × { epoch int32 |
// startOffset int64 } | crc32c uint32 over everything before it.
const leaderEpochFile = "leader-epoch-checkpoint"

// UndefinedEpoch and UndefinedOffset are Kafka's UNDEFINED_EPOCH and
// UNDEFINED_EPOCH_OFFSET in OffsetForLeaderEpoch answers.
const (
	UndefinedEpoch  int32 = -1
	UndefinedOffset int64 = -1
)

// EpochEntry is the first offset written in a leader epoch.
type EpochEntry struct {
	Epoch       int32
	StartOffset int64
}

// Epochs returns a copy of the leader epoch cache, oldest first.
func (l *Log) Epochs() []EpochEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]EpochEntry(nil), l.epochs...)
}

// LatestEpoch is the newest epoch in the cache, or UndefinedEpoch.
func (l *Log) LatestEpoch() int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.epochs); n > 0 {
		return l.epochs[n-1].Epoch
	}
	return UndefinedEpoch
}

// AssignEpochStartOffset records that epoch starts at offset. A leader
// calls it when it takes over, at its log end offset, so that
// EndOffsetForEpoch answers for the epoch before its first append.
// Entries for that epoch or later, or starting at or after offset, are
// replaced (they describe a log that was truncated).
func (l *Log) AssignEpochStartOffset(epoch int32, offset int64) error {
	// appendMu: no append may write a batch between the change and its
	// publication (an append checks the file is current before writing).
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return errClosed
	}
	if l.failed != nil {
		l.mu.Unlock()
		return l.failed
	}
	l.assignEpochLocked(epoch, offset)
	l.mu.Unlock()
	return l.checkpointEpochs()
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch with Kafka's semantics
// (LeaderEpochFileCache.endOffsetFor): for the latest epoch, that epoch
// and the log end offset; otherwise the largest epoch at or below epoch
// and the start offset of the epoch after it. An epoch below every known
// one gets itself and the first known start offset (its data is gone,
// replicate from there); an epoch above every known one, or an empty
// cache, gets UndefinedEpoch and UndefinedOffset.
func (l *Log) EndOffsetForEpoch(epoch int32) (leaderEpoch int32, endOffset int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.endOffsetForEpochLocked(epoch)
}

func (l *Log) endOffsetForEpochLocked(epoch int32) (int32, int64) {
	es := l.epochs
	n := len(es)
	if epoch < 0 || n == 0 {
		return UndefinedEpoch, UndefinedOffset
	}
	if es[n-1].Epoch == epoch {
		return epoch, l.logEndLocked()
	}
	// The first entry with a larger epoch.
	hi := 0
	for hi < n && es[hi].Epoch <= epoch {
		hi++
	}
	if hi == n {
		return UndefinedEpoch, UndefinedOffset
	}
	if hi == 0 {
		return epoch, es[0].StartOffset
	}
	return es[hi-1].Epoch, es[hi].StartOffset
}

// assignEpochLocked is Kafka's LeaderEpochFileCache.assign: nothing
// changes when epoch is already the latest and starts at or before
// offset; otherwise entries for epoch or later, or starting at or after
// offset, are dropped and (epoch, offset) appended. Negative epochs
// (batches from before leader epochs) are ignored. Like every ...Locked
// change of the cache it changes memory only; checkpointEpochs publishes.
func (l *Log) assignEpochLocked(epoch int32, offset int64) {
	if epoch < 0 {
		return
	}
	if n := len(l.epochs); n > 0 {
		last := l.epochs[n-1]
		if last.Epoch == epoch && last.StartOffset <= offset {
			return
		}
		if last.Epoch > epoch && last.StartOffset <= offset {
			// An older epoch arriving after a newer one at a later
			// offset cannot happen in a valid log; Kafka logs and
			// drops the newer entries. Do the same: the log wins.
			l.logger.Warn("leader epoch goes backwards in the log", "dir", l.dir, "epoch", epoch, "offset", offset, "latest", last.Epoch)
		}
	}
	keep := l.epochs[:0]
	for _, e := range l.epochs {
		if e.Epoch < epoch && e.StartOffset < offset {
			keep = append(keep, e)
		}
	}
	l.epochs = append(keep, EpochEntry{Epoch: epoch, StartOffset: offset})
	l.epochsGen++
}

// noteBatchEpochLocked records the epoch of a batch about to be appended
// at offset when it is newer than the latest: epochs in a log only grow,
// and a batch stamped with an older epoch (a caller still using a stale
// epoch) must not rewrite the history of newer ones.
func (l *Log) noteBatchEpochLocked(epoch int32, offset int64) {
	if n := len(l.epochs); epoch < 0 || (n > 0 && epoch <= l.epochs[n-1].Epoch) {
		return
	}
	l.epochs = append(l.epochs, EpochEntry{Epoch: epoch, StartOffset: offset})
	l.epochsGen++
}

// epochsBehindLocked reports whether the file lacks a change of the cache.
func (l *Log) epochsBehindLocked() bool { return l.epochsGen != l.epochsCkpt }

// publishEpochsIfBehind is called by appends after noting their batches'
// epochs and before writing the batches: the file may be ahead of the
// log after a crash, never behind. The caller holds appendMu, so the
// log end and the entries an append noted cannot change before its
// write; the fsync runs outside mu.
func (l *Log) publishEpochsIfBehind() error {
	l.mu.Lock()
	behind := l.epochsBehindLocked()
	l.mu.Unlock()
	if !behind {
		return nil
	}
	return l.checkpointEpochs()
}

// truncateEpochsFromEndLocked drops the entries starting at or after end
// (the log was truncated to end).
func (l *Log) truncateEpochsFromEndLocked(end int64) {
	es := trimEpochsEnd(l.epochs, end)
	if len(es) == len(l.epochs) {
		return
	}
	l.epochs = es
	l.epochsGen++
}

// truncateEpochsFromStartLocked drops the entries wholly below start (the
// log start moved there); the entry covering start begins at start.
func (l *Log) truncateEpochsFromStartLocked(start int64) {
	es, changed := trimEpochsStart(l.epochs, start)
	if !changed {
		return
	}
	l.epochs = es
	l.epochsGen++
}

// checkpointEpochs publishes the cache when the file is behind it.
func (l *Log) checkpointEpochs() error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	return l.checkpointEpochsHeld()
}

// checkpointEpochsHeld is checkpointEpochs with flushMu held. epochsCkpt
// is written under both flushMu and mu, so appends can check it under mu
// alone without waiting for a flush.
func (l *Log) checkpointEpochsHeld() error {
	l.mu.Lock()
	gen, closed := l.epochsGen, l.closed
	var b []byte
	if gen != l.epochsCkpt && !closed {
		b = encodeEpochs(l.epochs)
	}
	l.mu.Unlock()
	if b == nil {
		return nil
	}
	if err := publishFile(l.fs, dirFile(l.dir, leaderEpochFile), b); err != nil {
		// The generation stays behind: the next append publishes
		// again before it writes.
		return errStorage("leader epoch checkpoint", err)
	}
	l.mu.Lock()
	l.epochsCkpt = gen
	l.mu.Unlock()
	return nil
}

func trimEpochsEnd(es []EpochEntry, end int64) []EpochEntry {
	n := len(es)
	for n > 0 && es[n-1].StartOffset >= end {
		n--
	}
	return es[:n]
}

// trimEpochsStart is Kafka's truncateFromStart: the last entry starting at
// or below start is kept, moved to start, and every earlier one dropped.
func trimEpochsStart(es []EpochEntry, start int64) ([]EpochEntry, bool) {
	if len(es) == 0 || es[0].StartOffset >= start {
		return es, false
	}
	i := 0
	for i+1 < len(es) && es[i+1].StartOffset <= start {
		i++
	}
	es = append(es[:0], es[i:]...)
	es[0].StartOffset = start
	return es, true
}

func encodeEpochs(es []EpochEntry) []byte {
	be := binary.BigEndian
	b := be.AppendUint32(make([]byte, 0, 8+12*len(es)), uint32(len(es)))
	for _, e := range es {
		b = be.AppendUint32(b, uint32(e.Epoch))
		b = be.AppendUint64(b, uint64(e.StartOffset))
	}
	return be.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeEpochs parses a leader-epoch-checkpoint; ok is false when it is
// torn, corrupt or not ascending in both epoch and offset.
func decodeEpochs(b []byte) ([]EpochEntry, bool) {
	be := binary.BigEndian
	if len(b) < 8 || crc32.Checksum(b[:len(b)-4], castagnoli) != be.Uint32(b[len(b)-4:]) {
		return nil, false
	}
	n := be.Uint32(b)
	body := b[4 : len(b)-4]
	if uint64(n)*12 != uint64(len(body)) {
		return nil, false
	}
	es := make([]EpochEntry, 0, n)
	for i := 0; i < len(body); i += 12 {
		e := EpochEntry{Epoch: int32(be.Uint32(body[i:])), StartOffset: int64(be.Uint64(body[i+4:]))}
		if e.Epoch < 0 || e.StartOffset < 0 {
			return nil, false
		}
		if k := len(es); k > 0 && (e.Epoch <= es[k-1].Epoch || e.StartOffset < es[k-1].StartOffset) {
			return nil, false
		}
		es = append(es, e)
	}
	return es, true
}

// loadEpochsLocked restores the cache at Open. A missing or damaged file
// is rebuilt from the partitionLeaderEpoch of every batch header; a good
// one is trimmed to the recovered log, and the segments recovery
// re-validated (from index recovered on) are replayed into it, since a
// crash may have kept batches whose entry the file lacks.
func (l *Log) loadEpochsLocked(recovered int) error {
	b, err := vfs.ReadFile(l.fs, dirFile(l.dir, leaderEpochFile))
	missing := errors.Is(err, os.ErrNotExist)
	es, ok := decodeEpochs(b)
	if err != nil || !ok {
		if !missing || l.logEndLocked() > l.logStart {
			l.logger.Info("rebuilding leader epoch cache from the log", "dir", l.dir, "missing", missing)
		}
		es = nil
		recovered = 0
	}
	before := encodeEpochs(es)
	es = trimEpochsEnd(es, l.logEndLocked())
	for _, s := range l.segs[min(recovered, len(l.segs)):] {
		for pos := int64(0); pos < s.size; {
			h, err := l.sc.header(s, pos)
			if errors.Is(err, errCorruptSegment) {
				break // damage below the recovery point, reported when marked
			}
			if err != nil {
				return err
			}
			if e := h.PartitionLeaderEpoch; e >= 0 {
				if k := len(es); k == 0 || e > es[k-1].Epoch {
					es = append(es, EpochEntry{Epoch: e, StartOffset: h.BaseOffset})
				}
			}
			pos += h.Size()
		}
	}
	es, _ = trimEpochsStart(es, l.logStart)
	l.epochs = es
	if (ok && string(before) == string(encodeEpochs(es))) || (missing && len(es) == 0) {
		return nil
	}
	// Open runs alone: the checkpoint is published directly.
	return publishFile(l.fs, dirFile(l.dir, leaderEpochFile), encodeEpochs(es))
}
