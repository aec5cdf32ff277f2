package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/tributary/tributary/internal/batch"
	"github.com/tributary/tributary/internal/vfs"
)

const (
	idxEntrySize  = 8  // relative offset uint32, position uint32
	tidxEntrySize = 12 // timestamp int64, relative offset uint32
)

type idxEntry struct{ rel, pos uint32 }

type tsEntry struct {
	ts  int64
	rel uint32
}

// segment is one .log file with its offset and time indexes. The indexes
// live in memory (they are ~0.3% of the log) and reach their files lazily:
// pending entries are written at roll, Flush and Close. Entries that a
// crash loses are rebuilt by recovery, which rescans every segment at or
// after the recovery point.
//
// All fields are guarded by Log.mu.
type segment struct {
	base int64
	path string // directory + 20-digit base, without extension
	fs   vfs.FS
	// cf is the .log file, opened on demand through the FileCache; wf is
	// the same file pinned open while the segment is active.
	cf   *cachedFile
	wf   vfs.File
	size int64 // bytes in the .log, all of them written to the file
	next int64 // offset after the last batch; base when empty

	// corruptAt is the file position of damage found in a segment below
	// the recovery point (-1: none). Reads from there fail; the data
	// after it, and every later segment, stay.
	corruptAt     int64
	corruptLogged bool

	idx        []idxEntry
	idxOnDisk  int // entries already in the .index file
	tidx       []tsEntry
	tidxOnDisk int
	sinceIndex int64 // bytes appended since the last index entry

	maxTs    int64 // largest batch maxTimestamp, -1 when none
	maxTsOff int64 // base offset of the batch carrying maxTs, -1
	firstTs  int64 // maxTimestamp of the first batch (segment.ms base), -1
	created  int64 // ms by the broker's clock: creation, or load at Open
	modified int64 // ms of the last append (file mtime at Open)

	dirty bool // written since the last fsync
	// Index entries known fsynced, so a flush syncs index files only
	// when they grew.
	idxSynced, tidxSynced int

	// The aborted transactions whose markers the segment holds, in
	// offset order (the .txnindex, Kafka's TransactionIndex). The file
	// exists only once an entry was written; txnDirty is set when
	// entries past txnOnDisk wait for it (or the list shrank).
	txns      []abortedEntry
	txnOnDisk int
	txnSynced int
	txnDirty  bool
}

func newSegment(fs vfs.FS, files *FileCache, dir string, base, now int64) *segment {
	s := &segment{base: base, path: segmentPath(dir, base), fs: fs, next: base,
		maxTs: -1, maxTsOff: -1, firstTs: -1, created: now, modified: now, corruptAt: -1}
	s.cf = files.newFile(fs, s.path+".log")
	return s
}

// retentionTs is the segment's time for retention.ms: its largest
// timestamp, or, when no batch carried one, when it was last written
// (Kafka's LogSegment.largestTimestamp).
func (s *segment) retentionTs() int64 {
	if s.maxTs >= 0 {
		return s.maxTs
	}
	return s.modified
}

// readAt reads the .log at pos, opening it through the cache if needed.
func (s *segment) readAt(b []byte, pos int64) (int, error) {
	if s.wf != nil {
		return s.wf.ReadAt(b, pos)
	}
	f, err := s.cf.acquire()
	if err != nil {
		return 0, err
	}
	n, err := f.ReadAt(b, pos)
	s.cf.release(false)
	return n, err
}

// pin keeps the .log open for appends (the active segment).
func (s *segment) pin() error {
	if s.wf != nil {
		return nil
	}
	f, err := s.cf.acquire()
	if err != nil {
		return err
	}
	s.wf = f
	return nil
}

// unpin lets the cache close the .log again (after a roll).
func (s *segment) unpin() {
	if s.wf != nil {
		s.wf = nil
		s.cf.release(false)
	}
}

// segmentExts are the files of a segment; the .txnindex may be absent.
var segmentExts = []string{".log", ".index", ".timeindex", txnIndexExt}

func segmentPath(dir string, base int64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d", base))
}

// createSegment makes a new, empty, pinned segment, truncating leftovers
// of the same name (a segment truncated away by recovery). On failure it
// removes what it made: an empty segment file left behind would claim an
// offset range the previous segment still grows into.
func createSegment(fs vfs.FS, files *FileCache, dir string, base, now int64) (*segment, error) {
	s := newSegment(fs, files, dir, base, now)
	err := vfs.WriteFile(fs, s.path+".log", nil, 0o644)
	for _, ext := range []string{".index", ".timeindex"} {
		if err == nil {
			err = vfs.WriteFile(fs, s.path+ext, nil, 0o644)
		}
	}
	if err == nil {
		err = s.pin()
	}
	if err != nil {
		for _, ext := range segmentExts {
			fs.Remove(s.path + ext)
		}
		s.cf.drop()
		return nil, err
	}
	s.dirty = true
	return s, nil
}

// noteBatch updates the indexes and timestamps for a batch appended at
// pos, following Kafka: an offset index entry once more than
// index.interval.bytes were appended since the last one, and a time index
// entry beside it when the maximum timestamp grew.
func (s *segment) noteBatch(base int64, pos, size, maxTs int64, interval int32) {
	if maxTs > s.maxTs {
		s.maxTs, s.maxTsOff = maxTs, base
	}
	if pos == 0 {
		s.firstTs = maxTs
	}
	if s.sinceIndex >= int64(interval) {
		s.idx = append(s.idx, idxEntry{rel: uint32(base - s.base), pos: uint32(pos)})
		s.maybeAppendTime()
		s.sinceIndex = 0
	}
	s.sinceIndex += size
}

// maybeAppendTime adds a time index entry for the current maximum if it
// is newer than the last entry.
func (s *segment) maybeAppendTime() {
	if s.maxTs < 0 {
		return
	}
	if n := len(s.tidx); n > 0 && s.tidx[n-1].ts >= s.maxTs {
		return
	}
	s.tidx = append(s.tidx, tsEntry{ts: s.maxTs, rel: uint32(s.maxTsOff - s.base)})
}

// indexFull reports whether one more entry would pass segment.index.bytes.
func (s *segment) indexFull(maxIndexBytes int32) bool {
	return int64(len(s.idx)+1)*idxEntrySize > int64(maxIndexBytes) ||
		int64(len(s.tidx)+1)*tidxEntrySize > int64(maxIndexBytes)
}

// lookup returns the position of a batch at or before offset, from the
// index: scanning forward from it finds the batch holding offset.
func (s *segment) lookup(offset int64) int64 {
	rel := offset - s.base
	if rel <= 0 || len(s.idx) == 0 {
		return 0
	}
	if rel > math.MaxUint32 {
		rel = math.MaxUint32
	}
	i := sort.Search(len(s.idx), func(i int) bool { return int64(s.idx[i].rel) > rel })
	if i == 0 {
		return 0
	}
	return int64(s.idx[i-1].pos)
}

// persistIndexes appends pending index entries to the index files, and
// fsyncs them when sync is set.
func (s *segment) persistIndexes(sync bool) error {
	if s.idxOnDisk == len(s.idx) && s.tidxOnDisk == len(s.tidx) && !s.txnDirty && !sync {
		return nil
	}
	buf := appendIdx(nil, s.idx[s.idxOnDisk:])
	if err := writeTail(s.fs, s.path+".index", int64(s.idxOnDisk)*idxEntrySize, buf, sync); err != nil {
		return err
	}
	s.idxOnDisk = len(s.idx)
	buf = appendTidx(buf[:0], s.tidx[s.tidxOnDisk:])
	if err := writeTail(s.fs, s.path+".timeindex", int64(s.tidxOnDisk)*tidxEntrySize, buf, sync); err != nil {
		return err
	}
	s.tidxOnDisk = len(s.tidx)
	if s.txnDirty {
		buf = appendTxnEntries(buf[:0], s.txns[s.txnOnDisk:])
		if err := writeTail(s.fs, s.path+txnIndexExt, int64(s.txnOnDisk)*txnEntrySize, buf, sync); err != nil {
			return err
		}
		s.txnOnDisk, s.txnDirty = len(s.txns), false
		if sync {
			s.txnSynced = s.txnOnDisk
		}
	}
	if sync {
		s.idxSynced, s.tidxSynced = s.idxOnDisk, s.tidxOnDisk
	}
	return nil
}

// appendIdx and appendTidx encode index entries as the files hold them.
func appendIdx(buf []byte, es []idxEntry) []byte {
	for _, e := range es {
		buf = binary.BigEndian.AppendUint32(buf, e.rel)
		buf = binary.BigEndian.AppendUint32(buf, e.pos)
	}
	return buf
}

func appendTidx(buf []byte, es []tsEntry) []byte {
	for _, e := range es {
		buf = binary.BigEndian.AppendUint64(buf, uint64(e.ts))
		buf = binary.BigEndian.AppendUint32(buf, e.rel)
	}
	return buf
}

// syncIndexes fsyncs index files that grew since their last fsync. The
// entries to sync are read under Log.mu (idx, tidx); the fsync itself
// may run outside it.
func syncIndexes(fs vfs.FS, path string, idx, tidx, txn bool) error {
	if idx {
		if err := syncFile(fs, path+".index"); err != nil {
			return err
		}
	}
	if txn {
		if err := syncFile(fs, path+txnIndexExt); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if tidx {
		return syncFile(fs, path+".timeindex")
	}
	return nil
}

func syncFile(fs vfs.FS, path string) error {
	f, err := fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// rewriteIndexes replaces both index files with the in-memory entries.
func (s *segment) rewriteIndexes() error {
	s.idxOnDisk, s.tidxOnDisk = 0, 0
	s.idxSynced, s.tidxSynced = -1, -1
	return s.persistIndexes(false)
}

// writeTail writes b at off in the file at path, truncating anything after
// it, so a longer stale file cannot leave garbage entries behind.
func writeTail(fs vfs.FS, path string, off int64, b []byte, sync bool) error {
	f, err := fs.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err = f.WriteAt(b, off); err == nil {
		err = f.Truncate(off + int64(len(b)))
	}
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// loadIndexes reads both index files into memory. It reports whether they
// pass Kafka's sanity checks against the segment (entry sizes, ordering,
// positions inside the log, offsets below next); a failing or missing
// index must be rebuilt.
func (s *segment) loadIndexes(sc *scanner) bool {
	ib, err1 := vfs.ReadFile(s.fs, s.path+".index")
	tb, err2 := vfs.ReadFile(s.fs, s.path+".timeindex")
	if err1 != nil || err2 != nil || len(ib)%idxEntrySize != 0 || len(tb)%tidxEntrySize != 0 {
		return false
	}
	s.idx = make([]idxEntry, 0, len(ib)/idxEntrySize)
	for i := 0; i < len(ib); i += idxEntrySize {
		e := idxEntry{rel: binary.BigEndian.Uint32(ib[i:]), pos: binary.BigEndian.Uint32(ib[i+4:])}
		if n := len(s.idx); n > 0 && (e.rel <= s.idx[n-1].rel || e.pos <= s.idx[n-1].pos) {
			return false
		}
		if int64(e.pos) >= s.size || s.base+int64(e.rel) >= s.next {
			return false
		}
		s.idx = append(s.idx, e)
	}
	s.tidx = make([]tsEntry, 0, len(tb)/tidxEntrySize)
	for i := 0; i < len(tb); i += tidxEntrySize {
		e := tsEntry{ts: int64(binary.BigEndian.Uint64(tb[i:])), rel: binary.BigEndian.Uint32(tb[i+8:])}
		if n := len(s.tidx); n > 0 && (e.ts <= s.tidx[n-1].ts || e.rel < s.tidx[n-1].rel) {
			return false
		}
		if e.ts < 0 || s.base+int64(e.rel) >= s.next {
			return false
		}
		s.tidx = append(s.tidx, e)
	}
	if s.size > 0 && len(s.tidx) == 0 {
		// A closed segment with data has a final time entry unless no
		// batch carried a timestamp (librdkafka sends such batches): an
		// empty time index is valid then. The first batch tells the two
		// apart cheaply; a first batch with a timestamp means the file
		// lost its entries.
		h, err := sc.header(s, 0)
		if err != nil || h.MaxTimestamp >= 0 {
			return false
		}
	}
	// The last offset entry must point at the batch it names.
	if n := len(s.idx); n > 0 {
		h, err := sc.header(s, int64(s.idx[n-1].pos))
		if err != nil || h.BaseOffset != s.base+int64(s.idx[n-1].rel) {
			return false
		}
	}
	if n := len(s.tidx); n > 0 {
		s.maxTs, s.maxTsOff = s.tidx[n-1].ts, s.base+int64(s.tidx[n-1].rel)
	}
	s.idxOnDisk, s.tidxOnDisk = len(s.idx), len(s.tidx)
	s.idxSynced, s.tidxSynced = s.idxOnDisk, s.tidxOnDisk
	return true
}

// scanner reads batch headers through a small buffer, so walking many
// small batches costs few reads.
type scanner struct {
	buf  []byte
	seg  *segment
	from int64 // file position of buf[0]
	n    int
}

func newScanner() *scanner { return &scanner{} }

// scanBufSize holds many small batch headers per read; the buffer is
// allocated on first use, so idle partitions cost nothing.
const scanBufSize = 8 << 10

// header reads the batch header at pos of s, checking that the whole
// batch fits in the segment.
func (sc *scanner) header(s *segment, pos int64) (batch.Header, error) {
	if s.corruptAt >= 0 && pos >= s.corruptAt {
		return batch.Header{}, errCorruptSegment
	}
	if pos+batch.HeaderSize > s.size {
		return batch.Header{}, io.ErrUnexpectedEOF
	}
	if sc.seg != s || pos < sc.from || pos+batch.HeaderSize > sc.from+int64(sc.n) {
		if sc.buf == nil {
			sc.buf = make([]byte, scanBufSize)
		}
		want := int64(len(sc.buf))
		if rem := s.size - pos; rem < want {
			want = rem
		}
		n, err := s.readAt(sc.buf[:want], pos)
		if n < batch.HeaderSize {
			sc.seg = nil
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return batch.Header{}, err
		}
		sc.seg, sc.from, sc.n = s, pos, n
	}
	b := sc.buf[pos-sc.from:]
	h, err := batch.ParseHeader(b)
	if err != nil {
		return h, err
	}
	if h.Length < batch.MinLength || pos+h.Size() > s.size {
		return h, batch.ErrBadLength
	}
	return h, nil
}

// reset forgets buffered bytes (after the file changed under them).
func (sc *scanner) reset() { sc.seg = nil }

// locate finds the batch holding offset: its position and header. found
// is false when offset is at or past the segment's end.
func (sc *scanner) locate(s *segment, offset int64) (pos int64, h batch.Header, found bool, err error) {
	pos = s.lookup(offset)
	for pos < s.size {
		h, err = sc.header(s, pos)
		if err != nil {
			return 0, h, false, err
		}
		if h.LastOffset() >= offset {
			return pos, h, true, nil
		}
		pos += h.Size()
	}
	return pos, h, false, nil
}
