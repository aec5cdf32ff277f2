package consumer

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// TestCommitAfterCloseIsErrClosed: after Close, Commit (with and without
// records), CommitOffsets, CommitAsync and Poll all return ErrClosed. The
// bug: Commit answered REBALANCE_IN_PROGRESS (the member had left its
// generation) or, without records, nil as if it had committed.
func TestCommitAfterCloseIsErrClosed(t *testing.T) {
	forEachGroupBackend(t, func(t *testing.T, e *env) {
		topic := e.topic(t, 2)
		e.produce(t, nil, topic, 10)
		for _, mode := range []string{"member", "assigned"} {
			t.Run(mode, func(t *testing.T) {
				group := sanitize("g-" + t.Name())
				var c *Consumer
				if mode == "member" {
					c = e.newConsumer(t, append(groupOpts(group, topic), AutoCommit(false))...)
				} else {
					c = e.newConsumer(t, Group(group), AutoCommit(false), AutoOffsetReset(ResetEarliest))
					require.NoError(t, c.Assign(allPartitions(topic, 2)...))
				}
				recs := pollN(t, c, 10, 20*time.Second)
				require.NoError(t, c.Close(testCtx(t)))

				ctx := testCtx(t)
				require.ErrorIs(t, c.Commit(ctx), ErrClosed)
				require.ErrorIs(t, c.Commit(ctx, recs...), ErrClosed)
				require.ErrorIs(t, c.CommitOffsets(ctx, offsetsAfter(recs)), ErrClosed)
				got := make(chan error, 1)
				c.CommitAsync(recs, func(_ map[tributary.TopicPartition]int64, err error) { got <- err })
				require.ErrorIs(t, <-got, ErrClosed)
				_, err := c.Poll(ctx)
				require.ErrorIs(t, err, ErrClosed)
				require.ErrorIs(t, c.Close(ctx), nil, "a second Close returns the first one's result")
			})
		}
	})
}

// TestCloseCommitsWhatWasPolled: with AutoCommit (and an interval too long
// to fire), Close commits exactly the records Poll returned, as Java's
// close does, so the next member starts right after them.
func TestCloseCommitsWhatWasPolled(t *testing.T) {
	forEachGroupBackend(t, func(t *testing.T, e *env) {
		topic := e.topic(t, 3)
		group := sanitize("g-" + t.Name())
		want := e.produce(t, nil, topic, 90)
		a := e.newConsumer(t, append(groupOpts(group, topic), AutoCommitInterval(time.Hour), MaxPollRecords(7))...)
		var polled []*tributary.Record
		for len(polled) < 40 {
			polled = append(polled, pollN(t, a, 1, 20*time.Second)...)
		}
		require.NoError(t, a.Close(testCtx(t)))

		committed, err := e.adm.FetchOffsets(testCtx(t), group)
		require.NoError(t, err)
		for p, recs := range byPartition(polled) {
			o, ok := committed.Lookup(topic, p)
			require.True(t, ok, "partition %d not committed", p)
			require.Equal(t, recs[len(recs)-1].Offset+1, o.At, "partition %d", p)
		}

		b := e.newConsumer(t, groupOpts(group, topic)...)
		rest := pollN(t, b, len(want)-len(polled), 20*time.Second)
		requireSameRecords(t, want, append(polled, rest...))
	})
}

// TestPollReturnsWhenCtxEnds: Poll returns ctx.Err() promptly when its
// ctx ends while it waits, and at once, without records, when ctx is
// already done even though records are buffered: a loop stopping on
// shutdown is never handed records it would drop.
func TestPollReturnsWhenCtxEnds(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		topic := e.topic(t, 1)
		c := e.newConsumer(t, AutoOffsetReset(ResetEarliest), MaxPollRecords(1))
		require.NoError(t, c.Assign(allPartitions(topic, 1)...))

		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := c.Poll(ctx)
			done <- err
		}()
		cancel()
		select {
		case err := <-done:
			require.ErrorIs(t, err, context.Canceled)
		case <-time.After(5 * time.Second):
			t.Fatal("Poll did not return after its ctx was canceled")
		}

		e.produce(t, nil, topic, 5)
		pollN(t, c, 1, 20*time.Second)
		eventually(t, 10*time.Second, func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.countBufferedLocked() > 0
		}, "nothing buffered")
		recs, err := c.Poll(ctx)
		require.ErrorIs(t, err, context.Canceled)
		require.Empty(t, recs)
		pos, err := c.Position(tributary.TopicPartition{Topic: topic})
		require.NoError(t, err)
		require.Equal(t, int64(1), pos, "a canceled Poll must not move the position")
	})
}

// TestCommitAsyncBoundedGoroutines: CommitAsync in a tight loop starts at
// most one goroutine, however slow the coordinator. The bug: one goroutine
// per call, each waiting its turn, without bound. On kfake the coordinator
// stalls every OffsetCommit until the test ends; on our broker it answers,
// and the loop outruns it.
func TestCommitAsyncBoundedGoroutines(t *testing.T) {
	const calls = 5000
	forEachBackend(t, func(t *testing.T, e *env) {
		topic := e.topic(t, 1)
		tp := tributary.TopicPartition{Topic: topic}
		release := make(chan struct{})
		var releaseOnce sync.Once
		unstall := func() { releaseOnce.Do(func() { close(release) }) }
		t.Cleanup(unstall)
		stalled := make(chan struct{}, 1)
		if e.kf != nil {
			e.kf.ControlKey(int16(kmsg.OffsetCommit), func(kmsg.Request) (kmsg.Response, error, bool) {
				e.kf.KeepControl()
				select {
				case stalled <- struct{}{}:
				default:
				}
				e.kf.SleepControl(func() { <-release })
				return nil, nil, false
			})
		}
		c := e.newConsumer(t, Group(sanitize("g-"+t.Name())), AutoCommit(false))

		var (
			mu               sync.Mutex
			refused, highest int64
			failed           []error
			answered         sync.WaitGroup
		)
		answered.Add(calls)
		before := consumerGoroutines()
		peak := 0
		for i := range calls {
			rec := &tributary.Record{Topic: topic, Offset: int64(i)}
			c.CommitAsync([]*tributary.Record{rec}, func(offs map[tributary.TopicPartition]int64, err error) {
				mu.Lock()
				switch {
				case err == nil:
					highest = max(highest, offs[tp])
				case errors.Is(err, ErrTooManyAsyncCommits):
					refused++
				default:
					failed = append(failed, err)
				}
				mu.Unlock()
				answered.Done()
			})
			if i%500 == 0 {
				peak = max(peak, consumerGoroutines())
			}
		}
		peak = max(peak, consumerGoroutines())
		if e.kf != nil {
			<-stalled
			peak = max(peak, consumerGoroutines())
		}
		require.LessOrEqual(t, peak-before, 1, "consumer goroutines grew with CommitAsync calls")
		unstall()
		answered.Wait()

		// Calls made while maxAsyncCallbacks callbacks wait are refused;
		// the others are committed, in order: the last one wins.
		mu.Lock()
		defer mu.Unlock()
		require.Empty(t, failed)
		if e.kf != nil {
			require.Positive(t, refused, "the stalled coordinator let no callback queue fill up")
		}
		offs, err := c.CommittedOffsets(testCtx(t), tp)
		require.NoError(t, err)
		require.Equal(t, highest, offs[tp])
		t.Logf("%d calls: peak %d goroutines over %d, %d refused, committed %d", calls, peak, before, refused, offs[tp])
	})
}

// consumerGoroutines counts the goroutines running consumer code.
func consumerGoroutines() int {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "consumer.(*Consumer)") {
			n++
		}
	}
	return n
}

// TestCloseHonoursCtx: Close returns soon after its ctx ends even when
// the coordinator never answers the final commit (kfake stalls every
// OffsetCommit), and then refuses commits with ErrClosed.
func TestCloseHonoursCtx(t *testing.T) {
	forEachGroupBackend(t, func(t *testing.T, e *env) {
		topic := e.topic(t, 2)
		e.produce(t, nil, topic, 10)
		release := make(chan struct{})
		defer close(release)
		if e.kf != nil {
			e.kf.ControlKey(int16(kmsg.OffsetCommit), func(kmsg.Request) (kmsg.Response, error, bool) {
				e.kf.KeepControl()
				e.kf.SleepControl(func() { <-release })
				return nil, nil, false
			})
		}
		c := e.newConsumer(t, append(groupOpts(sanitize("g-"+t.Name()), topic), AutoCommitInterval(time.Hour))...)
		pollN(t, c, 10, 20*time.Second)

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if e.kf == nil {
			cancel() // our broker answers at once: end ctx before Close
		}
		start := time.Now()
		err := c.Close(ctx)
		took := time.Since(start)
		require.Less(t, took, 8*time.Second, "Close ignored its ctx")
		require.ErrorIs(t, err, ctx.Err(), "the final commit could not be made in time")
		require.ErrorIs(t, c.Commit(testCtx(t)), ErrClosed)
	})
}
