package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// DescribeQuorum: v0-2 (KIP-595, KIP-836, KIP-853)
//
// The state of the controller quorum, from its Raft leader: the leader's
// id and term (its "epoch"), the commit index as the high watermark, and
// every voter's log end offset with when the leader last heard from it
// and last found it caught up (v1). The only partition is
// __cluster_metadata-0; any other gets UNKNOWN_TOPIC_OR_PARTITION. A
// quorum without a leader answers NOT_LEADER_OR_FOLLOWER for the
// partition. v2 adds each voter's controller endpoint (Nodes).

func init() { register(55, 0, 2, handleDescribeQuorum) }

func handleDescribeQuorum(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.DescribeQuorumRequest)
	resp := r.ResponseKind().(*kmsg.DescribeQuorumResponse)
	for _, rt := range r.Topics {
		st := kmsg.NewDescribeQuorumResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDescribeQuorumResponseTopicPartition()
			sp.Partition = rp.Partition
			if rt.Topic != "__cluster_metadata" || rp.Partition != 0 {
				sp.ErrorCode = tributary.ErrUnknownTopicOrPartition.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			ctx, cancel := b.adminCtx(5000)
			q, err := b.ctrl.Quorum(ctx)
			cancel()
			if err != nil {
				sp.ErrorCode, sp.ErrorMessage = errCodeMsg(err)
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			sp.LeaderID, sp.LeaderEpoch, sp.HighWatermark = q.LeaderID, q.LeaderEpoch, q.HighWatermark
			for _, v := range q.Voters {
				rs := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
				rs.ReplicaID = v.ID
				rs.LogEndOffset = v.LogEndOffset
				rs.LastFetchTimestamp = v.LastFetchTimestamp
				rs.LastCaughtUpTimestamp = v.LastCaughtUpTimestamp
				sp.CurrentVoters = append(sp.CurrentVoters, rs)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if r.Version >= 2 {
		img := b.image()
		for _, info := range img.AllBrokers() {
			if info.ControllerAddr == "" {
				continue
			}
			n := kmsg.NewDescribeQuorumResponseNode()
			n.NodeID = info.ID
			host, port := splitHostPort(info.ControllerAddr)
			l := kmsg.NewDescribeQuorumResponseNodeListener()
			l.Name, l.Host, l.Port = "CONTROLLER", host, uint16(port)
			n.Listeners = append(n.Listeners, l)
			resp.Nodes = append(resp.Nodes, n)
		}
	}
	return resp, nil
}
