package partitioner

import (
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
	"github.com/tributary/tributary"
)

// Partitioner chooses the partition of a record being produced.
//
// Implementations are safe for concurrent use: the producer calls Partition
// from whichever goroutine produces the record. A Partitioner keeps state
// (sticky partitions, round-robin counters) per topic, so give each producer
// its own instance; sharing one between producers makes them share sticky
// partitions, which is harmless but defeats the batching it is for.
type Partitioner interface {
	// Partition returns the partition for r, given the topic's partition
	// count n, in [0, n). The caller must ensure n > 0; Manual is the one
	// exception to the range, returning r.Partition unchecked.
	//
	// Partition reads r and does not modify it; the producer stores the
	// result in r.Partition.
	Partition(r *tributary.Record, n int32) int32
}

// BatchObserver is implemented by partitioners that keep a "current"
// partition for keyless records (uniform sticky, KIP-480/KIP-794).
//
// The producer calls OnNewBatch when the batch being filled for topic's
// partition prevPartition is complete (sent, or full), with the topic's
// partition count n. If prevPartition is the topic's sticky partition, the
// partitioner switches to another partition, uniformly at random among the
// others (it stays when n == 1). Notifications about any other partition
// are ignored, so the producer may call OnNewBatch for every completed
// batch without tracking which ones keyless records filled, and a repeated
// notification for the same batch moves the sticky partition only once.
//
// Java's KIP-794 partitioner switches after batch.size bytes were sent to
// the sticky partition instead of when a batch closes; a producer wanting
// that calls OnNewBatch when its byte count crosses batch.size.
type BatchObserver interface {
	OnNewBatch(topic string, prevPartition int32, n int32)
}

// Default returns the partitioner the Java client uses by default (Kafka
// 3.3+ BuiltInPartitioner without adaptive partitioning): murmur2 for
// records with a key, uniform sticky for records with a nil key. A Go and a
// Java producer using their defaults put the same key on the same
// partition.
func Default() Partitioner { return Murmur2() }

// Murmur2 returns a partitioner that places keyed records at
// toPositive(murmur2(key)) % n, Java's BuiltInPartitioner.partitionForKey,
// and keyless (nil key) records by uniform sticky partitioning. An empty,
// non-nil key is a key, hashed like Java hashes a zero-length byte array.
func Murmur2() Partitioner {
	return &hashPartitioner{hash: murmur2Partition}
}

// XXHash returns a partitioner that places keyed records at
// xxhash64(key) % n (github.com/cespare/xxhash/v2, unsigned modulo), and
// keyless records by uniform sticky partitioning. It is faster than
// murmur2 on long keys but no other Kafka client uses it: choose it only
// when every producer of the topic is a Tributary producer using it.
func XXHash() Partitioner {
	return &hashPartitioner{hash: xxhashPartition}
}

func xxhashPartition(key []byte, n int32) int32 {
	return int32(xxhash.Sum64(key) % uint64(n))
}

// Sticky returns a partitioner that applies uniform sticky partitioning to
// every record, keyed or not, like Java's partitioner.ignore.keys=true.
// Records with the same key do not stay on one partition.
func Sticky() Partitioner { return new(stickyPartitioner) }

// Manual returns a partitioner that keeps r.Partition as the caller set it.
// It does not check the range: the producer validates r.Partition against
// the topic's partition count and fails the record if it is out of range.
func Manual() Partitioner { return manual{} }

type manual struct{}

func (manual) Partition(r *tributary.Record, _ int32) int32 { return r.Partition }

// RoundRobin returns a partitioner that cycles through a topic's
// partitions, one record each, with a counter per topic, ignoring keys.
//
// Unlike Java's RoundRobinPartitioner it does not implement BatchObserver:
// Java's calls partition() a second time when a new batch is created and so
// skips partitions (KAFKA-9965); here every record advances the counter by
// exactly one.
func RoundRobin() Partitioner { return new(roundRobin) }

type roundRobin struct {
	topics sync.Map // string -> *atomic.Uint64
}

func (p *roundRobin) Partition(r *tributary.Record, n int32) int32 {
	v, ok := p.topics.Load(r.Topic)
	if !ok {
		v, _ = p.topics.LoadOrStore(r.Topic, new(atomic.Uint64))
	}
	// A 64-bit counter does not wrap in practice, so the sequence never
	// jumps when it would overflow (a 32-bit one would at 2^32 unless n
	// divides it).
	i := v.(*atomic.Uint64).Add(1) - 1
	return int32(i % uint64(n))
}

// hashPartitioner hashes keyed records and sends keyless ones to the
// topic's sticky partition.
type hashPartitioner struct {
	hash func(key []byte, n int32) int32
	s    sticky
}

func (p *hashPartitioner) Partition(r *tributary.Record, n int32) int32 {
	// nil, not empty, is Kafka's null key: Java tests keyBytes == null.
	if r.Key == nil {
		return p.s.partition(r.Topic, n)
	}
	return p.hash(r.Key, n)
}

func (p *hashPartitioner) OnNewBatch(topic string, prev, n int32) {
	p.s.onNewBatch(topic, prev, n)
}
