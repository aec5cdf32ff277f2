package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// ListPartitionReassignments: v0
//
// Reassignments on one node complete as they are asked for (see
// AlterPartitionReassignments), so none is ever in progress and the list
// is empty, whether the request names topics or asks for all (null).

func init() { register(46, 0, 0, handleListPartitionReassignments) }

func handleListPartitionReassignments(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.ListPartitionReassignmentsRequest)
	return r.ResponseKind(), nil
}
