// Package metrics exports a broker's metrics in Prometheus form, named
// after Kafka's JMX MBeans so that existing Kafka dashboards and alerts
// map over.
//
// # Naming
//
// An MBean kafka.<domain>:type=<Type>,name=<Name>[,key=value...] becomes
// kafka_<domain>_<type>_<name>, lower-cased, with the keys as labels —
// the form the Prometheus JMX exporter's common Kafka rules produce:
//
//   - a Meter (…PerSec) is a counter named without "PerSec", plus
//     _total: BrokerTopicMetrics BytesInPerSec{topic} is
//     kafka_server_brokertopicmetrics_bytesin_total{topic};
//   - a Gauge keeps its name: Log Size{topic,partition} is
//     kafka_log_log_size{topic,partition};
//   - a Histogram/Timer (…TimeMs) is a histogram in milliseconds, keeping
//     the name so dashboards find it: RequestMetrics TotalTimeMs{request}
//     is kafka_network_requestmetrics_totaltimems{request}.
//
// Consumer group offsets and lag use the names of kafka_exporter
// (kafka_consumergroup_current_offset, kafka_consumergroup_lag{consumergroup,
// topic,partition}), which is what Redpanda-style group dashboards read.
// Metrics Kafka has no MBean for are prefixed tributary_.
//
// # Cost and cardinality
//
// The hot path (per produce/fetch partition, per request) is atomic adds
// and pre-resolved histogram observers: no map writes, no allocation.
// Everything that describes state (log sizes, offsets, groups, cluster)
// is read from the observe.Source at scrape time, so nothing is stale and
// a deleted topic's series disappear at the next scrape; the per-topic
// counters of a deleted topic are dropped then too. Per-partition series
// stop at Options.PartitionSeriesMax partitions (in topic, partition
// order); tributary_metrics_partition_series_omitted says how many were
// left out.
package metrics

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tributary/tributary/broker/observe"
)

// Options configure New.
type Options struct {
	// PartitionSeriesMax bounds the partitions that get per-partition
	// series (log size, offsets, group lag): metrics.partition.series.max.
	// 0 exports none.
	PartitionSeriesMax int
	// ScrapeTimeout bounds reading the consumer groups during a scrape.
	ScrapeTimeout time.Duration
}

// Metrics is one broker's metrics: a private registry (no globals, so
// several brokers in one test process do not collide).
type Metrics struct {
	src  observe.Source
	opts Options
	reg  *prometheus.Registry

	topics sync.Map // topic name -> *TopicCounters

	requests map[string]*requestMetrics // by API name, filled by New only
	unknown  *requestMetrics

	connCreated, connClosed, connRefused atomic.Int64
	retentionSegs, retentionBytes        atomic.Int64
	retentionRuns                        atomic.Int64
	cleanerRead, cleanerWritten          atomic.Int64
	cleanerPasses, cleanerRunning        atomic.Int64

	// handlerBusy is the nanoseconds handlers ran (local time), for the
	// idle ratio.
	handlerBusy atomic.Int64
	idle        struct {
		sync.Mutex
		at   time.Time
		busy int64
		last float64
	}
}

// TopicCounters are a topic's cumulative BrokerTopicMetrics.
type TopicCounters struct {
	BytesIn, BytesOut, MessagesIn  atomic.Int64
	ProduceRequests, FetchRequests atomic.Int64
	FailedProduce, FailedFetch     atomic.Int64
}

type requestMetrics struct {
	requests                                                 prometheus.Counter
	total, queue, local, remote, responseQueue, responseSend prometheus.Observer
}

// msBuckets are Kafka-like latency buckets in milliseconds.
var msBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000}

// New builds the metrics of one broker reading state from src. apiNames
// are the request names (Kafka's, e.g. "Produce") that get RequestMetrics
// series.
func New(src observe.Source, apiNames []string, opts Options) *Metrics {
	if opts.ScrapeTimeout <= 0 {
		opts.ScrapeTimeout = 5 * time.Second
	}
	m := &Metrics{src: src, opts: opts, reg: prometheus.NewRegistry(), requests: map[string]*requestMetrics{}}
	m.idle.at = time.Now()
	m.idle.last = 1

	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kafka_network_requestmetrics_requests_total",
		Help: "Requests received, by API (Kafka RequestMetrics RequestsPerSec).",
	}, []string{"request"})
	hist := func(name, help string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kafka_network_requestmetrics_" + name, Help: help, Buckets: msBuckets,
		}, []string{"request"})
	}
	total := hist("totaltimems", "Time from the request's last byte read to its response's last byte written, ms (TotalTimeMs).")
	queue := hist("requestqueuetimems", "Time the request waited for its handler, ms (RequestQueueTimeMs).")
	local := hist("localtimems", "Time the handler worked on the request, ms (LocalTimeMs).")
	remote := hist("remotetimems", "Time the request was parked waiting (fetch long poll, acks=all), ms (RemoteTimeMs).")
	respQueue := hist("responsequeuetimems", "Time the response waited to be written, ms (ResponseQueueTimeMs).")
	send := hist("responsesendtimems", "Time writing the response into the connection's buffer, or to the socket for sendfile fetches, ms (ResponseSendTimeMs).")
	for _, name := range append(apiNames, "Unknown") {
		rm := &requestMetrics{
			requests: reqs.WithLabelValues(name),
			total:    total.WithLabelValues(name), queue: queue.WithLabelValues(name),
			local: local.WithLabelValues(name), remote: remote.WithLabelValues(name),
			responseQueue: respQueue.WithLabelValues(name), responseSend: send.WithLabelValues(name),
		}
		m.requests[name] = rm
	}
	m.unknown = m.requests["Unknown"]
	m.reg.MustRegister(reqs, total, queue, local, remote, respQueue, send)
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(&stateCollector{m: m})
	return m
}

// Registry is the registry to serve (promhttp.HandlerFor).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Topic returns the counters of topic, creating them on first use.
func (m *Metrics) Topic(topic string) *TopicCounters {
	if tc, ok := m.topics.Load(topic); ok {
		return tc.(*TopicCounters)
	}
	tc, _ := m.topics.LoadOrStore(topic, new(TopicCounters))
	return tc.(*TopicCounters)
}

// existingTopic returns topic's counters if it has any: failures on
// arbitrary names must not create series.
func (m *Metrics) existingTopic(topic string) *TopicCounters {
	if tc, ok := m.topics.Load(topic); ok {
		return tc.(*TopicCounters)
	}
	return nil
}

// Produced counts one partition's appended batches.
func (m *Metrics) Produced(topic string, bytes int, records int64) {
	tc := m.Topic(topic)
	tc.BytesIn.Add(int64(bytes))
	tc.MessagesIn.Add(records)
	tc.ProduceRequests.Add(1)
}

// ProduceFailed counts a failed append to an existing partition.
func (m *Metrics) ProduceFailed(topic string) {
	tc := m.Topic(topic)
	tc.ProduceRequests.Add(1)
	tc.FailedProduce.Add(1)
}

// Fetched counts one partition of a fetch response.
func (m *Metrics) Fetched(topic string, bytes int64, failed bool) {
	tc := m.existingTopic(topic)
	if tc == nil {
		if failed {
			return
		}
		tc = m.Topic(topic)
	}
	tc.FetchRequests.Add(1)
	tc.BytesOut.Add(bytes)
	if failed {
		tc.FailedFetch.Add(1)
	}
}

// RequestTimes are the phases of one request (see the histograms' help).
type RequestTimes struct {
	Queue, Local, Remote, ResponseQueue, Send time.Duration
}

// Request records one request of API name.
func (m *Metrics) Request(name string, t RequestTimes) {
	rm := m.requests[name]
	if rm == nil {
		rm = m.unknown
	}
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	rm.requests.Inc()
	rm.total.Observe(ms(t.Queue + t.Local + t.Remote + t.ResponseQueue + t.Send))
	rm.queue.Observe(ms(t.Queue))
	rm.local.Observe(ms(t.Local))
	rm.remote.Observe(ms(t.Remote))
	rm.responseQueue.Observe(ms(t.ResponseQueue))
	rm.responseSend.Observe(ms(t.Send))
	m.handlerBusy.Add(int64(t.Local))
}

// ConnOpened, ConnClosed and ConnRefused count connections.
func (m *Metrics) ConnOpened()  { m.connCreated.Add(1) }
func (m *Metrics) ConnClosed()  { m.connClosed.Add(1) }
func (m *Metrics) ConnRefused() { m.connRefused.Add(1) }

// Retention counts one retention pass over a partition and what it
// deleted.
func (m *Metrics) Retention(segments, bytes int64) {
	m.retentionRuns.Add(1)
	m.retentionSegs.Add(max(segments, 0))
	m.retentionBytes.Add(max(bytes, 0))
}

// CleanStarted counts a log cleaner pass starting; Cleaned ends it.
func (m *Metrics) CleanStarted() { m.cleanerRunning.Add(1) }

// Cleaned counts one log cleaner pass that ended: the bytes it read and
// wrote, and whether it rewrote anything.
func (m *Metrics) Cleaned(read, written int64, cleaned bool) {
	m.cleanerRunning.Add(-1)
	m.cleanerRead.Add(max(read, 0))
	m.cleanerWritten.Add(max(written, 0))
	if cleaned {
		m.cleanerPasses.Add(1)
	}
}

// TopicTotals is a snapshot of every topic's counters (for the console's
// rates). Like a scrape, it drops the counters of deleted topics, so they
// go away even where nothing scrapes.
func (m *Metrics) TopicTotals() map[string]TopicSnapshot {
	live := m.liveTopics(m.src.Topics())
	out := map[string]TopicSnapshot{}
	m.topics.Range(func(k, v any) bool {
		if !live[k.(string)] {
			m.topics.Delete(k)
			return true
		}
		tc := v.(*TopicCounters)
		out[k.(string)] = TopicSnapshot{BytesIn: tc.BytesIn.Load(), BytesOut: tc.BytesOut.Load(), MessagesIn: tc.MessagesIn.Load()}
		return true
	})
	return out
}

func (m *Metrics) liveTopics(topics []observe.Topic) map[string]bool {
	live := make(map[string]bool, len(topics))
	for _, t := range topics {
		live[t.Name] = true
	}
	return live
}

// TopicSnapshot is one topic's counters at one time.
type TopicSnapshot struct{ BytesIn, BytesOut, MessagesIn int64 }

// idleRatio is 1 - handler busy time / (wall time * GOMAXPROCS) since the
// previous call at least a second ago: the equivalent of Kafka's
// RequestHandlerAvgIdlePercent (and NetworkProcessorAvgIdlePercent) for
// a broker whose handlers are goroutines, not a fixed thread pool.
func (m *Metrics) idleRatio() float64 {
	m.idle.Lock()
	defer m.idle.Unlock()
	now := time.Now()
	wall := now.Sub(m.idle.at)
	if wall < time.Second {
		return m.idle.last
	}
	busy := m.handlerBusy.Load()
	r := 1 - float64(busy-m.idle.busy)/(float64(wall)*float64(runtime.GOMAXPROCS(0)))
	r = min(max(r, 0), 1)
	m.idle.at, m.idle.busy, m.idle.last = now, busy, r
	return r
}

// stateCollector emits everything read at scrape time.
type stateCollector struct{ m *Metrics }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	dBytesIn        = desc("kafka_server_brokertopicmetrics_bytesin_total", "Bytes appended to the topic by producers (BytesInPerSec).", "topic")
	dBytesOut       = desc("kafka_server_brokertopicmetrics_bytesout_total", "Record bytes sent to fetchers (BytesOutPerSec).", "topic")
	dMessagesIn     = desc("kafka_server_brokertopicmetrics_messagesin_total", "Records appended to the topic (MessagesInPerSec).", "topic")
	dProduceReqs    = desc("kafka_server_brokertopicmetrics_totalproducerequests_total", "Produce partition requests (TotalProduceRequestsPerSec).", "topic")
	dFetchReqs      = desc("kafka_server_brokertopicmetrics_totalfetchrequests_total", "Fetch partition requests (TotalFetchRequestsPerSec).", "topic")
	dFailedProduce  = desc("kafka_server_brokertopicmetrics_failedproducerequests_total", "Failed produce partition requests (FailedProduceRequestsPerSec).", "topic")
	dFailedFetch    = desc("kafka_server_brokertopicmetrics_failedfetchrequests_total", "Failed fetch partition requests (FailedFetchRequestsPerSec).", "topic")
	dLogSize        = desc("kafka_log_log_size", "Bytes of the partition's segments (Log Size).", "topic", "partition")
	dLogSegments    = desc("kafka_log_log_numlogsegments", "Segments of the partition (Log NumLogSegments).", "topic", "partition")
	dLogStart       = desc("kafka_log_log_logstartoffset", "The partition's log start offset (Log LogStartOffset).", "topic", "partition")
	dLogEnd         = desc("kafka_log_log_logendoffset", "The partition's log end offset (Log LogEndOffset).", "topic", "partition")
	dHW             = desc("kafka_cluster_partition_highwatermark", "The partition's high watermark.", "topic", "partition")
	dOmitted        = desc("tributary_metrics_partition_series_omitted", "Partitions left without per-partition series by metrics.partition.series.max.")
	dPartitions     = desc("kafka_server_replicamanager_partitioncount", "Partitions with a replica on this broker (ReplicaManager PartitionCount).")
	dLeaders        = desc("kafka_server_replicamanager_leadercount", "Partitions this broker leads (ReplicaManager LeaderCount).")
	dUnderRepl      = desc("kafka_server_replicamanager_underreplicatedpartitions", "Led partitions with fewer in-sync replicas than replicas (UnderReplicatedPartitions).")
	dUnderMinISR    = desc("kafka_server_replicamanager_underminisrpartitioncount", "Led partitions whose ISR is below min.insync.replicas (UnderMinIsrPartitionCount).")
	dOffline        = desc("kafka_controller_kafkacontroller_offlinepartitionscount", "Partitions without a leader (OfflinePartitionsCount).")
	dActiveCtrl     = desc("kafka_controller_kafkacontroller_activecontrollercount", "1 on the active controller (ActiveControllerCount).")
	dGlobalTopics   = desc("kafka_controller_kafkacontroller_globaltopiccount", "Topics in the cluster (GlobalTopicCount).")
	dGlobalParts    = desc("kafka_controller_kafkacontroller_globalpartitioncount", "Partitions in the cluster (GlobalPartitionCount).")
	dISRShrinks     = desc("kafka_server_replicamanager_isrshrinks_total", "ISR shrinks on this broker (IsrShrinksPerSec).")
	dISRExpands     = desc("kafka_server_replicamanager_isrexpands_total", "ISR expands on this broker (IsrExpandsPerSec).")
	dElections      = desc("kafka_controller_controllerstats_leaderelections_total", "Leader elections (ControllerStats LeaderElectionRateAndTimeMs count).")
	dUnclean        = desc("kafka_controller_controllerstats_uncleanleaderelections_total", "Unclean leader elections (UncleanLeaderElectionsPerSec).")
	dConnCount      = desc("kafka_server_socket_server_metrics_connections", "Open client connections (socket-server-metrics connection-count; renamed: a gauge may not end in _count).")
	dConnCreated    = desc("kafka_server_socket_server_metrics_connection_creation_total", "Connections accepted (connection-creation-total).")
	dConnClosed     = desc("kafka_server_socket_server_metrics_connection_close_total", "Connections closed (connection-close-total).")
	dConnRefused    = desc("kafka_network_socketserver_connections_refused_total", "Connections refused by a connection limit.")
	dIdle           = desc("kafka_server_kafkarequesthandlerpool_requesthandleravgidlepercent", "Fraction of handler capacity idle since the previous scrape, 0..1 (RequestHandlerAvgIdlePercent).")
	dGroups         = desc("kafka_coordinator_group_groupmetadatamanager_numgroups", "Consumer groups by state (GroupMetadataManager NumGroups<State>).", "state")
	dGroupOffset    = desc("kafka_consumergroup_current_offset", "The group's committed offset, -1 if none.", "consumergroup", "topic", "partition")
	dGroupLag       = desc("kafka_consumergroup_lag", "High watermark minus the committed offset (end minus log start when nothing is committed).", "consumergroup", "topic", "partition")
	dGroupLagSum    = desc("kafka_consumergroup_totallag", "The group's lag over all its partitions (kafka_exporter's lag_sum; a gauge may not end in _sum).", "consumergroup")
	dGroupMembers   = desc("kafka_consumergroup_members", "Members of the group.", "consumergroup")
	dRetentionRuns  = desc("kafka_log_logmanager_retentionchecks_total", "Retention passes over a partition.")
	dRetentionSegs  = desc("kafka_log_logmanager_retentiondeletedsegments_total", "Segments deleted by retention (time, size or DeleteRecords).")
	dRetentionBytes = desc("kafka_log_logmanager_retentiondeletedbytes_total", "Bytes deleted by retention.")
	dDirtyRatio     = desc("tributary_log_cleaner_dirty_ratio", "Dirty ratio of a compacted partition: cleanable bytes past the cleaner checkpoint over the cleanable log (what min.cleanable.dirty.ratio is compared with).", "topic", "partition")
	dMaxDirty       = desc("kafka_log_logcleanermanager_max_dirty_percent", "Largest dirty ratio of the compacted partitions here, in percent (LogCleanerManager max-dirty-percent).")
	dCleanerRead    = desc("tributary_log_cleaner_read_bytes_total", "Bytes the log cleaner read.")
	dCleanerWritten = desc("tributary_log_cleaner_written_bytes_total", "Bytes the log cleaner wrote.")
	dCleanerPasses  = desc("tributary_log_cleaner_passes_total", "Cleaning passes that rewrote part of a log.")
	dCleanerRunning = desc("tributary_log_cleaner_running_passes", "Cleaning passes in progress (at most log.cleaner.threads).")
)

// groupStates are Kafka's classic group states, always exported so a
// dashboard sees zeros rather than missing series.
var groupStates = []string{"PreparingRebalance", "CompletingRebalance", "Stable", "Dead", "Empty"}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dBytesIn, dBytesOut, dMessagesIn, dProduceReqs, dFetchReqs, dFailedProduce, dFailedFetch,
		dLogSize, dLogSegments, dLogStart, dLogEnd, dHW, dOmitted, dPartitions, dLeaders, dUnderRepl, dUnderMinISR, dOffline,
		dActiveCtrl, dGlobalTopics, dGlobalParts, dISRShrinks, dISRExpands, dElections, dUnclean, dConnCount, dConnCreated,
		dConnClosed, dConnRefused, dIdle, dGroups, dGroupOffset, dGroupLag, dGroupLagSum, dGroupMembers, dRetentionRuns,
		dRetentionSegs, dRetentionBytes, dDirtyRatio, dMaxDirty, dCleanerRead, dCleanerWritten, dCleanerPasses, dCleanerRunning} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	cl := m.src.Cluster()
	topics := m.src.Topics()

	// Topic counters; a topic that no longer exists loses its series.
	live := m.liveTopics(topics)
	m.topics.Range(func(k, v any) bool {
		name := k.(string)
		if !live[name] {
			m.topics.Delete(name)
			return true
		}
		tc := v.(*TopicCounters)
		counter(dBytesIn, tc.BytesIn.Load(), name)
		counter(dBytesOut, tc.BytesOut.Load(), name)
		counter(dMessagesIn, tc.MessagesIn.Load(), name)
		counter(dProduceReqs, tc.ProduceRequests.Load(), name)
		counter(dFetchReqs, tc.FetchRequests.Load(), name)
		counter(dFailedProduce, tc.FailedProduce.Load(), name)
		counter(dFailedFetch, tc.FailedFetch.Load(), name)
		return true
	})

	var parts, leaders, under, underMin, offline, omitted, budget = 0, 0, 0, 0, 0, 0, m.opts.PartitionSeriesMax
	nparts := 0
	maxDirty := 0.0
	for _, t := range topics {
		for _, p := range t.Partitions {
			nparts++
			if p.Offline() {
				offline++
			}
			if !p.Local {
				continue
			}
			parts++
			if p.Compacted {
				maxDirty = max(maxDirty, p.DirtyRatio)
			}
			if p.Leader == cl.NodeID {
				leaders++
				if p.UnderReplicated() {
					under++
				}
				if p.UnderMinISR() {
					underMin++
				}
			}
			if budget <= 0 {
				omitted++
				continue
			}
			budget--
			pi := strconv.Itoa(int(p.Partition))
			gauge(dLogSize, float64(p.Size), t.Name, pi)
			gauge(dLogSegments, float64(p.Segments), t.Name, pi)
			gauge(dLogStart, float64(p.LogStart), t.Name, pi)
			gauge(dLogEnd, float64(p.LogEnd), t.Name, pi)
			gauge(dHW, float64(p.HighWatermark), t.Name, pi)
			if p.Compacted {
				gauge(dDirtyRatio, p.DirtyRatio, t.Name, pi)
			}
		}
	}
	gauge(dPartitions, float64(parts))
	gauge(dLeaders, float64(leaders))
	gauge(dUnderRepl, float64(under))
	gauge(dUnderMinISR, float64(underMin))
	gauge(dOffline, float64(offline))
	active := 0.0
	if cl.Controller == cl.NodeID {
		active = 1
	}
	gauge(dActiveCtrl, active)
	gauge(dGlobalTopics, float64(len(topics)))
	gauge(dGlobalParts, float64(nparts))
	counter(dISRShrinks, cl.ISRShrinks)
	counter(dISRExpands, cl.ISRExpands)
	counter(dElections, cl.LeaderElections)
	counter(dUnclean, cl.UncleanLeaderElections)

	created, closed := m.connCreated.Load(), m.connClosed.Load()
	gauge(dConnCount, float64(created-closed))
	counter(dConnCreated, created)
	counter(dConnClosed, closed)
	counter(dConnRefused, m.connRefused.Load())
	gauge(dIdle, m.idleRatio())
	counter(dRetentionRuns, m.retentionRuns.Load())
	counter(dRetentionSegs, m.retentionSegs.Load())
	counter(dRetentionBytes, m.retentionBytes.Load())
	gauge(dMaxDirty, 100*maxDirty)
	counter(dCleanerRead, m.cleanerRead.Load())
	counter(dCleanerWritten, m.cleanerWritten.Load())
	counter(dCleanerPasses, m.cleanerPasses.Load())
	gauge(dCleanerRunning, float64(m.cleanerRunning.Load()))

	ctx, cancel := context.WithTimeout(context.Background(), m.opts.ScrapeTimeout)
	defer cancel()
	groups, err := m.src.Groups(ctx)
	byState := map[string]int{}
	for _, s := range groupStates {
		byState[s] = 0
	}
	if err == nil {
		for _, g := range groups {
			byState[g.State]++
			gauge(dGroupMembers, float64(len(g.Members)), g.ID)
			gauge(dGroupLagSum, float64(g.TotalLag()), g.ID)
			for _, o := range g.Offsets {
				if !live[o.Topic] {
					// Offsets committed to a deleted topic: Kafka drops
					// them with the topic, so no series either.
					continue
				}
				if budget <= 0 {
					omitted++
					continue
				}
				budget--
				pi := strconv.Itoa(int(o.Partition))
				gauge(dGroupOffset, float64(o.Committed), g.ID, o.Topic, pi)
				gauge(dGroupLag, float64(o.Lag), g.ID, o.Topic, pi)
			}
		}
	}
	for s, n := range byState {
		gauge(dGroups, float64(n), s)
	}
	gauge(dOmitted, float64(omitted))
}
