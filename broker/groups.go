package broker

// The group coordinator's glue: the broker half of the classic consumer
// group protocol, whose state machine is broker/group.
//
// # Placement (DESIGN.md point 7)
//
// A group's coordinator is the leader of its __consumer_offsets
// partition, group.Partition(id, partitions). This node leads every
// partition, so it coordinates every group, but it still takes the
// cluster's path: the groups of a partition exist only once the partition
// has been loaded from its log, and a partition that can no longer be
// written is unloaded (its clients get NOT_COORDINATOR and look the
// coordinator up again) and loaded afresh.
//
// __consumer_offsets is created on first use (FindCoordinator for a group)
// with offsets.topic.num.partitions partitions, cleanup.policy=compact and
// offsets.topic.segment.bytes, and marked internal. An existing topic keeps
// its partition count: the hash uses the topic's real count, as Kafka
// does.
//
// # One goroutine owns the state machine
//
// group.Coordinator is not safe for concurrent use. groupLoop owns it:
// handlers send it a groupCall over a bounded channel and wait for the
// answer on the call's own channel. A call that Kafka parks (JoinGroup
// and SyncGroup during a rebalance) is answered later, when a step of the
// coordinator completes it; its Ref maps to the waiting call. After every
// step (a call, a Tick at NextDeadline, an Unload) the loop drains the
// coordinator, appends the records to __consumer_offsets — one batch per
// partition — and only then sends the answers: a commit or an assignment
// is acknowledged only once it is in the log. When an append fails, the
// answers that depended on that partition become NOT_COORDINATOR, the
// partition is unloaded and queued to load again from what is stored.
//
// A parked JoinGroup or SyncGroup holds up only its own connection
// (requests on one connection are served in order, as Kafka does); kgo
// sends JoinGroup and SyncGroup on a connection of their own.
//
// # Loading
//
// At start (and whenever the topic appears or a partition is reset) the
// partitions to load are queued. The loop loads one partition at a time
// and serves calls waiting in between, so a large offsets topic does not
// stall groups already loaded; requests for a partition not loaded yet
// are answered COORDINATOR_LOAD_IN_PROGRESS. Loading reads the log from
// its start to its high watermark, feeds every record to Load in log
// order, and ends with Loaded.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/group"
	"github.com/tributary/tributary/broker/storage"
	"github.com/tributary/tributary/internal/batch"
)

const offsetsTopic = "__consumer_offsets"

// groupCallQueue bounds the calls waiting for the loop; a handler blocks
// (and gives up with its connection or the broker) when it is full.
const groupCallQueue = 256

// maxOffsetsBatchBytes bounds the records of one batch written to
// __consumer_offsets, well below the default max.message.bytes; a drain
// with more is split into several batches appended together.
const maxOffsetsBatchBytes = 512 << 10

// groupCoordinator is the broker's side of the group coordinator. After
// initGroups only the loop goroutine touches the fields below calls.
type groupCoordinator struct {
	b     *Broker
	calls chan *groupCall
	// topicKnown is set once the loop has seen __consumer_offsets, so
	// FindCoordinator stops asking it to look.
	topicKnown atomic.Bool

	// Owned by groupLoop.
	coordParts // by __consumer_offsets partition
	c          *group.Coordinator
	nparts     int32
	nextRef    group.Ref
	parked     map[group.Ref]*groupCall
	timer      *time.Timer
	// failAppend, when set (tests), fails appends to the partitions it
	// returns an error for, standing in for a broken disk.
	failAppend func(partition int32) error
}

// groupCall is one request for the loop. run is called on the loop with
// the coordinator and the call's Ref; it returns the response, or nil
// when the coordinator parked the request. groups are the groups the
// request addresses, used to answer NOT_COORDINATOR when a partition
// they live in fails to take the step's records.
type groupCall struct {
	groups []string
	run    func(gc *groupCoordinator, now time.Time, ref group.Ref) kmsg.Response
	// topicReady asks the loop to look for __consumer_offsets again.
	topicReady bool
	reply      chan kmsg.Response // buffered: the loop never blocks on it
}

// groupConfig maps the broker's properties to the state machine's.
func groupConfig(cfg Config, partitions int32) group.Config {
	gc := group.DefaultConfig()
	gc.OffsetsTopicPartitions = partitions
	gc.InitialRebalanceDelay = time.Duration(cfg.GroupInitialRebalanceDelayMs) * time.Millisecond
	gc.MinSessionTimeout = time.Duration(cfg.GroupMinSessionTimeoutMs) * time.Millisecond
	gc.MaxSessionTimeout = time.Duration(cfg.GroupMaxSessionTimeoutMs) * time.Millisecond
	gc.MaxSize = int(cfg.GroupMaxSize)
	gc.OffsetMetadataMaxBytes = int(cfg.OffsetMetadataMaxBytes)
	gc.OffsetsRetention = time.Duration(cfg.OffsetsRetentionMinutes) * time.Minute
	gc.OffsetsRetentionCheckInterval = time.Duration(cfg.OffsetsRetentionCheckIntervalMs) * time.Millisecond
	return gc
}

// initGroups builds the coordinator and starts its loop; New calls it
// once the topics are loaded.
func (b *Broker) initGroups() error {
	nparts := b.cfg.OffsetsTopicNumPartitions
	if t := b.lookupTopic(offsetsTopic); t != nil {
		b.mu.RLock()
		nparts = int32(len(t.partitions))
		b.mu.RUnlock()
	}
	c, err := group.New(groupConfig(b.cfg, max(nparts, 1)))
	if err != nil {
		return fmt.Errorf("broker: group coordinator: %w", err)
	}
	gc := &groupCoordinator{
		b:          b,
		calls:      make(chan *groupCall, groupCallQueue),
		c:          c,
		coordParts: newCoordParts(nparts),
		nparts:     nparts,
		parked:     make(map[group.Ref]*groupCall),
	}
	b.groups.Store(gc)
	b.goTracked(gc.loop)
	return nil
}

func (gc *groupCoordinator) loop() {
	gc.timer = time.NewTimer(time.Hour)
	defer gc.timer.Stop()
	gc.topicAppeared()
	coordLoop(&gc.coordParts, gc.calls, gc.timer, gc.b.closing, gc.serve, gc.tick, gc.load)
}

// topicAppeared queues every partition of __consumer_offsets to load the
// first time the loop sees the topic. A partition with no records (all
// of them when FindCoordinator has just created the topic) has nothing to
// load and is loaded at once, before the FindCoordinator that created it
// answers: otherwise the coordinator it names would answer the client's
// next requests COORDINATOR_LOAD_IN_PROGRESS while it worked through the
// queue, one partition per loop turn. Clients retry that, but not
// always: kgo retries an OffsetCommit only when its first partition
// carries the error (TestGroupAdminOffsets flaked on exactly that).
func (gc *groupCoordinator) topicAppeared() {
	t := gc.b.lookupTopic(offsetsTopic)
	if t == nil {
		return
	}
	gc.topicKnown.Store(true)
	for p := int32(0); p < gc.nparts; p++ {
		if gc.state[p] != partAbsent {
			continue
		}
		if _, err := gc.b.leaderPartition(offsetsTopic, p); err != nil {
			gc.state[p] = partFollower // setOffsetsLeader loads it if it comes here
			continue
		}
		gc.state[p] = partLoading
		if gc.emptyPartition(p) {
			// Nothing to read: loaded before FindCoordinator answers.
			gc.load(p)
			continue
		}
		gc.toLoad = append(gc.toLoad, p)
	}
}

// emptyPartition reports whether partition p of __consumer_offsets has
// no records to load.
func (gc *groupCoordinator) emptyPartition(p int32) bool {
	part, err := gc.b.lookupPartition(offsetsTopic, p)
	if err != nil {
		return false // load reports it, and retries
	}
	return part.log == nil || part.log.LogEndOffset() <= part.log.LogStartOffset()
}

// setOffsetsLeader is the hook for leadership changes of __consumer_offsets
// partitions (DESIGN.md point 7): becoming leader of partition p loads
// its groups from the log; losing it drops them, and their clients are
// told NOT_COORDINATOR so they look up the new coordinator. On one node
// every partition is led from the start, so only replication calls it.
func (b *Broker) setOffsetsLeader(p int32, leader bool) error {
	return b.moveOffsetsPartition(p, leader, false)
}

// syncOffsetsPartition makes the coordinator follow the current
// leadership of partition p (the reconcile loop calls it on every role
// change).
func (b *Broker) syncOffsetsPartition(p int32) error {
	return b.moveOffsetsPartition(p, false, true)
}

func (b *Broker) moveOffsetsPartition(p int32, leader, sync bool) error {
	_, err := b.callGroups(nil, &groupCall{run: func(gc *groupCoordinator, _ time.Time, _ group.Ref) kmsg.Response {
		if sync {
			if !gc.topicKnown.Load() {
				return kmsg.NewPtrHeartbeatResponse() // topicAppeared will look
			}
			// Calls may arrive out of order: what counts is who leads
			// now, not what the caller saw.
			_, err := b.leaderPartition(offsetsTopic, p)
			leader = err == nil
		}
		if !leader {
			gc.c.Unload(p)
		}
		gc.follow(p, leader)
		return kmsg.NewPtrHeartbeatResponse() // nothing reads it
	}})
	return err
}

// groupError says why the group cannot be served now, or nil.
func (gc *groupCoordinator) groupError(id string) *tributary.Error {
	return gc.partitionError(group.Partition(id, max(gc.nparts, 1)))
}

func (gc *groupCoordinator) serve(call *groupCall) {
	if call.topicReady {
		gc.topicAppeared()
		call.reply <- nil
		return
	}
	gc.nextRef++
	ref := gc.nextRef
	resp, poisoned := gc.run(call, ref)
	if resp == nil && poisoned == nil {
		gc.parked[ref] = call
	}
	gc.step(call, resp, poisoned)
}

// run calls the state machine for call. A panic there (a bug, never
// input the package should refuse) must not take the broker down: the
// partitions of the call's groups are treated like a failed append —
// nothing of the step is written for them, they are unloaded and loaded
// again from the log — and the call gets errGroupPanic, which closes its
// connection.
func (gc *groupCoordinator) run(call *groupCall, ref group.Ref) (resp kmsg.Response, poisoned map[int32]bool) {
	defer func() {
		if r := recover(); r != nil {
			gc.b.logger.Error("group coordinator panic; reloading the affected partitions", "panic", r, "stack", string(debug.Stack()))
			poisoned = map[int32]bool{}
			for _, id := range call.groups {
				poisoned[group.Partition(id, max(gc.nparts, 1))] = true
			}
			if len(call.groups) == 0 {
				for p := range gc.nparts {
					poisoned[p] = true
				}
			}
			resp = nil
		}
	}()
	return call.run(gc, time.Now(), ref), nil
}

func (gc *groupCoordinator) tick() {
	now := time.Now()
	gc.retryDue(now)
	gc.c.Tick(now)
	gc.step(nil, nil, nil)
}

// step drains the coordinator: it appends the records and then answers
// call (with resp, when not parked) and every completed parked request.
// Records of poisoned partitions are not written: those partitions fail
// like a failed append.
func (gc *groupCoordinator) step(call *groupCall, resp kmsg.Response, poisoned map[int32]bool) {
	out := gc.c.Drain()
	failed := gc.appendRecords(out.Records, poisoned)
	if call != nil {
		switch {
		case poisoned != nil:
			call.reply <- nil
		case resp != nil:
			if len(failed) > 0 {
				resp = notCoordinator(resp, call.groups, failed, gc.nparts)
			}
			call.reply <- resp
		}
	}
	gc.deliver(out.Replies, failed)
	if len(failed) > 0 {
		for p := range failed {
			gc.c.Unload(p)
			gc.reload(p)
		}
		// Unload answers the parked requests of those groups
		// NOT_COORDINATOR; it writes nothing.
		gc.deliver(gc.c.Drain().Replies, nil)
	}
	gc.rearm()
}

func (gc *groupCoordinator) deliver(replies []group.Reply, failed map[int32]bool) {
	for _, r := range replies {
		call := gc.parked[r.Ref]
		delete(gc.parked, r.Ref)
		if call == nil {
			continue // its handler is gone; nothing waits for it
		}
		resp := r.Response
		if len(failed) > 0 {
			resp = notCoordinator(resp, call.groups, failed, gc.nparts)
		}
		call.reply <- resp
	}
}

// rearm sets the timer to the coordinator's next deadline.
func (gc *groupCoordinator) rearm() {
	at, ok := gc.c.NextDeadline()
	gc.coordParts.rearm(gc.timer, at, ok)
}

// appendRecords writes the records to their partitions, one append per
// partition; it returns the partitions whose append failed.
func (gc *groupCoordinator) appendRecords(recs []group.Record, poisoned map[int32]bool) map[int32]bool {
	return appendByPartition(recs, func(r group.Record) int32 { return r.Partition }, poisoned, func(pi int32, rs []group.Record, now int64) error {
		err := gc.appendPartition(pi, rs, now)
		if err != nil {
			gc.b.logger.Error("group coordinator: append to __consumer_offsets failed; unloading the partition", "partition", pi, "err", err)
		}
		return err
	})
}

// appendByPartition is how both coordinators write a step's records: one
// append per partition, in the order the partitions first appear, none
// to a partition already failed (poisoned). It returns the failed
// partitions: poisoned plus those whose append returned an error.
func appendByPartition[R any](recs []R, part func(R) int32, poisoned map[int32]bool, write func(pi int32, rs []R, now int64) error) map[int32]bool {
	failed := poisoned
	if len(recs) == 0 {
		return failed
	}
	byPart := map[int32][]R{}
	var order []int32
	for _, r := range recs {
		pi := part(r)
		if _, ok := byPart[pi]; !ok {
			order = append(order, pi)
		}
		byPart[pi] = append(byPart[pi], r)
	}
	now := time.Now().UnixMilli()
	for _, pi := range order {
		if failed[pi] {
			continue
		}
		if err := write(pi, byPart[pi], now); err != nil {
			if failed == nil {
				failed = map[int32]bool{}
			}
			failed[pi] = true
		}
	}
	return failed
}

// offsetCommitTimeout bounds the wait for the ISR to hold a group's
// records (Kafka's offsets.commit.timeout.ms default).
const offsetCommitTimeout = 5 * time.Second

func (gc *groupCoordinator) appendPartition(pi int32, recs []group.Record, now int64) error {
	p, err := gc.b.leaderPartition(offsetsTopic, pi)
	if err != nil {
		return err
	}
	if gc.failAppend != nil {
		if err := gc.failAppend(pi); err != nil {
			return err
		}
	}
	// Offsets are written as Kafka writes them: acks=all, so a commit is
	// answered only once the ISR holds it and a new coordinator on
	// another broker loads it. Transactional offset commits go in a
	// transactional batch of their producer (its marker decides them),
	// the others in plain batches; the order of the step is kept.
	minISR := gc.b.minInsyncReplicas(p.topic)
	var last int64 = -1
	for len(recs) > 0 {
		n := 1
		for n < len(recs) && recs[n].ProducerID == recs[0].ProducerID && recs[n].ProducerEpoch == recs[0].ProducerEpoch {
			n++
		}
		run := recs[:n]
		recs = recs[n:]
		var res storage.AppendResult
		if pid := run[0].ProducerID; pid >= 0 {
			data := encodeTxnBatch(run, pid, run[0].ProducerEpoch, now)
			res, err = p.rep.AppendAsLeaderWith(-1, minISR, func(l *storage.Log, epoch int32) (storage.AppendResult, error) {
				return l.AppendCoordinator(data, epoch)
			})
		} else {
			res, err = p.rep.AppendAsLeader(encodeBatches(run, groupKV, now), -1, minISR)
		}
		if err != nil {
			return err
		}
		last = res.LastOffset
	}
	gc.b.notifyPartition(p)
	return gc.b.waitAcked(p, last+1, minISR, offsetCommitTimeout)
}

// encodeTxnBatch encodes recs as one transactional batch of producer
// pid at epoch (baseSequence -1: a coordinator's write has no sequence).
func encodeTxnBatch(recs []group.Record, pid int64, epoch int16, now int64) []byte {
	var body []byte
	for i, r := range recs {
		body = appendRecord(body, int32(i), r.Key, r.Value)
	}
	b := appendBatch(nil, body, int32(len(recs)), now)
	be := binary.BigEndian
	be.PutUint16(b[21:], batch.AttrTransactional)
	be.PutUint64(b[43:], uint64(pid))
	be.PutUint16(b[51:], uint16(epoch))
	be.PutUint32(b[17:], batch.ComputeCRC(b))
	return b
}

// groupsTxnCompleted tells the group coordinator that a transaction's
// marker is now in partition pi of __consumer_offsets: the producer's
// pending offset commits there take effect (commit) or go (abort). A
// partition still loading replays the marker from its log instead.
func (b *Broker) groupsTxnCompleted(pi int32, pid int64, commit bool) {
	if b.groups.Load() == nil {
		return
	}
	b.callGroups(nil, &groupCall{run: func(gc *groupCoordinator, now time.Time, _ group.Ref) kmsg.Response {
		if gc.loaded(pi) {
			gc.c.CompleteTxn(now, pi, pid, commit)
		}
		return kmsg.NewPtrHeartbeatResponse()
	}})
}

func groupKV(r group.Record) ([]byte, []byte) { return r.Key, r.Value }

// encodeBatches encodes recs (kv gives each one's key and value) as
// uncompressed RecordBatch v2 batches (no producer id, CreateTime now),
// starting a new batch when one would pass maxOffsetsBatchBytes.
func encodeBatches[R any](recs []R, kv func(R) ([]byte, []byte), now int64) []byte {
	var out, body []byte
	n := int32(0)
	flush := func() {
		if n == 0 {
			return
		}
		out = appendBatch(out, body, n, now)
		body, n = body[:0], 0
	}
	for _, r := range recs {
		k, v := kv(r)
		if n > 0 && len(body)+len(k)+len(v)+32 > maxOffsetsBatchBytes {
			flush()
		}
		body = appendRecord(body, n, k, v)
		n++
	}
	flush()
	return out
}

// appendRecord appends one record (attributes 0, timestamp delta 0, no
// headers); a nil value is Kafka's null, a tombstone.
func appendRecord(dst []byte, offsetDelta int32, key, value []byte) []byte {
	var rec []byte
	rec = append(rec, 0) // attributes
	rec = binary.AppendVarint(rec, 0)
	rec = binary.AppendVarint(rec, int64(offsetDelta))
	if key == nil {
		rec = binary.AppendVarint(rec, -1)
	} else {
		rec = binary.AppendVarint(rec, int64(len(key)))
		rec = append(rec, key...)
	}
	if value == nil {
		rec = binary.AppendVarint(rec, -1)
	} else {
		rec = binary.AppendVarint(rec, int64(len(value)))
		rec = append(rec, value...)
	}
	rec = binary.AppendVarint(rec, 0) // headers
	dst = binary.AppendVarint(dst, int64(len(rec)))
	return append(dst, rec...)
}

// appendBatch appends the 61-byte RecordBatch v2 header and the records,
// with the CRC-32C over attributes..end.
func appendBatch(dst, records []byte, count int32, now int64) []byte {
	start := len(dst)
	be := binary.BigEndian
	dst = be.AppendUint64(dst, 0)                                        // baseOffset: assigned by the log
	dst = be.AppendUint32(dst, uint32(batch.HeaderSize-12+len(records))) // batchLength
	dst = be.AppendUint32(dst, 0xffffffff)                               // partitionLeaderEpoch: stamped by the log
	dst = append(dst, 2)                                                 // magic
	dst = be.AppendUint32(dst, 0)                                        // crc, below
	dst = be.AppendUint16(dst, 0)                                        // attributes: no codec, CreateTime
	dst = be.AppendUint32(dst, uint32(count-1))                          // lastOffsetDelta
	dst = be.AppendUint64(dst, uint64(now))                              // baseTimestamp
	dst = be.AppendUint64(dst, uint64(now))                              // maxTimestamp
	dst = be.AppendUint64(dst, 0xffffffffffffffff)                       // producerId -1
	dst = be.AppendUint16(dst, 0xffff)                                   // producerEpoch -1
	dst = be.AppendUint32(dst, 0xffffffff)                               // baseSequence -1
	dst = be.AppendUint32(dst, uint32(count))
	dst = append(dst, records...)
	be.PutUint32(dst[start+17:], batch.ComputeCRC(dst[start:]))
	return dst
}

// load reads partition p of __consumer_offsets into the coordinator.
// A log that cannot be read leaves the partition unloaded and queued
// again after a pause (its groups answer COORDINATOR_LOAD_IN_PROGRESS
// meanwhile), rather than serving groups from part of their history.
func (gc *groupCoordinator) load(pi int32) {
	if err := gc.readPartition(pi); err != nil {
		gc.b.logger.Error("group coordinator: loading __consumer_offsets partition failed; will retry", "partition", pi, "err", err)
		gc.c.Unload(pi)
		gc.deliver(gc.c.Drain().Replies, nil)
		gc.loadFailed(pi)
		gc.rearm()
		return
	}
	gc.c.Loaded(time.Now())
	gc.state[pi] = partLoaded
	// Loaded may start rebalances (group.max.size lowered); it writes
	// nothing, but deliver whatever it completed.
	gc.step(nil, nil, nil)
}

// readPartition feeds every record of partition pi, from the log start to
// its end, to the coordinator: plain records to Load, the records of a
// transactional batch to LoadTxn (pending until its marker) and markers
// to LoadMarker. The leader's whole log counts: what is above the high
// watermark was written by the previous leader and will be kept (a
// leader never truncates).
func (gc *groupCoordinator) readPartition(pi int32) error {
	p, err := gc.b.leaderPartition(offsetsTopic, pi)
	if err != nil {
		return err
	}
	return readInternal(p.log, func(h *batch.Header, key, value []byte) error {
		var err error
		if h.IsTransactional() && h.ProducerID >= 0 {
			err = gc.c.LoadTxn(pi, h.ProducerID, key, value)
		} else {
			err = gc.c.Load(key, value)
		}
		if err != nil {
			// One undecodable record should not make the whole
			// partition unusable: Kafka logs and skips.
			gc.b.logger.Warn("group coordinator: skipping bad __consumer_offsets record", "partition", pi, "err", err)
		}
		return nil
	}, func(h *batch.Header, commit bool) {
		gc.c.LoadMarker(pi, h.ProducerID, commit)
	})
}

// notCoordinator rewrites resp to NOT_COORDINATOR when one of the groups
// it answers for lives in a failed partition.
func notCoordinator(resp kmsg.Response, groups []string, failed map[int32]bool, nparts int32) kmsg.Response {
	isFailed := func(id string) bool { return failed[group.Partition(id, max(nparts, 1))] }
	anyFailed := false
	for _, g := range groups {
		if isFailed(g) {
			anyFailed = true
		}
	}
	if !anyFailed {
		return resp
	}
	code := tributary.ErrNotCoordinator.Code
	switch r := resp.(type) {
	case *kmsg.JoinGroupResponse:
		r.ErrorCode = code
		r.Members = nil
	case *kmsg.SyncGroupResponse:
		r.ErrorCode = code
		r.MemberAssignment = []byte{}
	case *kmsg.HeartbeatResponse:
		r.ErrorCode = code
	case *kmsg.LeaveGroupResponse:
		r.ErrorCode = code
	case *kmsg.OffsetCommitResponse:
		for i := range r.Topics {
			for j := range r.Topics[i].Partitions {
				r.Topics[i].Partitions[j].ErrorCode = code
			}
		}
	case *kmsg.OffsetDeleteResponse:
		r.ErrorCode = code
		r.Topics = nil
	case *kmsg.DeleteGroupsResponse:
		for i := range r.Groups {
			if isFailed(r.Groups[i].Group) {
				r.Groups[i].ErrorCode = code
			}
		}
	}
	return resp
}

// ensureOffsetsTopic creates __consumer_offsets if it does not exist and
// has the loop pick it up. It runs on the handler's goroutine: creating
// the topic is disk work under adminMu, which the loop must not wait for.
func (b *Broker) ensureOffsetsTopic(req *request) *tributary.Error {
	if b.lookupTopic(offsetsTopic) == nil {
		b.mu.RLock()
		eff := b.mu.eff
		b.mu.RUnlock()
		err := b.createTopic(offsetsTopic, b.groups.Load().nparts, eff.OffsetsTopicReplicationFactor, map[string]string{
			"cleanup.policy":   "compact",
			"compression.type": "producer",
			"segment.bytes":    fmt.Sprint(eff.OffsetsTopicSegmentBytes),
		})
		if err != nil && tributary.CodeOf(err) != tributary.ErrTopicAlreadyExists.Code {
			b.logger.Warn("creating __consumer_offsets failed", "err", err)
			return tributary.ErrCoordinatorNotAvailable
		}
	}
	if b.groups.Load().topicKnown.Load() {
		return nil
	}
	if _, err := b.callGroups(req, &groupCall{topicReady: true}); err != nil {
		return tributary.ErrCoordinatorNotAvailable
	}
	return nil
}

var (
	errGroupsClosing = errors.New("broker closing")
	errGroupPanic    = errors.New("group coordinator failed on this request")
)

// callGroups hands call to the loop and waits for its answer. It gives
// up, closing the connection, when the connection or the broker closes.
func (b *Broker) callGroups(req *request, call *groupCall) (kmsg.Response, error) {
	call.reply = make(chan kmsg.Response, 1)
	return callLoop(b, req, b.groups.Load().calls, call, call.reply, call.topicReady, errGroupPanic)
}

// callLoop sends call to a coordinator loop and waits for its answer on
// reply, giving up when the request's connection or the broker closes.
// A nil answer is the loop's panic (panicErr) unless nilOK.
func callLoop[C any](b *Broker, req *request, calls chan<- C, call C, reply <-chan kmsg.Response, nilOK bool, panicErr error) (kmsg.Response, error) {
	var dead <-chan struct{}
	if req != nil && req.conn != nil {
		dead = req.conn.Done()
	}
	select {
	case calls <- call:
	case <-dead:
		return nil, net.ErrClosed
	case <-b.closing:
		return nil, errGroupsClosing
	}
	select {
	case resp := <-reply:
		if resp == nil && !nilOK {
			return nil, panicErr
		}
		return resp, nil
	case <-dead:
		return nil, net.ErrClosed
	case <-b.closing:
		return nil, errGroupsClosing
	}
}

// groupRequest runs a single-group request on the loop: when the group's
// partition cannot be served, fail builds the error response; otherwise
// run asks the coordinator.
func (b *Broker) groupRequest(req *request, groupID string, fail func(*tributary.Error) kmsg.Response,
	run func(c *group.Coordinator, now time.Time, ref group.Ref) kmsg.Response) (any, error) {
	resp, err := b.callGroups(req, &groupCall{
		groups: []string{groupID},
		run: func(gc *groupCoordinator, now time.Time, ref group.Ref) kmsg.Response {
			if e := gc.groupError(groupID); e != nil {
				return fail(e)
			}
			return run(gc.c, now, ref)
		},
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// groupClient is how a JoinGroup's member is described: the client id and
// the peer host as Kafka prints it ("/127.0.0.1").
func groupClient(req *request) group.Client {
	host := ""
	if req.conn != nil {
		host = req.conn.RemoteAddr()
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
	}
	return group.Client{ID: req.clientID, Host: "/" + host}
}
