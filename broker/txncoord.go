package broker

// The transaction coordinator's glue: the broker half of KIP-98
// transactions, whose state machine is broker/txn.
//
// # Placement
//
// A transactional id is coordinated by the leader of its
// __transaction_state partition, txn.Partition(id, partitions), exactly
// as a group is by its __consumer_offsets partition (groups.go): the
// partition is loaded from its log when this broker becomes its leader
// and unloaded when it stops, so the coordinator moves with leadership.
// The coordinator epoch Kafka stamps on every marker is the partition's
// leader epoch at load time: a marker from a deposed coordinator carries
// an older one.
//
// # One goroutine owns the state machine
//
// txnLoop owns txn.Coordinator, as groupLoop owns group.Coordinator:
// handlers send it a txnCall and wait. After every step the loop drains
// the coordinator, appends its records to __transaction_state (acks=all,
// transaction.state.log.min.isr) and only then answers, so EndTxn is
// acknowledged once its PrepareCommit/PrepareAbort is durable. The
// markers a step asks for are written by a goroutine per transaction
// (writeMarkers), which retries until every partition holds its marker
// and then reports back with MarkersWritten; the coordinator answers
// CONCURRENT_TRANSACTIONS to that transactional id meanwhile.
//
// # Markers
//
// A marker goes to the leader of each partition of the transaction: this
// broker appends it itself (writeMarker), another gets WriteTxnMarkers.
// A marker written to a __consumer_offsets partition also completes the
// producer's pending transactional offset commits there
// (groupCoordinator.completeTxn).

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	grouppkg "github.com/tributary/tributary/broker/group"
	"github.com/tributary/tributary/broker/storage"
	"github.com/tributary/tributary/broker/txn"
	"github.com/tributary/tributary/internal/batch"
)

const txnStateTopic = "__transaction_state"

// txnCoordinator is the broker's side of the transaction coordinator.
// After initTxns only the loop goroutine touches the fields below calls.
type txnCoordinator struct {
	b          *Broker
	calls      chan *txnCall
	topicKnown atomic.Bool

	// Owned by txnLoop.
	coordParts // by __transaction_state partition
	c          *txn.Coordinator
	nparts     int32
	timer      *time.Timer
}

type txnCall struct {
	ids        []string // the transactional ids the request addresses
	run        func(tc *txnCoordinator, now time.Time) kmsg.Response
	topicReady bool
	reply      chan kmsg.Response
}

func (b *Broker) txnConfig(partitions int32) txn.Config {
	tc := txn.DefaultConfig()
	tc.NumPartitions = partitions
	tc.MaxTimeoutMs = b.cfg.TransactionMaxTimeoutMs
	tc.AbortCheckInterval = time.Duration(b.cfg.TransactionAbortTimedOutCleanupIntervalMs) * time.Millisecond
	tc.RemoveExpiredInterval = time.Duration(b.cfg.TransactionRemoveExpiredCleanupIntervalMs) * time.Millisecond
	tc.ExpirationMs = int64(b.cfg.TransactionalIDExpirationMs)
	tc.AllocateProducerID = b.data.pids.allocate
	tc.GroupPartition = b.groupPartition
	tc.PartitionExists = func(topic string, partition int32) bool {
		_, err := b.lookupPartition(topic, partition)
		return err == nil
	}
	return tc
}

// groupPartition maps a group to its __consumer_offsets partition with
// the topic's real partition count (AddOffsetsToTxn).
func (b *Broker) groupPartition(group string) int32 {
	return grouppkg.Partition(group, max(b.groups.Load().nparts, 1))
}

func (b *Broker) initTxns() error {
	nparts := b.cfg.TransactionStateLogNumPartitions
	if t := b.lookupTopic(txnStateTopic); t != nil {
		b.mu.RLock()
		nparts = int32(len(t.partitions))
		b.mu.RUnlock()
	}
	c, err := txn.New(b.txnConfig(max(nparts, 1)))
	if err != nil {
		return fmt.Errorf("broker: transaction coordinator: %w", err)
	}
	tc := &txnCoordinator{
		b:          b,
		calls:      make(chan *txnCall, groupCallQueue),
		c:          c,
		coordParts: newCoordParts(nparts),
		nparts:     nparts,
	}
	b.txns.Store(tc)
	b.goTracked(tc.loop)
	return nil
}

func (tc *txnCoordinator) loop() {
	tc.timer = time.NewTimer(time.Hour)
	defer tc.timer.Stop()
	tc.topicAppeared()
	tc.rearm()
	coordLoop(&tc.coordParts, tc.calls, tc.timer, tc.b.closing, tc.serve, tc.tick, tc.load)
}

// topicAppeared queues the partitions of __transaction_state this broker
// leads; an empty one is loaded at once (as groups.go explains).
func (tc *txnCoordinator) topicAppeared() {
	if tc.b.lookupTopic(txnStateTopic) == nil {
		return
	}
	tc.topicKnown.Store(true)
	for p := int32(0); p < tc.nparts; p++ {
		if tc.state[p] != partAbsent {
			continue
		}
		if _, err := tc.b.leaderPartition(txnStateTopic, p); err != nil {
			tc.state[p] = partFollower
			continue
		}
		tc.state[p] = partLoading
		part, err := tc.b.lookupPartition(txnStateTopic, p)
		if err == nil && part.log != nil && part.log.LogEndOffset() <= part.log.LogStartOffset() {
			tc.load(p)
			continue
		}
		tc.toLoad = append(tc.toLoad, p)
	}
}

func (tc *txnCoordinator) idError(id string) *tributary.Error {
	return tc.partitionError(txn.Partition(id, max(tc.nparts, 1)))
}

func (tc *txnCoordinator) serve(call *txnCall) {
	if call.topicReady {
		tc.topicAppeared()
		call.reply <- nil
		return
	}
	resp, poisoned := tc.run(call)
	tc.step(call, resp, poisoned)
}

func (tc *txnCoordinator) run(call *txnCall) (resp kmsg.Response, poisoned map[int32]bool) {
	defer func() {
		if r := recover(); r != nil {
			tc.b.logger.Error("transaction coordinator panic; reloading the affected partitions", "panic", r, "stack", string(debug.Stack()))
			poisoned = map[int32]bool{}
			for _, id := range call.ids {
				poisoned[txn.Partition(id, max(tc.nparts, 1))] = true
			}
			if len(call.ids) == 0 {
				for p := range tc.nparts {
					poisoned[p] = true
				}
			}
			resp = nil
		}
	}()
	return call.run(tc, time.Now()), nil
}

func (tc *txnCoordinator) tick() {
	now := time.Now()
	tc.retryDue(now)
	tc.c.Tick(now)
	tc.step(nil, nil, nil)
}

// step drains the coordinator: records first, then the answer, then the
// marker writers (a marker must never precede the durable
// PrepareCommit/PrepareAbort that decided it).
func (tc *txnCoordinator) step(call *txnCall, resp kmsg.Response, poisoned map[int32]bool) {
	out := tc.c.Drain()
	failed := tc.appendRecords(out.Records, poisoned)
	if call != nil {
		switch {
		case poisoned != nil:
			call.reply <- nil
		default:
			if len(failed) > 0 {
				resp = txnNotCoordinator(resp, call.ids, failed, tc.nparts)
			}
			call.reply <- resp
		}
	}
	for _, job := range out.Markers {
		if failed[txn.Partition(job.TransactionalID, max(tc.nparts, 1))] {
			continue // its decision is not durable; the reload redoes it
		}
		tc.startMarkers(job)
	}
	for p := range failed {
		tc.c.Unload(p)
		tc.reload(p)
	}
	if len(failed) > 0 {
		tc.c.Drain() // Unload writes nothing
	}
	tc.rearm()
}

func (tc *txnCoordinator) rearm() {
	at, ok := tc.c.NextDeadline()
	tc.coordParts.rearm(tc.timer, at, ok)
}

// appendRecords writes the records to __transaction_state, one append
// per partition, and returns the partitions whose append failed.
func (tc *txnCoordinator) appendRecords(recs []txn.Record, poisoned map[int32]bool) map[int32]bool {
	return appendByPartition(recs, func(r txn.Record) int32 { return r.Partition }, poisoned, func(pi int32, rs []txn.Record, now int64) error {
		err := tc.appendPartition(pi, rs, now)
		if err != nil {
			tc.b.logger.Error("transaction coordinator: append to __transaction_state failed; unloading the partition", "partition", pi, "err", err)
		}
		return err
	})
}

// appendPartition appends records to partition pi of __transaction_state
// with acks=all and waits until the ISR holds them.
func (tc *txnCoordinator) appendPartition(pi int32, recs []txn.Record, now int64) error {
	b := tc.b
	p, err := b.leaderPartition(txnStateTopic, pi)
	if err != nil {
		return err
	}
	data := encodeBatches(recs, func(r txn.Record) ([]byte, []byte) { return r.Key, r.Value }, now)
	minISR := b.minInsyncReplicas(p.topic)
	res, err := p.rep.AppendAsLeader(data, -1, minISR)
	if err != nil {
		return err
	}
	b.notifyPartition(p)
	return b.waitAcked(p, res.LastOffset+1, minISR, offsetCommitTimeout)
}

func (tc *txnCoordinator) load(pi int32) {
	tc.c.BeginLoad(pi)
	epoch, err := tc.readPartition(pi)
	if err != nil {
		tc.b.logger.Error("transaction coordinator: loading __transaction_state partition failed; will retry", "partition", pi, "err", err)
		tc.c.Unload(pi)
		tc.c.Drain()
		tc.loadFailed(pi)
		tc.rearm()
		return
	}
	tc.c.Loaded(time.Now(), pi, epoch)
	tc.state[pi] = partLoaded
	// Loaded re-asks for the markers of transactions a crash left
	// prepared.
	tc.step(nil, nil, nil)
}

// readPartition feeds partition pi, from its start to its end, to Load
// and returns the coordinator epoch (the partition's leader epoch).
func (tc *txnCoordinator) readPartition(pi int32) (int32, error) {
	p, err := tc.b.leaderPartition(txnStateTopic, pi)
	if err != nil {
		return 0, err
	}
	epoch := p.leaderEpoch()
	err = readInternal(p.log, func(h *batch.Header, key, value []byte) error {
		if err := tc.c.Load(pi, key, value); err != nil {
			tc.b.logger.Warn("transaction coordinator: skipping bad __transaction_state record", "partition", pi, "err", err)
		}
		return nil
	}, nil)
	return epoch, err
}

// readInternal walks a log from its start to its end, calling rec for
// each keyed record of a data batch and marker (when not nil) for each
// transaction marker.
func readInternal(l *storage.Log, rec func(h *batch.Header, key, value []byte) error, marker func(h *batch.Header, commit bool)) error {
	end := l.LogEndOffset()
	off := l.LogStartOffset()
	var buf []byte
	dec := batch.GetBuffer()
	defer batch.PutBuffer(dec)
	const limit = 256 << 20
	for off < end {
		fs, err := l.Read(off, end, 1<<20, true)
		if err != nil {
			return err
		}
		if fs.Len == 0 {
			break
		}
		if int64(cap(buf)) < fs.Len {
			buf = make([]byte, fs.Len)
		}
		buf = buf[:fs.Len]
		if _, err := fs.File.ReadAt(buf, fs.Pos); err != nil {
			return fmt.Errorf("reading %s: %w", l.Dir(), err)
		}
		for rest := buf; len(rest) > 0; {
			h, err := batch.ParseHeader(rest)
			if err != nil {
				return err
			}
			size := h.Size()
			if size > int64(len(rest)) || h.Length < batch.MinLength {
				return fmt.Errorf("batch at offset %d: %w", h.BaseOffset, batch.ErrBadLength)
			}
			b := rest[:size]
			rest = rest[size:]
			next := h.LastOffset() + 1
			if next <= off {
				return fmt.Errorf("batch at offset %d does not advance past %d", h.BaseOffset, off)
			}
			off = next
			if h.IsControl() {
				if commit, _, ok := storage.ParseMarker(&h, b); ok && marker != nil {
					marker(&h, commit)
				}
				continue
			}
			region, err := batch.RecordsRegion(b, (*dec)[:0], limit)
			if err != nil {
				return err
			}
			it := batch.NewRecords(region, h.RecordCount)
			var r batch.Record
			for it.Next(&r) {
				if r.Key == nil {
					continue
				}
				if err := rec(&h, r.Key, r.Value); err != nil {
					return err
				}
			}
			if err := it.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

// txnNotCoordinator rewrites resp to NOT_COORDINATOR when a transactional
// id it answers for lives in a failed partition.
func txnNotCoordinator(resp kmsg.Response, ids []string, failed map[int32]bool, nparts int32) kmsg.Response {
	hit := false
	for _, id := range ids {
		if failed[txn.Partition(id, max(nparts, 1))] {
			hit = true
		}
	}
	if !hit {
		return resp
	}
	code := tributary.ErrNotCoordinator.Code
	switch r := resp.(type) {
	case *kmsg.InitProducerIDResponse:
		r.ErrorCode, r.ProducerID, r.ProducerEpoch = code, -1, -1
	case *kmsg.EndTxnResponse:
		r.ErrorCode = code
	case *kmsg.AddOffsetsToTxnResponse:
		r.ErrorCode = code
	case *kmsg.AddPartitionsToTxnResponse:
		r.ErrorCode = code
		for i := range r.Topics {
			for j := range r.Topics[i].Partitions {
				r.Topics[i].Partitions[j].ErrorCode = code
			}
		}
		for i := range r.Transactions {
			for j := range r.Transactions[i].Topics {
				for k := range r.Transactions[i].Topics[j].Partitions {
					r.Transactions[i].Topics[j].Partitions[k].ErrorCode = code
				}
			}
		}
	}
	return resp
}

// ensureTxnTopic creates __transaction_state if it does not exist and has
// the loop pick it up.
func (b *Broker) ensureTxnTopic(req *request) *tributary.Error {
	tc := b.txns.Load()
	if b.lookupTopic(txnStateTopic) == nil {
		b.mu.RLock()
		eff := b.mu.eff
		b.mu.RUnlock()
		err := b.createTopic(txnStateTopic, tc.nparts, eff.TransactionStateLogReplicationFactor, map[string]string{
			"cleanup.policy":                 "compact",
			"compression.type":               "uncompressed",
			"min.insync.replicas":            fmt.Sprint(eff.TransactionStateLogMinIsr),
			"segment.bytes":                  fmt.Sprint(eff.TransactionStateLogSegmentBytes),
			"unclean.leader.election.enable": "false",
		})
		if err != nil && tributary.CodeOf(err) != tributary.ErrTopicAlreadyExists.Code {
			b.logger.Warn("creating __transaction_state failed", "err", err)
			return tributary.ErrCoordinatorNotAvailable
		}
	}
	if tc.topicKnown.Load() {
		return nil
	}
	if _, err := b.callTxns(req, &txnCall{topicReady: true}); err != nil {
		return tributary.ErrCoordinatorNotAvailable
	}
	return nil
}

// txnCoordinatorFor answers where a transactional id is coordinated.
func (b *Broker) txnCoordinatorFor(id string) (int32, string, int32, *tributary.Error, string) {
	return b.internalLeader(txnStateTopic, func(n int32) int32 { return txn.Partition(id, n) }, "transaction")
}

var errTxnPanic = errors.New("transaction coordinator failed on this request")

// callTxns hands call to the loop and waits for its answer.
func (b *Broker) callTxns(req *request, call *txnCall) (kmsg.Response, error) {
	tc := b.txns.Load()
	if tc == nil {
		return nil, errGroupsClosing
	}
	call.reply = make(chan kmsg.Response, 1)
	return callLoop(b, req, tc.calls, call, call.reply, call.topicReady, errTxnPanic)
}

// txnRequest runs a request for transactional ids on the loop: when one
// of their partitions cannot be served, fail builds the error response.
func (b *Broker) txnRequest(req *request, ids []string, fail func(*tributary.Error) kmsg.Response,
	run func(c *txn.Coordinator, now time.Time) kmsg.Response) (any, error) {
	if tc := b.txns.Load(); tc != nil && !tc.topicKnown.Load() {
		// The topic may have been created through another broker.
		if b.lookupTopic(txnStateTopic) != nil {
			b.callTxns(req, &txnCall{topicReady: true})
		}
	}
	resp, err := b.callTxns(req, &txnCall{
		ids: ids,
		run: func(tc *txnCoordinator, now time.Time) kmsg.Response {
			for _, id := range ids {
				if e := tc.idError(id); e != nil {
					return fail(e)
				}
			}
			return run(tc.c, now)
		},
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// txnStateRoleChanged moves the transactions of one __transaction_state
// partition with its leadership.
func (b *Broker) txnStateRoleChanged(p *partition) {
	if b.txns.Load() == nil {
		return
	}
	pi := p.index
	b.tryGo(func() {
		b.callTxns(nil, &txnCall{topicReady: true})
		b.callTxns(nil, &txnCall{run: func(tc *txnCoordinator, _ time.Time) kmsg.Response {
			if !tc.topicKnown.Load() {
				return kmsg.NewPtrHeartbeatResponse()
			}
			_, err := b.leaderPartition(txnStateTopic, pi)
			if err != nil {
				tc.c.Unload(pi)
			}
			tc.follow(pi, err == nil)
			return kmsg.NewPtrHeartbeatResponse()
		}})
	})
}

// markerRetryBackoff spaces attempts to write a marker whose partition
// has no reachable leader.
const markerRetryBackoff = 100 * time.Millisecond

// startMarkers writes the markers of job in the background and tells the
// coordinator once all are written.
func (tc *txnCoordinator) startMarkers(job txn.MarkerJob) {
	b := tc.b
	b.tryGo(func() {
		if !b.writeMarkers(job) {
			return // closing, or the coordinator moved: the next one redoes it
		}
		b.callTxns(nil, &txnCall{ids: []string{job.TransactionalID}, run: func(tc *txnCoordinator, now time.Time) kmsg.Response {
			tc.c.MarkersWritten(now, job)
			return kmsg.NewPtrHeartbeatResponse()
		}})
	})
}

// writeMarkers writes job's marker to each of its partitions, retrying
// until each is written, its topic is gone, this broker stops
// coordinating the transaction, or the broker closes. It reports
// whether all were handled.
func (b *Broker) writeMarkers(job txn.MarkerJob) bool {
	pending := slices.Clone(job.Partitions)
	m := storage.Marker{ProducerID: job.ProducerID, ProducerEpoch: job.ProducerEpoch, Commit: job.Commit, CoordinatorEpoch: job.CoordinatorEpoch}
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt > 0 && !b.sleep(markerRetryBackoff) {
			return false
		}
		if !b.stillCoordinates(job) {
			return false
		}
		pending = slices.DeleteFunc(pending, func(tp txn.TopicPartition) bool {
			err := b.sendMarker(tp, m)
			switch {
			case err == nil:
				return true
			case errors.Is(err, tributary.ErrUnknownTopicOrPartition) && b.lookupTopic(tp.Topic) == nil:
				return true // deleted: nothing left to mark (Kafka drops it too)
			}
			if attempt%50 == 10 {
				b.logger.Warn("writing a transaction marker failed; retrying", "topic", tp.Topic, "partition", tp.Partition,
					"transactional_id", job.TransactionalID, "err", err)
			}
			return false
		})
	}
	return true
}

// stillCoordinates reports whether this broker still leads the
// transactional id's state partition at the job's coordinator epoch.
func (b *Broker) stillCoordinates(job txn.MarkerJob) bool {
	tc := b.txns.Load()
	p, err := b.leaderPartition(txnStateTopic, txn.Partition(job.TransactionalID, max(tc.nparts, 1)))
	return err == nil && p.leaderEpoch() == job.CoordinatorEpoch
}

// sendMarker writes m to one partition: itself when it leads it, with
// WriteTxnMarkers to the leader otherwise.
func (b *Broker) sendMarker(tp txn.TopicPartition, m storage.Marker) error {
	p, err := b.lookupPartition(tp.Topic, tp.Partition)
	if err != nil {
		return err
	}
	st := p.state.Load()
	if st == nil || st.Leader < 0 {
		return tributary.ErrLeaderNotAvailable
	}
	if st.Leader == b.cfg.NodeID {
		return b.writeMarker(tp.Topic, tp.Partition, m)
	}
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	req.Version = 1
	wm := kmsg.NewWriteTxnMarkersRequestMarker()
	wm.ProducerID, wm.ProducerEpoch, wm.Committed, wm.CoordinatorEpoch = m.ProducerID, m.ProducerEpoch, m.Commit, m.CoordinatorEpoch
	wt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	wt.Topic, wt.Partitions = tp.Topic, []int32{tp.Partition}
	wm.Topics = []kmsg.WriteTxnMarkersRequestMarkerTopic{wt}
	req.Markers = []kmsg.WriteTxnMarkersRequestMarker{wm}
	ctx, cancel := context.WithTimeout(b.life, 2*offsetCommitTimeout)
	defer cancel()
	resp, err := peerCall[*kmsg.WriteTxnMarkersResponse](ctx, b, st.Leader, laneMarkers, req)
	if err != nil {
		return err
	}
	for _, rm := range resp.Markers {
		for _, rt := range rm.Topics {
			for _, rp := range rt.Partitions {
				if err := tributary.ErrorForCode(rp.ErrorCode); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// writeMarker appends m to a partition this broker leads, with acks=all,
// and completes the producer's pending offset commits when the partition
// is one of __consumer_offsets.
func (b *Broker) writeMarker(topic string, pi int32, m storage.Marker) error {
	p, err := b.leaderPartition(topic, pi)
	if err != nil {
		return err
	}
	minISR := b.minInsyncReplicas(p.topic)
	p.txnMu.Lock()
	res, err := p.rep.AppendAsLeaderWith(-1, minISR, func(l *storage.Log, epoch int32) (storage.AppendResult, error) {
		return l.AppendMarker(m, epoch)
	})
	p.txnMu.Unlock()
	if err != nil {
		return err
	}
	b.notifyPartition(p)
	if err := b.waitAcked(p, res.LastOffset+1, minISR, offsetCommitTimeout); err != nil {
		return err
	}
	if topic == offsetsTopic {
		b.groupsTxnCompleted(pi, m.ProducerID, m.Commit)
	}
	return nil
}
