package broker_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/tributary/tributary/broker"
	"github.com/tributary/tributary/broker/brokertest"
	"github.com/tributary/tributary/broker/observe"
)

// Every replica compacts its own copy, and a follower that was down while
// the leader cleaned catches up from the cleaned log (batches with gaps,
// empty batches spanning removed runs): its copy, and what clients read
// from it once it leads, hold each key's newest value.
func TestCleanerReplicasCatchUpFromCleanedLog(t *testing.T) {
	skipShort(t)
	c, cl, adm, ctx := threeNodes(t, 60*time.Second, func(cfg *broker.Config) { cfg.LogCleanerBackoffMs = 50 })
	_, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{
		"cleanup.policy": kadm.StringPtr("compact"), "segment.bytes": kadm.StringPtr("1024"),
		"min.cleanable.dirty.ratio": kadm.StringPtr("0.01"), "min.insync.replicas": kadm.StringPtr("2"),
	}, "compact-rep")
	require.NoError(t, err)
	pd := describe(t, adm, "compact-rep")
	leader := c.Node(pd[0].Leader)
	var lagging *brokertest.Node
	for _, id := range pd[0].Replicas {
		if id != leader.ID {
			lagging = c.Node(id)
			break
		}
	}
	lagging.Kill(t)
	waitFor(t, 30*time.Second, "the ISR to shrink", func() bool { return len(describe(t, adm, "compact-rep")[0].ISR) == 2 })

	newest := produceVersions(t, cl, "compact-rep", 20, 20)
	hw := highWatermark(t, adm, "compact-rep")
	require.Eventually(t, func() bool {
		return onlyNewest(readAllKgo(t, leader.Addr(), "compact-rep", hw), newest)
	}, 30*time.Second, 50*time.Millisecond, "the leader never cleaned")

	lagging.Restart(t)
	waitFor(t, 30*time.Second, "the restarted replica back in the ISR", func() bool { return fullISR(describe(t, adm, "compact-rep"), 3) })
	// Its own copy, read locally.
	require.Eventually(t, func() bool {
		recs, err := lagging.Broker().Observe().Records(ctx, observe.ReadRequest{Topic: "compact-rep", Offset: 0, FromTime: -1, Max: 1000})
		if err != nil || len(recs) == 0 || recs[len(recs)-1].Offset != hw-1 {
			return false
		}
		var rr []readRec
		for _, r := range recs {
			rr = append(rr, readRec{r.Offset, string(r.Key), string(r.Value), r.Value == nil})
		}
		return onlyNewest(rr, newest)
	}, 30*time.Second, 50*time.Millisecond, "the caught-up replica's copy is not compacted")

	// Clients read the same from a new leader.
	leader.Kill(t)
	waitFor(t, 30*time.Second, "a new leader", func() bool {
		p := describe(t, adm, "compact-rep")[0]
		return p.Leader >= 0 && p.Leader != leader.ID
	})
	var addr string
	for _, nd := range c.Nodes {
		if nd != leader {
			addr = nd.Addr()
			break
		}
	}
	checkCompacted(t, readAllKgo(t, addr, "compact-rep", hw), newest)
	checkCompacted(t, readAllSDK(t, addr, "compact-rep", hw), newest)
}
