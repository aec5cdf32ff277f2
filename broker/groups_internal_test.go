package broker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary/broker/group"
)

// onGroupLoop runs f on the coordinator's goroutine, which owns its state.
func onGroupLoop(t *testing.T, b *Broker, f func(gc *groupCoordinator)) {
	t.Helper()
	_, err := b.callGroups(nil, &groupCall{run: func(gc *groupCoordinator, _ time.Time, _ group.Ref) kmsg.Response {
		f(gc)
		return kmsg.NewPtrHeartbeatResponse()
	}})
	require.NoError(t, err)
}

// TestGroupFailedAppendAnswersNotCoordinator: a commit whose record
// cannot be appended to __consumer_offsets is answered NOT_COORDINATOR,
// never acknowledged, and the partition is reloaded from what the log
// holds.
func TestGroupFailedAppendAnswersNotCoordinator(t *testing.T) {
	b, cl, _, ctx := committedGroup(t, "ft", "fail-g", 5)

	commit := func(at int64) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group = "fail-g"
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "ft"
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = 0, at
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		kr, err := cl.Broker(int(b.cfg.NodeID)).Request(ctx, req)
		require.NoError(t, err)
		r := kr.(*kmsg.OffsetCommitResponse)
		require.Len(t, r.Topics, 1)
		require.Len(t, r.Topics[0].Partitions, 1)
		return r.Topics[0].Partitions[0].ErrorCode
	}
	fetch := func() (int64, int16) {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Group = "fail-g"
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic, rt.Partitions = "ft", []int32{0}
		req.Topics = append(req.Topics, rt)
		// kgo sends the highest version, which asks by group (v8+).
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = "fail-g"
		rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{{Topic: "ft", Partitions: []int32{0}}}
		req.Groups = append(req.Groups, rg)
		kr, err := cl.Broker(int(b.cfg.NodeID)).Request(ctx, req)
		require.NoError(t, err)
		r := kr.(*kmsg.OffsetFetchResponse)
		require.Len(t, r.Groups, 1)
		if g := r.Groups[0]; g.ErrorCode != 0 {
			return -1, g.ErrorCode
		}
		return r.Groups[0].Topics[0].Partitions[0].Offset, 0
	}

	failing := group.Partition("fail-g", b.groups.Load().nparts)
	onGroupLoop(t, b, func(gc *groupCoordinator) {
		gc.failAppend = func(p int32) error {
			if p == failing {
				return errors.New("injected: disk gone")
			}
			return nil
		}
	})
	assert.Equal(t, kerr.NotCoordinator.Code, commit(9))
	onGroupLoop(t, b, func(gc *groupCoordinator) { gc.failAppend = nil })

	// The reloaded partition has the stored commit, not the failed one.
	var at int64
	var code int16
	require.Eventually(t, func() bool {
		at, code = fetch()
		return code != kerr.CoordinatorLoadInProgress.Code
	}, 10*time.Second, 10*time.Millisecond)
	assert.Zero(t, code)
	assert.EqualValues(t, 5, at)
	assert.Zero(t, commit(11))
	at, _ = fetch()
	assert.EqualValues(t, 11, at)
}

// TestGroupLoadInProgress: while a __consumer_offsets partition is
// loading, its groups are answered COORDINATOR_LOAD_IN_PROGRESS (and
// ListGroups says so), other groups are served.
func TestGroupLoadInProgress(t *testing.T) {
	b := startInternal(t, t.TempDir())
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	_, err = adm.CreateTopic(ctx, 1, 1, nil, "lt")
	require.NoError(t, err)
	var os kadm.Offsets
	os.AddOffset("lt", 0, 3, -1)
	for _, g := range []string{"loading-g", "other-g"} {
		resp, err := adm.CommitOffsets(ctx, g, os)
		require.NoError(t, err)
		require.NoError(t, resp.Error())
	}
	p := group.Partition("loading-g", b.groups.Load().nparts)
	require.NotEqual(t, p, group.Partition("other-g", b.groups.Load().nparts))

	// Mark the partition loading without queueing it: it stays so.
	onGroupLoop(t, b, func(gc *groupCoordinator) { gc.state[p] = partLoading })
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{"loading-g", "other-g"}
	kr, err := cl.Broker(int(b.cfg.NodeID)).Request(ctx, req)
	require.NoError(t, err)
	dr := kr.(*kmsg.DescribeGroupsResponse)
	require.Len(t, dr.Groups, 2)
	assert.Equal(t, kerr.CoordinatorLoadInProgress.Code, dr.Groups[0].ErrorCode)
	assert.Zero(t, dr.Groups[1].ErrorCode)
	assert.Equal(t, "Empty", dr.Groups[1].State)

	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "loading-g", "m", 1
	kr, err = cl.Broker(int(b.cfg.NodeID)).Request(ctx, hb)
	require.NoError(t, err)
	assert.Equal(t, kerr.CoordinatorLoadInProgress.Code, kr.(*kmsg.HeartbeatResponse).ErrorCode)

	kr, err = cl.Broker(int(b.cfg.NodeID)).Request(ctx, kmsg.NewPtrListGroupsRequest())
	require.NoError(t, err)
	assert.Equal(t, kerr.CoordinatorLoadInProgress.Code, kr.(*kmsg.ListGroupsResponse).ErrorCode)

	onGroupLoop(t, b, func(gc *groupCoordinator) { gc.toLoad = append(gc.toLoad, p) })
	require.Eventually(t, func() bool {
		kr, err := cl.Broker(int(b.cfg.NodeID)).Request(ctx, kmsg.NewPtrListGroupsRequest())
		return err == nil && kr.(*kmsg.ListGroupsResponse).ErrorCode == 0 && len(kr.(*kmsg.ListGroupsResponse).Groups) == 2
	}, 10*time.Second, 10*time.Millisecond)
}

// TestGroupLoopSurvivesPanic: a panic inside the state machine fails
// that one request (its connection closes) and reloads the group's
// partition; the coordinator keeps serving with the stored state.
func TestGroupLoopSurvivesPanic(t *testing.T) {
	b, _, adm, ctx := committedGroup(t, "pt", "panic-g", 4)

	_, err := b.callGroups(nil, &groupCall{groups: []string{"panic-g"}, run: func(*groupCoordinator, time.Time, group.Ref) kmsg.Response {
		panic("injected")
	}})
	require.ErrorIs(t, err, errGroupPanic)

	var fetched kadm.OffsetResponses
	require.Eventually(t, func() bool {
		fetched, err = adm.FetchOffsets(ctx, "panic-g")
		return err == nil && fetched.Error() == nil
	}, 10*time.Second, 10*time.Millisecond)
	o, ok := fetched.Lookup("pt", 0)
	require.True(t, ok)
	assert.EqualValues(t, 4, o.At)
}

// TestGroupLeadershipHandoff: losing leadership of a __consumer_offsets
// partition drops its groups (NOT_COORDINATOR, parked joins included);
// regaining it loads them back from the log.
func TestGroupLeadershipHandoff(t *testing.T) {
	b, cl, adm, ctx := committedGroup(t, "ht", "hand-g", 8)
	p := group.Partition("hand-g", b.groups.Load().nparts)

	// A join parks for group.initial.rebalance.delay.ms (3s by default);
	// losing the partition answers it at once.
	joined := make(chan int16, 1)
	go func() {
		jr := kmsg.NewPtrJoinGroupRequest()
		jr.Group, jr.SessionTimeoutMillis, jr.RebalanceTimeoutMillis, jr.ProtocolType = "hand-g", 10000, 10000, "consumer"
		jr.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0}}}
		for {
			kr, err := cl.Broker(int(b.cfg.NodeID)).Request(ctx, jr)
			if err != nil {
				joined <- -1
				return
			}
			r := kr.(*kmsg.JoinGroupResponse)
			if r.ErrorCode == kerr.MemberIDRequired.Code { // KIP-394: join again with the id
				jr.MemberID = r.MemberID
				continue
			}
			joined <- r.ErrorCode
			return
		}
	}()
	require.Eventually(t, func() bool {
		dg, err := adm.DescribeGroups(ctx, "hand-g")
		if len(joined) > 0 {
			t.Fatalf("join answered early: %v", kerr.ErrorForCode(<-joined))
		}
		return err == nil && dg["hand-g"].State == "PreparingRebalance"
	}, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, b.setOffsetsLeader(p, false))
	select {
	case code := <-joined:
		assert.Equal(t, kerr.NotCoordinator.Code, code)
	case <-time.After(2 * time.Second):
		t.Fatal("parked join not answered when the partition was lost")
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "hand-g", "m", 1
	kr, err := cl.Broker(int(b.cfg.NodeID)).Request(ctx, hb)
	require.NoError(t, err)
	assert.Equal(t, kerr.NotCoordinator.Code, kr.(*kmsg.HeartbeatResponse).ErrorCode)

	require.NoError(t, b.setOffsetsLeader(p, true))
	var fetched kadm.OffsetResponses
	require.Eventually(t, func() bool {
		fetched, err = adm.FetchOffsets(ctx, "hand-g")
		return err == nil && fetched.Error() == nil
	}, 10*time.Second, 10*time.Millisecond)
	o, ok := fetched.Lookup("ht", 0)
	require.True(t, ok)
	assert.EqualValues(t, 8, o.At)
}

// committedGroup starts a broker in t.TempDir, creates a one-partition
// topic and commits offset for group on it, the state the coordinator
// failure tests start from.
func committedGroup(t *testing.T, topic, group string, offset int64) (*Broker, *kgo.Client, *kadm.Client, context.Context) {
	t.Helper()
	b := startInternal(t, t.TempDir())
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	adm := kadm.NewClient(cl)
	_, err = adm.CreateTopic(ctx, 1, 1, nil, topic)
	require.NoError(t, err)
	var os kadm.Offsets
	os.AddOffset(topic, 0, offset, -1)
	resp, err := adm.CommitOffsets(ctx, group, os)
	require.NoError(t, err)
	require.NoError(t, resp.Error())
	return b, cl, adm, ctx
}
