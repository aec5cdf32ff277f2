// Package producer sends records to Kafka: asynchronously, batched per
// partition, idempotent by default (each record written once and in order
// per partition, even when requests are retried), with Java's
// configuration names and defaults.
//
// # 1. Create a producer
//
// Give it the seed brokers and any options:
//
//	p, err := producer.New(producer.SeedBrokers("kafka-1:9092", "kafka-2:9092"))
//
// New checks the options and does not connect. Options carry Java's names
// and defaults (Linger, BatchSize, Acks, Compression, DeliveryTimeout,
// ...); ClientOptions passes client options (TLS, SASL, ClientID) and
// WithClient shares a client.Client.
//
// # 2. Produce
//
// ProduceSync sends records and waits for their outcome:
//
//	err := p.ProduceSync(ctx, &tributary.Record{Topic: "orders", Key: k, Value: v}).FirstErr()
//
// For throughput, Produce returns at once and calls back per record with
// its partition and offset, or an error:
//
//	p.Produce(ctx, rec, func(r *tributary.Record, err error) { ... })
//
// Records with the same key go to the same partition (the one Java would
// pick) and stay in order there. The ctx covers a record until it is
// written into a request: a record whose ctx ends before that fails with
// ctx.Err() and is not sent; after that, the broker's answer decides.
//
// # 3. Handle errors
//
// Test errors with errors.Is. The ones worth knowing:
//
//   - ErrRecordTooLarge: the record can never be sent.
//   - ErrBufferFull: BufferMemory is used up (with NonBlocking, or after
//     waiting MaxBlock).
//   - ErrDeliveryTimeout: not acknowledged within DeliveryTimeout, retries
//     included; the last error is wrapped.
//   - tributary.ErrUnknownTopicOrPartition: the topic does not exist and
//     auto-creation is off; reported after UnknownTopicRetries metadata
//     answers, not after MaxBlock.
//   - client.ErrConnection: no broker could be reached while looking up
//     the topic; reported as soon as every seed was tried, naming them.
//     Records already routed to a partition whose leader became
//     unreachable are retried until DeliveryTimeout, as Java does.
//   - context.Canceled, context.DeadlineExceeded: the record's ctx ended
//     before it was sent.
//   - ErrClosed: produced after Close, or still pending when Close gave up.
//
// # 4. Shut down
//
// Close flushes what is buffered; give it a deadline of its own so that
// shutdown is bounded. Records still pending at the deadline fail with
// ErrClosed:
//
//	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
//	defer cancel()
//	err := p.Close(ctx)
//
// Flush waits for everything buffered without closing.
//
// # Transactions
//
// A transactional producer (TransactionalID) writes records to several
// partitions, and optionally a consumer group's offsets, so that they
// become visible together on commit or not at all: what exactly-once
// consume-transform-produce pipelines are built on (examples/exactly-once).
// It is always idempotent with acks=all. Records may be produced only
// inside a transaction; read_committed consumers
// (consumer.Isolation(consumer.ReadCommitted)) see them once it commits.
//
//	p, err := producer.New(producer.SeedBrokers(addrs...), producer.TransactionalID("orders-etl-1"))
//	// optional: fence older instances with this id now, bounded by ctx;
//	// otherwise the first BeginTxn does it (bounded by MaxBlock)
//	err = p.InitTransactions(ctx)
//	for {
//	    recs, err := c.Poll(ctx) // c: a consumer with a Group, AutoCommit(false), ReadCommitted
//	    if err := p.BeginTxn(); err != nil { ... }
//	    for _, r := range recs {
//	        p.Produce(ctx, transform(r), nil) // failures surface in CommitTxn
//	    }
//	    err = p.SendOffsetsToTxn(ctx, offsetsAfter(recs), c.GroupMetadata())
//	    if err == nil {
//	        err = p.CommitTxn(ctx) // flushes, then commits
//	    }
//	    switch {
//	    case err == nil:
//	    case errors.Is(err, producer.ErrFenced):
//	        return p.Close(ctx) // another instance took over: stop
//	    default: // producer.ErrAbortableTxn, or ctx ended
//	        if err := p.AbortTxn(ctx); err != nil { ... }
//	        // rewind c to the committed offsets and process recs again
//	    }
//	}
//
// The errors, for errors.Is (each also wraps the broker's Kafka error):
//
//   - ErrFenced, fatal: PRODUCER_FENCED or INVALID_PRODUCER_EPOCH (a newer
//     producer with the same transactional id took over) or
//     TRANSACTIONAL_ID_AUTHORIZATION_FAILED. Every later call and record
//     fails with it; Close the producer.
//   - ErrAbortableTxn: anything else that failed inside the transaction (a
//     record, the partition add, the offset commit, the coordinator's
//     answer). CommitTxn refuses; AbortTxn, then BeginTxn may start again.
//     Records that fail in a transaction carry it too.
//   - ErrNoTxn: a record, CommitTxn, AbortTxn or SendOffsetsToTxn outside
//     a transaction. ErrTxnInProgress: BeginTxn twice.
//   - ErrTxnAborted: a record dropped by AbortTxn (or Close) unsent.
//
// A CommitTxn or AbortTxn whose ctx ends returns ctx's error and may be
// called again to finish. Close aborts an open transaction. Before the
// first record to a partition in a transaction is sent, the partition is
// added with AddPartitionsToTxn (batched, retried while the coordinator
// is busy); KIP-890's implicit add (transaction.version 2) is not used.
//
// # Metrics
//
// Pass client.WithHooks through ClientOptions; the producer
// reports every acknowledged batch to client.HookProduceBatchWritten
// hooks (examples/hooks-prometheus).
package producer

// Notes for contributors (not part of the package documentation).
//
// How a record travels:
//
//  1. Produce (producer.go) reserves buffer memory (blocking up to MaxBlock
//     when BufferMemory is used up), finds the topic's partitions (records
//     for a topic not yet in metadata are parked, in order, until it is;
//     parkedMetadata in watch.go fetches metadata for them and fails them
//     when no broker is reachable or after UnknownTopicRetries unknown
//     answers, the reaper after MaxBlock), asks the Partitioner, and encodes
//     the record straight into its partition's open batch (batch.go:
//     RecordBatch v2 bytes in a pooled buffer), so a record costs no
//     allocation of its own. A record keeps its ctx only if the ctx can end.
//     When the record does not fit, the batch is closed and a sticky
//     partitioner (partitioner.BatchObserver) is told to move on.
//  2. One sink per broker (sink.go) takes, from each partition it leads,
//     the oldest batch once it is full, lingered Linger, or a Flush asks,
//     up to MaxRequestSize per request and MaxInFlight requests; drops the
//     records whose ctx ended (rebuilding the batch); assigns the
//     idempotent sequence number, compresses, writes the header and CRC,
//     and sends a Produce request (v3..v11) through the client, tracked in
//     Producer.reqs so Close can abandon it.
//  3. The response (sink.go) completes each batch: success calls every
//     record's callback with its offset; a retriable error (or a lost
//     connection) puts the batch back at the front of its partition, to be
//     resent with the same sequence once the partition's other in-flight
//     batches have come back, after a backoff and a metadata refresh; a
//     batch refused as MESSAGE_TOO_LARGE is split in two and retried, as
//     Java does; other errors fail the records. Every record's callback
//     runs exactly once.
//  4. watch.go applies metadata (partition counts, leader moves between
//     sinks), and its reaper fails what waited past DeliveryTimeout and
//     records whose ctx ended while buffered.
//
// Transactions (txn.go): the transaction manager holds the state, the
// sinks leave a partition's batches queued until addLoop has added it to
// the transaction, and a failed transaction makes the sinks fail what is
// queued. requestBump defers the epoch bump of a transactional producer to
// AbortTxn, since bumping would abort the transaction on the coordinator.
//
// Idempotence (idempotence.go): InitProducerId gives a producer id. Each
// partition's batches carry consecutive sequence numbers and at most 5 are
// in flight, so the broker deduplicates retries (DUPLICATE_SEQUENCE_NUMBER
// counts as success) and rejects gaps. Following Java's rules,
// OUT_OF_ORDER_SEQUENCE_NUMBER or UNKNOWN_PRODUCER_ID on the batch the
// broker should have accepted next, or a sequenced batch failing for good,
// mean sequences cannot line up again: sending pauses, in-flight batches
// drain, the epoch is bumped (KIP-360) and sequences restart at 0.
//
// Close: stops Produce, waits (on a condition) for Produce calls in
// progress, flushes until ctx ends, then fails what is left, including
// requests still awaiting an answer (their buffers are not reused, as the
// connection may still be writing them).
//
// Locking: Producer.topicsMu, topicState.applyMu, topicState.mu,
// partState.mu, Producer.sinksMu and sink.mu are taken in that order;
// Producer.reqMu is a leaf. txnManager.endMu (held across a transaction
// call's I/O) comes before all of them; txnManager.mu and coordMu are
// leaves. The sink's goroutine and response handlers
// take a partition's lock only briefly and call user callbacks with no
// lock held (except records parked for an unknown topic, released under
// topicState.mu so they keep their order).
