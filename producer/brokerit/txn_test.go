package brokerit

// The transactional producer's core cases (commit, abort, fencing,
// offsets in the transaction) against our broker. They need the broker's
// transaction coordinator (issue 10); producer/txn_test.go runs the same
// cases, and more, against kfake.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker"
	"github.com/tributary/tributary/broker/brokertest"
	"github.com/tributary/tributary/consumer"
	"github.com/tributary/tributary/producer"
)

func startTxnBroker(t *testing.T, topics ...string) string {
	t.Helper()
	b := brokertest.Start(t, func(c *broker.Config) { c.GroupInitialRebalanceDelayMs = 0 })
	// One partition each: reading up to a record produced last then
	// proves that nothing hidden before it was returned.
	createTopics(t, b.Addr(), 1, topics...)
	return b.Addr()
}

func txnRec(topic, v string) *tributary.Record {
	return &tributary.Record{Topic: topic, Key: []byte(v), Value: []byte(v)}
}

func produceInTxn(t *testing.T, p *producer.Producer, topic string, vals ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	recs := make([]*tributary.Record, len(vals))
	for i, v := range vals {
		recs[i] = txnRec(topic, v)
	}
	require.NoError(t, p.ProduceSync(ctx, recs...).FirstErr())
}

func txnVals(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%03d", prefix, i)
	}
	return out
}

// readTo reads partition 0 of topic from the start with iso until it has
// seen last, and returns the values in order.
func readTo(t *testing.T, addr, topic string, iso consumer.IsolationLevel, last string) []string {
	t.Helper()
	c, err := consumer.New(consumer.SeedBrokers(addr), consumer.Isolation(iso),
		consumer.AutoOffsetReset(consumer.ResetEarliest), consumer.FetchMaxWait(50*time.Millisecond))
	require.NoError(t, err)
	defer c.Close(context.Background())
	require.NoError(t, c.Assign(tributary.TopicPartition{Topic: topic, Partition: 0}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []string
	for !slices.Contains(got, last) {
		recs, err := c.Poll(ctx)
		require.NoError(t, err, "seen so far: %v", got)
		for _, r := range recs {
			got = append(got, string(r.Value))
		}
	}
	return got
}

func TestTxnCommitAbortOnBroker(t *testing.T) {
	addr := startTxnBroker(t, "out")
	p := newProducer(t, addr, producer.TransactionalID("brokerit-commit"))
	ctx := context.Background()

	require.NoError(t, p.BeginTxn())
	produceInTxn(t, p, "out", txnVals("a", 20)...)
	require.NoError(t, p.CommitTxn(ctx))

	require.NoError(t, p.BeginTxn())
	produceInTxn(t, p, "out", txnVals("b", 20)...) // written, then aborted
	require.NoError(t, p.AbortTxn(ctx))

	require.NoError(t, p.BeginTxn())
	produceInTxn(t, p, "out", append(txnVals("c", 20), "end")...)
	require.NoError(t, p.CommitTxn(ctx))

	want := append(append(txnVals("a", 20), txnVals("c", 20)...), "end")
	require.Equal(t, want, readTo(t, addr, "out", consumer.ReadCommitted, "end"))
	all := readTo(t, addr, "out", consumer.ReadUncommitted, "end")
	require.Equal(t, append(append(txnVals("a", 20), txnVals("b", 20)...), append(txnVals("c", 20), "end")...), all)
}

func TestTxnFencedOnBroker(t *testing.T) {
	addr := startTxnBroker(t, "out")
	ctx := context.Background()
	p1 := newProducer(t, addr, producer.TransactionalID("brokerit-fence"))
	require.NoError(t, p1.BeginTxn())
	produceInTxn(t, p1, "out", txnVals("zombie", 10)...)

	p2 := newProducer(t, addr, producer.TransactionalID("brokerit-fence"))
	require.NoError(t, p2.InitTransactions(ctx)) // fences p1, aborts its transaction

	err := p1.CommitTxn(ctx)
	require.ErrorIs(t, err, producer.ErrFenced)
	require.True(t, errors.Is(err, tributary.ErrProducerFenced) || errors.Is(err, tributary.ErrInvalidProducerEpoch), "%v", err)
	require.ErrorIs(t, p1.ProduceSync(ctx, txnRec("out", "late")).FirstErr(), producer.ErrFenced)
	require.ErrorIs(t, p1.BeginTxn(), producer.ErrFenced)

	require.NoError(t, p2.BeginTxn())
	produceInTxn(t, p2, "out", "end")
	require.NoError(t, p2.CommitTxn(ctx))
	require.Equal(t, []string{"end"}, readTo(t, addr, "out", consumer.ReadCommitted, "end"))
}

func TestTxnSendOffsetsOnBroker(t *testing.T) {
	addr := startTxnBroker(t, "in", "out")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seed := newProducer(t, addr)
	var in []*tributary.Record
	for _, v := range txnVals("in", 10) {
		in = append(in, txnRec("in", v))
	}
	require.NoError(t, seed.ProduceSync(ctx, in...).FirstErr())

	cons, err := consumer.New(consumer.SeedBrokers(addr), consumer.Group("brokerit-etl"), consumer.Topics("in"),
		consumer.AutoCommit(false), consumer.AutoOffsetReset(consumer.ResetEarliest),
		consumer.Isolation(consumer.ReadCommitted), consumer.FetchMaxWait(50*time.Millisecond))
	require.NoError(t, err)
	defer cons.Close(context.Background())
	var polled []*tributary.Record
	for len(polled) < len(in) {
		recs, err := cons.Poll(ctx)
		require.NoError(t, err)
		polled = append(polled, recs...)
	}
	tp := tributary.TopicPartition{Topic: "in", Partition: 0}
	offsets := map[tributary.TopicPartition]int64{tp: polled[len(polled)-1].Offset + 1}
	committed := func() int64 {
		got, err := cons.CommittedOffsets(ctx, tp)
		require.NoError(t, err)
		if off, ok := got[tp]; ok {
			return off
		}
		return -1
	}

	p := newProducer(t, addr, producer.TransactionalID("brokerit-offsets"))
	require.NoError(t, p.BeginTxn())
	produceInTxn(t, p, "out", "aborted")
	require.NoError(t, p.SendOffsetsToTxn(ctx, offsets, cons.GroupMetadata()))
	require.NoError(t, p.AbortTxn(ctx))
	require.Less(t, committed(), int64(0), "an aborted transaction commits no offsets")

	require.NoError(t, p.BeginTxn())
	produceInTxn(t, p, "out", "end")
	require.NoError(t, p.SendOffsetsToTxn(ctx, offsets, cons.GroupMetadata()))
	require.NoError(t, p.CommitTxn(ctx))
	require.Equal(t, offsets[tp], committed())
	require.Equal(t, []string{"end"}, readTo(t, addr, "out", consumer.ReadCommitted, "end"))
}
