package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// AlterPartitionReassignments: v0-1
//
// Each partition's target replica set goes to the controller, which runs
// Kafka's reassignment: the partition's replicas become old ∪ new, the
// new replicas start following and catch up, and once every one of them
// is in the ISR the old ones are dropped (the leader re-elected if it was
// one of them). The call answers when the reassignment has started; its
// progress shows in ListPartitionReassignments. A null set cancels a
// reassignment in progress (NO_REASSIGNMENT_IN_PROGRESS if none); an
// empty set, a repeated id or an unregistered broker gives
// INVALID_REPLICA_ASSIGNMENT; unknown partitions
// UNKNOWN_TOPIC_OR_PARTITION. Results mirror the request's order.

func init() { register(45, 0, 1, handleAlterPartitionReassignments) }

func handleAlterPartitionReassignments(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.AlterPartitionAssignmentsRequest)
	resp := r.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	resp.AllowReplicationFactorChange = r.AllowReplicationFactorChange

	targets := map[tributary.TopicPartition][]int32{}
	local := map[tributary.TopicPartition]error{}
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			tp := tributary.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}
			if _, err := b.lookupPartition(rt.Topic, rp.Partition); err != nil {
				local[tp] = err
				continue
			}
			if rp.Replicas != nil && len(rp.Replicas) == 0 {
				local[tp] = errorf(tributary.ErrInvalidReplicaAssignment, "the replica set is empty")
				continue
			}
			targets[tp] = rp.Replicas
		}
	}
	var results map[tributary.TopicPartition]error
	if len(targets) > 0 {
		ctx, cancel := b.adminCtx(r.TimeoutMillis)
		var err error
		results, err = b.ctrl.AlterReassignments(ctx, targets)
		if err != nil {
			results = map[tributary.TopicPartition]error{}
			for tp := range targets {
				results[tp] = err
			}
		} else if err := b.afterChange(ctx); err != nil {
			b.logger.Debug("reassignment: waiting for the registry", "err", err)
		}
		cancel()
	}
	for _, rt := range r.Topics {
		st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			sp.Partition = rp.Partition
			tp := tributary.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}
			err, ok := local[tp]
			if !ok {
				err = results[tp]
			}
			sp.ErrorCode, sp.ErrorMessage = errCodeMsg(err)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
