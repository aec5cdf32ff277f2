package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// A Record is one change to the metadata. The leader decides records from
// its Image and proposes them to Raft as one batch (one log entry, applied
// atomically); every node applies the committed batch with Apply.
//
// Encoding: a batch is JSON, {"v":1,"r":[{"t":"<type>","v":<version>,
// "d":{...}}]}. JSON rather than a binary schema because the metadata log
// is small (registrations, topic changes, elections: a few hundred bytes
// per entry, rarely more than a few entries a second), a raft entry must be
// readable when debugging a cluster (bolt's log can be dumped as text), and
// adding a field stays compatible both ways without a schema compiler.
// Each record carries its own version so a newer node can change one
// record's shape without touching the others.
type Record interface {
	recordType() string
}

// RegisterBroker registers (or re-registers) a broker incarnation. Apply
// sets its epoch to the offset of the entry and registers it fenced.
type RegisterBroker struct {
	ID             int32  `json:"id"`
	Host           string `json:"host"`
	Port           int32  `json:"port"`
	Rack           string `json:"rack,omitempty"`
	ControllerAddr string `json:"controller_addr,omitempty"`
}

// FenceBroker fences a broker (missed heartbeats, or a new incarnation
// registering). The elections it causes are separate PartitionChanges in
// the same batch.
type FenceBroker struct {
	ID    int32 `json:"id"`
	Epoch int64 `json:"epoch"`
}

// UnfenceBroker unfences a broker (its heartbeat after registration).
type UnfenceBroker struct {
	ID    int32 `json:"id"`
	Epoch int64 `json:"epoch"`
}

// UnregisterBroker removes a broker.
type UnregisterBroker struct {
	ID    int32 `json:"id"`
	Epoch int64 `json:"epoch"`
}

// CreateTopic creates a topic with all its partitions.
type CreateTopic struct {
	Topic *Topic `json:"topic"`
}

// DeleteTopic deletes a topic.
type DeleteTopic struct {
	ID TopicID `json:"id"`
}

// CreatePartitions appends partitions to a topic.
type CreatePartitions struct {
	ID         TopicID      `json:"id"`
	Partitions []*Partition `json:"partitions"`
}

// PartitionChange replaces one partition's state as a whole (leader, ISR,
// replicas, adding/removing, both epochs); the decision functions compute
// it, so Apply stays trivial and every node gets the same result.
type PartitionChange struct {
	ID        TopicID    `json:"id"`
	Partition int32      `json:"partition"`
	State     *Partition `json:"state"`
}

// Resource types of a ConfigChange, Kafka's ConfigResource.Type codes.
const (
	ResourceTopic  int8 = 2
	ResourceBroker int8 = 4
)

// ConfigChange sets or deletes one config key of a topic (Name is the topic
// name) or of the brokers (Name "" for the cluster-wide default, else the
// node id).
type ConfigChange struct {
	Resource int8   `json:"resource"`
	Name     string `json:"name"`
	Key      string `json:"key"`
	Value    string `json:"value,omitempty"`
	Delete   bool   `json:"delete,omitempty"`
}

// ProducerIDBlock hands a block of producer ids to a broker.
type ProducerIDBlock struct {
	BrokerID int32 `json:"broker"`
	First    int64 `json:"first"`
	Count    int32 `json:"count"`
}

// Bootstrap initialises a brand-new quorum's image: the cluster id and,
// when the broker migrates an old single-node metadata file, its topics,
// configs and producer-id counter. Applied only while the image is not yet
// Initialized, so a second one (from a later leader) is a no-op.
type Bootstrap struct {
	ClusterID      string                      `json:"cluster_id"`
	Topics         []*Topic                    `json:"topics,omitempty"`
	ClusterConfigs map[string]string           `json:"cluster_configs,omitempty"`
	NodeConfigs    map[int32]map[string]string `json:"node_configs,omitempty"`
	NextProducerID int64                       `json:"next_producer_id,omitempty"`
}

func (RegisterBroker) recordType() string   { return "register_broker" }
func (FenceBroker) recordType() string      { return "fence_broker" }
func (UnfenceBroker) recordType() string    { return "unfence_broker" }
func (UnregisterBroker) recordType() string { return "unregister_broker" }
func (CreateTopic) recordType() string      { return "create_topic" }
func (DeleteTopic) recordType() string      { return "delete_topic" }
func (CreatePartitions) recordType() string { return "create_partitions" }
func (PartitionChange) recordType() string  { return "partition_change" }
func (ConfigChange) recordType() string     { return "config_change" }
func (ProducerIDBlock) recordType() string  { return "producer_id_block" }
func (Bootstrap) recordType() string        { return "bootstrap" }

// recordVersion is the version this code writes of every record type, and
// the highest it reads.
const (
	recordVersion = 1
	batchVersion  = 1
)

var recordTypes = map[string]func() Record{
	"register_broker":   func() Record { return &RegisterBroker{} },
	"fence_broker":      func() Record { return &FenceBroker{} },
	"unfence_broker":    func() Record { return &UnfenceBroker{} },
	"unregister_broker": func() Record { return &UnregisterBroker{} },
	"create_topic":      func() Record { return &CreateTopic{} },
	"delete_topic":      func() Record { return &DeleteTopic{} },
	"create_partitions": func() Record { return &CreatePartitions{} },
	"partition_change":  func() Record { return &PartitionChange{} },
	"config_change":     func() Record { return &ConfigChange{} },
	"producer_id_block": func() Record { return &ProducerIDBlock{} },
	"bootstrap":         func() Record { return &Bootstrap{} },
}

type envelope struct {
	Type    string          `json:"t"`
	Version int             `json:"v"`
	Data    json.RawMessage `json:"d"`
}

type batch struct {
	Version int        `json:"v"`
	Records []envelope `json:"r"`
	// Request and Result make a retried operation apply once: the
	// operation's token and, for most operations, the answer the leader
	// gave. Not part of the metadata; see Node.exec.
	Request string          `json:"req,omitempty"`
	Result  json.RawMessage `json:"res,omitempty"`
}

// EncodeBatch encodes records as one Raft log entry.
func EncodeBatch(recs []Record) ([]byte, error) { return encodeEntry(recs, "", nil) }

func encodeEntry(recs []Record, request string, result json.RawMessage) ([]byte, error) {
	b := batch{Version: batchVersion, Request: request, Result: result}
	for _, r := range recs {
		d, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		b.Records = append(b.Records, envelope{Type: r.recordType(), Version: recordVersion, Data: d})
	}
	return json.Marshal(b)
}

// DecodeBatch decodes a Raft log entry. A record type or version this code
// does not know is an error: applying part of a batch would make this node
// diverge from the others silently.
func DecodeBatch(data []byte) ([]Record, error) {
	recs, _, err := decodeEntry(data)
	return recs, err
}

func decodeEntry(data []byte) ([]Record, *batch, error) {
	var b batch
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, nil, fmt.Errorf("controller: decode batch: %w", err)
	}
	if b.Version < 1 || b.Version > batchVersion {
		return nil, nil, fmt.Errorf("controller: batch version %d unknown (newest known %d)", b.Version, batchVersion)
	}
	out := make([]Record, 0, len(b.Records))
	for _, e := range b.Records {
		mk := recordTypes[e.Type]
		if mk == nil {
			return nil, nil, fmt.Errorf("controller: unknown record type %q", e.Type)
		}
		if e.Version < 1 || e.Version > recordVersion {
			return nil, nil, fmt.Errorf("controller: %s record version %d unknown", e.Type, e.Version)
		}
		r := mk()
		if err := json.Unmarshal(e.Data, r); err != nil {
			return nil, nil, fmt.Errorf("controller: decode %s: %w", e.Type, err)
		}
		out = append(out, deref(r))
	}
	return out, &b, nil
}

// deref turns the pointer DecodeBatch filled back into the value type the
// decision functions produce, so decoded and decided records compare equal.
func deref(r Record) Record {
	switch r := r.(type) {
	case *RegisterBroker:
		return *r
	case *FenceBroker:
		return *r
	case *UnfenceBroker:
		return *r
	case *UnregisterBroker:
		return *r
	case *CreateTopic:
		return *r
	case *DeleteTopic:
		return *r
	case *CreatePartitions:
		return *r
	case *PartitionChange:
		return *r
	case *ConfigChange:
		return *r
	case *ProducerIDBlock:
		return *r
	case *Bootstrap:
		return *r
	}
	return r
}

// ApplyBatch applies every record of one log entry at offset and returns
// the new image. img is not modified.
func ApplyBatch(img *Image, offset uint64, recs []Record) *Image {
	next := img.clone()
	for _, r := range recs {
		applyTo(next, offset, r)
	}
	next.Offset = offset
	return next
}

// Apply applies one record at offset and returns the new image; img is
// not modified. A record that no longer fits the image (a change to a topic
// deleted meanwhile, a fence of an older incarnation) is a no-op: Apply
// never fails, so every node reaches the same image from the same log.
func Apply(img *Image, offset uint64, r Record) *Image {
	return ApplyBatch(img, offset, []Record{r})
}

// applyTo applies r to next, a private clone whose maps may be changed.
func applyTo(next *Image, offset uint64, r Record) {
	switch r := r.(type) {
	case RegisterBroker:
		next.Brokers[r.ID] = &BrokerInfo{
			ID: r.ID, Epoch: int64(offset), Host: r.Host, Port: r.Port, Rack: r.Rack,
			Fenced: true, ControllerAddr: r.ControllerAddr,
		}
	case FenceBroker:
		if b := next.Brokers[r.ID]; b != nil && b.Epoch == r.Epoch {
			c := *b
			c.Fenced = true
			next.Brokers[r.ID] = &c
		}
	case UnfenceBroker:
		if b := next.Brokers[r.ID]; b != nil && b.Epoch == r.Epoch {
			c := *b
			c.Fenced = false
			next.Brokers[r.ID] = &c
		}
	case UnregisterBroker:
		if b := next.Brokers[r.ID]; b != nil && b.Epoch == r.Epoch {
			delete(next.Brokers, r.ID)
		}
	case CreateTopic:
		if r.Topic == nil || !validPartitions(r.Topic.Partitions) || next.TopicsByName[r.Topic.Name] != nil || next.TopicsByID[r.Topic.ID] != nil {
			return
		}
		next.putTopic(cloneTopic(r.Topic))
	case DeleteTopic:
		if t := next.TopicsByID[r.ID]; t != nil {
			delete(next.TopicsByID, r.ID)
			delete(next.TopicsByName, t.Name)
		}
	case CreatePartitions:
		t := next.TopicsByID[r.ID]
		if t == nil || !validPartitions(r.Partitions) {
			return
		}
		c := *t
		c.Partitions = slices.Clone(t.Partitions)
		for _, p := range r.Partitions {
			c.Partitions = append(c.Partitions, p.clone())
		}
		next.putTopic(&c)
	case PartitionChange:
		t := next.TopicsByID[r.ID]
		if t == nil || r.State == nil || len(r.State.Replicas) == 0 || r.Partition < 0 || int(r.Partition) >= len(t.Partitions) {
			return
		}
		next.putTopic(t.withPartition(r.Partition, r.State.clone()))
	case ConfigChange:
		applyConfig(next, r)
	case ProducerIDBlock:
		if end := r.First + int64(r.Count); end > next.NextProducerID {
			next.NextProducerID = end
		}
	case Bootstrap:
		if next.Initialized {
			return
		}
		next.Initialized = true
		next.ClusterID = r.ClusterID
		// The migrated partitions start without a leader: no broker is
		// registered yet. A replica's first heartbeat elects it (with a
		// new leader epoch), as after any restart.
		for _, t := range r.Topics {
			if t == nil || !validPartitions(t.Partitions) {
				continue
			}
			c := cloneTopic(t)
			for _, p := range c.Partitions {
				if !next.Alive(p.Leader) {
					p.Leader = -1
				}
			}
			next.putTopic(c)
		}
		for k, v := range r.ClusterConfigs {
			next.ClusterConfigs[k] = v
		}
		for id, m := range r.NodeConfigs {
			next.NodeConfigs[id] = cloneMap(m)
		}
		if r.NextProducerID > next.NextProducerID {
			next.NextProducerID = r.NextProducerID
		}
	}
}

// validPartitions guards Apply against a malformed record (a nil
// partition, no replicas): such a record is a no-op rather than a panic or
// an image the decisions cannot work with.
func validPartitions(ps []*Partition) bool {
	for _, p := range ps {
		if p == nil || len(p.Replicas) == 0 {
			return false
		}
	}
	return true
}

func applyConfig(next *Image, r ConfigChange) {
	set := func(m map[string]string) map[string]string {
		c := cloneMap(m)
		if r.Delete {
			delete(c, r.Key)
		} else {
			c[r.Key] = r.Value
		}
		return c
	}
	switch r.Resource {
	case ResourceTopic:
		t := next.TopicsByName[r.Name]
		if t == nil {
			return
		}
		c := *t
		c.Configs = set(t.Configs)
		next.putTopic(&c)
	case ResourceBroker:
		if r.Name == "" {
			next.ClusterConfigs = set(next.ClusterConfigs)
			return
		}
		id, err := strconv.ParseInt(r.Name, 10, 32)
		if err != nil {
			return
		}
		m := set(next.NodeConfigs[int32(id)])
		if len(m) == 0 {
			delete(next.NodeConfigs, int32(id))
		} else {
			next.NodeConfigs[int32(id)] = m
		}
	}
}

func cloneTopic(t *Topic) *Topic {
	c := *t
	c.Configs = cloneMap(t.Configs)
	c.Partitions = make([]*Partition, len(t.Partitions))
	for i, p := range t.Partitions {
		c.Partitions[i] = p.clone()
	}
	return &c
}

// snapshot is the JSON form of an Image in a Raft snapshot.
type snapshot struct {
	Version        int                         `json:"v"`
	Offset         uint64                      `json:"offset"`
	Initialized    bool                        `json:"initialized"`
	ClusterID      string                      `json:"cluster_id"`
	Brokers        []*BrokerInfo               `json:"brokers"`
	Topics         []*Topic                    `json:"topics"`
	ClusterConfigs map[string]string           `json:"cluster_configs"`
	NodeConfigs    map[int32]map[string]string `json:"node_configs"`
	NextProducerID int64                       `json:"next_producer_id"`
}

const snapshotVersion = 1

// MarshalImage encodes img for a Raft snapshot.
func MarshalImage(img *Image) ([]byte, error) {
	return json.Marshal(snapshot{
		Version: snapshotVersion, Offset: img.Offset, Initialized: img.Initialized, ClusterID: img.ClusterID,
		Brokers: img.AllBrokers(), Topics: img.Topics(),
		ClusterConfigs: img.ClusterConfigs, NodeConfigs: img.NodeConfigs, NextProducerID: img.NextProducerID,
	})
}

// UnmarshalImage decodes what MarshalImage wrote.
func UnmarshalImage(data []byte) (*Image, error) {
	var s snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("controller: decode snapshot: %w", err)
	}
	if s.Version != snapshotVersion {
		return nil, errors.New("controller: snapshot version " + strconv.Itoa(s.Version) + " unknown")
	}
	img := NewImage()
	img.Offset, img.Initialized, img.ClusterID, img.NextProducerID = s.Offset, s.Initialized, s.ClusterID, s.NextProducerID
	for _, b := range s.Brokers {
		img.Brokers[b.ID] = b
	}
	for _, t := range s.Topics {
		if t.Configs == nil {
			t.Configs = map[string]string{}
		}
		img.putTopic(t)
	}
	for k, v := range s.ClusterConfigs {
		img.ClusterConfigs[k] = v
	}
	for k, v := range s.NodeConfigs {
		img.NodeConfigs[k] = v
	}
	return img, nil
}
