package storage

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"

	"github.com/tributary/tributary/internal/vfs"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// File names inside a partition directory besides the segments.
const (
	recoveryPointFile = "recovery-point-checkpoint"
	logStartFile      = "log-start-offset-checkpoint"
	cleanShutdownFile = "clean-shutdown"
)

// publishFile publishes b at path: a temporary file is written and
// fsynced, renamed over path, and the directory is fsynced, so a power
// cut at any point leaves either the old or the new content, and once it
// returns the new content stays.
func publishFile(fs vfs.FS, path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(b, 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fs.Rename(tmp, path)
	}
	if err != nil {
		fs.Remove(tmp)
		return err
	}
	return fs.SyncDir(filepath.Dir(path))
}

// A checkpoint is an 8-byte offset and the CRC-32C of those bytes.
func writeCheckpointFS(fs vfs.FS, path string, v int64) error {
	b := binary.BigEndian.AppendUint64(nil, uint64(v))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	return publishFile(fs, path, b)
}

// readCheckpointFS returns the offset in path; ok is false when the file is
// missing or damaged.
func readCheckpointFS(fs vfs.FS, path string) (int64, bool) {
	b, err := vfs.ReadFile(fs, path)
	if err != nil || len(b) != 12 || crc32.Checksum(b[:8], castagnoli) != binary.BigEndian.Uint32(b[8:]) {
		return 0, false
	}
	v := int64(binary.BigEndian.Uint64(b))
	return v, v >= 0
}

// Wrappers with the signatures from before the vfs seam, on the OS
// filesystem, so code written against them (replication's checkpoints)
// keeps compiling; new code passes the Log's fs (l.fs) to the ...FS
// forms, which the power-loss tests can see. They always fsync and
// publish durably, whatever sync says.

func writeFileAtomic(path string, b []byte, sync bool) error {
	return publishFile(vfs.Default, path, b)
}

func writeCheckpoint(path string, v int64, sync bool) error {
	return writeCheckpointFS(vfs.Default, path, v)
}

func readCheckpoint(path string) (int64, bool) { return readCheckpointFS(vfs.Default, path) }

func syncDir(dir string) error { return vfs.Default.SyncDir(dir) }

// listSnapshots returns the offsets of the snapshot files in dir,
// ascending (the Log keeps its list in l.snapshots).
func listSnapshots(dir string) ([]int64, error) {
	names, err := vfs.Default.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	return snapshotOffsets(names), nil
}
