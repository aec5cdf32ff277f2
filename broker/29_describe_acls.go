package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// DescribeAcls (29), CreateAcls (30), DeleteAcls (31): v1-3
//
// The broker has no authorizer yet. Kafka without authorizer.class.name
// answers all three ACL APIs with SECURITY_DISABLED (for Create and
// Delete, once per creation or filter), and so does this broker, so admin
// tools report "security is disabled" rather than a protocol failure.

func init() {
	register(29, 1, 3, handleDescribeACLs)
	register(30, 1, 3, handleCreateACLs)
	register(31, 1, 3, handleDeleteACLs)
}

var noAuthorizer = kmsg.StringPtr("no authorizer is configured on the broker")

func handleDescribeACLs(b *Broker, req *request) (any, error) {
	resp := req.msg.(*kmsg.DescribeACLsRequest).ResponseKind().(*kmsg.DescribeACLsResponse)
	resp.ErrorCode, resp.ErrorMessage = tributary.ErrSecurityDisabled.Code, noAuthorizer
	return resp, nil
}

func handleCreateACLs(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.CreateACLsRequest)
	resp := r.ResponseKind().(*kmsg.CreateACLsResponse)
	for range r.Creations {
		res := kmsg.NewCreateACLsResponseResult()
		res.ErrorCode, res.ErrorMessage = tributary.ErrSecurityDisabled.Code, noAuthorizer
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}

func handleDeleteACLs(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.DeleteACLsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteACLsResponse)
	for range r.Filters {
		res := kmsg.NewDeleteACLsResponseResult()
		res.ErrorCode, res.ErrorMessage = tributary.ErrSecurityDisabled.Code, noAuthorizer
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}
