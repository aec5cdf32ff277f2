package vfs

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

// Op names a filesystem operation for InjectFS.
type Op int

const (
	OpOpen Op = iota
	OpRead
	OpWrite
	OpSync
	OpTruncate
	OpClose
	OpRename
	OpRemove
	OpMkdir
	OpReadDir
	OpSyncDir
	OpStat
	numOps
)

var opNames = [...]string{"open", "read", "write", "sync", "truncate", "close", "rename", "remove", "mkdir", "readdir", "syncdir", "stat"}

func (o Op) String() string {
	if o >= 0 && o < numOps {
		return opNames[o]
	}
	return "op?"
}

// Hook decides the fate of one operation on path: nil lets it run, an
// error fails it. A hook may also block (a slow disk) or record state (a
// crash clone) before returning.
type Hook func(op Op, path string) error

// InjectFS passes operations to an inner FS after asking its hook. A
// failed write first writes half of its bytes, as a disk filling up
// mid-write leaves a torn tail.
type InjectFS struct {
	inner FS
	hook  atomic.Pointer[Hook]
	count [numOps]atomic.Int64
}

// NewInject wraps inner; with no hook set it changes nothing.
func NewInject(inner FS) *InjectFS { return &InjectFS{inner: inner} }

// SetHook installs h (nil removes it).
func (f *InjectFS) SetHook(h Hook) {
	if h == nil {
		f.hook.Store(nil)
		return
	}
	f.hook.Store(&h)
}

// Count is how many operations of kind op were attempted.
func (f *InjectFS) Count(op Op) int64 { return f.count[op].Load() }

func (f *InjectFS) check(op Op, path string) error {
	f.count[op].Add(1)
	if h := f.hook.Load(); h != nil {
		if err := (*h)(op, path); err != nil {
			return pathErr(op.String(), path, err)
		}
	}
	return nil
}

// FailNth returns a hook that fails the k-th (1-based) operation of kind
// op with err, and nothing else.
func FailNth(op Op, k int64, err error) Hook {
	var n atomic.Int64
	return func(o Op, _ string) error {
		if o == op && n.Add(1) == k {
			return err
		}
		return nil
	}
}

// DiskFull is a switch for an InjectFS hook: while it is on, writes,
// truncates that grow nothing, opens for creation and renames are
// refused with ENOSPC, as on a full disk.
type DiskFull struct{ on atomic.Bool }

func (d *DiskFull) Set(full bool) { d.on.Store(full) }

// Hook fails space-taking operations while the disk is full.
func (d *DiskFull) Hook(op Op, _ string) error {
	if !d.on.Load() {
		return nil
	}
	switch op {
	case OpWrite, OpSync, OpRename, OpMkdir:
		return syscall.ENOSPC
	}
	return nil
}

// Gate blocks operations of one kind until released, to make a slow
// disk: Wait reports when an operation is held.
type Gate struct {
	Op      Op
	mu      sync.Mutex
	closed  bool
	release chan struct{}
	held    chan struct{}
}

// NewGate returns a closed gate for op.
func NewGate(op Op) *Gate {
	return &Gate{Op: op, closed: true, release: make(chan struct{}), held: make(chan struct{}, 1)}
}

// Hook blocks op while the gate is closed.
func (g *Gate) Hook(op Op, _ string) error {
	if op != g.Op {
		return nil
	}
	g.mu.Lock()
	closed, ch := g.closed, g.release
	g.mu.Unlock()
	if !closed {
		return nil
	}
	select {
	case g.held <- struct{}{}:
	default:
	}
	<-ch
	return nil
}

// Held is signalled when an operation starts waiting at the gate.
func (g *Gate) Held() <-chan struct{} { return g.held }

// Open lets every waiting and later operation through.
func (g *Gate) Open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		g.closed = false
		close(g.release)
	}
}

func (f *InjectFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if err := f.check(OpOpen, name); err != nil {
		return nil, err
	}
	inner, err := f.inner.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &injectFile{fs: f, f: inner, name: name}, nil
}

func (f *InjectFS) Rename(o, n string) error {
	if err := f.check(OpRename, n); err != nil {
		return err
	}
	return f.inner.Rename(o, n)
}

func (f *InjectFS) Remove(name string) error {
	if err := f.check(OpRemove, name); err != nil {
		return err
	}
	return f.inner.Remove(name)
}

func (f *InjectFS) RemoveAll(name string) error {
	if err := f.check(OpRemove, name); err != nil {
		return err
	}
	return f.inner.RemoveAll(name)
}

func (f *InjectFS) MkdirAll(name string, perm os.FileMode) error {
	if err := f.check(OpMkdir, name); err != nil {
		return err
	}
	return f.inner.MkdirAll(name, perm)
}

func (f *InjectFS) ReadDir(name string) ([]string, error) {
	if err := f.check(OpReadDir, name); err != nil {
		return nil, err
	}
	return f.inner.ReadDir(name)
}

func (f *InjectFS) SyncDir(name string) error {
	if err := f.check(OpSyncDir, name); err != nil {
		return err
	}
	return f.inner.SyncDir(name)
}

func (f *InjectFS) Stat(name string) (os.FileInfo, error) {
	if err := f.check(OpStat, name); err != nil {
		return nil, err
	}
	return f.inner.Stat(name)
}

type injectFile struct {
	fs   *InjectFS
	f    File
	name string
}

func (f *injectFile) ReadAt(b []byte, off int64) (int, error) {
	if err := f.fs.check(OpRead, f.name); err != nil {
		return 0, err
	}
	return f.f.ReadAt(b, off)
}

func (f *injectFile) WriteAt(b []byte, off int64) (int, error) {
	if err := f.fs.check(OpWrite, f.name); err != nil {
		n, _ := f.f.WriteAt(b[:len(b)/2], off)
		return n, err
	}
	return f.f.WriteAt(b, off)
}

func (f *injectFile) Close() error {
	err := f.fs.check(OpClose, f.name)
	// The descriptor goes away even when close reports an error, as
	// close(2) does.
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (f *injectFile) Sync() error {
	if err := f.fs.check(OpSync, f.name); err != nil {
		return err
	}
	return f.f.Sync()
}

func (f *injectFile) Truncate(size int64) error {
	if err := f.fs.check(OpTruncate, f.name); err != nil {
		return err
	}
	return f.f.Truncate(size)
}

func (f *injectFile) Stat() (os.FileInfo, error) { return f.f.Stat() }

func (f *injectFile) SyscallConn() (syscall.RawConn, error) { return f.f.SyscallConn() }
