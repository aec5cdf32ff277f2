// Package storage is the broker's partition log: Kafka's segment files,
// indexes, retention, idempotent-producer state and crash recovery, for
// one partition per Log.
//
// # How the pieces fit
//
// A Log (log.go) owns a directory of segments (segment.go). Only the last
// segment, the active one, takes appends. Append validates a produce
// request's batches with internal/batch, checks producer sequences
// (producer.go), assigns offsets and stamps headers in place, and hands the
// bytes to the file in one write; nothing of the data stays on the heap.
// Read locates a batch with the in-memory offset index and a short scan
// of batch headers, and returns a FileSlice for sendfile. Open
// (recovery.go) rebuilds all of this after a clean or unclean shutdown.
//
// For replication (broker/replica drives these): epochs.go keeps the
// leader epoch cache that answers OffsetForLeaderEpoch; follower.go
// appends a leader's batches as they are (AppendAsFollower) and cuts a
// divergent or out-of-range log (TruncateTo, TruncateFullyAndStartAt);
// hwcheckpoint.go persists the high watermark of a replicated log.
//
// One mutex guards a Log. Files are written only under it; FileSlices are
// read outside it, which is safe because segment bytes never change once
// written and deleted segments stay open for file.delete.delay.ms.
//
// # On-disk format (all integers big-endian, as in Kafka)
//
//	<dir>/
//	  00000000000000000000.log        RecordBatch v2 bytes as produced, with
//	                                  baseOffset, partitionLeaderEpoch (and
//	                                  LogAppendTime, maxTimestamp) rewritten
//	  00000000000000000000.index      8-byte entries: offset - base (uint32),
//	                                  file position of a batch (uint32); one
//	                                  per index.interval.bytes of log
//	  00000000000000000000.timeindex  12-byte entries: the segment's largest
//	                                  batch maxTimestamp so far (int64), base
//	                                  offset - segment base (uint32) of the
//	                                  batch carrying it; one beside each
//	                                  offset entry when the maximum grew, and
//	                                  a final one when the segment is closed
//	  <offset>.snapshot               producer state as of <offset>, see
//	                                  producer.go; written at roll and Close
//	  recovery-point-checkpoint       offset (int64) + CRC-32C (uint32):
//	                                  everything below is fsynced; moved only
//	                                  by Flush
//	  log-start-offset-checkpoint     offset (int64) + CRC-32C (uint32)
//	  leader-epoch-checkpoint         count (uint32) + count × {epoch int32,
//	                                  start offset int64} + CRC-32C: the
//	                                  leader epoch cache (epochs.go)
//	  high-watermark-checkpoint       offset (int64) + CRC-32C: the HW of a
//	                                  replicated log (hwcheckpoint.go)
//	  clean-shutdown                  empty marker written by Close, removed
//	                                  by Open
//	  *.deleted                       segments awaiting file.delete.delay.ms
//
// Segment names are 20-digit base offsets. Index files are not
// preallocated: their size is their content. Every batch carries its own
// CRC-32C; checkpoints and snapshots carry one each.
//
// # Durability and recovery
//
// Appended bytes reach the page cache before Append returns (so they
// survive a process crash, as in Kafka); fsync happens only when
// flush.messages or flush.ms is due, on Flush, and on Close — by default
// never on a schedule, leaving durability to the page cache and
// replication, like Kafka's defaults. Index entries reach their
// files lazily (roll, Flush, Close), since recovery rebuilds anything after
// the recovery point anyway.
//
// Open without the clean-shutdown marker re-validates every batch from the
// segment holding the recovery point to the end (CRC, lengths, record
// structure, increasing offsets), truncates at the first bad byte and
// drops later segments. Segments before it, and all segments after a
// clean shutdown, keep their indexes if those pass sanity checks (entry
// sizes, ordering, bounds, the last offset entry naming the batch at its
// position); otherwise the indexes are rebuilt from batch headers. The
// producer state comes from the newest intact snapshot at or below the
// recovered end plus a replay of the batch headers after it, so a retried
// batch stored before a crash is answered as a duplicate, never stored
// twice.
//
// # Choices that differ from Kafka
//
//   - The high watermark follows the log end on every append until
//     SetHighWatermark (or AppendAsFollower) is first called (single
//     replica); Open starts it at the log end unless a
//     high-watermark-checkpoint exists.
//   - The HW checkpoint is one file per partition, not Kafka's one
//     replication-offset-checkpoint per log directory (hwcheckpoint.go
//     says why).
//   - Replayed producers count as active from Open, not from their batch
//     timestamps, so old timestamps cannot expire a producer mid-retry.
//   - EnforceRetention rolls an idle active segment after segment.ms by the
//     broker's clock (Kafka does this only on the next append).
//   - Decompressed batches are bounded (16 × max.message.bytes, at least 8
//     MiB, at most 256 MiB) to defeat zip bombs; a batch beyond that is
//     refused with MESSAGE_TOO_LARGE.
package storage
