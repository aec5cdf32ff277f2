package consumerproto

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
)

func sub(topics ...string) Subscription {
	return Subscription{Version: SubscriptionVersion, Topics: topics, Generation: -1}
}

func TestAssignorNames(t *testing.T) {
	for _, tc := range []struct {
		a           Assignor
		ref         kgo.GroupBalancer
		cooperative bool
	}{
		{Range(), kgo.RangeBalancer(), false},
		{RoundRobin(), kgo.RoundRobinBalancer(), false},
		{Sticky(), kgo.StickyBalancer(), false},
		{CooperativeSticky(), kgo.CooperativeStickyBalancer(), true},
	} {
		// The coordinator matches protocols by name across clients.
		require.Equal(t, tc.ref.ProtocolName(), tc.a.Name())
		require.Equal(t, tc.cooperative, tc.a.Cooperative(), tc.a.Name())
		require.Equal(t, tc.ref.IsCooperative(), tc.a.Cooperative(), tc.a.Name())
	}
}

// The examples from the Java and franz-go documentation.
func TestRangeDocumentedExample(t *testing.T) {
	members := []Member{{ID: "m1", Subscription: sub("t0", "t1")}, {ID: "m0", Subscription: sub("t1", "t0")}}
	plan := Range().Assign(members, map[string]int32{"t0": 3, "t1": 3})
	require.Equal(t, Plan{
		"m0": {"t0": {0, 1}, "t1": {0, 1}},
		"m1": {"t0": {2}, "t1": {2}},
	}, plan)
}

func TestRoundRobinDocumentedExample(t *testing.T) {
	members := []Member{{ID: "m1", Subscription: sub("t0", "t1")}, {ID: "m0", Subscription: sub("t0", "t1")}}
	plan := RoundRobin().Assign(members, map[string]int32{"t0": 3, "t1": 3})
	require.Equal(t, Plan{
		"m0": {"t0": {0, 2}, "t1": {1}},
		"m1": {"t0": {1}, "t1": {0, 2}},
	}, plan)
}

// Java's RoundRobinAssignor skips members not subscribed and continues the
// cycle from where it stopped: with m0{t0} m1{t0,t1} m2{t0,t1} and
// t0[3] t1[3], the deal is m0 m1 m2 | m1(skip m0) m2 m1.
func TestRoundRobinSkipsUnsubscribed(t *testing.T) {
	members := []Member{
		{ID: "m0", Subscription: sub("t0")},
		{ID: "m1", Subscription: sub("t0", "t1")},
		{ID: "m2", Subscription: sub("t0", "t1")},
	}
	plan := RoundRobin().Assign(members, map[string]int32{"t0": 3, "t1": 3})
	require.Equal(t, Plan{
		"m0": {"t0": {0}},
		"m1": {"t0": {1}, "t1": {0, 2}},
		"m2": {"t0": {2}, "t1": {1}},
	}, plan)
}

// Static members sort before dynamic ones, by instance id, so a static
// member that restarts with a new member id keeps its partitions.
func TestRangeStaticMembersSortByInstanceID(t *testing.T) {
	parts := map[string]int32{"t": 4}
	before := Range().Assign([]Member{
		{ID: "a-old", InstanceID: "zeta", Subscription: sub("t")},
		{ID: "b", InstanceID: "alpha", Subscription: sub("t")},
		{ID: "0-dynamic", Subscription: sub("t")},
	}, parts)
	require.Equal(t, []int32{0, 1}, before["b"]["t"], "alpha sorts first")
	require.Equal(t, []int32{2}, before["a-old"]["t"])
	require.Equal(t, []int32{3}, before["0-dynamic"]["t"], "dynamic members come last")

	after := Range().Assign([]Member{
		{ID: "z-new", InstanceID: "zeta", Subscription: sub("t")},
		{ID: "b", InstanceID: "alpha", Subscription: sub("t")},
		{ID: "0-dynamic", Subscription: sub("t")},
	}, parts)
	require.Equal(t, before["a-old"], after["z-new"])
}

func TestAssignEdgeCases(t *testing.T) {
	for _, a := range []Assignor{Range(), RoundRobin(), Sticky(), CooperativeSticky()} {
		t.Run(a.Name(), func(t *testing.T) {
			require.Empty(t, a.Assign(nil, map[string]int32{"t": 3}))

			// No metadata, zero or negative counts: nothing to assign,
			// but every member is still in the plan for SyncGroup.
			plan := a.Assign([]Member{
				{ID: "a", Subscription: sub("nometa", "zero", "neg")},
				{ID: "b", Subscription: sub()},
			}, map[string]int32{"zero": 0, "neg": -3})
			require.Equal(t, Plan{"a": {}, "b": {}}, normalize(plan))

			// A duplicate member id counts once: the first listing.
			plan = a.Assign([]Member{
				{ID: "a", Subscription: sub("t")},
				{ID: "a", Subscription: sub("u")},
			}, map[string]int32{"t": 2, "u": 2})
			require.Equal(t, Plan{"a": {"t": {0, 1}}}, normalize(plan))
		})
	}
}

// Range and round robin must produce exactly franz-go's plans (and so
// Java's): a group led alternately by a Go and a Java member would
// otherwise shuffle partitions at every leader change.
func TestRangeAndRoundRobinMatchKgo(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		sc := randomScenario(r, 12, 6, 20)
		for _, tc := range []struct {
			a   Assignor
			ref kgo.GroupBalancer
		}{
			{Range(), kgo.RangeBalancer()},
			{RoundRobin(), kgo.RoundRobinBalancer()},
		} {
			got := normalize(tc.a.Assign(sc.members, sc.partitions))
			want := kgoPlan(t, tc.ref, sc.members, sc.partitions)
			require.Equal(t, want, got, "scenario %d, %s", i, tc.a.Name())
			checkComplete(t, sc.members, sc.partitions, got)
		}
	}
}

// Assignors are pure: the coordinator's member order must not matter.
func TestAssignIgnoresMemberOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 100 {
		sc := randomScenario(r, 10, 5, 15)
		for _, a := range []Assignor{Range(), RoundRobin(), Sticky(), CooperativeSticky()} {
			want := a.Assign(sc.members, sc.partitions)
			shuffled := append([]Member(nil), sc.members...)
			r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			require.Equal(t, want, a.Assign(shuffled, sc.partitions), a.Name())
		}
	}
}

func TestPlanSyncAssignments(t *testing.T) {
	plan := Plan{"b": {"t": {1, 0}}, "a": {}}
	sas := plan.SyncAssignments()
	require.Len(t, sas, 2)
	require.Equal(t, "a", sas[0].MemberID, "ordered by member id")
	require.Equal(t, "b", sas[1].MemberID)

	// A member with nothing still gets a decodable assignment, not zero
	// bytes that an old client might choke on.
	require.NotEmpty(t, sas[0].MemberAssignment)
	got, err := kgo.ParseConsumerSyncAssignment(sas[0].MemberAssignment)
	require.NoError(t, err)
	require.Empty(t, got)
	got, err = kgo.ParseConsumerSyncAssignment(sas[1].MemberAssignment)
	require.NoError(t, err)
	require.Equal(t, map[string][]int32{"t": {0, 1}}, got, "franz-go reads our encoding, sorted")
}
