package consumer

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary"
)

// firstTakesAll is a custom assignor written against the public
// interface only: the member with the smallest id gets every partition.
// It sends user data with its joins and records what the leader saw.
type firstTakesAll struct {
	mu   sync.Mutex
	seen [][]byte
}

func (*firstTakesAll) Name() string      { return "first-takes-all" }
func (*firstTakesAll) Cooperative() bool { return false }

func (*firstTakesAll) UserData(owned []tributary.TopicPartition, generation int32) []byte {
	return []byte("hello")
}

func (a *firstTakesAll) Assign(members []GroupMember, partitions map[string]int32) map[string][]tributary.TopicPartition {
	first := slices.MinFunc(members, func(x, y GroupMember) int {
		if x.ID < y.ID {
			return -1
		}
		if x.ID > y.ID {
			return 1
		}
		return 0
	})
	var tps []tributary.TopicPartition
	for _, topic := range first.Topics {
		for p := range partitions[topic] {
			tps = append(tps, tributary.TopicPartition{Topic: topic, Partition: p})
		}
	}
	a.mu.Lock()
	for _, m := range members {
		a.seen = append(a.seen, m.UserData)
	}
	a.mu.Unlock()
	return map[string][]tributary.TopicPartition{first.ID: tps}
}

// TestCustomAssignor: an assignor written against the public Assignor
// interface runs a real group; its user data reaches the leader, and
// members it leaves out of its plan get nothing.
func TestCustomAssignor(t *testing.T) {
	forEachGroupBackend(t, func(t *testing.T, e *env) {
		topic := e.topic(t, 3)
		group := sanitize("g-" + t.Name())
		a := &firstTakesAll{}
		c1 := e.newConsumer(t, append(groupOpts(group, topic), Assignors(a))...)
		c2 := e.newConsumer(t, append(groupOpts(group, topic), Assignors(a))...)
		eventually(t, 30*time.Second, func() bool {
			m1, m2 := c1.GroupMetadata(), c2.GroupMetadata()
			if m1.Generation < 0 || m1.Generation != m2.Generation {
				return false
			}
			n1, n2 := assignedCount(c1), assignedCount(c2)
			return n1+n2 == 3 && (n1 == 0 || n2 == 0)
		}, "the custom plan was not applied: %v %v", c1.Assignment(), c2.Assignment())
		require.Equal(t, "first-takes-all", c1.GroupMetadata().Protocol)
		a.mu.Lock()
		defer a.mu.Unlock()
		require.NotEmpty(t, a.seen)
		for _, ud := range a.seen {
			require.Equal(t, "hello", string(ud))
		}
	})
}

// TestBuiltinAssignorsInUserTerms: the built-in assignors answer the
// public interface too, with Java's plans.
func TestBuiltinAssignorsInUserTerms(t *testing.T) {
	members := []GroupMember{
		{ID: "m1", Topics: []string{"t0", "t1"}, Generation: -1},
		{ID: "m0", Topics: []string{"t0", "t1"}, Generation: -1},
	}
	tp := func(topic string, p int32) tributary.TopicPartition {
		return tributary.TopicPartition{Topic: topic, Partition: p}
	}
	plan := Range().Assign(members, map[string]int32{"t0": 3, "t1": 3})
	require.Equal(t, map[string][]tributary.TopicPartition{
		"m0": {tp("t0", 0), tp("t0", 1), tp("t1", 0), tp("t1", 1)},
		"m1": {tp("t0", 2), tp("t1", 2)},
	}, plan)
	for _, a := range []Assignor{Range(), RoundRobin(), Sticky(), CooperativeSticky()} {
		plan := a.Assign(members, map[string]int32{"t0": 3, "t1": 3})
		require.Len(t, append(plan["m0"], plan["m1"]...), 6, a.Name())
	}
	require.True(t, CooperativeSticky().Cooperative())
	require.False(t, Sticky().Cooperative())
}
