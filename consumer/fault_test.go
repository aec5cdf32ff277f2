package consumer

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// kfakeEnv is for behaviour only kfake can stage (leader moves,
// transactions).
func kfakeEnv(t *testing.T) *env { return newEnv(t, backends[0]) }

// TestLeaderMovesMidConsume: partitions move to other brokers while the
// consumer reads them; NOT_LEADER_OR_FOLLOWER / FENCED_LEADER_EPOCH make
// it refresh metadata and go on at the new leader, skipping and repeating
// nothing.
func TestLeaderMovesMidConsume(t *testing.T) {
	e := kfakeEnv(t)
	topic := e.topic(t, 3)
	first := e.produce(t, nil, topic, 300)
	c := e.newConsumer(t, AutoOffsetReset(ResetEarliest), MaxPollRecords(50))
	require.NoError(t, c.Assign(allPartitions(topic, 3)...))
	got := pollN(t, c, 100, 10*time.Second)

	for p := int32(0); p < 3; p++ {
		leader := e.kf.LeaderFor(topic, p)
		require.NoError(t, e.kf.MoveTopicPartition(topic, p, (leader+1)%3))
	}
	second := e.produce(t, nil, topic, 300)
	got = append(got, pollN(t, c, 600-len(got), 20*time.Second)...)
	requireSameRecords(t, append(first, second...), got)
}

// TestOffsetOutOfRangeResets: a position below the log start offset (the
// records were deleted) is reset per AutoOffsetReset.
func TestOffsetOutOfRangeResets(t *testing.T) {
	e := kfakeEnv(t)
	topic := e.topic(t, 1)
	tp := tributary.TopicPartition{Topic: topic, Partition: 0}
	e.produce(t, nil, topic, 100)
	require.NoError(t, e.kf.DeleteRecords(topic, 0, 60))
	c := e.newConsumer(t, AutoOffsetReset(ResetEarliest))
	require.NoError(t, c.AssignOffsets(map[tributary.TopicPartition]int64{tp: 10}))
	got := pollN(t, c, 40, 10*time.Second)
	require.Equal(t, int64(60), got[0].Offset)
	require.Equal(t, int64(99), got[len(got)-1].Offset)
}

// TestReadCommitted: with ReadCommitted, records of aborted transactions
// and the transaction markers are skipped; ReadUncommitted sees the
// aborted records too. The position still moves past all of them.
func TestReadCommitted(t *testing.T) {
	e := kfakeEnv(t)
	topic := e.topic(t, 1)
	tp := tributary.TopicPartition{Topic: topic, Partition: 0}
	txn, err := kgo.NewClient(kgo.SeedBrokers(e.addrs...), kgo.TransactionalID("txn-"+sanitize(t.Name())), kgo.DefaultProduceTopic(topic))
	require.NoError(t, err)
	defer txn.Close()
	ctx := testCtx(t)
	plain := func(v string) {
		require.NoError(t, e.kcl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr())
	}
	inTxn := func(commit bool, vs ...string) {
		require.NoError(t, txn.BeginTransaction())
		for _, v := range vs {
			require.NoError(t, txn.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr())
		}
		require.NoError(t, txn.EndTransaction(ctx, kgo.TransactionEndTry(commit)))
	}
	plain("p0")
	inTxn(false, "a0", "a1")
	inTxn(true, "c0", "c1")
	plain("p1")
	inTxn(false, "a2")
	plain("p2")

	values := func(recs []*tributary.Record) []string {
		var out []string
		for _, r := range recs {
			out = append(out, string(r.Value))
		}
		return out
	}
	committed := e.newConsumer(t, AutoOffsetReset(ResetEarliest), Isolation(ReadCommitted))
	require.NoError(t, committed.Assign(tp))
	require.Equal(t, []string{"p0", "c0", "c1", "p1", "p2"}, values(pollN(t, committed, 5, 10*time.Second)))
	pollNone(t, committed)
	end, err := e.adm.ListEndOffsets(ctx, topic)
	require.NoError(t, err)
	eventually(t, 5*time.Second, func() bool { p, _ := committed.Position(tp); return p == end[topic][0].Offset },
		"position did not move past the markers")

	uncommitted := e.newConsumer(t, AutoOffsetReset(ResetEarliest))
	require.NoError(t, uncommitted.Assign(tp))
	require.Equal(t, []string{"p0", "a0", "a1", "c0", "c1", "p1", "a2", "p2"}, values(pollN(t, uncommitted, 8, 10*time.Second)))
}

// TestCommitAsyncOrdered: asynchronous commits are applied in the order
// they were made, so the last one wins.
func TestCommitAsyncOrdered(t *testing.T) {
	e := kfakeEnv(t)
	topic := e.topic(t, 1)
	tp := tributary.TopicPartition{Topic: topic, Partition: 0}
	c := e.newConsumer(t, Group(sanitize("g-"+t.Name())), AutoCommit(false))
	done := make(chan error, 50)
	for i := range 50 {
		rec := &tributary.Record{Topic: topic, Partition: 0, Offset: int64(i)}
		c.CommitAsync([]*tributary.Record{rec}, func(offs map[tributary.TopicPartition]int64, err error) {
			if err == nil && offs[tp] != int64(i+1) {
				err = fmt.Errorf("callback for commit %d got offsets %v", i, offs)
			}
			done <- err
		})
	}
	for range 50 {
		require.NoError(t, <-done)
	}
	offs, err := c.CommittedOffsets(context.Background(), tp)
	require.NoError(t, err)
	require.Equal(t, int64(50), offs[tp])
}

// TestCommitErrorsTyped: a partition-level commit failure is a
// *CommitError naming the partition, and errors.Is matches the Kafka
// error; retriable coordinator errors are retried.
func TestCommitErrorsTyped(t *testing.T) {
	e := kfakeEnv(t)
	topic := e.topic(t, 2)
	c := e.newConsumer(t, Group(sanitize("g-"+t.Name())), AutoCommit(false))
	var calls atomic.Int32
	e.kf.ControlKey(8, func(req kmsg.Request) (kmsg.Response, error, bool) {
		e.kf.KeepControl()
		n := calls.Add(1)
		r := req.(*kmsg.OffsetCommitRequest)
		resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range r.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition = rp.Partition
				switch {
				case n == 1:
					sp.ErrorCode = tributary.ErrNotCoordinator.Code // retried
				case rp.Partition == 1:
					sp.ErrorCode = tributary.ErrRebalanceInProgress.Code
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	err := c.CommitOffsets(testCtx(t), map[tributary.TopicPartition]int64{
		{Topic: topic, Partition: 0}: 5, {Topic: topic, Partition: 1}: 7,
	})
	require.ErrorIs(t, err, tributary.ErrRebalanceInProgress)
	var ce *CommitError
	require.ErrorAs(t, err, &ce)
	require.Len(t, ce.Errs, 1)
	require.Contains(t, ce.Errs, tributary.TopicPartition{Topic: topic, Partition: 1})
	require.Equal(t, int32(2), calls.Load(), "NOT_COORDINATOR was not retried")
}
