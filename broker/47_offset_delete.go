package broker

// OffsetDelete: v0 (KIP-496), served by the group state machine: deletes
// a group's committed offsets for topics its members do not consume
// (tombstones in __consumer_offsets, acked only once written).

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/group"
)

func init() { register(47, 0, 0, handleOffsetDelete) }

func handleOffsetDelete(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.OffsetDeleteRequest)
	fail := func(err *tributary.Error) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = err.Code
		return resp
	}
	return b.groupRequest(req, r.Group, fail, func(c *group.Coordinator, now time.Time, _ group.Ref) kmsg.Response {
		return c.OffsetDelete(now, r)
	})
}
