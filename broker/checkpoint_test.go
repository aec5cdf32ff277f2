package broker_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/broker"
	"github.com/tributary/tributary/broker/brokertest"
)

// The checkpoint loop writes each partition's recovery point every
// log.flush.offset.checkpoint.interval.ms, and its log start offset
// every log.flush.start.offset.checkpoint.interval.ms, while the broker
// runs: an unclean restart then rescans only what came after.
func TestCheckpointLoopWritesRecoveryPoints(t *testing.T) {
	b := brokertest.Start(t, func(c *broker.Config) {
		c.LogFlushOffsetCheckpointIntervalMs = 50
		c.LogFlushStartOffsetCheckpointIntervalMs = 50
		c.LogRetentionCheckIntervalMs = 50
	})
	adm := newAdmin(t, b.Addr())
	ctx := ctx5(t)
	_, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{
		"flush.messages": kadm.StringPtr("1"),
		"segment.bytes":  kadm.StringPtr("1024"),
		"retention.ms":   kadm.StringPtr("1"),
	}, "ckpt")
	require.NoError(t, err)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("ckpt"), kgo.ProducerLinger(0))
	require.NoError(t, err)
	defer cl.Close()
	for range 20 {
		require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Value: make([]byte, 200)}).FirstErr())
	}
	read := func(name string) int64 {
		raw, err := os.ReadFile(filepath.Join(b.Dir, "ckpt-0", name))
		if err != nil || len(raw) != 12 {
			return -1
		}
		return int64(binary.BigEndian.Uint64(raw))
	}
	require.Eventually(t, func() bool { return read("recovery-point-checkpoint") == 20 }, 5*time.Second, 10*time.Millisecond,
		"recovery point checkpointed with flush.messages=1")
	// Retention (retention.ms=1) moves the log start; the loop persists it.
	require.Eventually(t, func() bool { return read("log-start-offset-checkpoint") > 0 }, 5*time.Second, 10*time.Millisecond)
}
