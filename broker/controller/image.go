package controller

import (
	"encoding/base64"
	"fmt"
	"slices"
	"sort"
	"strconv"

	"github.com/tributary/tributary"
)

// TopicID is a topic's UUID. It is a named [16]byte so that a plain
// [16]byte (what the broker and kmsg use) is assignable to it and back
// without conversion, while JSON writes it as the base64url text Kafka
// tools print instead of sixteen numbers.
type TopicID [16]byte

// String is the base64url form Kafka prints (Uuid.toString).
func (id TopicID) String() string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// MarshalText implements encoding.TextMarshaler.
func (id TopicID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *TopicID) UnmarshalText(b []byte) error {
	raw, err := base64.RawURLEncoding.DecodeString(string(b))
	if err != nil || len(raw) != 16 {
		return fmt.Errorf("controller: bad topic id %q", b)
	}
	copy(id[:], raw)
	return nil
}

// BrokerInfo is one registered broker.
type BrokerInfo struct {
	ID int32 `json:"id"`
	// Epoch is the broker epoch: the offset of the record that
	// registered this incarnation, as KRaft assigns it. A heartbeat or
	// AlterPartition carrying an older epoch comes from a dead incarnation.
	Epoch int64  `json:"epoch"`
	Host  string `json:"host"`
	Port  int32  `json:"port"`
	Rack  string `json:"rack,omitempty"` // broker.rack
	// Fenced brokers lead nothing and are in no ISR (except as the last
	// member of a leaderless partition). A broker registers fenced and is
	// unfenced by its first heartbeat.
	Fenced bool `json:"fenced,omitempty"`
	// ControllerAddr is the node's controller listener, empty for a
	// broker-only node.
	ControllerAddr string `json:"controller_addr,omitempty"`
}

// Partition is one partition's replica state. A *Partition reachable from an
// Image is never modified; changes make a new one.
type Partition struct {
	Replicas []int32 `json:"replicas"`
	ISR      []int32 `json:"isr"`
	// Leader is the leading broker, -1 when the partition has none
	// (offline).
	Leader int32 `json:"leader"`
	// LeaderEpoch grows by one on every leader change.
	LeaderEpoch int32 `json:"leader_epoch"`
	// PartitionEpoch grows by one on every change of this partition; an
	// AlterPartition must name the current one.
	PartitionEpoch   int32   `json:"partition_epoch"`
	AddingReplicas   []int32 `json:"adding,omitempty"`
	RemovingReplicas []int32 `json:"removing,omitempty"`
}

// Reassigning reports whether a reassignment is in progress.
func (p *Partition) Reassigning() bool {
	return len(p.AddingReplicas) > 0 || len(p.RemovingReplicas) > 0
}

// InISR reports whether broker id is in the ISR.
func (p *Partition) InISR(id int32) bool { return slices.Contains(p.ISR, id) }

// IsReplica reports whether broker id holds a replica.
func (p *Partition) IsReplica(id int32) bool { return slices.Contains(p.Replicas, id) }

func (p *Partition) clone() *Partition {
	return &Partition{
		Replicas:         slices.Clone(p.Replicas),
		ISR:              slices.Clone(p.ISR),
		Leader:           p.Leader,
		LeaderEpoch:      p.LeaderEpoch,
		PartitionEpoch:   p.PartitionEpoch,
		AddingReplicas:   slices.Clone(p.AddingReplicas),
		RemovingReplicas: slices.Clone(p.RemovingReplicas),
	}
}

func (p *Partition) equal(q *Partition) bool {
	return slices.Equal(p.Replicas, q.Replicas) && slices.Equal(p.ISR, q.ISR) &&
		p.Leader == q.Leader && p.LeaderEpoch == q.LeaderEpoch && p.PartitionEpoch == q.PartitionEpoch &&
		slices.Equal(p.AddingReplicas, q.AddingReplicas) && slices.Equal(p.RemovingReplicas, q.RemovingReplicas)
}

// Topic is one topic. Never modified once reachable from an Image.
type Topic struct {
	Name     string  `json:"name"`
	ID       TopicID `json:"id"`
	Internal bool    `json:"internal,omitempty"`
	// Configs holds the topic's overrides only; defaults live with the
	// broker.
	Configs    map[string]string `json:"configs,omitempty"`
	Partitions []*Partition      `json:"partitions"`
}

// Image is an immutable snapshot of the cluster metadata: everything the
// Raft log has said up to Offset. Readers hold a *Image without locks;
// Apply returns a new Image sharing what did not change.
type Image struct {
	// Offset is the Raft index of the last applied entry.
	Offset uint64
	// Initialized is set by the first Bootstrap record; a new leader
	// proposes one while it is false.
	Initialized bool
	ClusterID   string
	Brokers     map[int32]*BrokerInfo
	// TopicsByName and TopicsByID index the same *Topic values.
	TopicsByName map[string]*Topic
	TopicsByID   map[TopicID]*Topic
	// ClusterConfigs are the dynamic cluster-wide broker configs
	// (IncrementalAlterConfigs on the BROKER resource with an empty name),
	// NodeConfigs the per-node ones.
	ClusterConfigs map[string]string
	NodeConfigs    map[int32]map[string]string
	// NextProducerID is the first id of the next block AllocateProducerIds
	// hands out.
	NextProducerID int64
}

// NewImage returns the empty image a brand-new quorum starts from.
func NewImage() *Image {
	return &Image{
		Brokers:        map[int32]*BrokerInfo{},
		TopicsByName:   map[string]*Topic{},
		TopicsByID:     map[TopicID]*Topic{},
		ClusterConfigs: map[string]string{},
		NodeConfigs:    map[int32]map[string]string{},
	}
}

// TopicByName returns the topic or nil.
func (img *Image) TopicByName(name string) *Topic { return img.TopicsByName[name] }

// TopicByID returns the topic or nil.
func (img *Image) TopicByID(id [16]byte) *Topic { return img.TopicsByID[id] }

// Partition returns one partition or nil when the topic or partition does
// not exist.
func (img *Image) Partition(topic string, idx int32) *Partition {
	t := img.TopicsByName[topic]
	if t == nil || idx < 0 || int(idx) >= len(t.Partitions) {
		return nil
	}
	return t.Partitions[idx]
}

// Broker returns the registration of id or nil.
func (img *Image) Broker(id int32) *BrokerInfo { return img.Brokers[id] }

// Alive reports whether broker id is registered and not fenced: the only
// brokers that may lead or be added to an ISR.
func (img *Image) Alive(id int32) bool {
	b := img.Brokers[id]
	return b != nil && !b.Fenced
}

// LiveBrokers returns the unfenced brokers sorted by id.
func (img *Image) LiveBrokers() []*BrokerInfo {
	var out []*BrokerInfo
	for _, b := range img.Brokers {
		if !b.Fenced {
			out = append(out, b)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// AllBrokers returns every registered broker sorted by id.
func (img *Image) AllBrokers() []*BrokerInfo {
	out := make([]*BrokerInfo, 0, len(img.Brokers))
	for _, b := range img.Brokers {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Topics returns every topic sorted by name.
func (img *Image) Topics() []*Topic {
	out := make([]*Topic, 0, len(img.TopicsByName))
	for _, t := range img.TopicsByName {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LedBy returns the partitions broker id leads, sorted.
func (img *Image) LedBy(id int32) []tributary.TopicPartition {
	var out []tributary.TopicPartition
	for _, t := range img.Topics() {
		for i, p := range t.Partitions {
			if p.Leader == id {
				out = append(out, tributary.TopicPartition{Topic: t.Name, Partition: int32(i)})
			}
		}
	}
	return out
}

// TopicConfig returns the value of a topic config as the controller sees
// it: the topic's override, else the dynamic cluster-wide value, else
// def. (Static broker configs are the broker's business; the controller
// needs only unclean.leader.election.enable, whose static default is
// false.)
func (img *Image) TopicConfig(t *Topic, key, def string) string {
	if t != nil {
		if v, ok := t.Configs[key]; ok {
			return v
		}
	}
	if v, ok := img.ClusterConfigs[key]; ok {
		return v
	}
	return def
}

// UncleanElection reports whether unclean.leader.election.enable is true for
// the topic (override, then cluster config, then Kafka's default false).
func (img *Image) UncleanElection(t *Topic) bool {
	v, _ := strconv.ParseBool(img.TopicConfig(t, "unclean.leader.election.enable", "false"))
	return v
}

// clone returns a shallow copy whose maps may be modified; the values they
// hold are shared and must be replaced, not changed.
func (img *Image) clone() *Image {
	c := *img
	c.Brokers = make(map[int32]*BrokerInfo, len(img.Brokers))
	for k, v := range img.Brokers {
		c.Brokers[k] = v
	}
	c.TopicsByName = make(map[string]*Topic, len(img.TopicsByName))
	for k, v := range img.TopicsByName {
		c.TopicsByName[k] = v
	}
	c.TopicsByID = make(map[TopicID]*Topic, len(img.TopicsByID))
	for k, v := range img.TopicsByID {
		c.TopicsByID[k] = v
	}
	c.ClusterConfigs = cloneMap(img.ClusterConfigs)
	c.NodeConfigs = make(map[int32]map[string]string, len(img.NodeConfigs))
	for k, v := range img.NodeConfigs {
		c.NodeConfigs[k] = v
	}
	return &c
}

// putTopic stores t under both indexes.
func (img *Image) putTopic(t *Topic) {
	img.TopicsByName[t.Name] = t
	img.TopicsByID[t.ID] = t
}

// withPartition returns a copy of t with partition idx replaced.
func (t *Topic) withPartition(idx int32, p *Partition) *Topic {
	c := *t
	c.Partitions = slices.Clone(t.Partitions)
	c.Partitions[idx] = p
	return &c
}

func cloneMap(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
