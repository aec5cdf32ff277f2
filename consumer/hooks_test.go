package consumer

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/client"
)

// rebalanceHook records the client's group rebalance events.
type rebalanceHook struct {
	mu  sync.Mutex
	evs []client.RebalanceEvent
}

func (h *rebalanceHook) OnGroupRebalance(ev client.RebalanceEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.evs = append(h.evs, ev)
}

func (h *rebalanceHook) events() []client.RebalanceEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]client.RebalanceEvent(nil), h.evs...)
}

// TestRebalanceHook: the consumer reports each rebalance to the client's
// HookGroupRebalance hooks: what it gained, and, when a second member
// joins, what it gave up.
func TestRebalanceHook(t *testing.T) {
	forEachGroupBackend(t, func(t *testing.T, e *env) {
		topic := e.topic(t, 4)
		group := sanitize("g-" + t.Name())
		h := &rebalanceHook{}
		a := e.newConsumer(t, append(groupOpts(group, topic), ClientOptions(client.WithHooks(h)))...)
		eventually(t, 30*time.Second, func() bool { return assignedCount(a) == 4 }, "a never got the partitions")
		evs := h.events()
		require.NotEmpty(t, evs)
		first := evs[len(evs)-1]
		require.Equal(t, group, first.Group)
		require.Equal(t, a.GroupMetadata().MemberID, first.MemberID)
		require.Equal(t, []int32{0, 1, 2, 3}, first.Assigned[topic])

		b := e.newConsumer(t, groupOpts(group, topic)...)
		eventually(t, 30*time.Second, func() bool { return assignedCount(a) == 2 && assignedCount(b) == 2 }, "no split")
		eventually(t, 10*time.Second, func() bool {
			evs := h.events()
			last := evs[len(evs)-1]
			return last.Generation == a.GroupMetadata().Generation && len(last.Assigned[topic]) == 2 && len(last.Revoked[topic]) == 4
		}, "the split was not reported: %+v", h.events())
	})
}
