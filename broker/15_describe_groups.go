package broker

// DescribeGroups: v0-5, served by the group state machine, groups in
// request order. A group whose __consumer_offsets partition is not loaded
// (or whose topic does not exist yet) is answered with that error alone
// (COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE); the others
// are described. Authorized operations (v3+) are everything when asked
// for: there are no ACLs yet.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary/broker/group"
)

func init() { register(15, 0, 5, handleDescribeGroups) }

// groupAuthorizedOps is every operation on a GROUP resource (READ,
// DESCRIBE, DELETE), as AclOperation bits.
const groupAuthorizedOps = 1<<3 | 1<<6 | 1<<8

func handleDescribeGroups(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.DescribeGroupsRequest)
	resp, err := b.callGroups(req, &groupCall{run: func(gc *groupCoordinator, now time.Time, _ group.Ref) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.DescribeGroupsResponse)
		sub := *r
		sub.Groups = nil
		for _, id := range r.Groups {
			if gc.groupError(id) == nil {
				sub.Groups = append(sub.Groups, id)
			}
		}
		described := gc.c.DescribeGroups(now, &sub).Groups
		for _, id := range r.Groups {
			if e := gc.groupError(id); e != nil {
				dg := kmsg.NewDescribeGroupsResponseGroup()
				dg.Group, dg.ErrorCode = id, e.Code
				dg.AuthorizedOperations = authorizedOpsOmitted
				resp.Groups = append(resp.Groups, dg)
				continue
			}
			dg := described[0]
			described = described[1:]
			dg.AuthorizedOperations = authorizedOpsOmitted
			if r.IncludeAuthorizedOperations {
				dg.AuthorizedOperations = groupAuthorizedOps
			}
			resp.Groups = append(resp.Groups, dg)
		}
		return resp
	}})
	if err != nil {
		return nil, err
	}
	return resp, nil
}
