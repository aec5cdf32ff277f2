package broker_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/broker/brokertest"
)

// TestConcurrentAdminAndProduce mixes topic creation and deletion,
// partition growth, config changes, metadata and produce from several
// clients at once: no deadlock, no race (run with -race), and the broker
// still answers afterwards and after a restart.
func TestConcurrentAdminAndProduce(t *testing.T) {
	b := brokertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	var created, produced atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(0))
			if err != nil {
				t.Error(err)
				return
			}
			defer cl.Close()
			adm := kadm.NewClient(cl)
			for i := 0; ctx.Err() == nil; i++ {
				name := fmt.Sprintf("s%d", i%3)
				switch (w + i) % 5 {
				case 0:
					if r, err := adm.CreateTopic(ctx, 2, 1, nil, name); err == nil && r.Err == nil {
						created.Add(1)
					}
				case 1:
					adm.DeleteTopics(ctx, name)
				case 2:
					adm.UpdatePartitions(ctx, 3+i%4, name)
				case 3:
					adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr(fmt.Sprint(1000 + i))}}, name)
					adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.retention.bytes", Value: kadm.StringPtr(fmt.Sprint(1 << 30))}}, 1)
				case 4:
					// Async: a record for a topic another worker just
					// deleted waits in the client, not in the broker.
					cl.Produce(ctx, &kgo.Record{Topic: name, Value: []byte("v")}, func(_ *kgo.Record, err error) {
						if err == nil {
							produced.Add(1)
						}
					})
					adm.Metadata(ctx)
					adm.DescribeTopicConfigs(ctx, name)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("topics created %d, records produced %d", created.Load(), produced.Load())
	require.Positive(t, created.Load())
	require.Positive(t, produced.Load())
	adm := newAdmin(t, b.Addr())
	_, err := adm.Metadata(ctx5(t))
	require.NoError(t, err)
	b.Restart(t)
	adm = newAdmin(t, b.Addr())
	_, err = adm.Metadata(ctx5(t))
	require.NoError(t, err)
}
