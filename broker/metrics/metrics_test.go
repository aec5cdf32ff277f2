package metrics_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/admin"
	"github.com/tributary/tributary/broker"
	"github.com/tributary/tributary/broker/brokertest"
)

// scrape GETs /metrics and parses it; it also lints the text exactly as
// served (promtool check metrics does the same checks).
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	problems, err := promlint.New(strings.NewReader(string(body))).Lint()
	require.NoError(t, err)
	require.Empty(t, problems, "promlint problems in /metrics")
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	require.NoError(t, err)
	return mfs
}

func labelsMatch(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

// sum adds the values of every series of name whose labels include want.
func sum(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, int) {
	mf := mfs[name]
	if mf == nil {
		return 0, 0
	}
	var s float64
	n := 0
	for _, m := range mf.GetMetric() {
		if !labelsMatch(m, want) {
			continue
		}
		n++
		switch {
		case m.Counter != nil:
			s += m.GetCounter().GetValue()
		case m.Gauge != nil:
			s += m.GetGauge().GetValue()
		case m.Histogram != nil:
			s += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return s, n
}

// TestMetricsDuringProduceConsume scrapes /metrics while a producer and
// a consumer group run against a real broker: the topic counters move by
// exactly what was appended, the request histograms fill, group lag is
// what admin.Lag reports, and a deleted topic's series disappear.
func TestMetricsDuringProduceConsume(t *testing.T) {
	b := brokertest.Start(t, func(c *broker.Config) { c.GroupInitialRebalanceDelayMs = 0 })
	addr := b.HTTPAddr()
	require.NotEmpty(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	a, err := admin.New(admin.SeedBrokers(b.Addr()))
	require.NoError(t, err)
	defer a.Close()
	const topic = "metrics-orders"
	require.NoError(t, a.CreateTopic(ctx, topic, 3, 1, nil))
	require.NoError(t, a.CreateTopic(ctx, "metrics-other", 1, 1, nil))

	before := scrape(t, addr)
	v, _ := sum(before, "kafka_server_brokertopicmetrics_messagesin_total", map[string]string{"topic": topic})
	require.Zero(t, v)

	p, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
	require.NoError(t, err)
	defer p.Close()
	const first, second = 300, 200
	produce := func(n, from int) {
		for i := from; i < from+n; i++ {
			p.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint("k", i%17)), Value: []byte(strings.Repeat("v", i%50))}, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Errorf("produce: %v", err)
				}
			})
			if i == from+n/2 {
				// A scrape in the middle of the run: counters only move
				// forward and never past what was sent.
				mid := scrape(t, addr)
				v, _ := sum(mid, "kafka_server_brokertopicmetrics_messagesin_total", map[string]string{"topic": topic})
				require.LessOrEqual(t, v, float64(from+n))
			}
		}
		require.NoError(t, p.Flush(ctx))
	}
	produce(first, 0)

	// A group consumes the first run and commits.
	c, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics(topic), kgo.ConsumerGroup("metrics-group"),
		kgo.DisableAutoCommit(), kgo.FetchMaxWait(200*time.Millisecond))
	require.NoError(t, err)
	defer c.Close()
	got := 0
	for got < first {
		fs := c.PollFetches(ctx)
		require.NoError(t, ctx.Err())
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		got += fs.NumRecords()
	}
	require.NoError(t, c.CommitUncommittedOffsets(ctx))
	produce(second, first) // lag: the second run is not consumed

	mfs := scrape(t, addr)
	tl := map[string]string{"topic": topic}
	msgs, _ := sum(mfs, "kafka_server_brokertopicmetrics_messagesin_total", tl)
	require.EqualValues(t, first+second, msgs, "MessagesIn counts every record appended")
	// Batches are stored as they came, so BytesIn equals the log's size.
	bytesIn, _ := sum(mfs, "kafka_server_brokertopicmetrics_bytesin_total", tl)
	size, nSeries := sum(mfs, "kafka_log_log_size", tl)
	require.Equal(t, 3, nSeries)
	require.Equal(t, size, bytesIn, "BytesIn equals the bytes appended")
	bytesOut, _ := sum(mfs, "kafka_server_brokertopicmetrics_bytesout_total", tl)
	require.Greater(t, bytesOut, 0.0)
	require.LessOrEqual(t, bytesOut, bytesIn, "the group read the first run once")
	end, _ := sum(mfs, "kafka_log_log_logendoffset", tl)
	require.EqualValues(t, first+second, end)

	for _, req := range []string{"Produce", "Fetch", "Metadata", "JoinGroup", "OffsetCommit"} {
		n, _ := sum(mfs, "kafka_network_requestmetrics_totaltimems", map[string]string{"request": req})
		require.Greater(t, n, 0.0, "TotalTimeMs histogram of %s", req)
		q, _ := sum(mfs, "kafka_network_requestmetrics_requestqueuetimems", map[string]string{"request": req})
		require.Equal(t, n, q, "one queue-time sample per request of %s", req)
	}
	conns, _ := sum(mfs, "kafka_server_socket_server_metrics_connections", nil)
	require.Greater(t, conns, 0.0)
	active, _ := sum(mfs, "kafka_controller_kafkacontroller_activecontrollercount", nil)
	require.EqualValues(t, 1, active)
	under, _ := sum(mfs, "kafka_server_replicamanager_underreplicatedpartitions", nil)
	require.Zero(t, under)

	// Group lag per partition equals what admin.Lag computes.
	lags, err := a.Lag(ctx, "metrics-group")
	require.NoError(t, err)
	require.NoError(t, lags.FirstErr())
	require.Len(t, lags[0].Partitions, 3)
	for _, pl := range lags[0].Partitions {
		want := map[string]string{"consumergroup": "metrics-group", "topic": pl.Topic, "partition": fmt.Sprint(pl.Partition)}
		lag, n := sum(mfs, "kafka_consumergroup_lag", want)
		require.Equal(t, 1, n, "a lag series for %s[%d]", pl.Topic, pl.Partition)
		require.EqualValues(t, pl.Lag, lag, "lag of %s[%d]", pl.Topic, pl.Partition)
		off, _ := sum(mfs, "kafka_consumergroup_current_offset", want)
		require.EqualValues(t, pl.Committed, off)
	}
	total, _ := sum(mfs, "kafka_consumergroup_totallag", map[string]string{"consumergroup": "metrics-group"})
	require.EqualValues(t, lags[0].Total, total)
	require.EqualValues(t, second, lags[0].Total)

	// The registry itself lints clean too (Go and process collectors
	// included).
	problems, err := testutil.GatherAndLint(b.Metrics().Registry())
	require.NoError(t, err)
	require.Empty(t, problems)

	// Deleting the topic removes every series that names it.
	c.Close()
	res, err := a.DeleteTopics(ctx, topic)
	require.NoError(t, err)
	require.NoError(t, res.FirstErr())
	after := scrape(t, addr)
	for name, mf := range after {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "topic" && l.GetValue() == topic {
					t.Errorf("%s still has a series for the deleted topic", name)
				}
			}
		}
	}
	_, n := sum(after, "kafka_log_log_size", map[string]string{"topic": "metrics-other"})
	require.Equal(t, 1, n, "other topics keep their series")
}

// TestPartitionSeriesBounded: metrics.partition.series.max caps the
// per-partition series and the rest are counted.
func TestPartitionSeriesBounded(t *testing.T) {
	b := brokertest.Start(t, func(c *broker.Config) { c.MetricsPartitionSeriesMax = 5 })
	ctx := context.Background()
	a, err := admin.New(admin.SeedBrokers(b.Addr()))
	require.NoError(t, err)
	defer a.Close()
	require.NoError(t, a.CreateTopic(ctx, "wide", 12, 1, nil))
	mfs := scrape(t, b.HTTPAddr())
	_, n := sum(mfs, "kafka_log_log_size", nil)
	require.Equal(t, 5, n)
	omitted, _ := sum(mfs, "tributary_metrics_partition_series_omitted", nil)
	require.EqualValues(t, 7, omitted)
	parts, _ := sum(mfs, "kafka_controller_kafkacontroller_globalpartitioncount", nil)
	require.EqualValues(t, 12, parts, "counts cover every partition")
}

// TestHTTPListenerOff: http.listener="" means no HTTP listener and no
// metrics at all.
func TestHTTPListenerOff(t *testing.T) {
	b := brokertest.Start(t, func(c *broker.Config) { c.HTTPListener = "" })
	require.Empty(t, b.HTTPAddr())
	require.Nil(t, b.Metrics())
}

// TestProbes: /healthz answers, /readyz says ready once the broker
// serves.
func TestProbes(t *testing.T) {
	b := brokertest.Start(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + b.HTTPAddr() + path)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
	}
}
