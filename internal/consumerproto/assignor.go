package consumerproto

import (
	"cmp"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Assignor decides, on the group leader, which member consumes which
// partition: Java's ConsumerPartitionAssignor, franz-go's GroupBalancer.
//
// Assignors are pure functions of their input, so every leader computes
// the same plan from the same JoinGroup response, whatever order the
// coordinator listed members in.
type Assignor interface {
	// Name is the protocol name sent in JoinGroup ("range",
	// "roundrobin", "sticky", "cooperative-sticky"). The coordinator
	// picks the first name every member supports, so it must match the
	// name other clients use for the same strategy.
	Name() string
	// Cooperative reports whether the assignor follows KIP-429's
	// incremental protocol: members keep their partitions through a
	// rebalance and give up only the ones the plan takes away.
	Cooperative() bool
	// UserData returns the assignor's bytes for the member's
	// subscription, given what the member was last assigned and in which
	// generation. Nil for assignors that keep no state.
	UserData(current map[string][]int32, generation int32) []byte
	// Assign returns the plan for members, given each subscribed topic's
	// partition count. Topics missing from partitions (the leader has no
	// metadata for them) are not assigned. Every member appears in the
	// plan, with an empty map if it gets nothing, so that SyncGroup
	// answers every member. A member id listed twice counts once (the
	// first listing), as a hostile or buggy coordinator could send that.
	Assign(members []Member, partitions map[string]int32) Plan
}

// Plan is an assignment plan: member id → topic → partitions, partitions
// sorted ascending.
type Plan map[string]map[string][]int32

// SyncAssignments encodes the plan for a SyncGroup request, one entry per
// member, ordered by member id so that equal plans make equal requests.
func (p Plan) SyncAssignments() []kmsg.SyncGroupRequestGroupAssignment {
	out := make([]kmsg.SyncGroupRequestGroupAssignment, 0, len(p))
	for _, id := range sortedKeys(p) {
		a := Assignment{Partitions: p[id]}
		sa := kmsg.NewSyncGroupRequestGroupAssignment()
		sa.MemberID = id
		sa.MemberAssignment = a.AppendTo(nil)
		out = append(out, sa)
	}
	return out
}

// compareMembers is Java's MemberInfo order, which the range and
// round-robin assignors (and franz-go's) sort members by: members with a
// group.instance.id first, by it; then dynamic members by member id. The
// instance id comes first because it survives restarts and the member id
// does not; sorting by it gives a restarted static member its old
// partitions back.
//
// Go compares strings by UTF-8 bytes and Java by UTF-16 code units; the
// two orders differ only for ids mixing characters above U+FFFF with ones
// in U+E000–U+FFFF, which no client generates.
func compareMembers(a, b *Member) int {
	switch {
	case a.InstanceID != "" && b.InstanceID != "":
		if c := cmp.Compare(a.InstanceID, b.InstanceID); c != 0 {
			return c
		}
	case a.InstanceID != "":
		return -1
	case b.InstanceID != "":
		return 1
	}
	// Equal instance ids only happen with a misbehaving coordinator;
	// the member id still makes the order total and deterministic.
	return cmp.Compare(a.ID, b.ID)
}

// prepareMembers returns pointers to members without duplicate ids (first
// listing wins), sorted by compareMembers, and an empty plan for them.
func prepareMembers(members []Member) ([]*Member, Plan) {
	plan := make(Plan, len(members))
	out := make([]*Member, 0, len(members))
	for i := range members {
		if _, dup := plan[members[i].ID]; dup {
			continue
		}
		plan[members[i].ID] = make(map[string][]int32)
		out = append(out, &members[i])
	}
	slices.SortStableFunc(out, compareMembers)
	return out, plan
}

// subscribed reports whether m subscribes to topic. Decoded topics are
// sorted, but members built by hand may not be, so this scans instead of
// searching; subscriptions are short.
func subscribed(m *Member, topic string) bool {
	return slices.Contains(m.Topics, topic)
}

// Range returns Java's RangeAssignor ("range"; franz-go's RangeBalancer).
//
// Each topic is assigned on its own: its subscribers, in member order, get
// contiguous ranges of partitions, and when the count does not divide
// evenly the first (partitions % subscribers) members get one extra. With
// two members and topics t0, t1 of three partitions each, m0 gets
// t0[0 1] t1[0 1] and m1 gets t0[2] t1[2]. The imbalance adds up over
// topics, but co-partitioned topics (same key, same partition number) land
// on the same member, which joins rely on.
//
// Rack-aware range (KIP-881) is not implemented.
func Range() Assignor { return rangeAssignor{} }

type rangeAssignor struct{}

func (rangeAssignor) Name() string                              { return "range" }
func (rangeAssignor) Cooperative() bool                         { return false }
func (rangeAssignor) UserData(map[string][]int32, int32) []byte { return nil }

func (rangeAssignor) Assign(members []Member, partitions map[string]int32) Plan {
	sorted, plan := prepareMembers(members)
	consumers := make(map[string][]*Member) // topic → subscribers, in member order
	for _, m := range sorted {
		for _, topic := range slices.Compact(slices.Sorted(slices.Values(m.Topics))) {
			consumers[topic] = append(consumers[topic], m)
		}
	}
	for topic, ms := range consumers {
		n := max(partitions[topic], 0)
		per, extra := n/int32(len(ms)), n%int32(len(ms))
		for i, m := range ms {
			i := int32(i)
			start := per*i + min(i, extra)
			length := per
			if i < extra {
				length++
			}
			if length == 0 {
				continue
			}
			ps := make([]int32, length)
			for j := range ps {
				ps[j] = start + int32(j)
			}
			plan[m.ID][topic] = ps
		}
	}
	return plan
}

// RoundRobin returns Java's RoundRobinAssignor ("roundrobin"; franz-go's
// RoundRobinBalancer).
//
// All partitions of all subscribed topics, sorted by topic then partition,
// are dealt to the members in member order, cycling; a member not
// subscribed to a partition's topic is skipped and the deal goes on from
// the next one. With equal subscriptions counts differ by at most one;
// with unequal ones the result can be far from balanced (KIP-49), which is
// what the sticky assignors fix.
func RoundRobin() Assignor { return roundRobinAssignor{} }

type roundRobinAssignor struct{}

func (roundRobinAssignor) Name() string                              { return "roundrobin" }
func (roundRobinAssignor) Cooperative() bool                         { return false }
func (roundRobinAssignor) UserData(map[string][]int32, int32) []byte { return nil }

func (roundRobinAssignor) Assign(members []Member, partitions map[string]int32) Plan {
	sorted, plan := prepareMembers(members)
	if len(sorted) == 0 {
		return plan
	}
	topicSet := make(map[string]struct{})
	for _, m := range sorted {
		for _, topic := range m.Topics {
			topicSet[topic] = struct{}{}
		}
	}
	next := 0 // the circular iterator over members, kept across partitions
	for _, topic := range sortedKeys(topicSet) {
		n := partitions[topic]
		for p := int32(0); p < n; p++ {
			// Some member subscribes to topic (it is in topicSet), so
			// this finds one within a full cycle.
			for !subscribed(sorted[next], topic) {
				next = (next + 1) % len(sorted)
			}
			m := sorted[next]
			plan[m.ID][topic] = append(plan[m.ID][topic], p)
			next = (next + 1) % len(sorted)
		}
	}
	return plan
}
