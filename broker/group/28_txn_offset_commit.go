package group

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// txnOffsets are the offsets one producer committed to a group in its open
// transaction (KIP-98): they count only once the transaction's commit
// marker is in the __consumer_offsets partition.
type txnOffsets struct {
	// epoch is the highest producer epoch seen with these offsets, -1 when
	// they were loaded (the log's batches carry it, Load is not told).
	epoch   int16
	offsets map[string]map[int32]*offset
}

// TxnOffsetCommit (key 28), every version kmsg has (v0-v6: later versions
// add nothing this state machine reads).
//
// The offsets are held pending for (group, producer) and come out of
// Drain as records with ProducerID and ProducerEpoch set: the owner
// appends them as a transactional batch of that producer. OffsetFetch does
// not show them until CompleteTxn applies the transaction's commit marker;
// an OffsetFetch with RequireStable answers UNSTABLE_OFFSET_COMMIT for
// their partitions meanwhile.
//
// v3+ carries the member's generation, member id and instance id (KIP-447)
// and is validated as OffsetCommit is (ILLEGAL_GENERATION,
// UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID), except that, as in Kafka, a
// transactional commit is accepted while the group completes a rebalance,
// and one without member identity (every commit before v3) is accepted
// whatever the group's state. A group that does not exist is created
// Empty, without protocol type, for a commit with generation -1, as for a
// simple consumer; with a generation the answer is ILLEGAL_GENERATION.
//
// The owner must have checked, before calling, that the producer id and
// epoch are the transaction's current ones and that the group was added
// to it (AddOffsetsToTxn): this package keeps no producer state beyond
// refusing, with INVALID_PRODUCER_EPOCH, an epoch older than one already
// pending for the same producer in the group.
func (c *Coordinator) TxnOffsetCommit(now time.Time, req *kmsg.TxnOffsetCommitRequest) *kmsg.TxnOffsetCommitResponse {
	ms := nowMs(now)
	c.observe(ms)
	fillAll := func(err *tributary.Error) *kmsg.TxnOffsetCommitResponse {
		return TxnOffsetCommitAnswer(req, err.Code)
	}
	if req.Group == "" {
		return fillAll(tributary.ErrInvalidGroupId)
	}
	if req.ProducerID < 0 {
		// Not a producer: there is no transaction the offsets could join.
		return fillAll(tributary.ErrInvalidProducerIdMapping)
	}
	generation, memberID, instanceID := int32(-1), "", (*string)(nil)
	if req.Version >= 3 {
		generation, memberID, instanceID = req.Generation, req.MemberID, req.InstanceID
	}
	g, created := c.getOrCreate(req.Group, generation < 0)
	if g == nil {
		return fillAll(tributary.ErrIllegalGeneration)
	}
	defer func() {
		if created {
			c.dropIfUnused(g)
		}
	}()
	if err := g.validateCommit(generation, memberID, instanceID, true); err != nil {
		return fillAll(err)
	}
	t := g.txns[req.ProducerID]
	if t != nil && req.ProducerEpoch < t.epoch {
		return fillAll(tributary.ErrInvalidProducerEpoch)
	}

	resp := TxnOffsetCommitAnswer(req, 0)
	for i, rt := range req.Topics {
		for j, p := range rt.Partitions {
			leaderEpoch := p.LeaderEpoch
			if req.Version < 2 {
				leaderEpoch = -1 // the field does not exist before v2
			}
			o, err := c.newOffset(p.Offset, leaderEpoch, p.Metadata, ms)
			if err != nil {
				resp.Topics[i].Partitions[j].ErrorCode = err.Code
				continue
			}
			o.seq = c.nextSeq()
			if t == nil {
				t = &txnOffsets{epoch: req.ProducerEpoch, offsets: make(map[string]map[int32]*offset)}
				g.txns[req.ProducerID] = t
			}
			t.epoch = max(t.epoch, req.ProducerEpoch)
			setOffset(t.offsets, rt.Topic, p.Partition, o)
			c.record(Record{
				Partition:     g.partition,
				Key:           offsetKey(g.id, rt.Topic, p.Partition),
				Value:         offsetValue(o),
				ProducerID:    req.ProducerID,
				ProducerEpoch: req.ProducerEpoch,
			})
		}
	}
	return resp
}

// CompleteTxn applies (commit) or drops (abort) the pending offsets of
// producerID in every group of __consumer_offsets partition `partition`.
// The owner calls it after writing the transaction's marker to that
// partition; the marker is the only record, so nothing comes out of Drain.
//
// A committed offset replaces the group's offset for its partition only if
// its record is later in the log than the record of the offset the group
// has, as Kafka decides: an OffsetCommit appended after the transactional
// offset, but before the marker, wins.
func (c *Coordinator) CompleteTxn(now time.Time, partition int32, producerID int64, commit bool) {
	c.observe(nowMs(now))
	c.completeTxn(partition, producerID, commit)
}

// LoadMarker replays a transaction marker of producerID found in
// __consumer_offsets partition `partition`, as CompleteTxn applies one.
func (c *Coordinator) LoadMarker(partition int32, producerID int64, commit bool) {
	c.completeTxn(partition, producerID, commit)
}

func (c *Coordinator) completeTxn(partition int32, producerID int64, commit bool) {
	// Map order does not matter: nothing is emitted and groups are
	// independent of one another.
	for _, g := range c.groups {
		if g.partition != partition {
			continue
		}
		t := g.txns[producerID]
		if t == nil {
			continue
		}
		delete(g.txns, producerID)
		if commit {
			for topic, ps := range t.offsets {
				for p, o := range ps {
					if cur := g.offsets[topic][p]; cur == nil || o.seq > cur.seq {
						setOffset(g.offsets, topic, p, o)
					}
				}
			}
		}
		// A simple group that only this transaction created (its abort,
		// or a commit tombstoned meanwhile) leaves nothing behind.
		c.dropIfUnused(g)
	}
}

// LoadTxn replays a record found inside a transactional batch of
// producerID in __consumer_offsets partition `partition`, in log order
// with Load. An offset commit is pending until LoadMarker replays the
// transaction's marker (a transaction without a marker yet stays pending,
// and RequireStable fetches of its partitions answer
// UNSTABLE_OFFSET_COMMIT). An offset tombstone deletes both the committed
// and every pending offset of its partition, as Load's does; other record
// types are not written transactionally and are applied as Load does.
func (c *Coordinator) LoadTxn(partition int32, producerID int64, key, value []byte) error {
	if len(key) < 2 {
		return fmt.Errorf("%w: key of %d bytes", ErrMalformedRecord, len(key))
	}
	if version := int16(binary.BigEndian.Uint16(key)); version != 0 && version != 1 || value == nil || producerID < 0 {
		return c.Load(key, value)
	}
	var k kmsg.OffsetCommitKey
	if err := k.ReadFrom(key); err != nil {
		return fmt.Errorf("%w: offset commit key: %v", ErrMalformedRecord, err)
	}
	o, err := c.decodeOffset(value)
	if err != nil {
		return err
	}
	g, _ := c.getOrCreate(k.Group, true)
	t := g.txns[producerID]
	if t == nil {
		t = &txnOffsets{epoch: -1, offsets: make(map[string]map[int32]*offset)}
		g.txns[producerID] = t
	}
	setOffset(t.offsets, k.Topic, k.Partition, o)
	return nil
}

// hasPendingTxn reports whether an open transaction holds an offset for
// the group's topic partition.
func (g *group) hasPendingTxn(topic string, partition int32) bool {
	for _, t := range g.txns {
		if t.offsets[topic][partition] != nil {
			return true
		}
	}
	return false
}

// TxnOffsetCommitAnswer is a response naming every partition of req with
// code: an error for all of them, or 0 for a response to fill in. The
// broker answers with it too when the request fails before the
// coordinator.
func TxnOffsetCommitAnswer(req *kmsg.TxnOffsetCommitRequest, code int16) *kmsg.TxnOffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
