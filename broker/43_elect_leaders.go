package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// ElectLeaders: v0-2
//
// Every partition has one replica, this node, which is live and leads, so
// neither a preferred (0) nor an unclean (1) election has anything to do:
// each named partition answers ELECTION_NOT_NEEDED, as Kafka answers when
// the chosen leader already leads. An unknown partition answers
// UNKNOWN_TOPIC_OR_PARTITION. A null topic list asks for every partition;
// like Kafka, partitions that needed no election are then left out of the
// answer. Another election type gives INVALID_REQUEST.

func init() { register(43, 0, 2, handleElectLeaders) }

func handleElectLeaders(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.ElectLeadersRequest)
	resp := r.ResponseKind().(*kmsg.ElectLeadersResponse)
	if r.Version >= 1 && r.ElectionType != 0 && r.ElectionType != 1 {
		resp.ErrorCode = tributary.ErrInvalidRequest.Code
		return resp, nil
	}
	if r.Topics == nil {
		return resp, nil // every partition already has its leader
	}
	for _, rt := range r.Topics {
		st := kmsg.NewElectLeadersResponseTopic()
		st.Topic = rt.Topic
		for _, p := range rt.Partitions {
			sp := kmsg.NewElectLeadersResponseTopicPartition()
			sp.Partition = p
			if _, err := b.lookupPartition(rt.Topic, p); err != nil {
				sp.ErrorCode, sp.ErrorMessage = errCodeMsg(err)
			} else {
				sp.ErrorCode = tributary.ErrElectionNotNeeded.Code
				sp.ErrorMessage = kmsg.StringPtr("the preferred replica already leads")
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
