package consumerproto

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ProtocolType is the JoinGroup protocol type of consumer groups. Connect
// workers and other users of the classic group protocol use other types,
// and the coordinator only lets members of one type share a group.
const ProtocolType = "consumer"

// SubscriptionVersion is the ConsumerProtocolSubscription version that
// [Subscription.AppendTo] writes: v3, the newest kmsg knows and the one Java
// (3.5+) and franz-go send. It carries every field: owned partitions (v1,
// KIP-429), generation (v2, KIP-792) and rack (v3, KIP-881). Older leaders
// read it anyway, because the schema only ever appends fields and every
// client parses a newer version as the newest it knows.
const SubscriptionVersion int16 = 3

// Subscription is a member's JoinGroup metadata in Kafka's ConsumerProtocol
// (ConsumerProtocolSubscription, kmsg.ConsumerMemberMetadata).
type Subscription struct {
	// Version is the version the member wrote. Decoding fills it in;
	// AppendTo ignores it and writes SubscriptionVersion.
	Version int16
	// Topics the member wants to consume. Decoding sorts them and drops
	// duplicates, so that no assignor counts a member twice for a topic.
	Topics []string
	// UserData is opaque to the protocol; assignors put their own state
	// there (see [Assignor.UserData]). Nil is sent as Kafka's null.
	UserData []byte
	// Owned is what the member holds while it joins (v1+), topic →
	// partitions. Cooperative members keep consuming these through the
	// rebalance; eager members have revoked everything and send nothing.
	Owned map[string][]int32
	// Generation is the group generation Owned comes from (v2+), or -1
	// when the member has none. Zero is a real generation, so a
	// Subscription built by hand must set -1 before the first join;
	// NewSubscription takes it explicitly.
	Generation int32
	// Rack is the member's client.rack (v3+), "" when unset.
	Rack string
}

// AppendTo appends the subscription encoded at SubscriptionVersion.
//
// Topics and owned partitions are written sorted: the coordinator compares
// a rejoining member's metadata byte for byte to decide whether the group
// must rebalance, so a map's random order would rebalance for nothing
// (KAFKA-12898 is the Java bug from unsorted owned topics).
func (s Subscription) AppendTo(dst []byte) []byte {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = SubscriptionVersion
	meta.Topics = slices.Sorted(slices.Values(s.Topics))
	meta.Topics = slices.Compact(meta.Topics)
	meta.UserData = s.UserData
	for _, topic := range sortedKeys(s.Owned) {
		owned := kmsg.NewConsumerMemberMetadataOwnedPartition()
		owned.Topic = topic
		owned.Partitions = slices.Sorted(slices.Values(s.Owned[topic]))
		meta.OwnedPartitions = append(meta.OwnedPartitions, owned)
	}
	meta.Generation = s.Generation
	if s.Rack != "" {
		meta.Rack = &s.Rack
	}
	return meta.AppendTo(dst)
}

// ErrMalformed is wrapped by every decoding error of the ConsumerProtocol.
var ErrMalformed = errors.New("malformed consumer protocol data")

// DecodeSubscription decodes a member's JoinGroup metadata as any client
// writes it: Java, librdkafka and franz-go, every version from 0 to 3, and
// newer versions too, of which it reads the fields it knows (Java does the
// same: the schema only appends fields).
//
// Some clients announced v1 without writing its owned partitions (franz-go
// issue #493 works around the same thing). So when a version fails to
// parse, lower versions are tried in turn: a v1 body that ends after the
// user data is accepted as a v0 body. Negative versions and bodies no
// version can parse return an error wrapping [ErrMalformed]. The result
// never aliases data.
func DecodeSubscription(data []byte) (Subscription, error) {
	if len(data) < 2 {
		return Subscription{}, fmt.Errorf("%w: subscription of %d bytes", ErrMalformed, len(data))
	}
	declared := int16(data[0])<<8 | int16(data[1])
	if declared < 0 {
		return Subscription{}, fmt.Errorf("%w: subscription version %d", ErrMalformed, declared)
	}
	// kmsg reads the version from the body, so a lower version is tried
	// on a copy whose first two bytes say so; data stays untouched.
	buf := slices.Clone(data)
	var meta kmsg.ConsumerMemberMetadata
	var err error
	for v := min(declared, SubscriptionVersion); v >= 0; v-- {
		buf[0], buf[1] = byte(uint16(v)>>8), byte(v)
		if err = meta.ReadFrom(buf); err == nil {
			break
		}
	}
	if err != nil {
		return Subscription{}, fmt.Errorf("%w: subscription v%d: %v", ErrMalformed, declared, err)
	}
	s := Subscription{
		Version:    declared,
		Topics:     slices.Compact(slices.Sorted(slices.Values(meta.Topics))),
		UserData:   meta.UserData, // kmsg aliases buf, which is ours
		Generation: meta.Generation,
	}
	if meta.Rack != nil {
		s.Rack = *meta.Rack
	}
	for _, o := range meta.OwnedPartitions {
		if s.Owned == nil {
			s.Owned = make(map[string][]int32, len(meta.OwnedPartitions))
		}
		// A topic listed twice is merged rather than overwritten, so no
		// claim is lost: the cooperative assignor must see every
		// partition a member may still be consuming.
		s.Owned[o.Topic] = append(s.Owned[o.Topic], o.Partitions...)
	}
	for topic, ps := range s.Owned {
		s.Owned[topic] = slices.Compact(slices.Sorted(slices.Values(ps)))
	}
	return s, nil
}

// Assignment is what the group leader sends one member in SyncGroup, in
// Kafka's ConsumerProtocol (ConsumerProtocolAssignment,
// kmsg.ConsumerMemberAssignment).
type Assignment struct {
	// Version is the version the leader wrote; AppendTo writes 0.
	Version int16
	// Partitions is topic → partitions, sorted on decode.
	Partitions map[string][]int32
	// UserData is assignor data for the member; nil is Kafka's null.
	UserData []byte
}

// AppendTo appends the assignment encoded as version 0, topics and
// partitions sorted so that equal assignments encode to equal bytes.
//
// Versions 1 to 3 of ConsumerProtocolAssignment have exactly v0's fields,
// so v0 loses nothing and is the one version every client ever shipped
// reads without relying on forward compatibility (franz-go writes v0 too).
func (a Assignment) AppendTo(dst []byte) []byte {
	var ka kmsg.ConsumerMemberAssignment
	for _, topic := range sortedKeys(a.Partitions) {
		t := kmsg.NewConsumerMemberAssignmentTopic()
		t.Topic = topic
		t.Partitions = slices.Sorted(slices.Values(a.Partitions[topic]))
		ka.Topics = append(ka.Topics, t)
	}
	ka.UserData = a.UserData
	return ka.AppendTo(dst)
}

// DecodeAssignment decodes a SyncGroup member assignment of any version.
//
// An empty body is an empty assignment, not an error: the coordinator sends
// zero bytes to members the leader left out of its SyncGroup request, and
// some leaders do leave out members that get nothing.
func DecodeAssignment(data []byte) (Assignment, error) {
	if len(data) == 0 {
		return Assignment{}, nil
	}
	var ka kmsg.ConsumerMemberAssignment
	if err := ka.ReadFrom(data); err != nil {
		return Assignment{}, fmt.Errorf("%w: assignment: %v", ErrMalformed, err)
	}
	if ka.Version < 0 {
		return Assignment{}, fmt.Errorf("%w: assignment version %d", ErrMalformed, ka.Version)
	}
	a := Assignment{Version: ka.Version}
	if ka.UserData != nil {
		a.UserData = slices.Clone(ka.UserData) // kmsg aliases data
	}
	for _, t := range ka.Topics {
		if a.Partitions == nil {
			a.Partitions = make(map[string][]int32, len(ka.Topics))
		}
		a.Partitions[t.Topic] = append(a.Partitions[t.Topic], t.Partitions...)
	}
	for topic, ps := range a.Partitions {
		a.Partitions[topic] = slices.Compact(slices.Sorted(slices.Values(ps)))
	}
	return a, nil
}

// Member is one group member as the leader sees it in JoinGroup's
// response: the input of [Assignor.Assign].
type Member struct {
	// ID is the coordinator-given member id; plans are keyed by it.
	ID string
	// InstanceID is the member's group.instance.id (static membership,
	// KIP-345), "" for dynamic members. Range and round robin order
	// members by it when present, so a restarted static member with a
	// new member id gets the same partitions back.
	InstanceID string
	Subscription
}

// DecodeMembers decodes the members of a JoinGroup response (as the leader
// receives them) into assignor input. A member whose metadata does not
// decode fails the whole call: assigning without it would leave it
// silently idle, and the group's leader is better off reporting the error.
func DecodeMembers(members []kmsg.JoinGroupResponseMember) ([]Member, error) {
	out := make([]Member, 0, len(members))
	for i := range members {
		m := &members[i]
		sub, err := DecodeSubscription(m.ProtocolMetadata)
		if err != nil {
			return nil, fmt.Errorf("member %q: %w", m.MemberID, err)
		}
		member := Member{ID: m.MemberID, Subscription: sub}
		if m.InstanceID != nil {
			member.InstanceID = *m.InstanceID
		}
		out = append(out, member)
	}
	return out, nil
}

// MemberTopics returns every topic some member subscribes to, sorted: the
// topics whose partition counts the leader must know before it assigns.
// They include topics the leader itself does not consume.
func MemberTopics(members []Member) []string {
	set := make(map[string]struct{})
	for i := range members {
		for _, topic := range members[i].Topics {
			set[topic] = struct{}{}
		}
	}
	return sortedKeys(set)
}

// NewSubscription builds the subscription a member sends in JoinGroup when
// it uses assignor a: current is what the member was assigned in the
// generation it last synced (nil on its first join), generation that
// generation's id (-1 before the first).
//
// Only cooperative assignors send current as owned partitions: an eager
// member has revoked everything before it rejoins, and claiming partitions
// it no longer consumes would make a cooperative leader hold them back for
// a revocation that never comes. Eager sticky carries current in its user
// data instead, as Java's StickyAssignor does.
func NewSubscription(a Assignor, topics []string, current map[string][]int32, generation int32, rack string) Subscription {
	s := Subscription{
		Version:    SubscriptionVersion,
		Topics:     slices.Compact(slices.Sorted(slices.Values(topics))),
		UserData:   a.UserData(current, generation),
		Generation: generation,
		Rack:       rack,
	}
	if a.Cooperative() && len(current) > 0 {
		s.Owned = current
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
