package tributary

import "time"

// Header is one record header. Kafka allows repeated keys; order is kept.
type Header struct {
	Key   string
	Value []byte
}

// TopicPartition names one partition of one topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Record is one Kafka record as the SDK produces and consumes it.
//
// A nil Key or Value is sent as Kafka's null, which differs from an empty
// slice (a tombstone on a compacted topic has a key and a null value).
type Record struct {
	Topic     string
	Partition int32 // set by the partitioner on produce unless a Manual partitioner is used
	Key       []byte
	Value     []byte
	Headers   []Header
	// Timestamp is CreateTime, or the broker's LogAppendTime when the topic
	// uses it; the producer fills it with time.Now when zero.
	Timestamp time.Time
	// Offset is set on consumed records and, after a successful produce,
	// on produced ones.
	Offset int64
	// LeaderEpoch is the partition leader epoch the record was written
	// under, or -1 when unknown.
	LeaderEpoch int32
	// Context lets callers carry their own value through Produce to the
	// delivery callback; the SDK never reads it.
	Context any
}
