package broker

import (
	"sync"

	"github.com/tributary/tributary/broker/storage"
)

// topic is one topic as this broker knows it. The topics map and each
// topic's partitions slice are guarded by Broker.mu; a partition's own
// state is guarded inside it (storage.Log is safe for concurrent use).
type topic struct {
	name       string
	id         [16]byte          // topic id (KIP-516), stable across restarts
	internal   bool              // __consumer_offsets and friends
	configs    map[string]string // per-topic overrides only, Kafka names
	partitions []*partition
}

// partition is one partition this broker leads. Every partition carries
// a leader epoch and a high watermark (in its log) from the start, so
// replication adds followers rather than a new design.
type partition struct {
	topic       *topic
	index       int32
	leaderEpoch int32
	log         *storage.Log

	// produceMu serialises appends with their producer-state checks and
	// the wakeup of waiting fetches.
	produceMu sync.Mutex
}
