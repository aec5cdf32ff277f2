package storage

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/internal/vfs"
)

// FileCache bounds the segment files held open across every Log that
// shares it (Options.Files; by default one cache for the process). A
// broker with 20,000 tiny segments must not hold 20,000 descriptors:
// segments are opened on first use, the least recently used idle ones
// are closed once more than the limit are open, and a Log that cannot
// open a file fails that one request with KAFKA_STORAGE_ERROR.
//
// Files in use are never closed: the active segment of every log (it
// takes every append), and a file while a Log method reads or syncs it.
// A file handed out in a FileSlice is leased for FileLease so that the
// response writing it is not cut short, as long as leased files stay
// within a quarter over the limit; past that, and when the process runs
// out of descriptors, leases are broken (a copying fetch then fails and
// is retried; a sendfile(2) in progress keeps its descriptor until it
// returns).
//
// Files in use can still take the count past the limit: opening one
// more file then goes past it rather than failing.
type FileCache struct {
	mu    sync.Mutex
	limit int
	lease time.Duration
	open  int
	// head is the most recently used open file, tail the least.
	head, tail *cachedFile
}

// FileLease is how long a FileSlice keeps its file from being closed by
// the cache (the broker writes a fetch response well within it).
const FileLease = 30 * time.Second

// NewFileCache returns a cache that keeps at most limit files open
// (limit < 1 means 1).
func NewFileCache(limit int) *FileCache {
	return &FileCache{limit: max(limit, 1), lease: FileLease}
}

var defaultCache = NewFileCache(defaultOpenFiles())

// DefaultFileCache is the cache of Logs opened without Options.Files.
// Its limit is half the process's descriptor limit (RLIMIT_NOFILE), the
// rest being left to connections and everything else.
func DefaultFileCache() *FileCache { return defaultCache }

// SetLimit changes the bound and closes idle files above it.
func (c *FileCache) SetLimit(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.limit = max(n, 1)
	c.evictLocked(time.Now(), false, 0)
}

// Limit is the bound on open files.
func (c *FileCache) Limit() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.limit
}

// SetLease changes how long a FileSlice keeps its file open (tests).
func (c *FileCache) SetLease(d time.Duration) {
	c.mu.Lock()
	c.lease = d
	c.mu.Unlock()
}

// Open is the number of files currently open through the cache.
func (c *FileCache) Open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open
}

// cachedFile is one segment's .log file as the cache sees it. Every field
// is guarded by cache.mu.
type cachedFile struct {
	c    *FileCache
	fs   vfs.FS
	path string
	f    vfs.File // nil while closed
	// pins counts users that must not see the file closed: the log's
	// pin of its active segment and each method reading or syncing it.
	pins       int
	leaseUntil time.Time
	dead       bool // the segment is gone: never reopen
	prev, next *cachedFile
}

func (c *FileCache) newFile(fs vfs.FS, path string) *cachedFile {
	return &cachedFile{c: c, fs: fs, path: path}
}

var errSegmentGone = fmt.Errorf("%w: segment was deleted", tributary.ErrKafkaStorageError)

// acquire opens cf if needed and pins it; release must follow.
func (cf *cachedFile) acquire() (vfs.File, error) {
	c := cf.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if cf.f == nil {
		if cf.dead {
			return nil, errSegmentGone
		}
		now := time.Now()
		c.evictLocked(now, false, 1)
		f, err := cf.fs.OpenFile(cf.path, os.O_RDWR, 0o644)
		if err != nil && vfs.IsTooManyFiles(err) {
			// Out of descriptors: break leases and try once more.
			c.evictLocked(now, true, 1)
			f, err = cf.fs.OpenFile(cf.path, os.O_RDWR, 0o644)
		}
		if err != nil {
			return nil, err
		}
		cf.f = f
		c.open++
		c.pushFrontLocked(cf)
	} else {
		c.moveFrontLocked(cf)
	}
	cf.pins++
	return cf.f, nil
}

// release unpins cf, leasing it for FileLease when lease is set.
func (cf *cachedFile) release(lease bool) {
	c := cf.c
	c.mu.Lock()
	defer c.mu.Unlock()
	cf.pins--
	now := time.Now()
	if lease {
		cf.leaseUntil = now.Add(c.lease)
	}
	if cf.dead && cf.pins == 0 && !now.Before(cf.leaseUntil) {
		c.closeLocked(cf)
	}
	// No eviction here: a file just leased must reach its reader. The
	// next open makes room.
}

// rename records that the file moved (a deleted segment's .deleted name).
func (cf *cachedFile) rename(path string) {
	cf.c.mu.Lock()
	cf.path = path
	cf.c.mu.Unlock()
}

// drop closes cf for good: its segment was removed or its log closed.
// A file still pinned is closed by its last release.
func (cf *cachedFile) drop() {
	c := cf.c
	c.mu.Lock()
	defer c.mu.Unlock()
	cf.dead = true
	cf.leaseUntil = time.Time{}
	if cf.pins == 0 {
		c.closeLocked(cf)
	}
}

// evictLocked closes least recently used idle files while more than the
// limit would be open with room more. Leased files are spared up to a quarter over the limit
// (a fetch in flight), not beyond: the bound holds within that slack.
// force (the process is out of descriptors) closes every file not in
// use, leased or not.
func (c *FileCache) evictLocked(now time.Time, force bool, room int) {
	for cf := c.tail; cf != nil && (force || c.open+room > c.limit); {
		prev := cf.prev
		if cf.pins == 0 && (force || !now.Before(cf.leaseUntil)) {
			c.closeLocked(cf)
		}
		cf = prev
	}
	for cf := c.tail; cf != nil && c.open+room > c.limit+c.limit/4; {
		prev := cf.prev
		if cf.pins == 0 {
			c.closeLocked(cf)
		}
		cf = prev
	}
}

func (c *FileCache) closeLocked(cf *cachedFile) {
	if cf.f == nil {
		return
	}
	cf.f.Close()
	cf.f = nil
	c.open--
	c.unlinkLocked(cf)
}

func (c *FileCache) pushFrontLocked(cf *cachedFile) {
	cf.prev, cf.next = nil, c.head
	if c.head != nil {
		c.head.prev = cf
	}
	c.head = cf
	if c.tail == nil {
		c.tail = cf
	}
}

func (c *FileCache) unlinkLocked(cf *cachedFile) {
	if cf.prev != nil {
		cf.prev.next = cf.next
	} else {
		c.head = cf.next
	}
	if cf.next != nil {
		cf.next.prev = cf.prev
	} else {
		c.tail = cf.prev
	}
	cf.prev, cf.next = nil, nil
}

func (c *FileCache) moveFrontLocked(cf *cachedFile) {
	if c.head == cf {
		return
	}
	c.unlinkLocked(cf)
	c.pushFrontLocked(cf)
}

// errStorage wraps an I/O error as KAFKA_STORAGE_ERROR unless it already
// carries a Kafka error.
func errStorage(what string, err error) error {
	var ke *tributary.Error
	if errors.As(err, &ke) {
		return err
	}
	return fmt.Errorf("%w: %s: %v", tributary.ErrKafkaStorageError, what, err)
}
