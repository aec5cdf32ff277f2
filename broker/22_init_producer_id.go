package broker

// InitProducerId: v0–5.
//
// Idempotent producers get a producer id unique across the cluster and
// restarts, and epoch 0. Ids come from blocks of 1000 that the controller
// quorum hands to each broker (AllocateProducerIds): committed in the
// metadata log before any id of the block is used, so a crash at worst
// skips the rest of a block and never reuses an id.
//
// v3+ (KIP-360): a producer that sends the id and epoch it holds gets the
// epoch bumped, letting it reset its sequences after an unknown-producer
// or out-of-order error without changing id. The broker remembers the
// current epoch of recently issued ids in memory (bounded); an id it does
// not remember (issued before a restart, or evicted) or a stale epoch is
// answered with a fresh id at epoch 0, which is always safe for an
// idempotent producer and is what Kafka does for non-transactional
// producers.
//
// A transactional id goes to the transaction coordinator (txncoord.go,
// broker/txn), which bumps the id's epoch (fencing the previous producer)
// and aborts a transaction it left open.
//
// Version notes: v2 throttle; v3 ProducerID/ProducerEpoch in the
// request; v4 flexible; v5 (KIP-890) no change for us.

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/txn"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(22, 0, 5, handleInitProducerID) }

const (
	pidBlockFile  = "producer-id-block" // single-node brokers before the quorum
	pidEpochsSize = 10000               // bound on remembered (id → epoch) entries
)

// pidAllocator hands out producer ids from blocks the controller quorum
// allocates (AllocateProducerIds), so ids are unique across the cluster
// and across restarts: a block is committed in the metadata log before
// any of its ids is used, and a restart takes a fresh block, at worst
// skipping the rest of the old one. All fields are guarded by mu.
type pidAllocator struct {
	mu       sync.Mutex
	fetch    func() (first int64, count int32, err error)
	next     int64 // next id to hand out
	blockEnd int64 // first id not in the current block
	epochs   map[int64]int16
}

func (a *pidAllocator) init(fetch func() (int64, int32, error)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fetch = fetch
	a.epochs = make(map[int64]int16)
}

// allocate returns a fresh producer id.
func (a *pidAllocator) allocate() (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next >= a.blockEnd {
		first, count, err := a.fetch()
		if err != nil {
			return 0, err
		}
		a.next, a.blockEnd = first, first+int64(count)
	}
	id := a.next
	a.next++
	a.remember(id, 0)
	return id, nil
}

// readPIDBlock reads the producer-id-block file of a single-node broker
// from before the controller quorum: the first id it had not handed out.
func readPIDBlock(dir string) (int64, error) {
	raw, err := os.ReadFile(filepath.Join(dir, pidBlockFile))
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("broker: %s is corrupt (%q)", pidBlockFile, raw)
	}
	return v, nil
}

// bump raises the epoch of id if epoch is the one the broker last issued
// for it. ok is false when the broker does not know id at that epoch.
func (a *pidAllocator) bump(id int64, epoch int16) (int16, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	cur, known := a.epochs[id]
	if !known || cur != epoch || epoch == math.MaxInt16 {
		return 0, false
	}
	a.epochs[id] = epoch + 1
	return epoch + 1, true
}

func (a *pidAllocator) remember(id int64, epoch int16) {
	if len(a.epochs) >= pidEpochsSize {
		for k := range a.epochs { // drop an arbitrary entry: a forgotten id just gets a fresh one
			delete(a.epochs, k)
			break
		}
	}
	a.epochs[id] = epoch
}

func handleInitProducerID(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.InitProducerIDRequest)
	resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if r.TransactionalID != nil {
		id := *r.TransactionalID
		return b.txnRequest(req, []string{id}, func(e *tributary.Error) kmsg.Response {
			resp.ErrorCode = e.Code
			return resp
		}, func(c *txn.Coordinator, now time.Time) kmsg.Response {
			return c.InitProducerID(now, r)
		})
	}
	if r.Version >= 3 && r.ProducerID >= 0 && r.ProducerEpoch >= 0 {
		if epoch, ok := b.data.pids.bump(r.ProducerID, r.ProducerEpoch); ok {
			resp.ProducerID, resp.ProducerEpoch = r.ProducerID, epoch
			return resp, nil
		}
	}
	id, err := b.data.pids.allocate()
	if err != nil {
		b.logger.Error("allocating a producer id block", "err", err)
		resp.ErrorCode = tributary.CodeOf(err)
		if resp.ErrorCode == tributary.ErrUnknownServerError.Code {
			resp.ErrorCode = tributary.ErrCoordinatorNotAvailable.Code
		}
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}
