package consumerproto

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestSubscriptionRoundTrip(t *testing.T) {
	in := Subscription{
		Topics:     []string{"b", "a", "b"},
		UserData:   []byte{1, 2, 3},
		Owned:      map[string][]int32{"b": {3, 1}, "a": {0}},
		Generation: 7,
		Rack:       "use1-az1",
	}
	enc := in.AppendTo(nil)
	out, err := DecodeSubscription(enc)
	require.NoError(t, err)
	require.Equal(t, Subscription{
		Version:    SubscriptionVersion,
		Topics:     []string{"a", "b"},
		UserData:   []byte{1, 2, 3},
		Owned:      map[string][]int32{"a": {0}, "b": {1, 3}},
		Generation: 7,
		Rack:       "use1-az1",
	}, out)

	// Equal subscriptions encode to equal bytes whatever the map order:
	// the coordinator compares metadata bytes to decide on a rebalance.
	for range 20 {
		again := Subscription{Topics: []string{"a", "b"}, UserData: []byte{1, 2, 3}, Generation: 7, Rack: "use1-az1",
			Owned: map[string][]int32{"a": {0}, "b": {1, 3}}}
		require.Equal(t, enc, again.AppendTo(nil))
	}
}

// Every version a client sends decodes, with the fields of that version
// and defaults for the rest.
func TestDecodeSubscriptionVersions(t *testing.T) {
	for v := int16(0); v <= 5; v++ {
		meta := kmsg.NewConsumerMemberMetadata()
		meta.Version = v
		meta.Topics = []string{"t2", "t1"}
		meta.UserData = []byte("ud")
		owned := kmsg.NewConsumerMemberMetadataOwnedPartition()
		owned.Topic, owned.Partitions = "t1", []int32{4, 2}
		meta.OwnedPartitions = []kmsg.ConsumerMemberMetadataOwnedPartition{owned}
		meta.Generation = 9
		meta.Rack = kmsg.StringPtr("r1")
		enc := meta.AppendTo(nil)
		if v > 3 {
			// A future version appends fields we do not know.
			enc = append(enc, 0xde, 0xad)
		}

		got, err := DecodeSubscription(enc)
		require.NoError(t, err, "v%d", v)
		require.Equal(t, v, got.Version)
		require.Equal(t, []string{"t1", "t2"}, got.Topics)
		require.Equal(t, []byte("ud"), got.UserData)
		if v >= 1 {
			require.Equal(t, map[string][]int32{"t1": {2, 4}}, got.Owned, "v%d", v)
		} else {
			require.Nil(t, got.Owned)
		}
		if v >= 2 {
			require.Equal(t, int32(9), got.Generation, "v%d", v)
		} else {
			require.Equal(t, int32(-1), got.Generation, "v%d", v)
		}
		if v >= 3 {
			require.Equal(t, "r1", got.Rack, "v%d", v)
		} else {
			require.Empty(t, got.Rack)
		}
	}
}

// Clients that announce a version but stop writing early (franz-go #493:
// v1 without owned partitions) still decode, with what they did write.
func TestDecodeSubscriptionShortHigherVersion(t *testing.T) {
	v0 := kmsg.NewConsumerMemberMetadata()
	v0.Topics = []string{"t"}
	v0.UserData = []byte{9}
	for _, claimed := range []int16{1, 2, 3} {
		enc := v0.AppendTo(nil)
		binary.BigEndian.PutUint16(enc, uint16(claimed))
		got, err := DecodeSubscription(enc)
		require.NoError(t, err, "claimed v%d", claimed)
		require.Equal(t, claimed, got.Version)
		require.Equal(t, []string{"t"}, got.Topics)
		require.Equal(t, []byte{9}, got.UserData)
		require.Nil(t, got.Owned)
		require.Equal(t, int32(-1), got.Generation)
	}
}

func TestDecodeSubscriptionMalformed(t *testing.T) {
	for name, data := range map[string][]byte{
		"empty":            nil,
		"one byte":         {0},
		"negative version": {0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff},
		"huge topic count": {0, 0, 0x7f, 0xff, 0xff, 0xff},
		"truncated topic":  {0, 0, 0, 0, 0, 1, 0, 5, 'a'},
	} {
		_, err := DecodeSubscription(data)
		require.True(t, errors.Is(err, ErrMalformed), "%s: %v", name, err)
	}
}

// Decoded values never alias the input: the consumer reuses its read
// buffers, and a member's user data must not change under the assignor.
func TestDecodeDoesNotAlias(t *testing.T) {
	s := Subscription{Topics: []string{"t"}, UserData: []byte{1, 2}, Generation: -1}
	enc := s.AppendTo(nil)
	got, err := DecodeSubscription(enc)
	require.NoError(t, err)
	clear(enc)
	require.Equal(t, []byte{1, 2}, got.UserData)

	a := Assignment{Partitions: map[string][]int32{"t": {0}}, UserData: []byte{3}}
	enc = a.AppendTo(nil)
	gotA, err := DecodeAssignment(enc)
	require.NoError(t, err)
	clear(enc)
	require.Equal(t, []byte{3}, gotA.UserData)
}

// franz-go's members, as its balancers write JoinGroup metadata, decode
// to what they mean; ours decode with kmsg (what franz-go and every
// kmsg-based leader use) to what we meant.
func TestSubscriptionInterop(t *testing.T) {
	current := map[string][]int32{"b": {2, 0}, "a": {1}}
	kgoCoop, err := DecodeSubscription(kgo.CooperativeStickyBalancer().JoinGroupMetadata([]string{"a", "b"}, current, 5))
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, kgoCoop.Topics)
	require.Equal(t, map[string][]int32{"a": {1}, "b": {0, 2}}, kgoCoop.Owned)
	require.Equal(t, int32(5), kgoCoop.Generation)
	owned, gen := CooperativeSticky().(stickyAssignor).history(&Member{Subscription: kgoCoop})
	require.Equal(t, kgoCoop.Owned, owned)
	require.Equal(t, int32(5), gen)

	kgoRange, err := DecodeSubscription(kgo.RangeBalancer().JoinGroupMetadata([]string{"a"}, nil, 2))
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, kgoRange.Topics)
	require.Nil(t, kgoRange.Owned)

	ours := NewSubscription(CooperativeSticky(), []string{"b", "a"}, current, 5, "rack-1")
	var meta kmsg.ConsumerMemberMetadata
	require.NoError(t, meta.ReadFrom(ours.AppendTo(nil)))
	require.Equal(t, int16(3), meta.Version)
	require.Equal(t, []string{"a", "b"}, meta.Topics)
	require.Equal(t, int32(5), meta.Generation)
	require.Equal(t, "rack-1", *meta.Rack)
	require.Len(t, meta.OwnedPartitions, 2)
	require.Equal(t, "a", meta.OwnedPartitions[0].Topic, "owned topics sorted (KAFKA-12898)")
	require.Equal(t, []int32{0, 2}, meta.OwnedPartitions[1].Partitions)
	// Java's CooperativeStickyAssignor user data: the generation.
	require.Equal(t, []byte{0, 0, 0, 5}, meta.UserData)

	// Range members send no owned partitions and no user data.
	meta = kmsg.ConsumerMemberMetadata{}
	require.NoError(t, meta.ReadFrom(NewSubscription(Range(), []string{"a"}, current, 5, "").AppendTo(nil)))
	require.Empty(t, meta.OwnedPartitions)
	require.Nil(t, meta.UserData)
}

func TestAssignmentRoundTripAndInterop(t *testing.T) {
	a := Assignment{Partitions: map[string][]int32{"b": {2, 1}, "a": {0}}, UserData: []byte("x")}
	enc := a.AppendTo(nil)
	got, err := DecodeAssignment(enc)
	require.NoError(t, err)
	require.Equal(t, Assignment{Partitions: map[string][]int32{"a": {0}, "b": {1, 2}}, UserData: []byte("x")}, got)

	kgoGot, err := kgo.ParseConsumerSyncAssignment(enc)
	require.NoError(t, err)
	require.Equal(t, map[string][]int32{"a": {0}, "b": {1, 2}}, kgoGot)

	// Every version has v0's layout; a v3 from Java decodes.
	var ka kmsg.ConsumerMemberAssignment
	ka.Version = 3
	ka.Topics = []kmsg.ConsumerMemberAssignmentTopic{{Topic: "t", Partitions: []int32{5}}}
	got, err = DecodeAssignment(ka.AppendTo(nil))
	require.NoError(t, err)
	require.Equal(t, int16(3), got.Version)
	require.Equal(t, map[string][]int32{"t": {5}}, got.Partitions)

	// Zero bytes: the coordinator's answer for a member the leader left out.
	got, err = DecodeAssignment(nil)
	require.NoError(t, err)
	require.Empty(t, got.Partitions)

	_, err = DecodeAssignment([]byte{0, 0, 0, 0, 0, 9})
	require.ErrorIs(t, err, ErrMalformed)
	_, err = DecodeAssignment([]byte{0x80, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	require.ErrorIs(t, err, ErrMalformed, "negative version")
}

func TestDecodeMembers(t *testing.T) {
	good := kmsg.NewJoinGroupResponseMember()
	good.MemberID = "m1"
	good.InstanceID = kmsg.StringPtr("static-1")
	good.ProtocolMetadata = kgo.RoundRobinBalancer().JoinGroupMetadata([]string{"t"}, nil, -1)
	ms, err := DecodeMembers([]kmsg.JoinGroupResponseMember{good})
	require.NoError(t, err)
	require.Equal(t, "m1", ms[0].ID)
	require.Equal(t, "static-1", ms[0].InstanceID)
	require.Equal(t, []string{"t"}, ms[0].Topics)

	require.Equal(t, []string{"a", "b", "t"}, MemberTopics(append(ms, Member{Subscription: sub("b", "a")})))

	bad := kmsg.NewJoinGroupResponseMember()
	bad.MemberID = "m2"
	bad.ProtocolMetadata = []byte{0xff}
	_, err = DecodeMembers([]kmsg.JoinGroupResponseMember{good, bad})
	require.ErrorIs(t, err, ErrMalformed)
	require.ErrorContains(t, err, `"m2"`)
}

// FuzzDecodeSubscription: decoding never panics, and whatever decodes
// re-encodes to something that decodes to the same subscription (the
// leader can always forward what it understood).
func FuzzDecodeSubscription(f *testing.F) {
	f.Add(kgo.CooperativeStickyBalancer().JoinGroupMetadata([]string{"a", "b"}, map[string][]int32{"a": {0, 1}}, 3))
	f.Add(kgo.RangeBalancer().JoinGroupMetadata([]string{"a"}, nil, -1))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeSubscription(data)
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			return
		}
		require.True(t, slices.IsSorted(s.Topics))
		again, err := DecodeSubscription(s.AppendTo(nil))
		require.NoError(t, err)
		s.Version = SubscriptionVersion
		require.Equal(t, s, again)
	})
}

// FuzzDecodeAssignment: never panics; what decodes round-trips.
func FuzzDecodeAssignment(f *testing.F) {
	a := Assignment{Partitions: map[string][]int32{"t": {0, 1}}, UserData: []byte{1}}
	f.Add(a.AppendTo(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeAssignment(data)
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			return
		}
		again, err := DecodeAssignment(got.AppendTo(nil))
		require.NoError(t, err)
		got.Version = 0
		require.Equal(t, got, again)
	})
}
