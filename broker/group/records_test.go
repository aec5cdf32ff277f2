package group

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// snapshot is what clients can observe of a coordinator's groups.
func snapshot(t *testing.T, c *Coordinator, now time.Time) (*kmsg.DescribeGroupsResponse, *kmsg.OffsetFetchResponse) {
	t.Helper()
	d := kmsg.NewPtrDescribeGroupsRequest()
	d.Version = 5
	f := kmsg.NewPtrOffsetFetchRequest()
	f.Version = 9
	for _, id := range c.Groups() {
		d.Groups = append(d.Groups, id)
		f.Groups = append(f.Groups, kmsg.OffsetFetchRequestGroup{Group: id})
	}
	return c.DescribeGroups(now, d), c.OffsetFetch(now, f)
}

func TestRecordsRoundTrip(t *testing.T) {
	h := newHarness(t)

	// "g": stable, a dynamic and a static member, offsets.
	c1 := h.consumer("g", "c1", "t", "x")
	s2 := h.consumer("g", "c2", "t", "x").static("i2")
	h.formGroup(c1, s2)
	require.Zero(t, c1.commit("t", 5))
	require.Zero(t, s2.commit("u", 6))
	require.Zero(t, c1.commit("x", 1))
	del := kmsg.NewPtrOffsetDeleteRequest()
	del.Group = "g"
	del.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "u", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
	require.Zero(t, h.c.OffsetDelete(h.now, del).Topics[0].Partitions[0].ErrorCode)
	// The static member restarted: the record must carry its new id.
	oldS2 := *s2
	s2.memberID = ""
	require.NotNil(t, s2.sendJoin())

	// "simple": an offset with an explicit retention (OffsetCommit v2-v4).
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Version = 3
	oc.Group = "simple"
	oc.RetentionTimeMillis = time.Hour.Milliseconds()
	oc.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 2, Offset: 42, Metadata: kmsg.StringPtr("s")}}}}
	h.c.OffsetCommit(h.now, oc)
	h.drain()

	// "e": emptied after a generation, keeps offsets.
	e := h.consumer("e", "e1", "t")
	h.formGroup(e)
	require.Zero(t, e.commit("t", 9))
	lv := kmsg.NewPtrLeaveGroupRequest()
	lv.Group, lv.MemberID = "e", e.memberID
	h.c.LeaveGroup(h.now, lv)
	h.drain()

	// "gone": deleted; only tombstones remain of it.
	gone := h.consumer("gone", "x1", "t")
	h.formGroup(gone)
	require.Zero(t, gone.commit("t", 1))
	lv.Group, lv.MemberID = "gone", gone.memberID
	h.c.LeaveGroup(h.now, lv)
	dg := kmsg.NewPtrDeleteGroupsRequest()
	dg.Groups = []string{"gone"}
	require.Zero(t, h.c.DeleteGroups(h.now, dg).Groups[0].ErrorCode)
	h.drain()

	// The versions Kafka writes.
	for _, r := range h.records {
		kv := int16(binary.BigEndian.Uint16(r.Key))
		require.Contains(t, []int16{1, 2}, kv)
		assert.Equal(t, Partition(groupOfKey(t, r.Key), 50), r.Partition)
		if r.Value == nil {
			continue
		}
		vv := int16(binary.BigEndian.Uint16(r.Value))
		if kv == 2 {
			assert.Equal(t, int16(3), vv)
		} else {
			assert.Contains(t, []int16{1, 3}, vv)
		}
	}

	// Rebuild from the log.
	loaded, err := New(h.c.cfg)
	require.NoError(t, err)
	for _, r := range h.records {
		require.NoError(t, loaded.Load(r.Key, r.Value))
	}
	loaded.Loaded(h.now)

	assert.Equal(t, []string{"e", "g", "simple"}, loaded.Groups())
	wantD, wantF := snapshot(t, h.c, h.now)
	gotD, gotF := snapshot(t, loaded, h.now)
	assert.Equal(t, wantD, gotD)
	assert.Equal(t, wantF, gotF)
	assert.Equal(t, "Stable", gotD.Groups[1].State)
	assert.Len(t, gotD.Groups[1].Members, 2)
	assert.Equal(t, "Empty", gotD.Groups[0].State)

	// The loaded coordinator carries on where the old one stopped: same
	// generation, same members and assignments, same fencing.
	h.c = loaded
	assert.Zero(t, c1.heartbeat())
	assert.Zero(t, s2.heartbeat())
	assert.Equal(t, codeFenced, oldS2.heartbeat(), "the replaced incarnation stays fenced")
	assert.Zero(t, c1.commit("t", 6))

	// A static restart after the load still needs no rebalance.
	s2.memberID = ""
	r := s2.sendJoin()
	require.NotNil(t, r)
	assert.Equal(t, int32(1), r.Generation)
	assert.Equal(t, "Stable", h.state("g"))
	sr := s2.sync(nil)
	require.NotNil(t, sr)
	assert.Equal(t, "assigned:c2", string(sr.MemberAssignment))

	// Sessions restart at load time: a silent member is removed one
	// session timeout after Loaded.
	h.advance(5 * time.Second)
	assert.Zero(t, s2.heartbeat())
	h.advance(5 * time.Second)
	assert.Equal(t, "PreparingRebalance", h.state("g"))
	assert.Equal(t, codeUnknownMember, c1.heartbeat())
	assert.Equal(t, codeRebalance, s2.heartbeat())

	// The explicit expiry survived: one hour after the commit it is gone.
	h.advance(time.Hour)
	assert.NotContains(t, loaded.Groups(), "simple")
}

func groupOfKey(t *testing.T, key []byte) string {
	t.Helper()
	if binary.BigEndian.Uint16(key) == 2 {
		var k kmsg.GroupMetadataKey
		require.NoError(t, k.ReadFrom(key))
		return k.Group
	}
	var k kmsg.OffsetCommitKey
	require.NoError(t, k.ReadFrom(key))
	return k.Group
}

func TestLoadTombstonesAndUnknownRecords(t *testing.T) {
	h := newHarness(t)
	c, err := New(h.c.cfg)
	require.NoError(t, err)

	commit := func(group, topic string, p int32, off int64) {
		v := kmsg.NewOffsetCommitValue()
		v.Version = 3
		v.Offset = off
		v.LeaderEpoch = 4
		v.CommitTimestamp = t0.UnixMilli()
		require.NoError(t, c.Load(offsetKey(group, topic, p), v.AppendTo(nil)))
	}
	commit("a", "t", 0, 10)
	commit("a", "t", 1, 11)
	commit("a", "t", 0, 12) // a later commit wins
	require.NoError(t, c.Load(offsetKey("a", "t", 1), nil))

	// Group metadata written by Kafka, then its tombstone: the group
	// goes back to holding just its offsets.
	gk := kmsg.NewGroupMetadataKey()
	gk.Version = 2
	gk.Group = "a"
	gv := kmsg.NewGroupMetadataValue()
	gv.Version = 3
	gv.ProtocolType = "consumer"
	gv.Generation = 5
	gv.Protocol = kmsg.StringPtr("range")
	gv.Leader = kmsg.StringPtr("m1")
	m := kmsg.NewGroupMetadataValueMember()
	m.MemberID, m.ClientID, m.SessionTimeoutMillis, m.RebalanceTimeoutMillis = "m1", "cl", 10000, 30000
	gv.Members = []kmsg.GroupMetadataValueMember{m}
	require.NoError(t, c.Load(gk.AppendTo(nil), gv.AppendTo(nil)))
	d := kmsg.NewPtrDescribeGroupsRequest()
	d.Groups = []string{"a"}
	dr := c.DescribeGroups(t0, d)
	assert.Equal(t, "Stable", dr.Groups[0].State)
	assert.Equal(t, "m1", dr.Groups[0].Members[0].MemberID)

	require.NoError(t, c.Load(gk.AppendTo(nil), nil))
	dr = c.DescribeGroups(t0, d)
	assert.Equal(t, "Empty", dr.Groups[0].State)
	assert.Empty(t, dr.Groups[0].Members)

	// A v0 group metadata record (no rebalance timeout) and a v1 offset
	// (with an expiry) from an old Kafka still load.
	gv.Version = 0
	gk.Group = "old"
	require.NoError(t, c.Load(gk.AppendTo(nil), gv.AppendTo(nil)))
	assert.Contains(t, c.Groups(), "old")

	// KIP-848 records (key version 3+) are skipped; garbage is an error.
	require.NoError(t, c.Load([]byte{0, 3, 0, 1, 'x'}, []byte{0, 0}))
	assert.ErrorIs(t, c.Load([]byte{0}, nil), ErrMalformedRecord)
	assert.ErrorIs(t, c.Load([]byte{0xff, 0xff}, nil), ErrMalformedRecord)
	assert.ErrorIs(t, c.Load(offsetKey("a", "t", 0)[:5], nil), ErrMalformedRecord)
	assert.ErrorIs(t, c.Load(offsetKey("a", "t", 0), []byte{0, 3, 1}), ErrMalformedRecord)

	f := kmsg.NewPtrOffsetFetchRequest()
	f.Version = 9
	f.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "a"}}
	parts := c.OffsetFetch(t0, f).Groups[0].Topics[0].Partitions
	require.Len(t, parts, 1)
	assert.Equal(t, int64(12), parts[0].Offset)
	assert.Equal(t, int32(4), parts[0].LeaderEpoch)

	// Tombstoning the last offset of a group without metadata forgets it.
	require.NoError(t, c.Load(offsetKey("a", "t", 0), nil))
	assert.NotContains(t, c.Groups(), "a")
}

// FuzzLoad checks that Load never panics and that a record it accepts
// leaves a coordinator that still answers requests.
func FuzzLoad(f *testing.F) {
	v := kmsg.NewOffsetCommitValue()
	v.Version = 3
	f.Add(offsetKey("g", "t", 1), v.AppendTo(nil))
	gk := kmsg.NewGroupMetadataKey()
	gk.Version = 2
	gk.Group = "g"
	gv := kmsg.NewGroupMetadataValue()
	gv.Version = 3
	gv.Members = []kmsg.GroupMetadataValueMember{kmsg.NewGroupMetadataValueMember()}
	f.Add(gk.AppendTo(nil), gv.AppendTo(nil))
	f.Add([]byte{0, 2}, []byte(nil))
	f.Fuzz(func(t *testing.T, key, value []byte) {
		c, err := New(DefaultConfig())
		require.NoError(t, err)
		if c.Load(key, value) != nil {
			return
		}
		c.Loaded(t0)
		c.Tick(t0.Add(time.Hour))
		d := kmsg.NewPtrDescribeGroupsRequest()
		d.Groups = c.Groups()
		c.DescribeGroups(t0, d)
	})
}
