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
}

// Log is one partition's log: a directory of segments named by base
// offset, each with .log, .index and .timeindex files, plus producer-state
// snapshots. All methods are safe for concurrent use.
//
// One mutex (mu) guards everything below it; no other lock is taken while
// it is held.
type Log struct {
	dir    string
	now    func() time.Time
	logger *slog.Logger

	mu            sync.Mutex
	cfg           Config
	segs          []*segment // ascending base offsets; the last is active
	logStart      int64
	hw            int64
	hwSet         bool // SetHighWatermark was used: appends stop moving hw
	recoveryPoint int64
	producers     map[int64]producerEntry
	unflushed     int64 // records appended since the last fsync
	lastFlush     int64 // ms
	pending       []pendingDelete
	closed        bool
	failed        error // set by a failed write: the log refuses further appends

	sc      *scanner
	readBuf []byte         // whole batches read for timestamp lookups and recovery
	infos   []batch.Info   // per-batch scratch of one Append
	overlay []overlayEntry // producer state changes of one Append
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
	errClosed = fmt.Errorf("%w: log is closed", tributary.ErrKafkaStorageError)
	errEmpty  = fmt.Errorf("%w: no record batches", tributary.ErrCorruptMessage)
	errFrame  = fmt.Errorf("%w: batch length does not fit the request", tributary.ErrCorruptMessage)
	errBase   = fmt.Errorf("%w: produced batch must have base offset 0", tributary.ErrInvalidRecord)
	errNoRecs = fmt.Errorf("%w: batch has no records", tributary.ErrInvalidRecord)
	errDelta  = fmt.Errorf("%w: lastOffsetDelta does not match the record count", tributary.ErrInvalidRecord)
	errCtrl   = fmt.Errorf("%w: clients cannot produce control batches", tributary.ErrInvalidRecord)
	errTxnPID = fmt.Errorf("%w: transactional batch without a producer id", tributary.ErrInvalidRecord)
	errBig    = fmt.Errorf("%w: batch exceeds max.message.bytes", tributary.ErrMessageTooLarge)
)

func (l *Log) nowMs() int64 { return l.now().UnixMilli() }

func dirFile(dir, name string) string { return filepath.Join(dir, name) }

// SetConfig applies changed topic configs (dynamic alter).
func (l *Log) SetConfig(cfg Config) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg = cfg.sanitized()
}

// Close flushes, writes a producer-state snapshot and the clean-shutdown
// marker, and closes every file.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	var err error
	if l.failed == nil {
		act := l.active()
		act.maybeAppendTime()
		act.dirty = true // the final time entry must reach the file
		err = l.flushLocked()
		if err == nil {
			err = l.writeSnapshotLocked(true)
		}
		if err == nil {
			err = writeFileAtomic(dirFile(l.dir, cleanShutdownFile), nil, true)
		}
		if err == nil {
			err = syncDir(l.dir)
		}
	}
	l.closeFilesLocked()
	return err
}

// closeFilesLocked closes every file and finishes pending deletions now.
func (l *Log) closeFilesLocked() {
	l.closed = true
	for _, s := range l.segs {
		s.f.Close()
	}
	for _, p := range l.pending {
		removeDeleted(p.seg)
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
	return os.RemoveAll(l.dir)
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

	// Validate every batch before changing anything.
	infos := l.infos[:0]
	limit := l.cfg.decompressLimit()
	var records int64
	for pos := 0; pos < len(batches); {
		size := batch.SizeAt(batches[pos:])
		if size < 0 || size > int64(len(batches)-pos) {
			return AppendResult{}, errFrame
		}
		if size > int64(l.cfg.MaxMessageBytes) {
			return AppendResult{}, errBig
		}
		b := batches[pos : pos+int(size)]
		info, err := batch.Validate(b, limit)
		if err != nil {
			return AppendResult{}, err
		}
		switch {
		case info.BaseOffset != 0:
			return AppendResult{}, errBase
		case info.RecordCount == 0:
			return AppendResult{}, errNoRecs
		case info.RecordCount != info.LastOffsetDelta+1:
			return AppendResult{}, errDelta
		case info.IsControl():
			return AppendResult{}, errCtrl
		case info.IsTransactional() && info.ProducerID < 0:
			return AppendResult{}, errTxnPID
		}
		records += int64(info.RecordCount)
		infos = append(infos, info)
		pos += int(size)
	}
	l.infos = infos

	logAppendTime := int64(-1)
	if l.cfg.LogAppendTime {
		logAppendTime = now
	}

	// Producer id, epoch and sequence, against the stored state plus the
	// earlier batches of this request.
	leo := l.logEndLocked()
	l.overlay = l.overlay[:0]
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
			l.overlay = append(l.overlay, overlayEntry{pid: h.ProducerID, entry: e, exists: ok})
			oi = len(l.overlay) - 1
		}
		o := &l.overlay[oi]
		dup, err := checkSequence(&o.entry, o.exists, h)
		if err != nil {
			return AppendResult{}, err
		}
		if dup != nil {
			return AppendResult{
				BaseOffset:     dup.firstOff,
				LastOffset:     dup.lastOff,
				LogAppendTime:  dup.logAppendTime,
				LogStartOffset: l.logStart,
				Duplicate:      true,
			}, nil
		}
		lat := int64(-1)
		if l.cfg.LogAppendTime || h.IsLogAppendTime() {
			lat = now
		}
		o.entry.push(h.ProducerEpoch, batchMeta{
			firstSeq: h.BaseSequence, lastSeq: h.LastSequence(),
			firstOff: next, lastOff: next + int64(h.LastOffsetDelta),
			logAppendTime: lat,
		}, now)
		o.exists = true
		next += int64(h.RecordCount)
	}

	maxTs := int64(-1)
	for i := range infos {
		maxTs = max(maxTs, infos[i].MaxTimestamp)
	}
	if l.cfg.LogAppendTime {
		maxTs = now
	}
	if err := l.maybeRollLocked(int64(len(batches)), records, maxTs, now); err != nil {
		return AppendResult{}, l.fail(err)
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
		case l.cfg.LogAppendTime || info.IsLogAppendTime():
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
	if _, err := act.f.WriteAt(batches, act.size); err != nil {
		// The file may hold part of the write; refuse everything
		// until a restart recovers the segment.
		return AppendResult{}, l.fail(err)
	}
	pos = 0
	for i := range infos {
		info := &infos[i]
		act.noteBatch(info.BaseOffset, act.size+int64(pos), info.Size(), info.MaxTimestamp, l.cfg.IndexIntervalBytes)
		pos += int(info.Size())
	}
	act.size += int64(len(batches))
	act.next = off
	act.dirty = true
	for _, o := range l.overlay {
		if l.producers == nil {
			l.producers = make(map[int64]producerEntry)
		}
		l.producers[o.pid] = o.entry
	}
	if !l.hwSet {
		l.hw = off
	}
	l.unflushed += records
	if l.flushDue(now) {
		if err := l.flushLocked(); err != nil {
			return AppendResult{}, l.fail(err)
		}
	}
	return AppendResult{
		BaseOffset:     leo,
		LastOffset:     off - 1,
		LogAppendTime:  logAppendTime,
		LogStartOffset: l.logStart,
	}, nil
}

// fail records an I/O failure: like Kafka taking a log dir offline, the
// log answers KAFKA_STORAGE_ERROR until it is reopened and recovered.
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
func (l *Log) maybeRollLocked(size, records, maxTs, now int64) error {
	act := l.active()
	if act.size == 0 {
		return nil
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
	return nil
}

// rollLocked closes the active segment to appends and starts a new one at
// the log end, taking a producer-state snapshot there.
func (l *Log) rollLocked(now int64) error {
	act := l.active()
	act.maybeAppendTime()
	if err := act.persistIndexes(false); err != nil {
		return err
	}
	s, err := createSegment(l.dir, act.next, now)
	if err != nil {
		return err
	}
	l.segs = append(l.segs, s)
	if err := l.writeSnapshotLocked(false); err != nil {
		l.logger.Warn("producer snapshot failed", "dir", l.dir, "err", err)
	}
	return nil
}

// writeSnapshotLocked writes the producer state as of the log end and
// keeps only the newest two snapshots.
func (l *Log) writeSnapshotLocked(sync bool) error {
	end := l.logEndLocked()
	if err := writeFileAtomic(snapshotPath(l.dir, end), encodeSnapshot(l.producers), sync); err != nil {
		return err
	}
	offs, err := listSnapshots(l.dir)
	if err != nil {
		return err
	}
	for i := 0; i < len(offs)-2; i++ {
		os.Remove(snapshotPath(l.dir, offs[i]))
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
	Segments                              int
}

// Stats returns the log's Stats.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := Stats{LogStart: l.logStart, LogEnd: l.logEndLocked(), HighWatermark: l.hw, Segments: len(l.segs)}
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
// without copying (sendfile). File stays open at least until
// file.delete.delay.ms after its segment is deleted, so a slice remains
// readable while a response is written.
type FileSlice struct {
	File *os.File
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
			return FileSlice{}, l.readErr(err)
		}
		if !found {
			continue // offset falls past this segment's end (a gap)
		}
		if first.LastOffset() >= maxOffset {
			return FileSlice{}, nil
		}
		end, err := l.readEnd(s, start, maxOffset, int64(max(maxBytes, 0)))
		if err != nil {
			return FileSlice{}, l.readErr(err)
		}
		if end == start && minOne {
			end = start + first.Size()
		}
		if end == start {
			return FileSlice{File: s.f, Pos: start}, nil
		}
		return FileSlice{File: s.f, Pos: start, Len: end - start}, nil
	}
	return FileSlice{}, nil
}

func (l *Log) readErr(err error) error {
	return fmt.Errorf("%w: reading segment: %v", tributary.ErrKafkaStorageError, err)
}

// readEnd returns the end of the longest run of whole batches from start
// that stays below maxOffset and within maxBytes. The offset index jumps
// over most of the run, so only the batches near its end are scanned.
func (l *Log) readEnd(s *segment, start, maxOffset, maxBytes int64) (int64, error) {
	limit := min(start+maxBytes, s.size)
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
			return 0, 0, false, l.readErr(err)
		}
		for found && pos < s.size {
			h, err := l.sc.header(s, pos)
			if err != nil {
				return 0, 0, false, l.readErr(err)
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
		return 0, 0, false, l.readErr(err)
	}
	p := batch.GetBuffer()
	defer batch.PutBuffer(p)
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
	if _, err := s.f.ReadAt(b, pos); err != nil {
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
					return 0, 0, false, l.readErr(err)
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
				return 0, 0, false, l.readErr(err)
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
// and persists it; whole segments below it are deleted. offset must not be
// above the high watermark (the caller checks and answers
// OFFSET_OUT_OF_RANGE).
func (l *Log) DeleteRecordsBefore(offset int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errClosed
	}
	if offset > l.hw || offset < 0 {
		return tributary.ErrOffsetOutOfRange
	}
	if offset <= l.logStart {
		return nil
	}
	l.logStart = offset
	if err := writeCheckpoint(dirFile(l.dir, logStartFile), l.logStart, true); err != nil {
		return l.fail(err)
	}
	return l.deleteSegmentsLocked(func(s *segment) bool { return s.next <= l.logStart }, l.nowMs())
}

// EnforceRetention deletes whole non-active segments past retention.ms or
// beyond retention.bytes and rolls a segment that is older than
// segment.ms. The broker calls it every log.retention.check.interval.ms.
//
// It also expires producers idle past producer.id.expiration.ms, fsyncs
// when flush.ms is due, and closes and removes segment files whose
// file.delete.delay.ms has passed.
func (l *Log) EnforceRetention() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errClosed
	}
	if l.failed != nil {
		return l.failed
	}
	now := l.nowMs()
	if err := l.deleteSegmentsLocked(func(s *segment) bool { return s.next <= l.logStart }, now); err != nil {
		return err
	}
	// By the broker's clock here: record timestamps may be far in the
	// past, and rolling on them would roll after every append.
	if act := l.active(); act.size > 0 && now-act.created > l.cfg.SegmentMs {
		if err := l.rollLocked(now); err != nil {
			return l.fail(err)
		}
	}
	if ms := l.cfg.RetentionMs; ms >= 0 {
		if err := l.deleteSegmentsLocked(func(s *segment) bool { return now-s.maxTs > ms }, now); err != nil {
			return err
		}
	}
	if rb := l.cfg.RetentionBytes; rb >= 0 {
		var total int64
		for _, s := range l.segs {
			total += s.size
		}
		excess := total - rb
		if err := l.deleteSegmentsLocked(func(s *segment) bool {
			if excess-s.size < 0 {
				return false
			}
			excess -= s.size
			return true
		}, now); err != nil {
			return err
		}
	}
	for pid, e := range l.producers {
		if now-e.lastTs >= l.cfg.ProducerIDExpirationMs {
			delete(l.producers, pid)
		}
	}
	if l.flushDue(now) {
		if err := l.flushLocked(); err != nil {
			return l.fail(err)
		}
	}
	l.finishDeletesLocked(now, false)
	return nil
}

// deleteSegmentsLocked deletes the oldest non-active segments while
// pred holds, and moves the log start past them. Files are renamed
// .deleted now and removed after file.delete.delay.ms, so FileSlices
// handed out before stay readable.
func (l *Log) deleteSegmentsLocked(pred func(*segment) bool, now int64) error {
	n := 0
	for n < len(l.segs)-1 && pred(l.segs[n]) {
		n++
	}
	if n == 0 {
		return nil
	}
	gone := l.segs[:n]
	l.segs = append([]*segment(nil), l.segs[n:]...)
	if l.segs[0].base > l.logStart {
		l.logStart = l.segs[0].base
		if err := writeCheckpoint(dirFile(l.dir, logStartFile), l.logStart, true); err != nil {
			return l.fail(err)
		}
	}
	for _, s := range gone {
		for _, ext := range []string{".log", ".index", ".timeindex"} {
			if err := os.Rename(s.path+ext, s.path+ext+deletedSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				l.logger.Warn("renaming deleted segment", "file", s.path+ext, "err", err)
			}
		}
		l.pending = append(l.pending, pendingDelete{seg: s, deadline: now + l.cfg.FileDeleteDelayMs})
	}
	l.finishDeletesLocked(now, false)
	return nil
}

const deletedSuffix = ".deleted"

// finishDeletesLocked closes and removes deleted segments whose delay has
// passed (all of them when force is set).
func (l *Log) finishDeletesLocked(now int64, force bool) {
	for len(l.pending) > 0 && (force || now >= l.pending[0].deadline) {
		removeDeleted(l.pending[0].seg)
		l.pending = l.pending[1:]
	}
	if len(l.pending) == 0 {
		l.pending = nil
	}
}

func removeDeleted(s *segment) {
	s.f.Close()
	for _, ext := range []string{".log", ".index", ".timeindex"} {
		os.Remove(s.path + ext + deletedSuffix)
	}
}

// Flush fsyncs everything appended so far and advances the recovery
// point.
func (l *Log) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errClosed
	}
	if l.failed != nil {
		return l.failed
	}
	if err := l.flushLocked(); err != nil {
		return l.fail(err)
	}
	return nil
}

func (l *Log) flushLocked() error {
	for _, s := range l.segs {
		if !s.dirty {
			continue
		}
		if err := s.persistIndexes(true); err != nil {
			return err
		}
		if err := s.f.Sync(); err != nil {
			return err
		}
		s.dirty = false
	}
	if err := syncDir(l.dir); err != nil {
		return err
	}
	end := l.logEndLocked()
	if end != l.recoveryPoint {
		// The checkpoint moves only after the data it covers is durable.
		if err := writeCheckpoint(dirFile(l.dir, recoveryPointFile), end, true); err != nil {
			return err
		}
		l.recoveryPoint = end
	}
	l.unflushed = 0
	l.lastFlush = l.nowMs()
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
