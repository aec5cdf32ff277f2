package consumer

import (
	"context"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// groupOpts are fast group timings for tests.
func groupOpts(group, topic string) []Opt {
	return []Opt{
		Group(group), Topics(topic),
		AutoOffsetReset(ResetEarliest),
		HeartbeatInterval(100 * time.Millisecond),
		SessionTimeout(10 * time.Second),
		RebalanceTimeout(10 * time.Second),
	}
}

type tpOff struct {
	p   int32
	off int64
}

func keys(recs []*tributary.Record) []tpOff {
	out := make([]tpOff, len(recs))
	for i, r := range recs {
		out[i] = tpOff{r.Partition, r.Offset}
	}
	return out
}

func assignedCount(c *Consumer) int { return len(c.Assignment()) }

// TestGroupSplitCommitTakeover: two members split a 6-partition topic and
// commit; one leaves without committing its latest records; the other
// takes its partitions over from the committed offsets, re-reading exactly
// the uncommitted tail and skipping nothing.
func TestGroupSplitCommitTakeover(t *testing.T) {
	forEachGroupBackend(t, func(t *testing.T, e *env) {
		topic := e.topic(t, 6)
		group := sanitize("g-" + t.Name())
		a := e.newConsumer(t, append(groupOpts(group, topic), AutoCommit(false))...)
		b := e.newConsumer(t, append(groupOpts(group, topic), AutoCommit(false))...)
		eventually(t, 30*time.Second, func() bool { return assignedCount(a) == 3 && assignedCount(b) == 3 },
			"members did not split the partitions: a=%v b=%v", a.Assignment(), b.Assignment())
		aParts, bParts := a.Assignment(), b.Assignment()
		for _, tp := range aParts {
			require.NotContains(t, bParts, tp, "a partition is owned twice")
		}
		colA, colB := collect(t, a), collect(t, b)

		phase1 := e.produce(t, nil, topic, 600)
		eventually(t, 20*time.Second, func() bool { return colA.count()+colB.count() == 600 }, "phase 1 not consumed: %d+%d", colA.count(), colB.count())
		for _, r := range colA.snapshot() {
			require.Contains(t, aParts, tributary.TopicPartition{Topic: topic, Partition: r.Partition})
		}
		requireSameRecords(t, phase1, append(colA.snapshot(), colB.snapshot()...))
		ctx := testCtx(t)
		require.NoError(t, a.Commit(ctx))
		require.NoError(t, b.Commit(ctx))
		committedB, err := b.CommittedOffsets(ctx)
		require.NoError(t, err)
		require.Len(t, committedB, 3)

		// Phase 2: consumed, and committed only by a.
		e.produce(t, nil, topic, 300)
		eventually(t, 20*time.Second, func() bool { return colA.count()+colB.count() == 900 }, "phase 2 not consumed")
		require.NoError(t, a.Commit(ctx))
		colB.stop()
		bTail := colB.snapshot()[len(byPartitionIn(phase1, bParts)):]
		require.NotEmpty(t, bTail)
		require.NoError(t, b.Close(ctx)) // leaves; AutoCommit is off, so no commit

		eventually(t, 30*time.Second, func() bool { return assignedCount(a) == 6 }, "a did not take over: %v", a.Assignment())
		e.produce(t, nil, topic, 300)
		eventually(t, 20*time.Second, func() bool { return colA.count()+colB.count() == 1200+len(bTail) }, "after takeover: got %d, want %d", colA.count()+colB.count(), 1200+len(bTail))
		settle(t, 6, a) // everything up to the end collected: no more to come
		all := append(colA.snapshot(), colB.snapshot()...)
		require.Len(t, all, 1200+len(bTail), "records re-read beyond the uncommitted tail")

		// Every offset 0..end of every partition was consumed; the only
		// duplicates are b's uncommitted tail.
		seen := make(map[tpOff]int)
		for _, k := range keys(all) {
			seen[k]++
		}
		end, err := e.adm.ListEndOffsets(ctx, topic)
		require.NoError(t, err)
		total := 0
		end.Each(func(o kadm.ListedOffset) {
			for off := int64(0); off < o.Offset; off++ {
				require.NotZero(t, seen[tpOff{o.Partition, off}], "partition %d offset %d skipped", o.Partition, off)
			}
			total += int(o.Offset)
		})
		require.Equal(t, 1200, total)
		tail := make(map[tpOff]bool)
		for _, k := range keys(bTail) {
			tail[k] = true
			require.Equal(t, committedB[tributary.TopicPartition{Topic: topic, Partition: k.p}] <= k.off, true)
		}
		for k, n := range seen {
			if tail[k] {
				require.Equal(t, 2, n, "%v", k)
			} else {
				require.Equal(t, 1, n, "%v read twice but was committed", k)
			}
		}
	})
}

// byPartitionIn returns the records of recs in the given partitions.
func byPartitionIn(recs []*tributary.Record, tps []tributary.TopicPartition) []*tributary.Record {
	var out []*tributary.Record
	for _, r := range recs {
		if slices.Contains(tps, tributary.TopicPartition{Topic: r.Topic, Partition: r.Partition}) {
			out = append(out, r)
		}
	}
	return out
}

// TestGroupAutoCommit: positions are committed on the interval, and Close
// commits the rest, so the next member starts exactly after them.
func TestGroupAutoCommit(t *testing.T) {
	forEachGroupBackend(t, func(t *testing.T, e *env) {
		topic := e.topic(t, 3)
		group := sanitize("g-" + t.Name())
		want := e.produce(t, nil, topic, 300)
		a := e.newConsumer(t, append(groupOpts(group, topic), AutoCommitInterval(100*time.Millisecond))...)
		got := pollN(t, a, 300, 20*time.Second)
		requireSameRecords(t, want, got)
		eventually(t, 10*time.Second, func() bool {
			offs, err := a.CommittedOffsets(context.Background())
			if err != nil || len(offs) != 3 {
				return false
			}
			sum := int64(0)
			for _, o := range offs {
				sum += o
			}
			return sum == 300
		}, "auto-commit did not commit the positions")

		more := e.produce(t, nil, topic, 30)
		pollN(t, a, 30, 10*time.Second)
		require.NoError(t, a.Close(testCtx(t)))

		b := e.newConsumer(t, groupOpts(group, topic)...)
		pollNone(t, b) // everything was committed at Close
		last := e.produce(t, nil, topic, 10)
		got = pollN(t, b, 10, 20*time.Second)
		requireSameRecords(t, last, got)
		_ = more
	})
}

// TestGroupMixedWithKgo: a franz-go member (cooperative-sticky only) and a
// Tributary member (the default range + cooperative-sticky) form one group
// on cooperative-sticky, split the partitions and both consume.
func TestGroupMixedWithKgo(t *testing.T) {
	forEachGroupBackend(t, func(t *testing.T, e *env) {
		topic := e.topic(t, 6)
		group := sanitize("g-" + t.Name())
		kc, err := kgo.NewClient(kgo.SeedBrokers(e.addrs...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.HeartbeatInterval(100*time.Millisecond), kgo.FetchMaxWait(100*time.Millisecond))
		require.NoError(t, err)
		defer kc.Close()
		var kmu sync.Mutex
		var kgot []*tributary.Record
		kctx, kcancel := context.WithCancel(context.Background())
		kdone := make(chan struct{})
		go func() {
			defer close(kdone)
			for kctx.Err() == nil {
				fs := kc.PollFetches(kctx)
				kmu.Lock()
				fs.EachRecord(func(r *kgo.Record) {
					kgot = append(kgot, &tributary.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value})
				})
				kmu.Unlock()
			}
		}()
		defer func() { kcancel(); <-kdone }()

		c := e.newConsumer(t, groupOpts(group, topic)...)
		eventually(t, 30*time.Second, func() bool { return assignedCount(c) == 3 }, "tributary member never got half: %v", c.Assignment())
		require.Equal(t, "cooperative-sticky", c.GroupMetadata().Protocol)
		col := collect(t, c)
		e.produce(t, nil, topic, 600)
		kcount := func() int { kmu.Lock(); defer kmu.Unlock(); return len(kgot) }
		eventually(t, 30*time.Second, func() bool { return kcount()+col.count() >= 600 }, "not consumed: kgo %d, tributary %d", kcount(), col.count())
		settle(t, 3, c)
		require.Positive(t, col.count())
		require.Positive(t, kcount())
		seen := make(map[tpOff]bool)
		ours := c.Assignment()
		for _, r := range col.snapshot() {
			seen[tpOff{r.Partition, r.Offset}] = true
			require.Contains(t, ours, tributary.TopicPartition{Topic: topic, Partition: r.Partition})
		}
		kmu.Lock()
		for _, r := range kgot {
			require.NotContains(t, ours, tributary.TopicPartition{Topic: topic, Partition: r.Partition}, "kgo consumed our partition")
			require.False(t, seen[tpOff{r.Partition, r.Offset}])
			seen[tpOff{r.Partition, r.Offset}] = true
		}
		kmu.Unlock()
		require.Len(t, seen, 600)
	})
}

// TestCooperativeStickyNeverRevokesKept: with the cooperative protocol, a
// member that keeps a partition through a rebalance never has it revoked;
// only what moves to the newcomer is, and the newcomer gets exactly that.
func TestCooperativeStickyNeverRevokesKept(t *testing.T) {
	forEachGroupBackend(t, func(t *testing.T, e *env) {
		topic := e.topic(t, 6)
		group := sanitize("g-" + t.Name())
		var mu sync.Mutex
		var revokedA, assignedA []tributary.TopicPartition
		assignCalls := 0
		a := e.newConsumer(t, append(groupOpts(group, topic), Assignors(CooperativeSticky()),
			OnRevoked(func(tps []tributary.TopicPartition) { mu.Lock(); revokedA = append(revokedA, tps...); mu.Unlock() }),
			OnAssigned(func(tps []tributary.TopicPartition) {
				mu.Lock()
				assignedA = append(assignedA, tps...)
				assignCalls++
				mu.Unlock()
			}))...)
		eventually(t, 30*time.Second, func() bool { return assignedCount(a) == 6 }, "a alone did not get all 6")
		colA := collect(t, a)
		e.produce(t, nil, topic, 300)
		eventually(t, 10*time.Second, func() bool { return colA.count() == 300 }, "a did not consume")

		b := e.newConsumer(t, append(groupOpts(group, topic), Assignors(CooperativeSticky()))...)
		eventually(t, 30*time.Second, func() bool { return assignedCount(a) == 3 && assignedCount(b) == 3 },
			"no split: a=%v b=%v", a.Assignment(), b.Assignment())
		colB := collect(t, b)
		// Let any further rebalance happen: the coordinator says the group
		// is stable, with both members in its generation.
		groupStable(t, e, group, a, b)

		mu.Lock()
		defer mu.Unlock()
		kept := a.Assignment()
		require.Len(t, revokedA, 3, "a revoked %v", revokedA)
		for _, tp := range kept {
			require.NotContains(t, revokedA, tp, "a kept partition was revoked")
		}
		require.ElementsMatch(t, revokedA, b.Assignment(), "b did not get exactly what a gave up")
		require.Len(t, assignedA, 6, "a was assigned something twice: %v", assignedA)

		// Nothing consumed twice, nothing lost, with the commit before
		// revoke (auto-commit is on).
		e.produce(t, nil, topic, 300)
		eventually(t, 10*time.Second, func() bool { return colA.count()+colB.count() >= 600 }, "got %d+%d", colA.count(), colB.count())
		settle(t, 6, a, b)
		all := append(colA.snapshot(), colB.snapshot()...)
		require.Len(t, all, 600, "records consumed twice across the rebalance")
		for _, r := range colB.snapshot() {
			require.Contains(t, revokedA, tributary.TopicPartition{Topic: topic, Partition: r.Partition})
		}
	})
}

// TestStaticMemberRestartKeepsPartitions: a static member (InstanceID)
// does not leave the group on Close, so restarting it within the session
// timeout gives it its partitions back without a rebalance: the other
// member never has anything revoked.
func TestStaticMemberRestartKeepsPartitions(t *testing.T) {
	forEachGroupBackend(t, func(t *testing.T, e *env) {
		topic := e.topic(t, 6)
		group := sanitize("g-" + t.Name())
		var mu sync.Mutex
		revokedA := 0
		a := e.newConsumer(t, append(groupOpts(group, topic), InstanceID("a"),
			OnRevoked(func([]tributary.TopicPartition) { mu.Lock(); revokedA++; mu.Unlock() }))...)
		// a must lead the group: kfake rebalances when a restarted static
		// member was the leader, and which of two members racing to join
		// becomes leader depends on scheduling (this flaked under load).
		eventually(t, 30*time.Second, func() bool { return assignedCount(a) == 6 }, "a alone got nothing")
		b := e.newConsumer(t, append(groupOpts(group, topic), InstanceID("b"))...)
		eventually(t, 30*time.Second, func() bool { return assignedCount(a) == 3 && assignedCount(b) == 3 }, "no split")
		groupStable(t, e, group, a, b)
		mu.Lock()
		before := revokedA
		mu.Unlock()
		genBefore := a.GroupMetadata().Generation
		bParts := b.Assignment()
		require.NoError(t, b.Close(testCtx(t)))

		b2 := e.newConsumer(t, append(groupOpts(group, topic), InstanceID("b"))...)
		eventually(t, 30*time.Second, func() bool { return assignedCount(b2) == 3 }, "restarted static member got nothing")
		require.Equal(t, bParts, b2.Assignment())
		groupStable(t, e, group, a, b2)
		require.Equal(t, genBefore, a.GroupMetadata().Generation, "the static restart rebalanced the group")
		mu.Lock()
		defer mu.Unlock()
		require.Equal(t, before, revokedA, "the static restart rebalanced the group")
		require.Len(t, a.Assignment(), 3)
	})
}

// TestSubscribeAfterNew: Subscribe joins the group like the Topics option.
func TestSubscribeAfterNew(t *testing.T) {
	forEachGroupBackend(t, func(t *testing.T, e *env) {
		topic := e.topic(t, 2)
		c := e.newConsumer(t, Group(sanitize("g-"+t.Name())), AutoOffsetReset(ResetEarliest), HeartbeatInterval(100*time.Millisecond))
		require.ErrorIs(t, c.Subscribe(), errSubscribeNoTopics)
		want := e.produce(t, nil, topic, 20)
		require.NoError(t, c.Subscribe(topic))
		requireSameRecords(t, want, pollN(t, c, 20, 20*time.Second))
		require.Error(t, c.Assign(tributary.TopicPartition{Topic: topic}), "Assign mixed with Subscribe")
	})
}

// TestCloseStopsGoroutines: after Close no consumer goroutine is left.
func TestCloseStopsGoroutines(t *testing.T) {
	forEachGroupBackend(t, func(t *testing.T, e *env) {
		topic := e.topic(t, 3)
		e.produce(t, nil, topic, 30)
		c := e.newConsumer(t, groupOpts(sanitize("g-"+t.Name()), topic)...)
		pollN(t, c, 30, 20*time.Second)
		c.CommitAsync(nil, nil)
		require.NoError(t, c.Close(testCtx(t)))
		eventually(t, 5*time.Second, func() bool {
			buf := make([]byte, 1<<20)
			return !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "consumer.(*Consumer)")
		}, "consumer goroutines left after Close")
	})
}

// TestHeartbeatUnknownMemberLoses: a heartbeat answered UNKNOWN_MEMBER_ID
// means the membership expired: every partition is lost (OnLost, no
// commit, no OnRevoked) and the member joins again and gets them back.
func TestHeartbeatUnknownMemberLoses(t *testing.T) {
	e := kfakeEnv(t)
	topic := e.topic(t, 3)
	var mu sync.Mutex
	var lost, revoked []tributary.TopicPartition
	c := e.newConsumer(t, append(groupOpts(sanitize("g-"+t.Name()), topic),
		OnLost(func(tps []tributary.TopicPartition) { mu.Lock(); lost = append(lost, tps...); mu.Unlock() }),
		OnRevoked(func(tps []tributary.TopicPartition) { mu.Lock(); revoked = append(revoked, tps...); mu.Unlock() }))...)
	eventually(t, 30*time.Second, func() bool { return assignedCount(c) == 3 }, "never assigned")
	firstMember := c.GroupMetadata().MemberID

	var once sync.Once
	e.kf.ControlKey(12, func(req kmsg.Request) (kmsg.Response, error, bool) {
		handled := false
		once.Do(func() { handled = true })
		if !handled {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = tributary.ErrUnknownMemberId.Code
		return resp, nil, true
	})
	eventually(t, 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(lost) == 3 }, "partitions not lost")
	eventually(t, 30*time.Second, func() bool { return assignedCount(c) == 3 && c.GroupMetadata().MemberID != firstMember },
		"did not rejoin with a new member id")
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, revoked, "lost partitions must not be revoked")
	require.ElementsMatch(t, allPartitions(topic, 3), lost)
}

// TestEagerStickyKeepsHistory: eager members using the "sticky" assignor
// revoke everything on each rebalance but report their previous
// assignment in user data, so the leader keeps a member's partitions when
// a third member joins.
func TestEagerStickyKeepsHistory(t *testing.T) {
	forEachGroupBackend(t, func(t *testing.T, e *env) {
		topic := e.topic(t, 6)
		group := sanitize("g-" + t.Name())
		opts := append(groupOpts(group, topic), Assignors(Sticky()))
		a := e.newConsumer(t, opts...)
		b := e.newConsumer(t, opts...)
		eventually(t, 30*time.Second, func() bool { return assignedCount(a) == 3 && assignedCount(b) == 3 }, "no split")
		beforeA, beforeB := a.Assignment(), b.Assignment()
		c := e.newConsumer(t, opts...)
		eventually(t, 30*time.Second, func() bool {
			return assignedCount(a) == 2 && assignedCount(b) == 2 && assignedCount(c) == 2
		}, "no three-way split")
		for _, tp := range a.Assignment() {
			require.Contains(t, beforeA, tp, "a lost a partition it could keep")
		}
		for _, tp := range b.Assignment() {
			require.Contains(t, beforeB, tp, "b lost a partition it could keep")
		}
	})
}

// TestSeekInOnAssigned: OnAssigned runs before the new partitions are
// fetched, so a Seek there decides where they start.
func TestSeekInOnAssigned(t *testing.T) {
	forEachGroupBackend(t, func(t *testing.T, e *env) {
		topic := e.topic(t, 2)
		want := e.produce(t, nil, topic, 40)
		var c *Consumer
		ready := make(chan struct{})
		c = e.newConsumer(t, Group(sanitize("g-"+t.Name())), Topics(topic), AutoOffsetReset(ResetLatest),
			HeartbeatInterval(100*time.Millisecond),
			OnAssigned(func(tps []tributary.TopicPartition) {
				<-ready
				for _, tp := range tps {
					require.NoError(t, c.Seek(tp, 5))
				}
			}))
		close(ready)
		got := pollN(t, c, 30, 20*time.Second)
		for _, r := range got {
			require.GreaterOrEqual(t, r.Offset, int64(5))
		}
		var wantFrom5 []*tributary.Record
		for _, r := range want {
			if r.Offset >= 5 {
				wantFrom5 = append(wantFrom5, r)
			}
		}
		requireSameRecords(t, wantFrom5, got)
	})
}

// groupStable waits until the coordinator describes group as Stable with
// exactly members, all of them in the generation the coordinator is in:
// no rebalance is pending or under way.
func groupStable(t *testing.T, e *env, group string, members ...*Consumer) {
	t.Helper()
	eventually(t, 30*time.Second, func() bool {
		described, err := e.adm.DescribeGroups(context.Background(), group)
		if err != nil {
			return false
		}
		g, ok := described[group]
		if !ok || g.Err != nil || g.State != "Stable" || len(g.Members) != len(members) {
			return false
		}
		gen := members[0].GroupMetadata().Generation
		for _, m := range members {
			md := m.GroupMetadata()
			if md.Generation != gen || md.Generation < 0 {
				return false
			}
			if !slices.ContainsFunc(g.Members, func(dm kadm.DescribedGroupMember) bool { return dm.MemberID == md.MemberID }) {
				return false
			}
		}
		return true
	}, "group %s never became stable with its %d members", group, len(members))
}
