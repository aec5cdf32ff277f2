package partitioner

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/tributary/tributary"
)

// noPartition marks a topic whose sticky partition has not been chosen yet.
const noPartition = -1

// stickyState is the per-topic sticky partition. It is an atomic rather than
// a mutex-guarded int because Partition runs once per keyless record from
// every producing goroutine, while it changes only once per batch.
type stickyState struct {
	cur   atomic.Int32
	topic string // the key it is stored under, for the last-topic cache
}

// sticky implements uniform sticky partitioning for keyless records. Its
// zero value is ready to use.
//
// Per-topic state lives in a sync.Map: a lookup by string allocates
// nothing, reads do not contend, and a new topic costs one insertion. The
// entries are never removed; a producer writes to a bounded set of topics,
// and one small struct per topic is cheaper than tracking which are idle.
type sticky struct {
	topics sync.Map // string -> *stickyState
	// last is the state used most recently. Most producers write one
	// topic (or runs of one), and the sync.Map lookup was the largest
	// per-record cost of the default partitioner after the clock.
	last atomic.Pointer[stickyState]
}

func (s *sticky) state(topic string) *stickyState {
	if st := s.last.Load(); st != nil && st.topic == topic {
		return st
	}
	var st *stickyState
	if v, ok := s.topics.Load(topic); ok {
		st = v.(*stickyState)
	} else {
		st = &stickyState{topic: topic}
		st.cur.Store(noPartition)
		v, _ := s.topics.LoadOrStore(topic, st)
		st = v.(*stickyState)
	}
	s.last.Store(st)
	return st
}

// partition returns topic's sticky partition, choosing one uniformly at
// random the first time, or again when the partition count has shrunk
// below it (the producer saw new metadata with fewer partitions, which
// Kafka itself never does, but a recreated topic can).
func (s *sticky) partition(topic string, n int32) int32 {
	st := s.state(topic)
	for {
		cur := st.cur.Load()
		if cur >= 0 && cur < n {
			return cur
		}
		// Several goroutines may race to pick the first partition; only
		// one choice wins, and the reload returns it to all of them, so
		// they fill the same batch.
		st.cur.CompareAndSwap(cur, rand.Int32N(n))
	}
}

// onNewBatch moves topic's sticky partition off prev. Only a notification
// about the current sticky partition moves it: the producer may report the
// same completed batch from several goroutines, or report a batch of a
// partition that keyed records filled, and neither should move keyless
// records again.
func (s *sticky) onNewBatch(topic string, prev, n int32) {
	if n <= 0 {
		return
	}
	v, ok := s.topics.Load(topic)
	if !ok {
		return // no keyless record went to this topic yet
	}
	st := v.(*stickyState)
	if st.cur.Load() != prev {
		return
	}
	st.cur.CompareAndSwap(prev, nextPartition(prev, n))
}

// nextPartition picks uniformly among the n-1 partitions other than prev
// (all n when prev is out of range): draw from n-1 values and skip over
// prev. KIP-480's Java StickyPartitionCache also never re-picks the
// previous partition; KIP-794's BuiltInPartitioner may, which with few
// partitions makes batches on one partition longer than batch.size.
func nextPartition(prev, n int32) int32 {
	if prev < 0 || prev >= n {
		return rand.Int32N(n)
	}
	if n == 1 {
		return 0
	}
	p := rand.Int32N(n - 1)
	if p >= prev {
		p++
	}
	return p
}

// stickyPartitioner is Sticky(): every record is keyless to it.
type stickyPartitioner struct{ s sticky }

func (p *stickyPartitioner) Partition(r *tributary.Record, n int32) int32 {
	return p.s.partition(r.Topic, n)
}

func (p *stickyPartitioner) OnNewBatch(topic string, prev, n int32) {
	p.s.onNewBatch(topic, prev, n)
}
