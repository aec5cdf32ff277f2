package broker

// LeaveGroup: v0-5, served by the group state machine. v0-2 remove one
// member, v3+ (KIP-345) a batch with an answer per member.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/group"
)

func init() { register(13, 0, 5, handleLeaveGroup) }

func handleLeaveGroup(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.LeaveGroupRequest)
	fail := func(err *tributary.Error) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = err.Code
		return resp
	}
	return b.groupRequest(req, r.Group, fail, func(c *group.Coordinator, now time.Time, _ group.Ref) kmsg.Response {
		return c.LeaveGroup(now, r)
	})
}
