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
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.Lock()
	cfg, closed, failed := l.cfg, l.closed, l.failed
	// Every writer holds appendMu: the log end stays put until the write.
	leo := l.logEndLocked()
	l.mu.Unlock()
	if closed {
		return AppendResult{}, errClosed
	}
	if failed != nil {
		return AppendResult{}, failed
	}
	// Validation (CRCs) runs outside mu, as Append's does.
	infos := l.infos[:0]
	var records int64
	maxTs := int64(-1)
	next := leo
	for pos := 0; pos < len(batches); {
		size := batch.SizeAt(batches[pos:])
		if size < 0 || size > int64(len(batches)-pos) {
			return AppendResult{}, errFrame
		}
		if size > int64(cfg.MaxMessageBytes) {
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

	// Epoch entries first, as in Append: the file may only be ahead.
	l.mu.Lock()
	for i := range infos {
		l.noteBatchEpochLocked(infos[i].PartitionLeaderEpoch, infos[i].BaseOffset)
	}
	l.mu.Unlock()
	if err := l.publishEpochsIfBehind(); err != nil {
		return AppendResult{}, err
	}

	return l.completeAppend(l.appendAsFollowerLocked(batches, records, maxTs, leo, next))
}

// appendAsFollowerLocked is AppendAsFollower's part under mu: the roll,
// the one write, indexes and producer state. Like appendLocked it
// returns the roll's remaining work and whether a flush is due.
func (l *Log) appendAsFollowerLocked(batches []byte, records, maxTs, leo, next int64) (AppendResult, *rollWork, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.nowMs()
	if err := l.appendStartLocked(now); err != nil {
		return AppendResult{}, nil, false, err
	}
	infos := l.infos
	roll, err := l.maybeRollLocked(int64(len(batches)), records, maxTs, now)
	if err != nil {
		return AppendResult{}, nil, false, errStorage("rolling a new segment", err)
	}
	act := l.active()
	if err := l.writeActiveLocked(batches, "follower append"); err != nil {
		return AppendResult{}, roll, false, err // the fetcher retries
	}
	pos := int64(0)
	for i := range infos {
		h := &infos[i].Header
		// The header's maxTimestamp is what the leader stored (it
		// fixed the client's claim, or stamped LogAppendTime).
		act.noteBatch(h.BaseOffset, act.size+pos, h.Size(), h.MaxTimestamp, l.cfg.IndexIntervalBytes)
		// No sequence checks: the leader made them. Kafka's follower
		// (AppendOrigin.REPLICATION) does the same. Markers end their
		// transactions here as on the leader, and an abort reaches
		// this replica's .txnindex.
		if e, aborted := l.replayProducerLocked(h, batches[pos:pos+h.Size()], now); aborted {
			act.addAborted(e)
		}
		pos += h.Size()
	}
	act.size += int64(len(batches))
	act.next = next
	act.dirty = true
	act.modified = now
	l.hwSet = true
	l.unflushed += records
	return AppendResult{BaseOffset: leo, LastOffset: next - 1, LogAppendTime: -1, LogStartOffset: l.logStart},
		roll, l.flushDue(now), nil
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
// end (snapshots above it are removed), the leader epoch cache loses the
// epochs starting at or after it, and the high watermark and recovery
// point are clamped to it.
//
// The log never shrinks below its log start offset: offset is raised to
// it, and if the batch holding the log start would have to go, the log
// restarts empty at offset (TruncateFullyAndStartAt). Offsets at or past
// the log end change nothing but the epoch cache: epochs starting at or
// after offset are dropped.
//
// It returns once the cut is durable: the truncated segment, the
// directory (later segments renamed .deleted) and the checkpoints are
// fsynced before anything can be appended after it, or a crash could
// resurrect the old tail behind new data. It holds appendMu and flushMu
// throughout; the fsyncs run outside mu, so reads go on.
func (l *Log) TruncateTo(offset int64) error {
	if offset < 0 {
		return errNegativeOffset
	}
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.flushMu.Lock()
	defer l.flushMu.Unlock()

	// The recovery point checkpoint goes below the cut first: a crash
	// anywhere in the truncation then rescans from there, and
	// recovery's checks (contiguous offsets, segments ending where the
	// next begins) cut whatever half-done state it finds.
	l.mu.Lock()
	if l.closed || l.failed != nil {
		l.mu.Unlock()
		return l.closedOrFailed()
	}
	bound := max(offset, l.logStart)
	if si := l.segmentFor(bound); bound < l.logEndLocked() {
		bound = min(bound, l.segs[si].base)
	}
	l.mu.Unlock()
	if bound < l.rpCkpt {
		if err := writeCheckpointFS(l.fs, dirFile(l.dir, recoveryPointFile), bound); err != nil {
			return errStorage("recovery point checkpoint", err)
		}
		l.rpCkpt = bound
	}

	changed, err := l.truncateToLocked(offset)
	if err != nil {
		return err
	}
	return l.afterTruncate(changed)
}

// closedOrFailed is the error for a closed or failed log (under mu).
func (l *Log) closedOrFailed() error {
	if l.closed {
		return errClosed
	}
	return l.failed
}

// truncateToLocked does TruncateTo's changes under mu. changed is false
// when only the epoch cache may have changed.
func (l *Log) truncateToLocked(offset int64) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.failed != nil {
		return false, l.closedOrFailed()
	}
	if l.torn {
		if err := l.untearLocked(); err != nil {
			return false, err
		}
	}
	offset = max(offset, l.logStart)
	if offset >= l.logEndLocked() {
		// Nothing to cut, but an epoch that began at the log end
		// without a batch (a leader that appended nothing) still
		// goes: a follower truncating there must stop claiming it,
		// or its next OffsetForLeaderEpoch asks the same again.
		l.truncateEpochsFromEndLocked(offset)
		return false, nil
	}
	si := l.segmentFor(offset)
	s := l.segs[si]
	pos, h, found, err := l.sc.locate(s, offset)
	if err != nil {
		return false, l.readErr(s, err)
	}
	cut := s.next
	if found {
		cut = h.BaseOffset
	}
	if cut < l.logStart {
		return true, l.truncateFullyLocked(offset)
	}
	if !found {
		pos = s.size
	}
	// s becomes the active segment: it is held open from now on.
	if err := s.pin(); err != nil {
		return false, errStorage("opening segment", err)
	}
	now := l.nowMs()
	// Later segments go the way retention deletes them: renamed now,
	// removed after file.delete.delay.ms, so FileSlices already handed
	// to fetch responses stay readable.
	gone := l.segs[si+1:]
	l.segs = l.segs[:si+1]
	l.retireSegmentsLocked(gone, now)

	if pos < s.size {
		if err := s.wf.Truncate(pos); err != nil {
			// Memory and file disagree now: take the log offline
			// until Open recovers it.
			return true, l.fail(err)
		}
		s.size = pos
		l.sc.reset()
		if err := l.rebuildFromHeaders(s); err != nil {
			return true, l.fail(err)
		}
		s.next = cut
		s.dirty = true // the cut is fsynced by afterTruncate
	}
	return true, l.afterTruncateLocked(cut, now)
}

// afterTruncateLocked brings everything derived from the log in line
// with a log that now ends at end.
func (l *Log) afterTruncateLocked(end, now int64) error {
	l.recoveryPoint = min(l.recoveryPoint, end)
	l.hw = min(l.hw, end)
	l.truncateEpochsFromEndLocked(end)
	// Snapshots above end are removed, and l.snapshots with them.
	if err := l.loadProducers(end, now, l.snapshots); err != nil {
		return l.fail(err)
	}
	l.dirDirty = true
	return nil
}

// afterTruncate makes a truncation durable, with flushMu held and mu
// not: the cut segment and the directory (flushHeld), then the
// checkpoints that may have moved.
func (l *Log) afterTruncate(changed bool) error {
	if changed {
		if err := l.flushHeld(); err != nil {
			return err
		}
		if err := l.checkpointLogStartHeld(); err != nil {
			return err
		}
		if err := l.checkpointRecoveryPointHeld(); err != nil {
			return err
		}
	}
	return l.checkpointEpochsHeld()
}

// TruncateFullyAndStartAt empties the log and restarts it at offset,
// which becomes both the log start and the log end: a follower whose log
// is entirely out of the leader's range (below its log start, or ahead
// of it after an unclean election) starts over. Like TruncateTo it
// returns once the change is durable.
func (l *Log) TruncateFullyAndStartAt(offset int64) error {
	if offset < 0 {
		return errNegativeOffset
	}
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.Lock()
	if l.closed || l.failed != nil {
		l.mu.Unlock()
		return l.closedOrFailed()
	}
	err := l.truncateFullyLocked(offset)
	l.mu.Unlock()
	if err != nil {
		return err
	}
	return l.afterTruncate(true)
}

func (l *Log) truncateFullyLocked(offset int64) error {
	now := l.nowMs()
	gone := l.segs
	l.segs = nil
	// The old active segment goes too: a torn tail of it is moot.
	l.torn = false
	l.retireSegmentsLocked(gone, now)
	s, err := createSegment(l.fs, l.files, l.dir, offset, now)
	if err != nil {
		// No segment to append to: the log is unusable until reopened
		// (Open finds no segment and starts one at the log start).
		l.segs = gone[len(gone)-1:]
		return l.fail(err)
	}
	l.segs = []*segment{s}
	l.logStart = offset
	l.hw = offset
	l.hwSet = true
	l.epochs = nil
	l.epochsGen++
	for _, o := range l.snapshots {
		l.fs.Remove(snapshotPath(l.dir, o))
	}
	l.snapshots = nil
	l.producers = make(map[int64]producerEntry)
	l.ongoing = nil
	l.recoveryPoint = offset
	l.dirDirty = true
	l.sc.reset()
	return nil
}

// retireSegmentsLocked renames segments .deleted and queues their
// removal after file.delete.delay.ms, as retention does; the directory
// fsync that publishes the renames is the next flush's.
func (l *Log) retireSegmentsLocked(gone []*segment, now int64) {
	for _, s := range gone {
		s.unpin() // the old active segment
		for _, ext := range segmentExts {
			if err := l.fs.Rename(s.path+ext, s.path+ext+deletedSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				l.logger.Warn("renaming truncated segment", "file", s.path+ext, "err", err)
			}
		}
		s.cf.rename(s.path + ".log" + deletedSuffix)
		l.pending = append(l.pending, pendingDelete{seg: s, deadline: now + l.cfg.FileDeleteDelayMs})
	}
	l.dirDirty = true
	l.sc.reset()
	l.finishDeletesLocked(now, false)
}
