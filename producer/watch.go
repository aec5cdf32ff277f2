package producer

import (
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
	if old == nil || len(t.pending) > 0 {
		// Routed under the lock so records produced meanwhile queue up
		// behind these instead of overtaking them.
		for _, pr := range t.pending {
			p.route(t, parts, pr.r, pr.cb, pr.size, pr.body0)
		}
		t.pending = nil
		t.pendingN.Store(0)
	}
	t.mu.Unlock()
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
		var expired []pendingRec
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
			p.cl.TriggerMetadataRefresh(t.name)
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
	i := 0
	for i < len(ps.queue) && now.Sub(ps.queue[i].created) >= p.cfg.deliveryTimeout {
		i++
	}
	expired := append([]*batch(nil), ps.queue[:i]...)
	ps.queue = append(ps.queue[:0], ps.queue[i:]...)
	ps.mu.Unlock()
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
