package consumerproto

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// benchGroup is 100 members over 10 topics of 100 partitions: 1000
// partitions. With differing set, each member subscribes to a random 6
// of the 10 topics.
func benchGroup(differing bool) ([]Member, map[string]int32) {
	r := rand.New(rand.NewPCG(21, 22))
	partitions := map[string]int32{}
	var topics []string
	for i := range 10 {
		topic := fmt.Sprintf("topic-%d", i)
		topics = append(topics, topic)
		partitions[topic] = 100
	}
	members := make([]Member, 100)
	for i := range members {
		members[i].ID = fmt.Sprintf("consumer-%03d-%08x", i, r.Uint32())
		members[i].Generation = -1
		members[i].Version = SubscriptionVersion
		members[i].Topics = topics
		if differing {
			perm := r.Perm(len(topics))[:6]
			sort.Ints(perm)
			members[i].Topics = nil
			for _, p := range perm {
				members[i].Topics = append(members[i].Topics, topics[p])
			}
		}
	}
	return members, partitions
}

// benchJoin is a balanced group of 100-newcomers with history, plus
// newcomers that own nothing.
func benchJoin(a Assignor, differing bool, newcomers int) ([]Member, map[string]int32) {
	members, partitions := benchGroup(differing)
	old := members[:len(members)-newcomers]
	if differing {
		// The old members must cover every topic, as they did before.
		for i := range old {
			old[i].Topics = members[len(members)-1].Topics
		}
		old[0].Topics = nil
		for topic := range partitions {
			old[0].Topics = append(old[0].Topics, topic)
		}
	}
	plan := a.Assign(old, partitions)
	joined := withHistory(a, old, plan, 1)
	return append(joined, members[len(old):]...), partitions
}

func joinMembers(members []Member) []kmsg.JoinGroupResponseMember {
	out := make([]kmsg.JoinGroupResponseMember, len(members))
	for i := range members {
		out[i] = kmsg.NewJoinGroupResponseMember()
		out[i].MemberID = members[i].ID
		out[i].ProtocolMetadata = members[i].Subscription.AppendTo(nil)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].MemberID < out[j].MemberID })
	return out
}

// BenchmarkAssign measures one leader's work for a rebalance of 100
// members × 1000 partitions, from the JoinGroup member metadata to the
// plan, for ours and for franz-go's equivalent balancer.
func BenchmarkAssign(b *testing.B) {
	type tc struct {
		name      string
		a         Assignor
		ref       kgo.GroupBalancer
		join      int // newcomers joining a group that has history
		differing bool
	}
	cases := []tc{
		{"range", Range(), kgo.RangeBalancer(), 0, false},
		{"roundrobin", RoundRobin(), kgo.RoundRobinBalancer(), 0, false},
		{"cooperative-sticky/fresh", CooperativeSticky(), kgo.CooperativeStickyBalancer(), 0, false},
		{"cooperative-sticky/join", CooperativeSticky(), kgo.CooperativeStickyBalancer(), 1, false},
		// One member had everything; 99 arrive (a scale-out).
		{"cooperative-sticky/join-99", CooperativeSticky(), kgo.CooperativeStickyBalancer(), 99, false},
		{"cooperative-sticky/fresh-differing", CooperativeSticky(), kgo.CooperativeStickyBalancer(), 0, true},
		{"cooperative-sticky/join-differing", CooperativeSticky(), kgo.CooperativeStickyBalancer(), 1, true},
	}
	for _, c := range cases {
		var members []Member
		var partitions map[string]int32
		if c.join > 0 {
			members, partitions = benchJoin(c.a, c.differing, c.join)
		} else {
			members, partitions = benchGroup(c.differing)
		}
		jms := joinMembers(members)
		b.Run(c.name+"/tributary", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ms, err := DecodeMembers(jms)
				if err != nil {
					b.Fatal(err)
				}
				c.a.Assign(ms, partitions)
			}
		})
		b.Run(c.name+"/kgo", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				mb, _, err := c.ref.MemberBalancer(jms)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := mb.(kgo.GroupMemberBalancerOrError).BalanceOrError(partitions); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
