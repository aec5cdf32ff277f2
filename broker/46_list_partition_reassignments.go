package broker

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// ListPartitionReassignments: v0
//
// The reassignments in progress, from the metadata image: for each
// partition its current replicas (old ∪ new while moving), the replicas
// being added and those being removed. A null topic list asks for all;
// named partitions without a reassignment in progress are left out, as
// Kafka does.

func init() { register(46, 0, 0, handleListPartitionReassignments) }

func handleListPartitionReassignments(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.ListPartitionReassignmentsRequest)
	resp := r.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	img := b.image()
	byTopic := map[string][]kmsg.ListPartitionReassignmentsResponseTopicPartition{}
	add := func(name string, idx int32) {
		p := img.Partition(name, idx)
		if p == nil || !p.Reassigning() {
			return
		}
		sp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
		sp.Partition = idx
		sp.Replicas = append([]int32(nil), p.Replicas...)
		sp.AddingReplicas = append([]int32{}, p.AddingReplicas...)
		sp.RemovingReplicas = append([]int32{}, p.RemovingReplicas...)
		byTopic[name] = append(byTopic[name], sp)
	}
	if r.Topics == nil {
		for _, t := range img.Topics() {
			for i := range t.Partitions {
				add(t.Name, int32(i))
			}
		}
	} else {
		for _, rt := range r.Topics {
			for _, idx := range rt.Partitions {
				add(rt.Topic, idx)
			}
		}
	}
	names := make([]string, 0, len(byTopic))
	for n := range byTopic {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		st := kmsg.NewListPartitionReassignmentsResponseTopic()
		st.Topic = n
		st.Partitions = byTopic[n]
		resp.Topics = append(resp.Topics, st)
	}
	_ = tributary.ErrNoReassignmentInProgress
	return resp, nil
}
