package consumerproto

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kgoPlan runs franz-go's balancer b over the same members, encoded the way
// our leader receives them, and returns its plan decoded by us. franz-go's
// client sorts the JoinGroup members before balancing (static members
// first, by instance id, then by member id) and its round robin depends on
// that, so the sort is reproduced here.
func kgoPlan(t testing.TB, b kgo.GroupBalancer, members []Member, partitions map[string]int32) Plan {
	t.Helper()
	jms := make([]kmsg.JoinGroupResponseMember, 0, len(members))
	for i := range members {
		m := &members[i]
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID = m.ID
		if m.InstanceID != "" {
			jm.InstanceID = kmsg.StringPtr(m.InstanceID)
		}
		jm.ProtocolMetadata = m.Subscription.AppendTo(nil)
		jms = append(jms, jm)
	}
	sort.SliceStable(jms, func(i, j int) bool {
		l, r := &jms[i], &jms[j]
		if l.InstanceID != nil {
			return r.InstanceID == nil || *l.InstanceID < *r.InstanceID
		}
		return r.InstanceID == nil && l.MemberID < r.MemberID
	})
	mb, _, err := b.MemberBalancer(jms)
	if err != nil {
		t.Fatalf("kgo member balancer: %v", err)
	}
	into, err := mb.(kgo.GroupMemberBalancerOrError).BalanceOrError(partitions)
	if err != nil {
		t.Fatalf("kgo balance: %v", err)
	}
	plan := make(Plan)
	for _, sa := range into.IntoSyncAssignment() {
		a, err := DecodeAssignment(sa.MemberAssignment)
		if err != nil {
			t.Fatalf("decoding kgo assignment: %v", err)
		}
		plan[sa.MemberID] = a.Partitions
	}
	return normalize(plan)
}

// normalize drops empty topics and gives every member a non-nil map, so
// plans from us and from franz-go compare with ==.
func normalize(p Plan) Plan {
	out := make(Plan, len(p))
	for id, topics := range p {
		m := make(map[string][]int32)
		for topic, ps := range topics {
			if len(ps) > 0 {
				m[topic] = slices.Sorted(slices.Values(ps))
			}
		}
		out[id] = m
	}
	return out
}

// scenario is a random group: members with differing subscriptions, some
// static, over several topics, some topics without metadata.
type scenario struct {
	members    []Member
	partitions map[string]int32
}

func randomScenario(r *rand.Rand, maxMembers, maxTopics, maxPartitions int) scenario {
	nt := 1 + r.IntN(maxTopics)
	topics := make([]string, nt)
	partitions := make(map[string]int32)
	for i := range topics {
		topics[i] = fmt.Sprintf("t%02d", i)
		switch r.IntN(10) {
		case 0: // no metadata: must not be assigned
		case 1:
			partitions[topics[i]] = 0
		default:
			partitions[topics[i]] = int32(1 + r.IntN(maxPartitions))
		}
	}
	nm := 1 + r.IntN(maxMembers)
	members := make([]Member, nm)
	equal := r.IntN(3) == 0 // a third of the groups subscribe alike
	var common []string
	for _, topic := range topics {
		if r.IntN(2) == 0 {
			common = append(common, topic)
		}
	}
	for i := range members {
		m := &members[i]
		// Ids out of order so that nothing relies on input order.
		m.ID = fmt.Sprintf("m-%03d-%x", r.IntN(1000), r.Uint32())
		if r.IntN(4) == 0 {
			m.InstanceID = fmt.Sprintf("inst-%03d", r.IntN(1000))
		}
		m.Version = SubscriptionVersion
		m.Generation = -1
		if equal {
			m.Topics = slices.Clone(common)
		} else {
			for _, topic := range topics {
				if r.IntN(3) > 0 {
					m.Topics = append(m.Topics, topic)
				}
			}
		}
	}
	// Instance ids must be unique within a group; make them so.
	seen := map[string]bool{}
	for i := range members {
		if id := members[i].InstanceID; id != "" {
			if seen[id] {
				members[i].InstanceID = id + members[i].ID
			}
			seen[members[i].InstanceID] = true
		}
	}
	return scenario{members, partitions}
}

// withHistory returns members whose subscriptions say they own what plan
// gave them, in generation gen, as the sticky assignor a encodes it.
func withHistory(a Assignor, members []Member, plan Plan, gen int32) []Member {
	out := make([]Member, len(members))
	for i, m := range members {
		cur := plan[m.ID]
		if len(cur) == 0 {
			cur = nil
		}
		sub := NewSubscription(a, m.Topics, cur, gen, m.Rack)
		out[i] = Member{ID: m.ID, InstanceID: m.InstanceID, Subscription: sub}
	}
	return out
}

// assignable lists every partition the plan must cover: partitions of
// topics with metadata and at least one subscriber.
func assignable(members []Member, partitions map[string]int32) map[string]int32 {
	out := map[string]int32{}
	for _, m := range members {
		for _, topic := range m.Topics {
			if partitions[topic] > 0 {
				out[topic] = partitions[topic]
			}
		}
	}
	return out
}

// checkComplete fails unless plan gives every assignable partition to
// exactly one member subscribed to its topic, and nothing else.
func checkComplete(t testing.TB, members []Member, partitions map[string]int32, plan Plan) {
	t.Helper()
	byID := map[string]*Member{}
	for i := range members {
		byID[members[i].ID] = &members[i]
	}
	want := assignable(members, partitions)
	seen := map[string]map[int32]string{}
	for id, topics := range plan {
		m, ok := byID[id]
		if !ok {
			t.Fatalf("plan has unknown member %q", id)
		}
		for topic, ps := range topics {
			if !slices.Contains(m.Topics, topic) {
				t.Fatalf("member %s got %s[%v] without subscribing", id, topic, ps)
			}
			if seen[topic] == nil {
				seen[topic] = map[int32]string{}
			}
			for _, p := range ps {
				if p < 0 || p >= want[topic] {
					t.Fatalf("member %s got nonexistent %s[%d]", id, topic, p)
				}
				if other, dup := seen[topic][p]; dup {
					t.Fatalf("%s[%d] given to both %s and %s", topic, p, other, id)
				}
				seen[topic][p] = id
			}
		}
	}
	for topic, n := range want {
		if got := int32(len(seen[topic])); got != n {
			t.Fatalf("topic %s: %d of %d partitions assigned", topic, got, n)
		}
	}
	for id := range byID {
		if _, ok := plan[id]; !ok {
			t.Fatalf("member %s missing from plan", id)
		}
	}
}

// checkOptimal fails if some member could pass a partition, directly or
// along a chain, to a member with two or more fewer: the definition of an
// optimally balanced plan. With equal subscriptions it reduces to "counts
// differ by at most one".
func checkOptimal(t testing.TB, members []Member, plan Plan) {
	t.Helper()
	count := map[string]int{}
	for id, topics := range plan {
		for _, ps := range topics {
			count[id] += len(ps)
		}
	}
	for _, u := range members {
		// BFS over "x holds a partition of a topic y subscribes to".
		seen := map[string]bool{u.ID: true}
		queue := []string{u.ID}
		for len(queue) > 0 {
			x := queue[0]
			queue = queue[1:]
			for topic, ps := range plan[x] {
				if len(ps) == 0 {
					continue
				}
				for _, y := range members {
					if seen[y.ID] || !slices.Contains(y.Topics, topic) {
						continue
					}
					if count[y.ID] <= count[u.ID]-2 {
						t.Fatalf("not balanced: %s (%d partitions) can pass one to %s (%d) via %s", u.ID, count[u.ID], y.ID, count[y.ID], x)
					}
					seen[y.ID] = true
					queue = append(queue, y.ID)
				}
			}
		}
	}
}

// owners maps topic → partition → member for a plan.
func owners(plan Plan) map[string]map[int32]string {
	out := map[string]map[int32]string{}
	for id, topics := range plan {
		for topic, ps := range topics {
			if out[topic] == nil {
				out[topic] = map[int32]string{}
			}
			for _, p := range ps {
				out[topic][p] = id
			}
		}
	}
	return out
}

// moved counts partitions that before gave to a member and after gives to
// a different one (partitions unassigned in either are not counted).
func moved(before, after Plan) int {
	b, a := owners(before), owners(after)
	n := 0
	for topic, ps := range b {
		for p, was := range ps {
			if now, ok := a[topic][p]; ok && now != was {
				n++
			}
		}
	}
	return n
}

func counts(plan Plan) []int {
	var out []int
	for _, topics := range plan {
		n := 0
		for _, ps := range topics {
			n += len(ps)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
