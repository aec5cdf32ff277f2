package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// DescribeCluster: v0-2
//
// The brokers registered with the controller quorum and the active
// controller, from the metadata image. Authorized operations
// are returned only when asked (no ACLs yet: everything). v1 adds
// EndpointType: 1 (brokers) is served; 2 (controllers) gives
// UNSUPPORTED_ENDPOINT_TYPE as on a broker listener in Kafka. v2 adds
// IncludeFencedBrokers: fenced brokers (heartbeats stopped) are listed,
// marked IsFenced, only when asked.

func init() { register(60, 0, 2, handleDescribeCluster) }

func handleDescribeCluster(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.DescribeClusterRequest)
	resp := r.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = r.EndpointType
	if r.Version >= 1 && r.EndpointType != 1 {
		resp.ErrorCode = tributary.ErrUnsupportedEndpointType.Code
		resp.ErrorMessage = kmsg.StringPtr("only the broker endpoint type (1) is served")
		return resp, nil
	}
	resp.ClusterID = b.clusterID
	resp.ControllerID = b.ControllerID()
	for _, info := range b.image().AllBrokers() {
		if info.Fenced && !r.IncludeFencedBrokers {
			continue
		}
		br := kmsg.NewDescribeClusterResponseBroker()
		br.NodeID, br.Host, br.Port = info.ID, info.Host, info.Port
		if info.Rack != "" {
			br.Rack = kmsg.StringPtr(info.Rack)
		}
		br.IsFenced = info.Fenced
		resp.Brokers = append(resp.Brokers, br)
	}
	resp.ClusterAuthorizedOperations = authorizedOpsOmitted
	if r.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = clusterAuthorizedOps
	}
	return resp, nil
}
