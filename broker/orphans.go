package broker

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Partition directories the metadata does not name, and deleted topics.
//
// The metadata file is the source of truth. An interrupted CreateTopics
// leaves <topic>-<n> directories it never published; an interrupted
// DeleteTopics leaves the topic's directories after the metadata stopped
// naming it. Deleting a topic renames each partition directory to Kafka's
// <topic>-<n>.<uniqueid>-delete, closes the log and removes the directory
// file.delete.delay.ms later in the background, so a new topic of the
// same name never meets the old files. At start, once the metadata is
// loaded, every directory of the log dir shaped like a partition
// directory (<topic>-<n> or <topic>-<n>.<id>-delete) that the metadata
// does not name is removed, with one summary line. Nothing else is
// touched: files, other names, __cluster_metadata* (the controller's), and
// nothing at all in a directory holding Kafka's own checkpoint files
// (log.dirs pointed at a Kafka broker's data by mistake).
//
// Deleting a topic must work on a full disk, but appending to the
// controller quorum's log needs room. A reserve file
// (metadataReserveFile, metadataReserveMin bytes) is kept in the log dir;
// when a change fails with ENOSPC the reserve is removed and the change
// retried, and the reserve is re-created after a later change once there
// is room again.
const (
	deleteDirSuffix     = "-delete"
	metadataReserveFile = "__cluster_metadata.reserve"
	metadataReserveMin  = 1 << 20
)

var (
	partitionDirRE = regexp.MustCompile(`^(.+)-([0-9]+)$`)
	deleteDirRE    = regexp.MustCompile(`^(.+)-([0-9]+)\.[0-9a-f]{32}-delete$`)
	// Files Kafka keeps in a log dir; Tributary never writes them.
	kafkaCheckpointFiles = []string{"recovery-point-offset-checkpoint", "replication-offset-checkpoint", "log-start-offset-checkpoint", "cleaner-offset-checkpoint"}
)

// partitionDirShaped reports whether name looks like a partition
// directory, live or being deleted.
func partitionDirShaped(name string) bool {
	m := partitionDirRE.FindStringSubmatch(name)
	if m == nil {
		m = deleteDirRE.FindStringSubmatch(name)
	}
	if m == nil || validateTopicName(m[1]) != nil {
		return false
	}
	if len(m[1]) >= len("__cluster_metadata") && m[1][:len("__cluster_metadata")] == "__cluster_metadata" {
		return false
	}
	_, err := strconv.ParseInt(m[2], 10, 32)
	return err == nil
}

// removeOrphans removes the partition-shaped directories of the log dir
// that known (base names of live partition directories) does not hold.
// It runs in New, after the metadata is loaded and before serving.
func (b *Broker) removeOrphans(known map[string]bool) {
	for _, f := range kafkaCheckpointFiles {
		if _, err := os.Stat(filepath.Join(b.dir, f)); err == nil {
			b.logger.Warn("log dir holds Kafka checkpoint files; not removing unknown partition directories", "dir", b.dir, "file", f)
			return
		}
	}
	entries, err := os.ReadDir(b.dir)
	if err != nil {
		b.logger.Warn("listing log dir for orphan partition directories", "dir", b.dir, "err", err)
		return
	}
	var removed, failed int
	var examples []string
	var firstErr error
	for _, e := range entries {
		if !e.IsDir() || known[e.Name()] || !partitionDirShaped(e.Name()) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(b.dir, e.Name())); err != nil {
			failed++
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		removed++
		if len(examples) < 3 {
			examples = append(examples, e.Name())
		}
	}
	if removed+failed == 0 {
		return
	}
	if err := syncDir(b.dir); err != nil && firstErr == nil {
		firstErr = err
	}
	b.logger.Warn("removed partition directories the metadata does not name (interrupted create or delete)",
		"dir", b.dir, "removed", removed, "failed", failed, "examples", examples, "err", firstErr)
}

// retire takes the logs of a deleted topic out of service: each
// partition directory is renamed to <dir>.<uniqueid>-delete and its log
// closed; the renamed directories are removed after delay, in the
// background (or at the next start if the broker stops first).
func (b *Broker) retire(ps []*partition, delay time.Duration) {
	var doomed []string
	for _, p := range ps {
		if p.log == nil {
			continue
		}
		dir := p.log.Dir()
		id := newUUID()
		to := dir + "." + hex.EncodeToString(id[:]) + deleteDirSuffix
		if err := os.Rename(dir, to); err != nil {
			// Cannot rename: remove it now instead.
			b.logger.Warn("renaming deleted partition directory; removing it now", "dir", dir, "err", err)
			if err := p.log.Delete(); err != nil {
				b.logger.Warn("deleting partition log", "dir", dir, "err", err)
			}
			continue
		}
		// The log's files are open in the renamed directory; Delete
		// closes them and finds nothing left at the old path.
		if err := p.log.Delete(); err != nil {
			b.logger.Warn("closing deleted partition log", "dir", to, "err", err)
		}
		doomed = append(doomed, to)
	}
	if len(doomed) == 0 {
		return
	}
	if err := syncDir(b.dir); err != nil {
		b.logger.Warn("syncing log dir after renaming deleted partitions", "dir", b.dir, "err", err)
	}
	b.goTracked(func() {
		if delay > 0 && !b.sleep(delay) {
			return // closing: the next start removes them
		}
		for _, d := range doomed {
			if err := os.RemoveAll(d); err != nil {
				b.logger.Warn("removing deleted partition directory", "dir", d, "err", err)
			}
		}
	})
}

// withMetadataReserve runs op, a change through the controller quorum.
// When it fails because the disk is full (the quorum's log could not be
// written), the reserve file is given up and op runs once more: deleting
// a topic is how an operator frees a full disk, so it must not need
// free space itself. The reserve is made again once there is room.
func (b *Broker) withMetadataReserve(op func() error) error {
	// A quorum that cannot write its log loses its leader and cannot
	// elect another until there is room, so the reserve is given up
	// before trying when the disk is (nearly) full, not after a failure.
	if free, ok := freeBytes(b.dir); ok && free < metadataReserveMin {
		b.releaseMetadataReserve()
	}
	err := op()
	if err != nil && isNoSpace(err) && b.releaseMetadataReserve() {
		err = op()
	}
	if err == nil {
		b.tryGo(func() { b.ensureMetadataReserve(0) })
	}
	return err
}

// releaseMetadataReserve removes the reserve file; it reports whether
// there was one.
func (b *Broker) releaseMetadataReserve() bool {
	if err := os.Remove(filepath.Join(b.dir, metadataReserveFile)); err != nil {
		return false
	}
	syncDir(b.dir)
	b.logger.Warn("disk full: released the metadata reserve to write the metadata log", "dir", b.dir)
	return true
}

// isNoSpace reports whether err is a full disk, also when it crossed the
// controller's RPC as text.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), syscall.ENOSPC.Error())
}

// ensureMetadataReserve creates or grows the reserve file to
// max(metadataReserveMin, 2*metaSize), best effort: on a full disk it
// stays missing and is tried again after the next metadata write.
func (b *Broker) ensureMetadataReserve(metaSize int) {
	want := int64(max(metadataReserveMin, 2*metaSize))
	path := filepath.Join(b.dir, metadataReserveFile)
	if st, err := os.Stat(path); err == nil && st.Size() >= want {
		return
	}
	if err := writeReserve(path, want); err != nil {
		os.Remove(path)
		b.logger.Debug("metadata reserve not created", "path", path, "err", err)
	}
}

// writeReserve writes size bytes that occupy real blocks: not zeros,
// which a compressing filesystem would not store.
func writeReserve(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	chunk := make([]byte, 64<<10)
	for i := range chunk {
		chunk[i] = byte(i*131 + 7)
	}
	for left := size; left > 0; {
		n, err := f.Write(chunk[:min(left, int64(len(chunk)))])
		left -= int64(n)
		if err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing reserve: %w", err)
	}
	return nil
}
