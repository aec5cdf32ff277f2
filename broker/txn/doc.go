// Package txn is the transaction coordinator of the Tributary broker
// (KIP-98) as a deterministic state machine: InitProducerId for
// transactional ids (epoch bumps, fencing, KIP-360 recovery),
// AddPartitionsToTxn (v0–v5, with the batched and VerifyOnly forms of v4+),
// AddOffsetsToTxn, EndTxn, DescribeTransactions and ListTransactions, the
// abort of timed-out transactions and the expiry of idle transactional ids,
// with Kafka's semantics and error codes (TransactionCoordinator,
// TransactionMetadata and TransactionStateManager in Kafka's core).
//
// The package does no I/O and reads no clock, so a scenario replays the same
// way every time (STYLE practice 11):
//
//   - Requests go in as kmsg request structs together with the current
//     time, and every one is answered synchronously.
//   - Time moves only through Tick(now). NextDeadline tells the owner when
//     to call Tick next (the timed-out transaction check and the
//     transactional id expiry check).
//   - Every state change Kafka writes to __transaction_state comes out of
//     Drain as a Record, keyed and valued with Kafka's own schemas (kmsg
//     TxnMetadataKey v0 and TxnMetadataValue v0, the version Kafka writes
//     without transaction.version 2), so the log can be read by Kafka
//     tooling and Load can rebuild every transaction after a restart.
//   - Commit and abort markers are the owner's job: a transaction entering
//     PrepareCommit or PrepareAbort comes out of Drain as a MarkerJob. The
//     owner writes a control batch (commit or abort marker, with the job's
//     producer id, epoch and coordinator epoch) to every partition listed,
//     retrying each until it is durable, and then calls MarkersWritten,
//     which records CompleteCommit or CompleteAbort. Until then the
//     producer's next InitProducerId, AddPartitionsToTxn or EndTxn is
//     answered CONCURRENT_TRANSACTIONS and it retries.
//
// The owner (the broker's coordinator loop) uses it like this:
//
//	c, _ := txn.New(cfg) // cfg from txn.DefaultConfig(), with the allocator and GroupPartition set
//	resp := c.EndTxn(now, req)
//	out := c.Drain()
//	append out.Records to __transaction_state (durably, acks=all), then
//	send resp, then start every out.Markers[i]; when a job is done call
//	c.MarkersWritten(now, job) and drain again (its record too must be
//	appended).
//	re-arm a timer for c.NextDeadline(); when it fires call c.Tick(now) and
//	drain again.
//
// Records must be appended before the responses of the same step are sent
// and before its marker jobs start: Kafka answers EndTxn only once
// PrepareCommit is in the log, so a coordinator that fails over afterwards
// finds the transaction there and finishes it. A failed append means this
// broker can no longer coordinate that partition; the owner should Unload
// it, drop its running marker jobs and answer NOT_COORDINATOR, so clients
// find the new coordinator (this package does not roll back state for a
// failed write, unlike Kafka).
//
// When the broker becomes leader of a __transaction_state partition it
// calls BeginLoad (optional: Load begins it too), replays the partition
// through Load in log order (tombstones delete), then calls Loaded with the
// partition's leader epoch, the coordinator epoch its markers carry.
// Between the two, requests for the partition's ids are answered
// COORDINATOR_LOAD_IN_PROGRESS; for a partition not led here,
// NOT_COORDINATOR. Loaded re-emits the MarkerJob of every transaction left
// in PrepareCommit or PrepareAbort, whose markers may not all have been
// written. When the broker stops leading a partition it calls Unload;
// MarkersWritten ignores jobs of partitions unloaded or reloaded at another
// epoch.
//
// Kafka keeps a few things only in memory, and so does this package: the
// epoch before a KIP-360 bump (a retried bump across a coordinator change
// is fenced rather than answered with the same epoch) and the producer id
// before a rotation (TxnMetadataValue v1 only).
//
// A Coordinator is not safe for concurrent use: one goroutine owns it and
// serialises calls.
//
// What the package leaves to its caller: authorisation, WriteTxnMarkers
// and the markers themselves, TxnOffsetCommit (the group coordinator's),
// DescribeProducers, the producer state of partitions (epochs and
// sequences checked on Produce), the last stable offset, and the
// idempotent producer's InitProducerId, though a request without a
// transactional id is answered here with a fresh producer id too.
package txn
