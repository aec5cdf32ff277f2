package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// CreateTopics: v2-7
//
// Each topic is validated and created on its own; results come back in
// request order. Names follow Kafka's rules (INVALID_TOPIC_EXCEPTION,
// including '.'/'_' collisions); an existing name gives
// TOPIC_ALREADY_EXISTS; a name given twice in one request gives
// INVALID_REQUEST for each entry. NumPartitions and ReplicationFactor of
// -1 take num.partitions and default.replication.factor; the controller
// places the replicas (round-robin leaders from a random start, followers
// shifted, racks alternated) and refuses a replication factor above the
// number of live brokers (INVALID_REPLICATION_FACTOR). A manual assignment
// must list partitions 0..n-1, each on distinct registered brokers with
// the same replication factor (INVALID_REPLICA_ASSIGNMENT), and excludes
// the counts (INVALID_REQUEST). Configs are checked by name and value
// (INVALID_CONFIG). Internal topic names are refused (INVALID_REQUEST).
// ValidateOnly runs every check and creates nothing.
//
// v5+ returns the resulting partition count, replication factor and every
// topic config with its source; v7 returns the topic id.

func init() { register(19, 2, 7, handleCreateTopics) }

func handleCreateTopics(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.CreateTopicsRequest)
	resp := r.ResponseKind().(*kmsg.CreateTopicsResponse)

	count := map[string]int{}
	for _, rt := range r.Topics {
		count[rt.Topic]++
	}
	for _, rt := range r.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		var err error
		var t *topic
		if count[rt.Topic] > 1 {
			err = errorf(tributary.ErrInvalidRequest, "create topics request contains multiple entries for topic %s", rt.Topic)
		} else {
			t, err = b.createFromRequest(&rt, r.ValidateOnly, r.TimeoutMillis)
		}
		st.ErrorCode, st.ErrorMessage = errCodeMsg(err)
		if err == nil {
			st.TopicID = t.id
			st.NumPartitions = int32(len(t.partitions))
			st.ReplicationFactor = t.replicationFactor()
			for _, e := range b.topicConfigEntries(t, false) {
				c := kmsg.NewCreateTopicsResponseTopicConfig()
				c.Name, c.Value, c.ReadOnly, c.Source, c.IsSensitive = e.name, e.value, e.readOnly, int8(e.source), e.sensitive
				st.Configs = append(st.Configs, c)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// timeoutMs is the request's: how long to wait for the topic to be
// created and hosted here before answering REQUEST_TIMED_OUT (the
// creation goes on), as Kafka does; 0 or less waits 30 s.
func (b *Broker) createFromRequest(rt *kmsg.CreateTopicsRequestTopic, validateOnly bool, timeoutMs int32) (*topic, error) {
	spec := &topicSpec{name: rt.Topic, partitions: rt.NumPartitions, rf: rt.ReplicationFactor, configs: map[string]string{}}
	if err := validateTopicName(rt.Topic); err != nil {
		return nil, err
	}
	for _, c := range rt.Configs {
		if _, dup := spec.configs[c.Name]; dup {
			return nil, errorf(tributary.ErrInvalidConfig, "config %s given more than once", c.Name)
		}
		if err := validateTopicConfig(c.Name, c.Value); err != nil {
			return nil, errorf(tributary.ErrInvalidConfig, "%v", err)
		}
		spec.configs[c.Name] = *c.Value
	}
	if len(rt.ReplicaAssignment) > 0 {
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return nil, errorf(tributary.ErrInvalidRequest, "both numPartitions or replicationFactor and replicasAssignments were set; both cannot be used at the same time")
		}
		if len(rt.ReplicaAssignment) > maxPartitionsPerTopic {
			return nil, errorf(tributary.ErrInvalidPartitions, "number of partitions %d is above this broker's limit of %d", len(rt.ReplicaAssignment), maxPartitionsPerTopic)
		}
		seen := make([]bool, len(rt.ReplicaAssignment))
		assignment := make([][]int32, len(rt.ReplicaAssignment))
		for _, a := range rt.ReplicaAssignment {
			if a.Partition < 0 || int(a.Partition) >= len(seen) || seen[a.Partition] {
				return nil, errorf(tributary.ErrInvalidReplicaAssignment, "partitions should be a consecutive 0-based integer sequence; partition %d is out of place", a.Partition)
			}
			seen[a.Partition] = true
			if len(a.Replicas) == 0 {
				return nil, errorf(tributary.ErrInvalidReplicaAssignment, "partition %d has no replicas", a.Partition)
			}
			assignment[a.Partition] = a.Replicas
		}
		// The controller checks the brokers exist, are distinct and
		// that every partition has the same replication factor.
		b.mu.RLock()
		err := b.checkNewTopicLocked(spec)
		b.mu.RUnlock()
		if err != nil && tributary.CodeOf(err) != tributary.ErrInvalidPartitions.Code && tributary.CodeOf(err) != tributary.ErrInvalidReplicationFactor.Code {
			return nil, err
		}
		spec.partitions, spec.rf = int32(len(assignment)), int16(len(assignment[0]))
		return b.createTopicAssigned(spec, assignment, validateOnly, timeoutMs)
	}
	return b.createTopicAssigned(spec, nil, validateOnly, timeoutMs)
}
