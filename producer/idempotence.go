package producer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/client"
)

// producerID holds the idempotent producer's id and epoch (InitProducerId)
// and runs epoch bumps.
//
// A bump (KIP-360) is how the idempotent producer recovers when sequence
// numbers can no longer line up: a batch failed for good, or the broker
// lost our state. Sinks stop sending (bumping), in-flight batches drain,
// then a new epoch is fetched and every partition's sequences restart at 0
// with the unsent batches renumbered. Doing it only with nothing in flight
// is what makes it safe: no old-epoch batch can land after the reset.
type producerID struct {
	p       *Producer
	bumping atomic.Bool // sinks send nothing while set

	ok    atomic.Bool  // an id was obtained (or idempotence is unsupported)
	id    atomic.Int64 // readable without mu; written under mu
	epoch atomic.Int32

	mu      sync.Mutex // serializes InitProducerId; guards running
	running bool       // a bump goroutine is active
}

func (x *producerID) init(p *Producer) {
	x.p = p
	x.id.Store(-1)
	x.epoch.Store(-1)
}

func (x *producerID) current() (int64, int16) {
	return x.id.Load(), int16(x.epoch.Load())
}

// ensure fetches a producer id the first time it is needed.
func (x *producerID) ensure(ctx context.Context) error {
	if x.ok.Load() {
		return nil
	}
	if x.p.txn != nil {
		// The transactional id is initialized by BeginTxn or
		// InitTransactions, which come before any record.
		return errors.New("producer: transactional producer not initialized")
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ok.Load() {
		return nil
	}
	id, epoch, err := x.initProducerID(ctx, -1, -1)
	if err != nil {
		return err
	}
	x.set(id, epoch)
	return nil
}

func (x *producerID) set(id int64, epoch int16) {
	x.id.Store(id)
	x.epoch.Store(int32(epoch))
	x.ok.Store(true)
}

// initProducerID asks any broker for an id. With a current id and epoch
// (InitProducerId v3+, KIP-360) the broker bumps the epoch of that id
// instead of allocating a new one.
func (x *producerID) initProducerID(ctx context.Context, id int64, epoch int16) (int64, int16, error) {
	ctx, cancel := context.WithTimeout(ctx, x.p.cfg.requestTimeout)
	defer cancel()
	req := kmsg.NewPtrInitProducerIDRequest()
	// Java sends Integer.MAX_VALUE for a non-transactional producer.
	req.TransactionTimeoutMillis = math.MaxInt32
	req.ProducerID, req.ProducerEpoch = id, epoch
	raw, err := x.p.cl.Request(ctx, req)
	if err != nil {
		if tributary.CodeOf(err) == tributary.ErrUnsupportedVersion.Code {
			// A broker without InitProducerId: produce without
			// idempotence, as franz-go does, rather than not at all.
			x.p.clx.Logger().Warn("broker does not support InitProducerId; producing without idempotence")
			return -1, -1, nil
		}
		return -1, -1, fmt.Errorf("init producer id: %w", err)
	}
	resp := raw.(*kmsg.InitProducerIDResponse)
	if resp.ErrorCode != 0 {
		return -1, -1, fmt.Errorf("init producer id: %w", tributary.ErrorForCode(resp.ErrorCode))
	}
	return resp.ProducerID, resp.ProducerEpoch, nil
}

// requestBump stops sending and bumps once nothing is in flight.
func (x *producerID) requestBump() {
	if x.p.txn != nil {
		// Bumping aborts the transaction on the coordinator; AbortTxn
		// does it once the application has aborted.
		x.p.txn.markBump()
		return
	}
	if x.bumping.Swap(true) {
		return
	}
	if x.p.inflightAll.Load() == 0 {
		x.startBump()
	}
}

func (x *producerID) startBump() {
	x.mu.Lock()
	if x.running || !x.bumping.Load() || x.p.inflightAll.Load() != 0 {
		x.mu.Unlock()
		return // inflightDone calls again when the last batch returns
	}
	x.running = true
	x.mu.Unlock()
	p := x.p
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		x.bump()
	}()
}

func (x *producerID) bump() {
	p := x.p
	for attempt := 1; ; attempt++ {
		if p.ctx.Err() != nil {
			return
		}
		x.mu.Lock()
		curID, curEpoch := x.current()
		id, epoch, err := x.initProducerID(p.ctx, curID, curEpoch)
		if err != nil && !errors.Is(err, client.ErrConnection) && !tributary.IsRetriable(err) {
			// The broker would not bump this id (fenced, unknown, or
			// pre-KIP-360): take a fresh one.
			id, epoch, err = x.initProducerID(p.ctx, -1, -1)
		}
		if err == nil {
			p.clx.Logger().Info("producer epoch bumped", "producer_id", id, "epoch", epoch, "previous_id", curID, "previous_epoch", curEpoch)
			x.set(id, epoch)
			x.resetSequences()
			x.running = false
			x.bumping.Store(false)
			x.mu.Unlock()
			p.wakeAllSinks()
			return
		}
		x.mu.Unlock()
		p.clx.Logger().Warn("producer epoch bump failed", "err", err)
		select {
		case <-p.ctx.Done():
			return
		case <-timeAfter(p.clx.Backoff(attempt)):
		}
	}
}

// resetSequences restarts every partition at sequence 0 and renumbers the
// unsent batches when they are next taken.
func (x *producerID) resetSequences() {
	p := x.p
	p.topicsMu.RLock()
	defer p.topicsMu.RUnlock()
	for _, t := range p.topics {
		parts := t.parts.Load()
		if parts == nil {
			continue
		}
		for _, ps := range *parts {
			ps.mu.Lock()
			ps.nextSeq, ps.ackedSeq = 0, 0
			for _, b := range ps.queue {
				b.seq = -1
			}
			for _, b := range ps.retry {
				b.seq = -1
			}
			ps.mu.Unlock()
		}
	}
}
