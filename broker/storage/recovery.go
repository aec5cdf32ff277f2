package storage

import (
	"errors"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tributary/tributary/internal/batch"
	"github.com/tributary/tributary/internal/vfs"
)

// Open opens (creating if needed) the log in dir and recovers it: a torn
// or corrupt tail is truncated, missing or damaged indexes are rebuilt,
// producer state is loaded from the newest snapshot and replayed from the
// log after it.
//
// After a clean shutdown (Close left its marker) segments are trusted and
// only their indexes are sanity-checked. Otherwise every segment from the
// one holding the recovery point (moved by flushes: every roll flushes
// the rolled segment) is re-validated batch by batch — CRC, lengths,
// records, offsets — and the log is cut at the first bad byte, dropping
// every later segment, as Kafka's LogLoader does: that is the unflushed
// tail a crash may have torn. Damage found in a trusted segment below the
// recovery point is not a torn tail: it is logged as an error, reads of
// that range fail, and nothing is cut.
//
// Segment files are not opened here beyond what recovery reads; the
// FileCache opens them on use.
func Open(dir string, cfg Config, opts Options) (*Log, error) {
	l := &Log{dir: dir, now: opts.Now, logger: opts.Logger, cfg: cfg.sanitized(), sc: newScanner(),
		fs: opts.FS, files: opts.Files}
	if l.now == nil {
		l.now = time.Now
	}
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	if l.fs == nil {
		l.fs = vfs.Default
	}
	if l.files == nil {
		l.files = defaultCache
	}
	if err := l.fs.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	now := l.nowMs()
	bases, names, err := l.cleanDir()
	if err != nil {
		return nil, err
	}
	marker := dirFile(dir, cleanShutdownFile)
	_, statErr := l.fs.Stat(marker)
	clean := statErr == nil
	// The marker goes, durably, before anything is written, so a crash
	// (or power cut) from here on is recovered as unclean.
	if clean {
		if err := l.fs.Remove(marker); err != nil {
			return nil, err
		}
		if err := l.fs.SyncDir(dir); err != nil {
			return nil, err
		}
	}
	rp, ok := readCheckpointFS(l.fs, dirFile(dir, recoveryPointFile))
	if !ok {
		rp = 0
	}
	lso, _ := readCheckpointFS(l.fs, dirFile(dir, logStartFile))
	l.rpCkpt, l.lsoCkpt = rp, lso
	l.cleanerCkpt, _ = readCheckpointFS(l.fs, dirFile(dir, cleanerCheckpointFile))

	hasTxnIndex := map[int64]bool{}
	for _, name := range names {
		if base, ok := parseBase(name, txnIndexExt); ok {
			hasTxnIndex[base] = true
		}
	}
	for _, base := range bases {
		s := newSegment(l.fs, l.files, dir, base, now)
		if hasTxnIndex[base] {
			l.loadTxnIndex(s)
		}
		fi, err := l.fs.Stat(s.path + ".log")
		if err != nil {
			l.closeSegs()
			return nil, err
		}
		s.size = fi.Size()
		s.modified = fi.ModTime().UnixMilli()
		l.segs = append(l.segs, s)
	}
	if len(l.segs) == 0 {
		s, err := createSegment(l.fs, l.files, dir, lso, now)
		if err != nil {
			return nil, err
		}
		l.segs = append(l.segs, s)
		if err := l.fs.SyncDir(dir); err != nil {
			l.closeSegs()
			return nil, err
		}
		// A log with no segment yet has nothing a crash could have torn:
		// without this every new partition was scanned and logged as an
		// unclean recovery.
		clean = true
	}

	recoverFrom := len(l.segs)
	if !clean {
		recoverFrom = 0
		for i, s := range l.segs {
			if s.base <= rp {
				recoverFrom = i
			}
		}
	}
	for i := 0; i < recoverFrom; i++ {
		if !l.loadTrusted(i) && i == len(l.segs)-1 {
			// Only the active segment can have a torn tail after a
			// clean shutdown's marker was lost; validate it.
			recoverFrom = i
		}
	}
	for i := recoverFrom; i < len(l.segs); i++ {
		truncated, err := l.recoverSegment(l.segs[i])
		if err != nil {
			l.closeSegs()
			return nil, err
		}
		if s := l.segs[i]; !truncated && i+1 < len(l.segs) && s.next != l.segs[i+1].base {
			// The segment lost its unflushed tail while the next one's
			// directory entry reached the disk (a power cut between a
			// roll and its flush): a gap in offsets, torn like any tail.
			l.logger.Warn("log segment ends before the next one starts, truncating later segments",
				"segment", s.path, "end", s.next, "next_base", l.segs[i+1].base)
			truncated = true
		}
		if truncated {
			for _, s := range l.segs[i+1:] {
				s.cf.drop()
				for _, ext := range segmentExts {
					l.fs.Remove(s.path + ext)
				}
			}
			l.segs = l.segs[:i+1]
			l.dirDirty = true
			break
		}
	}
	if recoverFrom < len(l.segs) || !clean {
		l.logger.Info("recovered partition log", "dir", dir, "clean", clean, "from_segment", recoverFrom, "log_end", l.logEndLocked())
	}
	if err := l.active().pin(); err != nil {
		l.closeSegs()
		return nil, err
	}

	end := l.logEndLocked()
	l.logStart = min(max(lso, l.segs[0].base), end)
	l.hw = end
	l.recoveryPoint = min(rp, end)
	l.lastFlush = now
	if err := l.loadProducers(end, now, snapshotOffsets(names)); err != nil {
		l.closeSegs()
		return nil, err
	}
	if err := l.loadEpochsLocked(recoverFrom); err != nil {
		l.closeSegs()
		return nil, err
	}
	l.loadHighWatermarkLocked()
	return l, nil
}

func (l *Log) closeSegs() {
	for _, s := range l.segs {
		s.unpin()
		s.cf.drop()
	}
}

// cleanDir removes leftovers (deleted segments awaiting removal,
// temporary files, index files without their log, the files of a
// cleaning pass that did not reach its swap marker) and returns the base
// offsets of the .log files, ascending, and the names left. A swap whose
// marker exists is completed first (cleaner.go).
func (l *Log) cleanDir() ([]int64, []string, error) {
	ents, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return nil, nil, err
	}
	if slices.ContainsFunc(ents, func(n string) bool { return strings.HasSuffix(n, swapSuffix) }) {
		if err := l.finishSwaps(ents); err != nil {
			return nil, nil, err
		}
		if ents, err = l.fs.ReadDir(l.dir); err != nil {
			return nil, nil, err
		}
	}
	logs := map[int64]bool{}
	var bases []int64
	for _, name := range ents {
		if base, ok := parseBase(name, ".log"); ok {
			logs[base] = true
			bases = append(bases, base)
		}
	}
	names := ents[:0:0]
	for _, name := range ents {
		switch {
		case strings.HasSuffix(name, deletedSuffix), strings.HasSuffix(name, ".tmp"), strings.HasSuffix(name, cleanedSuffix):
			l.fs.Remove(filepath.Join(l.dir, name))
			continue
		case strings.HasSuffix(name, ".index"), strings.HasSuffix(name, ".timeindex"), strings.HasSuffix(name, txnIndexExt):
			base, ok := parseBase(strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, ".index"), ".timeindex"), txnIndexExt), "")
			if !ok || !logs[base] {
				l.fs.Remove(filepath.Join(l.dir, name))
				continue
			}
		}
		names = append(names, name)
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	return bases, names, nil
}

func parseBase(name, ext string) (int64, bool) {
	if !strings.HasSuffix(name, ext) {
		return 0, false
	}
	s := strings.TrimSuffix(name, ext)
	if len(s) != 20 {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil && v >= 0
}

// loadTrusted loads segment i without validating its batches: its
// indexes are sanity-checked and rebuilt from the batch headers when they
// fail. A segment whose headers are damaged is kept with its damage
// marked (corruptAt), reported as an error, and readable up to it; the
// later segments stay. It returns false when that happened to the last
// segment, which may instead hold a torn tail and needs recovery.
func (l *Log) loadTrusted(i int) bool {
	s := l.segs[i]
	last := i == len(l.segs)-1
	if last {
		s.next = math.MaxInt64
	} else {
		s.next = l.segs[i+1].base
	}
	if !s.loadIndexes(l.sc) {
		l.logger.Warn("rebuilding damaged or missing index", "segment", s.path)
		if err := l.rebuildFromHeaders(s); err != nil {
			if last {
				return false
			}
			l.markCorrupt(s, l.segs[i+1].base, err)
		}
		return true
	}
	if !last {
		return true
	}
	// The active segment: find its end from the last index entry on.
	pos := int64(0)
	if n := len(s.idx); n > 0 {
		pos = int64(s.idx[n-1].pos)
	}
	s.next = s.base
	if pos > 0 {
		s.next = s.base + int64(s.idx[len(s.idx)-1].rel)
	}
	s.sinceIndex = 0
	for pos < s.size {
		h, err := l.sc.header(s, pos)
		if err != nil {
			return false
		}
		if h.MaxTimestamp > s.maxTs {
			s.maxTs, s.maxTsOff = h.MaxTimestamp, h.BaseOffset
		}
		s.next = h.LastOffset() + 1
		s.sinceIndex += h.Size()
		pos += h.Size()
	}
	for _, e := range s.tidx {
		if s.base+int64(e.rel) >= s.next {
			return false
		}
	}
	if s.size > 0 {
		h, err := l.sc.header(s, 0)
		if err != nil {
			return false
		}
		s.firstTs = h.MaxTimestamp
	}
	return true
}

// markCorrupt records damage at the rebuilt end of a trusted segment (s
// holds the indexes of the batches before it): reads from there fail
// with CORRUPT_MESSAGE, and the segment keeps its offset range up to
// next, the following segment's base.
func (l *Log) markCorrupt(s *segment, next int64, err error) {
	pos := int64(0)
	if n := len(s.idx); n > 0 {
		pos = int64(s.idx[n-1].pos)
	}
	// rebuildFromHeaders stopped at the first bad header: walk to it.
	for {
		h, herr := l.sc.header(s, pos)
		if herr != nil {
			break
		}
		pos += h.Size()
	}
	s.corruptAt = pos
	s.next = next
	s.corruptLogged = true
	l.logger.Error("corrupt log segment below the recovery point: reads from this position fail; later segments kept",
		"segment", s.path, "position", pos, "size", s.size, "first_unreadable_offset", s.next, "err", err)
}

// rebuildFromHeaders recomputes a segment's indexes and timestamps from
// its batch headers.
func (l *Log) rebuildFromHeaders(s *segment) error {
	s.resetIndexes()
	for pos := int64(0); pos < s.size; {
		h, err := l.sc.header(s, pos)
		if err != nil {
			return err
		}
		s.noteBatch(h.BaseOffset, pos, h.Size(), h.MaxTimestamp, l.cfg.IndexIntervalBytes)
		s.next = h.LastOffset() + 1
		pos += h.Size()
	}
	s.maybeAppendTime()
	return s.rewriteIndexes()
}

func (s *segment) resetIndexes() {
	s.idx, s.tidx = nil, nil
	s.idxOnDisk, s.tidxOnDisk = 0, 0
	s.sinceIndex = 0
	s.maxTs, s.maxTsOff, s.firstTs = -1, -1, -1
	s.next = s.base
}

var errBadOffsets = errors.New("batch offsets out of order")

// recoverSegment validates every batch of s and rebuilds its indexes,
// truncating the file at the first torn or corrupt batch. It reports
// whether it truncated.
func (l *Log) recoverSegment(s *segment) (bool, error) {
	s.resetIndexes()
	limit := l.cfg.decompressLimit()
	pos := int64(0)
	var bad error
	for pos < s.size {
		h, err := l.sc.header(s, pos)
		if err != nil {
			bad = err
			break
		}
		// baseOffset is outside the CRC, so contiguity is its check: every
		// batch starts where the previous one ended. (Compaction, which
		// leaves gaps, will have to record where they are.)
		if h.BaseOffset != s.next || h.LastOffsetDelta < 0 || h.LastOffset()-s.base > math.MaxInt32 || pos+h.Size() > math.MaxInt32 {
			bad = errBadOffsets
			break
		}
		b, err := l.readBatch(s, pos, h.Size())
		if err != nil {
			return false, err
		}
		// The CRC is checked before decompression: a batch whose records
		// only exceed today's decompression limit (max.message.bytes
		// lowered since) is intact and must not be cut away.
		if _, err := batch.Validate(b, limit); err != nil && !errors.Is(err, batch.ErrTooLarge) {
			bad = err
			break
		}
		s.noteBatch(h.BaseOffset, pos, h.Size(), h.MaxTimestamp, l.cfg.IndexIntervalBytes)
		s.next = h.LastOffset() + 1
		pos += h.Size()
	}
	s.maybeAppendTime()
	truncated := false
	if pos < s.size {
		l.logger.Warn("found invalid batches in log segment, truncating",
			"segment", s.path, "position", pos, "size", s.size, "err", bad)
		f, err := s.cf.acquire()
		if err != nil {
			return false, err
		}
		err = f.Truncate(pos)
		s.cf.release(false)
		if err != nil {
			return false, err
		}
		s.size = pos
		l.sc.reset()
		truncated = true
	}
	s.dirty = true
	return truncated, s.rewriteIndexes()
}

// loadProducers rebuilds producer state: the newest readable snapshot at
// or below the log end, then every batch after it replayed from the log.
// Snapshots past the end (the log was truncated) are removed.
//
// Replayed producers count as active now. Kafka uses the batch
// timestamps, which can lie far in the past (producer clocks, old data)
// and would expire a producer whose retry is still in flight, turning it
// into a duplicate; keeping state one extra expiration period is cheap.
func (l *Log) loadProducers(end, now int64, offs []int64) error {
	l.producers = make(map[int64]producerEntry)
	l.ongoing = make(map[int64]int64)
	defer l.rebuildOngoingLocked()
	from := l.segs[0].base
	for i := len(offs) - 1; i >= 0; i-- {
		if offs[i] > end {
			l.fs.Remove(snapshotPath(l.dir, offs[i]))
			offs = offs[:i]
			continue
		}
		b, err := vfs.ReadFile(l.fs, snapshotPath(l.dir, offs[i]))
		if err != nil {
			continue
		}
		m, err := decodeSnapshot(b)
		if err != nil {
			l.logger.Warn("ignoring corrupt producer snapshot", "dir", l.dir, "offset", offs[i])
			continue
		}
		l.producers, from = m, offs[i]
		l.rebuildOngoingLocked() // the replay ends and opens from here
		break
	}
	for _, s := range l.segs {
		// Entries of markers the replay below sees again are rebuilt
		// by it, as are those a truncation or a torn tail took away;
		// entries of markers past the segment's end cannot be right.
		s.dropAbortedFrom(min(max(from, s.base), s.next))
		if s.next <= from {
			continue
		}
		pos := int64(0)
		if from > s.base {
			p, _, found, err := l.sc.locate(s, from)
			if errors.Is(err, errCorruptSegment) {
				continue
			}
			if err != nil {
				return err
			}
			if !found {
				continue
			}
			pos = p
		}
		for pos < s.size {
			h, err := l.sc.header(s, pos)
			if errors.Is(err, errCorruptSegment) {
				break // reported when marked; the rest is unreadable
			}
			if err != nil {
				return err
			}
			if h.BaseOffset >= from {
				var body []byte
				if h.IsControl() && h.ProducerID >= 0 {
					if body, err = l.readBatch(s, pos, h.Size()); err != nil {
						return err
					}
				}
				if e, aborted := l.replayProducerLocked(&h, body, now); aborted {
					s.addAborted(e)
				}
			}
			pos += h.Size()
		}
	}
	l.expireProducersLocked(now)
	l.snapshots = offs
	return nil
}

// loadTxnIndex reads s's .txnindex (whole, sane entries only: see
// decodeTxnIndex). A tail it dropped is rewritten at the next flush.
func (l *Log) loadTxnIndex(s *segment) {
	b, err := vfs.ReadFile(l.fs, s.path+txnIndexExt)
	if err != nil {
		return
	}
	s.txns = decodeTxnIndex(b)
	s.txnOnDisk, s.txnSynced = len(s.txns), len(s.txns)
	if len(s.txns)*txnEntrySize != len(b) {
		l.logger.Warn("dropping a damaged transaction index tail", "file", s.path+txnIndexExt,
			"size", len(b), "entries", len(s.txns))
		s.txnOnDisk, s.txnSynced = 0, -1
		s.txnDirty = true
	}
}
