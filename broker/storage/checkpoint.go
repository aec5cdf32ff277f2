package storage

import (
	"encoding/binary"
	"hash/crc32"
	"os"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// File names inside a partition directory besides the segments.
const (
	recoveryPointFile = "recovery-point-checkpoint"
	logStartFile      = "log-start-offset-checkpoint"
	cleanShutdownFile = "clean-shutdown"
)

// writeFileAtomic replaces path with b through a temporary file and a
// rename, so a crash leaves either the old or the new content.
func writeFileAtomic(path string, b []byte, sync bool) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// A checkpoint is an 8-byte offset and the CRC-32C of those bytes.
func writeCheckpoint(path string, v int64, sync bool) error {
	b := binary.BigEndian.AppendUint64(nil, uint64(v))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	return writeFileAtomic(path, b, sync)
}

// readCheckpoint returns the offset in path; ok is false when the file is
// missing or damaged.
func readCheckpoint(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil || len(b) != 12 || crc32.Checksum(b[:8], castagnoli) != binary.BigEndian.Uint32(b[8:]) {
		return 0, false
	}
	v := int64(binary.BigEndian.Uint64(b))
	return v, v >= 0
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
