package consumerproto_test

import (
	"fmt"

	"github.com/tributary/tributary/internal/consumerproto"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A member joins with its subscription; the leader decodes every member,
// assigns, and encodes the plan for SyncGroup; each member decodes its
// assignment. Here a third member joins a cooperative group: the
// partitions it should get are first revoked from their owners, and it
// receives them in the follow-up rebalance.
func Example() {
	a := consumerproto.CooperativeSticky()
	owned := map[string]map[string][]int32{
		"member-a": {"orders": {0, 1, 2}},
		"member-b": {"orders": {3, 4, 5}},
		"member-c": nil, // new
	}
	var join []kmsg.JoinGroupResponseMember
	for _, id := range []string{"member-a", "member-b", "member-c"} {
		sub := consumerproto.NewSubscription(a, []string{"orders"}, owned[id], 1, "")
		m := kmsg.NewJoinGroupResponseMember()
		m.MemberID = id
		m.ProtocolMetadata = sub.AppendTo(nil)
		join = append(join, m)
	}

	// On the leader.
	members, err := consumerproto.DecodeMembers(join)
	if err != nil {
		panic(err)
	}
	plan := a.Assign(members, map[string]int32{"orders": 6})

	// On each member, from its SyncGroup response.
	for _, sa := range plan.SyncAssignments() {
		got, err := consumerproto.DecodeAssignment(sa.MemberAssignment)
		if err != nil {
			panic(err)
		}
		fmt.Println(sa.MemberID, got.Partitions["orders"])
	}
	// Output:
	// member-a [0 1]
	// member-b [3 4]
	// member-c []
}
