package producer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/client"
)

var timeAfter = time.After

// watchMetadata applies every metadata update to the known topics: it
// learns partition counts, moves partitions between sinks when leaders
// change, and releases records parked for unknown topics.
func (p *Producer) watchMetadata() {
	defer p.wg.Done()
	for {
		ch := p.cl.MetadataUpdated()
		m := p.cl.CachedMetadata()
		p.topicsMu.RLock()
		ts := make([]*topicState, 0, len(p.topics))
		for _, t := range p.topics {
			ts = append(ts, t)
		}
		p.topicsMu.RUnlock()
		for _, t := range ts {
			p.applyTopic(t, m)
		}
		select {
		case <-ch:
		case <-p.ctx.Done():
			return
		}
	}
}

func (p *Producer) applyTopic(t *topicState, m *client.Metadata) {
	tm := m.Topics[t.name]
	if tm == nil {
		return
	}
	t.applyMu.Lock()
	defer t.applyMu.Unlock()
	t.mu.Lock()
	gone := t.purged
	t.mu.Unlock()
	if gone {
		return
	}
	if tm.Err != nil || len(tm.Partitions) == 0 {
		err := tm.Err
		if err == nil {
			err = tributary.ErrUnknownTopicOrPartition
		}
		t.mu.Lock()
		t.lastErr = err
		var fail []pendingRec
		if !tributary.IsRetriable(err) {
			// Authorization failures and invalid names do not heal by
			// waiting; Java fails such records at once too.
			fail, t.pending = t.pending, nil
			t.pendingN.Store(0)
		}
		t.mu.Unlock()
		for _, pr := range fail {
			p.failRecord(pr.r, pr.cb, pr.size, fmt.Errorf("topic %q: %w", t.name, err))
		}
		return
	}
	old := t.parts.Load()
	var parts []*partState
	if old != nil {
		parts = *old
	}
	grown := len(tm.Partitions) > len(parts)
	if grown {
		parts = append(parts[:len(parts):len(parts)], make([]*partState, len(tm.Partitions)-len(parts))...)
		for i := range parts {
			if parts[i] == nil {
				parts[i] = &partState{t: t, id: int32(i), leader: -2}
			}
		}
	}
	for i, pm := range tm.Partitions {
		ps := parts[i]
		ps.mu.Lock()
		if ps.leader == pm.Leader && (ps.sink != nil || pm.Leader < 0) {
			ps.mu.Unlock()
			continue
		}
		oldSink := ps.sink
		var ns *sink
		if pm.Leader >= 0 {
			ns = p.sinkFor(pm.Leader)
		}
		ps.leader, ps.sink = pm.Leader, ns
		ps.mu.Unlock()
		if oldSink != nil && oldSink != ns {
			oldSink.remove(ps)
			oldSink.wake()
		}
		if ns != nil && ns != oldSink {
			ns.add(ps)
		}
	}
	if grown {
		t.parts.Store(&parts)
	}
	t.mu.Lock()
	t.lastErr = nil
	t.unknown = 0
	if old == nil || len(t.pending) > 0 {
		// Routed under the lock so records produced meanwhile queue up
		// behind these instead of overtaking them.
		for _, pr := range t.pending {
			p.route(t, parts, pr.r, pr.cb, pr.ctx, pr.size, pr.body0)
		}
		t.pending = nil
		t.pendingN.Store(0)
	}
	t.mu.Unlock()
}

func (p *Producer) wakeMeta() {
	select {
	case p.metaCh <- struct{}{}:
	default:
	}
}

// parkedMetadata fetches metadata for the topics that have records parked
// because the cluster has not (yet) named their partitions, and fails
// those records when waiting cannot help: no broker can be reached (the
// client has tried every one), or the topic was reported unknown more than
// UnknownTopicRetries times, which with auto-creation off means it does
// not exist. Java instead waits for max.block.ms (60s) and then blames the
// topic even when the brokers were down.
func (p *Producer) parkedMetadata() {
	defer p.wg.Done()
	attempt := 0
	for {
		select {
		case <-p.metaCh:
		case <-p.ctx.Done():
			return
		}
		for p.ctx.Err() == nil {
			var parked []*topicState
			p.topicsMu.RLock()
			for _, t := range p.topics {
				if t.pendingN.Load() > 0 {
					parked = append(parked, t)
				}
			}
			p.topicsMu.RUnlock()
			if len(parked) == 0 {
				attempt = 0
				break
			}
			names := make([]string, len(parked))
			for i, t := range parked {
				names[i] = t.name
			}
			ctx, cancel := context.WithTimeout(p.ctx, p.cfg.requestTimeout)
			m, err := p.cl.Metadata(ctx, names...)
			cancel()
			switch {
			case p.ctx.Err() != nil:
				return
			case err != nil && errors.Is(err, client.ErrConnection):
				for _, t := range parked {
					p.failParked(t, fmt.Errorf("producing to topic %q: %w", t.name, err))
				}
			case err == nil:
				for _, t := range parked {
					p.applyTopic(t, m)
					tm := m.Topics[t.name]
					if tm == nil || !errors.Is(tm.Err, tributary.ErrUnknownTopicOrPartition) || p.cfg.unknownTopicRetries < 0 {
						continue
					}
					t.mu.Lock()
					t.unknown++
					giveUp := t.unknown > p.cfg.unknownTopicRetries
					n := t.unknown
					t.mu.Unlock()
					if giveUp {
						p.failParked(t, fmt.Errorf("topic %q: %w (%d metadata answers said so; is auto-creation off?)", t.name, tributary.ErrUnknownTopicOrPartition, n))
					}
				}
			}
			attempt++
			select {
			case <-time.After(p.clx.Backoff(attempt)):
			case <-p.ctx.Done():
				return
			}
		}
	}
}

// failParked fails the records parked for t.
func (p *Producer) failParked(t *topicState, err error) {
	t.mu.Lock()
	fail := t.pending
	t.pending = nil
	t.pendingN.Store(0)
	t.unknown = 0
	t.mu.Unlock()
	for _, pr := range fail {
		p.failRecord(pr.r, pr.cb, pr.size, err)
	}
}

// reaper fails what has waited too long: records for topics that never
// showed up in metadata (after MaxBlock) and unsent batches past
// DeliveryTimeout, for example of partitions without a leader.
func (p *Producer) reaper() {
	defer p.wg.Done()
	period := min(max(min(p.cfg.deliveryTimeout, p.cfg.maxBlock)/20, 10*time.Millisecond), 250*time.Millisecond)
	tk := time.NewTicker(period)
	defer tk.Stop()
	for {
		select {
		case <-tk.C:
		case <-p.ctx.Done():
			return
		}
		p.reap(time.Now())
	}
}

func (p *Producer) reap(now time.Time) {
	p.topicsMu.RLock()
	ts := make([]*topicState, 0, len(p.topics))
	for _, t := range p.topics {
		ts = append(ts, t)
	}
	p.topicsMu.RUnlock()
	metaWait := min(p.cfg.maxBlock, p.cfg.deliveryTimeout)
	for _, t := range ts {
		t.mu.Lock()
		var expired, cancelled []pendingRec
		if len(t.pending) > 0 {
			kept := t.pending[:0]
			for _, pr := range t.pending {
				if pr.ctx != nil && pr.ctx.Err() != nil {
					cancelled = append(cancelled, pr)
				} else {
					kept = append(kept, pr)
				}
			}
			clear(t.pending[len(kept):])
			t.pending = kept
			t.pendingN.Store(int32(len(kept)))
		}
		if len(t.pending) > 0 {
			i := 0
			for i < len(t.pending) && now.Sub(t.pending[i].at) >= metaWait {
				i++
			}
			expired = append(expired, t.pending[:i]...)
			t.pending = append(t.pending[:0], t.pending[i:]...)
			t.pendingN.Store(int32(len(t.pending)))
		}
		lastErr, waiting := t.lastErr, len(t.pending) > 0
		t.mu.Unlock()
		if waiting {
			p.wakeMeta()
		}
		for _, pr := range cancelled {
			p.failRecord(pr.r, pr.cb, pr.size, pr.ctx.Err())
		}
		if len(expired) > 0 {
			if lastErr == nil {
				lastErr = tributary.ErrUnknownTopicOrPartition
			}
			err := fmt.Errorf("%w: topic %q not present in metadata after %v: %w", ErrDeliveryTimeout, t.name, metaWait, lastErr)
			for _, pr := range expired {
				p.failRecord(pr.r, pr.cb, pr.size, err)
			}
		}
		parts := t.parts.Load()
		if parts == nil {
			continue
		}
		for _, ps := range *parts {
			p.reapPartition(ps, now)
		}
	}
}

func (p *Producer) reapPartition(ps *partState, now time.Time) {
	ps.mu.Lock()
	if len(ps.queue) == 0 {
		ps.mu.Unlock()
		return
	}
	noLeader := ps.sink == nil
	var cancelled []promised
	for i := len(ps.queue) - 1; i >= 0; i-- {
		cancelled = append(cancelled, ps.dropCancelledLocked(p, i)...)
	}
	i := 0
	for i < len(ps.queue) && now.Sub(ps.queue[i].created) >= p.cfg.deliveryTimeout {
		i++
	}
	expired := append([]*batch(nil), ps.queue[:i]...)
	ps.queue = append(ps.queue[:0], ps.queue[i:]...)
	ps.mu.Unlock()
	p.failCancelled(cancelled)
	if noLeader {
		p.cl.TriggerMetadataRefresh(ps.t.name)
	}
	for _, b := range expired {
		err := b.lastErr
		if err == nil && noLeader {
			err = tributary.ErrLeaderNotAvailable
		}
		if b.seq >= 0 && p.cfg.idempotent {
			p.producerID.requestBump()
		}
		if err != nil {
			err = fmt.Errorf("%w: %d records for %s[%d]: %w", ErrDeliveryTimeout, len(b.recs), ps.t.name, ps.id, err)
		} else {
			err = fmt.Errorf("%w: %d records for %s[%d]", ErrDeliveryTimeout, len(b.recs), ps.t.name, ps.id)
		}
		p.failBatch(b, err)
	}
}
