// Package vfs is the filesystem seam of the broker's storage: the few
// file operations a partition log performs, behind an interface with
// three implementations, as pebble's vfs does.
//
//   - Default (OS) is the real filesystem. Its files are *os.File, so the
//     broker's fetch path can still hand their descriptors to sendfile(2).
//   - NewMem is an in-memory filesystem whose CrashClone keeps only what
//     was fsynced: file data as of the file's last Sync, directory entries
//     as of the directory's last SyncDir. Power-loss tests cut at any
//     point and reopen the clone.
//   - NewInject wraps another FS and fails (or blocks) chosen operations:
//     the k-th write, sync, rename or close, ENOSPC while a flag is set.
package vfs

import (
	"errors"
	"io"
	"os"
	"slices"
	"syscall"
)

// File is an open file. Positioned reads and writes only: storage never
// uses the shared seek offset, so concurrent readers cannot disturb each
// other.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	Sync() error
	Truncate(size int64) error
	Stat() (os.FileInfo, error)
	// SyscallConn exposes the descriptor for sendfile(2); files that
	// have none (in-memory) return an error and callers copy instead.
	SyscallConn() (syscall.RawConn, error)
}

// FS is what storage does with a filesystem.
type FS interface {
	// OpenFile opens name with os.OpenFile's flags (O_RDONLY, O_WRONLY,
	// O_RDWR, O_CREATE, O_EXCL, O_TRUNC).
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	Rename(oldname, newname string) error
	Remove(name string) error
	RemoveAll(name string) error
	MkdirAll(name string, perm os.FileMode) error
	// ReadDir returns the names in directory name, sorted.
	ReadDir(name string) ([]string, error)
	// SyncDir makes the directory's entries (creations, renames,
	// removals) durable.
	SyncDir(name string) error
	Stat(name string) (os.FileInfo, error)
}

// Default is the operating system's filesystem.
var Default FS = osFS{}

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err // not a typed nil *os.File inside a File
	}
	return f, nil
}
func (osFS) Rename(o, n string) error                  { return os.Rename(o, n) }
func (osFS) Remove(name string) error                  { return os.Remove(name) }
func (osFS) RemoveAll(name string) error               { return os.RemoveAll(name) }
func (osFS) MkdirAll(name string, p os.FileMode) error { return os.MkdirAll(name, p) }
func (osFS) Stat(name string) (os.FileInfo, error)     { return os.Stat(name) }

func (osFS) ReadDir(name string) ([]string, error) {
	ents, err := os.ReadDir(name)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return names, nil // os.ReadDir sorts
}

func (osFS) SyncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// ReadFile reads the whole file name.
func ReadFile(fs FS, name string) ([]byte, error) {
	f, err := fs.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b := make([]byte, fi.Size())
	n, err := f.ReadAt(b, 0)
	if err == io.EOF {
		err = nil
	}
	return b[:n], err
}

// WriteFile creates or truncates name and writes b to it, without fsync.
func WriteFile(fs FS, name string, b []byte, perm os.FileMode) error {
	f, err := fs.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(b, 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// IsNoSpace reports whether err means the disk (or quota) is full.
func IsNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// IsTooManyFiles reports whether err means the process or the system ran
// out of file descriptors.
func IsTooManyFiles(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
