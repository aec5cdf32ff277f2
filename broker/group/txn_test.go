package group

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

var codeUnstable = tributary.ErrUnstableOffsetCommit.Code

// marker is a transaction marker the harness wrote to __consumer_offsets
// after the first `at` records.
type marker struct {
	at         int
	partition  int32
	producerID int64
	commit     bool
}

// txnLog keeps the markers of a harness, so the log (records and markers
// in order) can be replayed.
type txnLog struct {
	h       *harness
	markers []marker
}

func (h *harness) txns() *txnLog { return &txnLog{h: h} }

// producer is a scripted transactional producer committing offsets for a
// group, optionally as a member (TxnOffsetCommit v3+).
type producer struct {
	h       *harness
	id      int64
	epoch   int16
	version int16
	member  *consumer // nil: no member identity (generation -1)
}

func (h *harness) producer(id int64) *producer {
	return &producer{h: h, id: id, version: 4}
}

func (p *producer) as(m *consumer) *producer { p.member = m; return p }

func (p *producer) request(group string, offsets map[string]int64) *kmsg.TxnOffsetCommitRequest {
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.Version = p.version
	req.TransactionalID = "txn"
	req.Group = group
	req.ProducerID, req.ProducerEpoch = p.id, p.epoch
	if m := p.member; m != nil {
		req.Generation, req.MemberID, req.InstanceID = m.gen, m.memberID, m.instance
	}
	for _, topic := range sortedKeys(offsets) {
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = 0, offsets[topic], 3, kmsg.StringPtr("txn")
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	return req
}

// commit sends one TxnOffsetCommit for partition 0 of each topic and
// returns the first partition's error code, checking they all agree.
func (p *producer) commit(group string, offsets map[string]int64) int16 {
	p.h.t.Helper()
	resp := p.h.c.TxnOffsetCommit(p.h.now, p.request(group, offsets))
	p.h.drain()
	require.Len(p.h.t, resp.Topics, len(offsets))
	code := resp.Topics[0].Partitions[0].ErrorCode
	for _, rt := range resp.Topics {
		require.Len(p.h.t, rt.Partitions, 1)
		assert.Equal(p.h.t, code, rt.Partitions[0].ErrorCode, rt.Topic)
	}
	return code
}

func sortedKeys(m map[string]int64) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}

// end writes the marker of producer's transaction to group's partition
// and applies it.
func (l *txnLog) end(group string, producerID int64, commit bool) {
	part := Partition(group, 50)
	l.markers = append(l.markers, marker{at: len(l.h.records), partition: part, producerID: producerID, commit: commit})
	l.h.c.CompleteTxn(l.h.now, part, producerID, commit)
	l.h.drain()
	require.Empty(l.h.t, l.h.records[l.markers[len(l.markers)-1].at:], "CompleteTxn writes nothing")
}

// replay rebuilds a coordinator from the records and markers, as the
// broker does from __consumer_offsets: transactional records through
// LoadTxn, markers through LoadMarker, the rest through Load.
func (l *txnLog) replay() *Coordinator {
	l.h.t.Helper()
	c, err := New(l.h.c.cfg)
	require.NoError(l.h.t, err)
	mi := 0
	apply := func(upTo int) {
		for ; mi < len(l.markers) && l.markers[mi].at <= upTo; mi++ {
			m := l.markers[mi]
			c.LoadMarker(m.partition, m.producerID, m.commit)
		}
	}
	for i, r := range l.h.records {
		apply(i)
		if r.ProducerID >= 0 {
			require.NoError(l.h.t, c.LoadTxn(r.Partition, r.ProducerID, r.Key, r.Value))
		} else {
			require.NoError(l.h.t, c.Load(r.Key, r.Value))
		}
	}
	apply(len(l.h.records))
	c.Loaded(l.h.now)
	return c
}

// fetched is one partition's OffsetFetch answer.
type fetched struct {
	offset int64
	code   int16
}

// fetch asks for partition 0 of topic in group with OffsetFetch v8 (the
// multi-group form), optionally RequireStable.
func fetch(c *Coordinator, now time.Time, group, topic string, stable bool) fetched {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 8
	req.RequireStable = stable
	req.Groups = []kmsg.OffsetFetchRequestGroup{{Group: group, Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: topic, Partitions: []int32{0}}}}}
	rg := c.OffsetFetch(now, req).Groups[0]
	if rg.ErrorCode != 0 {
		return fetched{offset: -2, code: rg.ErrorCode}
	}
	p := rg.Topics[0].Partitions[0]
	return fetched{offset: p.Offset, code: p.ErrorCode}
}

// observable is everything OffsetFetch shows of groups' offsets in
// partitions 0-1 of topics, with and without RequireStable, plus the whole
// snapshot (members and all committed offsets).
func observable(t *testing.T, c *Coordinator, now time.Time, groups []string, topics ...string) []any {
	var out []any
	d, f := snapshot(t, c, now)
	out = append(out, c.Groups(), d, f)
	for _, stable := range []bool{false, true} {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version = 9
		req.RequireStable = stable
		for _, g := range groups {
			rg := kmsg.OffsetFetchRequestGroup{Group: g}
			for _, topic := range topics {
				rg.Topics = append(rg.Topics, kmsg.OffsetFetchRequestGroupTopic{Topic: topic, Partitions: []int32{0, 1}})
			}
			req.Groups = append(req.Groups, rg)
		}
		out = append(out, c.OffsetFetch(now, req))
	}
	return out
}

func TestTxnOffsetCommitVisibleOnlyAfterCommitMarker(t *testing.T) {
	h := newHarness(t)
	l := h.txns()
	p := h.producer(7)
	p.epoch = 2

	require.Zero(t, p.commit("g", map[string]int64{"t": 10, "u": 20}))
	assert.Contains(t, h.c.Groups(), "g", "a simple group is created, as for OffsetCommit")
	assert.Equal(t, "Empty", h.state("g"))

	// Written as a transactional batch of the producer.
	require.Len(t, h.records, 2)
	for _, r := range h.records {
		assert.Equal(t, int64(7), r.ProducerID)
		assert.Equal(t, int16(2), r.ProducerEpoch)
		assert.Equal(t, Partition("g", 50), r.Partition)
		var v kmsg.OffsetCommitValue
		require.NoError(t, v.ReadFrom(r.Value))
		assert.Equal(t, int16(3), v.Version, "the value version Kafka writes")
		assert.Equal(t, int32(3), v.LeaderEpoch)
	}

	// Invisible until the marker; RequireStable says why.
	assert.Equal(t, fetched{-1, 0}, fetch(h.c, h.now, "g", "t", false))
	assert.Equal(t, fetched{-1, codeUnstable}, fetch(h.c, h.now, "g", "t", true))
	assert.Equal(t, fetched{-1, 0}, fetch(h.c, h.now, "g", "other", true), "only partitions with a pending offset are unstable")

	// v7 (single group) carries the error on the partition too; v6 has no
	// RequireStable and never sees it.
	f7 := kmsg.NewPtrOffsetFetchRequest()
	f7.Version = 7
	f7.Group = "g"
	f7.RequireStable = true
	f7.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0}}}
	r7 := h.c.OffsetFetch(h.now, f7)
	assert.Zero(t, r7.ErrorCode)
	assert.Equal(t, codeUnstable, r7.Topics[0].Partitions[0].ErrorCode)
	assert.Equal(t, int64(-1), r7.Topics[0].Partitions[0].Offset)
	f7.Version = 6
	assert.Zero(t, h.c.OffsetFetch(h.now, f7).Topics[0].Partitions[0].ErrorCode)

	// Asking for every offset lists committed partitions only, as Kafka.
	all := kmsg.NewPtrOffsetFetchRequest()
	all.Version = 9
	all.RequireStable = true
	all.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g"}}
	assert.Empty(t, h.c.OffsetFetch(h.now, all).Groups[0].Topics)

	// Markers of another producer, or in another partition, change nothing.
	l.end("g", 8, true)
	h.c.CompleteTxn(h.now, Partition("g", 50)+1, 7, true)
	assert.Equal(t, fetched{-1, codeUnstable}, fetch(h.c, h.now, "g", "t", true))

	l.end("g", 7, true)
	assert.Equal(t, fetched{10, 0}, fetch(h.c, h.now, "g", "t", true))
	assert.Equal(t, fetched{20, 0}, fetch(h.c, h.now, "g", "u", false))
	fr := h.c.OffsetFetch(h.now, all).Groups[0]
	require.Len(t, fr.Topics, 2)
	assert.Equal(t, "txn", *fr.Topics[0].Partitions[0].Metadata)
	assert.Equal(t, int32(3), fr.Topics[0].Partitions[0].LeaderEpoch)
	assert.Empty(t, h.records[2:], "the marker makes the records effective; nothing is rewritten")

	// A second marker for the same producer finds nothing pending.
	l.end("g", 7, false)
	assert.Equal(t, fetched{10, 0}, fetch(h.c, h.now, "g", "t", true))
}

func TestTxnOffsetCommitAbortDrops(t *testing.T) {
	h := newHarness(t)
	l := h.txns()
	c1 := h.consumer("g", "c1", "t")
	h.formGroup(c1)
	require.Zero(t, c1.commit("t", 5))

	p := h.producer(1).as(c1)
	require.Zero(t, p.commit("g", map[string]int64{"t": 50}))
	assert.Equal(t, fetched{5, 0}, fetch(h.c, h.now, "g", "t", false))
	assert.Equal(t, fetched{-1, codeUnstable}, fetch(h.c, h.now, "g", "t", true))
	l.end("g", 1, false)
	assert.Equal(t, fetched{5, 0}, fetch(h.c, h.now, "g", "t", true))

	// A simple group that only an aborted transaction created is gone.
	q := h.producer(2)
	require.Zero(t, q.commit("simple", map[string]int64{"t": 1}))
	assert.Contains(t, h.c.Groups(), "simple")
	l.end("simple", 2, false)
	assert.NotContains(t, h.c.Groups(), "simple")

	// The log says the same after a reload.
	loaded := l.replay()
	assert.Equal(t, observable(t, h.c, h.now, []string{"g", "simple"}, "t"), observable(t, loaded, h.now, []string{"g", "simple"}, "t"))
}

func TestTxnOffsetCommitValidation(t *testing.T) {
	h := newHarness(t)
	c1 := h.consumer("g", "c1", "t")
	s2 := h.consumer("g", "c2", "t").static("i2")
	h.formGroup(c1, s2)

	for _, tc := range []struct {
		name   string
		mutate func(p *producer)
		code   int16
	}{
		{"member", func(*producer) {}, 0},
		{"static member", func(p *producer) { p.member = s2 }, 0},
		{"old generation", func(p *producer) { m := *c1; m.gen = 0; p.member = &m }, codeIllegalGen},
		{"unknown member", func(p *producer) { m := *c1; m.memberID = "who"; p.member = &m }, codeUnknownMember},
		{"other instance id", func(p *producer) { m := *s2; m.memberID = "stale"; p.member = &m }, codeFenced},
		{"unknown instance id", func(p *producer) { m := *s2; m.instance = kmsg.StringPtr("i9"); p.member = &m }, codeUnknownMember},
		// Before v3 there is no member identity: Kafka accepts the commit
		// whatever the group's state (the v3 fields are not even read).
		{"v2 into an active group", func(p *producer) { m := *c1; m.gen = 99; p.member = &m; p.version = 2 }, 0},
		// v3 without identity into a group with members is accepted too.
		{"v3 without member", func(p *producer) { p.member = nil }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := h.producer(100).as(c1)
			tc.mutate(p)
			assert.Equal(t, tc.code, p.commit("g", map[string]int64{"t": 1}))
			h.c.CompleteTxn(h.now, Partition("g", 50), 100, false)
		})
	}

	// A group that does not exist: ILLEGAL_GENERATION with a generation
	// (any version, unlike OffsetCommit v9), created for generation -1.
	ghost := *c1
	ghost.group = "ghost"
	assert.Equal(t, codeIllegalGen, h.producer(5).as(&ghost).commit("ghost", map[string]int64{"t": 1}))
	assert.NotContains(t, h.c.Groups(), "ghost")

	// Group id, producer id.
	assert.Equal(t, tributary.ErrInvalidGroupId.Code, h.producer(5).commit("", map[string]int64{"t": 1}))
	assert.Equal(t, tributary.ErrInvalidProducerIdMapping.Code, h.producer(-1).commit("fresh", map[string]int64{"t": 1}))
	assert.NotContains(t, h.c.Groups(), "fresh", "a refused commit leaves no group behind")

	// Metadata is bounded per partition.
	p := h.producer(6).as(c1)
	req := p.request("g", map[string]int64{"t": 1})
	big := string(make([]byte, 4097))
	req.Topics[0].Partitions = append(req.Topics[0].Partitions, kmsg.TxnOffsetCommitRequestTopicPartition{Partition: 1, Offset: 2, Metadata: &big})
	resp := h.c.TxnOffsetCommit(h.now, req)
	h.drain()
	assert.Zero(t, resp.Topics[0].Partitions[0].ErrorCode)
	assert.Equal(t, tributary.ErrOffsetMetadataTooLarge.Code, resp.Topics[0].Partitions[1].ErrorCode)

	// An older epoch than the one pending for the producer is a zombie.
	p.epoch = 3
	require.Zero(t, p.commit("g", map[string]int64{"t": 2}))
	p.epoch = 2
	assert.Equal(t, tributary.ErrInvalidProducerEpoch.Code, p.commit("g", map[string]int64{"t": 3}))
	h.c.CompleteTxn(h.now, Partition("g", 50), 6, true)
	assert.Equal(t, fetched{2, 0}, fetch(h.c, h.now, "g", "t", true), "the zombie's offset is in no transaction")

	// During a rebalance: OffsetCommit answers REBALANCE_IN_PROGRESS
	// between join and sync, a transactional commit of the generation the
	// member has is accepted (Kafka does not check the state for those).
	c3 := h.consumer("g", "c3", "t")
	require.Nil(t, c3.join())
	require.Nil(t, c1.join())
	require.Nil(t, s2.join())
	c1.joined()
	s2.joined()
	c3.joined()
	require.Equal(t, "CompletingRebalance", h.state("g"))
	assert.Equal(t, codeRebalance, c1.commit("t", 7))
	assert.Zero(t, h.producer(9).as(c1).commit("g", map[string]int64{"t": 8}))

	// Leader epochs exist from v2.
	q := h.producer(10)
	q.version = 1
	require.Zero(t, q.commit("simple", map[string]int64{"t": 4}))
	h.c.CompleteTxn(h.now, Partition("simple", 50), 10, true)
	f := kmsg.NewPtrOffsetFetchRequest()
	f.Version = 9
	f.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "simple"}}
	assert.Equal(t, int32(-1), h.c.OffsetFetch(h.now, f).Groups[0].Topics[0].Partitions[0].LeaderEpoch)
}

func TestTwoProducersPendingOnOneGroup(t *testing.T) {
	h := newHarness(t)
	l := h.txns()
	a, b := h.producer(1), h.producer(2)
	require.Zero(t, a.commit("g", map[string]int64{"t": 10}))
	require.Zero(t, b.commit("g", map[string]int64{"t": 20, "u": 30}))

	// a commits: t is still unstable while b has an offset for it.
	l.end("g", 1, true)
	assert.Equal(t, fetched{10, 0}, fetch(h.c, h.now, "g", "t", false))
	assert.Equal(t, fetched{-1, codeUnstable}, fetch(h.c, h.now, "g", "t", true))
	assert.Equal(t, fetched{-1, codeUnstable}, fetch(h.c, h.now, "g", "u", true))

	// b commits: its record came after a's, so it wins.
	l.end("g", 2, true)
	assert.Equal(t, fetched{20, 0}, fetch(h.c, h.now, "g", "t", true))
	assert.Equal(t, fetched{30, 0}, fetch(h.c, h.now, "g", "u", true))

	// Markers in the other order: the later record still wins, even
	// though its transaction was committed first.
	require.Zero(t, a.commit("g", map[string]int64{"t": 40}))
	require.Zero(t, b.commit("g", map[string]int64{"t": 50}))
	l.end("g", 2, true)
	assert.Equal(t, fetched{50, 0}, fetch(h.c, h.now, "g", "t", false))
	l.end("g", 1, true)
	assert.Equal(t, fetched{50, 0}, fetch(h.c, h.now, "g", "t", true), "a's record is older than b's")

	// One commits, the other aborts.
	require.Zero(t, a.commit("g", map[string]int64{"t": 60}))
	require.Zero(t, b.commit("g", map[string]int64{"u": 70}))
	l.end("g", 2, false)
	assert.Equal(t, fetched{30, 0}, fetch(h.c, h.now, "g", "u", true))
	assert.Equal(t, fetched{-1, codeUnstable}, fetch(h.c, h.now, "g", "t", true))
	l.end("g", 1, true)
	assert.Equal(t, fetched{60, 0}, fetch(h.c, h.now, "g", "t", true))

	loaded := l.replay()
	assert.Equal(t, observable(t, h.c, h.now, []string{"g"}, "t", "u"), observable(t, loaded, h.now, []string{"g"}, "t", "u"))
}

// Kafka keeps the most recent commit, by position in the log, when
// transactional and ordinary commits of a partition mix.
func TestTxnOffsetCommitAndOffsetCommitOrder(t *testing.T) {
	h := newHarness(t)
	l := h.txns()
	c1 := h.consumer("g", "c1", "t")
	h.formGroup(c1)
	p := h.producer(3).as(c1)

	// The transactional record, then an ordinary commit, then the marker:
	// the ordinary commit is the later record and stays.
	require.Zero(t, p.commit("g", map[string]int64{"t": 100}))
	require.Zero(t, c1.commit("t", 5))
	assert.Equal(t, fetched{5, 0}, fetch(h.c, h.now, "g", "t", false))
	l.end("g", 3, true)
	assert.Equal(t, fetched{5, 0}, fetch(h.c, h.now, "g", "t", true))

	// An ordinary commit, then the transactional record, then the marker:
	// the transaction's offset replaces it.
	require.Zero(t, c1.commit("t", 6))
	require.Zero(t, p.commit("g", map[string]int64{"t": 200}))
	assert.Equal(t, fetched{6, 0}, fetch(h.c, h.now, "g", "t", false))
	l.end("g", 3, true)
	assert.Equal(t, fetched{200, 0}, fetch(h.c, h.now, "g", "t", true))

	// Reloading the log reaches the same offsets, marker by marker.
	loaded := l.replay()
	assert.Equal(t, observable(t, h.c, h.now, []string{"g"}, "t"), observable(t, loaded, h.now, []string{"g"}, "t"))
	assert.Equal(t, fetched{200, 0}, fetch(loaded, h.now, "g", "t", true))
}

func TestTxnOffsetsLoadRoundTrip(t *testing.T) {
	h := newHarness(t)
	l := h.txns()
	c1 := h.consumer("g", "c1", "t", "u")
	h.formGroup(c1)
	require.Zero(t, c1.commit("t", 1))

	committed, aborted, open := h.producer(11).as(c1), h.producer(12).as(c1), h.producer(13)
	require.Zero(t, committed.commit("g", map[string]int64{"t": 10, "u": 11}))
	require.Zero(t, aborted.commit("g", map[string]int64{"t": 20}))
	require.Zero(t, open.commit("g", map[string]int64{"u": 30}))
	require.Zero(t, open.commit("simple", map[string]int64{"t": 40}))
	l.end("g", 11, true)
	l.end("g", 12, false)

	groups := []string{"g", "simple"}
	want := observable(t, h.c, h.now, groups, "t", "u")
	loaded := l.replay()
	assert.Equal(t, want, observable(t, loaded, h.now, groups, "t", "u"))
	assert.Equal(t, fetched{10, 0}, fetch(loaded, h.now, "g", "t", true))
	assert.Equal(t, fetched{-1, codeUnstable}, fetch(loaded, h.now, "g", "u", true), "the open transaction stays pending")
	assert.Equal(t, fetched{11, 0}, fetch(loaded, h.now, "g", "u", false))
	assert.Contains(t, loaded.Groups(), "simple", "a group only an open transaction created")

	// The open transaction ends after the load: both coordinators agree.
	for _, c := range []*Coordinator{h.c, loaded} {
		c.CompleteTxn(h.now, Partition("g", 50), 13, true)
		c.CompleteTxn(h.now, Partition("simple", 50), 13, true)
	}
	assert.Equal(t, observable(t, h.c, h.now, groups, "t", "u"), observable(t, loaded, h.now, groups, "t", "u"))
	assert.Equal(t, fetched{30, 0}, fetch(loaded, h.now, "g", "u", true))
	assert.Equal(t, fetched{40, 0}, fetch(loaded, h.now, "simple", "t", true))
}

func TestUnloadDropsPendingTxnOffsets(t *testing.T) {
	h := newHarness(t)
	l := h.txns()
	require.Zero(t, h.producer(1).commit("g", map[string]int64{"t": 10}))
	h.c.Unload(Partition("g", 50))
	h.drain()
	assert.Empty(t, h.c.Groups())
	assert.Equal(t, fetched{-1, 0}, fetch(h.c, h.now, "g", "t", true))
	// Its marker, arriving at a coordinator that no longer has the
	// partition, is a no-op.
	h.c.CompleteTxn(h.now, Partition("g", 50), 1, true)
	assert.Empty(t, h.c.Groups())

	// Leading it again, the log brings the pending offset back.
	loaded := l.replay()
	assert.Equal(t, fetched{-1, codeUnstable}, fetch(loaded, h.now, "g", "t", true))
}

func TestTxnOffsetsExpiryAndDeletion(t *testing.T) {
	const retention = 7 * 24 * time.Hour
	h := newHarness(t)
	l := h.txns()

	// A simple group's offset would expire a retention after its commit,
	// but not while a transaction has an offset for the same partition,
	// and the group stays while a transaction is open.
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Version = 8
	oc.Group = "simple"
	oc.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}
	h.c.OffsetCommit(h.now, oc)
	h.drain()
	require.Zero(t, h.producer(1).commit("simple", map[string]int64{"t": 5}))
	require.Zero(t, h.producer(2).commit("pending-only", map[string]int64{"t": 6}))
	h.advance(retention + time.Hour)
	assert.Equal(t, fetched{1, 0}, fetch(h.c, h.now, "simple", "t", false))
	assert.Contains(t, h.c.Groups(), "pending-only")
	l.end("simple", 1, false)
	h.advance(10 * time.Minute)
	assert.NotContains(t, h.c.Groups(), "simple", "settled, the offset expires with its group")

	// DeleteGroups of an Empty group with an open transaction: deleted, as
	// in Kafka, with one tombstone per partition that has a committed or a
	// pending offset, and the group's tombstone.
	c1 := h.consumer("d", "c1", "t")
	h.formGroup(c1)
	require.Zero(t, c1.commit("t", 3))
	p := h.producer(3).as(c1)
	require.Zero(t, p.commit("d", map[string]int64{"t": 30, "u": 31}))
	lv := kmsg.NewPtrLeaveGroupRequest()
	lv.Group, lv.MemberID = "d", c1.memberID
	h.c.LeaveGroup(h.now, lv)
	h.drain()
	recs := len(h.records)
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{"d"}
	require.Zero(t, h.c.DeleteGroups(h.now, del).Groups[0].ErrorCode)
	h.drain()
	var tombs []string
	for _, r := range h.records[recs:] {
		assert.Nil(t, r.Value)
		if r.Key[1] == 1 {
			var k kmsg.OffsetCommitKey
			require.NoError(t, k.ReadFrom(r.Key))
			tombs = append(tombs, k.Topic)
		}
	}
	assert.Equal(t, []string{"t", "u"}, tombs)
	require.Len(t, h.records, recs+3)
	// The transaction commits afterwards: its offsets were deleted.
	l.end("d", 3, true)
	assert.NotContains(t, h.c.Groups(), "d")
	assert.Equal(t, fetched{-1, 0}, fetch(h.c, h.now, "d", "u", true))

	// OffsetDelete of a partition that only a transaction has an offset
	// for: a tombstone, and the transaction no longer holds it.
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "pending-only"
	od.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
	recs = len(h.records)
	require.Zero(t, h.c.OffsetDelete(h.now, od).Topics[0].Partitions[0].ErrorCode)
	h.drain()
	require.Len(t, h.records, recs+1)
	assert.Nil(t, h.records[recs].Value)
	assert.Equal(t, fetched{-1, 0}, fetch(h.c, h.now, "pending-only", "t", true))
	l.end("pending-only", 2, true)
	assert.Equal(t, fetched{-1, 0}, fetch(h.c, h.now, "pending-only", "t", true))

	// Left with nothing, the group goes at the next expiry check (Load,
	// meanwhile, forgets a group whose last offset is tombstoned).
	h.advance(10 * time.Minute)
	assert.NotContains(t, h.c.Groups(), "pending-only")

	groups := []string{"simple", "pending-only", "d"}
	loaded := l.replay()
	assert.Equal(t, observable(t, h.c, h.now, groups, "t", "u"), observable(t, loaded, h.now, groups, "t", "u"))
}

func TestLoadTxnRecords(t *testing.T) {
	c, err := New(DefaultConfig())
	require.NoError(t, err)
	v := kmsg.NewOffsetCommitValue()
	v.Version = 3
	v.Offset = 9
	v.LeaderEpoch = -1
	part := Partition("g", 50)

	require.NoError(t, c.LoadTxn(part, 4, offsetKey("g", "t", 0), v.AppendTo(nil)))
	require.NoError(t, c.LoadTxn(part, 4, offsetKey("g", "t", 1), v.AppendTo(nil)))
	assert.Equal(t, fetched{-1, codeUnstable}, fetch(c, t0, "g", "t", true))
	// A tombstone (in whatever batch) deletes the partition's pending
	// offsets too.
	require.NoError(t, c.LoadTxn(part, 4, offsetKey("g", "t", 0), nil))
	assert.Equal(t, fetched{-1, 0}, fetch(c, t0, "g", "t", true))
	c.LoadMarker(part, 4, true)
	assert.Equal(t, fetched{-1, 0}, fetch(c, t0, "g", "t", true))

	// Group metadata inside a transactional batch applies as Load's would;
	// it keeps the group's pending offsets.
	require.NoError(t, c.LoadTxn(part, 5, offsetKey("g", "t", 0), v.AppendTo(nil)))
	gk := kmsg.NewGroupMetadataKey()
	gk.Version = 2
	gk.Group = "g"
	gv := kmsg.NewGroupMetadataValue()
	gv.Version = 3
	gv.ProtocolType = "consumer"
	gv.Generation = 2
	require.NoError(t, c.LoadTxn(part, 5, gk.AppendTo(nil), gv.AppendTo(nil)))
	assert.Equal(t, fetched{-1, codeUnstable}, fetch(c, t0, "g", "t", true))
	c.LoadMarker(part, 5, true)
	assert.Equal(t, fetched{9, 0}, fetch(c, t0, "g", "t", true))

	assert.ErrorIs(t, c.LoadTxn(part, 5, []byte{0}, nil), ErrMalformedRecord)
	assert.ErrorIs(t, c.LoadTxn(part, 5, offsetKey("g", "t", 0)[:5], v.AppendTo(nil)), ErrMalformedRecord)
	assert.ErrorIs(t, c.LoadTxn(part, 5, offsetKey("g", "t", 0), []byte{0, 3, 1}), ErrMalformedRecord)
}

// FuzzLoadTxn checks that LoadTxn and LoadMarker never panic.
func FuzzLoadTxn(f *testing.F) {
	v := kmsg.NewOffsetCommitValue()
	v.Version = 3
	f.Add(offsetKey("g", "t", 1), v.AppendTo(nil), int64(3), true)
	f.Add([]byte{0, 2}, []byte(nil), int64(-1), false)
	f.Fuzz(func(t *testing.T, key, value []byte, producerID int64, commit bool) {
		c, err := New(DefaultConfig())
		require.NoError(t, err)
		if c.LoadTxn(Partition("g", 50), producerID, key, value) != nil {
			return
		}
		c.LoadMarker(Partition("g", 50), producerID, commit)
		c.Loaded(t0)
		c.Tick(t0.Add(30 * 24 * time.Hour))
		fetch(c, t0, "g", "t", true)
	})
}
