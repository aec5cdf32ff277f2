// Package batch parses and validates Kafka RecordBatch v2 (magic 2) bytes
// without copying them, for the broker's produce path and log recovery and
// for the SDK's consumer.
//
// A batch is a fixed 61-byte header followed by the records region:
//
//	offset  size  field
//	     0     8  baseOffset            (not covered by the CRC)
//	     8     4  batchLength           bytes after this field
//	    12     4  partitionLeaderEpoch  (not covered by the CRC)
//	    16     1  magic                 must be 2
//	    17     4  crc                   CRC-32C (Castagnoli) of bytes 21..end
//	    21     2  attributes            bits 0-2 codec, 3 LogAppendTime,
//	                                    4 transactional, 5 control
//	    23     4  lastOffsetDelta
//	    27     8  baseTimestamp
//	    35     8  maxTimestamp
//	    43     8  producerId
//	    51     2  producerEpoch
//	    53     4  baseSequence
//	    57     4  recordCount
//	    61     …  records (compressed with the codec when it is not none)
//
// The pieces:
//
//   - ParseHeader reads the header into a Header value.
//   - Validate checks one whole batch: header sanity, CRC, and a walk of
//     every record (decompressing into a pooled buffer with a size limit,
//     so a "zip bomb" cannot exhaust memory). It returns an Info with what
//     the broker needs for its indexes: the batch's real maximum timestamp
//     and the offset of the record carrying it.
//   - SetBaseOffset, SetPartitionLeaderEpoch (outside the CRC) and
//     SetLogAppendTime, SetMaxTimestamp (inside it, so they recompute the
//     CRC) rewrite a batch in place, as the broker does when it appends.
//   - Records walks a records region and yields each Record as views
//     into the buffer (key, value, headers), with no allocation.
//
// Errors are the root package's Kafka errors (tributary.ErrCorruptMessage,
// ErrUnsupportedForMessageFormat, ErrMessageTooLarge), wrapped with detail.
// They are preallocated, so validating hostile input does not allocate
// either.
package batch
