// Package partitioner decides which partition of a topic each produced
// record goes to.
//
// The producer calls a [Partitioner] once per record with the topic's
// partition count, and, if the partitioner also implements [BatchObserver],
// tells it whenever a batch completes so that keyless records can move on.
//
// # Keyed records: placement is a compatibility contract
//
// Records with the same key must land on the same partition no matter which
// client wrote them, or consumers that rely on per-key ordering (and
// compacted topics that keep the newest value per key) break the moment a
// second producer joins. The clients disagree, so the choice matters:
//
//   - Java (and kafkajs v2, franz-go's default, and [Default] and [Murmur2]
//     here): toPositive(murmur2(key)) % n, where murmur2 is Kafka's
//     Utils.murmur2 with seed 0x9747b28c and toPositive masks the sign bit
//     (x & 0x7fffffff). [Murmur2Hash] is bit-exact with the Java function,
//     including its 1-3 byte tail and the wrapping signed arithmetic.
//   - librdkafka (and so confluent-kafka-go, -python, -dotnet) defaults to
//     consistent_random: CRC32 of the key, so its keys land elsewhere; set
//     partitioner=murmur2_random there to agree with Java and with us.
//   - Sarama defaults to FNV-1a, taking the int32 remainder and negating it
//     when negative; [Sarama] reproduces that, for migrating from Sarama.
//   - [XXHash] matches no other client. It is there for Tributary-only
//     producers that want a faster hash on long keys.
//
// A nil key is Kafka's null and means "no key"; an empty non-nil key is a
// key like any other (Java hashes the zero-length array). The hash
// partitioners send every nil-key record through uniform sticky
// partitioning, never through the hash.
//
// Partitions are computed over all n partitions, not only those with a
// leader, as Java does for keys: a key must not move while a broker is
// down.
//
// # Keyless records: uniform sticky (KIP-480, KIP-794)
//
// Spreading keyless records one by one over partitions makes many tiny
// batches. Sticky partitioning instead keeps a current partition per topic,
// chosen uniformly at random, and sends every keyless record there until
// the producer reports (OnNewBatch) that the batch for that partition is
// complete; then it moves to another partition picked uniformly among the
// others. Over time load is uniform, and batches are full.
//
// Differences from Java's BuiltInPartitioner (Kafka 3.3+): Java switches
// after batch.size bytes instead of on batch completion (the producer can
// get that behaviour by calling OnNewBatch at that point); Java's switch may
// pick the same partition again, this one never does (as KIP-480's
// StickyPartitionCache); and adaptive partitioning
// (partitioner.adaptive.partitioning.enable), which favours partitions with
// less queued data, is not implemented.
//
// [Sticky] applies sticky partitioning to keyed records too, like Java's
// partitioner.ignore.keys=true. [RoundRobin] cycles through partitions, one
// record each. [Manual] keeps the partition the caller set.
//
// # Concurrency and cost
//
// Every partitioner is safe for concurrent use and allocates nothing per
// record: per-topic state is looked up in a sync.Map (allocation-free for
// string keys) and updated with atomics, and the random source is
// math/rand/v2's lock-free global generator. State is per partitioner value
// and per topic, so each producer should own its partitioner.
package partitioner
