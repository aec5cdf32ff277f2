package storage

import (
	"errors"
	"fmt"
	"os"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/internal/batch"
	"github.com/tributary/tributary/internal/compress"
)

// The follower's side of the log: appending a leader's batches as they
// are, and cutting a divergent tail.

var (
	errFollowerOffset = fmt.Errorf("%w: replicated batches do not start at the log end offset", tributary.ErrOffsetOutOfRange)
	errFollowerGap    = fmt.Errorf("%w: replicated batches are not contiguous", tributary.ErrCorruptMessage)
	errNegativeOffset = fmt.Errorf("%w: negative offset", tributary.ErrOffsetOutOfRange)
)

// AppendAsFollower appends batches fetched from the leader. Each batch is
// validated for framing, size against max.message.bytes, magic, codec
// and CRC-32C (validateReplicated says why not the records), and the
// leader's offsets, partitionLeaderEpoch and timestamps are kept: the
// first batch must
// start at the log end offset and the others follow without gaps, else
// nothing is appended. Producer state and the leader epoch cache are
// updated from the batch headers; the high watermark is left to the
// caller (SetHighWatermark), and from now on never follows appends.
//
// Control batches (transaction markers) are accepted, as replication
// must copy whatever the leader stored.
func (l *Log) AppendAsFollower(batches []byte) (AppendResult, error) {
	if len(batches) == 0 {
		return AppendResult{}, errEmpty
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return AppendResult{}, errClosed
	}
	if l.failed != nil {
		return AppendResult{}, l.failed
	}
	now := l.nowMs()
	l.finishDeletesLocked(now, false)

	leo := l.logEndLocked()
	infos := l.infos[:0]
	var records int64
	maxTs := int64(-1)
	next := leo
	for pos := 0; pos < len(batches); {
		size := batch.SizeAt(batches[pos:])
		if size < 0 || size > int64(len(batches)-pos) {
			return AppendResult{}, errFrame
		}
		if size > int64(l.cfg.MaxMessageBytes) {
			return AppendResult{}, errBig
		}
		info, err := validateReplicated(batches[pos : pos+int(size)])
		if err != nil {
			return AppendResult{}, err
		}
		if info.BaseOffset != next {
			if pos == 0 {
				return AppendResult{}, fmt.Errorf("%w (batch at %d, log end %d)", errFollowerOffset, info.BaseOffset, leo)
			}
			return AppendResult{}, errFollowerGap
		}
		next = info.LastOffset() + 1
		records += int64(info.LastOffsetDelta) + 1
		maxTs = max(maxTs, info.Header.MaxTimestamp)
		infos = append(infos, info)
		pos += int(size)
	}
	l.infos = infos

	if err := l.maybeRollLocked(int64(len(batches)), records, maxTs, now); err != nil {
		return AppendResult{}, l.fail(err)
	}
	// Epoch entries first, as in Append: the file may only be ahead.
	for i := range infos {
		if err := l.noteBatchEpochLocked(infos[i].PartitionLeaderEpoch, infos[i].BaseOffset); err != nil {
			return AppendResult{}, l.fail(err)
		}
	}
	act := l.active()
	if _, err := act.f.WriteAt(batches, act.size); err != nil {
		return AppendResult{}, l.fail(err)
	}
	pos := int64(0)
	for i := range infos {
		h := &infos[i].Header
		// The header's maxTimestamp is what the leader stored (it
		// fixed the client's claim, or stamped LogAppendTime).
		act.noteBatch(h.BaseOffset, act.size+pos, h.Size(), h.MaxTimestamp, l.cfg.IndexIntervalBytes)
		pos += h.Size()
		if h.ProducerID >= 0 && !h.IsControl() {
			if l.producers == nil {
				l.producers = make(map[int64]producerEntry)
			}
			e := l.producers[h.ProducerID]
			lat := int64(-1)
			if h.IsLogAppendTime() {
				lat = h.MaxTimestamp
			}
			// No sequence checks: the leader made them. Kafka's
			// follower (AppendOrigin.REPLICATION) does the same.
			e.push(h.ProducerEpoch, batchMeta{
				firstSeq: h.BaseSequence, lastSeq: h.LastSequence(),
				firstOff: h.BaseOffset, lastOff: h.LastOffset(), logAppendTime: lat,
			}, now)
			l.producers[h.ProducerID] = e
		}
	}
	act.size += int64(len(batches))
	act.next = next
	act.dirty = true
	l.hwSet = true
	l.unflushed += records
	if l.flushDue(now) {
		if err := l.flushLocked(); err != nil {
			return AppendResult{}, l.fail(err)
		}
	}
	return AppendResult{BaseOffset: leo, LastOffset: next - 1, LogAppendTime: -1, LogStartOffset: l.logStart}, nil
}

// validateReplicated checks a batch from the leader: header, magic,
// length, codec, counts and the CRC-32C over everything after it. The
// records are not walked (nor decompressed): the leader validated them
// before storing, and the CRC proves these are its bytes. Kafka's
// follower does the same (ensureValid), which keeps a follower's CPU per
// byte a fraction of the leader's.
func validateReplicated(b []byte) (batch.Info, error) {
	h, err := batch.ParseHeader(b)
	if err != nil {
		return batch.Info{}, err
	}
	switch {
	case h.Length < batch.MinLength || int64(len(b)) != h.Size():
		return batch.Info{}, batch.ErrBadLength
	case batch.ComputeCRC(b) != h.CRC:
		return batch.Info{}, batch.ErrBadCRC
	case h.Attributes&batch.AttrCodecMask > int16(compress.ZSTD):
		return batch.Info{}, batch.ErrBadCodec
	case h.RecordCount < 0 || h.LastOffsetDelta < 0:
		return batch.Info{}, batch.ErrBadCount
	}
	return batch.Info{Header: h, NumRecords: h.RecordCount, MaxTimestamp: h.MaxTimestamp}, nil
}

// TruncateTo removes every batch holding an offset at or above offset:
// later segments whole, and the tail of the segment holding it, with
// their index entries. A batch straddling offset goes entirely, so the
// log end may end up below offset. Producer state is rebuilt for the new
// end, the leader epoch cache loses the epochs starting at or after it,
// and the high watermark and recovery point are clamped to it.
//
// The log never shrinks below its log start offset: offset is raised to
// it, and if the batch holding the log start would have to go, the log
// restarts empty at offset (TruncateFullyAndStartAt). Offsets at or past
// the log end change nothing but the epoch cache: epochs starting at or
// after offset are dropped.
func (l *Log) TruncateTo(offset int64) error {
	if offset < 0 {
		return errNegativeOffset
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errClosed
	}
	if l.failed != nil {
		return l.failed
	}
	offset = max(offset, l.logStart)
	if offset >= l.logEndLocked() {
		// Nothing to cut, but an epoch that began at the log end
		// without a batch (a leader that appended nothing) still
		// goes: a follower truncating there must stop claiming it,
		// or its next OffsetForLeaderEpoch asks the same again.
		if err := l.truncateEpochsFromEndLocked(offset); err != nil {
			return l.fail(err)
		}
		return nil
	}
	si := l.segmentFor(offset)
	s := l.segs[si]
	pos, h, found, err := l.sc.locate(s, offset)
	if err != nil {
		return l.readErr(err)
	}
	cut := s.next
	if found {
		cut = h.BaseOffset
	}
	if cut < l.logStart {
		return l.truncateFullyLocked(offset)
	}
	if !found {
		pos = s.size
	}
	now := l.nowMs()
	// Later segments go the way retention deletes them: renamed now,
	// removed after file.delete.delay.ms, so FileSlices already handed
	// to fetch responses stay readable.
	gone := l.segs[si+1:]
	l.segs = l.segs[:si+1]
	l.retireSegmentsLocked(gone, now)

	if pos < s.size {
		if err := s.f.Truncate(pos); err != nil {
			return l.fail(err)
		}
		s.size = pos
		l.sc.reset()
		if err := l.rebuildFromHeaders(s); err != nil {
			return l.fail(err)
		}
		s.next = cut
		// The cut must be durable before anything is appended after
		// it, or a crash could resurrect the old tail behind new data.
		if err := s.f.Sync(); err != nil {
			return l.fail(err)
		}
	}
	return l.afterTruncateLocked(cut, now)
}

// afterTruncateLocked brings everything derived from the log in line
// with a log that now ends at end.
func (l *Log) afterTruncateLocked(end, now int64) error {
	if l.recoveryPoint > end {
		l.recoveryPoint = end
		if err := writeCheckpoint(dirFile(l.dir, recoveryPointFile), end, true); err != nil {
			return l.fail(err)
		}
	}
	l.hw = min(l.hw, end)
	if err := l.truncateEpochsFromEndLocked(end); err != nil {
		return l.fail(err)
	}
	if err := l.loadProducers(end, now); err != nil {
		return l.fail(err)
	}
	return nil
}

// TruncateFullyAndStartAt empties the log and restarts it at offset,
// which becomes both the log start and the log end: a follower whose log
// is entirely out of the leader's range (below its log start, or ahead
// of it after an unclean election) starts over.
func (l *Log) TruncateFullyAndStartAt(offset int64) error {
	if offset < 0 {
		return errNegativeOffset
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errClosed
	}
	if l.failed != nil {
		return l.failed
	}
	return l.truncateFullyLocked(offset)
}

func (l *Log) truncateFullyLocked(offset int64) error {
	now := l.nowMs()
	gone := l.segs
	l.segs = nil
	l.retireSegmentsLocked(gone, now)
	s, err := createSegment(l.dir, offset, now)
	if err != nil {
		// No segment to append to: the log is unusable until reopened.
		l.segs = gone[len(gone)-1:]
		return l.fail(err)
	}
	l.segs = []*segment{s}
	l.logStart = offset
	if err := writeCheckpoint(dirFile(l.dir, logStartFile), offset, true); err != nil {
		return l.fail(err)
	}
	l.hw = offset
	l.hwSet = true
	l.epochs = nil
	if err := l.writeEpochsLocked(); err != nil {
		return l.fail(err)
	}
	offs, err := listSnapshots(l.dir)
	if err != nil {
		return l.fail(err)
	}
	for _, o := range offs {
		os.Remove(snapshotPath(l.dir, o))
	}
	l.producers = make(map[int64]producerEntry)
	l.recoveryPoint = offset
	if err := writeCheckpoint(dirFile(l.dir, recoveryPointFile), offset, true); err != nil {
		return l.fail(err)
	}
	if err := syncDir(l.dir); err != nil {
		return l.fail(err)
	}
	l.sc.reset()
	return nil
}

// retireSegmentsLocked renames segments .deleted and queues their
// removal after file.delete.delay.ms, as retention does.
func (l *Log) retireSegmentsLocked(gone []*segment, now int64) {
	for _, s := range gone {
		for _, ext := range []string{".log", ".index", ".timeindex"} {
			if err := os.Rename(s.path+ext, s.path+ext+deletedSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				l.logger.Warn("renaming truncated segment", "file", s.path+ext, "err", err)
			}
		}
		l.pending = append(l.pending, pendingDelete{seg: s, deadline: now + l.cfg.FileDeleteDelayMs})
	}
	l.sc.reset()
	l.finishDeletesLocked(now, false)
}
