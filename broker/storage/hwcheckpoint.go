package storage

// High-watermark persistence for replicated partitions.
//
// Kafka keeps one replication-offset-checkpoint per log directory, listing
// the HW of every partition in it. We keep one small checkpoint per
// partition directory instead (offset + CRC-32C, like the other
// checkpoints here): it lives and dies with the partition's directory
// (DeleteTopics, reassignment), needs no lock or rewrite across
// partitions, and a damaged file costs one partition its HW rather than
// every partition of the disk. The price — one file write per changed
// partition per interval instead of one per disk — is small at the
// partition counts this broker serves.
//
// Why persist it at all: a restarted replica that started its HW at its
// log end would let consumers (or, as a new leader, its followers) see
// records that were never committed. The checkpoint may lag the true HW
// by one interval; that only hides committed records until the leader's
// next fetch response (follower) or HW move (leader) brings it forward.
const highWatermarkFile = "high-watermark-checkpoint"

// CheckpointHighWatermark persists the high watermark if replication set
// it (SetHighWatermark or AppendAsFollower was used) and it changed since
// the last checkpoint. The replica manager calls it every
// replica.high.watermark.checkpoint.interval.ms; Close calls it too.
func (l *Log) CheckpointHighWatermark() error {
	// Like the other checkpoints: under flushMu, the fsync outside mu.
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.Lock()
	hw, set, closed := l.hw, l.hwSet, l.closed
	l.mu.Unlock()
	if closed {
		return errClosed
	}
	if !set || hw == l.hwCkpt {
		return nil
	}
	if err := writeCheckpointFS(l.fs, dirFile(l.dir, highWatermarkFile), hw); err != nil {
		return errStorage("high watermark checkpoint", err)
	}
	l.hwCkpt = hw
	return nil
}

// loadHighWatermarkLocked restores the HW at Open from the checkpoint,
// clamped to the recovered log; without a checkpoint the log is a single
// replica's and the HW starts at (and follows) the log end.
func (l *Log) loadHighWatermarkLocked() {
	l.hwCkpt = -1
	v, ok := readCheckpointFS(l.fs, dirFile(l.dir, highWatermarkFile))
	if !ok {
		return
	}
	l.hwSet = true
	l.hwCkpt = v
	l.hw = min(max(v, l.logStart), l.logEndLocked())
}
