package broker_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/broker"
	"github.com/tributary/tributary/broker/brokertest"
)

// The retention loop runs every log.retention.check.interval.ms and
// deletes old segments: the log start offset moves without any request.
func TestRetentionLoopDeletesOldSegments(t *testing.T) {
	b := brokertest.Start(t, func(c *broker.Config) { c.LogRetentionCheckIntervalMs = 50 })
	adm := newAdmin(t, b.Addr())
	ctx := ctx5(t)
	_, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{
		"segment.bytes": kadm.StringPtr("1024"),
		"retention.ms":  kadm.StringPtr("3600000"),
	}, "ret")
	require.NoError(t, err)

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("ret"), kgo.ProducerLinger(0))
	require.NoError(t, err)
	defer cl.Close()
	for i := 0; i < 50; i++ {
		require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Value: make([]byte, 200)}).FirstErr())
	}
	start := func() int64 {
		lo, err := adm.ListStartOffsets(ctx, "ret")
		require.NoError(t, err)
		o, _ := lo.Lookup("ret", 0)
		require.NoError(t, o.Err)
		return o.Offset
	}
	time.Sleep(200 * time.Millisecond)
	require.Zero(t, start(), "retention deleted data younger than retention.ms")

	// Shrinking retention.ms takes effect at the next check.
	rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("1")}}, "ret")
	require.NoError(t, err)
	require.NoError(t, rs[0].Err)
	require.Eventually(t, func() bool { return start() > 0 }, 5*time.Second, 20*time.Millisecond)
}
