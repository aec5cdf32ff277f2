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
// Transactions (txn.go): transactional batches open a transaction per
// producer, markers (AppendMarker, or replicated control batches) close
// it; the last stable offset is the high watermark or the oldest open
// transaction's first offset, and each aborted transaction is indexed in
// the .txnindex of the segment holding its marker (AbortedTransactions).
// Retention, DeleteRecords and the cleaner stop at the last stable
// offset; the cleaner removes aborted records and, after
// delete.retention.ms, the markers of transactions it emptied.
//
// Compaction (cleaner.go): Clean rewrites a compacted log's segments
// below the dirty head keeping the newest record of every key, with
// CleanState telling the broker's cleaner threads which log is dirtiest.
//
// For replication (broker/replica drives these): epochs.go keeps the
// leader epoch cache that answers OffsetForLeaderEpoch; follower.go
// appends a leader's batches as they are (AppendAsFollower) and cuts a
// divergent or out-of-range log (TruncateTo, TruncateFullyAndStartAt);
// hwcheckpoint.go persists the high watermark of a replicated log.
//
// Every file operation goes through a vfs.FS (internal/vfs, Options.FS):
// the OS by default, whose files are *os.File so sendfile keeps working;
// an in-memory filesystem whose CrashClone keeps only what was fsynced,
// and an error-injecting wrapper, for the power-loss and fault tests.
// The replication files (epoch and HW checkpoints, truncation) use it
// too, so the same tests cover them.
//
// Segment .log files are opened on use through a FileCache (files.go)
// shared by every Log of the process and bounded (by default half of
// RLIMIT_NOFILE): the active segment is held open, others are closed
// least-recently-used first. A FileSlice's file is leased for FileLease
// so the fetch writing it is not cut short. A Log that cannot open a file
// (EMFILE) fails that request with KAFKA_STORAGE_ERROR and nothing else.
// Index, snapshot and checkpoint files are opened only while read or
// written. The list of snapshots is kept in memory: a roll never lists
// the directory, and a truncation drops the entries above its cut.
//
// # Locks
//
// Taken in this order, never the reverse:
//
//	appendMu      writers: Append, AppendAsFollower, TruncateTo,
//	              TruncateFullyAndStartAt, AssignEpochStartOffset,
//	              EnforceRetention, Close. Validation and decompression of
//	              a request, and the fsyncs a roll, flush.messages or a
//	              new leader epoch asks for, run under it, outside mu.
//	              Every change of the log end happens under it, so an
//	              append can publish its epoch entry before taking mu.
//	flushMu       flush and the checkpoint writes (recovery point, log
//	              start, leader epochs, high watermark); fsyncs run under
//	              it, outside mu. Truncations hold it throughout, so no
//	              flush in flight moves the recovery point past a cut.
//	mu            the Log's state. Readers (Read, HighWatermark,
//	              LogEndOffset, OffsetForTimestamp, EndOffsetForEpoch, ...)
//	              take only mu, and nothing slow happens under it, so a
//	              hanging disk does not stall fetches.
//	FileCache.mu  the descriptor bound, taken under mu.
//
// Files are written under mu (the append's one write, index tails, a
// truncation's ftruncate); FileSlices are read outside it, which is safe
// because segment bytes never change once written (a truncation cuts
// only a replica's divergent tail, as in Kafka) and deleted segments stay
// open for file.delete.delay.ms.
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
//	  00000000000000000000.txnindex   34-byte entries, Kafka's: version
//	                                  (int16 0), producer id, first offset,
//	                                  last offset (the abort marker), last
//	                                  stable offset after it (int64s); one
//	                                  per aborted transaction whose marker
//	                                  the segment holds; absent when none
//	  <offset>.snapshot               producer state as of <offset>, see
//	                                  producer.go; written after each roll
//	                                  and at Close; the newest two are kept
//	  recovery-point-checkpoint       offset (int64) + CRC-32C (uint32):
//	                                  everything below is fsynced; written
//	                                  after each roll's flush, by
//	                                  CheckpointRecoveryPoint (the broker's
//	                                  log.flush.offset.checkpoint.interval.ms)
//	                                  and at Close; lowered before a
//	                                  truncation cuts below it
//	  log-start-offset-checkpoint     offset (int64) + CRC-32C (uint32);
//	                                  written before DeleteRecordsBefore
//	                                  returns, by CheckpointLogStartOffset
//	                                  (log.flush.start.offset.checkpoint.interval.ms)
//	                                  and at Close
//	  leader-epoch-checkpoint         count (uint32) + count × {epoch int32,
//	                                  start offset int64} + CRC-32C: the
//	                                  leader epoch cache (epochs.go);
//	                                  published before the first batch of a
//	                                  new epoch is written, after
//	                                  truncations, and (lazily) after the
//	                                  log start moves
//	  high-watermark-checkpoint       offset (int64) + CRC-32C: the HW of a
//	                                  replicated log (hwcheckpoint.go), by
//	                                  CheckpointHighWatermark and at Close
//	  cleaner-offset-checkpoint       offset (int64) + CRC-32C: below it a
//	                                  compacted log is clean (cleaner.go)
//	  <base>.log.cleaned (.index.cleaned, .timeindex.cleaned,
//	  .txnindex.cleaned, always written)
//	                                  a segment group being rewritten by
//	                                  the cleaner; removed by Open unless
//	                                  its swap marker exists
//	  <base>.swap                     offset (int64) + CRC-32C: the end of
//	                                  the group the .cleaned files replace;
//	                                  its presence commits the swap, which
//	                                  Open completes
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
// survive a process crash, as in Kafka); fsync happens when
// flush.messages or flush.ms is due (with flush.messages=1 an append is
// acknowledged only after its fsync), on Flush, when a segment rolls,
// and on Close. Index entries reach their files lazily (roll, Flush,
// Close), since recovery rebuilds anything after the recovery point.
//
// A flush fsyncs the dirty segments, the index files that grew and, when
// entries changed, the directory, then moves the in-memory recovery
// point; the checkpoint file follows after each roll and periodically.
// A roll flushes as Kafka does (after the new segment is made), so the
// recovery point trails the active segment: an unclean restart rescans
// only the active segment, whatever the size of the log.
//
// Every file published by rename (checkpoints, snapshots, the
// clean-shutdown marker) is written to a .tmp file, fsynced, renamed and
// its directory fsynced before the call returns; .deleted renames are
// published by the next flush's directory fsync (a lost one only brings
// an old segment back for retention to delete again). Open removes the
// clean-shutdown marker durably before writing anything.
//
// A truncation (TruncateTo, TruncateFullyAndStartAt) returns only once
// it is durable: it lowers the recovery-point checkpoint below the cut
// first, so a crash in the middle is recovered by rescanning from there;
// then it cuts the segment, renames later segments .deleted, and flushes
// (segment fsync, directory fsync) and rewrites the checkpoints before
// anything can be appended after the cut — otherwise a crash could bring
// the old tail back behind new data. The leader epoch file is published
// before the first batch of a new epoch is written, so after a crash it
// is never behind the log; Open trims entries past the recovered end
// and below the log start, and rebuilds a missing or damaged file from
// the batch headers.
//
// Open without the clean-shutdown marker re-validates every batch from
// the segment holding the recovery point to the end (CRC, lengths,
// record structure, increasing offsets, and each segment ending where
// the next begins), truncates at the first bad byte and drops later
// segments: that is the unflushed tail a crash or power cut tore.
// Segments before it, and all segments after a clean shutdown, keep their
// indexes if those pass sanity checks (entry sizes, ordering, bounds, the
// last offset entry naming the batch at its position; an empty time
// index over batches without timestamps is valid); otherwise the indexes
// are rebuilt from batch headers. Damage found there — below the
// recovery point, in data that was fsynced — is never answered by
// truncation: it is logged at ERROR, reads of the damaged range answer
// CORRUPT_MESSAGE (as Kafka's fetch does on a CorruptRecordException),
// and the data after it stays readable. The broker checks batch CRCs
// only where it decodes batches itself (timestamp lookups); damage inside
// a record payload reaches consumers, whose CRC check rejects it, as with
// Kafka.
//
// The producer state comes from the newest intact snapshot at or below
// the recovered end plus a replay of the batch headers after it, so a
// retried batch stored before a crash is answered as a duplicate, never
// stored twice. The snapshot carries each producer's open transaction,
// and the replay rebuilds the .txnindex entries of the markers it meets
// (the files below the snapshot were fsynced before it was written).
//
// # Failures
//
// A failed write (ENOSPC, say) is answered with KAFKA_STORAGE_ERROR and
// its torn bytes are cut back to the last good position, at once or
// before the next append; the partition takes writes again as soon as an
// append succeeds. A failed roll removes the files it made. A failed
// fsync fails the log until it is reopened (after a failed fsync the
// kernel may have dropped the dirty pages, so what was written since
// cannot be trusted). Failures to open a file (EMFILE) fail only the
// request.
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
//   - The cleaner checkpoint is one file per partition, like the HW
//     checkpoint, not Kafka's cleaner-offset-checkpoint per log directory.
//   - The cleaner replaces a run of batches it removed entirely with one
//     empty batch spanning their offsets (Kafka leaves a gap), so every
//     segment stays contiguous batch after batch and recovery keeps
//     checking exactly that.
//   - DeleteRecords refuses offsets past the last stable offset (Kafka
//     bounds it by the high watermark only), so no open transaction loses
//     its first records.
//   - Decompressed batches are bounded (16 × max.message.bytes, at least 8
//     MiB, at most 256 MiB) to defeat zip bombs; a batch beyond that is
//     refused with MESSAGE_TOO_LARGE.
package storage
