// Package producer is Tributary's Kafka producer: asynchronous, batching
// per partition, idempotent by default, with Java's configuration names and
// defaults.
//
//	p, err := producer.New(producer.SeedBrokers("localhost:9092"))
//	defer p.Close(ctx)
//	p.Produce(ctx, &tributary.Record{Topic: "orders", Key: k, Value: v},
//		func(r *tributary.Record, err error) { /* r.Partition, r.Offset */ })
//	err = p.ProduceSync(ctx, recs...).FirstErr()
//
// # How a record travels
//
//  1. Produce (producer.go) reserves buffer memory (blocking up to MaxBlock
//     when BufferMemory is used up), finds the topic's partitions (records
//     for a topic not yet in metadata are parked, in order, until it is, or
//     fail after MaxBlock), asks the Partitioner, and encodes the record
//     straight into its partition's open batch (batch.go: RecordBatch v2
//     bytes in a pooled buffer), so a record costs no allocation of its own.
//     When the record does not fit, the batch is closed and a sticky
//     partitioner (partitioner.BatchObserver) is told to move on.
//  2. One sink per broker (sink.go) takes, from each partition it leads,
//     the oldest batch once it is full, lingered Linger, or a Flush asks,
//     up to MaxRequestSize per request and MaxInFlight requests, assigns
//     the idempotent sequence number, compresses, writes the header and
//     CRC, and sends a Produce request (v3..v11) through the client.
//  3. The response (sink.go) completes each batch: success calls every
//     record's callback with its offset; a retriable error (or a lost
//     connection) puts the batch back at the front of its partition, to be
//     resent with the same sequence once the partition's other in-flight
//     batches have come back, after a backoff and a metadata refresh; a
//     batch refused as MESSAGE_TOO_LARGE is split in two and retried, as
//     Java does; other errors fail the records. Nothing is dropped silently: every record's
//     callback runs exactly once.
//  4. watch.go applies metadata (partition counts, leader moves between
//     sinks), and its reaper fails what waited past DeliveryTimeout.
//
// # Idempotence
//
// idempotence.go obtains a producer id with InitProducerId. Each
// partition's batches carry consecutive sequence numbers and at most 5 are
// in flight, so the broker deduplicates retries (DUPLICATE_SEQUENCE_NUMBER
// counts as success) and rejects gaps. Following Java's rules,
// OUT_OF_ORDER_SEQUENCE_NUMBER or UNKNOWN_PRODUCER_ID on the batch the
// broker should have accepted next, or a sequenced batch failing for good,
// mean sequences cannot line up again: sending pauses, in-flight batches
// drain, the epoch is bumped (KIP-360) and sequences restart at 0.
//
// # Errors
//
// Callbacks receive errors that errors.Is can test: ErrRecordTooLarge,
// ErrBufferFull, ErrDeliveryTimeout, ErrClosed, and the Kafka errors
// (tributary.ErrTopicAuthorizationFailed, ErrUnknownTopicOrPartition, ...)
// wrapped inside them or on their own.
//
// # Locking
//
// Producer.topicsMu, topicState.applyMu, topicState.mu, partState.mu,
// Producer.sinksMu and sink.mu are taken in that order; the sink's
// goroutine and response handlers take a partition's lock only briefly and
// call user callbacks with no lock held (except records parked for an
// unknown topic, released under topicState.mu so they keep their order).
package producer
