package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// CreatePartitions: v0-3
//
// Grows topics to a new partition count, in request order. Kafka never
// shrinks: a count equal to or below the current one gives
// INVALID_PARTITIONS. An explicit assignment lists the replicas of each
// new partition (the controller checks them: INVALID_REPLICA_ASSIGNMENT);
// without one the controller places them as for a new topic. A topic
// named twice gives INVALID_REQUEST, an unknown one
// UNKNOWN_TOPIC_OR_PARTITION. ValidateOnly checks and creates nothing.

func init() { register(37, 0, 3, handleCreatePartitions) }

func handleCreatePartitions(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.CreatePartitionsRequest)
	resp := r.ResponseKind().(*kmsg.CreatePartitionsResponse)
	count := map[string]int{}
	for _, rt := range r.Topics {
		count[rt.Topic]++
	}
	for _, rt := range r.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		var err error
		t := b.lookupTopic(rt.Topic)
		switch {
		case count[rt.Topic] > 1:
			err = errorf(tributary.ErrInvalidRequest, "topic %s is named more than once", rt.Topic)
		case t == nil:
			err = errorf(tributary.ErrUnknownTopicOrPartition, "topic %s does not exist", rt.Topic)
		default:
			b.mu.RLock()
			cur := int32(len(t.partitions))
			b.mu.RUnlock()
			if rt.Assignment != nil && int32(len(rt.Assignment)) != rt.Count-cur {
				err = errorf(tributary.ErrInvalidReplicaAssignment, "increasing the number of partitions by %d but %d assignments provided", rt.Count-cur, len(rt.Assignment))
				break
			}
			var assignment [][]int32
			for _, a := range rt.Assignment {
				assignment = append(assignment, a.Replicas)
			}
			err = b.addPartitions(t, rt.Count, assignment, r.ValidateOnly)
		}
		st.ErrorCode, st.ErrorMessage = errCodeMsg(err)
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
