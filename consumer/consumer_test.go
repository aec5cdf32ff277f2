package consumer

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary"
)

// groupOnBroker runs the group tests against our broker as well as kfake;
// TRIBUTARY_SKIP_BROKER_GROUP_TESTS=1 limits them to kfake while the
// broker's group coordinator is being worked on.
var groupOnBroker = os.Getenv("TRIBUTARY_SKIP_BROKER_GROUP_TESTS") == ""

// byPartition groups records by partition, keeping their order.
func byPartition(recs []*tributary.Record) map[int32][]*tributary.Record {
	out := make(map[int32][]*tributary.Record)
	for _, r := range recs {
		out[r.Partition] = append(out[r.Partition], r)
	}
	return out
}

// requireSameRecords checks that got holds exactly want, each partition
// in offset order, with keys, values, headers and timestamps intact.
func requireSameRecords(t *testing.T, want, got []*tributary.Record) {
	t.Helper()
	require.Len(t, got, len(want))
	w, g := byPartition(want), byPartition(got)
	for p, wrecs := range w {
		slices.SortFunc(wrecs, func(a, b *tributary.Record) int { return int(a.Offset - b.Offset) })
		grecs := g[p]
		require.Len(t, grecs, len(wrecs), "partition %d", p)
		for i := range wrecs {
			wr, gr := wrecs[i], grecs[i]
			require.Equal(t, wr.Topic, gr.Topic)
			require.Equal(t, wr.Offset, gr.Offset, "partition %d record %d: out of order or missing", p, i)
			require.Equal(t, wr.Key, gr.Key)
			require.Equal(t, wr.Value, gr.Value)
			require.Equal(t, len(wr.Headers), len(gr.Headers))
			for j := range wr.Headers {
				require.Equal(t, wr.Headers[j].Key, gr.Headers[j].Key)
				require.Equal(t, string(wr.Headers[j].Value), string(gr.Headers[j].Value))
			}
			require.True(t, wr.Timestamp.Equal(gr.Timestamp), "timestamp %v != %v", wr.Timestamp, gr.Timestamp)
		}
	}
}

func TestManualAssignEveryCodec(t *testing.T) {
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
	}{
		{"none", kgo.NoCompression()},
		{"gzip", kgo.GzipCompression()},
		{"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()},
		{"zstd", kgo.ZstdCompression()},
	}
	forEachBackend(t, func(t *testing.T, e *env) {
		for _, cc := range codecs {
			t.Run(cc.name, func(t *testing.T) {
				topic := e.topic(t, 3)
				kcl, err := kgo.NewClient(kgo.SeedBrokers(e.addrs...), kgo.ProducerBatchCompression(cc.codec), kgo.ProducerLinger(5*time.Millisecond))
				require.NoError(t, err)
				defer kcl.Close()
				want := e.produce(t, kcl, topic, 600)

				c := e.newConsumer(t, AutoOffsetReset(ResetEarliest), MaxPollRecords(100))
				require.NoError(t, c.Assign(allPartitions(topic, 3)...))
				got := pollN(t, c, len(want), 20*time.Second)
				requireSameRecords(t, want, got)
				pollNone(t, c)
				for _, tp := range allPartitions(topic, 3) {
					pos, err := c.Position(tp)
					require.NoError(t, err)
					require.Equal(t, int64(len(byPartition(want)[tp.Partition])), pos)
				}
				eventually(t, 5*time.Second, func() bool {
					lag := c.Lag()
					for _, tp := range allPartitions(topic, 3) {
						if l, ok := lag[tp]; !ok || l != 0 {
							return false
						}
					}
					return true
				}, "lag is not zero: %v", c.Lag())
			})
		}
	})
}

func TestMaxPollRecordsAndFairness(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		topic := e.topic(t, 2)
		e.produce(t, nil, topic, 400)
		c := e.newConsumer(t, AutoOffsetReset(ResetEarliest), MaxPollRecords(7))
		require.NoError(t, c.Assign(allPartitions(topic, 2)...))
		total := 0
		for total < 400 {
			recs, err := c.Poll(testCtx(t))
			require.NoError(t, err)
			require.LessOrEqual(t, len(recs), 7)
			total += len(recs)
		}
	})
}

func TestAutoOffsetReset(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		topic := e.topic(t, 1)
		tp := tributary.TopicPartition{Topic: topic, Partition: 0}
		before := e.produce(t, nil, topic, 10)

		t.Run("earliest", func(t *testing.T) {
			c := e.newConsumer(t, AutoOffsetReset(ResetEarliest))
			require.NoError(t, c.Assign(tp))
			requireSameRecords(t, before, pollN(t, c, 10, 10*time.Second))
		})
		t.Run("latest", func(t *testing.T) {
			c := e.newConsumer(t) // the default
			require.NoError(t, c.Assign(tp))
			eventually(t, 10*time.Second, func() bool { p, _ := c.Position(tp); return p == 10 }, "position never resolved to the end")
			pollNone(t, c)
			after := e.produce(t, nil, topic, 5)
			got := pollN(t, c, 5, 10*time.Second)
			require.Equal(t, after[0].Offset, got[0].Offset)
			require.Equal(t, "k-0", string(got[0].Key)) // the first of the new batch
		})
		t.Run("none without a committed offset", func(t *testing.T) {
			c := e.newConsumer(t, AutoOffsetReset(ResetNone))
			require.NoError(t, c.Assign(tp))
			_, err := c.Poll(testCtx(t))
			require.ErrorIs(t, err, ErrNoOffset)
			// Seek gives it a position, and it consumes from there.
			require.NoError(t, c.Seek(tp, 3))
			got := pollN(t, c, 7, 10*time.Second)
			require.Equal(t, int64(3), got[0].Offset)
		})
		t.Run("none out of range", func(t *testing.T) {
			c := e.newConsumer(t, AutoOffsetReset(ResetNone))
			require.NoError(t, c.AssignOffsets(map[tributary.TopicPartition]int64{tp: 1000}))
			_, err := c.Poll(testCtx(t))
			require.ErrorIs(t, err, tributary.ErrOffsetOutOfRange)
		})
		t.Run("earliest out of range", func(t *testing.T) {
			c := e.newConsumer(t, AutoOffsetReset(ResetEarliest))
			require.NoError(t, c.AssignOffsets(map[tributary.TopicPartition]int64{tp: 1000}))
			got := pollN(t, c, 1, 10*time.Second)
			require.Equal(t, int64(0), got[0].Offset)
		})
	})
}

func TestSeek(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		topic := e.topic(t, 1)
		tp := tributary.TopicPartition{Topic: topic, Partition: 0}
		e.produce(t, nil, topic, 50)
		c := e.newConsumer(t, AutoOffsetReset(ResetEarliest), MaxPollRecords(10))
		require.NoError(t, c.Assign(tp))
		got := pollN(t, c, 10, 10*time.Second)
		require.Equal(t, int64(0), got[0].Offset)

		require.NoError(t, c.Seek(tp, 40))
		pos, _ := c.Position(tp)
		require.Equal(t, int64(40), pos)
		got = pollN(t, c, 10, 10*time.Second)
		require.Equal(t, int64(40), got[0].Offset, "records buffered before the seek were returned")
		require.Equal(t, int64(49), got[len(got)-1].Offset)

		require.NoError(t, c.Seek(tp, Earliest))
		got = pollN(t, c, 1, 10*time.Second)
		require.Equal(t, int64(0), got[0].Offset)

		require.NoError(t, c.Seek(tp, Latest))
		eventually(t, 10*time.Second, func() bool { p, _ := c.Position(tp); return p == 50 }, "seek to latest")
		pollNone(t, c)

		require.ErrorIs(t, c.Seek(tributary.TopicPartition{Topic: topic, Partition: 9}, 0), ErrNotAssigned)
	})
}

func TestPauseResume(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		topic := e.topic(t, 2)
		p0 := tributary.TopicPartition{Topic: topic, Partition: 0}
		p1 := tributary.TopicPartition{Topic: topic, Partition: 1}
		c := e.newConsumer(t, AutoOffsetReset(ResetEarliest))
		require.NoError(t, c.Assign(p0, p1))
		c.Pause(p0)
		require.Equal(t, []tributary.TopicPartition{p0}, c.Paused())

		var want0, want1 int
		for _, r := range e.produce(t, nil, topic, 100) {
			if r.Partition == 0 {
				want0++
			} else {
				want1++
			}
		}
		require.NotZero(t, want0)
		require.NotZero(t, want1)
		got := pollN(t, c, want1, 10*time.Second)
		for _, r := range got {
			require.Equal(t, int32(1), r.Partition, "a paused partition returned records")
		}
		pollNone(t, c)
		pos, _ := c.Position(p0)
		require.Equal(t, int64(0), pos)

		c.Resume(p0)
		got = pollN(t, c, want0, 10*time.Second)
		for i, r := range got {
			require.Equal(t, int32(0), r.Partition)
			require.Equal(t, int64(i), r.Offset)
		}
	})
}

// TestBufferBounded checks that fetching stops while MaxBufferedBytes of
// records wait for Poll.
func TestBufferBounded(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		topic := e.topic(t, 1)
		e.produce(t, nil, topic, 2000)
		c := e.newConsumer(t, AutoOffsetReset(ResetEarliest), MaxBufferedBytes(4096), MaxPartitionFetchBytes(2048), FetchMaxBytes(2048))
		require.NoError(t, c.Assign(tributary.TopicPartition{Topic: topic, Partition: 0}))
		// No Poll: the fetcher must stop once the buffer is full. Wait for
		// that (full, no fetch outstanding) rather than for a while.
		var buffered int64
		eventually(t, 20*time.Second, func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			buffered = max(buffered, c.buffered)
			p := c.parts[tributary.TopicPartition{Topic: topic, Partition: 0}]
			return c.buffered >= 4096 && !p.inflight
		}, "the buffer never filled, or a fetch stayed outstanding")
		// One response may land after the bound was reached; batches
		// are returned whole even when bigger than the fetch limit.
		require.Less(t, buffered, int64(4096+64<<10))
		require.Positive(t, buffered)
		got := pollN(t, c, 2000, 20*time.Second)
		for i, r := range got {
			require.Equal(t, int64(i), r.Offset)
		}
	})
}

func TestOptionsValidated(t *testing.T) {
	for _, opts := range [][]Opt{
		{},
		{SeedBrokers("127.0.0.1:1"), Topics("x")},
		{SeedBrokers("127.0.0.1:1"), Group("g"), SessionTimeout(time.Second), HeartbeatInterval(2 * time.Second)},
		{SeedBrokers("127.0.0.1:1"), Assignors()},
		{SeedBrokers("127.0.0.1:1"), Assignors(Range(), Range())},
		{SeedBrokers("127.0.0.1:1"), MaxPollRecords(0)},
		{SeedBrokers("127.0.0.1:1"), AutoOffsetReset(9)},
	} {
		_, err := New(opts...)
		require.Error(t, err)
	}
	c, err := New(SeedBrokers("127.0.0.1:1"))
	require.NoError(t, err)
	require.Equal(t, 500, c.cfg.maxPollRecords)
	require.Equal(t, 45*time.Second, c.cfg.sessionTimeout)
	require.Equal(t, []string{"range", "cooperative-sticky"}, []string{c.cfg.assignors[0].Name(), c.cfg.assignors[1].Name()})
	require.False(t, c.cfg.cooperative())
	require.NoError(t, c.Close(context.Background()))
	_, err = c.Poll(context.Background())
	require.ErrorIs(t, err, ErrClosed)
}

func TestCommitWithoutGroup(t *testing.T) {
	c, err := New(SeedBrokers("127.0.0.1:1"))
	require.NoError(t, err)
	defer c.Close(context.Background())
	err = c.CommitOffsets(context.Background(), map[tributary.TopicPartition]int64{{Topic: "t"}: 1})
	require.ErrorIs(t, err, ErrNoGroup)
}

// TestPauseDropsBuffer: pausing a partition frees its buffered records,
// so the other partitions keep being fetched, and Resume re-fetches from
// the position, skipping and repeating nothing.
func TestPauseDropsBuffer(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		topic := e.topic(t, 1)
		other := e.topic(t, 1)
		p0 := tributary.TopicPartition{Topic: topic, Partition: 0}
		o0 := tributary.TopicPartition{Topic: other, Partition: 0}
		e.produce(t, nil, topic, 500)
		c := e.newConsumer(t, AutoOffsetReset(ResetEarliest), MaxPollRecords(10), MaxBufferedBytes(1024), MaxPartitionFetchBytes(2048))
		require.NoError(t, c.Assign(p0, o0))
		got := pollN(t, c, 10, 10*time.Second)
		eventually(t, 5*time.Second, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.buffered >= 1024 }, "buffer never filled")
		c.Pause(p0)
		c.mu.Lock()
		require.Zero(t, c.buffered)
		c.mu.Unlock()
		want := e.produce(t, nil, other, 50)
		requireSameRecords(t, want, pollN(t, c, 50, 10*time.Second))

		c.Resume(p0)
		got = append(got, pollN(t, c, 500-len(got), 10*time.Second)...)
		for i, r := range got {
			require.Equal(t, int64(i), r.Offset)
		}
	})
}
