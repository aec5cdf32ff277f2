package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/admin"
	"github.com/tributary/tributary/broker/brokertest"
	"github.com/tributary/tributary/client"
	"github.com/tributary/tributary/consumer"
	"github.com/tributary/tributary/producer"
)

func TestHonoursTributaryBrokers(t *testing.T) {
	t.Setenv("TRIBUTARY_BROKERS", "")
	assert.Equal(t, "127.0.0.1:9092", defaultBrokers())
	t.Setenv("TRIBUTARY_BROKERS", "10.0.0.1:9092")
	assert.Equal(t, "10.0.0.1:9092", defaultBrokers())
}

// TestPipelineExactlyOnce runs the pipeline against kfake over 600
// records in three partitions, with one offset commit failing so that
// its transaction aborts and the batch is processed again: the output,
// read with read_committed, holds each input value uppercased exactly
// once, and the group's offsets are at the end of the input.
func TestPipelineExactlyOnce(t *testing.T) {
	kf, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(3, "in", "out"))
	require.NoError(t, err)
	t.Cleanup(kf.Close)
	var failed atomic.Bool
	kf.ControlKey(int16(kmsg.TxnOffsetCommit), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		kf.KeepControl()
		if !failed.CompareAndSwap(false, true) {
			return nil, nil, false
		}
		req := kr.(*kmsg.TxnOffsetCommitRequest)
		resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewTxnOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = tributary.ErrUnknownServerError.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	checkPipeline(t, kf.ListenAddrs(), 1)
}

// TestPipelineExactlyOnceOnBroker runs the same pipeline against our
// broker (no failure injected there).
func TestPipelineExactlyOnceOnBroker(t *testing.T) {
	b := brokertest.Start(t)
	adm, err := admin.New(admin.SeedBrokers(b.Addr()))
	require.NoError(t, err)
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := adm.CreateTopics(ctx, []admin.NewTopic{{Name: "in", Partitions: 3, ReplicationFactor: 1}, {Name: "out", Partitions: 3, ReplicationFactor: 1}})
	require.NoError(t, err)
	require.NoError(t, res.FirstErr())
	checkPipeline(t, []string{b.Addr()}, 0)
}

// checkPipeline produces 600 records to "in" (three partitions), runs
// the pipeline until each is committed, and checks the output and the
// group's offsets; wantAborts transactions must have been aborted.
func checkPipeline(t *testing.T, addrs []string, wantAborts int32) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const n = 600
	kcl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("in"))
	require.NoError(t, err)
	defer kcl.Close()
	var in []*kgo.Record
	for i := range n {
		in = append(in, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("value-%04d", i))})
	}
	require.NoError(t, kcl.ProduceSync(ctx, in...).FirstErr())

	var done atomic.Int64
	var aborted atomic.Int32
	pctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() {
		runErr = run(pctx, config{
			brokers: addrs, in: "in", out: "out", group: "upper", txnID: "upper-1",
			logf: func(format string, args ...any) {
				if strings.HasPrefix(format, "transaction aborted") {
					aborted.Add(1)
				}
				t.Logf(format, args...)
			},
			onCommit:     func(k int) { done.Add(int64(k)) },
			consumerOpts: []consumer.Opt{consumer.MaxPollRecords(50), consumer.ClientOptions(client.RetryBackoff(10 * time.Millisecond))},
			producerOpts: []producer.Opt{producer.ClientOptions(client.RetryBackoff(10 * time.Millisecond))},
		})
	})
	require.Eventually(t, func() bool { return done.Load() >= n }, 45*time.Second, 10*time.Millisecond)
	stop()
	wg.Wait()
	require.NoError(t, runErr)
	require.EqualValues(t, n, done.Load(), "every input record committed once")
	require.Equal(t, wantAborts, aborted.Load())

	// Read the output with read_committed up to its end.
	rc, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics("out"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer rc.Close()
	seen := map[string]int{}
	total := 0
	for total < n {
		fs := rc.PollFetches(ctx)
		require.NoError(t, fs.Err0())
		fs.EachRecord(func(r *kgo.Record) {
			seen[string(r.Value)]++
			total++
		})
	}
	for i := range n {
		assert.Equal(t, 1, seen[fmt.Sprintf("VALUE-%04d", i)], "VALUE-%04d", i)
	}
	require.Len(t, seen, n)

	// The group's offsets cover the whole input.
	c, err := consumer.New(consumer.SeedBrokers(addrs...), consumer.Group("upper"))
	require.NoError(t, err)
	defer c.Close(context.Background())
	var tps []tributary.TopicPartition
	for p := range int32(3) {
		tps = append(tps, tributary.TopicPartition{Topic: "in", Partition: p})
	}
	committed, err := c.CommittedOffsets(ctx, tps...)
	require.NoError(t, err)
	var sum int64
	for _, off := range committed {
		sum += off
	}
	require.EqualValues(t, n, sum)
}
