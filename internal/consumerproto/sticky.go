package consumerproto

import (
	"encoding/binary"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// CooperativeSticky returns the "cooperative-sticky" assignor: Java's
// CooperativeStickyAssignor semantics (KIP-429), interoperable with it and
// with franz-go's CooperativeStickyBalancer in one group.
//
// The plan is
//
//   - balanced: no partition could move, directly or through a chain of
//     members each handing one on to the next, from a member to one
//     subscribed to it that has two or more fewer partitions. With equal
//     subscriptions that means counts differ by at most one; with unequal
//     ones it is the best balance there is (the sum of squared counts is
//     minimal), where Java's heuristic can stop short.
//   - sticky: a partition stays with the member that owns it unless
//     balance needs it elsewhere. With equal subscriptions exactly as many
//     move as balance needs; with unequal ones the choice of what moves
//     is a heuristic (in the tests it moves as few as franz-go's).
//     Ownership comes from the owned partitions each member sends (v1+);
//     when two members claim one partition the higher generation (v2+, or
//     Java's 4-byte user data before v2) wins, as KIP-792 specifies, so a
//     zombie that missed rebalances cannot take partitions back.
//   - cooperative: a partition moving from A to B is left out of B's
//     assignment in this rebalance. A sees it missing, revokes it and
//     rejoins, and the follow-up rebalance gives it to B. No partition is
//     ever consumed by two members at once, and a partition that stays
//     with its owner is never revoked.
//
// Rack-aware assignment (KIP-881) is not implemented; racks are ignored.
func CooperativeSticky() Assignor { return stickyAssignor{cooperative: true} }

// Sticky returns the eager "sticky" assignor (Java's StickyAssignor,
// KIP-54): the same plan as [CooperativeSticky] without the cooperative
// hold-back, for groups that revoke everything on each rebalance. Members
// carry their previous assignment and generation in user data
// (StickyMemberMetadata), because eager members send no owned partitions.
func Sticky() Assignor { return stickyAssignor{cooperative: false} }

type stickyAssignor struct{ cooperative bool }

func (s stickyAssignor) Name() string {
	if s.cooperative {
		return "cooperative-sticky"
	}
	return "sticky"
}

func (s stickyAssignor) Cooperative() bool { return s.cooperative }

// UserData writes what the Java assignors write, so a Java leader reads
// our members' history: CooperativeStickyAssignor a 4-byte big-endian
// generation (its leaders before v2 subscriptions read the generation
// only from there), StickyAssignor a StickyMemberMetadata with the
// previous assignment and generation.
func (s stickyAssignor) UserData(current map[string][]int32, generation int32) []byte {
	if s.cooperative {
		return binary.BigEndian.AppendUint32(nil, uint32(generation))
	}
	meta := kmsg.NewStickyMemberMetadata()
	for _, topic := range sortedKeys(current) {
		a := kmsg.NewStickyMemberMetadataCurrentAssignment()
		a.Topic = topic
		a.Partitions = slices.Sorted(slices.Values(current[topic]))
		meta.CurrentAssignment = append(meta.CurrentAssignment, a)
	}
	meta.Generation = generation
	return meta.AppendTo(nil)
}

// history returns what m says it holds and from which generation.
func (s stickyAssignor) history(m *Member) (map[string][]int32, int32) {
	gen := m.Generation
	if !s.cooperative && len(m.UserData) > 0 {
		// Eager members revoked everything before joining; their
		// history is in user data (Java's StickyAssignor, franz-go's
		// sticky). Unreadable user data falls back to owned
		// partitions, which Java's StickyAssignor does too.
		var meta kmsg.StickyMemberMetadata
		if err := meta.ReadFrom(m.UserData); err == nil {
			owned := make(map[string][]int32, len(meta.CurrentAssignment))
			for _, a := range meta.CurrentAssignment {
				owned[a.Topic] = append(owned[a.Topic], a.Partitions...)
			}
			if meta.Generation >= 0 {
				gen = meta.Generation
			}
			return owned, gen
		}
	}
	if gen < 0 && s.cooperative && len(m.UserData) == 4 {
		// A Java member before subscription v2 (Kafka 2.4–3.0).
		gen = int32(binary.BigEndian.Uint32(m.UserData))
	}
	return m.Owned, gen
}

func (s stickyAssignor) Assign(members []Member, partitions map[string]int32) Plan {
	sorted, plan := prepareMembers(members)
	st := newStickyState(s, sorted, partitions)
	st.assignUnowned()
	st.balance()

	// The plan, before any cooperative hold-back.
	for p, m := range st.owner {
		t := st.topicOf(int32(p))
		member := sorted[m].ID
		plan[member][st.topics[t]] = append(plan[member][st.topics[t]], int32(p)-st.base[t])
	}
	if s.cooperative {
		st.holdBackTransfers(plan)
	}
	return plan
}

// stickyState is one balancing run. Members are indexes into the sorted
// member list, topics indexes into the sorted list of assignable topics
// (known partition count above zero and at least one subscriber), and
// partitions flat ids: base[topic] + partition.
type stickyState struct {
	a       stickyAssignor
	members []*Member
	topics  []string
	base    []int32 // first flat id of each topic; one extra entry closes the last
	topicID map[string]int32

	eligible [][]int32   // topic → subscribed members, ascending
	subs     [][]int32   // member → subscribed assignable topics, ascending
	held     [][][]int32 // member → topic → flat ids it is planned to get
	ownHeld  [][]int32   // member → topic → how many of held it owned before
	count    []int32     // member → planned partition count

	owner []int32 // flat id → planned member, -1 while unassigned
	prev  []int32 // flat id → owner before this rebalance, -1 if none
	// prevGen is the generation of prev's claim, used to pick the
	// newest claim when members disagree.
	prevGen []int32
}

func newStickyState(a stickyAssignor, members []*Member, partitions map[string]int32) *stickyState {
	st := &stickyState{a: a, members: members, topicID: make(map[string]int32)}
	for _, m := range members {
		for _, topic := range m.Topics {
			if partitions[topic] > 0 {
				st.topicID[topic] = -1
			}
		}
	}
	st.topics = sortedKeys(st.topicID)
	st.base = make([]int32, len(st.topics)+1)
	for i, topic := range st.topics {
		st.topicID[topic] = int32(i)
		st.base[i+1] = st.base[i] + partitions[topic]
	}
	total := st.base[len(st.topics)]

	st.eligible = make([][]int32, len(st.topics))
	st.subs = make([][]int32, len(members))
	st.held = make([][][]int32, len(members))
	st.ownHeld = make([][]int32, len(members))
	st.count = make([]int32, len(members))
	for mi, m := range members {
		for _, topic := range m.Topics {
			if t, ok := st.topicID[topic]; ok {
				st.subs[mi] = append(st.subs[mi], t)
			}
		}
		slices.Sort(st.subs[mi])
		st.subs[mi] = slices.Compact(st.subs[mi])
		for _, t := range st.subs[mi] {
			st.eligible[t] = append(st.eligible[t], int32(mi))
		}
		st.held[mi] = make([][]int32, len(st.topics))
		st.ownHeld[mi] = make([]int32, len(st.topics))
	}

	st.owner = make([]int32, total)
	st.prev = make([]int32, total)
	st.prevGen = make([]int32, total)
	for i := range st.owner {
		st.owner[i], st.prev[i] = -1, -1
	}
	// Claims on topics a member no longer subscribes to, or on partitions
	// that no longer exist, cannot be kept and are ignored here (the
	// cooperative hold-back still sees them). Among valid claims the
	// highest generation wins; on a tie the first member in order keeps
	// it, which is arbitrary but deterministic.
	for mi, m := range members {
		owned, gen := a.history(m)
		for _, topic := range sortedKeys(owned) {
			t, ok := st.topicID[topic]
			if !ok || !st.subscribes(int32(mi), t) {
				continue
			}
			n := st.base[t+1] - st.base[t]
			for _, p := range owned[topic] {
				if p < 0 || p >= n {
					continue
				}
				id := st.base[t] + p
				if st.prev[id] == -1 || gen > st.prevGen[id] {
					st.prev[id], st.prevGen[id] = int32(mi), gen
				}
			}
		}
	}
	for id, m := range st.prev {
		if m >= 0 {
			st.give(int32(id), m)
		}
	}
	return st
}

func (st *stickyState) subscribes(m, t int32) bool {
	_, ok := slices.BinarySearch(st.subs[m], t)
	return ok
}

func (st *stickyState) topicOf(id int32) int32 {
	i, found := slices.BinarySearch(st.base, id)
	if found {
		// Every assignable topic has partitions, so base is strictly
		// increasing and an exact hit is that topic's first id.
		return int32(i)
	}
	return int32(i - 1)
}

func (st *stickyState) give(id, m int32) {
	t := st.topicOf(id)
	st.owner[id] = m
	st.held[m][t] = append(st.held[m][t], id)
	st.count[m]++
	if st.prev[id] == m {
		st.ownHeld[m][t]++
	}
}

// assignUnowned places every partition nobody keeps on its least loaded
// subscriber. Topics with fewer subscribers go first: their partitions
// have fewer places to go, and filling the flexible members last leaves
// less for balance to move (Java sorts partitions the same way).
func (st *stickyState) assignUnowned() {
	order := make([]int32, len(st.topics))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(a, b int32) int {
		return len(st.eligible[a]) - len(st.eligible[b])
	})
	for _, t := range order {
		for id := st.base[t]; id < st.base[t+1]; id++ {
			if st.owner[id] >= 0 {
				continue
			}
			best := st.eligible[t][0]
			for _, m := range st.eligible[t][1:] {
				if st.count[m] < st.count[best] {
					best = m
				}
			}
			st.give(id, best)
		}
	}
}

// balance moves partitions until no member can pass one, directly or
// along a chain, to a member with at least two fewer. Each move lowers the
// sum of squared counts, so this ends; when it ends the balance is
// optimal, because an assignment is optimal exactly when no such chain
// exists (the usual augmenting-path argument for convex costs).
//
// Donors are always the fullest members that can give. Taking from the
// fullest keeps partitions with the members that own fewer: a member never
// gives away what it owns while a fuller member could give instead, which
// is what keeps the number of moves minimal when subscriptions are equal.
// All members of the fullest count search together, so the cheapest chain
// from any of them wins (see augment).
func (st *stickyState) balance() {
	sr := newSearch(len(st.members))
	var levels, sources []int32
	for {
		// The least count among members that could take anything:
		// nobody within two of it can be a donor.
		floor, top := int32(-1), int32(0)
		for m := range st.members {
			if len(st.subs[m]) > 0 && (floor < 0 || st.count[m] < floor) {
				floor = st.count[m]
			}
			top = max(top, st.count[m])
		}
		if top < floor+2 {
			return
		}
		// Usually the fullest members can give; only when they cannot
		// are the lower counts worth listing.
		moved := st.augment(st.membersWith(top, sources[:0]), top-2, sr)
		if !moved {
			levels = levels[:0]
			for m := range st.members {
				if c := st.count[m]; c < top && c >= floor+2 {
					levels = append(levels, c)
				}
			}
			slices.Sort(levels)
			levels = slices.Compact(levels)
			for i := len(levels) - 1; i >= 0 && !moved; i-- {
				moved = st.augment(st.membersWith(levels[i], sources[:0]), levels[i]-2, sr)
			}
		}
		if !moved {
			return
		}
	}
}

// membersWith appends to dst the members planned count partitions.
func (st *stickyState) membersWith(count int32, dst []int32) []int32 {
	for m := range st.members {
		if st.count[m] == count {
			dst = append(dst, int32(m))
		}
	}
	return dst
}

// search is the scratch space of augment, reused across calls.
type search struct {
	dist   []int64 // cost*(members+1)+hops of the best chain found, -1 unreached
	parent []int32 // previous member on that chain, -1 for a source
	via    []int32 // topic of the edge parent → member
	done   []bool
	heap   []heapItem
}

// heapItem orders chains by cost and length (dist), then by the count of
// the member reached, emptiest first, then by member order.
type heapItem struct {
	dist  int64
	count int32
	m     int32
}

func newSearch(n int) *search {
	return &search{
		dist:   make([]int64, n),
		parent: make([]int32, n),
		via:    make([]int32, n),
		done:   make([]bool, n),
	}
}

// augment finds a cheapest chain from any of sources to a member with at
// most limit partitions and moves one partition along each of its edges.
// An edge x→y exists when x holds a partition of a topic y subscribes to.
// It costs nothing if x holds such a partition that it did not own before
// this rebalance (moving it breaks no stickiness and, for the cooperative
// protocol, needs no revocation), and one otherwise. Chains are compared
// by cost, then length, then the receiver's count (emptiest first), then
// member order, so the result is deterministic. This is Dijkstra's
// search with the cost weighted above any length (members+1 per unit).
//
// Preferring free edges matters most in the rebalance that follows a
// cooperative revocation: the revoked partitions arrive unowned, and
// moving them rather than owned ones avoids a third rebalance.
func (st *stickyState) augment(sources []int32, limit int32, sr *search) bool {
	costUnit := int64(len(st.members)) + 1
	for i := range sr.dist {
		sr.dist[i] = -1
		sr.done[i] = false
	}
	sr.heap = sr.heap[:0]
	for _, u := range sources {
		sr.dist[u], sr.parent[u] = 0, -1
		sr.heap = heapPush(sr.heap, heapItem{0, st.count[u], u})
	}
	for len(sr.heap) > 0 {
		var it heapItem
		it, sr.heap = heapPop(sr.heap)
		x := it.m
		if sr.done[x] || it.dist != sr.dist[x] {
			continue // a stale entry: x was reached more cheaply
		}
		sr.done[x] = true
		if st.count[x] <= limit { // never a source: sources hold limit+2
			for y := x; sr.parent[y] >= 0; y = sr.parent[y] {
				st.move(sr.parent[y], y, sr.via[y])
			}
			return true
		}
		for _, t := range st.subs[x] {
			held := len(st.held[x][t])
			if held == 0 {
				continue
			}
			next := it.dist + 1
			if int32(held) == st.ownHeld[x][t] {
				next += costUnit // all x can pass on is its own: cost one
			}
			for _, y := range st.eligible[t] {
				if sr.done[y] {
					continue
				}
				if sr.dist[y] < 0 || next < sr.dist[y] {
					sr.dist[y], sr.parent[y], sr.via[y] = next, x, t
					sr.heap = heapPush(sr.heap, heapItem{next, st.count[y], y})
				}
			}
		}
	}
	return false
}

func heapLess(a, b heapItem) bool {
	if a.dist != b.dist {
		return a.dist < b.dist
	}
	if a.count != b.count {
		return a.count < b.count
	}
	return a.m < b.m
}

func heapPush(h []heapItem, it heapItem) []heapItem {
	h = append(h, it)
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if !heapLess(h[i], h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
	return h
}

func heapPop(h []heapItem) (heapItem, []heapItem) {
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		l, r, small := 2*i+1, 2*i+2, i
		if l < len(h) && heapLess(h[l], h[small]) {
			small = l
		}
		if r < len(h) && heapLess(h[r], h[small]) {
			small = r
		}
		if small == i {
			break
		}
		h[i], h[small] = h[small], h[i]
		i = small
	}
	return top, h
}

// move hands one partition of topic t from x to y, choosing, in order: one
// y owned before this rebalance (undoing an earlier move), one x did not
// own (moving it costs no stickiness), any; the highest id among equals,
// for determinism.
func (st *stickyState) move(x, y, t int32) {
	ps := st.held[x][t]
	best, bestRank := -1, -1
	for i, id := range ps {
		rank := 0
		switch {
		case st.prev[id] == y:
			rank = 2
		case st.prev[id] != x:
			rank = 1
		}
		if rank > bestRank || rank == bestRank && id > ps[best] {
			best, bestRank = i, rank
		}
	}
	id := ps[best]
	ps[best] = ps[len(ps)-1]
	st.held[x][t] = ps[:len(ps)-1]
	st.count[x]--
	if st.prev[id] == x {
		st.ownHeld[x][t]--
	}
	st.give(id, y)
}

// holdBackTransfers removes from the plan every partition that another
// member may still be consuming: one claimed by a member other than its
// new assignee, unless the assignee's own claim is of the newest
// generation (then it already consumes it, and the others are stale and
// revoke it when they see their assignment). Every claim counts here,
// including claims on topics a member dropped, since such a member
// consumes the partition until it revokes. The held-back partitions are
// assigned in the rebalance the revoking members trigger (KIP-429).
func (st *stickyState) holdBackTransfers(plan Plan) {
	type claim struct {
		member int32
		gen    int32
	}
	claims := make(map[string]map[int32][]claim)
	for mi, m := range st.members {
		owned, gen := st.a.history(m)
		for topic, ps := range owned {
			byP := claims[topic]
			if byP == nil {
				byP = make(map[int32][]claim)
				claims[topic] = byP
			}
			for _, p := range ps {
				byP[p] = append(byP[p], claim{int32(mi), gen})
			}
		}
	}
	for mi, m := range st.members {
		assigned := plan[m.ID]
		for topic, ps := range assigned {
			byP := claims[topic]
			if byP == nil {
				continue
			}
			kept := ps[:0]
			for _, p := range ps {
				cs := byP[p]
				other, newest, mine := false, int32(-1<<31), int32(-1<<31)
				for _, c := range cs {
					newest = max(newest, c.gen)
					if c.member == int32(mi) {
						mine = max(mine, c.gen)
					} else {
						other = true
					}
				}
				if other && mine < newest {
					continue
				}
				kept = append(kept, p)
			}
			if len(kept) == 0 {
				delete(assigned, topic)
			} else {
				assigned[topic] = kept
			}
		}
	}
}
