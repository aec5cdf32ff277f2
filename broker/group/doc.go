// Package group is the classic consumer-group protocol of the Tributary
// broker as a deterministic state machine: group membership (JoinGroup,
// SyncGroup, Heartbeat, LeaveGroup, static members), committed offsets
// (OffsetCommit, OffsetFetch, OffsetDelete, expiry), transactional offset
// commits (TxnOffsetCommit, applied by the transaction's marker) and group
// administration (DescribeGroups, ListGroups, DeleteGroups), with Kafka's
// semantics and error codes.
//
// The package does no I/O and reads no clock, so a scenario replays the same
// way every time (STYLE practice 11):
//
//   - Requests go in as kmsg request structs together with the current time.
//   - A request whose answer Kafka parks (a JoinGroup or SyncGroup while a
//     rebalance is in progress) returns nil; its response comes out later, in
//     the outbox, under the Ref the caller gave with the request.
//   - Time moves only through Tick(now). NextDeadline tells the owner when
//     to call Tick next (session timeouts, rebalance timeouts, the initial
//     rebalance delay, the offset expiry check).
//   - Every change Kafka writes to __consumer_offsets comes out of Drain as a
//     Record whose key and value use Kafka's own schemas (kmsg
//     OffsetCommitKey/Value and GroupMetadataKey/Value), so the log can be
//     read by Kafka tooling and Load can rebuild the groups after a restart.
//
// The owner (the broker's coordinator loop) uses it like this:
//
//	c, _ := group.New(group.DefaultConfig())
//	resp := c.JoinGroup(now, ref, client, req) // nil: the answer comes later
//	out := c.Drain()
//	append out.Records to __consumer_offsets (durably), then send resp (if
//	not nil) and every out.Replies[i] to the connection behind its Ref
//	re-arm a timer for c.NextDeadline(); when it fires call c.Tick(now) and
//	drain again.
//
// When the broker becomes leader of a __consumer_offsets partition it
// replays the partition through Load, in log order (tombstones delete), then
// calls Loaded(now), which gives every restored member a full session
// timeout. When it stops leading a partition it calls Unload, which drops
// that partition's pending transactional offsets with its groups. Groups come
// back as Kafka keeps them: a group with members is Stable with its
// generation, protocol, leader, member metadata and assignments; a group
// without is Empty; offsets keep their commit time, leader epoch and
// metadata. Records are written in the versions Kafka 4 writes
// (GroupMetadataValue v3, OffsetCommitValue v3, or v1 when an explicit
// expiry is set), and Load reads every version.
//
// Transactions (KIP-98, KIP-447). TxnOffsetCommit holds the offsets
// pending for (group, producer id); its records come out of Drain with
// ProducerID and ProducerEpoch set (every other record has -1 for both),
// and the owner appends them as a transactional batch of that producer.
// When the transaction coordinator has written the commit or abort marker
// to the __consumer_offsets partition, the owner calls
// CompleteTxn(now, partition, producerID, commit): a commit makes the
// pending offsets the group's, an abort drops them, and nothing is
// written (the marker is the record). Until then OffsetFetch does not show
// them, and answers UNSTABLE_OFFSET_COMMIT for their partitions when the
// client asks RequireStable. When transactional and ordinary commits of a
// partition mix, the one whose record is later in the log wins, as in
// Kafka; the package knows log order as the order in which it emitted or
// loaded the records, so the owner must append the records of a Drain in
// the order they come, splitting them into batches by producer without
// reordering. Loading replays a record of a transactional batch through
// LoadTxn and a transaction marker through LoadMarker, in log order with
// Load, reading the partition to its end (not its last stable offset): a
// transaction whose marker is not in the log yet stays pending. The
// package keeps no producer state: the owner checks the producer id and
// epoch (and that the group was added to the transaction) before calling
// TxnOffsetCommit, as Kafka's log append and transaction verification do.
//
// Records must be appended before the responses of the same step are sent:
// Kafka acknowledges an offset commit or a leader's assignment only once it
// is in the log. A failed append means this broker can no longer act as the
// coordinator for that partition; the owner should Unload it and answer
// NOT_COORDINATOR, so clients find the new coordinator (this package does
// not roll back state for a failed write, unlike Kafka).
//
// A Coordinator is not safe for concurrent use: one goroutine owns it and
// serialises calls, as kfake's cluster loop does.
//
// What the package leaves to its caller: resolving topic IDs (OffsetCommit
// and OffsetFetch v10) to names, checking that committed topics exist and
// that the client is authorised, answering COORDINATOR_LOAD_IN_PROGRESS
// while a partition loads and NOT_COORDINATOR for groups it does not own
// (Partition maps a group to its __consumer_offsets partition), for
// TxnOffsetCommit as for OffsetCommit, and checking the transactional
// producer (see above).
package group
