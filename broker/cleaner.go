package broker

// The log cleaner's broker side: Kafka's LogCleaner thread pool and
// LogCleanerManager. broker/storage cleans one log (Log.Clean); this file
// decides which log and when.
//
// log.cleaner.threads workers each loop: pick the hosted log (leader or
// follower replica: every replica compacts its own copy, as in Kafka)
// whose topic has cleanup.policy=compact and that is due — its dirty ratio
// reaches min.cleanable.dirty.ratio or max.compaction.lag.ms forces it —
// taking logs forced by max.compaction.lag.ms first and otherwise the
// dirtiest; no other worker may hold it. A worker cleans with its own key
// map (log.cleaner.dedupe.buffer.size / threads), reused across passes.
// When no log is due it sleeps log.cleaner.backoff.ms; Close wakes it.
//
// All workers share one token bucket (log.cleaner.io.max.bytes.per.second,
// read before each pass, so a dynamic change applies from the next one)
// through Clean's Throttle, which also fails as soon as the broker
// closes: Close then waits for the workers (they are tracked goroutines)
// before it closes the logs. A log unhosted or closed mid-pass makes Clean abort; the
// worker just moves on.
//
// Lock order: a worker takes no broker lock while it calls into a log
// (allPartitions releases b.mu before CleanState runs; Throttle, called
// from inside a pass, takes only its own mutex), and cm.mu is a leaf
// taken only around the busy/backoff maps.

import (
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tributary/tributary/broker/storage"
)

// errCleanerStopped is what Throttle returns once the broker closes: it
// ends a pass in progress.
var errCleanerStopped = errors.New("broker: closing; cleaning pass stopped")

type cleanerManager struct {
	b *Broker

	mu struct {
		sync.Mutex
		busy map[*storage.Log]bool
		// until holds logs whose last pass failed or cleaned nothing:
		// they are not picked again before the time given, so a log in
		// trouble costs one WARN per backoff, not a busy loop.
		until map[*storage.Log]time.Time
	}
	throttle struct {
		sync.Mutex
		next time.Time // when the bytes paid so far have been "spent"
	}
	// rate is log.cleaner.io.max.bytes.per.second (float64 bits), read
	// from the effective config before each pass: Throttle runs inside
	// storage's pass and takes no broker lock.
	rate atomic.Uint64
}

// startCleaner starts the cleaner threads when log.cleaner.enable is set.
func (b *Broker) startCleaner() {
	if !b.cfg.LogCleanerEnable || b.cfg.LogCleanerThreads <= 0 {
		return
	}
	cm := &cleanerManager{b: b}
	cm.mu.busy = map[*storage.Log]bool{}
	cm.mu.until = map[*storage.Log]time.Time{}
	threads := int64(b.cfg.LogCleanerThreads)
	for i := int64(0); i < threads; i++ {
		b.goTracked(func() { cm.run(b.cfg.LogCleanerDedupeBufferSize / threads) })
	}
}

// run is one cleaner thread.
func (cm *cleanerManager) run(mapBytes int64) {
	b := cm.b
	var m *storage.OffsetMap // made on first use: an idle cleaner costs no memory
	for {
		select {
		case <-b.closing:
			return
		default:
		}
		p := cm.pick()
		if p == nil {
			b.mu.RLock()
			backoff := time.Duration(b.mu.eff.LogCleanerBackoffMs) * time.Millisecond
			b.mu.RUnlock()
			// 0 is valid (Kafka's atLeast(0)); a millisecond keeps it
			// from spinning on the topic registry's lock.
			if !b.sleep(max(backoff, time.Millisecond)) {
				return
			}
			continue
		}
		if m == nil {
			m = storage.NewOffsetMap(mapBytes)
		}
		cm.clean(p, m)
	}
}

// pick reserves the log to clean next, nil if none is due.
func (cm *cleanerManager) pick() *partition {
	type cand struct {
		p  *partition
		st storage.CleanState
	}
	parts := cm.b.allPartitions()
	cm.mu.Lock()
	now := time.Now()
	hosted := make(map[*storage.Log]bool, len(parts))
	free := parts[:0] // neither busy with another thread nor backing off
	for _, p := range parts {
		hosted[p.log] = true
		if !cm.mu.busy[p.log] && !now.Before(cm.mu.until[p.log]) {
			free = append(free, p)
		}
	}
	// Forget logs no longer hosted (deleted topics, moved replicas).
	for l := range cm.mu.until {
		if !hosted[l] {
			delete(cm.mu.until, l)
		}
	}
	cm.mu.Unlock()

	var best *cand
	for _, p := range free {
		st := p.log.CleanState()
		if !st.Due {
			continue
		}
		c := cand{p, st}
		if best == nil || (c.st.MaxLagDue && !best.st.MaxLagDue) ||
			(c.st.MaxLagDue == best.st.MaxLagDue && c.st.Ratio > best.st.Ratio) {
			best = &c
		}
	}
	if best == nil {
		return nil
	}
	cm.mu.Lock()
	defer cm.mu.Unlock()
	if cm.mu.busy[best.p.log] {
		// Another thread took it between the two locks; it will be
		// looked at again on the next round.
		return nil
	}
	cm.mu.busy[best.p.log] = true
	return best.p
}

// clean runs one pass over p's log and reports it.
func (cm *cleanerManager) clean(p *partition, m *storage.OffsetMap) {
	b := cm.b
	if m := b.obs.metrics; m != nil {
		m.CleanStarted()
	}
	b.mu.RLock()
	cm.rate.Store(math.Float64bits(b.mu.eff.LogCleanerIoMaxBytesPerSecond))
	b.mu.RUnlock()
	res, err := p.log.Clean(storage.CleanOptions{Map: m, Throttle: cm.throttleBytes})
	b.mu.RLock()
	backoff := time.Duration(b.mu.eff.LogCleanerBackoffMs) * time.Millisecond
	b.mu.RUnlock()
	cm.mu.Lock()
	delete(cm.mu.busy, p.log)
	if err != nil || !res.Cleaned {
		cm.mu.until[p.log] = time.Now().Add(backoff)
	}
	cm.mu.Unlock()
	if m := b.obs.metrics; m != nil {
		m.Cleaned(res.BytesRead, res.BytesWritten, res.Cleaned)
	}
	closing := false
	select {
	case <-b.closing:
		closing = true
	default:
	}
	switch {
	case err != nil && (closing || errors.Is(err, errCleanerStopped)):
		// Throttle stopped the pass, or Close closed the log under it
		// (which storage reports as an aborted pass or a storage error).
		b.logger.Debug("cleaning stopped by shutdown", "topic", p.topic.name, "partition", p.index)
		return
	case err != nil && cleanAborted(err):
		// Retention, DeleteRecords, a truncation or Close changed the
		// log under the pass: the next round starts over.
		b.logger.Info("cleaning pass aborted; the log changed", "topic", p.topic.name, "partition", p.index, "err", err)
		cm.mu.Lock()
		delete(cm.mu.until, p.log)
		cm.mu.Unlock()
		return
	case err != nil:
		b.logger.Warn("cleaning failed", "topic", p.topic.name, "partition", p.index, "err", err, "retry_in", backoff)
		return
	case !res.Cleaned:
		return
	}
	secs := res.Duration.Seconds()
	mbps := 0.0
	if secs > 0 {
		mbps = float64(res.BytesRead+res.BytesWritten) / secs / 1e6
	}
	b.logger.Info("cleaned log", "topic", p.topic.name, "partition", p.index,
		"bytes_read", res.BytesRead, "bytes_written", res.BytesWritten, "mb_per_sec", roundTo(mbps, 2),
		"ratio_before", roundTo(res.RatioBefore, 3), "ratio_after", roundTo(res.RatioAfter, 3),
		"records_read", res.RecordsRead, "records_kept", res.RecordsKept, "tombstones_dropped", res.TombstonesDropped,
		"segments", res.Segments, "new_segments", res.Groups, "cleaned_to", res.End, "keys_deferred", res.Skipped,
		"duration", res.Duration.Round(time.Millisecond))
}

// cleanAborted recognises storage's "the log changed under the pass"
// error: nothing lost, the next pass starts over.
func cleanAborted(err error) bool {
	return errors.Is(err, storage.ErrCleanAborted)
}

func roundTo(f float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(f*p+0.5)) / p
}

// throttleBytes is the shared token bucket of
// log.cleaner.io.max.bytes.per.second: each call pays for n bytes read or
// written and sleeps until the threads together are back under the rate.
// It carries no credit over idle time (a pass starting after a pause does
// not burst), and fails once the broker closes.
func (cm *cleanerManager) throttleBytes(n int64) error {
	b := cm.b
	select {
	case <-b.closing:
		return errCleanerStopped
	default:
	}
	rate := math.Float64frombits(cm.rate.Load())
	if rate <= 0 || rate >= 1e15 || n <= 0 {
		return nil // unthrottled (Kafka's default Double.MAX_VALUE)
	}
	cm.throttle.Lock()
	now := time.Now()
	if cm.throttle.next.Before(now) {
		cm.throttle.next = now
	}
	cm.throttle.next = cm.throttle.next.Add(time.Duration(float64(n) / rate * float64(time.Second)))
	wait := cm.throttle.next.Sub(now)
	cm.throttle.Unlock()
	// Sleep only for waits worth a timer; small debts add up in next.
	if wait < time.Millisecond {
		return nil
	}
	if !b.sleep(wait) {
		return errCleanerStopped
	}
	return nil
}
