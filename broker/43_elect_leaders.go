package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// ElectLeaders: v0-2
//
// The controller runs the election: PREFERRED (0) makes each partition's
// first replica its leader when it is alive and in the ISR
// (ELECTION_NOT_NEEDED when it already leads, PREFERRED_LEADER_NOT_AVAILABLE
// when it cannot); UNCLEAN (1) elects a leader for a leaderless partition,
// from the ISR if possible and else from any live replica
// (ELECTION_NOT_NEEDED when it has one, ELIGIBLE_LEADERS_NOT_AVAILABLE
// when none is alive). A null topic list asks for every partition; like
// Kafka, partitions that needed no election are then left out. Unknown
// partitions answer UNKNOWN_TOPIC_OR_PARTITION; another election type
// INVALID_REQUEST. v0 has no election type: preferred.

func init() { register(43, 0, 2, handleElectLeaders) }

func handleElectLeaders(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.ElectLeadersRequest)
	resp := r.ResponseKind().(*kmsg.ElectLeadersResponse)
	if r.Version >= 1 && r.ElectionType != 0 && r.ElectionType != 1 {
		resp.ErrorCode = tributary.ErrInvalidRequest.Code
		return resp, nil
	}
	unclean := r.Version >= 1 && r.ElectionType == 1

	var tps []tributary.TopicPartition
	all := r.Topics == nil
	if !all {
		for _, rt := range r.Topics {
			for _, p := range rt.Partitions {
				tps = append(tps, tributary.TopicPartition{Topic: rt.Topic, Partition: p})
			}
		}
	}
	ctx, cancel := b.adminCtx(r.TimeoutMillis)
	defer cancel()
	results, err := b.ctrl.ElectLeaders(ctx, unclean, tps)
	if err != nil {
		resp.ErrorCode, _ = errCodeMsg(err)
		return resp, nil
	}
	if err := b.afterChange(ctx); err != nil {
		b.logger.Debug("elect leaders: waiting for the registry", "err", err)
	}

	if all {
		byTopic := map[string]*kmsg.ElectLeadersResponseTopic{}
		var order []string
		for tp, err := range results {
			if tributary.CodeOf(err) == tributary.ErrElectionNotNeeded.Code {
				continue
			}
			st := byTopic[tp.Topic]
			if st == nil {
				t := kmsg.NewElectLeadersResponseTopic()
				t.Topic = tp.Topic
				st = &t
				byTopic[tp.Topic] = st
				order = append(order, tp.Topic)
			}
			sp := kmsg.NewElectLeadersResponseTopicPartition()
			sp.Partition = tp.Partition
			sp.ErrorCode, sp.ErrorMessage = errCodeMsg(err)
			st.Partitions = append(st.Partitions, sp)
		}
		for _, n := range order {
			resp.Topics = append(resp.Topics, *byTopic[n])
		}
		return resp, nil
	}
	for _, rt := range r.Topics {
		st := kmsg.NewElectLeadersResponseTopic()
		st.Topic = rt.Topic
		for _, p := range rt.Partitions {
			sp := kmsg.NewElectLeadersResponseTopicPartition()
			sp.Partition = p
			tp := tributary.TopicPartition{Topic: rt.Topic, Partition: p}
			err, ok := results[tp]
			if !ok {
				err = tributary.ErrUnknownTopicOrPartition
			}
			sp.ErrorCode, sp.ErrorMessage = errCodeMsg(err)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
