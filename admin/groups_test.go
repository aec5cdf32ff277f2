package admin

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// kadmCommitted returns the group's committed offsets as kadm reads them.
func (e *env) kadmCommitted(t *testing.T, group string) map[string]map[int32]int64 {
	t.Helper()
	out := map[string]map[int32]int64{}
	resps, err := e.kadm.FetchOffsets(testCtx(t), group)
	if errors.Is(err, kerr.GroupIDNotFound) { // kfake, for a group without offsets
		return out
	}
	require.NoError(t, err)
	require.NoError(t, resps.Error())
	resps.Each(func(r kadm.OffsetResponse) {
		if out[r.Topic] == nil {
			out[r.Topic] = map[int32]int64{}
		}
		out[r.Topic][r.Partition] = r.At
	})
	return out
}

// joinGroup starts a kgo group member consuming topic and waits until the
// group is stable with partitions assigned.
func (e *env) joinGroup(t *testing.T, group, topic string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.addrs...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ClientID("member-client"), kgo.DisableAutoCommit())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cl.PollFetches(ctx)
		}
	}()
	t.Cleanup(func() { cancel(); <-done; cl.Close() })
	require.Eventually(t, func() bool {
		ds, err := e.kadm.DescribeGroups(context.Background(), group)
		if err != nil {
			return false
		}
		d := ds[group]
		if d.State != "Stable" || len(d.Members) != 1 {
			return false
		}
		c, ok := d.Members[0].Assigned.AsConsumer()
		return ok && len(c.Topics) > 0
	}, 20*time.Second, 50*time.Millisecond)
	return cl
}

func TestCommitAndFetchOffsets(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := testCtx(t)
		topic := e.mkTopic(t, 2, nil)
		e.produce(t, topic, 2, 10, time.Now())
		group := topicName("g")

		res, err := e.a.CommitOffsets(ctx, group,
			PartitionOffset{Topic: topic, Partition: 0, At: 3, LeaderEpoch: -1, Metadata: "m0"},
			PartitionOffset{Topic: topic, Partition: 1, At: 5, LeaderEpoch: -1},
		)
		require.NoError(t, err)
		require.NoError(t, res.FirstErr())
		assert.Equal(t, map[string]map[int32]int64{topic: {0: 3, 1: 5}}, e.kadmCommitted(t, group), "kadm reads what we committed")

		got, err := e.a.FetchOffsets(ctx, group)
		require.NoError(t, err)
		require.NoError(t, got.FirstErr())
		require.Len(t, got, 2)
		assert.Equal(t, PartitionOffset{Topic: topic, Partition: 0, At: 3, LeaderEpoch: got[0].LeaderEpoch, Metadata: "m0"}, got[0].PartitionOffset)
		assert.EqualValues(t, 5, got[1].At)

		// A group with nothing committed has no offsets, and no error.
		none, err := e.a.FetchOffsets(ctx, topicName("nobody"))
		require.NoError(t, err)
		assert.Empty(t, none)

		ls, err := e.a.ListGroups(ctx)
		require.NoError(t, err)
		ref, err := e.kadm.ListGroups(ctx)
		require.NoError(t, err)
		assert.Equal(t, ref.Sorted()[0].Group, ls[0].Group)
		assert.Len(t, ls, len(ref))
		i := slices.IndexFunc(ls, func(g ListedGroup) bool { return g.Group == group })
		require.GreaterOrEqual(t, i, 0, "the committing group is listed")
		assert.Equal(t, ref[group].State, ls[i].State)
		assert.Equal(t, ref[group].Coordinator, ls[i].Coordinator)

		// State filter.
		ls, err = e.a.ListGroups(ctx, "Stable")
		require.NoError(t, err)
		assert.NotContains(t, ls.Names(), group, "the group is Empty, not Stable")
	})
}

func TestDescribeGroups(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := testCtx(t)
		topic := e.mkTopic(t, 3, nil)
		group := topicName("g")
		e.joinGroup(t, group, topic)
		missing := topicName("missing")

		ds, err := e.a.DescribeGroups(ctx, group, missing)
		require.NoError(t, err)
		require.Len(t, ds, 2)
		d := ds[0]
		require.NoError(t, d.Err)
		ref, err := e.kadm.DescribeGroups(ctx, group)
		require.NoError(t, err)
		r := ref[group]
		assert.Equal(t, r.State, d.State)
		assert.Equal(t, "Stable", d.State)
		assert.Equal(t, "consumer", d.ProtocolType)
		assert.Equal(t, r.Protocol, d.Protocol)
		assert.Equal(t, r.Coordinator.NodeID, d.Coordinator)
		require.Len(t, d.Members, 1)
		m := d.Members[0]
		assert.Equal(t, r.Members[0].MemberID, m.MemberID)
		assert.Equal(t, "member-client", m.ClientID)
		require.NoError(t, m.DecodeErr)
		require.NotNil(t, m.Subscription)
		assert.Equal(t, []string{topic}, m.Subscription.Topics)
		require.NotNil(t, m.Assignment)
		assert.Equal(t, map[string][]int32{topic: {0, 1, 2}}, m.Assignment.Partitions)
		assert.Equal(t, map[string][]int32{topic: {0, 1, 2}}, d.AssignedPartitions())

		// A group that does not exist: Dead, or GROUP_ID_NOT_FOUND (v6+).
		if ds[1].Err != nil {
			assert.ErrorIs(t, ds[1].Err, tributary.ErrGroupIdNotFound)
		} else {
			assert.Equal(t, "Dead", ds[1].State)
		}

		// An admin commit to an active group is refused, per partition.
		res, err := e.a.CommitOffsets(ctx, group, PartitionOffset{Topic: topic, Partition: 0, At: 1, LeaderEpoch: -1})
		require.NoError(t, err)
		assert.Error(t, res[0].Err)

		// Deleting: the active group fails, the empty one goes, the
		// missing one fails; each alone.
		empty := topicName("g-empty")
		cres, err := e.a.CommitOffsets(ctx, empty, PartitionOffset{Topic: topic, Partition: 0, At: 1, LeaderEpoch: -1})
		require.NoError(t, err)
		require.NoError(t, cres.FirstErr())
		del, err := e.a.DeleteGroups(ctx, group, empty, missing)
		require.NoError(t, err)
		require.Len(t, del, 3)
		assert.ErrorIs(t, del[0].Err, tributary.ErrNonEmptyGroup)
		assert.NoError(t, del[1].Err)
		assert.ErrorIs(t, del[2].Err, tributary.ErrGroupIdNotFound)
		assert.Empty(t, e.kadmCommitted(t, empty), "deleting the group deleted its offsets")
		lg, err := e.kadm.ListGroups(ctx)
		require.NoError(t, err)
		assert.Contains(t, lg.Groups(), group)
		assert.NotContains(t, lg.Groups(), empty)
	})
}

func TestLag(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := testCtx(t)
		topic := e.mkTopic(t, 3, nil)
		e.produce(t, topic, 3, 10, time.Now())
		group := topicName("g")
		// Committed: p0 at 4, p1 at 10 (caught up), p2 nothing.
		res, err := e.a.CommitOffsets(ctx, group,
			PartitionOffset{Topic: topic, Partition: 0, At: 4, LeaderEpoch: -1},
			PartitionOffset{Topic: topic, Partition: 1, At: 10, LeaderEpoch: -1})
		require.NoError(t, err)
		require.NoError(t, res.FirstErr())
		// Records before 2 of p2 are gone: its lag without a commit is 8.
		dres, err := e.a.DeleteRecords(ctx, map[string]map[int32]int64{topic: {2: 2}})
		require.NoError(t, err)
		require.NoError(t, dres.FirstErr())

		// Empty group: lag over the committed partitions only.
		lags, err := e.a.Lag(ctx, group)
		require.NoError(t, err)
		require.NoError(t, lags.FirstErr())
		gl := lags[0]
		require.Len(t, gl.Partitions, 2)
		assert.Equal(t, PartitionLag{Topic: topic, Partition: 0, Committed: 4, Start: 0, End: 10, Lag: 6}, gl.Partitions[0])
		assert.Equal(t, PartitionLag{Topic: topic, Partition: 1, Committed: 10, Start: 0, End: 10, Lag: 0}, gl.Partitions[1])
		assert.EqualValues(t, 6, gl.Total)

		// Now with a member that has every partition assigned, including
		// p2 with no commit: compare with kadm.
		e.joinGroup(t, group, topic)
		lags, err = e.a.Lag(ctx, group)
		require.NoError(t, err)
		require.NoError(t, lags.FirstErr())
		gl = lags[0]
		ref, err := e.kadm.Lag(ctx, group)
		require.NoError(t, err)
		rl := ref[group]
		require.NoError(t, rl.Error())
		require.Len(t, gl.Partitions, 3)
		for _, pl := range gl.Partitions {
			require.NoError(t, pl.Err)
			r, ok := rl.Lag[topic][pl.Partition]
			require.True(t, ok)
			assert.Equal(t, r.Lag, pl.Lag, "partition %d", pl.Partition)
			assert.Equal(t, r.End.Offset, pl.End)
			assert.Equal(t, r.Member.MemberID, pl.MemberID)
			assert.NotEmpty(t, pl.MemberID)
		}
		p2 := gl.Partitions[2]
		assert.EqualValues(t, -1, p2.Committed, "nothing committed")
		assert.EqualValues(t, 8, p2.Lag, "end - log start")
		assert.EqualValues(t, 14, gl.Total)
		assert.Equal(t, "Stable", gl.State)
	})
}

func TestResetGroupOffsets(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := testCtx(t)
		topic := e.mkTopic(t, 2, nil)
		base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
		e.produce(t, topic, 2, 10, base)
		dres, err := e.a.DeleteRecords(ctx, map[string]map[int32]int64{topic: {1: 3}})
		require.NoError(t, err)
		require.NoError(t, dres.FirstErr())
		group := topicName("g")

		check := func(what string, res OffsetResults, err error, want map[int32]int64) {
			t.Helper()
			require.NoError(t, err, what)
			require.NoError(t, res.FirstErr(), what)
			assert.Equal(t, map[string]map[int32]int64{topic: want}, e.kadmCommitted(t, group), what)
		}

		res, err := e.a.ResetGroupOffsets(ctx, group, ToLatest(), []string{topic})
		check("latest", res, err, map[int32]int64{0: 10, 1: 10})

		res, err = e.a.ResetGroupOffsets(ctx, group, ToEarliest(), nil) // the committed partitions
		check("earliest", res, err, map[int32]int64{0: 0, 1: 3})

		res, err = e.a.ResetGroupOffsets(ctx, group, ShiftBy(5), nil)
		check("shift +5", res, err, map[int32]int64{0: 5, 1: 8})
		res, err = e.a.ResetGroupOffsets(ctx, group, ShiftBy(-7), nil)
		check("shift -7 clamps at the log start", res, err, map[int32]int64{0: 0, 1: 3})
		res, err = e.a.ResetGroupOffsets(ctx, group, ShiftBy(100), nil)
		check("shift +100 clamps at the end", res, err, map[int32]int64{0: 10, 1: 10})

		res, err = e.a.ResetGroupOffsets(ctx, group, ToTimestamp(base.Add(6*time.Millisecond).UnixMilli()), []string{topic})
		check("timestamp", res, err, map[int32]int64{0: 6, 1: 6})
		res, err = e.a.ResetGroupOffsets(ctx, group, ToTimestamp(base.Add(time.Hour).UnixMilli()), []string{topic})
		check("timestamp after every record goes to the end", res, err, map[int32]int64{0: 10, 1: 10})

		// Dry run.
		res, err = e.a.ResetGroupOffsets(ctx, group, ToEarliest(), nil, ValidateOnly())
		require.NoError(t, err)
		r, _ := res.Lookup(topic, 1)
		assert.EqualValues(t, 3, r.At, "planned")
		assert.Equal(t, map[string]map[int32]int64{topic: {0: 10, 1: 10}}, e.kadmCommitted(t, group), "not committed")

		// The zero ResetSpec is refused before anything happens.
		_, err = e.a.ResetGroupOffsets(ctx, group, ResetSpec{}, []string{topic})
		require.Error(t, err)
		assert.Equal(t, map[string]map[int32]int64{topic: {0: 10, 1: 10}}, e.kadmCommitted(t, group))

		// Shift with no commit fails per partition.
		other := topicName("g-other")
		res, err = e.a.ResetGroupOffsets(ctx, other, ShiftBy(1), []string{topic})
		require.NoError(t, err)
		require.Len(t, res, 2)
		assert.ErrorIs(t, res[0].Err, ErrNoCommittedOffset)
	})
}

func TestDeleteGroupOffsets(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := testCtx(t)
		t1, t2 := e.mkTopic(t, 2, nil), e.mkTopic(t, 1, nil)
		group := topicName("g")
		res, err := e.a.CommitOffsets(ctx, group,
			NewPartitionOffset(t1, 0, 1),
			PartitionOffset{Topic: t1, Partition: 1, At: 2, LeaderEpoch: -1},
			PartitionOffset{Topic: t2, Partition: 0, At: 3, LeaderEpoch: -1})
		require.NoError(t, err)
		require.NoError(t, res.FirstErr())

		del, err := e.a.DeleteGroupOffsets(ctx, group, map[string][]int32{t1: {1}, t2: {0}})
		require.NoError(t, err)
		require.NoError(t, del.FirstErr())
		require.Len(t, del, 2)
		assert.Equal(t, map[string]map[int32]int64{t1: {0: 1}}, e.kadmCommitted(t, group))

		_, err = e.a.DeleteGroupOffsets(ctx, topicName("missing"), map[string][]int32{t1: {0}})
		assert.ErrorIs(t, err, tributary.ErrGroupIdNotFound)
	})
}

func TestListGroupsPartialFailure(t *testing.T) {
	// kfake: each broker lists the groups it coordinates, and a control
	// function can fail one broker's answer.
	kfakeOnly(t, func(t *testing.T, e *env) {
		ctx := testCtx(t)
		topic := e.mkTopic(t, 1, nil)
		var groups []string
		for range 6 {
			g := topicName("g")
			groups = append(groups, g)
			res, err := e.a.CommitOffsets(ctx, g, PartitionOffset{Topic: topic, Partition: 0, At: 0, LeaderEpoch: -1})
			require.NoError(t, err)
			require.NoError(t, res.FirstErr())
		}
		failedNode := int32(-1)
		e.kfake.ControlKey(int16(kmsg.ListGroups), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
			failedNode = e.kfake.CurrentNode()
			resp := kreq.ResponseKind().(*kmsg.ListGroupsResponse)
			resp.ErrorCode = tributary.ErrCoordinatorLoadInProgress.Code
			return resp, nil, true
		})
		ls, err := e.a.ListGroups(ctx)
		require.ErrorIs(t, err, tributary.ErrCoordinatorLoadInProgress)
		require.GreaterOrEqual(t, failedNode, int32(0))
		var want []string
		for _, g := range groups {
			if e.kfake.CoordinatorFor(g) != failedNode {
				want = append(want, g)
			}
		}
		slices.Sort(want)
		assert.Equal(t, want, ls.Names(), "the other brokers' groups are still listed")
	})
}
