package storage

// This file fixes the API the broker codes against. Bodies are filled in
// by the storage implementation; signatures change only with the callers.

import (
	"errors"
	"log/slog"
	"os"
	"time"
)

// Config holds the topic-level settings of one partition log, with
// Kafka's topic config names. The broker derives it from the log.* broker
// defaults and the topic's overrides.
type Config struct {
	SegmentBytes           int64 // segment.bytes
	SegmentMs              int64 // segment.ms
	RetentionMs            int64 // retention.ms; -1 keeps forever
	RetentionBytes         int64 // retention.bytes; -1 keeps forever
	IndexIntervalBytes     int32 // index.interval.bytes
	SegmentIndexBytes      int32 // segment.index.bytes
	FlushMessages          int64 // flush.messages: fsync after this many records
	FlushMs                int64 // flush.ms: fsync when the oldest unflushed write is this old
	FileDeleteDelayMs      int64 // file.delete.delay.ms
	MaxMessageBytes        int32 // max.message.bytes: largest batch accepted
	LogAppendTime          bool  // message.timestamp.type=LogAppendTime
	ProducerIDExpirationMs int64 // producer.id.expiration.ms
}

// Options are per-Open settings that are not topic configs.
type Options struct {
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests move time to roll and
	// expire segments.
	Now func() time.Time
}

// Log is one partition's log: a directory of segments named by base
// offset, each with .log, .index and .timeindex files, plus producer-state
// snapshots. All methods are safe for concurrent use.
type Log struct {
	dir string
}

var errUnimplemented = errors.New("storage: not implemented")

// Open opens (creating if needed) the log in dir and recovers it: a torn
// or corrupt tail is truncated, missing or damaged indexes are rebuilt,
// producer state is loaded from the newest snapshot and replayed from the
// log after it.
func Open(dir string, cfg Config, opts Options) (*Log, error) { return nil, errUnimplemented }

// SetConfig applies changed topic configs (dynamic alter).
func (l *Log) SetConfig(cfg Config) {}

// Close flushes, writes a producer-state snapshot and the clean-shutdown
// marker, and closes every file.
func (l *Log) Close() error { return errUnimplemented }

// Delete closes the log and removes its directory (DeleteTopics).
func (l *Log) Delete() error { return errUnimplemented }

// Dir is the partition directory.
func (l *Log) Dir() string { return l.dir }

// AppendResult describes a successful (or duplicate) append.
type AppendResult struct {
	BaseOffset     int64 // first offset assigned
	LastOffset     int64 // last offset assigned
	LogAppendTime  int64 // ms the broker stamped, or -1 for CreateTime
	LogStartOffset int64
	// Duplicate is set when the batch repeats one already stored (same
	// producer id, epoch and sequence): nothing was appended and the
	// offsets are those of the original.
	Duplicate bool
}

// Append validates the record batches of one produce request partition
// (magic 2, CRC-32C, sizes, record count, max.message.bytes, producer
// id/epoch/sequence), assigns offsets (and LogAppendTime), stamps
// leaderEpoch into each batch header and appends the bytes as they came.
// Either every batch is appended or none. Errors are tributary.Err* values
// (ErrCorruptMessage, ErrInvalidRecord, ErrMessageTooLarge,
// ErrOutOfOrderSequenceNumber, ErrInvalidProducerEpoch,
// ErrUnsupportedForMessageFormat, ...), possibly wrapped.
//
// Append takes ownership of batches: it may rewrite header fields in place.
func (l *Log) Append(batches []byte, leaderEpoch int32) (AppendResult, error) {
	return AppendResult{}, errUnimplemented
}

// Offsets of the log. LogEndOffset is the next offset to be written;
// HighWatermark is what consumers may read below (equal to the end offset
// on a single replica; replication sets it).
func (l *Log) LogStartOffset() int64 { return 0 }
func (l *Log) LogEndOffset() int64   { return 0 }
func (l *Log) HighWatermark() int64  { return 0 }

// SetHighWatermark moves the high watermark (replication); it never goes
// past the log end offset.
func (l *Log) SetHighWatermark(hw int64) {}

// Size is the bytes of all segments.
func (l *Log) Size() int64 { return 0 }

// FileSlice is a byte range of a segment file, handed to the socket
// without copying (sendfile). File stays open at least until
// file.delete.delay.ms after its segment is deleted, so a slice remains
// readable while a response is written.
type FileSlice struct {
	File *os.File
	Pos  int64
	Len  int64
}

// Read returns whole batches starting with the batch that contains
// offset, all below maxOffset (pass the high watermark for consumers),
// totalling at most maxBytes — except that when minOne is set the first
// batch is returned whole even if it is larger (KIP-74). A read never
// crosses a segment boundary; callers loop for more. An offset below the
// log start or above the end offset gives ErrOffsetOutOfRange; an offset
// equal to maxOffset gives an empty slice.
func (l *Log) Read(offset, maxOffset int64, maxBytes int32, minOne bool) (FileSlice, error) {
	return FileSlice{}, errUnimplemented
}

// OffsetForTimestamp returns the first offset whose record timestamp is
// at or after ts, with that timestamp, searching below maxOffset; ok is
// false when there is none.
func (l *Log) OffsetForTimestamp(ts, maxOffset int64) (offset, timestamp int64, ok bool, err error) {
	return 0, 0, false, errUnimplemented
}

// MaxTimestamp returns the offset and timestamp of the record with the
// largest timestamp below maxOffset (ListOffsets -3); ok is false for an
// empty log.
func (l *Log) MaxTimestamp(maxOffset int64) (offset, timestamp int64, ok bool, err error) {
	return 0, 0, false, errUnimplemented
}

// DeleteRecordsBefore moves the log start offset to offset (DeleteRecords)
// and persists it; whole segments below it are deleted. offset must not be
// above the high watermark (the caller checks and answers
// OFFSET_OUT_OF_RANGE).
func (l *Log) DeleteRecordsBefore(offset int64) error { return errUnimplemented }

// EnforceRetention deletes whole non-active segments past retention.ms or
// beyond retention.bytes and rolls a segment that is older than
// segment.ms. The broker calls it every log.retention.check.interval.ms.
func (l *Log) EnforceRetention() error { return errUnimplemented }

// Flush fsyncs everything appended so far and advances the recovery
// point.
func (l *Log) Flush() error { return errUnimplemented }

// ProducerState reports what the log knows of a producer id, for
// InitProducerId epoch checks: the newest epoch seen and whether it is
// known at all.
func (l *Log) ProducerState(producerID int64) (epoch int16, known bool) { return 0, false }
