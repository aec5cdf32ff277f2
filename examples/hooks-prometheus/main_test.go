package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tributary/tributary/broker/brokertest"
	"github.com/tributary/tributary/client"
)

// value returns the value of the counter name with the given label value,
// summed over other labels.
func value(t *testing.T, g prometheus.Gatherer, name, label, want string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == want {
					if m.Counter != nil {
						sum += m.Counter.GetValue()
					}
					if m.Histogram != nil {
						sum += float64(m.Histogram.GetSampleCount())
					}
				}
			}
		}
	}
	return sum
}

func TestRun(t *testing.T) {
	kf, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	require.NoError(t, err)
	defer kf.Close()
	for name, addrs := range map[string][]string{
		"kfake":     kf.ListenAddrs(),
		"tributary": {brokertest.Start(t).Addr()},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			reg := prometheus.NewRegistry()
			var out bytes.Buffer
			require.NoError(t, run(ctx, &out, reg, addrs, "metrics-topic", 100))
			require.Contains(t, out.String(), "produced 100 records to metrics-topic")
			require.Equal(t, 100.0, value(t, reg, "tributary_produce_records_total", "topic", "metrics-topic"))
			require.Greater(t, value(t, reg, "tributary_produce_batch_bytes_total", "topic", "metrics-topic"), 100.0)
			require.GreaterOrEqual(t, value(t, reg, "tributary_request_latency_seconds", "api", "Produce"), 1.0)
			require.GreaterOrEqual(t, value(t, reg, "tributary_broker_connects_total", "outcome", "ok"), 1.0)

			var text bytes.Buffer
			require.NoError(t, printMetrics(&text, reg))
			require.Contains(t, text.String(), "tributary_produce_records_total{topic=metrics-topic} 100")
		})
	}
}

// The adapter implements every hook, so it follows the SDK as hooks are
// added; the consumer's (fetch, rebalance) are counted too.
func TestMetricsImplementsEveryHook(t *testing.T) {
	var m any = NewMetrics()
	for _, ok := range []bool{
		func() bool { _, ok := m.(client.HookBrokerConnect); return ok }(),
		func() bool { _, ok := m.(client.HookBrokerDisconnect); return ok }(),
		func() bool { _, ok := m.(client.HookBrokerWrite); return ok }(),
		func() bool { _, ok := m.(client.HookBrokerRead); return ok }(),
		func() bool { _, ok := m.(client.HookProduceBatchWritten); return ok }(),
		func() bool { _, ok := m.(client.HookFetchBatchRead); return ok }(),
		func() bool { _, ok := m.(client.HookGroupRebalance); return ok }(),
	} {
		require.True(t, ok)
	}
	mm := m.(*Metrics)
	reg := prometheus.NewRegistry()
	reg.MustRegister(mm)
	mm.OnFetchBatchRead(client.BrokerInfo{NodeID: 1}, "orders", 0, client.FetchBatchMetrics{NumRecords: 7, CompressedBytes: 300})
	mm.OnGroupRebalance(client.RebalanceEvent{Group: "billing"})
	mm.OnGroupRebalance(client.RebalanceEvent{Group: "billing", Lost: true})
	require.Equal(t, 7.0, value(t, reg, "tributary_fetch_records_total", "topic", "orders"))
	require.Equal(t, 2.0, value(t, reg, "tributary_group_rebalances_total", "group", "billing"))
}
