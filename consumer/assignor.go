package consumer

import (
	"maps"
	"slices"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/internal/consumerproto"
)

// Assignor decides which member of a group consumes which partition (Java:
// ConsumerPartitionAssignor; franz-go: GroupBalancer). Kafka's coordinator
// does not assign partitions itself: it elects one member leader and that
// member's Assignor computes the plan for everyone. Pass assignors to
// [Assignors]; the built-in ones are [Range], [RoundRobin], [Sticky] and
// [CooperativeSticky].
//
// A custom assignor implements the three methods below (and
// [AssignorUserData] if it keeps state across rebalances). Its Assign
// must be a pure function of its input: whichever member leads, the same
// members and partitions must give the same plan.
type Assignor interface {
	// Name is the strategy name sent to the coordinator ("range",
	// "roundrobin", "sticky", "cooperative-sticky" for the built-in
	// ones). The coordinator picks the first name every member offers,
	// so it must match the name other clients use for the same strategy.
	Name() string
	// Cooperative reports whether the assignor follows KIP-429's
	// incremental protocol: members keep their partitions through a
	// rebalance and give up only those the plan moves away. A
	// cooperative Assign must not move a partition straight from one
	// member to another in one plan: it leaves it unassigned, its owner
	// gives it up, and the next rebalance assigns it.
	Cooperative() bool
	// Assign returns, for every member id, the partitions that member
	// consumes, given each subscribed topic's partition count. A topic
	// missing from partitions has no metadata on the leader and must not
	// be assigned. Members left out of the result get nothing.
	Assign(members []GroupMember, partitions map[string]int32) map[string][]tributary.TopicPartition
}

// AssignorUserData is implemented by assignors that send state with every
// join, as Java's eager StickyAssignor sends the member's last assignment.
// The leader's Assign finds it in [GroupMember.UserData].
type AssignorUserData interface {
	// UserData returns the bytes to send, given what the member was last
	// assigned and in which generation (-1 before its first).
	UserData(owned []tributary.TopicPartition, generation int32) []byte
}

// GroupMember is one member of the group as the leader's [Assignor] sees
// it.
type GroupMember struct {
	// ID is the member id the coordinator gave it; the plan is keyed by it.
	ID string
	// InstanceID is its group.instance.id (static membership), "" if none.
	InstanceID string
	// Topics is what it subscribes to, sorted.
	Topics []string
	// Owned is what it consumes while it rejoins (cooperative members
	// only; eager members have given everything up), sorted.
	Owned []tributary.TopicPartition
	// Generation is the generation Owned comes from, -1 if none.
	Generation int32
	// Rack is its client.rack, "" if unset.
	Rack string
	// UserData is what its assignor's [AssignorUserData] sent, if any.
	UserData []byte
}

// Range is Java's RangeAssignor ("range"): each topic on its own, its
// subscribers (static members first, by instance id, then by member id)
// get contiguous ranges of partitions, the first ones one extra when the
// count does not divide evenly. Co-partitioned topics land on the same
// member. Plans are identical to Java's and franz-go's.
func Range() Assignor { return builtin{consumerproto.Range()} }

// RoundRobin is Java's RoundRobinAssignor ("roundrobin"): all partitions
// of all subscribed topics are dealt to the members in turn. Plans are
// identical to Java's and franz-go's.
func RoundRobin() Assignor { return builtin{consumerproto.RoundRobin()} }

// CooperativeSticky is Java's CooperativeStickyAssignor
// ("cooperative-sticky", KIP-429): balanced, moving as few partitions as
// possible, and incremental: members keep consuming what stays with them
// through a rebalance. Use Assignors(CooperativeSticky()) alone to make
// the member cooperative.
func CooperativeSticky() Assignor { return builtin{consumerproto.CooperativeSticky()} }

// Sticky is Java's eager StickyAssignor ("sticky", KIP-54): balanced and
// moving as few partitions as possible, but every member gives up all its
// partitions at each rebalance.
func Sticky() Assignor { return builtin{consumerproto.Sticky()} }

// builtin is a built-in assignor: the consumer runs the internal one
// directly, and Assign serves callers that use it by hand.
type builtin struct{ a consumerproto.Assignor }

func (b builtin) Name() string      { return b.a.Name() }
func (b builtin) Cooperative() bool { return b.a.Cooperative() }

func (b builtin) Assign(members []GroupMember, partitions map[string]int32) map[string][]tributary.TopicPartition {
	in := make([]consumerproto.Member, len(members))
	for i, m := range members {
		in[i] = consumerproto.Member{ID: m.ID, InstanceID: m.InstanceID, Subscription: consumerproto.Subscription{
			Version: consumerproto.SubscriptionVersion, Topics: m.Topics, UserData: m.UserData,
			Owned: byTopic(m.Owned), Generation: m.Generation, Rack: m.Rack,
		}}
	}
	return fromPlan(b.a.Assign(in, partitions))
}

// protoAssignor returns the internal assignor the group loop runs for a.
func protoAssignor(a Assignor) consumerproto.Assignor {
	if b, ok := a.(builtin); ok {
		return b.a
	}
	return custom{a}
}

// custom runs a user's Assignor in the group protocol.
type custom struct{ a Assignor }

func (c custom) Name() string      { return c.a.Name() }
func (c custom) Cooperative() bool { return c.a.Cooperative() }

func (c custom) UserData(current map[string][]int32, generation int32) []byte {
	if u, ok := c.a.(AssignorUserData); ok {
		return u.UserData(fromTopicMap(current), generation)
	}
	return nil
}

func (c custom) Assign(members []consumerproto.Member, partitions map[string]int32) consumerproto.Plan {
	in := make([]GroupMember, len(members))
	plan := make(consumerproto.Plan, len(members))
	for i, m := range members {
		in[i] = GroupMember{ID: m.ID, InstanceID: m.InstanceID, Topics: slices.Clone(m.Topics),
			Owned: fromTopicMap(m.Owned), Generation: m.Generation, Rack: m.Rack, UserData: m.UserData}
		// SyncGroup must answer every member, even those the user's
		// plan leaves out.
		plan[m.ID] = map[string][]int32{}
	}
	for id, tps := range c.a.Assign(in, maps.Clone(partitions)) {
		if _, ok := plan[id]; !ok {
			continue // not a member: the coordinator would reject it
		}
		plan[id] = byTopic(tps)
	}
	return plan
}

func byTopic(tps []tributary.TopicPartition) map[string][]int32 {
	if len(tps) == 0 {
		return nil
	}
	out := make(map[string][]int32)
	for _, tp := range tps {
		out[tp.Topic] = append(out[tp.Topic], tp.Partition)
	}
	for t, ps := range out {
		out[t] = slices.Compact(slices.Sorted(slices.Values(ps)))
	}
	return out
}

func fromTopicMap(m map[string][]int32) []tributary.TopicPartition {
	if len(m) == 0 {
		return nil
	}
	return flatten(m)
}

func fromPlan(p consumerproto.Plan) map[string][]tributary.TopicPartition {
	out := make(map[string][]tributary.TopicPartition, len(p))
	for id, m := range p {
		out[id] = fromTopicMap(m)
	}
	return out
}
