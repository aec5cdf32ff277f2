package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/broker/brokertest"
)

func TestRun(t *testing.T) {
	kf, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	defer kf.Close()
	for name, addrs := range map[string][]string{
		"kfake":     kf.ListenAddrs(),
		"tributary": {brokertest.Start(t).Addr()},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var out bytes.Buffer
			require.NoError(t, run(ctx, &out, addrs, "example-topic", 2, 1))
			s := out.String()
			assert.Contains(t, s, `created "example-topic" with 2 partitions`)
			assert.Contains(t, s, `2 partitions, replication factor 1`)
			assert.Contains(t, s, "retention.ms is now 86400000")
			assert.Contains(t, s, `deleted "example-topic"`)

			cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
			require.NoError(t, err)
			defer cl.Close()
			topics, err := kadm.NewClient(cl).ListTopics(ctx)
			require.NoError(t, err)
			assert.False(t, topics.Has("example-topic"), "the example cleans up")
		})
	}
}
