package storage

// This file fixes the API the broker codes against. Bodies are filled in
// by the storage implementation; signatures change only with the callers.

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/internal/batch"
	"github.com/tributary/tributary/internal/vfs"
)

// Config holds the topic-level settings of one partition log, with
// Kafka's topic config names. The broker derives it from the log.* broker
// defaults and the topic's overrides.
//
// Fields whose zero value Kafka forbids (segment.bytes, segment.ms,
// segment.index.bytes, max.message.bytes, producer.id.expiration.ms)
// take Kafka's default when zero or negative. FlushMessages and FlushMs
// at zero or below mean "never fsync on a schedule", like Kafka's
// effectively infinite defaults. DefaultConfig returns Kafka's defaults.
type Config struct {
	SegmentBytes           int64 // segment.bytes
	SegmentMs              int64 // segment.ms
	RetentionMs            int64 // retention.ms; -1 keeps forever
	RetentionBytes         int64 // retention.bytes; -1 keeps forever
	IndexIntervalBytes     int32 // index.interval.bytes
	SegmentIndexBytes      int32 // segment.index.bytes
	FlushMessages          int64 // flush.messages: fsync after this many records
	FlushMs                int64 // flush.ms: fsync when the oldest unflushed write is this old
	FileDeleteDelayMs      int64 // file.delete.delay.ms
	MaxMessageBytes        int32 // max.message.bytes: largest batch accepted
	LogAppendTime          bool  // message.timestamp.type=LogAppendTime
	ProducerIDExpirationMs int64 // producer.id.expiration.ms

	// Compaction (cleaner.go).
	Compact                bool    // cleanup.policy includes compact
	MinCleanableDirtyRatio float64 // min.cleanable.dirty.ratio
	MinCompactionLagMs     int64   // min.compaction.lag.ms
	MaxCompactionLagMs     int64   // max.compaction.lag.ms; <= 0 or MaxInt64: never forces
	DeleteRetentionMs      int64   // delete.retention.ms: how long tombstones outlive the first pass
}

// DefaultConfig returns Kafka's topic defaults.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:           1 << 30,
		SegmentMs:              7 * 24 * 3600 * 1000,
		RetentionMs:            7 * 24 * 3600 * 1000,
		RetentionBytes:         -1,
		IndexIntervalBytes:     4096,
		SegmentIndexBytes:      10 << 20,
		FlushMessages:          math.MaxInt64,
		FlushMs:                math.MaxInt64,
		FileDeleteDelayMs:      60000,
		MaxMessageBytes:        1048588,
		ProducerIDExpirationMs: 86400000,
		MinCleanableDirtyRatio: 0.5,
		MaxCompactionLagMs:     math.MaxInt64,
		DeleteRetentionMs:      86400000,
	}
}

func (c Config) sanitized() Config {
	d := DefaultConfig()
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = d.SegmentBytes
	}
	// Index positions are 4 bytes.
	c.SegmentBytes = min(c.SegmentBytes, math.MaxInt32)
	if c.SegmentMs <= 0 {
		c.SegmentMs = d.SegmentMs
	}
	if c.IndexIntervalBytes < 0 {
		c.IndexIntervalBytes = 0
	}
	if c.SegmentIndexBytes <= 0 {
		c.SegmentIndexBytes = d.SegmentIndexBytes
	}
	c.SegmentIndexBytes = max(c.SegmentIndexBytes, 4*tidxEntrySize)
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = d.MaxMessageBytes
	}
	if c.ProducerIDExpirationMs <= 0 {
		c.ProducerIDExpirationMs = d.ProducerIDExpirationMs
	}
	if c.FileDeleteDelayMs < 0 {
		c.FileDeleteDelayMs = 0
	}
	return c
}

// decompressLimit bounds the decompressed size of one batch: generous for
// real batches (a producer's batch.size bounds them uncompressed), but a
// ceiling a zip bomb cannot pass.
func (c Config) decompressLimit() int {
	return int(min(max(16*int64(c.MaxMessageBytes), 8<<20), 256<<20))
}

// Options are per-Open settings that are not topic configs.
type Options struct {
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests move time to roll and
	// expire segments.
	Now func() time.Time
	// FS is the filesystem; nil means the operating system's
	// (vfs.Default). Tests pass an in-memory or error-injecting one.
	FS vfs.FS
	// Files bounds the segment files held open; nil means
	// DefaultFileCache, shared by the process.
	Files *FileCache
}

// Log is one partition's log: a directory of segments named by base
// offset, each with .log, .index and .timeindex files (and a .txnindex
// once it holds an abort marker), plus producer-state snapshots. All
// methods are safe for concurrent use.
//
// Locks, in the order they are taken:
//
//	appendMu  serializes writers (Append, AppendAsFollower, rolls,
//	          truncations, AssignEpochStartOffset, Close): validation and
//	          decompression of a request, the fsync that flush.messages, a
//	          roll or a new leader epoch asks for, and the snapshot written
//	          at a roll run under it, outside mu. The log end moves only
//	          under it.
//	flushMu   serializes flushes and checkpoint writes (recovery point,
//	          log start, leader epochs, high watermark), which fsync
//	          outside mu; truncations hold it throughout.
//	mu        guards the state below it; readers (Read, HighWatermark,
//	          LogEndOffset, ...) take only mu, and nothing slow (fsync,
//	          decompression) happens under it.
//	FileCache.mu (the storage-wide descriptor bound) is taken under mu.
type Log struct {
	dir    string
	now    func() time.Time
	logger *slog.Logger
	fs     vfs.FS
	files  *FileCache

	appendMu sync.Mutex
	infos    []batch.Info // per-batch scratch of one Append (appendMu)

	flushMu sync.Mutex
	rpCkpt  int64 // recovery point in the checkpoint file (flushMu)
	lsoCkpt int64 // log start offset in the checkpoint file (flushMu)
	// Replication's checkpoints (epochs.go, hwcheckpoint.go). epochsCkpt
	// is written under flushMu and mu, so appends read it under mu alone.
	epochsCkpt uint64 // epochsGen of the leader-epoch-checkpoint file
	hwCkpt     int64  // HW in the high-watermark checkpoint, -1 when none (flushMu)

	mu            sync.Mutex
	cfg           Config
	segs          []*segment // ascending base offsets; the last is active
	logStart      int64
	hw            int64
	hwSet         bool // SetHighWatermark was used: appends stop moving hw
	recoveryPoint int64
	producers     map[int64]producerEntry
	ongoing       map[int64]int64 // open transactions: producer id -> first offset (txn.go)
	unflushed     int64           // records appended since the last fsync
	lastFlush     int64           // ms
	pending       []pendingDelete
	closed        bool
	failed        error // set by a failed fsync: the log refuses appends until reopened
	// torn is set when a failed write may have left bytes past the
	// active segment's size; the next append truncates them first.
	torn      bool
	dirDirty  bool    // directory entries changed since the last SyncDir
	snapshots []int64 // offsets of the snapshot files, ascending

	cleanerCkpt int64  // the cleaner checkpoint: below it the log is clean (cleaner.go)
	retireSeq   uint64 // names cleaned-away segments uniquely

	// Leader epoch cache (epochs.go), ascending; epochsGen counts its
	// changes, so a checkpoint knows whether the file is behind.
	epochs    []EpochEntry
	epochsGen uint64

	sc      *scanner
	readBuf []byte         // whole batches read for timestamp lookups and recovery
	overlay []overlayEntry // producer state changes of one Append
	// ended collects the aborted transactions one Append's markers end;
	// their lso is filled in once the append is applied.
	ended []abortedEntry
}

type overlayEntry struct {
	pid    int64
	entry  producerEntry
	exists bool
}

type pendingDelete struct {
	seg      *segment
	deadline int64 // ms
}

var (
	errClosed         = fmt.Errorf("%w: log is closed", tributary.ErrKafkaStorageError)
	errCorruptSegment = fmt.Errorf("%w: corrupt log segment below the recovery point", tributary.ErrCorruptMessage)
	errEmpty          = fmt.Errorf("%w: no record batches", tributary.ErrCorruptMessage)
	errFrame          = fmt.Errorf("%w: batch length does not fit the request", tributary.ErrCorruptMessage)
	errBase           = fmt.Errorf("%w: produced batch must have base offset 0", tributary.ErrInvalidRecord)
	errNoRecs         = fmt.Errorf("%w: batch has no records", tributary.ErrInvalidRecord)
	errDelta          = fmt.Errorf("%w: lastOffsetDelta does not match the record count", tributary.ErrInvalidRecord)
	errCtrl           = fmt.Errorf("%w: clients cannot produce control batches", tributary.ErrInvalidRecord)
	errTxnPID         = fmt.Errorf("%w: transactional batch without a producer id", tributary.ErrInvalidRecord)
	errBig            = fmt.Errorf("%w: batch exceeds max.message.bytes", tributary.ErrMessageTooLarge)
	errNoKey          = fmt.Errorf("%w: Compacted topic cannot accept message without key", tributary.ErrInvalidRecord)
)

func (l *Log) nowMs() int64 { return l.now().UnixMilli() }

func dirFile(dir, name string) string { return filepath.Join(dir, name) }

// SetConfig applies changed topic configs (dynamic alter).
func (l *Log) SetConfig(cfg Config) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg = cfg.sanitized()
}

// Close flushes, writes a producer-state snapshot, the checkpoints and
// the clean-shutdown marker, and closes every file.
func (l *Log) Close() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	if l.torn && l.failed == nil {
		if err := l.untearLocked(); err != nil {
			// Leave no clean-shutdown marker over a torn tail: the
			// next Open recovers it.
			l.failed = err
		}
	}
	failed := l.failed != nil
	if !failed {
		act := l.active()
		act.maybeAppendTime()
		act.dirty = true // the final time entry must reach the file
	}
	l.mu.Unlock()
	var err error
	if !failed {
		err = l.flush()
		var snap []byte
		var end int64
		if err == nil {
			l.mu.Lock()
			end, snap = l.logEndLocked(), encodeSnapshot(l.producers)
			l.mu.Unlock()
			err = l.publishSnapshot(end, snap)
		}
		if err == nil {
			err = l.CheckpointRecoveryPoint()
		}
		if err == nil {
			err = l.CheckpointLogStartOffset()
		}
		if err == nil {
			err = l.checkpointEpochs()
		}
		if err == nil {
			err = l.CheckpointHighWatermark()
		}
		if err == nil {
			err = publishFile(l.fs, dirFile(l.dir, cleanShutdownFile), nil)
		}
	}
	l.mu.Lock()
	l.closeFilesLocked()
	l.mu.Unlock()
	return err
}

// closeFilesLocked closes every file and finishes pending deletions now.
func (l *Log) closeFilesLocked() {
	l.closed = true
	for _, s := range l.segs {
		s.unpin()
		s.cf.drop()
	}
	for _, p := range l.pending {
		l.removeDeleted(p.seg)
	}
	l.pending = nil
}

// Delete closes the log and removes its directory (DeleteTopics).
func (l *Log) Delete() error {
	l.mu.Lock()
	if !l.closed {
		l.closeFilesLocked()
	}
	l.mu.Unlock()
	return l.fs.RemoveAll(l.dir)
}

// Dir is the partition directory.
func (l *Log) Dir() string { return l.dir }

// AppendResult describes a successful (or duplicate) append.
type AppendResult struct {
	BaseOffset     int64 // first offset assigned
	LastOffset     int64 // last offset assigned
	LogAppendTime  int64 // ms the broker stamped, or -1 for CreateTime
	LogStartOffset int64
	// Duplicate is set when the batch repeats one already stored (same
	// producer id, epoch and sequence): nothing was appended and the
	// offsets are those of the original.
	Duplicate bool
}

// Append validates the record batches of one produce request partition
// (magic 2, CRC-32C, sizes, record count, max.message.bytes, producer
// id/epoch/sequence), assigns offsets (and LogAppendTime), stamps
// leaderEpoch into each batch header and appends the bytes as they came.
// Either every batch is appended or none. Errors are tributary.Err* values
// (ErrCorruptMessage, ErrInvalidRecord, ErrMessageTooLarge,
// ErrOutOfOrderSequenceNumber, ErrInvalidProducerEpoch,
// ErrUnsupportedForMessageFormat, ...), possibly wrapped.
//
// Append takes ownership of batches: it may rewrite header fields in place.
//
// The bytes reach the file (the OS page cache) in one write before Append
// returns, so an acknowledged append survives a crash of the process, as
// in Kafka; fsync follows flush.messages / flush.ms or Flush.
func (l *Log) Append(batches []byte, leaderEpoch int32) (AppendResult, error) {
	return l.appendFrom(batches, leaderEpoch, originClient, nil)
}

// appendOrigin is who wrote the batches of a leader append (Kafka's
// AppendOrigin): a client's are sequence-checked, a coordinator's carry
// no sequence, and a marker is the one control batch AppendMarker built.
type appendOrigin uint8

const (
	originClient appendOrigin = iota
	originCoordinator
	originMarker
)

func (l *Log) appendFrom(batches []byte, leaderEpoch int32, origin appendOrigin, m *Marker) (AppendResult, error) {
	if len(batches) == 0 {
		return AppendResult{}, errEmpty
	}
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.Lock()
	cfg, closed, failed := l.cfg, l.closed, l.failed
	l.mu.Unlock()
	if closed {
		return AppendResult{}, errClosed
	}
	if failed != nil {
		return AppendResult{}, failed
	}
	// Validation decompresses: it runs outside mu, so reads go on.
	records, err := l.validate(batches, &cfg, origin)
	if err != nil {
		return AppendResult{}, err
	}
	if testHookValidated != nil {
		testHookValidated()
	}
	// The epoch's entry reaches its file before the batches carrying
	// it, so a crash can only leave the file ahead (Open trims it). The
	// log end cannot move before appendLocked: every writer holds
	// appendMu. The fsync (once per new epoch) runs outside mu.
	l.mu.Lock()
	l.noteBatchEpochLocked(leaderEpoch, l.logEndLocked())
	l.mu.Unlock()
	if err := l.publishEpochsIfBehind(); err != nil {
		return AppendResult{}, err
	}
	return l.completeAppend(l.appendLocked(batches, leaderEpoch, &cfg, records, origin, m))
}

// completeAppend is the part of an append after mu, shared by Append and
// AppendAsFollower: a roll's remaining work, then the fsync that
// flush.messages / flush.ms asked for (the append is acknowledged only
// once durable).
func (l *Log) completeAppend(res AppendResult, roll *rollWork, flushNow bool, err error) (AppendResult, error) {
	if roll != nil {
		l.afterRoll(roll)
	}
	if err != nil {
		return AppendResult{}, err
	}
	if flushNow {
		if err := l.flush(); err != nil {
			return AppendResult{}, err
		}
	}
	return res, nil
}

// testHookValidated, when set by a test, runs between validation and the
// locked part of Append: a stand-in for a slow decompression.
var testHookValidated func()

// validate checks every batch of a produce request before anything
// changes, filling l.infos (guarded by appendMu).
func (l *Log) validate(batches []byte, cfg *Config, origin appendOrigin) (int64, error) {
	infos := l.infos[:0]
	limit := cfg.decompressLimit()
	var records int64
	for pos := 0; pos < len(batches); {
		size := batch.SizeAt(batches[pos:])
		if size < 0 || size > int64(len(batches)-pos) {
			return 0, errFrame
		}
		if size > int64(cfg.MaxMessageBytes) {
			return 0, errBig
		}
		b := batches[pos : pos+int(size)]
		info, err := batch.Validate(b, limit)
		if err != nil {
			return 0, err
		}
		switch {
		case info.BaseOffset != 0:
			return 0, errBase
		case info.RecordCount == 0:
			return 0, errNoRecs
		case info.RecordCount != info.LastOffsetDelta+1:
			return 0, errDelta
		case info.IsControl() != (origin == originMarker):
			return 0, errCtrl
		case info.IsTransactional() && info.ProducerID < 0:
			return 0, errTxnPID
		case cfg.Compact && info.NullKeys > 0:
			return 0, errNoKey
		}
		records += int64(info.RecordCount)
		infos = append(infos, info)
		pos += int(size)
	}
	l.infos = infos
	return records, nil
}

// appendStartLocked is how every append begins under mu: the log must
// be open and not failed (a flush may have failed meanwhile), deletions
// that are due finish, and a write torn by an earlier failure is cut back.
func (l *Log) appendStartLocked(now int64) error {
	if l.closed {
		return errClosed
	}
	if l.failed != nil {
		return l.failed
	}
	l.finishDeletesLocked(now, false)
	if l.torn {
		return l.untearLocked()
	}
	return nil
}

// writeActiveLocked writes batches at the end of the active segment in
// one write. The file may then hold part of a failed write (a full
// disk): it is cut back to the last good position, now or before the
// next append, so a retry once there is room succeeds.
func (l *Log) writeActiveLocked(batches []byte, what string) error {
	act := l.active()
	if _, err := act.wf.WriteAt(batches, act.size); err != nil {
		l.torn = true
		l.sc.reset()
		if terr := l.untearLocked(); terr != nil {
			l.logger.Warn("cannot truncate a failed write yet", "segment", act.path, "err", terr)
		}
		l.logger.Error(what+" failed", "dir", l.dir, "err", err)
		return errStorage("writing segment", err)
	}
	return nil
}

// appendLocked checks producer sequences, rolls if due, stamps and writes
// validated batches. It returns the work a roll leaves for after mu
// (nil without a roll) and whether flush.messages/flush.ms ask for an
// fsync now.
func (l *Log) appendLocked(batches []byte, leaderEpoch int32, cfg *Config, records int64, origin appendOrigin, m *Marker) (AppendResult, *rollWork, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.nowMs()
	if err := l.appendStartLocked(now); err != nil {
		return AppendResult{}, nil, false, err
	}
	infos := l.infos

	logAppendTime := int64(-1)
	if cfg.LogAppendTime {
		logAppendTime = now
	}
	// Producer id, epoch and sequence, against the stored state plus the
	// earlier batches of this request.
	leo := l.logEndLocked()
	l.overlay = l.overlay[:0]
	l.ended = l.ended[:0]
	next := leo
	for i := range infos {
		h := &infos[i].Header
		if h.ProducerID < 0 {
			next += int64(h.RecordCount)
			continue
		}
		oi := -1
		for j := range l.overlay {
			if l.overlay[j].pid == h.ProducerID {
				oi = j
				break
			}
		}
		if oi < 0 {
			e, ok := l.producers[h.ProducerID]
			if !ok {
				e = newProducerEntry()
			}
			l.overlay = append(l.overlay, overlayEntry{pid: h.ProducerID, entry: e, exists: ok})
			oi = len(l.overlay) - 1
		}
		o := &l.overlay[oi]
		if origin != originClient {
			if err := l.checkCoordinatorBatch(o, h, m, next, now); err != nil {
				return AppendResult{}, nil, false, err
			}
			next += int64(h.RecordCount)
			continue
		}
		dup, err := checkSequence(&o.entry, o.exists, h)
		if err != nil {
			return AppendResult{}, nil, false, err
		}
		if o.entry.txnFirst >= 0 && !h.IsTransactional() && dup == nil {
			return AppendResult{}, nil, false, errTxnState
		}
		if dup != nil {
			return AppendResult{
				BaseOffset:     dup.firstOff,
				LastOffset:     dup.lastOff,
				LogAppendTime:  dup.logAppendTime,
				LogStartOffset: l.logStart,
				Duplicate:      true,
			}, nil, false, nil
		}
		lat := int64(-1)
		if cfg.LogAppendTime || h.IsLogAppendTime() {
			lat = now
		}
		o.entry.push(h.ProducerEpoch, batchMeta{
			firstSeq: h.BaseSequence, lastSeq: h.LastSequence(),
			firstOff: next, lastOff: next + int64(h.LastOffsetDelta),
			logAppendTime: lat,
		}, now)
		if h.IsTransactional() && o.entry.txnFirst < 0 {
			o.entry.txnFirst = next
		}
		o.exists = true
		next += int64(h.RecordCount)
	}

	maxTs := int64(-1)
	for i := range infos {
		maxTs = max(maxTs, infos[i].MaxTimestamp)
	}
	if cfg.LogAppendTime {
		maxTs = now
	}
	roll, err := l.maybeRollLocked(int64(len(batches)), records, maxTs, now)
	if err != nil {
		// Nothing changed (a failed roll removes what it made): the
		// next append tries again, once the disk has room.
		return AppendResult{}, nil, false, errStorage("rolling a new segment", err)
	}

	// Assign offsets and stamp the headers.
	off := leo
	pos := 0
	for i := range infos {
		info := &infos[i]
		size := int(info.Size())
		b := batches[pos : pos+size]
		batch.SetBaseOffset(b, off)
		batch.SetPartitionLeaderEpoch(b, leaderEpoch)
		switch {
		case cfg.LogAppendTime || info.IsLogAppendTime():
			batch.SetLogAppendTime(b, now)
			info.MaxTimestamp = now
			if logAppendTime < 0 {
				logAppendTime = now
			}
		case info.MaxTimestamp != info.Header.MaxTimestamp:
			// Kafka stores the true maximum, whatever the client claimed.
			batch.SetMaxTimestamp(b, info.MaxTimestamp)
		}
		info.BaseOffset = off
		off += int64(info.RecordCount)
		pos += size
	}

	act := l.active()
	if err := l.writeActiveLocked(batches, "append"); err != nil {
		return AppendResult{}, roll, false, err
	}
	pos = 0
	for i := range infos {
		info := &infos[i]
		act.noteBatch(info.BaseOffset, act.size+int64(pos), info.Size(), info.MaxTimestamp, cfg.IndexIntervalBytes)
		pos += int(info.Size())
	}
	act.size += int64(len(batches))
	act.next = off
	act.dirty = true
	act.modified = now
	for _, o := range l.overlay {
		if l.producers == nil {
			l.producers = make(map[int64]producerEntry)
		}
		l.producers[o.pid] = o.entry
		if o.entry.txnFirst >= 0 {
			if l.ongoing == nil {
				l.ongoing = make(map[int64]int64)
			}
			l.ongoing[o.pid] = o.entry.txnFirst
		} else {
			delete(l.ongoing, o.pid)
		}
	}
	// Aborted transactions go to the index of the segment holding their
	// marker (the active one, after any roll).
	for _, e := range l.ended {
		e.lso = l.firstUnstableAfter(e.last)
		act.addAborted(e)
	}
	if !l.hwSet {
		l.hw = off
	}
	l.unflushed += records
	return AppendResult{
		BaseOffset:     leo,
		LastOffset:     off - 1,
		LogAppendTime:  logAppendTime,
		LogStartOffset: l.logStart,
	}, roll, l.flushDue(now), nil
}

// untearLocked truncates the active segment back to its last good
// position after a failed write.
func (l *Log) untearLocked() error {
	act := l.active()
	if err := act.wf.Truncate(act.size); err != nil {
		return errStorage("truncating a failed write", err)
	}
	l.torn = false
	return nil
}

// fail records an fsync failure: like Kafka taking a log dir offline,
// the log answers KAFKA_STORAGE_ERROR until it is reopened and recovered.
// After a failed fsync the kernel may have dropped the dirty pages, so
// nothing written since the last good fsync can be trusted.
func (l *Log) fail(err error) error {
	l.failed = fmt.Errorf("%w: %v", tributary.ErrKafkaStorageError, err)
	l.logger.Error("partition log failed", "dir", l.dir, "err", err)
	return l.failed
}

func (l *Log) flushDue(now int64) bool {
	if l.unflushed == 0 {
		return false
	}
	if l.cfg.FlushMessages > 0 && l.unflushed >= l.cfg.FlushMessages {
		return true
	}
	return l.cfg.FlushMs > 0 && l.cfg.FlushMs < math.MaxInt64 && now-l.lastFlush >= l.cfg.FlushMs
}

func (l *Log) active() *segment { return l.segs[len(l.segs)-1] }

func (l *Log) logEndLocked() int64 { return l.active().next }

// maybeRollLocked starts a new segment when the next append of size bytes
// and records records would pass segment.bytes, segment.ms, the index
// size, or the 4-byte relative offsets and positions.
//
// Like Kafka, segment.ms compares the incoming batches' timestamp with
// the first batch's, so a producer with old timestamps does not roll on
// every append; without timestamps it counts from the segment's creation.
func (l *Log) maybeRollLocked(size, records, maxTs, now int64) (*rollWork, error) {
	act := l.active()
	if act.size == 0 {
		return nil, nil
	}
	waited := now - act.created
	if act.firstTs >= 0 && maxTs >= 0 {
		waited = maxTs - act.firstTs
	}
	if act.size+size > l.cfg.SegmentBytes ||
		waited > l.cfg.SegmentMs ||
		act.indexFull(l.cfg.SegmentIndexBytes) ||
		act.next+records-1-act.base > math.MaxInt32 {
		return l.rollLocked(now)
	}
	return nil, nil
}

// rollWork is what a roll leaves to do outside mu (under appendMu): the
// producer snapshot at the new segment's base, and the flush that makes
// the rolled segment durable and moves the recovery point past it.
type rollWork struct {
	end  int64
	snap []byte
}

// rollLocked closes the active segment to appends and starts a new one at
// the log end. The caller runs afterRoll on the result once mu is
// released, under appendMu.
func (l *Log) rollLocked(now int64) (*rollWork, error) {
	act := l.active()
	act.maybeAppendTime()
	if err := act.persistIndexes(false); err != nil {
		return nil, err
	}
	s, err := createSegment(l.fs, l.files, l.dir, act.next, now)
	if err != nil {
		return nil, err
	}
	act.unpin()
	l.segs = append(l.segs, s)
	l.dirDirty = true
	return &rollWork{end: s.base, snap: encodeSnapshot(l.producers)}, nil
}

// afterRoll writes the roll's producer snapshot and flushes, as Kafka
// flushes a rolled segment: after a crash, recovery then starts at the
// new segment instead of rescanning the log. Failures are logged; a
// failed fsync fails the log.
func (l *Log) afterRoll(w *rollWork) {
	// The flush first: the snapshot's directory fsync would otherwise
	// publish the new segment while the rolled one's tail is unsynced.
	if err := l.flush(); err != nil {
		l.logger.Warn("flushing a rolled segment failed", "dir", l.dir, "err", err)
		return
	}
	if err := l.publishSnapshot(w.end, w.snap); err != nil {
		l.logger.Warn("producer snapshot failed", "dir", l.dir, "err", err)
	}
	if err := l.CheckpointRecoveryPoint(); err != nil {
		l.logger.Warn("recovery point checkpoint failed", "dir", l.dir, "err", err)
	}
}

// publishSnapshot writes the producer state as of end durably and keeps
// only the newest two snapshots. The list of snapshots lives in memory:
// listing the directory at every roll made each roll slower than the
// last.
func (l *Log) publishSnapshot(end int64, snap []byte) error {
	if err := publishFile(l.fs, snapshotPath(l.dir, end), snap); err != nil {
		return err
	}
	l.mu.Lock()
	offs := l.snapshots
	if n := len(offs); n == 0 || offs[n-1] < end {
		offs = append(offs, end)
	}
	var drop []int64
	if n := len(offs); n > 2 {
		drop = append(drop, offs[:n-2]...)
		offs = append(offs[:0], offs[n-2:]...)
	}
	l.snapshots = offs
	if len(drop) > 0 {
		l.dirDirty = true
	}
	l.mu.Unlock()
	for _, off := range drop {
		l.fs.Remove(snapshotPath(l.dir, off))
	}
	return nil
}

// LogStartOffset is the first offset that may be read.
func (l *Log) LogStartOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.logStart
}

// LogEndOffset is the next offset to be written.
func (l *Log) LogEndOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.logEndLocked()
}

// HighWatermark is what consumers may read below. Until SetHighWatermark
// is first called (replication), every append moves it to the log end:
// a single replica commits what it writes. Open starts it at the log end.
func (l *Log) HighWatermark() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hw
}

// SetHighWatermark moves the high watermark (replication); it never goes
// past the log end offset. From the first call on, appends no longer move
// it.
func (l *Log) SetHighWatermark(hw int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hwSet = true
	l.hw = min(max(hw, l.logStart), l.logEndLocked())
}

// Stats is a consistent snapshot of a log's offsets and size, taken
// under one lock: metrics and the console read it for every partition.
type Stats struct {
	LogStart, LogEnd, HighWatermark, Size int64
	LastStable                            int64 // the last stable offset
	Segments                              int
}

// Stats returns the log's Stats.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := Stats{LogStart: l.logStart, LogEnd: l.logEndLocked(), HighWatermark: l.hw, LastStable: l.lsoLocked(), Segments: len(l.segs)}
	for _, s := range l.segs {
		st.Size += s.size
	}
	return st
}

// Size is the bytes of all segments.
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, s := range l.segs {
		n += s.size
	}
	return n
}

// FileSlice is a byte range of a segment file, handed to the socket
// without copying (sendfile when File has a descriptor). The FileCache
// keeps File open for FileLease after Read, and a deleted segment's file
// stays open until file.delete.delay.ms, so a slice remains readable
// while a response is written.
type FileSlice struct {
	File vfs.File
	Pos  int64
	Len  int64
}

// Read returns whole batches starting with the batch that contains
// offset, all below maxOffset (pass the high watermark for consumers),
// totalling at most maxBytes — except that when minOne is set the first
// batch is returned whole even if it is larger (KIP-74). A read never
// crosses a segment boundary; callers loop for more. An offset below the
// log start or above the end offset gives ErrOffsetOutOfRange; an offset
// equal to maxOffset gives an empty slice.
//
// A batch that straddles maxOffset is not returned (a high watermark set
// by replication always falls between batches).
func (l *Log) Read(offset, maxOffset int64, maxBytes int32, minOne bool) (FileSlice, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return FileSlice{}, errClosed
	}
	if offset < l.logStart || offset > l.logEndLocked() {
		return FileSlice{}, tributary.ErrOffsetOutOfRange
	}
	if offset >= maxOffset {
		return FileSlice{}, nil
	}
	si := l.segmentFor(offset)
	for ; si < len(l.segs); si++ {
		s := l.segs[si]
		if s.base >= maxOffset {
			return FileSlice{}, nil
		}
		start, first, found, err := l.sc.locate(s, offset)
		if err != nil {
			return FileSlice{}, l.readErr(s, err)
		}
		if !found {
			continue // offset falls past this segment's end (a gap)
		}
		if first.LastOffset() >= maxOffset {
			return FileSlice{}, nil
		}
		end, err := l.readEnd(s, start, maxOffset, int64(max(maxBytes, 0)))
		if err != nil {
			return FileSlice{}, l.readErr(s, err)
		}
		if end == start && minOne {
			end = start + first.Size()
		}
		f, err := s.cf.acquire()
		if err != nil {
			return FileSlice{}, l.readErr(s, err)
		}
		s.cf.release(true) // leased: open while the response is written
		if end == start {
			return FileSlice{File: f, Pos: start}, nil
		}
		return FileSlice{File: f, Pos: start, Len: end - start}, nil
	}
	return FileSlice{}, nil
}

// readErr classifies a failed read of s: damaged bytes (a header that
// does not parse, or damage marked at Open) answer CORRUPT_MESSAGE, as
// Kafka's fetch does for a CorruptRecordException, and are logged as an
// error once per segment; anything else (EMFILE, EIO) is
// KAFKA_STORAGE_ERROR for this request only.
func (l *Log) readErr(s *segment, err error) error {
	if errors.Is(err, tributary.ErrCorruptMessage) || errors.Is(err, tributary.ErrUnsupportedForMessageFormat) {
		if !s.corruptLogged {
			s.corruptLogged = true
			l.logger.Error("corrupt batch in log segment: reads of it fail", "segment", s.path, "err", err)
		}
		return fmt.Errorf("%w: %s: %v", tributary.ErrCorruptMessage, s.path, err)
	}
	return errStorage("reading segment", err)
}

// readEnd returns the end of the longest run of whole batches from start
// that stays below maxOffset and within maxBytes. The offset index jumps
// over most of the run, so only the batches near its end are scanned.
func (l *Log) readEnd(s *segment, start, maxOffset, maxBytes int64) (int64, error) {
	limit := min(start+maxBytes, s.size)
	if s.corruptAt >= 0 {
		limit = min(limit, s.corruptAt)
	}
	if s.next <= maxOffset && limit == s.size {
		return s.size, nil
	}
	pos := start
	// Entries are at batch starts with ascending offsets and positions:
	// every batch before an entry with pos <= limit and base <= maxOffset
	// lies wholly inside both bounds.
	lo, hi := 0, len(s.idx)
	for lo < hi {
		m := (lo + hi) / 2
		e := s.idx[m]
		if int64(e.pos) <= limit && s.base+int64(e.rel) <= maxOffset {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo > 0 && int64(s.idx[lo-1].pos) > pos {
		pos = int64(s.idx[lo-1].pos)
	}
	for pos < limit {
		h, err := l.sc.header(s, pos)
		if err != nil {
			return 0, err
		}
		if h.LastOffset() >= maxOffset || pos+h.Size() > limit {
			break
		}
		pos += h.Size()
	}
	return pos, nil
}

// segmentFor is the index of the segment holding offset: the last one
// whose base is at or below it.
func (l *Log) segmentFor(offset int64) int {
	lo, hi := 0, len(l.segs)
	for lo < hi {
		m := (lo + hi) / 2
		if l.segs[m].base <= offset {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return max(lo-1, 0)
}

// OffsetForTimestamp returns the first offset whose record timestamp is
// at or after ts, with that timestamp, searching below maxOffset; ok is
// false when there is none.
func (l *Log) OffsetForTimestamp(ts, maxOffset int64) (offset, timestamp int64, ok bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, 0, false, errClosed
	}
	for _, s := range l.segs {
		if s.base >= maxOffset {
			break
		}
		if s.maxTs < ts || s.next <= l.logStart {
			continue
		}
		// Every batch up to a time entry has maxTimestamp at most the
		// entry's: start from the last entry below ts.
		startOff := max(s.base, l.logStart)
		for _, e := range s.tidx {
			if e.ts >= ts {
				break
			}
			startOff = max(startOff, s.base+int64(e.rel))
		}
		pos, _, found, err := l.sc.locate(s, startOff)
		if err != nil {
			return 0, 0, false, l.readErr(s, err)
		}
		for found && pos < s.size {
			h, err := l.sc.header(s, pos)
			if err != nil {
				return 0, 0, false, l.readErr(s, err)
			}
			if h.BaseOffset >= maxOffset {
				return 0, 0, false, nil
			}
			if h.MaxTimestamp >= ts && h.LastOffset() >= l.logStart {
				off, rts, hit, err := l.findInBatch(s, pos, &h, func(off, rts int64) bool {
					return rts >= ts && off >= l.logStart && off < maxOffset
				})
				if err != nil {
					return 0, 0, false, err
				}
				if hit {
					return off, rts, true, nil
				}
			}
			pos += h.Size()
		}
	}
	return 0, 0, false, nil
}

// findInBatch reads the batch at pos and returns the first record that
// satisfies match.
func (l *Log) findInBatch(s *segment, pos int64, h *batch.Header, match func(off, ts int64) bool) (int64, int64, bool, error) {
	b, err := l.readBatch(s, pos, h.Size())
	if err != nil {
		return 0, 0, false, l.readErr(s, err)
	}
	p := batch.GetBuffer()
	defer batch.PutBuffer(p)
	// The broker decodes this batch itself, so it checks what a
	// client would: damage is reported here, not served as records.
	if batch.ComputeCRC(b) != h.CRC {
		return 0, 0, false, l.readErr(s, batch.ErrBadCRC)
	}
	region, err := batch.RecordsRegion(b, (*p)[:0], l.cfg.decompressLimit())
	if err != nil {
		return 0, 0, false, err
	}
	it := batch.NewRecords(region, h.RecordCount)
	var r batch.Record
	for it.Next(&r) {
		off := h.BaseOffset + int64(r.OffsetDelta)
		ts := h.BaseTimestamp + r.TimestampDelta
		if h.IsLogAppendTime() {
			ts = h.MaxTimestamp
		}
		if match(off, ts) {
			return off, ts, true, nil
		}
	}
	return 0, 0, false, it.Err()
}

func (l *Log) readBatch(s *segment, pos, size int64) ([]byte, error) {
	if int64(cap(l.readBuf)) < size {
		l.readBuf = make([]byte, size)
	}
	b := l.readBuf[:size]
	if _, err := s.readAt(b, pos); err != nil {
		return nil, err
	}
	if int64(cap(l.readBuf)) > 8<<20 {
		l.readBuf = nil // do not pin a rare huge batch
	}
	return b, nil
}

// MaxTimestamp returns the offset and timestamp of the record with the
// largest timestamp below maxOffset (ListOffsets -3); ok is false for an
// empty log.
func (l *Log) MaxTimestamp(maxOffset int64) (offset, timestamp int64, ok bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, 0, false, errClosed
	}
	var best struct {
		seg *segment
		pos int64
		ts  int64
		h   batch.Header
	}
	best.ts = math.MinInt64
	consider := func(s *segment, pos int64, h batch.Header) {
		if h.MaxTimestamp > best.ts {
			best.seg, best.pos, best.ts, best.h = s, pos, h.MaxTimestamp, h
		}
	}
	for _, s := range l.segs {
		if s.base >= maxOffset {
			break
		}
		if s.next <= l.logStart || s.size == 0 {
			continue
		}
		if s.next <= maxOffset && s.base >= l.logStart && s.maxTsOff >= 0 {
			// The segment's own maximum is below every bound.
			if s.maxTs > best.ts {
				pos, h, found, err := l.sc.locate(s, s.maxTsOff)
				if err != nil {
					return 0, 0, false, l.readErr(s, err)
				}
				if found {
					consider(s, pos, h)
				}
			}
			continue
		}
		for pos := int64(0); pos < s.size; {
			h, err := l.sc.header(s, pos)
			if err != nil {
				return 0, 0, false, l.readErr(s, err)
			}
			if h.LastOffset() >= maxOffset {
				break
			}
			if h.LastOffset() >= l.logStart {
				consider(s, pos, h)
			}
			pos += h.Size()
		}
	}
	if best.seg == nil {
		return 0, 0, false, nil
	}
	off, ts, hit, err := l.findInBatch(best.seg, best.pos, &best.h, func(off, ts int64) bool {
		return ts == best.ts && off >= l.logStart
	})
	if err != nil {
		return 0, 0, false, err
	}
	if !hit {
		// Records below the log start carried the maximum: answer
		// with the batch's first readable offset.
		return max(best.h.BaseOffset, l.logStart), best.ts, true, nil
	}
	return off, ts, true, nil
}

// DeleteRecordsBefore moves the log start offset to offset (DeleteRecords)
// and persists it: it returns only once the new log start offset is
// durable (checkpoint fsynced and published). Whole segments below it are
// deleted. offset must not be above the last stable offset (data of an
// open transaction stays): ErrOffsetOutOfRange otherwise.
func (l *Log) DeleteRecordsBefore(offset int64) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return errClosed
	}
	if offset > l.lsoLocked() || offset < 0 {
		l.mu.Unlock()
		return tributary.ErrOffsetOutOfRange
	}
	if offset <= l.logStart {
		l.mu.Unlock()
		return l.CheckpointLogStartOffset() // an earlier call may still be unwritten
	}
	l.logStart = offset
	l.truncateEpochsFromStartLocked(l.logStart)
	l.deleteSegmentsLocked(func(s *segment) bool { return s.next <= l.logStart }, l.nowMs())
	l.mu.Unlock()
	if err := l.CheckpointLogStartOffset(); err != nil {
		return errStorage("persisting the log start offset", err)
	}
	// The epoch file may lag the log start (Open trims it there), so it
	// is written after the log start offset, which must be durable.
	if err := l.checkpointEpochs(); err != nil {
		return err
	}
	return nil
}

// EnforceRetention deletes whole non-active segments past retention.ms or
// beyond retention.bytes and rolls a segment that is older than
// segment.ms. The broker calls it every log.retention.check.interval.ms.
//
// It also expires producers idle past producer.id.expiration.ms, fsyncs
// when flush.ms is due, and closes and removes segment files whose
// file.delete.delay.ms has passed. A moved log start offset is written
// by CheckpointLogStartOffset: deleted segments take their offsets with
// them, so a lost checkpoint cannot expose deleted data.
func (l *Log) EnforceRetention() error {
	l.appendMu.Lock() // a roll here must not interleave with an append's
	defer l.appendMu.Unlock()
	roll, flushNow, err := l.enforceRetentionLocked()
	if roll != nil {
		l.afterRoll(roll)
	}
	if err != nil {
		return err
	}
	l.mu.Lock()
	dirDirty := l.dirDirty && !l.closed
	l.mu.Unlock()
	if flushNow || dirDirty {
		// Publishes the .deleted renames too (directory fsync).
		if err := l.flush(); err != nil {
			return err
		}
	}
	// Deleted segments may have trimmed the epoch cache (lazily
	// published: Open trims a file that is behind the log start).
	return l.checkpointEpochs()
}

func (l *Log) enforceRetentionLocked() (*rollWork, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, false, errClosed
	}
	if l.failed != nil {
		return nil, false, l.failed
	}
	now := l.nowMs()
	l.deleteSegmentsLocked(func(s *segment) bool { return s.next <= l.logStart }, now)
	// By the broker's clock here: record timestamps may be far in the
	// past, and rolling on them would roll after every append.
	var roll *rollWork
	if act := l.active(); act.size > 0 && now-act.created > l.cfg.SegmentMs {
		var err error
		if roll, err = l.rollLocked(now); err != nil {
			return nil, false, errStorage("rolling a new segment", err)
		}
	}
	if ms := l.cfg.RetentionMs; ms >= 0 {
		l.deleteSegmentsLocked(func(s *segment) bool { return now-s.retentionTs() > ms }, now)
	}
	if rb := l.cfg.RetentionBytes; rb >= 0 {
		var total int64
		for _, s := range l.segs {
			total += s.size
		}
		excess := total - rb
		l.deleteSegmentsLocked(func(s *segment) bool {
			if excess-s.size < 0 {
				return false
			}
			excess -= s.size
			return true
		}, now)
	}
	l.expireProducersLocked(now)
	l.finishDeletesLocked(now, false)
	return roll, l.flushDue(now), nil
}

// deleteSegmentsLocked deletes the oldest non-active segments while
// pred holds, and moves the log start past them. Files are renamed
// .deleted now (made durable by the next flush's directory fsync) and
// removed after file.delete.delay.ms, so FileSlices handed out before
// stay readable.
func (l *Log) deleteSegmentsLocked(pred func(*segment) bool, now int64) {
	n := 0
	// Nothing at or past the last stable offset goes: an open
	// transaction's records must reach its commit or abort.
	lso := l.lsoLocked()
	for n < len(l.segs)-1 && l.segs[n+1].base <= lso && pred(l.segs[n]) {
		n++
	}
	if n == 0 {
		return
	}
	gone := l.segs[:n]
	l.segs = append([]*segment(nil), l.segs[n:]...)
	l.logStart = max(l.logStart, l.segs[0].base)
	// In memory only: the epoch file may keep entries below the log
	// start (Open trims them); the next checkpointEpochs drops them.
	l.truncateEpochsFromStartLocked(l.logStart)
	for _, s := range gone {
		l.retireLocked(s, now, false)
	}
	l.finishDeletesLocked(now, false)
}

// retireLocked renames s's files .deleted and queues their removal after
// file.delete.delay.ms. A segment the cleaner replaced (unique) gets a
// name of its own first: the cleaned segment that replaces it has the
// same base, and may be replaced again before the delay is over.
func (l *Log) retireLocked(s *segment, now int64, unique bool) {
	from := s.path
	if unique {
		s.path = l.retiredName(s)
	}
	for _, ext := range segmentExts {
		if err := l.fs.Rename(from+ext, s.path+ext+deletedSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.logger.Warn("renaming deleted segment", "file", from+ext, "err", err)
		}
	}
	s.cf.rename(s.path + ".log" + deletedSuffix)
	l.pending = append(l.pending, pendingDelete{seg: s, deadline: now + l.cfg.FileDeleteDelayMs})
	l.dirDirty = true
}

const deletedSuffix = ".deleted"

// finishDeletesLocked closes and removes deleted segments whose delay has
// passed (all of them when force is set).
func (l *Log) finishDeletesLocked(now int64, force bool) {
	for len(l.pending) > 0 && (force || now >= l.pending[0].deadline) {
		l.removeDeleted(l.pending[0].seg)
		l.pending = l.pending[1:]
	}
	if len(l.pending) == 0 {
		l.pending = nil
	}
}

func (l *Log) removeDeleted(s *segment) {
	s.cf.drop()
	for _, ext := range segmentExts {
		l.fs.Remove(s.path + ext + deletedSuffix)
	}
	l.dirDirty = true
}

// Flush fsyncs everything appended so far and advances the recovery
// point. The fsyncs run outside mu: reads and the high watermark stay
// available while the disk is slow.
func (l *Log) Flush() error {
	return l.flush()
}

// flush fsyncs every dirty segment (data, then index files that grew)
// and, when entries changed, the directory; then it moves the in-memory
// recovery point to the log end it saw. The recovery-point checkpoint
// file follows on CheckpointRecoveryPoint (periodic, at roll, at Close).
func (l *Log) flush() error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	return l.flushHeld()
}

// flushHeld is flush with flushMu held.
func (l *Log) flushHeld() error {
	type job struct {
		s         *segment
		f         vfs.File
		idx, tidx bool
		txn       bool
		nIdx      int
		nTidx     int
		nTxn      int
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return errClosed
	}
	if l.failed != nil {
		l.mu.Unlock()
		return l.failed
	}
	end := l.logEndLocked()
	var jobs []job
	var err error
	for _, s := range l.segs {
		if !s.dirty {
			continue
		}
		if err = s.persistIndexes(false); err != nil {
			break
		}
		f, aerr := s.cf.acquire()
		if aerr != nil {
			// Out of descriptors, say: nothing is lost yet, so this
			// flush fails without failing the log.
			for _, j := range jobs {
				j.s.dirty = true
				j.s.cf.release(false)
			}
			l.mu.Unlock()
			return errStorage("flush", aerr)
		}
		s.dirty = false
		jobs = append(jobs, job{s: s, f: f, idx: s.idxSynced != s.idxOnDisk, tidx: s.tidxSynced != s.tidxOnDisk,
			txn: s.txnSynced != s.txnOnDisk, nIdx: s.idxOnDisk, nTidx: s.tidxOnDisk, nTxn: s.txnOnDisk})
	}
	dirDirty := l.dirDirty
	l.dirDirty = false
	unflushed := l.unflushed
	l.unflushed = 0
	l.mu.Unlock()

	if err == nil {
		for _, j := range jobs {
			if err = j.f.Sync(); err != nil {
				break
			}
			if err = syncIndexes(l.fs, j.s.path, j.idx, j.tidx, j.txn); err != nil && !errors.Is(err, os.ErrNotExist) {
				break
			}
			err = nil
		}
	}
	if err == nil && dirDirty {
		// New segments' and renamed files' entries. Not on every
		// flush: with flush.messages=1 that would double the fsyncs
		// of an append, and the active segment's entry was synced by
		// the flush after the roll (or the Open) that created it.
		err = l.fs.SyncDir(l.dir)
	}
	for _, j := range jobs {
		j.s.cf.release(false)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		for _, j := range jobs {
			j.s.dirty = true
		}
		l.dirDirty = l.dirDirty || dirDirty
		l.unflushed += unflushed
		if l.closed {
			return errStorage("flush", err)
		}
		return l.fail(err)
	}
	for _, j := range jobs {
		j.s.idxSynced, j.s.tidxSynced = max(j.s.idxSynced, j.nIdx), max(j.s.tidxSynced, j.nTidx)
		if j.txn && j.s.txnOnDisk == j.nTxn {
			j.s.txnSynced = j.nTxn
		}
	}
	l.recoveryPoint = max(l.recoveryPoint, end)
	l.lastFlush = l.nowMs()
	return nil
}

// CheckpointRecoveryPoint writes the recovery point to its checkpoint
// file when it moved since the last write. The broker calls it every
// log.flush.offset.checkpoint.interval.ms; rolls and Close call it too.
// An unclean Open rescans only the log past the checkpointed point.
func (l *Log) CheckpointRecoveryPoint() error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	return l.checkpointRecoveryPointHeld()
}

// checkpointRecoveryPointHeld is CheckpointRecoveryPoint with flushMu held.
func (l *Log) checkpointRecoveryPointHeld() error {
	l.mu.Lock()
	rp, closed := l.recoveryPoint, l.closed
	l.mu.Unlock()
	if closed || rp == l.rpCkpt {
		return nil
	}
	if err := writeCheckpointFS(l.fs, dirFile(l.dir, recoveryPointFile), rp); err != nil {
		return errStorage("recovery point checkpoint", err)
	}
	l.rpCkpt = rp
	return nil
}

// CheckpointLogStartOffset writes the log start offset to its checkpoint
// file when it moved since the last write. The broker calls it every
// log.flush.start.offset.checkpoint.interval.ms; DeleteRecordsBefore and
// Close call it too.
func (l *Log) CheckpointLogStartOffset() error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	return l.checkpointLogStartHeld()
}

// checkpointLogStartHeld is CheckpointLogStartOffset with flushMu held.
func (l *Log) checkpointLogStartHeld() error {
	l.mu.Lock()
	lso, closed := l.logStart, l.closed
	l.mu.Unlock()
	if closed || lso == l.lsoCkpt {
		return nil
	}
	if err := writeCheckpointFS(l.fs, dirFile(l.dir, logStartFile), lso); err != nil {
		return errStorage("log start offset checkpoint", err)
	}
	l.lsoCkpt = lso
	return nil
}

// ProducerState reports what the log knows of a producer id, for
// InitProducerId epoch checks: the newest epoch seen and whether it is
// known at all.
func (l *Log) ProducerState(producerID int64) (epoch int16, known bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.producers[producerID]
	return e.epoch, ok
}
