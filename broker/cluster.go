package broker

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/controller"
	"github.com/tributary/tributary/broker/replica"
	"github.com/tributary/tributary/broker/storage"
)

// topic is one topic as this broker knows it. The topics map and each
// topic's partitions slice and configs map are guarded by Broker.mu and
// replaced, never modified in place, so a reader may keep a slice it got
// under the lock. A partition's own state is guarded inside it
// (storage.Log is safe for concurrent use).
type topic struct {
	name       string
	id         [16]byte          // topic id (KIP-516), stable across restarts
	internal   bool              // __consumer_offsets and friends
	configs    map[string]string // per-topic overrides only, Kafka names
	partitions []*partition
}

// partition is one partition of a topic as this broker knows it. log and
// rep are set when this node holds a replica and never change for one
// *partition: when the node starts or stops hosting it, the reconcile
// loop replaces the *partition in the topic's slice. state is the
// controller's view (leader, replicas, ISR, epochs) as of the last
// reconciled image.
type partition struct {
	topic *topic
	index int32
	log   *storage.Log       // nil when no replica is here
	rep   *replica.Partition // nil when no replica is here
	state atomic.Pointer[controller.Partition]
	// txnMu orders a transaction-opening produce, held from its
	// verification with the coordinator to its append, against the
	// transaction markers written here (txnverify.go): a marker cannot
	// slip in between and leave the batch opening a transaction that
	// already ended.
	txnMu sync.Mutex
}

// leaderEpoch is the partition's current leader epoch.
func (p *partition) leaderEpoch() int32 {
	if p.rep != nil {
		return p.rep.LeaderEpoch()
	}
	if st := p.state.Load(); st != nil {
		return st.LeaderEpoch
	}
	return 0
}

// internalTopics are created by the broker itself (group and transaction
// coordinators), never by CreateTopics.
var internalTopics = map[string]bool{
	"__consumer_offsets":    true,
	"__transaction_state":   true,
	"__share_group_state":   true,
	"__cluster_metadata":    true,
	"__remote_log_metadata": true,
}

// replicationFactor is the number of replicas of the topic's first
// partition, as Kafka reports it.
func (t *topic) replicationFactor() int16 {
	if len(t.partitions) == 0 {
		return 0
	}
	if st := t.partitions[0].state.Load(); st != nil {
		return int16(len(st.Replicas))
	}
	return 1
}

// leaderPartition returns the partition if this broker leads it, else
// NOT_LEADER_OR_FOLLOWER (or UNKNOWN_TOPIC_OR_PARTITION): what produce,
// consumer fetches, list offsets and delete records need.
func (b *Broker) leaderPartition(topicName string, index int32) (*partition, error) {
	p, err := b.lookupPartition(topicName, index)
	if err != nil {
		return nil, err
	}
	if p.rep == nil || !p.rep.IsLeader() {
		return nil, errorf(tributary.ErrNotLeaderOrFollower, "broker %d does not lead %s-%d", b.cfg.NodeID, topicName, index)
	}
	return p, nil
}

// lookupPartition returns the partition, or ErrUnknownTopicOrPartition.
func (b *Broker) lookupPartition(topicName string, index int32) (*partition, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	t := b.mu.topics[topicName]
	if t == nil || index < 0 || int(index) >= len(t.partitions) {
		return nil, tributary.ErrUnknownTopicOrPartition
	}
	return t.partitions[index], nil
}

// lookupTopic returns the topic by name, or nil.
func (b *Broker) lookupTopic(name string) *topic {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.mu.topics[name]
}

// lookupTopicID returns the topic by id, or nil.
func (b *Broker) lookupTopicID(id [16]byte) *topic {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.mu.byID[id]
}

// allPartitions returns every partition (for the retention and flush
// loops and Close).
func (b *Broker) allPartitions() []*partition {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var ps []*partition
	for _, t := range b.mu.topics {
		for _, p := range t.partitions {
			if p.log != nil {
				ps = append(ps, p)
			}
		}
	}
	return ps
}

// newUUID returns a random version-4 UUID, never all zeroes (Kafka's
// "zero UUID" means none).
func newUUID() [16]byte {
	var u [16]byte
	for u == [16]byte{} {
		rand.Read(u[:])
		u[6] = u[6]&0x0f | 0x40
		u[8] = u[8]&0x3f | 0x80
	}
	return u
}

// uuidString prints a UUID the way Kafka does: URL-safe base64, no padding.
func uuidString(u [16]byte) string { return base64.RawURLEncoding.EncodeToString(u[:]) }

func parseUUID(s string) ([16]byte, error) {
	var u [16]byte
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) != 16 {
		return u, fmt.Errorf("bad uuid %q", s)
	}
	copy(u[:], raw)
	return u, nil
}
