package vfs

import (
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func write(t *testing.T, fs FS, name string, b []byte) File {
	t.Helper()
	f, err := fs.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	_, err = f.WriteAt(b, 0)
	require.NoError(t, err)
	return f
}

// The same script against the OS and the in-memory filesystem gives the
// same answers.
func TestMemMatchesOS(t *testing.T) {
	for name, fs := range map[string]FS{"os": Default, "mem": NewMem()} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "a", "b")
			if name == "mem" {
				dir = "/data/a/b"
			}
			require.NoError(t, fs.MkdirAll(dir, 0o755))
			f := write(t, fs, filepath.Join(dir, "x"), []byte("hello world"))
			b := make([]byte, 5)
			n, err := f.ReadAt(b, 6)
			require.NoError(t, err)
			require.Equal(t, "world", string(b[:n]))
			n, err = f.ReadAt(b, 8)
			require.Equal(t, io.EOF, err)
			require.Equal(t, "rld", string(b[:n]))
			require.NoError(t, f.Truncate(5))
			fi, err := f.Stat()
			require.NoError(t, err)
			require.EqualValues(t, 5, fi.Size())
			require.NoError(t, f.Sync())
			require.NoError(t, f.Close())
			require.ErrorIs(t, f.Close(), os.ErrClosed)

			_, err = fs.OpenFile(filepath.Join(dir, "x"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
			require.ErrorIs(t, err, os.ErrExist)
			_, err = fs.OpenFile(filepath.Join(dir, "nope"), os.O_RDONLY, 0)
			require.ErrorIs(t, err, os.ErrNotExist)

			require.NoError(t, fs.Rename(filepath.Join(dir, "x"), filepath.Join(dir, "y")))
			names, err := fs.ReadDir(dir)
			require.NoError(t, err)
			require.Equal(t, []string{"y"}, names)
			got, err := ReadFile(fs, filepath.Join(dir, "y"))
			require.NoError(t, err)
			require.Equal(t, "hello", string(got))
			require.NoError(t, fs.SyncDir(dir))
			require.NoError(t, fs.Remove(filepath.Join(dir, "y")))
			_, err = fs.Stat(filepath.Join(dir, "y"))
			require.ErrorIs(t, err, os.ErrNotExist)
			require.NoError(t, fs.RemoveAll(filepath.Dir(dir)))
			_, err = fs.Stat(dir)
			require.ErrorIs(t, err, os.ErrNotExist)
		})
	}
}

// A handle outlives the removal of its name, as on POSIX.
func TestMemRemovedFileStaysReadable(t *testing.T) {
	fs := NewMem()
	f := write(t, fs, "/f", []byte("data"))
	require.NoError(t, fs.Remove("/f"))
	b := make([]byte, 4)
	_, err := f.ReadAt(b, 0)
	require.NoError(t, err)
	require.Equal(t, "data", string(b))
}

func TestCrashCloneKeepsOnlySynced(t *testing.T) {
	fs := NewMem()
	require.NoError(t, fs.MkdirAll("/d", 0o755))
	synced := write(t, fs, "/d/synced", []byte("durable"))
	require.NoError(t, synced.Sync())
	require.NoError(t, fs.SyncDir("/d"))
	_, err := synced.WriteAt([]byte(" and more"), 7)
	require.NoError(t, err)
	unsyncedEntry := write(t, fs, "/d/new", []byte("x"))
	require.NoError(t, unsyncedEntry.Sync()) // data synced, entry not
	require.NoError(t, fs.Rename("/d/synced", "/d/renamed"))

	c := fs.CrashClone()
	names, err := c.ReadDir("/d")
	require.NoError(t, err)
	require.Equal(t, []string{"synced"}, names, "the rename and the new entry were never synced")
	got, err := ReadFile(c, "/d/synced")
	require.NoError(t, err)
	require.Equal(t, "durable", string(got))

	// Once the directory is synced, both the rename and the new file
	// survive, with their synced bytes only.
	require.NoError(t, fs.SyncDir("/d"))
	c = fs.CrashClone()
	names, err = c.ReadDir("/d")
	require.NoError(t, err)
	require.Equal(t, []string{"new", "renamed"}, names)
	got, err = ReadFile(c, "/d/renamed")
	require.NoError(t, err)
	require.Equal(t, "durable", string(got))

	// The clone is independent, and a torn clone keeps a prefix of the
	// unsynced tail.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		got, err := ReadFile(fs.CrashCloneTorn(rng), "/d/renamed")
		require.NoError(t, err)
		require.Contains(t, "durable and more", string(got))
		require.GreaterOrEqual(t, len(got), len("durable"))
	}
}

func TestInjectFailNthAndTornWrite(t *testing.T) {
	mem := NewMem()
	fs := NewInject(mem)
	fs.SetHook(FailNth(OpWrite, 2, syscall.ENOSPC))
	f := write(t, fs, "/f", []byte("first"))
	_, err := f.WriteAt([]byte("second"), 5)
	require.True(t, IsNoSpace(err), "%v", err)
	got, err := ReadFile(mem, "/f")
	require.NoError(t, err)
	require.Equal(t, "firstsec", string(got), "a failed write leaves half of its bytes")
	_, err = f.WriteAt([]byte("third"), 5)
	require.NoError(t, err, "only the second write fails")
	require.EqualValues(t, 3, fs.Count(OpWrite))

	var full DiskFull
	fs.SetHook(full.Hook)
	full.Set(true)
	require.Error(t, fs.Rename("/f", "/g"))
	full.Set(false)
	require.NoError(t, fs.Rename("/f", "/g"))

	fs.SetHook(func(op Op, _ string) error {
		if op == OpOpen {
			return syscall.EMFILE
		}
		return nil
	})
	_, err = fs.OpenFile("/g", os.O_RDONLY, 0)
	require.True(t, IsTooManyFiles(err))
	require.True(t, errors.Is(err, syscall.EMFILE))
}

func TestGateBlocksUntilOpened(t *testing.T) {
	fs := NewInject(NewMem())
	g := NewGate(OpSync)
	fs.SetHook(g.Hook)
	f := write(t, fs, "/f", []byte("x"))
	done := make(chan error)
	go func() { done <- f.Sync() }()
	<-g.Held()
	select {
	case <-done:
		t.Fatal("sync passed a closed gate")
	default:
	}
	g.Open()
	require.NoError(t, <-done)
}

// The OS filesystem's files carry a descriptor for sendfile; in-memory
// files say they have none.
func TestSyscallConn(t *testing.T) {
	f := write(t, Default, filepath.Join(t.TempDir(), "f"), nil)
	defer f.Close()
	_, err := f.SyscallConn()
	require.NoError(t, err)
	m := write(t, NewMem(), "/f", nil)
	_, err = m.SyscallConn()
	require.Error(t, err)
}
