package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/tributary/tributary/internal/batch"
	"github.com/tributary/tributary/internal/compress"
	"github.com/tributary/tributary/internal/vfs"
)

// Log compaction (cleanup.policy=compact), Kafka's LogCleaner for one log.
//
// The log is split at the cleaner checkpoint (cleaner-offset-checkpoint)
// into a clean tail, below it, where every key appears at most once, and
// a dirty head. A pass maps every key of the cleanable dirty head to its
// newest offset (OffsetMap, keyed by the key's xxhash), then rewrites the
// log from its start to the end of what was mapped, segment group by
// segment group, keeping a record only when it is the newest of its key,
// and moves the checkpoint to that end. Only whole segments below the
// active one, the last stable offset and the recovery point are cleaned, and
// none whose records are younger than min.compaction.lag.ms.
//
// Offsets never change: a batch keeps its base offset and lastOffsetDelta
// with some records gone (consumers read the gaps through), and a run of
// batches removed entirely is replaced by one empty batch spanning its
// offsets. The rewritten segments therefore stay contiguous, batch after
// batch, which is what recovery checks (recoverSegment); a run is split
// where the leader epoch changes, so the epoch cache rebuilt from headers
// stays right. The last batch of each producer the log still tracks is
// kept (emptied of its superseded records) so its sequence state survives.
//
// Tombstones follow KIP-534: the first pass that keeps a tombstone sets
// the delete horizon of its batch (attribute bit 6, the base timestamp
// becomes now + delete.retention.ms, record timestamp deltas are rebased
// so timestamps read the same); a later pass after the horizon drops it.
//
// Transactions follow Kafka's CleanedTransactionMetadata: the cleanable
// range ends at the last stable offset; records of aborted transactions
// (the .txnindex says which) are neither mapped nor kept; a marker stays
// while a batch of its transaction was still met in the pass, then gets a
// delete horizon like a tombstone and goes after it. An abort marker that
// stays keeps its .txnindex entry in the cleaned segment.
//
// A group is swapped in so that a crash at any point leaves the old
// segments or the new one, never a mix: the new files are written as
// <base>.log.cleaned (and .index.cleaned, .timeindex.cleaned) and
// fsynced; <base>.swap, holding the end offset of the group, is published
// (the commit point); the old segments are renamed .deleted and the
// cleaned files to their final names; the marker goes last. Open finishes
// a swap whose marker exists and discards .cleaned files without one.

// Files of the cleaner.
const (
	cleanerCheckpointFile = "cleaner-offset-checkpoint"
	cleanedSuffix         = ".cleaned"
	swapSuffix            = ".swap"
)

// cleanerHook, when set, is called at named points of a cleaning pass:
// the crash tests stop the process (or clone the in-memory disk) there.
var cleanerHook func(point string)

// SetCleanerHook installs f to be called at named points inside a
// cleaning pass ("cleaned-written", "swap-marked", "old-renamed",
// "log-renamed", "swapped", "checkpointed"). It exists for crash tests
// (the broker's subprocess tests kill themselves there); nil removes it.
func SetCleanerHook(f func(point string)) { cleanerHook = f }

func hook(point string) {
	if cleanerHook != nil {
		cleanerHook(point)
	}
}

// OffsetMap maps the hash of a key to the newest offset seen for it: an
// open-addressing table of 16-byte slots, grown on demand up to the bytes
// it was given (Kafka's log.cleaner.dedupe.buffer.size), filled to 90%.
// A 64-bit xxhash collision would make two keys one; at the sizes a
// dedupe buffer holds that is about one chance in ten million per pass
// for a million keys (Kafka accepts the same risk with MD5).
type OffsetMap struct {
	slots    []mapSlot
	n        int
	maxSlots int
}

type mapSlot struct {
	h   uint64 // 0: empty
	off int64
}

const mapSlotSize = 16

// NewOffsetMap returns a map that uses at most bufferBytes.
func NewOffsetMap(bufferBytes int64) *OffsetMap {
	return &OffsetMap{maxSlots: int(max(min(bufferBytes/mapSlotSize, math.MaxInt32), 64))}
}

// Capacity is the most keys the map takes in one pass.
func (m *OffsetMap) Capacity() int { return m.maxSlots * 9 / 10 }

func (m *OffsetMap) reset() {
	clear(m.slots)
	m.n = 0
}

func keyHash(key []byte) uint64 {
	h := xxhash.Sum64(key)
	if h == 0 {
		h = 1
	}
	return h
}

// put records off for h; it reports false when the map is full.
func (m *OffsetMap) put(h uint64, off int64) bool {
	if (m.n+1)*10 > len(m.slots)*9 {
		if len(m.slots) >= m.maxSlots {
			if i, ok := m.find(h); ok {
				m.slots[i].off = off
				return true
			}
			return false
		}
		m.grow()
	}
	i, ok := m.find(h)
	if !ok {
		m.n++
		m.slots[i].h = h
	}
	m.slots[i].off = off
	return true
}

func (m *OffsetMap) get(h uint64) (int64, bool) {
	if len(m.slots) == 0 {
		return 0, false
	}
	i, ok := m.find(h)
	return m.slots[i].off, ok
}

// find returns the slot holding h, or the empty slot where it would go.
func (m *OffsetMap) find(h uint64) (int, bool) {
	i := int(h % uint64(len(m.slots)))
	for {
		switch m.slots[i].h {
		case h:
			return i, true
		case 0:
			return i, false
		}
		if i++; i == len(m.slots) {
			i = 0
		}
	}
}

func (m *OffsetMap) grow() {
	n := max(len(m.slots)*2, 1<<12)
	n = min(n, m.maxSlots)
	old := m.slots
	m.slots = make([]mapSlot, n)
	for _, s := range old {
		if s.h != 0 {
			i, _ := m.find(s.h)
			m.slots[i] = s
		}
	}
}

// CleanState is what the cleaner knows of a log before a pass.
type CleanState struct {
	// FirstDirty is the cleaner checkpoint: the log below it is clean.
	FirstDirty int64
	// FirstUncleanable is where the cleanable part of the log ends: the
	// active segment, the last stable offset, the recovery point, or the
	// first segment younger than min.compaction.lag.ms.
	FirstUncleanable int64
	// CleanBytes are the bytes of the clean tail; DirtyBytes those of the
	// cleanable dirty head.
	CleanBytes, DirtyBytes int64
	// Ratio is DirtyBytes over CleanBytes+DirtyBytes (Kafka's dirty
	// ratio), 0 for an empty log.
	Ratio float64
	// MaxLagDue is set when the oldest dirty record is older than
	// max.compaction.lag.ms: the log is cleaned whatever its ratio.
	MaxLagDue bool
	// Due reports whether a pass would clean something now: the topic is
	// compacted, there are cleanable dirty bytes, and the ratio reaches
	// min.cleanable.dirty.ratio or MaxLagDue is set.
	Due bool
}

// CleanState returns the log's dirty ratio and whether it is due for
// cleaning.
func (l *Log) CleanState() CleanState {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, _ := l.cleanStateLocked(l.nowMs())
	return st
}

// cleanStateLocked computes CleanState and returns the number of leading
// segments that may be rewritten (all fully below FirstUncleanable).
func (l *Log) cleanStateLocked(now int64) (CleanState, int) {
	cfg := &l.cfg
	first := l.cleanerCkpt
	if first > l.logEndLocked() {
		// Truncated below it (a replica's divergent tail): what is
		// past the new end was never cleaned.
		first = l.logStart
	}
	first = max(first, l.logStart)
	st := CleanState{FirstDirty: first, FirstUncleanable: first}
	n := 0
	seenDirty := false
	// Never past the last stable offset: an open transaction may still
	// abort, and its records must not be compacted over committed ones.
	lso := l.lsoLocked()
	for i := 0; i+1 < len(l.segs); i++ {
		s, next := l.segs[i], l.segs[i+1].base
		if next > lso || next > l.recoveryPoint || s.corruptAt >= 0 {
			break
		}
		if cfg.MinCompactionLagMs > 0 && s.next > first && s.retentionTs() > now-cfg.MinCompactionLagMs {
			break
		}
		n = i + 1
		if next <= first {
			st.CleanBytes += s.size
			continue
		}
		st.DirtyBytes += s.size
		st.FirstUncleanable = next
		if !seenDirty && cfg.MaxCompactionLagMs > 0 && cfg.MaxCompactionLagMs < math.MaxInt64 {
			ts := s.firstTs
			if ts < 0 {
				ts = s.created
			}
			st.MaxLagDue = ts < now-cfg.MaxCompactionLagMs
		}
		seenDirty = true
	}
	if total := st.CleanBytes + st.DirtyBytes; total > 0 {
		st.Ratio = float64(st.DirtyBytes) / float64(total)
	}
	st.Due = cfg.Compact && !l.closed && l.failed == nil && st.DirtyBytes > 0 &&
		(st.Ratio >= cfg.MinCleanableDirtyRatio || st.MaxLagDue)
	return st, n
}

// CleanOptions are one pass's resources.
type CleanOptions struct {
	// Map is the dedupe buffer, reused across passes (one per cleaner
	// thread); nil makes one of 128 MiB, Kafka's default.
	Map *OffsetMap
	// Throttle, when set, is told the bytes read and written as the
	// pass goes (log.cleaner.io.max.bytes.per.second); it may block, and
	// an error it returns stops the pass (the broker shutting down).
	Throttle func(n int64) error
	// Force cleans even when the log is not Due (tests, an operator).
	Force bool
}

// CleanResult describes one pass.
type CleanResult struct {
	Cleaned                   bool  // something was rewritten
	FirstDirty, End           int64 // the dirty range mapped: [FirstDirty, End)
	BytesRead, BytesWritten   int64
	RecordsRead, RecordsKept  int64
	Segments, Groups          int // old segments rewritten, new segments made
	RatioBefore, RatioAfter   float64
	TombstonesDropped         int64
	MarkersDropped            int64 // transaction markers removed past their delete horizon
	Duration                  time.Duration
	DirtyBytesBefore, Skipped int64 // Skipped: keys the map could not take this pass (cleaned next pass)
}

// ErrCleanAborted is returned (wrapped) by a pass whose log changed under
// it (retention, DeleteRecords, a truncation, Close, the topic deleted);
// nothing was lost and the next pass starts over.
var ErrCleanAborted = errors.New("storage: cleaning pass aborted: the log changed")

// Clean runs one cleaning pass if the log is due (or opts.Force). It
// reads the log without holding its locks and takes them only to swap a
// cleaned group in, so producers and fetches go on meanwhile.
func (l *Log) Clean(opts CleanOptions) (CleanResult, error) {
	start := time.Now()
	if opts.Map == nil {
		opts.Map = NewOffsetMap(128 << 20)
	}
	c := &cleaning{l: l, opts: opts}
	l.mu.Lock()
	now := l.nowMs()
	st, n := l.cleanStateLocked(now)
	if l.closed || !l.cfg.Compact || n == 0 || st.DirtyBytes == 0 || (!st.Due && !opts.Force) {
		l.mu.Unlock()
		return CleanResult{RatioBefore: st.Ratio, RatioAfter: st.Ratio}, nil
	}
	c.segs = append([]*segment(nil), l.segs[:n]...)
	c.sizes = make([]int64, n)
	c.ends = make([]int64, n)
	for i, s := range c.segs {
		c.sizes[i], c.ends[i] = s.size, l.segs[i+1].base
	}
	c.cfg = l.cfg
	c.now = now
	c.limit = l.cfg.decompressLimit()
	// Every aborted transaction the log indexes, by first offset: the
	// pass removes their records (Kafka's CleanedTransactionMetadata).
	var aborted []abortedEntry
	for _, s := range l.segs {
		aborted = append(aborted, s.txns...)
	}
	sort.Slice(aborted, func(i, j int) bool { return aborted[i].first < aborted[j].first })
	c.mapTxns, c.txns = newTxnTracker(aborted), newTxnTracker(aborted)
	c.lastOf = make(map[int64]int64, len(l.producers))
	for pid, e := range l.producers {
		if e.n > 0 {
			c.lastOf[pid] = e.batches[e.n-1].lastOff
		}
	}
	l.mu.Unlock()

	res := CleanResult{FirstDirty: st.FirstDirty, RatioBefore: st.Ratio, DirtyBytesBefore: st.DirtyBytes}
	c.res = &res
	end, err := c.buildMap(st.FirstDirty)
	if err == nil && end > st.FirstDirty {
		res.End = end
		err = c.cleanTo(end)
		if err == nil {
			err = l.setCleanerCheckpoint(end)
			hook("checkpointed")
		}
	}
	res.Duration = time.Since(start)
	after := l.CleanState()
	res.RatioAfter = after.Ratio
	return res, err
}

// cleaning is one pass's state.
type cleaning struct {
	l     *Log
	opts  CleanOptions
	cfg   Config
	now   int64
	limit int
	segs  []*segment // the cleanable segments, as of the start
	sizes []int64
	ends  []int64 // the offset after each (the next one's base)
	// lastOf is the offset of the last batch of each producer the log
	// tracks: that batch is kept (maybe emptied) to keep its sequence.
	lastOf map[int64]int64
	// Transactions as the map pass and the rewrite pass meet them.
	mapTxns, txns *txnTracker
	abortedBatch  bool // the batch being rewritten belongs to an aborted transaction
	res           *CleanResult
	// throttleErr is what Throttle returned to stop the pass, passed
	// back unwrapped so the caller can recognise it.
	throttleErr error

	buf    []byte // one batch as read
	region []byte // its records, decompressed
	out    []byte // a rewritten batch
	recs   []byte // records of a rewritten batch
	keep   []bool // per record of the batch being rewritten: it stays
	zbuf   []byte // compressed records
}

func (c *cleaning) throttle(n int64) error {
	if c.opts.Throttle != nil {
		if err := c.opts.Throttle(n); err != nil {
			c.throttleErr = err
			return err
		}
	}
	return nil
}

// eachBatch reads segment i batch by batch, outside the log's locks
// (segments below the active one never change; one retired meanwhile
// fails the read, which aborts the pass).
func (c *cleaning) eachBatch(i int, fn func(h *batch.Header, b []byte) error) error {
	s, size := c.segs[i], c.sizes[i]
	f, err := s.cf.acquire()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCleanAborted, err)
	}
	defer s.cf.release(false)
	var hdr [batch.HeaderSize]byte
	for pos := int64(0); pos < size; {
		if _, err := f.ReadAt(hdr[:], pos); err != nil {
			return fmt.Errorf("%w: %v", ErrCleanAborted, err)
		}
		h, err := batch.ParseHeader(hdr[:])
		if err != nil {
			return err
		}
		if h.Length < batch.MinLength || pos+h.Size() > size {
			return batch.ErrBadLength
		}
		if int64(cap(c.buf)) < h.Size() {
			c.buf = make([]byte, h.Size())
		}
		b := c.buf[:h.Size()]
		if _, err := f.ReadAt(b, pos); err != nil && !(errors.Is(err, io.EOF) && pos+h.Size() == size) {
			return fmt.Errorf("%w: %v", ErrCleanAborted, err)
		}
		c.res.BytesRead += h.Size()
		if err := c.throttle(h.Size()); err != nil {
			return err
		}
		if err := fn(&h, b); err != nil {
			return err
		}
		pos += h.Size()
	}
	return nil
}

// records returns the records region of batch b (decompressed into a
// buffer the pass keeps).
func (c *cleaning) records(h *batch.Header, b []byte) ([]byte, error) {
	r, err := batch.RecordsRegion(b, c.region[:0], c.limit)
	if err == nil && h.Codec() != compress.None {
		c.region = r[:0]
	}
	return r, err
}

// buildMap maps the keys of the dirty cleanable segments, from first,
// until the map is full, and returns the end of what it mapped (a
// segment boundary). The keys of a segment that did not fit stay in the
// map: they are real, newer records, so dropping older ones for them is
// right.
func (c *cleaning) buildMap(first int64) (int64, error) {
	m := c.opts.Map
	m.reset()
	end := first
	for i, s := range c.segs {
		next := c.ends[i]
		if next <= first {
			continue
		}
		full := false
		err := c.eachBatch(i, func(h *batch.Header, b []byte) error {
			if h.IsControl() {
				c.mapTxns.onControl(h, b)
				return nil
			}
			// Aborted records never shadow an older committed value.
			if aborted := c.mapTxns.onBatch(h); full || aborted || h.LastOffset() < first {
				return nil
			}
			region, err := c.records(h, b)
			if err != nil {
				return err
			}
			it := batch.NewRecords(region, h.RecordCount)
			var r batch.Record
			for it.Next(&r) {
				off := h.BaseOffset + int64(r.OffsetDelta)
				if off < first || r.Key == nil {
					continue
				}
				if !m.put(keyHash(r.Key), off) {
					full = true
					return nil
				}
			}
			return it.Err()
		})
		if err != nil {
			return end, err
		}
		if full {
			if end == first {
				return end, fmt.Errorf("storage: the dedupe buffer (%d keys) cannot hold the keys of one segment (%s); raise log.cleaner.dedupe.buffer.size", m.Capacity(), s.path)
			}
			c.res.Skipped = int64(m.n)
			break
		}
		end = next
	}
	return end, nil
}

// cleanTo rewrites the segments below end, group by group.
func (c *cleaning) cleanTo(end int64) error {
	var group []int
	var size int64
	flush := func() error {
		if len(group) == 0 {
			return nil
		}
		err := c.cleanGroup(group)
		group, size = group[:0], 0
		return err
	}
	for i, s := range c.segs {
		if s.base >= end {
			break
		}
		last := c.ends[i]
		// Kafka's grouping: what fits one segment (segment.bytes, the
		// 4-byte relative offsets of the index).
		if len(group) > 0 && (size+c.sizes[i] > c.cfg.SegmentBytes || last-c.segs[group[0]].base > math.MaxInt32) {
			if err := flush(); err != nil {
				return err
			}
		}
		group = append(group, i)
		size += c.sizes[i]
	}
	return flush()
}

// cleanGroup writes the retained batches of segments idx into one new
// segment and swaps it in.
func (c *cleaning) cleanGroup(idx []int) error {
	l := c.l
	base := c.segs[idx[0]].base
	ns := newSegment(l.fs, l.files, l.dir, base, c.now)
	logPath := ns.path + ".log" + cleanedSuffix
	f, err := l.fs.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return errStorage("cleaner", err)
	}
	w := &segWriter{c: c, f: f, s: ns}
	removeCleaned := func() {
		for _, ext := range segmentExts {
			l.fs.Remove(ns.path + ext + cleanedSuffix)
		}
	}
	var modified int64
	for _, i := range idx {
		modified = max(modified, c.segs[i].modified)
		err = c.eachBatch(i, w.batch)
		if err != nil {
			break
		}
	}
	if err == nil {
		err = w.flushRun()
	}
	if err == nil && w.pos == 0 {
		// Nothing at all survived (cannot happen while fillers keep the
		// offsets, but an empty segment must not be swapped in).
		err = ErrCleanAborted
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		ns.size = w.pos
		ns.maybeAppendTime()
		ns.modified = max(modified, ns.modified)
		err = writeIndexFiles(l.fs, ns, cleanedSuffix)
	}
	if err != nil {
		removeCleaned()
		if errors.Is(err, ErrCleanAborted) || c.throttleErr != nil {
			return err // the caller's own error from Throttle stays itself
		}
		return errStorage("cleaner", err)
	}
	hook("cleaned-written")
	if err := l.swapIn(c.segs, idx, ns); err != nil {
		removeCleaned()
		return err
	}
	c.res.Cleaned = true
	c.res.Segments += len(idx)
	c.res.Groups++
	return nil
}

// segWriter appends the retained part of each batch to a new segment,
// merging runs of removed batches into empty ones.
type segWriter struct {
	c   *cleaning
	f   vfs.File
	s   *segment
	pos int64
	// The run of removed batches waiting to be written as one empty
	// batch: [runBase, runLast] in epoch runEpoch.
	runBase, runLast int64
	runEpoch         int32
	inRun            bool
}

func (w *segWriter) write(b []byte, h *batch.Header) error {
	if _, err := w.f.WriteAt(b, w.pos); err != nil {
		return err
	}
	w.s.noteBatch(h.BaseOffset, w.pos, int64(len(b)), h.MaxTimestamp, w.c.cfg.IndexIntervalBytes)
	w.s.next = h.LastOffset() + 1
	w.pos += int64(len(b))
	w.c.res.BytesWritten += int64(len(b))
	return w.c.throttle(int64(len(b)))
}

// flushRun writes the pending run of removed batches as one empty batch
// (no producer, no records) covering their offsets.
func (w *segWriter) flushRun() error {
	if !w.inRun {
		return nil
	}
	w.inRun = false
	b, h := emptyBatch(w.c.out[:0], batch.Header{BaseOffset: w.runBase, LastOffsetDelta: int32(w.runLast - w.runBase),
		PartitionLeaderEpoch: w.runEpoch, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, BaseTimestamp: -1, MaxTimestamp: -1})
	w.c.out = b
	return w.write(b, &h)
}

// emptyBatch appends a RecordBatch with no records and h's offsets,
// epochs, producer fields, timestamps and attributes (uncompressed):
// Kafka's empty header, used for the runs of removed batches and for a
// producer's last batch whose records all went. It returns the header
// as written.
func emptyBatch(dst []byte, h batch.Header) ([]byte, batch.Header) {
	h.Length, h.Magic, h.RecordCount = batch.MinLength, 2, 0
	h.Attributes &^= batch.AttrCodecMask
	be := binary.BigEndian
	b := append(dst, make([]byte, batch.HeaderSize)...)
	be.PutUint64(b[0:], uint64(h.BaseOffset))
	be.PutUint32(b[8:], uint32(h.Length))
	be.PutUint32(b[12:], uint32(h.PartitionLeaderEpoch))
	b[16] = byte(h.Magic)
	be.PutUint16(b[21:], uint16(h.Attributes))
	be.PutUint32(b[23:], uint32(h.LastOffsetDelta))
	be.PutUint64(b[27:], uint64(h.BaseTimestamp))
	be.PutUint64(b[35:], uint64(h.MaxTimestamp))
	be.PutUint64(b[43:], uint64(h.ProducerID))
	be.PutUint16(b[51:], uint16(h.ProducerEpoch))
	be.PutUint32(b[53:], uint32(h.BaseSequence))
	be.PutUint32(b[57:], 0)
	h.CRC = batch.ComputeCRC(b)
	be.PutUint32(b[17:], h.CRC)
	return b, h
}

// batch decides what of one old batch survives and writes it.
func (w *segWriter) batch(h *batch.Header, b []byte) error {
	c := w.c
	keepLast := h.ProducerID >= 0 && c.lastOf[h.ProducerID] == h.LastOffset()
	if h.IsControl() {
		return w.control(h, b, keepLast)
	}
	c.abortedBatch = c.txns.onBatch(h)
	if h.RecordCount == 0 && h.ProducerID >= 0 && !keepLast {
		// A producer's batch emptied by an earlier pass, no longer its
		// last: it goes now (Kafka's DELETE_EMPTY), and with it what
		// kept its transaction's marker.
		return w.drop(h)
	}
	region, err := c.records(h, b)
	if err != nil {
		return err
	}
	horizon := int64(-1)
	if h.Attributes&batch.AttrDeleteHorizon != 0 {
		horizon = h.BaseTimestamp
	}
	// First walk: which records stay (remembered for rebuild, so each
	// key is hashed and looked up once).
	kept, needHorizon := int32(0), false
	c.keep = c.keep[:0]
	it := batch.NewRecords(region, h.RecordCount)
	var r batch.Record
	for it.Next(&r) {
		c.res.RecordsRead++
		keep, tomb := c.retain(h, &r, horizon)
		c.keep = append(c.keep, keep)
		if keep {
			kept++
			needHorizon = needHorizon || (tomb && horizon < 0)
		} else if tomb {
			c.res.TombstonesDropped++
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	c.res.RecordsKept += int64(kept)
	switch {
	case kept == h.RecordCount && !needHorizon:
		if err := w.flushRun(); err != nil {
			return err
		}
		return w.write(b, h)
	case kept == 0 && !keepLast:
		return w.drop(h)
	case kept == 0:
		return w.writeEmpty(h)
	}
	if err := w.flushRun(); err != nil {
		return err
	}
	out, err := c.rebuild(h, b, region, needHorizon)
	if err != nil {
		return err
	}
	nh, _ := batch.ParseHeader(out)
	return w.write(out, &nh)
}

// drop adds batch h to the run of removed batches.
func (w *segWriter) drop(h *batch.Header) error {
	if w.inRun && (w.runEpoch != h.PartitionLeaderEpoch || h.LastOffset()-w.runBase > math.MaxInt32) {
		if err := w.flushRun(); err != nil {
			return err
		}
	}
	if !w.inRun {
		w.inRun, w.runBase, w.runEpoch = true, h.BaseOffset, h.PartitionLeaderEpoch
	}
	w.runLast = h.LastOffset()
	return nil
}

// writeEmpty keeps batch h's header without its records: a producer's
// last batch, which its sequence (and a marker its control bit) lives in.
func (w *segWriter) writeEmpty(h *batch.Header) error {
	if err := w.flushRun(); err != nil {
		return err
	}
	eh := *h
	eh.Attributes &= batch.AttrTransactional | batch.AttrControl
	eh.BaseTimestamp = h.MaxTimestamp
	out, nh := emptyBatch(w.c.out[:0], eh)
	w.c.out = out
	return w.write(out, &nh)
}

// control decides the fate of a control batch (a transaction marker), as
// Kafka's cleaner does: it stays while its transaction has batches in
// the log; once none is left the first pass sets its delete horizon
// (now + delete.retention.ms, as for tombstones), and a pass after the
// horizon removes it, so a consumer that read the transaction's records
// before they were cleaned still meets its marker.
func (w *segWriter) control(h *batch.Header, b []byte, keepLast bool) error {
	c := w.c
	discardable, keep := c.txns.onControl(h, b)
	if keep != nil {
		w.s.txns = append(w.s.txns, *keep)
	}
	hasHorizon := h.Attributes&batch.AttrDeleteHorizon != 0
	switch {
	case discardable && (h.RecordCount == 0 || hasHorizon && c.now >= h.BaseTimestamp):
		c.res.MarkersDropped++
		if keepLast {
			return w.writeEmpty(h)
		}
		return w.drop(h)
	case !discardable || hasHorizon:
		if err := w.flushRun(); err != nil {
			return err
		}
		return w.write(b, h)
	}
	if err := w.flushRun(); err != nil {
		return err
	}
	region, err := c.records(h, b)
	if err != nil {
		return err
	}
	c.keep = c.keep[:0]
	for range h.RecordCount {
		c.keep = append(c.keep, true)
	}
	out, err := c.rebuild(h, b, region, true)
	if err != nil {
		return err
	}
	nh, _ := batch.ParseHeader(out)
	return w.write(out, &nh)
}

// retain reports whether record r of batch h stays, and whether it is a
// tombstone (dropped: one past its delete horizon).
func (c *cleaning) retain(h *batch.Header, r *batch.Record, horizon int64) (keep, tomb bool) {
	if c.abortedBatch {
		return false, false
	}
	if r.Key == nil {
		// Kafka's cleaner drops keyless records (a topic turned compact
		// after it had them); produce refuses new ones.
		return false, false
	}
	off := h.BaseOffset + int64(r.OffsetDelta)
	if newest, ok := c.opts.Map.get(keyHash(r.Key)); ok && off < newest {
		return false, false
	}
	if r.Value == nil {
		if horizon >= 0 && c.now >= horizon {
			return false, true
		}
		return true, true
	}
	return true, false
}

// rebuild writes the records of batch b that the first walk kept (c.keep)
// as a new batch with the same base offset, lastOffsetDelta, producer
// fields and codec; a batch keeping a tombstone for the first time gets
// its delete horizon.
func (c *cleaning) rebuild(h *batch.Header, b, region []byte, needHorizon bool) ([]byte, error) {
	baseTs := h.BaseTimestamp
	attrs := h.Attributes
	if needHorizon {
		baseTs = c.now + c.cfg.DeleteRetentionMs
		attrs |= batch.AttrDeleteHorizon
	}
	recs := c.recs[:0]
	count := int32(0)
	maxTs := int64(-1)
	it := batch.NewRecords(region, h.RecordCount)
	var r batch.Record
	for i := 0; it.Next(&r); i++ {
		if !c.keep[i] {
			continue
		}
		count++
		ts := h.BaseTimestamp + r.TimestampDelta
		maxTs = max(maxTs, ts)
		recs = batch.AppendRecord(recs, &r, ts-baseTs)
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	c.recs = recs
	if h.IsLogAppendTime() {
		maxTs = h.MaxTimestamp
	}
	body := recs
	if codec := h.Codec(); codec != compress.None {
		z, err := compress.Compress(codec, c.zbuf[:0], recs)
		if err != nil {
			return nil, err
		}
		c.zbuf = z
		body = z
	}
	out := append(c.out[:0], b[:batch.HeaderSize]...)
	out = append(out, body...)
	be := binary.BigEndian
	be.PutUint32(out[8:], uint32(len(out)-batch.LengthOverhead))
	be.PutUint16(out[21:], uint16(attrs))
	be.PutUint64(out[27:], uint64(baseTs))
	be.PutUint64(out[35:], uint64(maxTs))
	be.PutUint32(out[57:], uint32(count))
	be.PutUint32(out[17:], batch.ComputeCRC(out))
	c.out = out
	return out, nil
}

// writeIndexFiles writes s's in-memory indexes to its index files with
// suffix, fsynced.
func writeIndexFiles(fs vfs.FS, s *segment, suffix string) error {
	if err := writeTail(fs, s.path+".index"+suffix, 0, appendIdx(nil, s.idx), true); err != nil {
		return err
	}
	if err := writeTail(fs, s.path+".timeindex"+suffix, 0, appendTidx(nil, s.tidx), true); err != nil {
		return err
	}
	// Always written, even empty: finishSwap tells a renamed file from
	// one never written by its .cleaned name alone.
	if err := writeTail(fs, s.path+txnIndexExt+suffix, 0, appendTxnEntries(nil, s.txns), true); err != nil {
		return err
	}
	s.idxOnDisk, s.tidxOnDisk, s.txnOnDisk = len(s.idx), len(s.tidx), len(s.txns)
	s.idxSynced, s.tidxSynced, s.txnSynced = s.idxOnDisk, s.tidxOnDisk, s.txnOnDisk
	return nil
}

// swapIn replaces segments idx of old (still in the log, in order) with
// ns, whose files carry the .cleaned suffix, crash-safely (see the top of
// this file).
func (l *Log) swapIn(old []*segment, idx []int, ns *segment) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	group := make([]*segment, len(idx))
	for k, i := range idx {
		group[k] = old[i]
	}
	// Recovery must never rescan a cleaned segment (its batches are
	// checked for contiguity there, and it was fsynced anyway): the
	// recovery point on disk covers the group before it goes in.
	if err := l.checkpointRecoveryPointHeld(); err != nil {
		return err
	}
	l.mu.Lock()
	at := l.groupAtLocked(group)
	end := int64(-1)
	if at >= 0 && at+len(group) < len(l.segs) {
		end = l.segs[at+len(group)].base
	}
	ok := at >= 0 && end >= 0 && l.rpCkpt >= end && !l.closed && l.failed == nil && ns.next == end
	l.mu.Unlock()
	if !ok {
		return ErrCleanAborted
	}
	marker := dirFile(l.dir, fmt.Sprintf("%020d%s", ns.base, swapSuffix))
	if err := writeCheckpointFS(l.fs, marker, end); err != nil {
		return errStorage("cleaner swap marker", err)
	}
	hook("swap-marked")

	l.mu.Lock()
	at = l.groupAtLocked(group)
	if at < 0 || l.closed {
		l.mu.Unlock()
		l.fs.Remove(marker)
		l.fs.SyncDir(l.dir)
		return ErrCleanAborted
	}
	now := l.nowMs()
	for _, s := range group {
		l.retireLocked(s, now, true)
	}
	// Earlier passes' (and retention's) replaced files whose
	// file.delete.delay.ms is over go now, not at the next append.
	l.finishDeletesLocked(now, false)
	hook("old-renamed")
	var err error
	for _, ext := range segmentExts {
		if err = l.fs.Rename(ns.path+ext+cleanedSuffix, ns.path+ext); err != nil {
			break
		}
		if ext == ".log" {
			hook("log-renamed")
		}
	}
	if err != nil {
		// The old segments are already renamed: the marker completes
		// the swap at the next Open; until then the log cannot go on.
		l.mu.Unlock()
		return l.failLocked(errStorage("cleaner swap", err))
	}
	segs := make([]*segment, 0, len(l.segs)-len(group)+1)
	segs = append(segs, l.segs[:at]...)
	segs = append(segs, ns)
	segs = append(segs, l.segs[at+len(group):]...)
	l.segs = segs
	l.sc.reset()
	l.mu.Unlock()

	if err := l.fs.SyncDir(l.dir); err != nil {
		return l.failLocked(errStorage("cleaner swap", err))
	}
	hook("swapped")
	if err := l.fs.Remove(marker); err != nil {
		return errStorage("cleaner swap marker", err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return errStorage("cleaner swap marker", err)
	}
	return nil
}

// failLocked fails the log (it must be reopened) taking mu.
func (l *Log) failLocked(err error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fail(err)
}

// groupAtLocked returns the index in l.segs where group starts, in order,
// or -1 when the log no longer holds it so.
func (l *Log) groupAtLocked(group []*segment) int {
	for i, s := range l.segs {
		if s != group[0] {
			continue
		}
		if i+len(group) > len(l.segs) {
			return -1
		}
		for k, g := range group {
			if l.segs[i+k] != g {
				return -1
			}
		}
		return i
	}
	return -1
}

// setCleanerCheckpoint persists the end of the clean tail.
func (l *Log) setCleanerCheckpoint(off int64) error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	if err := writeCheckpointFS(l.fs, dirFile(l.dir, cleanerCheckpointFile), off); err != nil {
		return errStorage("cleaner checkpoint", err)
	}
	l.mu.Lock()
	l.cleanerCkpt = off
	l.mu.Unlock()
	return nil
}

// finishSwaps completes, at Open, the cleaning swaps that a crash
// interrupted after their marker was published (cleanDir calls it when a
// marker is there, and removes the .cleaned files of unmarked passes).
func (l *Log) finishSwaps(names []string) error {
	for _, m := range names {
		if !strings.HasSuffix(m, swapSuffix) {
			continue
		}
		base, ok := parseBase(m, swapSuffix)
		end, valid := readCheckpointFS(l.fs, dirFile(l.dir, m))
		if ok && valid && end > base {
			// publishFile renames a complete marker into place, so a
			// damaged one was never the commit point.
			if err := l.finishSwap(names, base, end); err != nil {
				return err
			}
		}
		if err := l.fs.Remove(dirFile(l.dir, m)); err != nil {
			return err
		}
		if err := l.fs.SyncDir(l.dir); err != nil {
			return err
		}
	}
	return nil
}

// finishSwap replaces the group [base, end): every old segment after the
// first goes; the first one's files are replaced by the cleaned ones
// still waiting under their .cleaned names.
func (l *Log) finishSwap(names []string, base, end int64) error {
	for _, name := range names {
		if b, isLog := parseBase(name, ".log"); isLog && b > base && b < end {
			for _, ext := range segmentExts {
				l.fs.Remove(segmentPath(l.dir, b) + ext)
			}
		}
	}
	path := segmentPath(l.dir, base)
	for _, ext := range segmentExts {
		if _, err := l.fs.Stat(path + ext + cleanedSuffix); err == nil {
			if err := l.fs.Rename(path+ext+cleanedSuffix, path+ext); err != nil {
				return err
			}
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return err
	}
	l.logger.Info("finished a log cleaner swap interrupted by a crash", "dir", l.dir, "base", base, "end", end)
	return nil
}

// retiredName gives a cleaned-away segment a name no later segment of the
// same base can take while its .deleted files wait for
// file.delete.delay.ms.
func (l *Log) retiredName(s *segment) string {
	l.retireSeq++
	return s.path + "." + strconv.FormatInt(l.nowMs(), 36) + strconv.FormatUint(l.retireSeq, 36)
}
