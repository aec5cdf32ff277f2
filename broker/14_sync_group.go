package broker

// SyncGroup: v0-5, served by the group state machine. Followers park
// until the leader's assignment arrives; the leader's answer (and every
// parked follower's) is sent only once the group's metadata with the
// assignments is in __consumer_offsets.

import (
	"bytes"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/group"
)

func init() { register(14, 0, 5, handleSyncGroup) }

func handleSyncGroup(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.SyncGroupRequest)
	// The group keeps the assignments; []byte fields of a request point
	// into the connection's frame buffer, reused after the response.
	for i := range r.GroupAssignment {
		r.GroupAssignment[i].MemberAssignment = bytes.Clone(r.GroupAssignment[i].MemberAssignment)
	}
	fail := func(err *tributary.Error) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = err.Code
		// An empty (not missing) assignment: kgo parses it even with
		// an error code (tansu #679).
		resp.MemberAssignment = []byte{}
		return resp
	}
	return b.groupRequest(req, r.Group, fail, func(c *group.Coordinator, now time.Time, ref group.Ref) kmsg.Response {
		if resp := c.SyncGroup(now, ref, r); resp != nil {
			return resp
		}
		return nil
	})
}
