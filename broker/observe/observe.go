// Package observe is the read-only view of a broker that its metrics
// (broker/metrics) and web console (broker/console) are built on.
//
// The broker implements Source in one file (broker/observe.go); the
// collectors and pages know nothing else about it. The types already carry
// what replication fills in (replicas, ISR, leader, controller, ISR and
// election counters): on a single node the leader is this node, the
// replicas and ISR are [this node] and the counters stay 0, so the
// cluster metrics are correct today and become interesting, without a
// change here, once the controller and replicas land.
package observe

import (
	"context"
	"time"
)

// Source is what the metrics and the console read from a broker. Every
// method is safe for concurrent use and returns copies the caller may
// keep.
type Source interface {
	// Cluster describes the cluster as this node sees it.
	Cluster() Cluster
	// Topics lists every topic, sorted by name, with its partitions
	// (without configs).
	Topics() []Topic
	// Topic returns one topic with its partitions and configs.
	Topic(name string) (Topic, bool)
	// Groups lists the consumer groups this node coordinates, sorted by
	// id, with members, committed offsets and lag.
	Groups(ctx context.Context) ([]Group, error)
	// Records reads up to req.Max records of one partition below its
	// high watermark.
	Records(ctx context.Context, req ReadRequest) ([]Record, error)
}

// Cluster is the cluster seen from this node.
type Cluster struct {
	ClusterID string
	NodeID    int32 // this node
	// Controller is the active controller's node id, -1 if none is known.
	Controller int32
	Brokers    []Broker
	// Ready is true once the broker serves requests (logs and metadata
	// loaded, listener open).
	Ready bool
	// Cumulative replication events on this node since it started: what
	// Kafka's IsrShrinksPerSec, IsrExpandsPerSec and the controller's
	// LeaderElectionRateAndTimeMs / UncleanLeaderElectionsPerSec count.
	ISRShrinks, ISRExpands, LeaderElections, UncleanLeaderElections int64
	// StartTime is when this broker process started serving.
	StartTime time.Time
}

// Broker is one node of the cluster.
type Broker struct {
	NodeID int32
	Host   string
	Port   int32
	Rack   string
	// ConsoleURL is the node's console, "" if it has none or it is unknown.
	ConsoleURL string
}

// Topic is one topic.
type Topic struct {
	Name       string
	ID         string // Kafka's base64 form
	Internal   bool
	Partitions []Partition
	Configs    []Config // only from Source.Topic
	// ReplicationFactor is the length of the first partition's replica list.
	ReplicationFactor int
}

// Partition is one partition of a topic.
type Partition struct {
	Topic       string
	Partition   int32
	Leader      int32 // -1: offline
	LeaderEpoch int32
	Replicas    []int32
	ISR         []int32
	// MinISR is the topic's effective min.insync.replicas.
	MinISR int
	// Offsets and size of this node's replica (the leader's, on the
	// leader); Local is false when this node holds no replica, and then
	// they are -1.
	Local         bool
	HighWatermark int64
	LogStart      int64
	LogEnd        int64
	Size          int64
	Segments      int
	// Compacted is set when the topic's cleanup.policy includes compact;
	// DirtyRatio is then this replica's dirty ratio (0..1): the cleanable
	// bytes past the cleaner checkpoint over the cleanable log, what
	// min.cleanable.dirty.ratio is compared with.
	Compacted  bool
	DirtyRatio float64
}

// UnderReplicated is Kafka's definition: fewer in-sync replicas than
// replicas.
func (p Partition) UnderReplicated() bool { return p.Leader >= 0 && len(p.ISR) < len(p.Replicas) }

// UnderMinISR reports an ISR smaller than min.insync.replicas: acks=all
// writes fail.
func (p Partition) UnderMinISR() bool { return p.Leader >= 0 && len(p.ISR) < p.MinISR }

// Offline is a partition without a leader.
func (p Partition) Offline() bool { return p.Leader < 0 }

// Config is one effective topic config.
type Config struct {
	Name, Value string
	Source      string // Kafka's ConfigSource name, e.g. DYNAMIC_TOPIC_CONFIG
}

// Group is one consumer group.
type Group struct {
	ID           string
	State        string // Kafka's names: Empty, Stable, PreparingRebalance, ...
	ProtocolType string
	Protocol     string
	Members      []Member
	// Offsets are every partition the group committed to or has assigned,
	// sorted by topic and partition, with lag computed as admin.Lag does.
	Offsets []GroupOffset
	// Err is why the group could not be described (e.g. its offsets
	// partition is still loading), "" if it was.
	Err string
}

// TotalLag sums the non-negative partition lags.
func (g Group) TotalLag() int64 {
	var n int64
	for _, o := range g.Offsets {
		if o.Lag > 0 {
			n += o.Lag
		}
	}
	return n
}

// Member is one member of a group.
type Member struct {
	ID         string
	InstanceID string
	ClientID   string
	Host       string
	Assigned   []TopicPartitions // decoded for consumer groups
}

// TopicPartitions are partitions of one topic.
type TopicPartitions struct {
	Topic      string
	Partitions []int32
}

// GroupOffset is a group's position in one partition.
type GroupOffset struct {
	Topic     string
	Partition int32
	Committed int64 // -1: nothing committed
	Start     int64 // log start, -1 if unknown
	End       int64 // high watermark, -1 if unknown
	// Lag is End - Committed (at least 0); with nothing committed
	// End - Start; -1 when End is unknown. Exactly admin.Lag's rule.
	Lag    int64
	Member string // member the partition is assigned to, "" if none
}

// ReadRequest says which records Records returns.
type ReadRequest struct {
	Topic     string
	Partition int32
	// Offset is the first offset wanted; when FromTime is set instead
	// (Unix ms, >= 0) reading starts at the first record at or after it.
	Offset   int64
	FromTime int64 // -1: use Offset
	Max      int   // records, at most 1000
	MaxBytes int   // bytes read from the log, bounded by the implementation
}

// Record is one record read for the console.
type Record struct {
	Offset    int64
	Timestamp time.Time
	Key       []byte // nil: null key
	Value     []byte // nil: null value (tombstone)
	Headers   []Header
}

// Header is one record header.
type Header struct {
	Key   string
	Value []byte
}

// Actions are the console's write actions (console.write.enable). The
// broker carries them out through its own request handlers, so they pass
// exactly the checks a client's CreateTopics, DeleteTopics or
// OffsetCommit passes.
type Actions interface {
	CreateTopic(ctx context.Context, name string, partitions int32, replicationFactor int16) error
	DeleteTopic(ctx context.Context, name string) error
	// ResetGroupOffsets commits new offsets for group on every partition
	// of topic, or with topic "" on every partition it has committed to.
	// Kafka accepts it only while the group has no active members.
	ResetGroupOffsets(ctx context.Context, group, topic string, to ResetTarget) error
}

// ResetTarget says where ResetGroupOffsets moves offsets, as
// kafka-consumer-groups --reset-offsets does.
type ResetTarget struct {
	Kind  ResetKind
	Value int64 // Unix ms for ResetToTime, the delta for ResetShiftBy
}

// ResetKind is a kind of reset.
type ResetKind int8

const (
	ResetToEarliest ResetKind = iota + 1 // the log start offset
	ResetToLatest                        // the high watermark
	ResetToTime                          // the first offset at or after Value, else the high watermark
	ResetShiftBy                         // committed + Value, clamped to [log start, high watermark]
)
