package vfs

import (
	"io"
	"math/rand/v2"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"
)

// MemFS is an in-memory filesystem that remembers what was made durable.
// Each file keeps its current bytes and the bytes of its last Sync; each
// directory keeps its current entries and the entries of its last
// SyncDir. CrashClone builds the filesystem a power cut would leave.
//
// Paths are slash-separated; relative and absolute names share one tree.
// A removed or renamed-over file stays readable through handles opened
// before, as on POSIX.
type MemFS struct {
	mu   sync.Mutex
	root *memNode
	now  func() time.Time
}

type memNode struct {
	dir bool
	// files
	data   []byte
	synced []byte
	// directories
	children       map[string]*memNode
	syncedChildren map[string]*memNode
	modTime        time.Time
}

func newDir() *memNode {
	return &memNode{dir: true, children: map[string]*memNode{}, syncedChildren: map[string]*memNode{}}
}

// NewMem returns an empty in-memory filesystem.
func NewMem() *MemFS { return &MemFS{root: newDir(), now: time.Now} }

func split(name string) []string {
	name = path.Clean("/" + name)
	if name == "/" {
		return nil
	}
	return strings.Split(name[1:], "/")
}

func pathErr(op, name string, err error) error { return &os.PathError{Op: op, Path: name, Err: err} }

// lookupLocked returns the node at name, or nil.
func (m *MemFS) lookupLocked(name string) *memNode {
	n := m.root
	for _, p := range split(name) {
		if !n.dir {
			return nil
		}
		n = n.children[p]
		if n == nil {
			return nil
		}
	}
	return n
}

// parentLocked returns the directory holding name and name's last element.
func (m *MemFS) parentLocked(op, name string) (*memNode, string, error) {
	parts := split(name)
	if len(parts) == 0 {
		return nil, "", pathErr(op, name, syscall.EINVAL)
	}
	dir := m.lookupLocked(strings.Join(parts[:len(parts)-1], "/"))
	if dir == nil {
		return nil, "", pathErr(op, name, os.ErrNotExist)
	}
	if !dir.dir {
		return nil, "", pathErr(op, name, syscall.ENOTDIR)
	}
	return dir, parts[len(parts)-1], nil
}

func (m *MemFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, base, err := m.parentLocked("open", name)
	if err != nil {
		return nil, err
	}
	n := dir.children[base]
	switch {
	case n == nil && flag&os.O_CREATE == 0:
		return nil, pathErr("open", name, os.ErrNotExist)
	case n != nil && flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL:
		return nil, pathErr("open", name, os.ErrExist)
	case n != nil && n.dir:
		return nil, pathErr("open", name, syscall.EISDIR)
	case n == nil:
		n = &memNode{modTime: m.now()}
		dir.children[base] = n
	}
	if flag&os.O_TRUNC != 0 && flag&(os.O_WRONLY|os.O_RDWR) != 0 {
		n.data = nil
		n.modTime = m.now()
	}
	return &memFile{fs: m, n: n, name: name, write: flag&(os.O_WRONLY|os.O_RDWR) != 0, read: flag&os.O_WRONLY == 0}, nil
}

func (m *MemFS) Rename(oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	od, ob, err := m.parentLocked("rename", oldname)
	if err != nil {
		return err
	}
	nd, nb, err := m.parentLocked("rename", newname)
	if err != nil {
		return err
	}
	n := od.children[ob]
	if n == nil {
		return pathErr("rename", oldname, os.ErrNotExist)
	}
	if t := nd.children[nb]; t != nil && t.dir {
		return pathErr("rename", newname, syscall.EEXIST)
	}
	delete(od.children, ob)
	nd.children[nb] = n
	return nil
}

func (m *MemFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, base, err := m.parentLocked("remove", name)
	if err != nil {
		return err
	}
	n := dir.children[base]
	if n == nil {
		return pathErr("remove", name, os.ErrNotExist)
	}
	if n.dir && len(n.children) > 0 {
		return pathErr("remove", name, syscall.ENOTEMPTY)
	}
	delete(dir.children, base)
	return nil
}

func (m *MemFS) RemoveAll(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, base, err := m.parentLocked("removeall", name)
	if err != nil {
		return nil // like os.RemoveAll: nothing there is success
	}
	delete(dir.children, base)
	return nil
}

func (m *MemFS) MkdirAll(name string, perm os.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.root
	for _, p := range split(name) {
		c := n.children[p]
		if c == nil {
			c = newDir()
			c.modTime = m.now()
			n.children[p] = c
		} else if !c.dir {
			return pathErr("mkdir", name, syscall.ENOTDIR)
		}
		n = c
	}
	return nil
}

func (m *MemFS) ReadDir(name string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.lookupLocked(name)
	if n == nil {
		return nil, pathErr("readdir", name, os.ErrNotExist)
	}
	if !n.dir {
		return nil, pathErr("readdir", name, syscall.ENOTDIR)
	}
	return sortedKeys(n.children), nil
}

func (m *MemFS) SyncDir(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.lookupLocked(name)
	if n == nil {
		return pathErr("syncdir", name, os.ErrNotExist)
	}
	if !n.dir {
		return pathErr("syncdir", name, syscall.ENOTDIR)
	}
	n.syncedChildren = make(map[string]*memNode, len(n.children))
	for k, v := range n.children {
		n.syncedChildren[k] = v
	}
	return nil
}

func (m *MemFS) Stat(name string) (os.FileInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.lookupLocked(name)
	if n == nil {
		return nil, pathErr("stat", name, os.ErrNotExist)
	}
	return n.info(path.Base(name)), nil
}

// CrashClone returns the filesystem a power cut at this moment would
// leave: every file holds the bytes of its last Sync (nothing if it was
// never synced), every directory the entries of its last SyncDir. The
// root and directories made by MkdirAll count as durable entries of
// their parents only once the parent is synced, except that the path to
// a directory that exists is kept (storage syncs the files, not the
// directories above the log dir, as Kafka does).
func (m *MemFS) CrashClone() *MemFS {
	return m.crashClone(nil)
}

// CrashCloneTorn is CrashClone where each file that was written since its
// last Sync keeps, with probability 1/2, a random part of the unsynced
// bytes past its synced length, as a torn write would leave them.
func (m *MemFS) CrashCloneTorn(rng *rand.Rand) *MemFS {
	return m.crashClone(rng)
}

func (m *MemFS) crashClone(rng *rand.Rand) *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	memo := map[*memNode]*memNode{}
	var clone func(n *memNode) *memNode
	clone = func(n *memNode) *memNode {
		if c, ok := memo[n]; ok {
			return c
		}
		c := &memNode{dir: n.dir, modTime: n.modTime}
		memo[n] = c
		if !n.dir {
			c.data = append([]byte(nil), n.synced...)
			if rng != nil && len(n.data) > len(n.synced) && rng.IntN(2) == 0 {
				extra := rng.IntN(len(n.data) - len(n.synced) + 1)
				c.data = append(c.data, n.data[len(n.synced):len(n.synced)+extra]...)
			}
			c.synced = append([]byte(nil), c.data...)
			return c
		}
		c.children = map[string]*memNode{}
		for _, k := range sortedKeys(n.syncedChildren) {
			c.children[k] = clone(n.syncedChildren[k])
		}
		// Directories still present keep their place: the tests sync
		// files and log directories, not every ancestor.
		for _, k := range sortedKeys(n.children) {
			if v := n.children[k]; v.dir && c.children[k] == nil {
				c.children[k] = clone(v)
			}
		}
		c.syncedChildren = make(map[string]*memNode, len(c.children))
		for k, v := range c.children {
			c.syncedChildren[k] = v
		}
		return c
	}
	return &MemFS{root: clone(m.root), now: m.now}
}

func (n *memNode) info(name string) os.FileInfo {
	return memInfo{name: name, size: int64(len(n.data)), dir: n.dir, mod: n.modTime}
}

type memInfo struct {
	name string
	size int64
	dir  bool
	mod  time.Time
}

func (i memInfo) Name() string { return i.name }
func (i memInfo) Size() int64  { return i.size }
func (i memInfo) Mode() os.FileMode {
	if i.dir {
		return os.ModeDir | 0o755
	}
	return 0o644
}
func (i memInfo) ModTime() time.Time { return i.mod }
func (i memInfo) IsDir() bool        { return i.dir }
func (i memInfo) Sys() any           { return nil }

type memFile struct {
	fs          *MemFS
	n           *memNode
	name        string
	read, write bool
	closed      bool
}

var errNoConn = pathErr("syscallconn", "mem", syscall.ENOTSUP)

// usableLocked checks an operation that needs the file open, in a mode
// it was opened with (allowed), at a non-negative offset or size n, as
// the OS would: EBADF for the wrong mode, EINVAL for a negative n.
func (f *memFile) usableLocked(op string, allowed bool, n int64) error {
	switch {
	case f.closed:
		return pathErr(op, f.name, os.ErrClosed)
	case !allowed:
		return pathErr(op, f.name, syscall.EBADF)
	case n < 0:
		return pathErr(op, f.name, syscall.EINVAL)
	}
	return nil
}

func (f *memFile) ReadAt(b []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.usableLocked("read", f.read, off); err != nil {
		return 0, err
	}
	if off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	n := copy(b, f.n.data[off:])
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(b []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.usableLocked("write", f.write, off); err != nil {
		return 0, err
	}
	end := off + int64(len(b))
	if end > int64(len(f.n.data)) {
		if end <= int64(cap(f.n.data)) {
			f.n.data = f.n.data[:end]
		} else {
			grown := make([]byte, end, max(end, 2*int64(cap(f.n.data))))
			copy(grown, f.n.data)
			f.n.data = grown
		}
	}
	copy(f.n.data[off:], b)
	f.n.modTime = f.fs.now()
	return len(b), nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return pathErr("close", f.name, os.ErrClosed)
	}
	f.closed = true
	return nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return pathErr("sync", f.name, os.ErrClosed)
	}
	f.n.synced = append(f.n.synced[:0:0], f.n.data...)
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.usableLocked("truncate", f.write, size); err != nil {
		return err
	}
	if size <= int64(len(f.n.data)) {
		// A fresh array: slices handed out by earlier reads stay intact.
		f.n.data = append([]byte(nil), f.n.data[:size]...)
	} else {
		f.n.data = append(f.n.data, make([]byte, size-int64(len(f.n.data)))...)
	}
	f.n.modTime = f.fs.now()
	return nil
}

func (f *memFile) Stat() (os.FileInfo, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return nil, pathErr("stat", f.name, os.ErrClosed)
	}
	return f.n.info(path.Base(f.name)), nil
}

func (f *memFile) SyscallConn() (syscall.RawConn, error) { return nil, errNoConn }
