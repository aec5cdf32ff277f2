package broker

// JoinGroup: v0-9, served by the group state machine (broker/group
// 11_join_group.go has the semantics: KIP-394 MEMBER_ID_REQUIRED on v4+,
// static members on v5+, parked joins until the join phase ends).
//
// A join may park for up to the group's rebalance timeout; it then holds
// up only its own connection (kgo sends JoinGroup and SyncGroup on a
// connection of their own). The member is described with the request's
// client id and the peer host.

import (
	"bytes"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/group"
)

func init() { register(11, 0, 9, handleJoinGroup) }

func handleJoinGroup(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.JoinGroupRequest)
	// The group keeps the members' metadata; []byte fields of a request
	// point into the connection's frame buffer, reused after the
	// response.
	for i := range r.Protocols {
		r.Protocols[i].Metadata = bytes.Clone(r.Protocols[i].Metadata)
	}
	client := groupClient(req)
	fail := func(err *tributary.Error) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode = err.Code
		resp.MemberID = r.MemberID
		return resp
	}
	return b.groupRequest(req, r.Group, fail, func(c *group.Coordinator, now time.Time, ref group.Ref) kmsg.Response {
		if resp := c.JoinGroup(now, ref, client, r); resp != nil {
			return resp
		}
		return nil
	})
}
