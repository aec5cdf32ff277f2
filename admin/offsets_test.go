package admin

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary"
)

// sameOffsets checks ours against kadm's for every partition of topic.
func sameOffsets(t *testing.T, what string, ours ListedOffsets, ref kadm.ListedOffsets, topic string, partitions int32) {
	t.Helper()
	require.NoError(t, ours.FirstErr(), what)
	require.NoError(t, ref.Error(), what)
	for p := range partitions {
		o, ok := ours.Lookup(topic, p)
		require.True(t, ok, "%s: partition %d listed", what, p)
		r, ok := ref.Lookup(topic, p)
		require.True(t, ok)
		assert.Equal(t, r.Offset, o.Offset, "%s: offset of partition %d", what, p)
		assert.Equal(t, r.Timestamp, o.Timestamp, "%s: timestamp of partition %d", what, p)
		assert.Equal(t, r.LeaderEpoch, o.LeaderEpoch, "%s: leader epoch of partition %d", what, p)
	}
}

func TestListOffsets(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := testCtx(t)
		const parts = 3
		topic := e.mkTopic(t, parts, nil)
		base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
		e.produce(t, topic, parts, 10, base) // timestamps base .. base+9ms

		ours, err := e.a.ListStartOffsets(ctx, topic)
		require.NoError(t, err)
		ref, err := e.kadm.ListStartOffsets(ctx, topic)
		require.NoError(t, err)
		sameOffsets(t, "start", ours, ref, topic, parts)

		ours, err = e.a.ListEndOffsets(ctx, topic)
		require.NoError(t, err)
		ref, err = e.kadm.ListEndOffsets(ctx, topic)
		require.NoError(t, err)
		sameOffsets(t, "end", ours, ref, topic, parts)
		for _, o := range ours {
			assert.EqualValues(t, 10, o.Offset, "10 records per partition")
		}

		at := base.Add(4 * time.Millisecond).UnixMilli()
		ours, err = e.a.ListOffsetsAfterMilli(ctx, at, topic)
		require.NoError(t, err)
		ref, err = e.kadm.ListOffsetsAfterMilli(ctx, at, topic)
		require.NoError(t, err)
		sameOffsets(t, "after milli", ours, ref, topic, parts)
		for _, o := range ours {
			assert.EqualValues(t, 4, o.Offset, "first record at or after the timestamp")
		}

		ours, err = e.a.ListMaxTimestampOffsets(ctx, topic)
		require.NoError(t, err)
		ref, err = e.kadm.ListMaxTimestampOffsets(ctx, topic)
		require.NoError(t, err)
		sameOffsets(t, "max timestamp", ours, ref, topic, parts)
		for _, o := range ours {
			assert.EqualValues(t, 9, o.Offset)
			assert.Equal(t, base.Add(9*time.Millisecond).UnixMilli(), o.Timestamp)
		}

		// Chosen partitions only; a missing topic and a missing partition
		// fail alone.
		missing := topicName("missing")
		ours, err = e.a.ListOffsets(ctx, OffsetLatest, map[string][]int32{topic: {1, 7}, missing: nil})
		require.NoError(t, err)
		require.Len(t, ours, 3)
		o, _ := ours.Lookup(topic, 1)
		assert.NoError(t, o.Err)
		assert.EqualValues(t, 10, o.Offset)
		o, _ = ours.Lookup(topic, 7)
		assert.ErrorIs(t, o.Err, tributary.ErrUnknownTopicOrPartition)
		o, ok := ours.Lookup(missing, -1)
		require.True(t, ok, "a missing topic without named partitions reports partition -1")
		assert.ErrorIs(t, o.Err, tributary.ErrUnknownTopicOrPartition)
	})
}

func TestDeleteRecords(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := testCtx(t)
		topic := e.mkTopic(t, 2, nil)
		e.produce(t, topic, 2, 10, time.Now())

		res, err := e.a.DeleteRecords(ctx, map[string]map[int32]int64{
			topic:               {0: 4, 1: 11}, // 11 is past the high watermark
			topicName("absent"): {0: 1},
		})
		require.NoError(t, err)
		require.Len(t, res, 3)
		r, _ := res.Lookup(topic, 0)
		require.NoError(t, r.Err)
		assert.EqualValues(t, 4, r.LowWatermark)
		r, _ = res.Lookup(topic, 1)
		assert.ErrorIs(t, r.Err, tributary.ErrOffsetOutOfRange)
		assert.Error(t, res.FirstErr())

		starts, err := e.kadm.ListStartOffsets(ctx, topic)
		require.NoError(t, err)
		s, _ := starts.Lookup(topic, 0)
		assert.EqualValues(t, 4, s.Offset, "records before 4 deleted")
		s, _ = starts.Lookup(topic, 1)
		assert.EqualValues(t, 0, s.Offset, "failed partition untouched")

		// -1 deletes everything up to the high watermark.
		res, err = e.a.DeleteRecords(ctx, map[string]map[int32]int64{topic: {1: OffsetLatest}})
		require.NoError(t, err)
		require.NoError(t, res.FirstErr())
		assert.EqualValues(t, 10, res[0].LowWatermark)
	})
}

func TestListOffsetsReadCommitted(t *testing.T) {
	// Our broker has no transactions yet; kfake does.
	kfakeOnly(t, func(t *testing.T, e *env) {
		ctx := testCtx(t)
		topic := e.mkTopic(t, 1, nil)
		txn, err := kgo.NewClient(kgo.SeedBrokers(e.addrs...), kgo.TransactionalID("tx"), kgo.DefaultProduceTopic(topic))
		require.NoError(t, err)
		defer txn.Close()
		require.NoError(t, txn.BeginTransaction())
		for range 5 {
			require.NoError(t, txn.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr())
		}

		uncommitted, err := e.a.ListOffsets(ctx, OffsetLatest, map[string][]int32{topic: nil})
		require.NoError(t, err)
		committed, err := e.a.ListOffsets(ctx, OffsetLatest, map[string][]int32{topic: nil}, ReadCommitted())
		require.NoError(t, err)
		require.NoError(t, committed.FirstErr())
		assert.EqualValues(t, 5, uncommitted[0].Offset, "high watermark")
		assert.EqualValues(t, 0, committed[0].Offset, "last stable offset: the open transaction is not counted")

		require.NoError(t, txn.EndTransaction(ctx, kgo.TryCommit))
		require.Eventually(t, func() bool {
			c, err := e.a.ListOffsets(ctx, OffsetLatest, map[string][]int32{topic: nil}, ReadCommitted())
			return err == nil && c[0].Offset == 6 // five records and the commit marker
		}, 5*time.Second, 20*time.Millisecond)
	})
}
