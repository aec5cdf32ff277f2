package replica

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/internal/batch"
)

// fetchVersion is the Fetch version followers send: v12 carries
// LastFetchedEpoch and answers DivergingEpoch, and still names topics
// (v13+ uses topic ids).
const fetchVersion = 12

// followed is one partition in a fetcher, replaced (never reused) by
// every Apply, so a stale answer finds a different pointer.
type followed struct {
	p           *Partition
	gen         uint64
	leaderEpoch int32
	truncating  bool      // must reconcile with the leader (OffsetForLeaderEpoch) before fetching
	delayUntil  time.Time // backing off after an error
}

// fetcher is the follower fetcher for one leader broker (Kafka's
// ReplicaFetcherThread): one goroutine, one request at a time for every
// partition followed from that leader.
type fetcher struct {
	m      *Manager
	leader int32
	ctx    context.Context
	cancel context.CancelFunc
	wake   chan struct{} // buffered 1: a partition was added

	mu struct {
		sync.Mutex
		parts map[*Partition]*followed
	}
}

func newFetcher(m *Manager, leader int32) *fetcher {
	f := &fetcher{m: m, leader: leader, wake: make(chan struct{}, 1)}
	f.ctx, f.cancel = context.WithCancel(m.ctx)
	f.mu.parts = make(map[*Partition]*followed)
	return f
}

func (f *fetcher) stop() { f.cancel() }

func (f *fetcher) add(p *Partition, leaderEpoch int32, gen uint64) {
	f.mu.Lock()
	f.mu.parts[p] = &followed{p: p, gen: gen, leaderEpoch: leaderEpoch, truncating: true}
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// remove takes p out and reports whether the fetcher is now empty.
func (f *fetcher) remove(p *Partition) (empty bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.mu.parts[p]; !ok {
		return false
	}
	delete(f.mu.parts, p)
	return len(f.mu.parts) == 0
}

// update changes fp's state if fp is still the fetcher's entry for its
// partition.
func (f *fetcher) update(fp *followed, fn func(*followed)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mu.parts[fp.p] == fp {
		fn(fp)
	}
}

func (f *fetcher) backoff(fp *followed) {
	// Backoffs run on the real clock: Config.Now drives replica lag,
	// and a test holding it still must not stall the fetcher.
	until := time.Now().Add(f.m.cfg.FetchBackoff)
	f.update(fp, func(fp *followed) { fp.delayUntil = until })
}

// snapshot splits the partitions into those to reconcile and those to
// fetch, skipping ones backing off; wait is how long until the next one
// comes out of its backoff (0 when none is waiting).
func (f *fetcher) snapshot() (truncate, fetch []*followed, wait time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	for _, fp := range f.mu.parts {
		if d := fp.delayUntil.Sub(now); d > 0 {
			if wait == 0 || d < wait {
				wait = d
			}
			continue
		}
		if fp.truncating {
			truncate = append(truncate, fp)
		} else {
			fetch = append(fetch, fp)
		}
	}
	return truncate, fetch, wait
}

func (f *fetcher) run() {
	log := f.m.cfg.Logger.With("leader", f.leader)
	for f.ctx.Err() == nil {
		truncate, fetch, wait := f.snapshot()
		if len(truncate) > 0 {
			f.reconcile(truncate)
			continue
		}
		if len(fetch) > 0 {
			f.fetch(fetch)
			continue
		}
		// Nothing ready: sleep until a backoff ends or a partition
		// arrives.
		if wait <= 0 || wait > f.m.cfg.FetchBackoff {
			wait = f.m.cfg.FetchBackoff
		}
		t := time.NewTimer(wait)
		select {
		case <-f.ctx.Done():
		case <-f.wake:
		case <-t.C:
		}
		t.Stop()
	}
	log.Debug("fetcher stopped")
}

// sleepBackoff waits FetchBackoff after a transport failure, or less
// if the fetcher is stopped.
func (f *fetcher) sleepBackoff() {
	t := time.NewTimer(f.m.cfg.FetchBackoff)
	defer t.Stop()
	select {
	case <-f.ctx.Done():
	case <-t.C:
	}
}

// current runs fn with fp's partition held in its follower role (roleMu
// shared) if fp is still current: the generation it was added in, as
// follower. It returns false when fp is stale.
func (f *fetcher) current(fp *followed, fn func()) bool {
	p := fp.p
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	p.mu.Lock()
	ok := p.mu.gen == fp.gen && p.mu.role == roleFollower
	p.mu.Unlock()
	if ok {
		fn()
	}
	return ok
}

// reconcile sends OffsetForLeaderEpoch for the partitions' latest epochs
// and truncates each divergent tail (KIP-101/279).
func (f *fetcher) reconcile(parts []*followed) {
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.Version = 4
	req.ReplicaID = f.m.cfg.NodeID
	asked := make(map[tp]*followed, len(parts))
	topics := make(map[string]int)
	for _, fp := range parts {
		l := fp.p.log
		latest := l.LatestEpoch()
		if latest < 0 {
			// No epochs: an empty log has nothing to reconcile;
			// otherwise fall back to the HW, as Kafka does for logs
			// from before leader epochs.
			f.current(fp, func() {
				if l.LogEndOffset() > l.LogStartOffset() {
					f.truncate(fp, l.HighWatermark())
				}
				f.update(fp, func(fp *followed) { fp.truncating = false })
			})
			continue
		}
		asked[tp{fp.p.topic, fp.p.index}] = fp
		i, ok := topics[fp.p.topic]
		if !ok {
			t := kmsg.NewOffsetForLeaderEpochRequestTopic()
			t.Topic = fp.p.topic
			req.Topics = append(req.Topics, t)
			i = len(req.Topics) - 1
			topics[fp.p.topic] = i
		}
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition = fp.p.index
		rp.CurrentLeaderEpoch = fp.leaderEpoch
		rp.LeaderEpoch = latest
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	if len(asked) == 0 {
		return
	}
	resp, err := f.m.cfg.Transport.OffsetForLeaderEpoch(f.ctx, f.leader, req)
	if err != nil {
		if f.ctx.Err() == nil {
			f.m.cfg.Logger.Warn("OffsetForLeaderEpoch failed", "leader", f.leader, "err", err)
			f.sleepBackoff()
		}
		return
	}
	for _, t := range resp.Topics {
		for _, rp := range t.Partitions {
			fp := asked[tp{t.Topic, rp.Partition}]
			if fp == nil {
				continue
			}
			delete(asked, tp{t.Topic, rp.Partition})
			if rp.ErrorCode != 0 {
				f.partitionError(fp, "OffsetForLeaderEpoch", rp.ErrorCode)
				continue
			}
			f.current(fp, func() { f.applyEpochEnd(fp, rp.LeaderEpoch, rp.EndOffset) })
		}
	}
	for _, fp := range asked { // not answered
		f.backoff(fp)
	}
}

type tp struct {
	topic string
	index int32
}

// applyEpochEnd truncates after the leader said where epoch ends
// (Kafka's getOffsetTruncationState, KIP-279). If the leader answered an
// epoch this log does not have, the log is cut to where its own history
// before that epoch ends and the leader is asked again; otherwise the cut
// is at min(leader's end, own end) of the common epoch and fetching
// starts. Called with roleMu held shared.
func (f *fetcher) applyEpochEnd(fp *followed, epoch int32, end int64) {
	l := fp.p.log
	leo := l.LogEndOffset()
	done := true
	var target int64
	switch {
	case end < 0:
		// The leader knows no epoch at or below ours: keep what
		// was committed, fetch finds out the rest.
		target = l.HighWatermark()
	case epoch < 0:
		target = min(end, leo)
	default:
		fe, fend := l.EndOffsetForEpoch(epoch)
		switch {
		case fend < 0:
			target = min(end, leo)
		case fe != epoch:
			target = min(fend, leo)
			done = false
		default:
			target = min(fend, end, leo)
		}
	}
	if !f.truncate(fp, target) {
		return
	}
	f.update(fp, func(fp *followed) { fp.truncating = !done })
}

// truncate cuts the log at target (with roleMu held shared) and reports
// success; a failure backs the partition off.
func (f *fetcher) truncate(fp *followed, target int64) bool {
	l := fp.p.log
	leo, hw := l.LogEndOffset(), l.HighWatermark()
	if target < leo {
		lvl := f.m.cfg.Logger.Info
		if target < hw {
			// Committed records should never need cutting; this is
			// an unclean election or a lost disk.
			lvl = f.m.cfg.Logger.Warn
		}
		lvl("truncating divergent follower log", "topic", fp.p.topic, "partition", fp.p.index,
			"leader", f.leader, "from", leo, "to", target, "hw", hw)
	}
	if err := l.TruncateTo(target); err != nil {
		f.m.cfg.Logger.Error("truncating follower log", "topic", fp.p.topic, "partition", fp.p.index, "err", err)
		f.backoff(fp)
		return false
	}
	return true
}

// partitionError handles a partition's error code in a leader's answer:
// leadership and epoch errors wait for the next Apply (or retry after
// FetchBackoff, as the metadata may just not have reached one of us);
// anything else backs off too.
func (f *fetcher) partitionError(fp *followed, what string, code int16) {
	err := tributary.ErrorForCode(code)
	lvl := f.m.cfg.Logger.Warn
	switch {
	case errors.Is(err, tributary.ErrFencedLeaderEpoch), errors.Is(err, tributary.ErrUnknownLeaderEpoch),
		errors.Is(err, tributary.ErrNotLeaderOrFollower), errors.Is(err, tributary.ErrUnknownTopicOrPartition):
		lvl = f.m.cfg.Logger.Info
	}
	lvl("follower "+what+" error", "topic", fp.p.topic, "partition", fp.p.index, "leader", f.leader, "err", err)
	f.backoff(fp)
}

// fetch sends one Fetch for the partitions and processes the answer.
func (f *fetcher) fetch(parts []*followed) {
	cfg := &f.m.cfg
	req := kmsg.NewPtrFetchRequest()
	req.Version = fetchVersion
	req.ReplicaID = cfg.NodeID
	req.MaxWaitMillis = int32(min(cfg.FetchWaitMax.Milliseconds(), 1<<31-1))
	req.MinBytes = cfg.FetchMinBytes
	req.MaxBytes = cfg.FetchResponseMaxBytes
	req.SessionID = 0
	req.SessionEpoch = -1 // full fetches, no session
	asked := make(map[tp]*followed, len(parts))
	offsets := make(map[*followed]int64, len(parts))
	topics := make(map[string]int)
	byID := make(map[[16]byte]string)
	for _, fp := range parts {
		l := fp.p.log
		byID[fp.p.topicID] = fp.p.topic
		i, ok := topics[fp.p.topic]
		if !ok {
			t := kmsg.NewFetchRequestTopic()
			t.Topic = fp.p.topic
			t.TopicID = fp.p.topicID
			req.Topics = append(req.Topics, t)
			i = len(req.Topics) - 1
			topics[fp.p.topic] = i
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = fp.p.index
		rp.CurrentLeaderEpoch = fp.leaderEpoch
		rp.FetchOffset = l.LogEndOffset()
		rp.LastFetchedEpoch = l.LatestEpoch()
		rp.LogStartOffset = l.LogStartOffset()
		rp.PartitionMaxBytes = cfg.FetchMaxBytes
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
		asked[tp{fp.p.topic, fp.p.index}] = fp
		offsets[fp] = rp.FetchOffset
	}
	resp, err := cfg.Transport.Fetch(f.ctx, f.leader, req)
	if err != nil {
		if f.ctx.Err() == nil {
			cfg.Logger.Warn("replica fetch failed", "leader", f.leader, "err", err)
			f.sleepBackoff()
		}
		return
	}
	if resp.ErrorCode != 0 {
		cfg.Logger.Warn("replica fetch refused", "leader", f.leader, "err", tributary.ErrorForCode(resp.ErrorCode))
		f.sleepBackoff()
		return
	}
	for _, t := range resp.Topics {
		name := t.Topic
		if name == "" {
			// Fetch v13+ (if a transport upgraded the version)
			// names topics by id only.
			name = byID[t.TopicID]
		}
		for i := range t.Partitions {
			rp := &t.Partitions[i]
			fp := asked[tp{name, rp.Partition}]
			if fp == nil {
				continue
			}
			delete(asked, tp{name, rp.Partition})
			f.fetched(fp, offsets[fp], rp)
		}
	}
}

// fetched processes one partition of a Fetch response.
func (f *fetcher) fetched(fp *followed, fetchOffset int64, rp *kmsg.FetchResponseTopicPartition) {
	switch {
	case rp.ErrorCode == tributary.ErrOffsetOutOfRange.Code:
		f.outOfRange(fp)
		return
	case rp.ErrorCode != 0:
		f.partitionError(fp, "fetch", rp.ErrorCode)
		return
	}
	moved := false
	f.current(fp, func() {
		if rp.DivergingEpoch.EndOffset >= 0 {
			f.applyEpochEnd(fp, rp.DivergingEpoch.Epoch, rp.DivergingEpoch.EndOffset)
			return
		}
		moved = f.appendFetched(fp, fetchOffset, rp)
	})
	if moved {
		f.m.hwMoved(fp.p)
	}
}

// appendFetched appends the records, then follows the leader's HW and
// log start. Called with roleMu held shared; reports whether the HW
// moved.
func (f *fetcher) appendFetched(fp *followed, fetchOffset int64, rp *kmsg.FetchResponseTopicPartition) bool {
	l := fp.p.log
	if l.LogEndOffset() != fetchOffset {
		return false // the log changed since the request; refetch
	}
	recs := wholeBatches(rp.RecordBatches)
	if len(recs) == 0 && len(rp.RecordBatches) > 0 {
		// Not one whole batch: a leader always sends its first batch
		// whole (KIP-74), so this answer is damaged. Back off rather
		// than ask again at once.
		f.m.cfg.Logger.Warn("fetch answer without a whole batch", "topic", fp.p.topic, "partition", fp.p.index,
			"leader", f.leader, "offset", fetchOffset, "bytes", len(rp.RecordBatches))
		f.backoff(fp)
		return false
	}
	if len(recs) > 0 {
		h, err := batch.ParseHeader(recs)
		if err == nil && h.BaseOffset < fetchOffset && h.LastOffset() >= fetchOffset &&
			fetchOffset == l.LogStartOffset() {
			// The leader's log start falls inside a batch (after
			// DeleteRecords) and this log is empty there: restart it
			// at the batch, as Kafka's follower does.
			err = l.TruncateFullyAndStartAt(h.BaseOffset)
		}
		if err == nil {
			_, err = l.AppendAsFollower(recs)
		}
		if err != nil {
			f.m.cfg.Logger.Error("appending replicated batches", "topic", fp.p.topic, "partition", fp.p.index,
				"leader", f.leader, "offset", fetchOffset, "err", err)
			if errors.Is(err, tributary.ErrOffsetOutOfRange) {
				f.update(fp, func(fp *followed) { fp.truncating = true })
			}
			f.backoff(fp)
			return false
		}
	}
	p := fp.p
	p.mu.Lock()
	defer p.mu.Unlock()
	moved := false
	if hw := min(rp.HighWatermark, l.LogEndOffset()); hw > l.HighWatermark() {
		l.SetHighWatermark(hw)
		moved = true
	}
	if ls := min(rp.LogStartOffset, l.HighWatermark()); ls > l.LogStartOffset() {
		if err := l.DeleteRecordsBefore(ls); err != nil {
			f.m.cfg.Logger.Warn("following the leader's log start", "topic", p.topic, "partition", p.index, "err", err)
		}
	}
	return moved
}

// wholeBatches drops a partial batch at the end of fetched bytes (a
// leader may cut a response at its byte limit).
func wholeBatches(b []byte) []byte {
	pos := 0
	for pos < len(b) {
		size := batch.SizeAt(b[pos:])
		if size <= 0 || size > int64(len(b)-pos) {
			break
		}
		pos += int(size)
	}
	return b[:pos]
}

// outOfRange handles OFFSET_OUT_OF_RANGE as Kafka's follower does: ask
// the leader for its log end and start; a log ahead of the leader's end
// (an unclean election) is cut there, one behind the leader's start
// starts over at it.
func (f *fetcher) outOfRange(fp *followed) {
	end, err1 := f.listOffset(fp, -1)
	start, err2 := f.listOffset(fp, -2)
	if err := errors.Join(err1, err2); err != nil {
		if f.ctx.Err() == nil {
			f.m.cfg.Logger.Warn("finding the leader's offsets after OFFSET_OUT_OF_RANGE", "topic", fp.p.topic,
				"partition", fp.p.index, "leader", f.leader, "err", err)
			f.backoff(fp)
		}
		return
	}
	f.current(fp, func() {
		l := fp.p.log
		leo := l.LogEndOffset()
		var err error
		switch {
		case end < leo:
			f.m.cfg.Logger.Warn("follower log ahead of the leader's; truncating", "topic", fp.p.topic,
				"partition", fp.p.index, "leader_end", end, "leo", leo, "hw", l.HighWatermark())
			err = l.TruncateTo(end)
		case start > leo:
			f.m.cfg.Logger.Info("follower log behind the leader's log start; starting over", "topic", fp.p.topic,
				"partition", fp.p.index, "leader_start", start, "leo", leo)
			err = l.TruncateFullyAndStartAt(start)
		default:
			f.backoff(fp) // in range now: the leader moved meanwhile
			return
		}
		if err != nil {
			f.m.cfg.Logger.Error("resetting follower log", "topic", fp.p.topic, "partition", fp.p.index, "err", err)
			f.backoff(fp)
		}
	})
}

// listOffset asks the leader for its latest (-1) or earliest (-2)
// offset; as a replica (ReplicaID = NodeID) the latest is the log end.
func (f *fetcher) listOffset(fp *followed, ts int64) (int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = 4
	req.ReplicaID = f.m.cfg.NodeID
	t := kmsg.NewListOffsetsRequestTopic()
	t.Topic = fp.p.topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition = fp.p.index
	rp.CurrentLeaderEpoch = fp.leaderEpoch
	rp.Timestamp = ts
	t.Partitions = append(t.Partitions, rp)
	req.Topics = append(req.Topics, t)
	resp, err := f.m.cfg.Transport.ListOffsets(f.ctx, f.leader, req)
	if err != nil {
		return 0, err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if t.Topic == fp.p.topic && p.Partition == fp.p.index {
				if p.ErrorCode != 0 {
					return 0, tributary.ErrorForCode(p.ErrorCode)
				}
				return p.Offset, nil
			}
		}
	}
	return 0, errors.New("replica: ListOffsets answer lacks the partition")
}
