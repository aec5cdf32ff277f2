package broker

// Heartbeat: v0-4, served by the group state machine: a member keeps its
// session alive and learns of a rebalance (REBALANCE_IN_PROGRESS).

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/group"
)

func init() { register(12, 0, 4, handleHeartbeat) }

func handleHeartbeat(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.HeartbeatRequest)
	fail := func(err *tributary.Error) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = err.Code
		return resp
	}
	return b.groupRequest(req, r.Group, fail, func(c *group.Coordinator, now time.Time, _ group.Ref) kmsg.Response {
		return c.Heartbeat(now, r)
	})
}
