package broker_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary/broker"
	"github.com/tributary/tributary/broker/brokertest"
	"github.com/tributary/tributary/broker/group"
)

// TestFreshOffsetsTopicIsLoadedWhenFindCoordinatorAnswers: the
// FindCoordinator that creates __consumer_offsets answers only once its
// (empty) partitions are loaded, so no group of a fresh broker is ever
// answered COORDINATOR_LOAD_IN_PROGRESS. They used to load in the
// background, one per coordinator loop turn, and TestGroupAdminOffsets
// flaked under -race: its kadm commit mixed a missing topic (answered
// UNKNOWN_TOPIC_OR_PARTITION) with partitions answered
// COORDINATOR_LOAD_IN_PROGRESS, and kgo retries an OffsetCommit only when
// the first partition carries the retriable error.
func TestFreshOffsetsTopicIsLoadedWhenFindCoordinatorAnswers(t *testing.T) {
	// The default 50 partitions. The old background loading of empty
	// partitions took long enough to be seen only on a loaded machine
	// (-race, packages in parallel); this pins that it cannot happen.
	const nparts = 50
	b := brokertest.Start(t, func(c *broker.Config) { c.OffsetsTopicNumPartitions = nparts })
	cl := newClient(t, b.Addr())
	ctx := testCtx(t)

	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey = "first"
	fcr, err := fc.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.NoError(t, kerr.ErrorForCode(fcr.ErrorCode))

	// One group on every partition, asked at once and without retries.
	groups := make(map[int32]string, nparts)
	for i := 0; len(groups) < nparts; i++ {
		id := fmt.Sprintf("g-%d", i)
		if p := group.Partition(id, nparts); groups[p] == "" {
			groups[p] = id
		}
	}
	br := cl.Broker(int(fcr.NodeID))
	var wg sync.WaitGroup
	errs := make(chan error, nparts)
	for p, id := range groups {
		wg.Go(func() {
			req := kmsg.NewPtrOffsetFetchRequest()
			req.Version = 7
			req.Group = id
			resp, err := br.Request(ctx, req)
			if err == nil {
				err = kerr.ErrorForCode(resp.(*kmsg.OffsetFetchResponse).ErrorCode)
			}
			if err != nil {
				errs <- fmt.Errorf("group %s (partition %d): %w", id, p, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 5 {
			t.Error(err)
		}
	}
	if n > 5 {
		t.Errorf("and %d more", n-5)
	}
}
