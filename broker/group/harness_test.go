package group

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// harness drives a Coordinator the way the broker will: it calls a
// handler, drains the outbox, keeps the records and files parked replies by
// Ref. Time only moves through advance, which calls Tick.
type harness struct {
	t       *testing.T
	c       *Coordinator
	now     time.Time
	records []Record
	replies map[Ref]kmsg.Response
	nextRef Ref
	uuids   int
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newHarness(t *testing.T, tweak ...func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, now: t0, replies: make(map[Ref]kmsg.Response)}
	cfg := DefaultConfig()
	cfg.NewUUID = func() string {
		h.uuids++
		return fmt.Sprintf("00000000-0000-4000-8000-%012d", h.uuids)
	}
	for _, f := range tweak {
		f(&cfg)
	}
	c, err := New(cfg)
	require.NoError(t, err)
	h.c = c
	return h
}

func (h *harness) drain() {
	out := h.c.Drain()
	for _, r := range out.Records {
		// Only TxnOffsetCommit writes transactional records, and only
		// offset commits; everything else is written without a producer.
		if r.ProducerID >= 0 {
			require.NotNil(h.t, r.Value, "a transactional tombstone")
			require.Contains(h.t, []byte{0, 1}, r.Key[1], "a transactional record that is not an offset commit")
		} else {
			require.Equal(h.t, int64(-1), r.ProducerID)
			require.Equal(h.t, int16(-1), r.ProducerEpoch)
		}
	}
	h.records = append(h.records, out.Records...)
	for _, r := range out.Replies {
		_, dup := h.replies[r.Ref]
		require.False(h.t, dup, "two replies for ref %d", r.Ref)
		h.replies[r.Ref] = r.Response
	}
}

// advance moves the clock and fires due timers.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.now = h.now.Add(d)
	h.c.Tick(h.now)
	h.drain()
}

// takeReply returns the parked reply for ref, or nil if none came yet.
func (h *harness) takeReply(ref Ref) kmsg.Response {
	r := h.replies[ref]
	delete(h.replies, ref)
	return r
}

func (h *harness) state(group string) string {
	h.t.Helper()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{group}
	return h.c.DescribeGroups(h.now, req).Groups[0].State
}

// consumer is a scripted group member: it builds requests as a Java or
// franz-go consumer would and remembers its member id and generation.
type consumer struct {
	h         *harness
	group     string
	client    string
	instance  *string
	topics    []string
	protocols []string // assignor names, most preferred first
	session   int32
	rebalance int32
	version   int16 // JoinGroup version

	memberID string
	gen      int32
	leader   bool
	members  []kmsg.JoinGroupResponseMember // as the leader was told
	assigned []byte

	joinRef Ref
	syncRef Ref
}

func (h *harness) consumer(group, client string, topics ...string) *consumer {
	return &consumer{
		h: h, group: group, client: client, topics: topics,
		protocols: []string{"range"}, session: 10000, rebalance: 30000, version: 9,
		gen: -1,
	}
}

func (m *consumer) static(instance string) *consumer { m.instance = &instance; return m }

func consumerMetadata(topics []string) []byte {
	md := kmsg.NewConsumerMemberMetadata()
	md.Version = 1
	md.Topics = topics
	return md.AppendTo(nil)
}

func (m *consumer) joinRequest() *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = m.version
	req.Group = m.group
	req.SessionTimeoutMillis = m.session
	req.RebalanceTimeoutMillis = m.rebalance
	req.MemberID = m.memberID
	req.InstanceID = m.instance
	req.ProtocolType = "consumer"
	for _, p := range m.protocols {
		jp := kmsg.NewJoinGroupRequestProtocol()
		jp.Name = p
		jp.Metadata = consumerMetadata(m.topics)
		req.Protocols = append(req.Protocols, jp)
	}
	return req
}

// sendJoin sends one JoinGroup and returns the immediate response (nil if
// parked; the reply is then collected by joined).
func (m *consumer) sendJoin() *kmsg.JoinGroupResponse {
	h := m.h
	h.nextRef++
	m.joinRef = h.nextRef
	resp := h.c.JoinGroup(h.now, m.joinRef, Client{ID: m.client, Host: "/127.0.0.1"}, m.joinRequest())
	h.drain()
	if resp != nil {
		m.absorbJoin(resp)
	}
	return resp
}

// join joins like a real client: it answers MEMBER_ID_REQUIRED by
// rejoining with the id it got. It returns the immediate response, nil if
// the join is parked.
func (m *consumer) join() *kmsg.JoinGroupResponse {
	m.h.t.Helper()
	resp := m.sendJoin()
	if resp != nil && resp.ErrorCode == 79 {
		require.NotEmpty(m.h.t, resp.MemberID)
		m.memberID = resp.MemberID
		resp = m.sendJoin()
	}
	return resp
}

// joined collects the parked JoinGroup reply, failing if there is none.
func (m *consumer) joined() *kmsg.JoinGroupResponse {
	m.h.t.Helper()
	r := m.h.takeReply(m.joinRef)
	require.NotNil(m.h.t, r, "%s: no JoinGroup reply yet", m.client)
	resp := r.(*kmsg.JoinGroupResponse)
	m.absorbJoin(resp)
	return resp
}

func (m *consumer) absorbJoin(resp *kmsg.JoinGroupResponse) {
	if resp.ErrorCode != 0 {
		return
	}
	m.memberID = resp.MemberID
	m.gen = resp.Generation
	m.leader = resp.LeaderID == resp.MemberID
	m.members = resp.Members
}

func (m *consumer) syncRequest(assignments map[string][]byte) *kmsg.SyncGroupRequest {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 5
	req.Group = m.group
	req.Generation = m.gen
	req.MemberID = m.memberID
	req.InstanceID = m.instance
	req.ProtocolType = kmsg.StringPtr("consumer")
	for id, a := range assignments {
		ga := kmsg.NewSyncGroupRequestGroupAssignment()
		ga.MemberID, ga.MemberAssignment = id, a
		req.GroupAssignment = append(req.GroupAssignment, ga)
	}
	return req
}

// sync sends SyncGroup (with assignments if leader) and returns the
// immediate response, nil if parked.
func (m *consumer) sync(assignments map[string][]byte) *kmsg.SyncGroupResponse {
	h := m.h
	h.nextRef++
	m.syncRef = h.nextRef
	resp := h.c.SyncGroup(h.now, m.syncRef, m.syncRequest(assignments))
	h.drain()
	if resp != nil && resp.ErrorCode == 0 {
		m.assigned = resp.MemberAssignment
	}
	return resp
}

func (m *consumer) synced() *kmsg.SyncGroupResponse {
	m.h.t.Helper()
	r := m.h.takeReply(m.syncRef)
	require.NotNil(m.h.t, r, "%s: no SyncGroup reply yet", m.client)
	resp := r.(*kmsg.SyncGroupResponse)
	if resp.ErrorCode == 0 {
		m.assigned = resp.MemberAssignment
	}
	return resp
}

func (m *consumer) heartbeat() int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 4
	req.Group = m.group
	req.Generation = m.gen
	req.MemberID = m.memberID
	req.InstanceID = m.instance
	resp := m.h.c.Heartbeat(m.h.now, req)
	m.h.drain()
	return resp.ErrorCode
}

// commit commits offset for topic partition 0 with the member's identity
// and returns the partition's error code.
func (m *consumer) commit(topic string, off int64) int16 { return m.commitV(9, topic, off) }

func (m *consumer) commitV(version int16, topic string, off int64) int16 {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = version
	req.Group = m.group
	req.Generation = m.gen
	req.MemberID = m.memberID
	req.InstanceID = m.instance
	req.Topics = []kmsg.OffsetCommitRequestTopic{{
		Topic:      topic,
		Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: off, LeaderEpoch: 7, Metadata: kmsg.StringPtr("m")}},
	}}
	resp := m.h.c.OffsetCommit(m.h.now, req)
	m.h.drain()
	return resp.Topics[0].Partitions[0].ErrorCode
}

// formGroup joins and syncs all members from scratch through the initial
// rebalance delay; the leader assigns each member its client id as bytes.
func (h *harness) formGroup(ms ...*consumer) {
	h.t.Helper()
	for _, m := range ms {
		require.Nil(h.t, m.join(), "%s: join should park", m.client)
	}
	h.advance(h.c.cfg.InitialRebalanceDelay)
	for i := 0; i < 20 && h.replies[ms[0].joinRef] == nil; i++ {
		h.advance(h.c.cfg.InitialRebalanceDelay)
	}
	h.completeRebalance(ms...)
}

// completeRebalance collects the join replies of ms and syncs them,
// followers first.
func (h *harness) completeRebalance(ms ...*consumer) {
	h.t.Helper()
	var leader *consumer
	for _, m := range ms {
		resp := m.joined()
		require.Zero(h.t, resp.ErrorCode, "%s join", m.client)
		if m.leader {
			leader = m
		}
	}
	require.NotNil(h.t, leader, "no leader among the joined members")
	assign := make(map[string][]byte)
	for _, jm := range leader.members {
		for _, m := range ms {
			if m.memberID == jm.MemberID {
				assign[jm.MemberID] = []byte("assigned:" + m.client)
			}
		}
	}
	for _, m := range ms {
		if m != leader {
			require.Nil(h.t, m.sync(nil), "%s: follower sync should park", m.client)
		}
	}
	require.Nil(h.t, leader.sync(assign))
	for _, m := range ms {
		resp := m.synced()
		require.Zero(h.t, resp.ErrorCode, "%s sync", m.client)
		require.Equal(h.t, "assigned:"+m.client, string(resp.MemberAssignment))
	}
}
