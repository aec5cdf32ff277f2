package group

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

var (
	codeRebalance      = tributary.ErrRebalanceInProgress.Code
	codeUnknownMember  = tributary.ErrUnknownMemberId.Code
	codeIllegalGen     = tributary.ErrIllegalGeneration.Code
	codeMemberRequired = tributary.ErrMemberIdRequired.Code
	codeFenced         = tributary.ErrFencedInstanceId.Code
)

func TestTwoMembersJoinSyncAndSplit(t *testing.T) {
	h := newHarness(t)
	c1 := h.consumer("g", "c1", "orders")
	c2 := h.consumer("g", "c2", "orders", "payments")

	// KIP-394: the first join only hands out an id.
	resp := c1.sendJoin()
	require.NotNil(t, resp)
	assert.Equal(t, codeMemberRequired, resp.ErrorCode)
	assert.Equal(t, "c1-00000000-0000-4000-8000-000000000001", resp.MemberID)
	assert.Equal(t, "Empty", h.state("g"), "a pending member does not start a rebalance")
	c1.memberID = resp.MemberID
	require.Nil(t, c1.sendJoin(), "the rejoin with the id parks")
	assert.Equal(t, "PreparingRebalance", h.state("g"))

	h.advance(time.Second)
	require.Nil(t, c2.join())

	// The initial delay (3s) started at c1's join; c2 joined during it,
	// so at 3s it is extended by another 3s.
	h.advance(2 * time.Second)
	assert.Nil(t, h.replies[c1.joinRef], "the delay was extended because c2 joined")
	h.advance(3*time.Second - time.Millisecond)
	assert.Nil(t, h.replies[c1.joinRef])
	h.advance(time.Millisecond)

	r1, r2 := c1.joined(), c2.joined()
	for _, r := range []*kmsg.JoinGroupResponse{r1, r2} {
		assert.Zero(t, r.ErrorCode)
		assert.Equal(t, int32(1), r.Generation)
		assert.Equal(t, "range", *r.Protocol)
		assert.Equal(t, "consumer", *r.ProtocolType)
		assert.Equal(t, c1.memberID, r.LeaderID, "the first member to join leads")
	}
	require.Len(t, r1.Members, 2, "the leader learns every member")
	assert.Equal(t, c1.memberID, r1.Members[0].MemberID)
	assert.Equal(t, c2.memberID, r1.Members[1].MemberID)
	assert.Equal(t, consumerMetadata([]string{"orders", "payments"}), r1.Members[1].ProtocolMetadata)
	assert.Empty(t, r2.Members, "followers do not")
	assert.Equal(t, "CompletingRebalance", h.state("g"))

	// The follower's sync waits for the leader's assignment.
	require.Nil(t, c2.sync(nil))
	assert.Nil(t, h.replies[c2.syncRef])
	require.Nil(t, c1.sync(map[string][]byte{c1.memberID: []byte("p0"), c2.memberID: []byte("p1")}))
	assert.Equal(t, "p0", string(c1.synced().MemberAssignment))
	s2 := c2.synced()
	assert.Equal(t, "p1", string(s2.MemberAssignment))
	assert.Equal(t, "range", *s2.Protocol)
	assert.Equal(t, "Stable", h.state("g"))

	// The assignment was recorded before it was handed out.
	require.NotEmpty(t, h.records)
	last := h.records[len(h.records)-1]
	var v kmsg.GroupMetadataValue
	require.NoError(t, v.ReadFrom(last.Value))
	assert.Equal(t, int32(1), v.Generation)
	require.Len(t, v.Members, 2)
	assert.Equal(t, "p1", string(v.Members[1].Assignment))
	assert.Equal(t, Partition("g", 50), last.Partition)

	assert.Zero(t, c1.heartbeat())
	assert.Zero(t, c2.heartbeat())
}

func TestThirdMemberTriggersRebalanceAndEveryoneRejoins(t *testing.T) {
	h := newHarness(t)
	c1, c2, c3 := h.consumer("g", "c1", "t"), h.consumer("g", "c2", "t"), h.consumer("g", "c3", "t")
	h.formGroup(c1, c2)

	require.Nil(t, c3.join())
	assert.Equal(t, "PreparingRebalance", h.state("g"))
	// Members learn about the rebalance from their heartbeat, and may
	// still commit for the generation they have.
	assert.Equal(t, codeRebalance, c1.heartbeat())
	assert.Equal(t, codeRebalance, c2.heartbeat())
	assert.Zero(t, c1.commit("t", 10), "commits of the current generation are allowed while preparing")

	require.Nil(t, c1.join())
	assert.Nil(t, h.replies[c1.joinRef], "c2 has not rejoined yet")
	require.Nil(t, c2.join())
	// Everyone rejoined: no need to wait for the rebalance timeout.
	for _, m := range []*consumer{c1, c2, c3} {
		r := m.joined()
		assert.Equal(t, int32(2), r.Generation)
	}
	assert.True(t, c1.leader)
	assert.Len(t, c1.members, 3)
	// Between join and sync a commit is refused so the member syncs first.
	assert.Equal(t, codeRebalance, c3.commit("t", 1))
	// A sync for the old generation is refused.
	old := c2.syncRequest(nil)
	old.Generation = 1
	assert.Equal(t, codeIllegalGen, h.c.SyncGroup(h.now, 999, old).ErrorCode)

	for _, m := range []*consumer{c2, c3} {
		require.Nil(t, m.sync(nil))
	}
	require.Nil(t, c1.sync(map[string][]byte{c1.memberID: []byte("a"), c2.memberID: []byte("b"), c3.memberID: []byte("c")}))
	assert.Equal(t, "c", string(c3.synced().MemberAssignment))
	assert.Equal(t, "Stable", h.state("g"))
}

func TestRebalanceTimeoutRemovesMembersThatDoNotRejoin(t *testing.T) {
	h := newHarness(t)
	c1, c2, c3 := h.consumer("g", "c1", "t"), h.consumer("g", "c2", "t"), h.consumer("g", "c3", "t")
	h.formGroup(c1, c2)

	require.Nil(t, c3.join())
	require.Nil(t, c1.join())
	// c2 keeps heartbeating but never rejoins: the join phase ends after
	// the longest rebalance timeout (30s) without it.
	for i := 0; i < 5; i++ {
		h.advance(5 * time.Second)
		assert.Equal(t, codeRebalance, c2.heartbeat())
	}
	h.advance(5*time.Second - time.Millisecond)
	assert.Nil(t, h.replies[c1.joinRef])
	h.advance(time.Millisecond)
	r1, r3 := c1.joined(), c3.joined()
	assert.Equal(t, int32(2), r1.Generation)
	assert.Equal(t, int32(2), r3.Generation)
	require.Len(t, r1.Members, 2)
	assert.Equal(t, codeUnknownMember, c2.heartbeat(), "c2 was removed")
}

func TestSessionExpiryRemovesMemberAndRebalances(t *testing.T) {
	h := newHarness(t)
	c1, c2 := h.consumer("g", "c1", "t"), h.consumer("g", "c2", "t")
	h.formGroup(c1, c2)

	// c1 heartbeats every 3s; c2 goes silent. Its 10s session ends.
	for i := 0; i < 3; i++ {
		h.advance(3 * time.Second)
		assert.Zero(t, c1.heartbeat())
	}
	assert.Equal(t, "Stable", h.state("g"))
	h.advance(time.Second)
	assert.Equal(t, "PreparingRebalance", h.state("g"), "c2's session expired")
	assert.Equal(t, codeRebalance, c1.heartbeat())
	assert.Equal(t, codeUnknownMember, c2.heartbeat())

	require.Nil(t, c1.join())
	r := c1.joined()
	assert.Equal(t, int32(2), r.Generation, "only c1 is left, so the join completes at once")
	require.Len(t, r.Members, 1)
}

func TestLeaveGroupBatchedWithPerMemberErrors(t *testing.T) {
	h := newHarness(t)
	c1 := h.consumer("g", "c1", "t")
	c2 := h.consumer("g", "c2", "t").static("i2")
	c3 := h.consumer("g", "c3", "t").static("i3")
	h.formGroup(c1, c2, c3)

	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = 5
	req.Group = "g"
	req.Members = []kmsg.LeaveGroupRequestMember{
		{MemberID: c1.memberID},
		{MemberID: "nobody"},
		{InstanceID: kmsg.StringPtr("i2")},                    // by instance id alone
		{MemberID: "stale", InstanceID: kmsg.StringPtr("i3")}, // instance owned by another id
		{MemberID: "", InstanceID: kmsg.StringPtr("no-such-instance")},
	}
	resp := h.c.LeaveGroup(h.now, req)
	h.drain()
	require.Len(t, resp.Members, 5)
	assert.Zero(t, resp.ErrorCode)
	assert.Zero(t, resp.Members[0].ErrorCode)
	assert.Equal(t, codeUnknownMember, resp.Members[1].ErrorCode)
	assert.Zero(t, resp.Members[2].ErrorCode)
	assert.Equal(t, codeFenced, resp.Members[3].ErrorCode)
	assert.Equal(t, codeUnknownMember, resp.Members[4].ErrorCode)

	assert.Equal(t, "PreparingRebalance", h.state("g"))
	assert.Equal(t, codeUnknownMember, c1.heartbeat())
	assert.Equal(t, codeUnknownMember, c2.heartbeat())
	assert.Equal(t, codeRebalance, c3.heartbeat())

	// v0 leave of the last member: the top-level error carries it, and the
	// group, now without members, completes its rebalance empty.
	v0 := kmsg.NewPtrLeaveGroupRequest()
	v0.Group, v0.MemberID = "g", c3.memberID
	r0 := h.c.LeaveGroup(h.now, v0)
	h.drain()
	assert.Zero(t, r0.ErrorCode)
	assert.Nil(t, r0.Members)
	assert.Equal(t, "Empty", h.state("g"))
	r0 = h.c.LeaveGroup(h.now, v0)
	assert.Equal(t, codeUnknownMember, r0.ErrorCode)

	// The empty group's generation was advanced and recorded.
	var v kmsg.GroupMetadataValue
	require.NoError(t, v.ReadFrom(h.records[len(h.records)-1].Value))
	assert.Equal(t, int32(2), v.Generation)
	assert.Empty(t, v.Members)
	assert.Nil(t, v.Protocol)
}

func TestStaticMemberRestartsWithoutRebalance(t *testing.T) {
	h := newHarness(t)
	s1 := h.consumer("g", "c1", "t").static("i1")
	s2 := h.consumer("g", "c2", "t").static("i2")

	// Static members join at once, without MEMBER_ID_REQUIRED.
	require.Nil(t, s1.sendJoin())
	require.Nil(t, s2.sendJoin())
	h.advance(6 * time.Second)
	h.completeRebalance(s1, s2)
	assert.Equal(t, "i2-00000000-0000-4000-8000-000000000002", s2.memberID, "static ids start with the instance id")

	// s2 restarts: it has forgotten its member id and rejoins with the
	// same instance id and metadata.
	old := *s2
	s2.memberID = ""
	recs := len(h.records)
	resp := s2.sendJoin()
	require.NotNil(t, resp, "answered at once, no rebalance")
	assert.Zero(t, resp.ErrorCode)
	assert.NotEqual(t, old.memberID, resp.MemberID)
	assert.Equal(t, int32(1), resp.Generation, "same generation")
	assert.False(t, resp.SkipAssignment)
	assert.Equal(t, "Stable", h.state("g"))
	require.Len(t, h.records, recs+1, "the new member id is recorded")

	// It gets its old assignment back with a sync of the same generation.
	sr := s2.sync(nil)
	require.NotNil(t, sr)
	assert.Equal(t, "assigned:c2", string(sr.MemberAssignment))
	assert.Zero(t, s1.heartbeat())
	assert.Zero(t, s2.heartbeat())

	// The old incarnation is fenced everywhere.
	assert.Equal(t, codeFenced, old.heartbeat())
	assert.Equal(t, codeFenced, old.commit("t", 5))
	assert.Equal(t, codeFenced, old.sync(nil).ErrorCode)
	oj := old.sendJoin()
	require.NotNil(t, oj)
	assert.Equal(t, codeFenced, oj.ErrorCode)

	// The leader restarting gets SkipAssignment (KIP-814) and the members,
	// still without a rebalance.
	s1.memberID = ""
	lr := s1.sendJoin()
	require.NotNil(t, lr)
	assert.True(t, lr.SkipAssignment)
	assert.Equal(t, lr.MemberID, lr.LeaderID)
	assert.Len(t, lr.Members, 2)
	assert.Equal(t, "Stable", h.state("g"))
}

func TestStaticMemberReplacedWhileParkedIsFenced(t *testing.T) {
	h := newHarness(t)
	s1 := h.consumer("g", "c1", "t").static("i1")
	d := h.consumer("g", "d", "t")
	h.formGroup(s1, d)
	require.True(t, s1.leader)

	// The leader rejoins, which starts a rebalance, and parks.
	require.Nil(t, s1.join())
	require.Equal(t, "PreparingRebalance", h.state("g"))
	oldRef := s1.joinRef

	// A second process with the same instance id joins afresh: the parked
	// join of the first is answered FENCED_INSTANCE_ID.
	dup := h.consumer("g", "c1-copy", "t").static("i1")
	require.Nil(t, dup.sendJoin())
	r := h.takeReply(oldRef)
	require.NotNil(t, r)
	assert.Equal(t, codeFenced, r.(*kmsg.JoinGroupResponse).ErrorCode)
	assert.Equal(t, codeFenced, s1.heartbeat())

	// d learns of the rebalance and rejoins; the replacement completes it
	// with d, and leads in s1's place.
	assert.Equal(t, codeRebalance, d.heartbeat())
	require.Nil(t, d.join())
	assert.Equal(t, int32(2), d.joined().Generation)
	rj := dup.joined()
	assert.Equal(t, int32(2), rj.Generation)
	assert.Equal(t, rj.MemberID, rj.LeaderID)
	assert.Len(t, rj.Members, 2)
}

func TestMemberIDRequiredFlow(t *testing.T) {
	h := newHarness(t)
	c1, c2 := h.consumer("g", "c1", "t"), h.consumer("g", "c2", "t")
	h.formGroup(c1)

	// c2 asks for an id but never comes back; the leader rejoins. The
	// pending member holds the join phase open until its session timeout.
	r := c2.sendJoin()
	require.Equal(t, codeMemberRequired, r.ErrorCode)
	assert.Equal(t, "Stable", h.state("g"), "a pending member does not rebalance the group")
	require.Nil(t, c1.join())
	h.advance(9 * time.Second)
	assert.Nil(t, h.replies[c1.joinRef], "waiting for the pending member")
	h.advance(time.Second) // c2's 10s session as a pending member ends
	assert.Equal(t, int32(2), c1.joined().Generation)

	// The id of a pending member that expired is unknown.
	c2.memberID = r.MemberID
	late := c2.sendJoin()
	require.NotNil(t, late)
	assert.Equal(t, codeUnknownMember, late.ErrorCode)

	// JoinGroup v3 predates KIP-394: the member is added at once.
	c3 := h.consumer("g", "c3", "t")
	c3.version = 3
	require.Nil(t, c3.sendJoin())
	assert.Equal(t, "PreparingRebalance", h.state("g"))
}

func TestOffsetCommitValidation(t *testing.T) {
	h := newHarness(t)
	c1, c2 := h.consumer("g", "c1", "t"), h.consumer("g", "c2", "t")
	h.formGroup(c1, c2)

	assert.Zero(t, c1.commit("t", 5))
	stale := *c1
	stale.gen = 0
	assert.Equal(t, codeIllegalGen, stale.commit("t", 6))
	stranger := *c1
	stranger.memberID = "stranger"
	assert.Equal(t, codeUnknownMember, stranger.commit("t", 6))
	// A simple (generation -1, no member) commit may not race an active group.
	simple := *c1
	simple.memberID, simple.gen = "", -1
	assert.Equal(t, codeUnknownMember, simple.commit("t", 6))

	// Unknown group with a generation: ILLEGAL_GENERATION before v9,
	// GROUP_ID_NOT_FOUND from v9.
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group, req.Generation, req.MemberID = "nope", 3, "m"
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}
	assert.Equal(t, codeIllegalGen, h.c.OffsetCommit(h.now, req).Topics[0].Partitions[0].ErrorCode)
	req.Version = 9
	assert.Equal(t, tributary.ErrGroupIdNotFound.Code, h.c.OffsetCommit(h.now, req).Topics[0].Partitions[0].ErrorCode)
	assert.NotContains(t, h.c.Groups(), "nope")

	// A simple commit creates a group without protocol type; metadata is
	// bounded by offset.metadata.max.bytes per partition.
	req = kmsg.NewPtrOffsetCommitRequest()
	req.Version = 9
	req.Group = "simple"
	big := string(make([]byte, 4097))
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{
		{Partition: 0, Offset: 11, LeaderEpoch: 3, Metadata: kmsg.StringPtr("meta")},
		{Partition: 1, Offset: 12, LeaderEpoch: -1, Metadata: &big},
	}}}
	resp := h.c.OffsetCommit(h.now, req)
	h.drain()
	assert.Zero(t, resp.Topics[0].Partitions[0].ErrorCode)
	assert.Equal(t, tributary.ErrOffsetMetadataTooLarge.Code, resp.Topics[0].Partitions[1].ErrorCode)

	f := kmsg.NewPtrOffsetFetchRequest()
	f.Version = 9
	f.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "simple"}} // nil topics: everything
	fr := h.c.OffsetFetch(h.now, f)
	require.Len(t, fr.Groups[0].Topics, 1)
	require.Len(t, fr.Groups[0].Topics[0].Partitions, 1)
	p := fr.Groups[0].Topics[0].Partitions[0]
	assert.Equal(t, int64(11), p.Offset)
	assert.Equal(t, int32(3), p.LeaderEpoch)
	assert.Equal(t, "meta", *p.Metadata)

	// Asking for specific partitions returns -1 for those never committed.
	f.Groups[0].Topics = []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{1, 0}}, {Topic: "u", Partitions: []int32{0}}}
	fr = h.c.OffsetFetch(h.now, f)
	assert.Equal(t, int64(-1), fr.Groups[0].Topics[0].Partitions[0].Offset)
	assert.Equal(t, int64(11), fr.Groups[0].Topics[0].Partitions[1].Offset)
	assert.Equal(t, int64(-1), fr.Groups[0].Topics[1].Partitions[0].Offset)

	// Old single-group version.
	f0 := kmsg.NewPtrOffsetFetchRequest()
	f0.Version = 3
	f0.Group = "g"
	fr0 := h.c.OffsetFetch(h.now, f0)
	require.Len(t, fr0.Topics, 1)
	assert.Equal(t, int64(5), fr0.Topics[0].Partitions[0].Offset)
	assert.Equal(t, int32(7), fr0.Topics[0].Partitions[0].LeaderEpoch)
}

func TestInitialRebalanceDelayIsCappedByRebalanceTimeout(t *testing.T) {
	h := newHarness(t)
	a := h.consumer("g", "a", "t")
	a.rebalance = 5000
	require.Nil(t, a.join())
	// New members keep arriving every second; the delay may only grow
	// until the 5s rebalance timeout.
	for i := 0; i < 6; i++ {
		h.advance(time.Second - time.Millisecond)
		if i < 4 {
			assert.Nil(t, h.replies[a.joinRef], "step %d", i)
		}
		m := h.consumer("g", string(rune('b'+i)), "t")
		if i < 4 {
			require.Nil(t, m.join())
		}
		h.advance(time.Millisecond)
	}
	r := a.joined()
	assert.Equal(t, int32(1), r.Generation)
	assert.Len(t, r.Members, 5)
}

func TestInitialRebalanceDelaySingleMember(t *testing.T) {
	h := newHarness(t)
	a := h.consumer("g", "a", "t")
	require.Nil(t, a.join())
	h.advance(3*time.Second - time.Millisecond)
	assert.Nil(t, h.replies[a.joinRef], "a new group waits group.initial.rebalance.delay.ms")
	h.advance(time.Millisecond)
	assert.Equal(t, int32(1), a.joined().Generation)
}

func TestJoinValidation(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxSize = 2 })
	c1, c2 := h.consumer("g", "c1", "t"), h.consumer("g", "c2", "t")
	c1.protocols = []string{"sticky", "range"}
	c2.protocols = []string{"range", "sticky"}
	h.formGroup(c1, c2)

	for _, st := range []int32{5999, 1800001} {
		m := h.consumer("g", "x", "t")
		m.session = st
		assert.Equal(t, tributary.ErrInvalidSessionTimeout.Code, m.sendJoin().ErrorCode, "session %d", st)
	}
	// Group full.
	c3 := h.consumer("g", "c3", "t")
	assert.Equal(t, tributary.ErrGroupMaxSizeReached.Code, c3.sendJoin().ErrorCode)

	// A join whose protocols share none with the group, or of another
	// protocol type, is inconsistent.
	c1.protocols = []string{"roundrobin"}
	assert.Equal(t, tributary.ErrInconsistentGroupProtocol.Code, c1.sendJoin().ErrorCode)
	req := c2.joinRequest()
	req.ProtocolType = "connect"
	assert.Equal(t, tributary.ErrInconsistentGroupProtocol.Code, h.c.JoinGroup(h.now, 77, Client{}, req).ErrorCode)

	// Unknown member id on an unknown group.
	ghost := h.consumer("other", "x", "t")
	ghost.memberID = "x-1"
	assert.Equal(t, codeUnknownMember, ghost.sendJoin().ErrorCode)
	assert.NotContains(t, h.c.Groups(), "other")
	// An empty protocol list cannot start a group.
	empty := h.consumer("fresh", "x")
	empty.protocols = nil
	assert.Equal(t, tributary.ErrInconsistentGroupProtocol.Code, empty.sendJoin().ErrorCode)
	assert.NotContains(t, h.c.Groups(), "fresh", "a failed join leaves no group behind")
}

func TestProtocolSelectedByVotes(t *testing.T) {
	h := newHarness(t)
	a, b, c := h.consumer("g", "a", "t"), h.consumer("g", "b", "t"), h.consumer("g", "c", "t")
	a.protocols = []string{"sticky", "range", "roundrobin"}
	b.protocols = []string{"range", "sticky"}
	c.protocols = []string{"range", "cooperative-sticky", "sticky"}
	h.formGroup(a, b, c)
	// Candidates are those all support (sticky, range); range has two
	// first-choice votes against one, though the leader prefers sticky.
	j := kmsg.NewPtrDescribeGroupsRequest()
	j.Groups = []string{"g"}
	assert.Equal(t, "range", h.c.DescribeGroups(h.now, j).Groups[0].Protocol)
}

func TestSyncTimeoutRemovesMembersThatDoNotSync(t *testing.T) {
	h := newHarness(t)
	c1, c2 := h.consumer("g", "c1", "t"), h.consumer("g", "c2", "t")
	for _, m := range []*consumer{c1, c2} {
		m.session = 60000 // longer than the rebalance timeout, to isolate it
		require.Nil(t, m.join())
	}
	h.advance(6 * time.Second)
	c1.joined()
	c2.joined()
	// Nobody syncs; the leader's silence means no assignment ever comes.
	// After the rebalance timeout every member that did not sync is out.
	require.Nil(t, c2.sync(nil))
	h.advance(30 * time.Second)
	assert.Equal(t, codeUnknownMember, c1.heartbeat())
	// c2 synced and stays; the group rebalances for it.
	assert.Equal(t, "PreparingRebalance", h.state("g"))
	assert.Equal(t, codeRebalance, c2.synced().ErrorCode)
}

func TestDescribeListDeleteGroups(t *testing.T) {
	h := newHarness(t)
	c1 := h.consumer("g", "c1", "t")
	h.formGroup(c1)
	assert.Zero(t, c1.commit("t", 3))
	other := h.consumer("h", "o", "t")
	require.Nil(t, other.join())

	d := kmsg.NewPtrDescribeGroupsRequest()
	d.Version = 6
	d.Groups = []string{"g", "h", "missing"}
	dr := h.c.DescribeGroups(h.now, d)
	g := dr.Groups[0]
	assert.Equal(t, "Stable", g.State)
	assert.Equal(t, "consumer", g.ProtocolType)
	assert.Equal(t, "range", g.Protocol)
	require.Len(t, g.Members, 1)
	assert.Equal(t, "c1", g.Members[0].ClientID)
	assert.Equal(t, "assigned:c1", string(g.Members[0].MemberAssignment))
	assert.Equal(t, consumerMetadata([]string{"t"}), g.Members[0].ProtocolMetadata)
	hg := dr.Groups[1]
	assert.Equal(t, "PreparingRebalance", hg.State)
	assert.Empty(t, hg.Protocol, "no protocol while rebalancing")
	require.Len(t, hg.Members, 1)
	assert.Empty(t, hg.Members[0].ProtocolMetadata)
	assert.Equal(t, "Dead", dr.Groups[2].State)
	assert.Equal(t, tributary.ErrGroupIdNotFound.Code, dr.Groups[2].ErrorCode)
	d.Version = 5
	assert.Zero(t, h.c.DescribeGroups(h.now, d).Groups[2].ErrorCode)

	l := kmsg.NewPtrListGroupsRequest()
	l.Version = 5
	lr := h.c.ListGroups(h.now, l)
	require.Len(t, lr.Groups, 2)
	assert.Equal(t, "g", lr.Groups[0].Group)
	assert.Equal(t, "classic", lr.Groups[0].GroupType)
	l.StatesFilter = []string{"stable"}
	lr = h.c.ListGroups(h.now, l)
	require.Len(t, lr.Groups, 1)
	assert.Equal(t, "g", lr.Groups[0].Group)
	l.StatesFilter, l.TypesFilter = nil, []string{"consumer"}
	assert.Empty(t, h.c.ListGroups(h.now, l).Groups)

	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{"g", "missing"}
	delr := h.c.DeleteGroups(h.now, del)
	assert.Equal(t, tributary.ErrNonEmptyGroup.Code, delr.Groups[0].ErrorCode)
	assert.Equal(t, tributary.ErrGroupIdNotFound.Code, delr.Groups[1].ErrorCode)

	// Once the member leaves, the group can be deleted, offsets included.
	lv := kmsg.NewPtrLeaveGroupRequest()
	lv.Group, lv.MemberID = "g", c1.memberID
	h.c.LeaveGroup(h.now, lv)
	h.drain()
	require.Equal(t, "Empty", h.state("g"))
	recs := len(h.records)
	delr = h.c.DeleteGroups(h.now, del)
	h.drain()
	assert.Zero(t, delr.Groups[0].ErrorCode)
	assert.NotContains(t, h.c.Groups(), "g")
	require.Len(t, h.records, recs+2, "an offset tombstone and a group tombstone")
	for _, r := range h.records[recs:] {
		assert.Nil(t, r.Value)
	}
	f := kmsg.NewPtrOffsetFetchRequest()
	f.Version = 9
	f.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g"}}
	assert.Empty(t, h.c.OffsetFetch(h.now, f).Groups[0].Topics)
}

func TestOffsetDelete(t *testing.T) {
	h := newHarness(t)
	c1 := h.consumer("g", "c1", "orders")
	h.formGroup(c1)
	assert.Zero(t, c1.commit("orders", 1))
	assert.Zero(t, c1.commit("old-topic", 2))

	req := kmsg.NewPtrOffsetDeleteRequest()
	req.Group = "g"
	req.Topics = []kmsg.OffsetDeleteRequestTopic{
		{Topic: "orders", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}},
		{Topic: "old-topic", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}, {Partition: 9}}},
	}
	resp := h.c.OffsetDelete(h.now, req)
	h.drain()
	assert.Zero(t, resp.ErrorCode)
	assert.Equal(t, tributary.ErrGroupSubscribedToTopic.Code, resp.Topics[0].Partitions[0].ErrorCode)
	assert.Zero(t, resp.Topics[1].Partitions[0].ErrorCode)
	assert.Zero(t, resp.Topics[1].Partitions[1].ErrorCode, "nothing to delete is not an error")
	last := h.records[len(h.records)-1]
	assert.Nil(t, last.Value)
	var k kmsg.OffsetCommitKey
	require.NoError(t, k.ReadFrom(last.Key))
	assert.Equal(t, "old-topic", k.Topic)

	req.Group = "missing"
	assert.Equal(t, tributary.ErrGroupIdNotFound.Code, h.c.OffsetDelete(h.now, req).ErrorCode)
}

func TestOffsetsExpire(t *testing.T) {
	const retention = 7 * 24 * time.Hour
	h := newHarness(t)

	// A simple group: offsets expire a retention after their commit, and
	// the group goes with them.
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group = "simple"
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}
	h.c.OffsetCommit(h.now, req)
	h.drain()

	// A consumer group: empty three days after its commit; its offsets
	// expire a retention after it became empty.
	c1 := h.consumer("g", "c1", "t")
	h.formGroup(c1)
	require.Zero(t, c1.commit("t", 5))
	h.advance(3 * 24 * time.Hour)
	// c1 never heartbeated: its session expired at this tick, and with no
	// member left the rebalance completed at once, empty.
	require.Equal(t, "Empty", h.state("g"))

	h.advance(retention - 3*24*time.Hour)
	assert.NotContains(t, h.c.Groups(), "simple")
	assert.Contains(t, h.c.Groups(), "g", "g's offsets are younger than a retention since it emptied")
	h.advance(3 * 24 * time.Hour)
	assert.NotContains(t, h.c.Groups(), "g")

	// Tombstones were written for both groups' offsets and metadata.
	tomb := 0
	for _, r := range h.records {
		if r.Value == nil {
			tomb++
		}
	}
	assert.Equal(t, 4, tomb)
}

func TestStableConsumerGroupExpiresOnlyUnsubscribedTopics(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxSessionTimeout = 30 * 24 * time.Hour })
	c1 := h.consumer("g", "c1", "orders")
	c1.session = int32((8 * 24 * time.Hour).Milliseconds())
	h.formGroup(c1)
	require.Zero(t, c1.commit("orders", 1))
	require.Zero(t, c1.commit("gone", 1))
	h.advance(7*24*time.Hour + 10*time.Minute)
	require.Equal(t, "Stable", h.state("g"))

	f := kmsg.NewPtrOffsetFetchRequest()
	f.Version = 9
	f.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g"}}
	topics := h.c.OffsetFetch(h.now, f).Groups[0].Topics
	require.Len(t, topics, 1)
	assert.Equal(t, "orders", topics[0].Topic)
}

func TestUnloadAnswersParkedRequestsNotCoordinator(t *testing.T) {
	h := newHarness(t)
	a := h.consumer("g", "a", "t")
	require.Nil(t, a.join())
	h.c.Unload(Partition("g", 50))
	h.drain()
	assert.Equal(t, tributary.ErrNotCoordinator.Code, a.joined().ErrorCode)
	assert.Empty(t, h.c.Groups())
	_, ok := h.c.NextDeadline()
	assert.True(t, ok, "the offset expiry check stays scheduled")
}

func TestNextDeadlineTracksTimers(t *testing.T) {
	h := newHarness(t)
	_, ok := h.c.NextDeadline()
	assert.False(t, ok, "nothing to do before anything happens")
	a := h.consumer("g", "a", "t")
	require.Nil(t, a.join())
	at, ok := h.c.NextDeadline()
	require.True(t, ok)
	assert.Equal(t, h.now.Add(3*time.Second).UnixMilli(), at.UnixMilli(), "the initial rebalance delay")
	// Ticking early fires nothing.
	h.c.Tick(h.now.Add(time.Second))
	h.drain()
	assert.Nil(t, h.replies[a.joinRef])
	h.advance(3 * time.Second)
	a.joined()
	at, _ = h.c.NextDeadline()
	assert.Equal(t, h.now.Add(10*time.Second).UnixMilli(), at.UnixMilli(), "the member's session")
}

func TestFullGroupStillTakesBackRestartedStaticMember(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxSize = 2 })
	s1 := h.consumer("g", "c1", "t").static("i1")
	s2 := h.consumer("g", "c2", "t").static("i2")
	h.formGroup(s1, s2)

	newcomer := h.consumer("g", "c3", "t").static("i3")
	assert.Equal(t, tributary.ErrGroupMaxSizeReached.Code, newcomer.sendJoin().ErrorCode)

	s2.memberID = ""
	r := s2.sendJoin()
	require.NotNil(t, r)
	assert.Zero(t, r.ErrorCode, "the restarted instance takes its own place")
	assert.Equal(t, "Stable", h.state("g"))
}

// A rebalance timeout of 0 is accepted by Kafka (only the session timeout
// is validated). When a rebalance finds only static members that have not
// rejoined, the join phase re-arms itself by that timeout until their
// sessions end; Tick must not spin on it.
func TestZeroRebalanceTimeoutDoesNotSpin(t *testing.T) {
	h := newHarness(t)
	s1 := h.consumer("g", "c1", "t").static("i1")
	s2 := h.consumer("g", "c2", "t").static("i2")
	d := h.consumer("g", "d", "t")
	for _, m := range []*consumer{s1, s2, d} {
		m.rebalance = 0
		require.Nil(t, m.join())
	}
	h.advance(time.Millisecond)
	h.completeRebalance(s1, s2, d)
	require.Zero(t, d.commit("t", 1))

	h.advance(5 * time.Second)
	require.Zero(t, s1.heartbeat())
	require.Zero(t, s2.heartbeat())
	h.advance(5 * time.Second) // d's session ends: a rebalance nobody joins
	assert.Equal(t, "PreparingRebalance", h.state("g"))
	h.advance(time.Hour) // the statics' sessions end too
	assert.Equal(t, "Empty", h.state("g"))
}

func TestFollowerRejoin(t *testing.T) {
	h := newHarness(t)
	c1, c2 := h.consumer("g", "c1", "t"), h.consumer("g", "c2", "t")
	h.formGroup(c1, c2)

	// Same metadata while Stable: the current generation, no rebalance.
	r := c2.join()
	require.NotNil(t, r)
	assert.Equal(t, int32(1), r.Generation)
	assert.Empty(t, r.Members)
	assert.Equal(t, "Stable", h.state("g"))

	// A new subscription changes the metadata: rebalance.
	c2.topics = []string{"t", "new"}
	require.Nil(t, c2.join())
	assert.Equal(t, "PreparingRebalance", h.state("g"))
	require.Nil(t, c1.join())
	c1.joined()
	c2.joined()
	assert.Equal(t, consumerMetadata([]string{"t", "new"}), c1.members[1].ProtocolMetadata)

	// A duplicate join between join and sync (the client lost the answer)
	// gets the same answer again; the leader still gets the members.
	r = c1.join()
	require.NotNil(t, r)
	assert.Equal(t, int32(2), r.Generation)
	assert.Len(t, r.Members, 2)
	assert.Equal(t, "CompletingRebalance", h.state("g"))
	assert.Zero(t, c2.heartbeat(), "heartbeats are fine while completing")
}

// The error each member request gets in each situation, for one member
// whose group is at generation 1.
func TestMemberRequestErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mutate    func(m *consumer)
		heartbeat int16
		sync      int16
		commit    int16
	}{
		{"current", func(*consumer) {}, 0, 0, 0},
		{"old generation", func(m *consumer) { m.gen = 0 }, codeIllegalGen, codeIllegalGen, codeIllegalGen},
		{"newer generation", func(m *consumer) { m.gen = 2 }, codeIllegalGen, codeIllegalGen, codeIllegalGen},
		{"unknown member", func(m *consumer) { m.memberID = "who" }, codeUnknownMember, codeUnknownMember, codeUnknownMember},
		{"unknown group", func(m *consumer) { m.group = "other" }, codeUnknownMember, codeUnknownMember, codeIllegalGen},
		{"other instance id", func(m *consumer) { m.instance = kmsg.StringPtr("i9") }, codeUnknownMember, codeUnknownMember, codeUnknownMember},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			c1 := h.consumer("g", "c1", "t")
			h.formGroup(c1)
			m := *c1
			tc.mutate(&m)
			assert.Equal(t, tc.heartbeat, m.heartbeat(), "heartbeat")
			sr := h.c.SyncGroup(h.now, 1000, m.syncRequest(nil))
			require.NotNil(t, sr)
			assert.Equal(t, tc.sync, sr.ErrorCode, "sync")
			// OffsetCommit v8: an unknown group is ILLEGAL_GENERATION.
			assert.Equal(t, tc.commit, m.commitV(8, "t", 1), "commit")
		})
	}
}

func TestSyncProtocolMismatch(t *testing.T) {
	h := newHarness(t)
	c1 := h.consumer("g", "c1", "t")
	h.formGroup(c1)
	req := c1.syncRequest(nil)
	req.Protocol = kmsg.StringPtr("roundrobin")
	assert.Equal(t, tributary.ErrInconsistentGroupProtocol.Code, h.c.SyncGroup(h.now, 1, req).ErrorCode)
	req = c1.syncRequest(nil)
	req.ProtocolType = kmsg.StringPtr("connect")
	assert.Equal(t, tributary.ErrInconsistentGroupProtocol.Code, h.c.SyncGroup(h.now, 1, req).ErrorCode)
}

func TestConfigValidation(t *testing.T) {
	_, err := New(DefaultConfig())
	require.NoError(t, err)
	for name, f := range map[string]func(*Config){
		"partitions": func(c *Config) { c.OffsetsTopicPartitions = 0 },
		"delay":      func(c *Config) { c.InitialRebalanceDelay = -1 },
		"session":    func(c *Config) { c.MaxSessionTimeout = c.MinSessionTimeout - 1 },
		"size":       func(c *Config) { c.MaxSize = 0 },
		"metadata":   func(c *Config) { c.OffsetMetadataMaxBytes = -1 },
		"retention":  func(c *Config) { c.OffsetsRetention = 0 },
		"check":      func(c *Config) { c.OffsetsRetentionCheckInterval = 0 },
		"uuid":       func(c *Config) { c.NewUUID = nil },
	} {
		cfg := DefaultConfig()
		f(&cfg)
		_, err := New(cfg)
		assert.Error(t, err, name)
	}
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, randomUUID())
	assert.NotEqual(t, randomUUID(), randomUUID())
}

// When member metadata does not decode as the consumer protocol, Kafka
// cannot tell which topics are consumed and protects them all.
func TestUndecodableSubscriptionProtectsAllOffsets(t *testing.T) {
	h := newHarness(t)
	c1 := h.consumer("g", "c1", "t")
	req := c1.joinRequest()
	req.Protocols[0].Metadata = []byte{0xff}
	h.nextRef++
	c1.joinRef = h.nextRef
	r := h.c.JoinGroup(h.now, c1.joinRef, Client{ID: "c1"}, req)
	require.Equal(t, codeMemberRequired, r.ErrorCode)
	req.MemberID = r.MemberID
	require.Nil(t, h.c.JoinGroup(h.now, c1.joinRef, Client{ID: "c1"}, req))
	h.advance(3 * time.Second)
	h.completeRebalance(c1)
	require.Zero(t, c1.commit("anything", 1))

	del := kmsg.NewPtrOffsetDeleteRequest()
	del.Group = "g"
	del.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "anything", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
	assert.Equal(t, tributary.ErrGroupSubscribedToTopic.Code, h.c.OffsetDelete(h.now, del).Topics[0].Partitions[0].ErrorCode)
}
