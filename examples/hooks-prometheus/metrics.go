package main

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary/client"
)

// Metrics is a small Prometheus adapter for the client's hooks: pass it to
// client.WithHooks (or producer.ClientOptions(client.WithHooks(m))) and
// register it with a prometheus.Registerer. It implements every hook the
// SDK has; an application wanting less implements fewer.
//
// Labels are bounded: node ids, API names, topics and groups the
// application uses. Hooks run on the client's I/O goroutines, and
// Prometheus' counters and histograms are lock-free, so they cost little.
type Metrics struct {
	connects    *prometheus.CounterVec
	disconnects *prometheus.CounterVec
	writeBytes  *prometheus.CounterVec
	readBytes   *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	produced    *prometheus.CounterVec
	producedB   *prometheus.CounterVec
	fetched     *prometheus.CounterVec
	fetchedB    *prometheus.CounterVec
	rebalances  *prometheus.CounterVec
}

// NewMetrics returns the adapter; register it with reg.MustRegister(m).
func NewMetrics() *Metrics {
	const ns = "tributary"
	return &Metrics{
		connects: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "broker_connects_total",
			Help: "Connection attempts to brokers, by node and outcome (ok, error)."}, []string{"node", "outcome"}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "broker_disconnects_total",
			Help: "Connections closed, by node."}, []string{"node"}),
		writeBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "broker_write_bytes_total",
			Help: "Request bytes written, by node."}, []string{"node"}),
		readBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "broker_read_bytes_total",
			Help: "Response bytes read, by node."}, []string{"node"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "request_latency_seconds",
			Help:    "Time from writing a request to reading its response, by API.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"api"}),
		produced: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "produce_records_total",
			Help: "Records acknowledged by brokers, by topic."}, []string{"topic"}),
		producedB: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "produce_batch_bytes_total",
			Help: "Bytes of record batches acknowledged, as sent (compressed), by topic."}, []string{"topic"}),
		fetched: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "fetch_records_total",
			Help: "Records fetched, by topic."}, []string{"topic"}),
		fetchedB: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "fetch_batch_bytes_total",
			Help: "Bytes of record batches fetched, as received (compressed), by topic."}, []string{"topic"}),
		rebalances: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "group_rebalances_total",
			Help: "Group rebalances seen by this member, by group and outcome (ok, lost, error)."}, []string{"group", "outcome"}),
	}
}

// Describe and Collect make Metrics a prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.connects, m.disconnects, m.writeBytes, m.readBytes, m.latency,
		m.produced, m.producedB, m.fetched, m.fetchedB, m.rebalances}
}

func node(b client.BrokerInfo) string { return strconv.Itoa(int(b.NodeID)) }

func outcome(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

func (m *Metrics) OnBrokerConnect(b client.BrokerInfo, _ time.Duration, err error) {
	m.connects.WithLabelValues(node(b), outcome(err)).Inc()
}

func (m *Metrics) OnBrokerDisconnect(b client.BrokerInfo, _ error) {
	m.disconnects.WithLabelValues(node(b)).Inc()
}

func (m *Metrics) OnBrokerWrite(b client.BrokerInfo, _ int16, bytes int, _ time.Duration, err error) {
	if err == nil {
		m.writeBytes.WithLabelValues(node(b)).Add(float64(bytes))
	}
}

func (m *Metrics) OnBrokerRead(b client.BrokerInfo, key int16, bytes int, latency time.Duration, err error) {
	if err != nil {
		return
	}
	m.readBytes.WithLabelValues(node(b)).Add(float64(bytes))
	m.latency.WithLabelValues(kmsg.NameForKey(key)).Observe(latency.Seconds())
}

func (m *Metrics) OnProduceBatchWritten(_ client.BrokerInfo, topic string, _ int32, bm client.ProduceBatchMetrics) {
	m.produced.WithLabelValues(topic).Add(float64(bm.NumRecords))
	m.producedB.WithLabelValues(topic).Add(float64(bm.CompressedBytes))
}

func (m *Metrics) OnFetchBatchRead(_ client.BrokerInfo, topic string, _ int32, fm client.FetchBatchMetrics) {
	m.fetched.WithLabelValues(topic).Add(float64(fm.NumRecords))
	m.fetchedB.WithLabelValues(topic).Add(float64(fm.CompressedBytes))
}

func (m *Metrics) OnGroupRebalance(ev client.RebalanceEvent) {
	o := "ok"
	switch {
	case ev.Err != nil:
		o = "error"
	case ev.Lost:
		o = "lost"
	}
	m.rebalances.WithLabelValues(ev.Group, o).Inc()
}
