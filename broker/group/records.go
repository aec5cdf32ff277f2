package group

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record versions, as Kafka writes them (4.0). The key's leading int16 says
// what a record is: 0 and 1 are offset commits, 2 is group metadata, 3 and
// up are KIP-848/share-group records this package does not implement.
const (
	offsetKeyVersion = 1
	groupKeyVersion  = 2
	// GroupMetadataValue v3 carries group.instance.id (KIP-345); Kafka 4.0
	// still writes v3.
	groupValueVersion = 3
	// OffsetCommitValue v3 carries the leader epoch (KIP-320); v1 is
	// written instead when the commit has an explicit expiry time, the
	// only version with that field, as Kafka does.
	offsetValueVersion       = 3
	offsetValueExpireVersion = 1
)

// storeGroup records the group's current metadata: its generation, the
// selected protocol, the leader and, per member, the metadata for the
// selected protocol and the assignment.
func (g *group) storeGroup(now int64) {
	key := kmsg.NewGroupMetadataKey()
	key.Version = groupKeyVersion
	key.Group = g.id

	v := kmsg.NewGroupMetadataValue()
	v.Version = groupValueVersion
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	if g.protocol != "" {
		v.Protocol = kmsg.StringPtr(g.protocol)
	}
	if g.leader != "" && len(g.members) > 0 {
		v.Leader = kmsg.StringPtr(g.leader)
	}
	v.CurrentStateTimestamp = g.stateSince
	if g.stateSince == 0 {
		v.CurrentStateTimestamp = -1
	}
	for _, m := range g.ordered() {
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID = m.id
		vm.InstanceID = m.instanceID
		vm.ClientID = m.clientID
		vm.ClientHost = m.clientHost
		vm.RebalanceTimeoutMillis = m.rebalanceTimeoutMs
		vm.SessionTimeoutMillis = m.sessionTimeoutMs
		vm.Subscription = orEmpty(m.metadata(g.protocol))
		vm.Assignment = orEmpty(m.assignment)
		v.Members = append(v.Members, vm)
	}
	g.c.record(newRecord(g.partition, key.AppendTo(nil), v.AppendTo(nil)))
}

func (g *group) storeGroupTombstone() {
	key := kmsg.NewGroupMetadataKey()
	key.Version = groupKeyVersion
	key.Group = g.id
	g.c.record(newRecord(g.partition, key.AppendTo(nil), nil))
}

func offsetKey(group, topic string, partition int32) []byte {
	key := kmsg.NewOffsetCommitKey()
	key.Version = offsetKeyVersion
	key.Group = group
	key.Topic = topic
	key.Partition = partition
	return key.AppendTo(nil)
}

// storeOffset records a committed offset. Its position in the log decides
// whether a transactional commit of the same partition, completed later,
// replaces it (see completeTxn), so it takes the next sequence number.
func (g *group) storeOffset(topic string, partition int32, o *offset) {
	o.seq = g.c.nextSeq()
	g.c.record(newRecord(g.partition, offsetKey(g.id, topic, partition), offsetValue(o)))
}

func offsetValue(o *offset) []byte {
	v := kmsg.NewOffsetCommitValue()
	v.Version = offsetValueVersion
	v.Offset = o.offset
	v.LeaderEpoch = o.leaderEpoch
	v.Metadata = o.metadata
	v.CommitTimestamp = o.commitMs
	if o.expireMs >= 0 {
		v.Version = offsetValueExpireVersion
		v.ExpireTimestamp = o.expireMs
	}
	return v.AppendTo(nil)
}

// deleteOffset writes a tombstone for a partition that has a committed or
// a pending transactional offset, and forgets both: Kafka's tombstone
// removes the pending offsets of every open transaction of the group too.
func (g *group) deleteOffset(topic string, partition int32) {
	if g.dropOffset(topic, partition) {
		g.c.record(newRecord(g.partition, offsetKey(g.id, topic, partition), nil))
	}
}

// dropOffset is the state change of an offset tombstone; it reports
// whether there was anything to drop.
func (g *group) dropOffset(topic string, partition int32) bool {
	found := false
	if ps := g.offsets[topic]; ps[partition] != nil {
		found = true
		delete(ps, partition)
		if len(ps) == 0 {
			delete(g.offsets, topic)
		}
	}
	for pid, t := range g.txns {
		if ps := t.offsets[topic]; ps[partition] != nil {
			found = true
			delete(ps, partition)
			if len(ps) == 0 {
				delete(t.offsets, topic)
			}
			if len(t.offsets) == 0 {
				// Nothing left for the marker to apply: the group no
				// longer has an open transaction of this producer.
				delete(g.txns, pid)
			}
		}
	}
	return found
}

func orEmpty(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// ErrMalformedRecord is returned by Load for a key or value that does not
// decode.
var ErrMalformedRecord = errors.New("malformed __consumer_offsets record")

// Load applies one __consumer_offsets record, in log order: offset commits
// set or (tombstone) delete an offset, group metadata replaces or
// (tombstone) forgets a group's membership. A group with members comes back
// Stable with its generation, protocol, leader and assignments; members
// have a full session timeout from the Loaded call to heartbeat. Records of
// the KIP-848 consumer and share group protocols are skipped. Call Loaded
// when the partition is read to its end.
func (c *Coordinator) Load(key, value []byte) error {
	if len(key) < 2 {
		return fmt.Errorf("%w: key of %d bytes", ErrMalformedRecord, len(key))
	}
	switch version := int16(binary.BigEndian.Uint16(key)); {
	case version == 0 || version == 1:
		return c.loadOffset(key, value)
	case version == groupKeyVersion:
		return c.loadGroup(key, value)
	case version > groupKeyVersion:
		return nil // a record type of a newer group protocol
	default:
		return fmt.Errorf("%w: key version %d", ErrMalformedRecord, version)
	}
}

func (c *Coordinator) loadOffset(key, value []byte) error {
	var k kmsg.OffsetCommitKey
	if err := k.ReadFrom(key); err != nil {
		return fmt.Errorf("%w: offset commit key: %v", ErrMalformedRecord, err)
	}
	if value == nil {
		if g := c.groups[k.Group]; g != nil {
			g.dropOffset(k.Topic, k.Partition)
			c.dropIfUnused(g)
		}
		return nil
	}
	o, err := c.decodeOffset(value)
	if err != nil {
		return err
	}
	g, _ := c.getOrCreate(k.Group, true)
	setOffset(g.offsets, k.Topic, k.Partition, o)
	return nil
}

// decodeOffset reads an OffsetCommitValue of any version; the offset takes
// the next sequence number, being the latest record read.
func (c *Coordinator) decodeOffset(value []byte) (*offset, error) {
	var v kmsg.OffsetCommitValue
	if err := v.ReadFrom(value); err != nil {
		return nil, fmt.Errorf("%w: offset commit value: %v", ErrMalformedRecord, err)
	}
	o := &offset{offset: v.Offset, leaderEpoch: -1, metadata: v.Metadata, commitMs: v.CommitTimestamp, expireMs: -1, seq: c.nextSeq()}
	if v.Version >= 3 {
		o.leaderEpoch = v.LeaderEpoch
	}
	if v.Version == 1 {
		o.expireMs = v.ExpireTimestamp
	}
	return o, nil
}

// setOffset puts o in a topic → partition → offset map.
func setOffset(m map[string]map[int32]*offset, topic string, partition int32, o *offset) {
	ps := m[topic]
	if ps == nil {
		ps = make(map[int32]*offset)
		m[topic] = ps
	}
	ps[partition] = o
}

func (c *Coordinator) loadGroup(key, value []byte) error {
	var k kmsg.GroupMetadataKey
	if err := k.ReadFrom(key); err != nil {
		return fmt.Errorf("%w: group metadata key: %v", ErrMalformedRecord, err)
	}
	var v kmsg.GroupMetadataValue
	if value != nil {
		if err := v.ReadFrom(value); err != nil {
			return fmt.Errorf("%w: group metadata value: %v", ErrMalformedRecord, err)
		}
	}
	// The record replaces the group's membership wholesale; its offsets
	// are separate records and stay.
	// So are pending transactional offsets.
	var offsets map[string]map[int32]*offset
	var txns map[int64]*txnOffsets
	if old := c.groups[k.Group]; old != nil {
		offsets, txns = old.offsets, old.txns
		delete(c.groups, k.Group)
	}
	g, _ := c.getOrCreate(k.Group, true)
	if offsets != nil {
		g.offsets, g.txns = offsets, txns
	}
	if value == nil {
		c.dropIfUnused(g)
		return nil
	}
	g.protocolType = v.ProtocolType
	g.generation = v.Generation
	if v.Protocol != nil {
		g.protocol = *v.Protocol
	}
	if v.CurrentStateTimestamp > 0 {
		g.stateSince = v.CurrentStateTimestamp
	}
	for _, vm := range v.Members {
		m := &member{
			id:                 vm.MemberID,
			instanceID:         vm.InstanceID,
			clientID:           vm.ClientID,
			clientHost:         vm.ClientHost,
			rebalanceTimeoutMs: vm.RebalanceTimeoutMillis,
			sessionTimeoutMs:   vm.SessionTimeoutMillis,
			protocolType:       v.ProtocolType,
			// Kafka keeps only the metadata of the selected protocol.
			protocols:  []kmsg.JoinGroupRequestProtocol{{Name: g.protocol, Metadata: vm.Subscription}},
			assignment: vm.Assignment,
		}
		if m.rebalanceTimeoutMs < 0 { // GroupMetadataValue v0 had none
			m.rebalanceTimeoutMs = m.sessionTimeoutMs
		}
		g.add(m)
	}
	if v.Leader != nil && g.members[*v.Leader] != nil {
		g.leader = *v.Leader
	}
	if len(g.members) > 0 {
		g.state = stateStable
	}
	g.computeSubscribed()
	return nil
}

// nowMs is the one place wall-clock time becomes the coordinator's
// millisecond clock.
func nowMs(t time.Time) int64 { return t.UnixMilli() }
