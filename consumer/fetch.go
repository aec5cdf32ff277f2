package consumer

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/client"
	"github.com/tributary/tributary/internal/batch"
	"github.com/tributary/tributary/internal/clientx"
)

// Fetching: every broker that leads an assigned partition gets a fetcher
// goroutine (fetchLoop). It sends one Fetch at a time for every partition
// it leads that has a known offset, is not paused and has no fetch
// outstanding, decodes the answer (its partitions in parallel, see
// decodeAll) and appends the records to the partitions' buffers,
// advancing their fetch offsets past them. The next
// Fetch goes out at once, while Poll drains the previous one, so fetching
// and processing overlap; it waits only while MaxBufferedBytes of records
// await Poll, which bounds memory.
//
// Offsets not known yet (a new assignment, Seek to Earliest/Latest, a
// reset after OFFSET_OUT_OF_RANGE) are looked up by the resolver
// (resolveLoop): OffsetFetch for committed offsets, ListOffsets at the
// leader for earliest and latest.
//
// Leaders come from the client's metadata cache; the metadata watcher
// (metadataLoop) reroutes partitions whenever it changes, and a fetch or
// lookup error that means the leader moved clears the partition's leader
// and asks for a refresh.

// waitRequest gives SyncGroup, which carries no timeout of its own but
// may wait up to the rebalance timeout for the leader's assignment, a
// Timeout, so the client's read deadline allows for that wait on top of
// RequestTimeout (the client knows the waits of Fetch and JoinGroup).
type waitRequest struct {
	kmsg.Request
	ms int32
}

func (w waitRequest) Timeout() int32 { return w.ms }

// routeLocked sets p's leader from meta and makes sure the leader has a
// fetcher.
func (c *Consumer) routeLocked(p *partState, meta *client.Metadata) {
	p.leader = -1
	t := meta.Topics[p.tp.Topic]
	if t == nil || t.Err != nil {
		return
	}
	i, ok := slices.BinarySearchFunc(t.Partitions, p.tp.Partition, func(pm client.PartitionMetadata, n int32) int {
		return int(pm.Partition) - int(n)
	})
	if !ok || t.Partitions[i].Leader < 0 {
		return
	}
	p.leader = t.Partitions[i].Leader
	p.leaderEpoch = t.Partitions[i].LeaderEpoch
	if !c.fetchers[p.leader] && !c.closed {
		c.fetchers[p.leader] = true
		id := p.leader
		c.goTracked(func() { c.fetchLoop(id) })
	}
}

// metadataLoop reroutes partitions on every metadata update, and asks for
// a refresh every missingLeaderRetry while some partition has no known leader.
func (c *Consumer) metadataLoop() {
	for {
		updated := c.cl.MetadataUpdated()
		meta := c.cl.CachedMetadata()
		c.mu.Lock()
		var missing []string
		for _, p := range c.order {
			c.routeLocked(p, meta)
			if p.leader < 0 {
				missing = append(missing, p.tp.Topic)
			}
		}
		c.notifyLocked()
		c.mu.Unlock()
		var tick <-chan time.Time
		var timer *time.Timer
		if len(missing) > 0 {
			timer = time.NewTimer(missingLeaderRetry)
			tick = timer.C
		}
		select {
		case <-updated:
		case <-tick:
			// The refresh may find nothing new (the cache already had
			// the new leader when the fetch error arrived), so the
			// loop reroutes from the cache either way.
			c.cl.TriggerMetadataRefresh(slices.Compact(slices.Sorted(slices.Values(missing)))...)
		case <-c.ctx.Done():
			return
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// missingLeaderRetry is how often metadata is refreshed while some
// partition has no known leader.
const missingLeaderRetry = 250 * time.Millisecond

// lostLeaderLocked forgets p's leader after an error saying it moved.
func (c *Consumer) lostLeaderLocked(p *partState) {
	p.leader = -1
	c.cl.TriggerMetadataRefresh(p.tp.Topic)
}

// sentPart is one partition of an outstanding fetch or lookup.
type sentPart struct {
	p      *partState
	epoch  uint64
	offset int64
	// leaderEpoch is p.leaderEpoch when the request was built: the
	// metadata loop rewrites p's field under c.mu while the request is
	// encoded without it.
	leaderEpoch int32
}

// nextFetch waits until broker id has partitions to fetch and builds the
// request; ok is false once the consumer closes.
func (c *Consumer) nextFetch(id int32) (req kmsg.Request, sent map[tributary.TopicPartition]sentPart, names map[[16]byte]string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if c.closed {
			return nil, nil, nil, false
		}
		if c.buffered < c.cfg.maxBufferedBytes {
			meta := c.cl.CachedMetadata()
			r := kmsg.NewPtrFetchRequest()
			r.MaxWaitMillis = int32(c.cfg.fetchMaxWait / time.Millisecond)
			r.MinBytes = c.cfg.fetchMinBytes
			r.MaxBytes = c.cfg.fetchMaxBytes
			r.IsolationLevel = int8(c.cfg.isolation)
			idsKnown := true
			topicIdx := make(map[string]int)
			for _, p := range c.order {
				if p.leader != id || p.offset < 0 || p.inflight || p.paused || p.stopped || p.held {
					continue
				}
				if sent == nil {
					sent = make(map[tributary.TopicPartition]sentPart)
					names = make(map[[16]byte]string)
				}
				p.inflight = true
				sent[p.tp] = sentPart{p, p.epoch, p.offset, p.leaderEpoch}
				i, seen := topicIdx[p.tp.Topic]
				if !seen {
					i = len(r.Topics)
					topicIdx[p.tp.Topic] = i
					t := kmsg.NewFetchRequestTopic()
					t.Topic = p.tp.Topic
					if tm := meta.Topics[p.tp.Topic]; tm != nil && tm.ID != ([16]byte{}) {
						t.TopicID = tm.ID
						names[tm.ID] = p.tp.Topic
					} else {
						idsKnown = false
					}
					r.Topics = append(r.Topics, t)
				}
				fp := kmsg.NewFetchRequestTopicPartition()
				fp.Partition = p.tp.Partition
				fp.FetchOffset = p.offset
				fp.CurrentLeaderEpoch = p.leaderEpoch
				fp.LastFetchedEpoch = -1
				fp.LogStartOffset = -1
				fp.PartitionMaxBytes = c.cfg.partitionMaxBytes
				r.Topics[i].Partitions = append(r.Topics[i].Partitions, fp)
			}
			if sent != nil {
				var out kmsg.Request = r
				if !idsKnown {
					// Fetch v13+ names topics by id only.
					out = client.Limit(r, 4, 12)
				}
				return out, sent, names, true
			}
		}
		wait := c.changed
		c.mu.Unlock()
		select {
		case <-wait:
		case <-c.ctx.Done():
		}
		c.mu.Lock()
	}
}

// fetchLoop is broker id's fetcher.
func (c *Consumer) fetchLoop(id int32) {
	failures := 0
	for {
		req, sent, names, ok := c.nextFetch(id)
		if !ok {
			return
		}
		var resp *kmsg.FetchResponse
		b, err := c.cl.Broker(c.ctx, id)
		if err == nil {
			var r kmsg.Response
			if r, err = b.Request(c.ctx, req); err == nil {
				resp = r.(*kmsg.FetchResponse)
				if resp.ErrorCode != 0 {
					err = tributary.ErrorForCode(resp.ErrorCode)
				}
			}
		}
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			failures++
			c.mu.Lock()
			for _, s := range sent {
				s.p.inflight = false
				if s.p.epoch == s.epoch {
					c.lostLeaderLocked(s.p)
				}
			}
			c.mu.Unlock()
			clientx.Of(c.cl).Logger().Debug("consumer: fetch failed", "broker", id, "err", err)
			if !c.sleep(clientx.Of(c.cl).Backoff(failures)) {
				return
			}
			c.mu.Lock()
			c.notifyLocked()
			c.mu.Unlock()
			continue
		}
		failures = 0
		if c.handleFetch(resp, sent, names) {
			failures++
			if !c.sleep(clientx.Of(c.cl).Backoff(failures)) {
				return
			}
			c.mu.Lock()
			c.notifyLocked()
			c.mu.Unlock()
		}
	}
}

// decoded is one partition's fetch result, decoded outside the lock.
type decoded struct {
	s     sentPart
	err   error
	recs  []*tributary.Record
	next  int64
	bytes int64
	hw    int64
	lso   int64
	// topic and rp are the partition's answer to decode, rp nil when
	// there is nothing to decode.
	topic string
	rp    *kmsg.FetchResponseTopicPartition
}

// parallelDecodeBytes is the fetch answer size from which decodeAll
// spreads partitions over goroutines; below it a goroutine costs more
// than it saves.
const parallelDecodeBytes = 256 << 10

// decodeAll decodes the partitions of one fetch answer, spreading them
// over up to GOMAXPROCS goroutines when the answer is large. Decoding
// (decompression, record parsing) is nearly all of a fetcher's time
// (profiles of the consume benchmark put it at nine tenths), and on one
// goroutine it kept one core busy while Poll's goroutine waited for it;
// the partitions are independent, so they decode in parallel.
func (c *Consumer) decodeAll(results []decoded) {
	readCommitted := c.cfg.isolation == ReadCommitted
	var parts, size int
	for i := range results {
		if results[i].rp != nil {
			parts++
			size += len(results[i].rp.RecordBatches)
		}
	}
	helpers := min(runtime.GOMAXPROCS(0), parts) - 1
	if size < parallelDecodeBytes {
		helpers = 0
	}
	var idx atomic.Int32
	work := func() {
		for {
			i := int(idx.Add(1)) - 1
			if i >= len(results) {
				return
			}
			if d := &results[i]; d.rp != nil {
				d.recs, d.next, d.err = decodeBatches(d.topic, d.rp, d.s.offset, readCommitted)
				d.rp = nil // the response is garbage once decoded
			}
		}
	}
	var wg sync.WaitGroup
	for range helpers {
		wg.Go(work)
	}
	work()
	wg.Wait()
}

// handleFetch applies a fetch response; it reports whether some partition
// failed in a way that calls for a backoff before the next fetch.
func (c *Consumer) handleFetch(resp *kmsg.FetchResponse, sent map[tributary.TopicPartition]sentPart, names map[[16]byte]string) (backoff bool) {
	results := make([]decoded, 0, len(sent))
	for ti := range resp.Topics {
		t := &resp.Topics[ti]
		topic := t.Topic
		if topic == "" {
			topic = names[t.TopicID]
		}
		for pi := range t.Partitions {
			rp := &t.Partitions[pi]
			s, ok := sent[tributary.TopicPartition{Topic: topic, Partition: rp.Partition}]
			if !ok {
				continue
			}
			d := decoded{s: s, hw: rp.HighWatermark, lso: rp.LastStableOffset, next: s.offset}
			if d.err = tributary.ErrorForCode(rp.ErrorCode); d.err == nil && len(rp.RecordBatches) > 0 {
				d.bytes = int64(len(rp.RecordBatches))
				d.topic, d.rp = topic, rp
			}
			results = append(results, d)
		}
	}
	c.decodeAll(results)

	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range sent {
		s.p.inflight = false
	}
	for i := range results {
		d := &results[i]
		p := d.s.p
		if p.epoch != d.s.epoch || p.removed {
			continue // seeked, reset or revoked meanwhile
		}
		switch {
		case d.err == nil:
		case errors.Is(d.err, tributary.ErrOffsetOutOfRange):
			c.resetLocked(p, fmt.Errorf("%s[%d] offset %d: %w", p.tp.Topic, p.tp.Partition, p.offset, d.err))
			continue
		case errors.Is(d.err, tributary.ErrNotLeaderOrFollower),
			errors.Is(d.err, tributary.ErrUnknownTopicOrPartition),
			errors.Is(d.err, tributary.ErrFencedLeaderEpoch),
			errors.Is(d.err, tributary.ErrLeaderNotAvailable),
			errors.Is(d.err, tributary.ErrUnknownTopicId),
			errors.Is(d.err, tributary.ErrInconsistentTopicId),
			errors.Is(d.err, tributary.ErrKafkaStorageError),
			errors.Is(d.err, tributary.ErrReplicaNotAvailable):
			c.lostLeaderLocked(p)
			backoff = true
			continue
		case tributary.IsRetriable(d.err):
			backoff = true
			continue
		default:
			// Records decoded before a corrupt batch are still good;
			// the error reaches Poll once, and the fetch is retried
			// from after them after a backoff.
			c.pushErrLocked(fmt.Errorf("consumer: fetching %s[%d] at offset %d: %w", p.tp.Topic, p.tp.Partition, p.offset, d.err))
			backoff = true
		}
		if d.hw >= 0 {
			p.hw = d.hw
		}
		if d.lso >= 0 {
			p.lso = d.lso
		}
		if d.next > p.offset {
			p.offset = d.next
			if len(d.recs) > 0 || len(p.buf) > 0 {
				p.buf = append(p.buf, chunk{recs: d.recs, next: d.next, bytes: d.bytes})
				c.buffered += d.bytes
			} else {
				p.position = d.next // only control or aborted batches
			}
		}
	}
	c.notifyLocked()
	return backoff
}

// resetLocked makes p start over where AutoOffsetReset says; cause is why.
func (c *Consumer) resetLocked(p *partState, cause error) {
	c.dropBufferLocked(p)
	p.epoch++
	p.offset = offsetReset
	p.position = -1
	if c.cfg.reset == ResetNone {
		p.stopped = true
		c.pushErrLocked(fmt.Errorf("consumer: %w", cause))
	}
	c.notifyLocked()
}

// decodeBatches decodes the record batches of one partition's fetch
// answer, returning the records at or after offset and the fetch offset
// after them. Control batches are skipped; with readCommitted so are the
// batches of aborted transactions, as AbortedTransactions lists them.
// Records alias the response (or, for compressed batches, a fresh
// decompression buffer), so nothing is copied and nothing is reused.
//
// It works in two passes: the first checks and decompresses the batches,
// the second decodes their records into one Record slab and one pointer
// slice, both allocated at their exact size once the first pass has
// counted (and checked) the records. Allocating per batch and growing the
// pointer slice by append cost a tenth of the decode time and most of its
// allocations; a fetch of small, well compressed records holds a hundred
// thousand records per partition. The regions are kept anyway, since the
// records alias them.
func decodeBatches(topic string, rp *kmsg.FetchResponseTopicPartition, offset int64, readCommitted bool) ([]*tributary.Record, int64, error) {
	pending, total, perr := checkBatches(rp, offset, readCommitted)
	next := offset
	var out []*tributary.Record
	var slab []tributary.Record
	if total > 0 {
		out = make([]*tributary.Record, 0, total)
		slab = make([]tributary.Record, total)
	}
	for i := range pending {
		pb := &pending[i]
		h := &pb.h
		if pb.region == nil {
			next = max(next, h.LastOffset()+1) // control or aborted
			continue
		}
		it := batch.NewRecords(pb.region, h.RecordCount)
		var r batch.Record
		for it.Next(&r) {
			off := h.BaseOffset + int64(r.OffsetDelta)
			if off < offset {
				continue // KIP-74: records before the fetch offset
			}
			ts := h.BaseTimestamp + r.TimestampDelta
			if h.IsLogAppendTime() {
				ts = h.MaxTimestamp
			}
			// The iterator yields at most RecordCount records, and
			// the slab holds the sum of the counts.
			rec := &slab[0]
			slab = slab[1:]
			rec.Topic = topic
			rec.Partition = rp.Partition
			rec.Key = r.Key
			rec.Value = r.Value
			rec.Offset = off
			rec.LeaderEpoch = h.PartitionLeaderEpoch
			rec.Timestamp = time.UnixMilli(ts)
			if nh := r.Headers.Len(); nh > 0 {
				rec.Headers = make([]tributary.Header, 0, nh)
				for {
					k, v, ok := r.Headers.Next()
					if !ok {
						break
					}
					rec.Headers = append(rec.Headers, tributary.Header{Key: string(k), Value: v})
				}
			}
			out = append(out, rec)
		}
		if err := it.Err(); err != nil {
			return out, next, err
		}
		next = max(next, h.LastOffset()+1)
	}
	return out, next, perr
}

// pendingBatch is a batch checkBatches passed: region holds its records
// (decompressed), or is nil for a batch to skip (control or aborted).
type pendingBatch struct {
	h      batch.Header
	region []byte
}

// checkBatches is decodeBatches' first pass: it returns, in order, the
// whole batches of rp that end at or after offset up to the first bad
// one, with their record regions, the sum of their record counts, and the
// error that stopped it, if any.
func checkBatches(rp *kmsg.FetchResponseTopicPartition, offset int64, readCommitted bool) (pending []pendingBatch, total int, err error) {
	data := rp.RecordBatches
	var aborted []kmsg.FetchResponseTopicPartitionAbortedTransaction
	var abortedProducers map[int64]struct{}
	if readCommitted && len(rp.AbortedTransactions) > 0 {
		aborted = slices.Clone(rp.AbortedTransactions)
		slices.SortFunc(aborted, func(a, b kmsg.FetchResponseTopicPartitionAbortedTransaction) int {
			return int(min(max(a.FirstOffset-b.FirstOffset, -1), 1))
		})
		abortedProducers = make(map[int64]struct{})
	}
	for len(data) > 0 {
		if len(data) < batch.HeaderSize {
			break // a partial batch at the end (KIP-74 cuts at max bytes)
		}
		h, err := batch.ParseHeader(data)
		if err != nil {
			return pending, total, err
		}
		if h.Length < batch.MinLength {
			return pending, total, batch.ErrBadLength
		}
		size := h.Size()
		if size > int64(len(data)) {
			break // partial
		}
		b := data[:size]
		data = data[size:]
		last := h.LastOffset()
		if last < offset {
			continue // KIP-74: the whole batch is below the fetch offset
		}
		if batch.ComputeCRC(b) != h.CRC {
			return pending, total, batch.ErrBadCRC
		}
		if readCommitted {
			for len(aborted) > 0 && aborted[0].FirstOffset <= last {
				abortedProducers[aborted[0].ProducerID] = struct{}{}
				aborted = aborted[1:]
			}
		}
		if h.IsControl() {
			// A transaction marker: it ends the producer's aborted run.
			if readCommitted {
				delete(abortedProducers, h.ProducerID)
			}
			pending = append(pending, pendingBatch{h: h})
			continue
		}
		if readCommitted && h.IsTransactional() {
			if _, ab := abortedProducers[h.ProducerID]; ab {
				pending = append(pending, pendingBatch{h: h})
				continue
			}
		}
		region, err := batch.RecordsRegion(b, nil, 256<<20)
		if err != nil {
			return pending, total, err
		}
		n := int(h.RecordCount)
		if n < 0 || n > len(region) {
			return pending, total, batch.ErrBadCount
		}
		if region == nil {
			region = []byte{} // nil marks a batch to skip
		}
		pending = append(pending, pendingBatch{h: h, region: region})
		total += n
	}
	return pending, total, nil
}

// resolveLoop looks up starting offsets: committed ones with OffsetFetch,
// earliest and latest with ListOffsets at each leader.
func (c *Consumer) resolveLoop() {
	failures := 0
	for {
		committed, listed, ok := c.nextResolve()
		if !ok {
			return
		}
		failed := false
		if len(committed) > 0 && !c.resolveCommitted(committed) {
			failed = true
		}
		for leader, ss := range listed {
			if !c.resolveListed(leader, ss) {
				failed = true
			}
		}
		if failed {
			failures++
			if !c.sleep(clientx.Of(c.cl).Backoff(failures)) {
				return
			}
			c.mu.Lock()
			c.notifyLocked()
			c.mu.Unlock()
		} else {
			failures = 0
		}
	}
}

func (c *Consumer) nextResolve() (committed []sentPart, listed map[int32][]sentPart, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if c.closed {
			return nil, nil, false
		}
		for _, p := range c.order {
			if p.offset >= 0 || p.inflight || p.stopped || p.held {
				continue
			}
			if p.offset == offsetReset && c.cfg.reset == ResetNone {
				continue
			}
			s := sentPart{p, p.epoch, p.offset, p.leaderEpoch}
			if p.offset == Committed {
				p.inflight = true
				committed = append(committed, s)
				continue
			}
			if p.leader < 0 {
				continue
			}
			p.inflight = true
			if listed == nil {
				listed = make(map[int32][]sentPart)
			}
			listed[p.leader] = append(listed[p.leader], s)
		}
		if committed != nil || listed != nil {
			return committed, listed, true
		}
		wait := c.changed
		c.mu.Unlock()
		select {
		case <-wait:
		case <-c.ctx.Done():
		}
		c.mu.Lock()
	}
}

// resolveCommitted sets partitions to their committed offsets, or to
// AutoOffsetReset where there is none. False means retry later.
func (c *Consumer) resolveCommitted(ss []sentPart) bool {
	tps := make([]tributary.TopicPartition, len(ss))
	for i, s := range ss {
		tps[i] = s.p.tp
	}
	ctx, cancel := context.WithTimeout(c.ctx, clientx.Of(c.cl).RequestTimeout())
	defer cancel()
	offs, err := c.fetchCommitted(ctx, tps)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range ss {
		s.p.inflight = false
	}
	if err != nil {
		if c.ctx.Err() == nil && !tributary.IsRetriable(err) && !errors.Is(err, client.ErrConnection) {
			c.pushErrLocked(fmt.Errorf("consumer: fetching committed offsets: %w", err))
		}
		return false
	}
	for _, s := range ss {
		p := s.p
		if p.epoch != s.epoch || p.removed {
			continue
		}
		p.epoch++
		if off, ok := offs[p.tp]; ok && off >= 0 {
			p.offset, p.position, p.committed = off, off, off
			continue
		}
		p.offset = offsetReset
		if c.cfg.reset == ResetNone {
			p.stopped = true
			c.pushErrLocked(fmt.Errorf("%w: %s[%d]", ErrNoOffset, p.tp.Topic, p.tp.Partition))
		}
	}
	c.notifyLocked()
	return true
}

// resolveListed asks leader for the earliest or latest offsets of ss.
func (c *Consumer) resolveListed(leader int32, ss []sentPart) bool {
	req := kmsg.NewPtrListOffsetsRequest()
	req.IsolationLevel = int8(c.cfg.isolation)
	idx := make(map[string]int)
	for _, s := range ss {
		ts := s.offset
		if ts == offsetReset || ts == Committed {
			ts = Latest
			if c.cfg.reset == ResetEarliest {
				ts = Earliest
			}
		}
		i, ok := idx[s.p.tp.Topic]
		if !ok {
			i = len(req.Topics)
			idx[s.p.tp.Topic] = i
			t := kmsg.NewListOffsetsRequestTopic()
			t.Topic = s.p.tp.Topic
			req.Topics = append(req.Topics, t)
		}
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition = s.p.tp.Partition
		lp.CurrentLeaderEpoch = s.leaderEpoch
		lp.Timestamp = ts
		lp.MaxNumOffsets = 1
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, lp)
	}
	ctx, cancel := context.WithTimeout(c.ctx, 2*clientx.Of(c.cl).RequestTimeout())
	defer cancel()
	var resp *kmsg.ListOffsetsResponse
	r, err := c.cl.RequestBroker(ctx, leader, client.Limit(req, 1, req.MaxVersion()))
	if err == nil {
		resp = r.(*kmsg.ListOffsetsResponse)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range ss {
		s.p.inflight = false
	}
	if err != nil {
		for _, s := range ss {
			if s.p.epoch == s.epoch {
				c.lostLeaderLocked(s.p)
			}
		}
		return false
	}
	ok := true
	byTP := make(map[tributary.TopicPartition]sentPart, len(ss))
	for _, s := range ss {
		byTP[s.p.tp] = s
	}
	for _, t := range resp.Topics {
		for _, rp := range t.Partitions {
			s, found := byTP[tributary.TopicPartition{Topic: t.Topic, Partition: rp.Partition}]
			if !found || s.p.epoch != s.epoch || s.p.removed {
				continue
			}
			p := s.p
			if err := tributary.ErrorForCode(rp.ErrorCode); err != nil {
				ok = false
				if tributary.IsRetriable(err) || errors.Is(err, tributary.ErrUnknownTopicOrPartition) {
					c.lostLeaderLocked(p)
				} else {
					c.pushErrLocked(fmt.Errorf("consumer: listing offsets of %s[%d]: %w", p.tp.Topic, p.tp.Partition, err))
				}
				continue
			}
			p.epoch++
			p.offset, p.position = rp.Offset, rp.Offset
		}
	}
	c.notifyLocked()
	return ok
}
