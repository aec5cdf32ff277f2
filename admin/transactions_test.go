package admin

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary"
)

// TestTransactions: with a kgo transaction open on two partitions,
// DescribeProducers, ListTransactions and DescribeTransactions show it as
// kadm does; after the commit it is no longer open.
func TestTransactions(t *testing.T) {
	kfakeOnly(t, func(t *testing.T, e *env) {
		ctx := testCtx(t)
		topic := e.mkTopic(t, 3, nil)
		id := "txn-" + topic
		txn, err := kgo.NewClient(kgo.SeedBrokers(e.addrs...), kgo.TransactionalID(id),
			kgo.RecordPartitioner(kgo.ManualPartitioner()))
		require.NoError(t, err)
		defer txn.Close()
		require.NoError(t, txn.BeginTransaction())
		require.NoError(t, txn.ProduceSync(ctx,
			&kgo.Record{Topic: topic, Partition: 0, Value: []byte("a")},
			&kgo.Record{Topic: topic, Partition: 2, Value: []byte("b")},
		).FirstErr())

		dp, err := e.a.DescribeProducers(ctx, map[string][]int32{topic: nil})
		require.NoError(t, err)
		require.NoError(t, dp.FirstErr())
		require.Len(t, dp, 3)
		ref, err := e.kadm.DescribeProducers(ctx, kadm.TopicsSet{topic: {0: {}, 1: {}, 2: {}}})
		require.NoError(t, err)
		var pid int64 = -1
		for _, p := range dp {
			kp, ok := ref[topic].Partitions[p.Partition]
			require.True(t, ok)
			require.Len(t, p.Producers, len(kp.ActiveProducers), "partition %d", p.Partition)
			for _, ap := range p.Producers {
				kap, ok := kp.ActiveProducers[ap.ProducerID]
				require.True(t, ok)
				require.Equal(t, kap.CurrentTxnStartOffset, ap.CurrentTxnStartOffset)
				require.Equal(t, int32(kap.ProducerEpoch), ap.ProducerEpoch)
				require.Equal(t, kap.LastSequence, ap.LastSequence)
			}
			if p.Partition == 1 {
				require.Empty(t, p.Producers)
				continue
			}
			require.Len(t, p.Producers, 1)
			require.Equal(t, int64(0), p.Producers[0].CurrentTxnStartOffset, "the open transaction starts at offset 0")
			pid = p.Producers[0].ProducerID
		}

		lt, err := e.a.ListTransactions(ctx, TxnFilter{})
		require.NoError(t, err)
		require.Contains(t, lt, ListedTransaction{TransactionalID: id, ProducerID: pid, State: "Ongoing", Coordinator: lt[0].Coordinator})
		lt, err = e.a.ListTransactions(ctx, TxnFilter{States: []string{"CompleteCommit"}})
		require.NoError(t, err)
		for _, l := range lt {
			require.NotEqual(t, id, l.TransactionalID)
		}
		lt, err = e.a.ListTransactions(ctx, TxnFilter{ProducerIDs: []int64{pid}})
		require.NoError(t, err)
		require.Len(t, lt, 1)

		dt, err := e.a.DescribeTransactions(ctx, id, "no-such-id")
		require.NoError(t, err)
		require.Len(t, dt, 2)
		d, ok := dt.On(id)
		require.True(t, ok)
		require.NoError(t, d.Err)
		require.Equal(t, "Ongoing", d.State)
		require.Equal(t, pid, d.ProducerID)
		require.Equal(t, []TxnPartition{{topic, 0}, {topic, 2}}, d.Partitions)
		require.False(t, d.Started.IsZero())
		require.Positive(t, d.Timeout)
		missing, _ := dt.On("no-such-id")
		require.ErrorIs(t, missing.Err, tributary.ErrTransactionalIdNotFound)
		require.ErrorIs(t, dt.FirstErr(), tributary.ErrTransactionalIdNotFound)

		require.NoError(t, txn.EndTransaction(ctx, kgo.TryCommit))
		dt, err = e.a.DescribeTransactions(ctx, id)
		require.NoError(t, err)
		require.NoError(t, dt.FirstErr())
		// Kafka says CompleteCommit until the id expires, kfake Empty.
		require.Contains(t, []string{"CompleteCommit", "Empty"}, dt[0].State)
		require.Empty(t, dt[0].Partitions)
		dp, err = e.a.DescribeProducers(ctx, map[string][]int32{topic: {0}})
		require.NoError(t, err)
		require.Len(t, dp, 1)
		for _, ap := range dp[0].Producers { // kfake forgets the producer, Kafka keeps it without a transaction
			require.Equal(t, int64(-1), ap.CurrentTxnStartOffset)
		}
	})
}
