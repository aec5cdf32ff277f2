package producer

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/client"
)

// sink sends the batches of the partitions one broker leads. One goroutine
// per sink drains ready batches into produce requests, at most MaxInFlight
// requests at a time; responses are handled on the connection's reader
// goroutine.
type sink struct {
	p      *Producer
	id     int32
	br     *client.Broker
	wakeCh chan struct{}
	sem    chan struct{} // one token per request in flight
	start  int           // rotates which partition drains first, for fairness

	mu    sync.Mutex
	parts []*partState // copy-on-write: readers iterate without the lock
}

func (s *sink) wake() {
	select {
	case s.wakeCh <- struct{}{}:
	default:
	}
}

func (s *sink) add(ps *partState) {
	s.mu.Lock()
	s.parts = append(slices.Clip(s.parts), ps)
	s.mu.Unlock()
	s.wake()
}

func (s *sink) remove(ps *partState) {
	s.mu.Lock()
	if i := slices.Index(s.parts, ps); i >= 0 {
		s.parts = slices.Delete(slices.Clone(s.parts), i, i+1)
	}
	s.mu.Unlock()
}

// sinkFor returns the sink for a broker, starting it if needed; nil once
// the producer is stopping.
func (p *Producer) sinkFor(id int32) *sink {
	p.sinksMu.Lock()
	defer p.sinksMu.Unlock()
	if s := p.sinks[id]; s != nil {
		return s
	}
	if p.ctx.Err() != nil {
		return nil
	}
	s := &sink{
		p:      p,
		id:     id,
		wakeCh: make(chan struct{}, 1),
		sem:    make(chan struct{}, p.cfg.maxInFlight),
	}
	p.sinks[id] = s
	p.wg.Add(1)
	go s.loop()
	return s
}

func (p *Producer) wakeAllSinks() {
	p.sinksMu.Lock()
	defer p.sinksMu.Unlock()
	for _, s := range p.sinks {
		s.wake()
	}
}

func (s *sink) loop() {
	defer s.p.wg.Done()
	p := s.p
	var timer *time.Timer
	attempt := 0
	for {
		select {
		case s.sem <- struct{}{}:
		case <-p.ctx.Done():
			return
		}
		for {
			if p.ctx.Err() != nil {
				return
			}
			wait := time.Duration(-1)
			var err error
			if s.br == nil || s.br.Closed() {
				s.br, err = p.cl.Broker(p.ctx, s.id)
			}
			if err == nil && p.cfg.idempotent {
				err = p.producerID.ensure(p.ctx)
			}
			if err != nil {
				attempt++
				if !retriableErr(err) {
					s.failQueued(err)
				}
				wait = p.clx.Backoff(attempt)
			} else {
				attempt = 0
				taken, next := s.collect()
				if len(taken) > 0 {
					s.send(taken)
					break // the token now belongs to the request
				}
				if !next.IsZero() {
					wait = max(time.Until(next), 0)
				}
			}
			var timerC <-chan time.Time
			if wait >= 0 {
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				timerC = timer.C
			}
			select {
			case <-s.wakeCh:
			case <-timerC:
			case <-p.ctx.Done():
				return
			}
			if timer != nil {
				timer.Stop()
			}
		}
	}
}

// failQueued fails the unsent batches of the sink's partitions after an
// error no retry can fix (e.g. CLUSTER_AUTHORIZATION_FAILED for
// InitProducerId).
func (s *sink) failQueued(err error) {
	s.mu.Lock()
	parts := s.parts
	s.mu.Unlock()
	for _, ps := range parts {
		ps.mu.Lock()
		var bs []*batch
		if ps.inflight == 0 && !ps.retrying {
			bs, ps.queue = ps.queue, nil
		}
		ps.mu.Unlock()
		for _, b := range bs {
			s.p.failBatch(b, err)
		}
	}
}

// collect takes one ready batch from each partition that may send, up to
// MaxRequestSize, and returns them with when the next linger expires.
func (s *sink) collect() (taken []*batch, next time.Time) {
	p := s.p
	// Reserve an in-flight slot before looking at bumping: either we see
	// the bump and back off, or the bump sees us in flight and waits.
	p.inflightAll.Add(1)
	defer p.inflightDone()
	if p.producerID.bumping.Load() {
		return nil, time.Time{} // woken when the bump is done
	}
	now := time.Now()
	flush := p.flushing.Load() > 0 || p.closing.Load()
	pid, epoch := p.producerID.current()
	s.mu.Lock()
	parts := s.parts
	s.mu.Unlock()
	n := len(parts)
	if n == 0 {
		return nil, time.Time{}
	}
	s.start++
	var cancelled []promised
	defer func() { p.failCancelled(cancelled) }() // with no lock held
	var (
		txnErr    error
		txnFailed []*batch     // unsent batches of a failed transaction
		needAdd   []*partState // partitions to add to the transaction first
	)
	if p.txn != nil {
		txnErr = p.txn.err()
		defer func() {
			for _, b := range txnFailed {
				p.failBatch(b, txnErr)
			}
			p.txn.queueAdd(needAdd)
		}()
	}
	size := 0
	budget := p.cfg.maxRequestSize - 64
	for i := range n {
		ps := parts[(s.start+i)%n]
		ps.mu.Lock()
		if ps.sink != s || len(ps.queue) == 0 || ps.retrying ||
			ps.inflight >= p.cfg.maxInFlight || (ps.inflight > 0 && ps.inSink != s) {
			ps.mu.Unlock()
			continue
		}
		if p.txn != nil {
			// A transactional batch goes out only once its partition is
			// in the transaction (AddPartitionsToTxn, txn.go); once the
			// transaction has failed, nothing more is sent.
			if txnErr != nil {
				txnFailed = append(txnFailed, ps.queue...)
				clear(ps.queue)
				ps.queue = ps.queue[:0]
				ps.mu.Unlock()
				continue
			}
			if !ps.txnAdded {
				if !ps.txnAdding {
					ps.txnAdding = true
					needAdd = append(needAdd, ps)
				}
				ps.mu.Unlock()
				continue
			}
		}
		if now.Before(ps.backoff) {
			next = earliest(next, ps.backoff)
			ps.mu.Unlock()
			continue
		}
		if ps.queue[0].hasCtx {
			if cancelled = append(cancelled, ps.dropCancelledLocked(p, 0)...); len(ps.queue) == 0 {
				ps.mu.Unlock()
				continue
			}
		}
		b := ps.queue[0]
		if !(b.full || len(ps.queue) > 1 || flush || now.Sub(b.created) >= p.cfg.linger) {
			next = earliest(next, b.created.Add(p.cfg.linger))
			ps.mu.Unlock()
			continue
		}
		bsize := len(b.buf) + len(ps.t.name) + 16
		if len(taken) > 0 && size+bsize > budget {
			ps.mu.Unlock()
			next = now // more is ready; come back at once
			break
		}
		ps.queue[0] = nil
		ps.queue = ps.queue[1:]
		wasOpen := !b.full
		b.full = true
		if p.cfg.idempotent && b.seq < 0 {
			b.seq = ps.nextSeq
			ps.nextSeq = incSeq(ps.nextSeq, int32(len(b.recs)))
			b.pid, b.epoch = pid, epoch
			b.txn = p.txn != nil
			if b.wire != nil {
				b.writeHeader(p.cfg.codec)
			}
		}
		ps.inflight++
		ps.inSink = s
		p.inflightAll.Add(1)
		ps.mu.Unlock()

		taken = append(taken, b)
		size += bsize
		if wasOpen && p.observer != nil {
			if parts := ps.t.parts.Load(); parts != nil {
				p.observer.OnNewBatch(ps.t.name, ps.id, int32(len(*parts)))
			}
		}
	}
	return taken, next
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// incSeq adds n to a sequence number, wrapping past MaxInt32 to 0 as
// Kafka does.
func incSeq(seq, n int32) int32 {
	if seq > math.MaxInt32-n {
		return n - (math.MaxInt32 - seq) - 1
	}
	return seq + n
}

func (s *sink) send(taken []*batch) {
	p := s.p
	req := kmsg.NewPtrProduceRequest()
	req.Acks = p.cfg.acks
	req.TimeoutMillis = int32(min(p.cfg.requestTimeout.Milliseconds(), math.MaxInt32))
	sent := taken[:0]
	for _, b := range taken {
		if b.wire == nil {
			if err := b.seal(p.cfg.codec); err != nil {
				p.batchDone(b, fmt.Errorf("compressing batch: %w", err), false)
				continue
			}
		}
		sent = append(sent, b)
		ti := -1
		for i := range req.Topics {
			if req.Topics[i].Topic == b.p.t.name {
				ti = i
				break
			}
		}
		if ti < 0 {
			req.Topics = append(req.Topics, kmsg.ProduceRequestTopic{Topic: b.p.t.name})
			ti = len(req.Topics) - 1
		}
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = b.p.id
		rp.Records = b.wire
		req.Topics[ti].Partitions = append(req.Topics[ti].Partitions, rp)
	}
	if len(sent) == 0 {
		<-s.sem
		return
	}
	for _, b := range sent {
		b.sent = true
	}
	pr := &produceReq{sent: sent}
	p.trackReq(pr)
	s.br.Do(p.ctx, client.Limit(req, 3, 11), func(raw kmsg.Response, err error) {
		if !p.untrackReq(pr) { // Close failed the batches already
			<-s.sem
			s.wake()
			return
		}
		s.handle(sent, raw, err)
	})
}

func (s *sink) handle(sent []*batch, raw kmsg.Response, err error) {
	p := s.p
	defer func() {
		<-s.sem
		s.wake()
	}()
	if err != nil {
		for _, b := range sent {
			p.batchDone(b, err, false)
		}
		return
	}
	if raw == nil { // acks=0: written is all we learn
		for _, b := range sent {
			s.hookBatch(b, -1)
			p.batchSucceeded(b, -1, -1)
		}
		return
	}
	resp := raw.(*kmsg.ProduceResponse)
	for _, b := range sent {
		var rp *kmsg.ProduceResponseTopicPartition
	find:
		for i := range resp.Topics {
			rt := &resp.Topics[i]
			if rt.Topic != b.p.t.name {
				continue
			}
			for j := range rt.Partitions {
				if rt.Partitions[j].Partition == b.p.id {
					rp = &rt.Partitions[j]
					break find
				}
			}
		}
		switch {
		case rp == nil:
			p.batchDone(b, fmt.Errorf("broker %d did not answer for the partition: %w", s.id, tributary.ErrNetworkException), false)
		case rp.ErrorCode == 0 || rp.ErrorCode == tributary.ErrDuplicateSequenceNumber.Code:
			// KIP-192: a duplicate is a batch the broker already has.
			s.hookBatch(b, rp.BaseOffset)
			p.batchSucceeded(b, rp.BaseOffset, rp.LogAppendTime)
		default:
			perr := tributary.ErrorForCode(rp.ErrorCode)
			if rp.ErrorMessage != nil && *rp.ErrorMessage != "" {
				perr = fmt.Errorf("%w: %s", perr, *rp.ErrorMessage)
			}
			p.batchDone(b, fmt.Errorf("produce to %s[%d] via broker %d: %w", b.p.t.name, b.p.id, s.id, perr), true)
		}
	}
}

// hookBatch tells the client's HookProduceBatchWritten hooks about b.
func (s *sink) hookBatch(b *batch, base int64) {
	hs := s.p.batchHooks
	if len(hs) == 0 {
		return
	}
	info := client.BrokerInfo{NodeID: s.id, Addr: s.br.Addr()}
	m := client.ProduceBatchMetrics{
		NumRecords:        len(b.recs),
		UncompressedBytes: len(b.buf),
		CompressedBytes:   len(b.wire),
		CompressionType:   int8(s.p.cfg.codec),
		BaseOffset:        base,
	}
	for _, h := range hs {
		h.OnProduceBatchWritten(info, b.p.t.name, b.p.id, m)
	}
}

func retriableErr(err error) bool {
	return tributary.IsRetriable(err) || errors.Is(err, client.ErrConnection) || errors.Is(err, client.ErrUnknownBroker)
}

// staleMetadata reports whether err suggests the partition moved.
func staleMetadata(err error) bool {
	switch tributary.CodeOf(err) {
	case tributary.ErrNotLeaderOrFollower.Code, tributary.ErrUnknownTopicOrPartition.Code,
		tributary.ErrLeaderNotAvailable.Code, tributary.ErrKafkaStorageError.Code,
		tributary.ErrFencedLeaderEpoch.Code, tributary.ErrUnknownLeaderEpoch.Code:
		return true
	}
	return errors.Is(err, client.ErrConnection) || errors.Is(err, client.ErrUnknownBroker)
}

// batchSucceeded completes an acknowledged batch.
func (p *Producer) batchSucceeded(b *batch, base, logAppendTime int64) {
	ps := b.p
	ps.mu.Lock()
	ps.inflight--
	if id, epoch := p.producerID.current(); b.seq >= 0 && b.pid == id && b.epoch == epoch {
		ps.ackedSeq = incSeq(b.seq, int32(len(b.recs)))
	}
	ps.attempts = 0
	ps.maybeRequeueLocked(p)
	wake := ps.sink // may differ from the sink that sent b if the leader moved
	ps.mu.Unlock()
	p.inflightDone()
	if wake != nil {
		wake.wake()
	}

	var lat time.Time
	if logAppendTime >= 0 {
		lat = time.UnixMilli(logAppendTime)
	}
	for i, pr := range b.recs {
		r := pr.r
		r.Partition = ps.id
		if base >= 0 {
			r.Offset = base + int64(i)
		} else {
			r.Offset = -1
		}
		if logAppendTime >= 0 {
			r.Timestamp = lat
		}
		pr.cb(r, nil)
	}
	p.releaseMem(b.mem)
	p.finished(int64(len(b.recs)))
	b.release(&p.free, p.cfg.batchSize)
}

// batchDone handles an in-flight batch that failed with err: retried when
// Kafka (or the Java client's idempotence rules) say so and time remains,
// failed otherwise. fromBroker distinguishes a broker's answer from a
// transport failure.
func (p *Producer) batchDone(b *batch, err error, fromBroker bool) {
	ps := b.p
	code := tributary.CodeOf(err)
	retry := retriableErr(err)
	switch {
	case p.txn != nil && fatalTxnCode(code):
		// Fenced by a newer producer with our transactional id (or no
		// longer authorized): the producer is done for.
		err, retry = p.txn.setFatal(err), false
	case code == tributary.ErrMessageTooLarge.Code || code == tributary.ErrRecordListTooLarge.Code:
		// The topic's max.message.bytes is below our batch: like Java,
		// split the batch and try the halves; a single record that is
		// still too large fails.
		ps.mu.Lock()
		gone := ps.purged
		ps.mu.Unlock()
		if len(b.recs) > 1 && !p.aborting.Load() && !gone {
			p.splitBatch(b)
			return
		}
		err = fmt.Errorf("%w: %w", ErrRecordTooLarge, err)
		retry = false
	case p.cfg.idempotent && (code == tributary.ErrOutOfOrderSequenceNumber.Code || code == tributary.ErrUnknownProducerId.Code):
		// Like Java's TransactionManager.canRetry: if this batch is the
		// next one the broker should have accepted, no earlier batch can
		// explain the gap, so the broker lost our state and only a new
		// epoch (resetting sequences) lets us continue. Otherwise an
		// earlier batch is being retried and this one follows it.
		ps.mu.Lock()
		next := b.seq == ps.ackedSeq
		ps.mu.Unlock()
		if next {
			p.producerID.requestBump()
		}
		// A transactional producer bumps only when the transaction is
		// aborted (requestBump defers it), so a batch that needs the
		// bump fails, and with it the transaction.
		retry = !next || p.txn == nil
	case p.cfg.idempotent && (code == tributary.ErrInvalidProducerEpoch.Code || code == tributary.ErrProducerFenced.Code):
		p.producerID.requestBump()
		retry = true
	}
	if retry && p.aborting.Load() {
		err, retry = fmt.Errorf("%w: %w", ErrClosed, err), false
	}
	if retry && time.Since(b.created) >= p.cfg.deliveryTimeout {
		err, retry = fmt.Errorf("%w: batch for %s[%d] created %v ago: %w", ErrDeliveryTimeout, ps.t.name, ps.id, time.Since(b.created).Round(time.Millisecond), err), false
	}
	if staleMetadata(err) {
		p.cl.TriggerMetadataRefresh(ps.t.name)
	}

	ps.mu.Lock()
	ps.inflight--
	if retry && ps.purged {
		err, retry = fmt.Errorf("%w: %w", ErrTopicPurged, err), false
	}
	if retry {
		b.lastErr = err
		ps.retry = append(ps.retry, b)
		ps.retrying = true
	}
	ps.maybeRequeueLocked(p)
	wake := ps.sink
	ps.mu.Unlock()
	if !retry {
		if p.cfg.idempotent && b.seq >= 0 && !p.aborting.Load() {
			// Its sequence numbers are now a gap the broker would
			// reject every later batch for; start over at a new epoch.
			p.producerID.requestBump()
		}
		p.failBatch(b, err)
	}
	p.inflightDone()
	if wake != nil {
		wake.wake()
	}
}

// maybeRequeueLocked puts failed batches back at the front of the queue
// once nothing of the partition is in flight, so they go out again in
// their original order, after a backoff.
func (ps *partState) maybeRequeueLocked(p *Producer) {
	if !ps.retrying || ps.inflight > 0 {
		return
	}
	slices.SortStableFunc(ps.retry, func(a, b *batch) int { return a.created.Compare(b.created) })
	ps.queue = append(ps.retry, ps.queue...)
	ps.retry = nil
	ps.retrying = false
	ps.attempts++
	ps.backoff = time.Now().Add(p.clx.Backoff(ps.attempts))
}

func (p *Producer) inflightDone() {
	if p.inflightAll.Add(-1) == 0 && p.producerID.bumping.Load() {
		p.producerID.startBump()
	}
}

// splitBatch replaces an in-flight batch the broker found too large by two
// batches of half its records each, queued in its place. Their sequence
// numbers cannot fit the old numbering (later batches are numbered after
// the whole batch), so with idempotence the epoch is bumped, which
// renumbers everything unsent in order.
func (p *Producer) splitBatch(b *batch) {
	ps := b.p
	half := len(b.recs) / 2
	var parts [2]*batch
	for i, recs := range [2][]promised{b.recs[:half], b.recs[half:]} {
		nb := newBatch(&p.free, ps, b.created, len(b.buf)/2+recordBatchOverhead)
		for _, pr := range recs {
			nb.append(pr.r, pr.cb, pr.ctx, pr.r.Timestamp.UnixMilli(), pr.size, bodySize0(pr.r))
		}
		nb.full = true
		parts[i] = nb
	}
	p.clx.Logger().Debug("splitting a batch the broker found too large", "topic", ps.t.name, "partition", ps.id, "records", len(b.recs))

	ps.mu.Lock()
	ps.inflight--
	ps.retry = append(ps.retry, parts[0], parts[1])
	ps.retrying = true
	ps.maybeRequeueLocked(p)
	wake := ps.sink
	ps.mu.Unlock()
	if p.cfg.idempotent {
		p.producerID.requestBump()
	}
	clear(b.recs) // now owned by the halves
	b.recs = b.recs[:0]
	b.mem = 0
	b.release(&p.free, p.cfg.batchSize)
	p.inflightDone()
	if wake != nil {
		wake.wake()
	}
}
