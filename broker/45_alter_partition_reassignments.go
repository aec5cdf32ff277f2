package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// AlterPartitionReassignments: v0-1
//
// One node means one possible replica set: [this node]. Asking for it is
// a reassignment that is complete at once (NONE); an empty set, a
// repeated id or a broker that does not exist gives
// INVALID_REPLICA_ASSIGNMENT, as Kafka answers for brokers that are not
// registered; a null set cancels a reassignment, and since none is ever in
// progress that gives NO_REASSIGNMENT_IN_PROGRESS. Unknown partitions get
// UNKNOWN_TOPIC_OR_PARTITION. Results mirror the request's order.

func init() { register(45, 0, 1, handleAlterPartitionReassignments) }

func handleAlterPartitionReassignments(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.AlterPartitionAssignmentsRequest)
	resp := r.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	resp.AllowReplicationFactorChange = r.AllowReplicationFactorChange
	for _, rt := range r.Topics {
		st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode, sp.ErrorMessage = errCodeMsg(b.reassign(rt.Topic, rp.Partition, rp.Replicas))
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func (b *Broker) reassign(topic string, partition int32, replicas []int32) error {
	if _, err := b.lookupPartition(topic, partition); err != nil {
		return err
	}
	switch {
	case replicas == nil:
		return errorf(tributary.ErrNoReassignmentInProgress, "no reassignment of %s-%d is in progress", topic, partition)
	case len(replicas) == 0:
		return errorf(tributary.ErrInvalidReplicaAssignment, "the replica set is empty")
	case len(replicas) > 1:
		return errorf(tributary.ErrInvalidReplicaAssignment, "replicas %v: this cluster has one broker, %d", replicas, b.cfg.NodeID)
	case replicas[0] != b.cfg.NodeID:
		return errorf(tributary.ErrInvalidReplicaAssignment, "broker %d is not in the cluster", replicas[0])
	}
	return nil // already placed there: the reassignment is complete
}
