package consumer

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary"
)

// TestReadCommittedStopsAtLSO: while a transaction is open, a
// ReadCommitted consumer reads up to its first record (the last stable
// offset) and no further, even past it records of other producers are
// already in the log; once the transaction commits, the rest follows in
// log order. ReadUncommitted reads everything at once. Against kfake and
// against our broker.
func TestReadCommittedStopsAtLSO(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		topic := e.topic(t, 1)
		tp := tributary.TopicPartition{Topic: topic, Partition: 0}
		ctx := testCtx(t)
		txn, err := kgo.NewClient(kgo.SeedBrokers(e.addrs...), kgo.TransactionalID("lso-"+sanitize(t.Name())), kgo.DefaultProduceTopic(topic))
		require.NoError(t, err)
		defer txn.Close()
		plain := func(v string) {
			require.NoError(t, e.kcl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr())
		}
		values := func(recs []*tributary.Record) []string {
			var out []string
			for _, r := range recs {
				out = append(out, string(r.Value))
			}
			return out
		}

		plain("p0")
		require.NoError(t, txn.BeginTransaction())
		require.NoError(t, txn.ProduceSync(ctx, &kgo.Record{Value: []byte("o0")}, &kgo.Record{Value: []byte("o1")}).FirstErr())
		plain("p1")

		committed := e.newConsumer(t, AutoOffsetReset(ResetEarliest), Isolation(ReadCommitted))
		require.NoError(t, committed.Assign(tp))
		require.Equal(t, []string{"p0"}, values(pollN(t, committed, 1, 10*time.Second)))
		pollNone(t, committed) // caught up with the LSO, nothing buffered
		pos, err := committed.Position(tp)
		require.NoError(t, err)
		require.Equal(t, int64(1), pos, "stopped at the open transaction's first offset")

		uncommitted := e.newConsumer(t, AutoOffsetReset(ResetEarliest))
		require.NoError(t, uncommitted.Assign(tp))
		require.Equal(t, []string{"p0", "o0", "o1", "p1"}, values(pollN(t, uncommitted, 4, 10*time.Second)))

		require.NoError(t, txn.EndTransaction(ctx, kgo.TryCommit))
		require.Equal(t, []string{"o0", "o1", "p1"}, values(pollN(t, committed, 3, 10*time.Second)))
	})
}

// TestReadCommittedInterleaved: two transactions interleaved in one
// partition, one aborted and one committed; ReadCommitted returns the
// committed one's records only, using the aborted-transaction list of
// the Fetch response rather than the record order.
func TestReadCommittedInterleaved(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		topic := e.topic(t, 1)
		tp := tributary.TopicPartition{Topic: topic, Partition: 0}
		ctx := testCtx(t)
		newTxn := func(id string) *kgo.Client {
			cl, err := kgo.NewClient(kgo.SeedBrokers(e.addrs...), kgo.TransactionalID(id+"-"+sanitize(t.Name())), kgo.DefaultProduceTopic(topic))
			require.NoError(t, err)
			t.Cleanup(cl.Close)
			require.NoError(t, cl.BeginTransaction())
			return cl
		}
		a, b := newTxn("a"), newTxn("b")
		for i := range 3 {
			require.NoError(t, a.ProduceSync(ctx, &kgo.Record{Value: []byte{'a', byte('0' + i)}}).FirstErr())
			require.NoError(t, b.ProduceSync(ctx, &kgo.Record{Value: []byte{'b', byte('0' + i)}}).FirstErr())
		}
		require.NoError(t, a.EndTransaction(ctx, kgo.TryAbort))
		require.NoError(t, b.EndTransaction(ctx, kgo.TryCommit))

		c := e.newConsumer(t, AutoOffsetReset(ResetEarliest), Isolation(ReadCommitted))
		require.NoError(t, c.Assign(tp))
		var got []string
		for _, r := range pollN(t, c, 3, 10*time.Second) {
			got = append(got, string(r.Value))
		}
		require.Equal(t, []string{"b0", "b1", "b2"}, got)
		pollNone(t, c)
	})
}
