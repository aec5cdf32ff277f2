package broker

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary/broker/storage"
)

// valueSpec is the type and validity rule of one config, shared by the
// broker properties and the topic configs they default.
type valueSpec struct {
	typ      kmsg.ConfigType
	min, max int64              // integer types; max 0 = the type's maximum
	fmin     float64            // DOUBLE range [fmin, fmax]
	fmax     float64            //
	enum     []string           // STRING: allowed values; LIST: allowed items
	nonEmpty bool               // LIST must have at least one item
	check    func(string) error // extra rule for structured strings
}

func (s valueSpec) validate(v string) error {
	if s.check != nil {
		if err := s.check(v); err != nil {
			return err
		}
	}
	switch s.typ {
	case kmsg.ConfigTypeBoolean:
		if !strings.EqualFold(v, "true") && !strings.EqualFold(v, "false") {
			return fmt.Errorf("value %q is not a boolean", v)
		}
	case kmsg.ConfigTypeInt, kmsg.ConfigTypeShort, kmsg.ConfigTypeLong:
		bits := map[kmsg.ConfigType]int{kmsg.ConfigTypeInt: 32, kmsg.ConfigTypeShort: 16, kmsg.ConfigTypeLong: 64}[s.typ]
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, bits)
		if err != nil {
			return fmt.Errorf("value %q is not a %d-bit integer", v, bits)
		}
		if n < s.min {
			return fmt.Errorf("value %d is below the minimum %d", n, s.min)
		}
		if s.max != 0 && n > s.max {
			return fmt.Errorf("value %d is above the maximum %d", n, s.max)
		}
	case kmsg.ConfigTypeDouble:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsNaN(f) {
			return fmt.Errorf("value %q is not a number", v)
		}
		if f < s.fmin || f > s.fmax {
			return fmt.Errorf("value %v is outside [%v, %v]", f, s.fmin, s.fmax)
		}
	case kmsg.ConfigTypeString:
		if len(s.enum) > 0 && !containsFold(s.enum, v) {
			return fmt.Errorf("value %q is not one of %s", v, strings.Join(s.enum, ", "))
		}
	case kmsg.ConfigTypeList:
		items := splitList(v)
		if s.nonEmpty && len(items) == 0 {
			return errors.New("the list is empty")
		}
		for _, it := range items {
			if len(s.enum) > 0 && !containsFold(s.enum, it) {
				return fmt.Errorf("item %q is not one of %s", it, strings.Join(s.enum, ", "))
			}
		}
	}
	return nil
}

// canonical returns v as Kafka would print it back (trimmed, list items
// joined with commas, enum values in their canonical case).
func (s valueSpec) canonical(v string) string {
	v = strings.TrimSpace(v)
	switch s.typ {
	case kmsg.ConfigTypeBoolean:
		return strings.ToLower(v)
	case kmsg.ConfigTypeList:
		items := splitList(v)
		for i, it := range items {
			items[i] = enumCase(s.enum, it)
		}
		return strings.Join(items, ",")
	case kmsg.ConfigTypeString:
		return enumCase(s.enum, v)
	}
	return v
}

func enumCase(enum []string, v string) string {
	for _, e := range enum {
		if strings.EqualFold(e, v) {
			return e
		}
	}
	return v
}

func containsFold(list []string, v string) bool {
	for _, e := range list {
		if strings.EqualFold(e, v) {
			return true
		}
	}
	return false
}

func splitList(v string) []string {
	var out []string
	for _, it := range strings.Split(v, ",") {
		if it = strings.TrimSpace(it); it != "" {
			out = append(out, it)
		}
	}
	return out
}

// brokerProp is one broker property: its Kafka name, type, whether
// Kafka lets it change at runtime (AlterConfigs on a BROKER resource),
// and the Config field that holds it.
type brokerProp struct {
	name    string
	spec    valueSpec
	dynamic bool
	doc     string
	field   func(*Config) any // pointer to the field
}

func (p brokerProp) get(c *Config) string {
	switch f := p.field(c).(type) {
	case *int64:
		return strconv.FormatInt(*f, 10)
	case *int32:
		return strconv.FormatInt(int64(*f), 10)
	case *int16:
		return strconv.FormatInt(int64(*f), 10)
	case *bool:
		return strconv.FormatBool(*f)
	case *float64:
		return strconv.FormatFloat(*f, 'g', -1, 64)
	case *string:
		return *f
	case *[]string:
		return strings.Join(*f, ",")
	}
	return ""
}

func (p brokerProp) set(c *Config, v string) error {
	if err := p.spec.validate(v); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	v = p.spec.canonical(v)
	switch f := p.field(c).(type) {
	case *int64:
		*f, _ = strconv.ParseInt(v, 10, 64)
	case *int32:
		n, _ := strconv.ParseInt(v, 10, 32)
		*f = int32(n)
	case *int16:
		n, _ := strconv.ParseInt(v, 10, 16)
		*f = int16(n)
	case *bool:
		*f = v == "true"
	case *float64:
		*f, _ = strconv.ParseFloat(v, 64)
	case *string:
		*f = v
	case *[]string:
		*f = splitList(v)
	}
	return nil
}

var (
	specLong     = valueSpec{typ: kmsg.ConfigTypeLong, min: math.MinInt64}
	specLongGE0  = valueSpec{typ: kmsg.ConfigTypeLong}
	specLongGE1  = valueSpec{typ: kmsg.ConfigTypeLong, min: 1}
	specLongGEm1 = valueSpec{typ: kmsg.ConfigTypeLong, min: -1}
	specIntGE0   = valueSpec{typ: kmsg.ConfigTypeInt}
	specIntGE1   = valueSpec{typ: kmsg.ConfigTypeInt, min: 1}
	specBool     = valueSpec{typ: kmsg.ConfigTypeBoolean}
	specString   = valueSpec{typ: kmsg.ConfigTypeString}

	specCleanupPolicy = valueSpec{typ: kmsg.ConfigTypeList, enum: []string{"delete", "compact"}, nonEmpty: true}
	specTimestampType = valueSpec{typ: kmsg.ConfigTypeString, enum: []string{"CreateTime", "LogAppendTime"}}
	specCompression   = valueSpec{typ: kmsg.ConfigTypeString, enum: []string{"uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"}}
	// Kafka 4 raised the minimum segment size to 1 MiB; we keep the
	// 3.x minimum so tests can roll segments with a few records.
	specSegmentBytes = valueSpec{typ: kmsg.ConfigTypeInt, min: 14}
	specRatio        = valueSpec{typ: kmsg.ConfigTypeDouble, fmin: 0, fmax: 1}
	specGzipLevel    = valueSpec{typ: kmsg.ConfigTypeInt, min: -1, max: 9}
)

// brokerProps lists every broker property Set accepts and DescribeConfigs
// reports for a BROKER resource.
var brokerProps = []brokerProp{
	{"node.id", valueSpec{typ: kmsg.ConfigTypeInt}, false, "The node id of this broker.", func(c *Config) any { return &c.NodeID }},
	{"listeners", specString, false, "Comma-separated NAME://host:port listeners; the first PLAINTEXT one is served.", func(c *Config) any { return &c.Listeners }},
	{"advertised.listeners", specString, false, "Listeners returned to clients in Metadata; default: listeners.", func(c *Config) any { return &c.AdvertisedListeners }},
	{"log.dirs", valueSpec{typ: kmsg.ConfigTypeList, nonEmpty: true}, false, "Directories holding the log data; only the first is used.", func(c *Config) any { return &c.LogDirs }},
	{"num.partitions", specIntGE1, false, "Default number of partitions of auto-created topics and CreateTopics with -1.", func(c *Config) any { return &c.NumPartitions }},
	{"default.replication.factor", valueSpec{typ: kmsg.ConfigTypeShort, min: 1}, false, "Default replication factor of new topics.", func(c *Config) any { return &c.DefaultReplicationFactor }},
	{"auto.create.topics.enable", specBool, false, "Create a topic when a client asks Metadata for it and allows creation.", func(c *Config) any { return &c.AutoCreateTopicsEnable }},
	{"log.segment.bytes", specSegmentBytes, true, "Largest size of one segment file.", func(c *Config) any { return &c.LogSegmentBytes }},
	{"log.roll.ms", specLongGE1, true, "Roll a new segment after this long even if it is not full.", func(c *Config) any { return &c.LogRollMs }},
	{"log.roll.jitter.ms", specLongGE0, true, "Maximum random jitter subtracted from log.roll.ms.", func(c *Config) any { return &c.LogRollJitterMs }},
	{"log.retention.ms", specLongGEm1, true, "Delete segments older than this; -1 keeps forever.", func(c *Config) any { return &c.LogRetentionMs }},
	{"log.retention.bytes", specLong, true, "Delete old segments while a partition is larger than this; -1 = no limit.", func(c *Config) any { return &c.LogRetentionBytes }},
	{"log.retention.check.interval.ms", specLongGE1, false, "How often retention is enforced.", func(c *Config) any { return &c.LogRetentionCheckIntervalMs }},
	{"log.cleanup.policy", specCleanupPolicy, true, "delete and/or compact.", func(c *Config) any { return &c.LogCleanupPolicy }},
	{"log.index.interval.bytes", specIntGE0, true, "Bytes between offset index entries.", func(c *Config) any { return &c.LogIndexIntervalBytes }},
	{"log.index.size.max.bytes", valueSpec{typ: kmsg.ConfigTypeInt, min: 4}, true, "Largest size of an offset index file.", func(c *Config) any { return &c.LogIndexSizeMaxBytes }},
	{"log.flush.interval.messages", specLongGE1, true, "fsync after this many records.", func(c *Config) any { return &c.LogFlushIntervalMessages }},
	{"log.flush.interval.ms", specLongGE0, true, "fsync when the oldest unflushed write is this old.", func(c *Config) any { return &c.LogFlushIntervalMs }},
	{"log.flush.offset.checkpoint.interval.ms", specIntGE0, false, "How often recovery points are written to their checkpoint files (0: only at roll and shutdown).", func(c *Config) any { return &c.LogFlushOffsetCheckpointIntervalMs }},
	{"log.flush.start.offset.checkpoint.interval.ms", specIntGE0, false, "How often log start offsets are written to their checkpoint files (0: only on DeleteRecords and shutdown).", func(c *Config) any { return &c.LogFlushStartOffsetCheckpointIntervalMs }},
	{"log.segment.delete.delay.ms", specLongGE0, true, "Delay before a deleted segment's files are removed.", func(c *Config) any { return &c.LogSegmentDeleteDelayMs }},
	{"log.message.timestamp.type", specTimestampType, true, "CreateTime or LogAppendTime.", func(c *Config) any { return &c.LogMessageTimestampType }},
	{"log.message.timestamp.before.max.ms", specLongGE0, true, "Largest allowed age of a CreateTime timestamp.", func(c *Config) any { return &c.LogMessageTimestampBeforeMaxMs }},
	{"log.message.timestamp.after.max.ms", specLongGE0, true, "Largest allowed distance of a CreateTime timestamp into the future.", func(c *Config) any { return &c.LogMessageTimestampAfterMaxMs }},
	{"log.preallocate", specBool, true, "Preallocate segment files.", func(c *Config) any { return &c.LogPreallocate }},
	{"log.cleaner.delete.retention.ms", specLongGE0, true, "How long tombstones are kept in compacted topics.", func(c *Config) any { return &c.LogCleanerDeleteRetentionMs }},
	{"log.cleaner.min.compaction.lag.ms", specLongGE0, true, "Minimum age of a record before it may be compacted.", func(c *Config) any { return &c.LogCleanerMinCompactionLagMs }},
	{"log.cleaner.max.compaction.lag.ms", specLongGE1, true, "Maximum time a record stays uncompacted.", func(c *Config) any { return &c.LogCleanerMaxCompactionLagMs }},
	{"log.cleaner.min.cleanable.ratio", specRatio, true, "Dirty ratio above which a log is compacted.", func(c *Config) any { return &c.LogCleanerMinCleanableRatio }},
	{"log.cleaner.enable", specBool, false, "Run the log cleaner, which compacts topics with cleanup.policy=compact (__consumer_offsets among them).", func(c *Config) any { return &c.LogCleanerEnable }},
	{"log.cleaner.threads", specIntGE0, false, "Cleaner threads; each cleans one log at a time, the dirtiest first.", func(c *Config) any { return &c.LogCleanerThreads }},
	{"log.cleaner.backoff.ms", specLongGE0, true, "How long a cleaner thread sleeps when no log is due for cleaning.", func(c *Config) any { return &c.LogCleanerBackoffMs }},
	{"log.cleaner.dedupe.buffer.size", specLongGE0, false, "Memory for the key maps of all cleaner threads together; a dirty head with more keys than fit is cleaned in several passes.", func(c *Config) any { return &c.LogCleanerDedupeBufferSize }},
	{"log.cleaner.io.max.bytes.per.second", valueSpec{typ: kmsg.ConfigTypeDouble, fmin: 1, fmax: math.MaxFloat64}, true, "Bytes per second all cleaner threads together may read and write (the default is unthrottled).", func(c *Config) any { return &c.LogCleanerIoMaxBytesPerSecond }},
	{"min.insync.replicas", specIntGE1, true, "Replicas that must acknowledge an acks=all write.", func(c *Config) any { return &c.MinInsyncReplicas }},
	{"unclean.leader.election.enable", specBool, true, "Allow an out-of-sync replica to become leader.", func(c *Config) any { return &c.UncleanLeaderElectionEnable }},
	{"message.max.bytes", specIntGE0, true, "Largest record batch accepted.", func(c *Config) any { return &c.MessageMaxBytes }},
	{"compression.type", specCompression, true, "Compression of stored batches; producer keeps what the producer sent.", func(c *Config) any { return &c.CompressionType }},
	{"compression.gzip.level", specGzipLevel, true, "gzip level when compression.type=gzip (-1: codec default).", func(c *Config) any { return &c.CompressionGzipLevel }},
	{"compression.lz4.level", valueSpec{typ: kmsg.ConfigTypeInt, min: 1, max: 17}, true, "lz4 level when compression.type=lz4.", func(c *Config) any { return &c.CompressionLz4Level }},
	{"compression.zstd.level", valueSpec{typ: kmsg.ConfigTypeInt, min: -131072, max: 22}, true, "zstd level when compression.type=zstd.", func(c *Config) any { return &c.CompressionZstdLevel }},
	{"producer.id.expiration.ms", valueSpec{typ: kmsg.ConfigTypeInt, min: 1, max: math.MaxInt32}, true, "Forget an idle producer id after this long.", func(c *Config) any { return &c.ProducerIDExpirationMs }},
	{"transaction.state.log.num.partitions", specIntGE1, false, "Partitions of __transaction_state, set when the topic is created.", func(c *Config) any { return &c.TransactionStateLogNumPartitions }},
	{"transaction.state.log.replication.factor", valueSpec{typ: kmsg.ConfigTypeShort, min: 1}, false, "Replication factor of __transaction_state (Kafka's default 3 cannot be met by one node).", func(c *Config) any { return &c.TransactionStateLogReplicationFactor }},
	{"transaction.state.log.min.isr", specIntGE1, false, "min.insync.replicas of __transaction_state.", func(c *Config) any { return &c.TransactionStateLogMinIsr }},
	{"transaction.state.log.segment.bytes", specIntGE1, false, "segment.bytes of __transaction_state.", func(c *Config) any { return &c.TransactionStateLogSegmentBytes }},
	{"transaction.max.timeout.ms", specIntGE1, false, "Largest transaction.timeout.ms a producer may ask for (INVALID_TRANSACTION_TIMEOUT above it).", func(c *Config) any { return &c.TransactionMaxTimeoutMs }},
	{"transaction.abort.timed.out.transaction.cleanup.interval.ms", specIntGE1, false, "How often transactions past their timeout are looked for and aborted.", func(c *Config) any { return &c.TransactionAbortTimedOutCleanupIntervalMs }},
	{"transaction.remove.expired.transaction.cleanup.interval.ms", specIntGE1, false, "How often expired transactional ids are removed.", func(c *Config) any { return &c.TransactionRemoveExpiredCleanupIntervalMs }},
	{"transactional.id.expiration.ms", specIntGE1, false, "Forget a transactional id idle this long.", func(c *Config) any { return &c.TransactionalIDExpirationMs }},
	{"offsets.topic.num.partitions", specIntGE1, false, "Partitions of __consumer_offsets, set when the topic is created.", func(c *Config) any { return &c.OffsetsTopicNumPartitions }},
	{"offsets.topic.replication.factor", valueSpec{typ: kmsg.ConfigTypeShort, min: 1}, false, "Replication factor of __consumer_offsets (Kafka's default 3 cannot be met by one node).", func(c *Config) any { return &c.OffsetsTopicReplicationFactor }},
	{"offsets.topic.segment.bytes", specIntGE1, false, "segment.bytes of __consumer_offsets.", func(c *Config) any { return &c.OffsetsTopicSegmentBytes }},
	{"offsets.retention.minutes", specIntGE1, false, "Keep committed offsets this long after a group becomes empty (or after the commit, for groups without members).", func(c *Config) any { return &c.OffsetsRetentionMinutes }},
	{"offsets.retention.check.interval.ms", specLongGE1, false, "How often expired offsets are looked for.", func(c *Config) any { return &c.OffsetsRetentionCheckIntervalMs }},
	{"offset.metadata.max.bytes", specIntGE0, false, "Longest metadata string an offset commit may carry.", func(c *Config) any { return &c.OffsetMetadataMaxBytes }},
	{"group.initial.rebalance.delay.ms", specIntGE0, false, "How long the first rebalance of an empty group waits for more members.", func(c *Config) any { return &c.GroupInitialRebalanceDelayMs }},
	{"group.min.session.timeout.ms", specIntGE1, false, "Smallest session timeout a group member may ask for.", func(c *Config) any { return &c.GroupMinSessionTimeoutMs }},
	{"group.max.session.timeout.ms", specIntGE1, false, "Largest session timeout a group member may ask for.", func(c *Config) any { return &c.GroupMaxSessionTimeoutMs }},
	{"group.max.size", specIntGE1, false, "Most members one group may have.", func(c *Config) any { return &c.GroupMaxSize }},
	{"socket.request.max.bytes", valueSpec{typ: kmsg.ConfigTypeInt, min: 1}, false, "Largest request frame accepted; larger frames close the connection.", func(c *Config) any { return &c.SocketRequestMaxBytes }},
	{"connections.max.idle.ms", specLongGE1, false, "Close a connection that sends nothing for this long.", func(c *Config) any { return &c.ConnectionsMaxIdleMs }},
	{"process.roles", valueSpec{typ: kmsg.ConfigTypeList, enum: []string{"broker", "controller"}, nonEmpty: true}, false, "The roles of this node; every node is a combined broker and controller.", func(c *Config) any { return &c.ProcessRoles }},
	{"controller.quorum.voters", specString, false, "The metadata quorum, id@host:port,... of every controller listener; empty: this node alone.", func(c *Config) any { return &c.ControllerQuorumVoters }},
	{"controller.listener.names", specString, false, "Names of the listeners the controller quorum uses (not advertised to clients).", func(c *Config) any { return &c.ControllerListenerNames }},
	{"broker.rack", specString, false, "Rack of this broker; replicas of a partition are spread across racks.", func(c *Config) any { return &c.BrokerRack }},
	{"broker.session.timeout.ms", specIntGE1, false, "A broker whose heartbeats stop for this long is fenced and loses its leaderships.", func(c *Config) any { return &c.BrokerSessionTimeoutMs }},
	{"broker.heartbeat.interval.ms", specIntGE1, false, "How often a broker heartbeats to the controller.", func(c *Config) any { return &c.BrokerHeartbeatIntervalMs }},
	{"replica.lag.time.max.ms", specLongGE1, false, "A follower not caught up for this long leaves the ISR.", func(c *Config) any { return &c.ReplicaLagTimeMaxMs }},
	{"replica.fetch.wait.max.ms", specIntGE0, false, "Longest wait of a follower's fetch at the leader.", func(c *Config) any { return &c.ReplicaFetchWaitMaxMs }},
	{"replica.fetch.min.bytes", specIntGE1, false, "Bytes a follower's fetch waits for.", func(c *Config) any { return &c.ReplicaFetchMinBytes }},
	{"replica.fetch.max.bytes", specIntGE0, false, "Bytes a follower fetches per partition.", func(c *Config) any { return &c.ReplicaFetchMaxBytes }},
	{"replica.fetch.response.max.bytes", specIntGE0, false, "Bytes of a whole follower fetch response.", func(c *Config) any { return &c.ReplicaFetchResponseMaxBytes }},
	{"replica.fetch.backoff.ms", specIntGE0, false, "Pause after a follower's fetch fails.", func(c *Config) any { return &c.ReplicaFetchBackoffMs }},
	{"replica.high.watermark.checkpoint.interval.ms", specLongGE1, false, "How often high watermarks are written to disk.", func(c *Config) any { return &c.ReplicaHighWatermarkCheckpointMs }},
	{"auto.leader.rebalance.enable", specBool, false, "Move leadership back to preferred replicas when the imbalance is too high.", func(c *Config) any { return &c.AutoLeaderRebalanceEnable }},
	{"leader.imbalance.check.interval.seconds", specLongGE1, false, "How often the leader imbalance is checked.", func(c *Config) any { return &c.LeaderImbalanceCheckIntervalSecs }},
	{"leader.imbalance.per.broker.percentage", specIntGE0, false, "Imbalance (non-preferred leaders in percent) above which a rebalance runs.", func(c *Config) any { return &c.LeaderImbalancePerBrokerPercentage }},
	{"fetch.max.bytes", valueSpec{typ: kmsg.ConfigTypeInt, min: 1024}, false, "Largest fetch response.", func(c *Config) any { return &c.FetchMaxBytes }},
	{"max.connections", specIntGE0, true, "Most client connections the broker keeps open; a connection beyond it is closed at once (counted, logged at most every few seconds).", func(c *Config) any { return &c.MaxConnections }},
	{"max.connections.per.ip", specIntGE0, true, "Most connections from one IP address; a connection beyond it is closed at once.", func(c *Config) any { return &c.MaxConnectionsPerIp }},
	{"max.connections.per.ip.overrides", valueSpec{typ: kmsg.ConfigTypeString, check: checkConnOverrides}, true, "Per-IP or per-host exceptions to max.connections.per.ip, as `host:count,host:count`.", func(c *Config) any { return &c.MaxConnectionsPerIpOverrides }},
	{"queued.max.request.bytes", specLongGEm1, false, "Broker-wide budget for the bytes of requests being read or queued; a connection whose next request does not fit waits without allocating. " +
		"Kafka's default -1 (unbounded) lets a few stalled 100 MB requests take gigabytes, so Tributary defaults to 100 MiB, the size of one largest request (socket.request.max.bytes); " +
		"a request larger than the budget is still served when no other large request is in memory, and an eighth of the budget stays free for requests up to 1 MiB so small clients are served meanwhile. -1 (or 0) restores Kafka's unbounded behaviour.", func(c *Config) any { return &c.QueuedMaxRequestBytes }},
	{"http.listener", specString, false, "host:port of the console, /metrics, /healthz and /readyz (port 0: any free port; empty: no HTTP listener and no metrics). DescribeConfigs reports the bound address.", func(c *Config) any { return &c.HTTPListener }},
	{"console.write.enable", specBool, false, "Let the console create and delete topics and reset group offsets (POST with a CSRF token).", func(c *Config) any { return &c.ConsoleWriteEnable }},
	{"metrics.partition.series.max", specIntGE0, false, "Partitions (and group partitions) that get per-partition series in /metrics; the rest are counted in tributary_metrics_partition_series_omitted.", func(c *Config) any { return &c.MetricsPartitionSeriesMax }},
}

var brokerPropsByName = func() map[string]brokerProp {
	m := make(map[string]brokerProp, len(brokerProps))
	for _, p := range brokerProps {
		m[p.name] = p
	}
	return m
}()

// topicProp is one topic config: Kafka name, type, the broker
// properties it defaults to (its synonyms, most precise first), and a
// fixed default for configs no broker property backs.
type topicProp struct {
	name     string
	spec     valueSpec
	synonyms []string
	def      string
	doc      string
}

var topicProps = []topicProp{
	{"cleanup.policy", specCleanupPolicy, []string{"log.cleanup.policy"}, "", "delete, compact, or both."},
	{"compression.type", specCompression, []string{"compression.type"}, "", "Compression of stored batches; producer keeps what the producer sent."},
	{"compression.gzip.level", specGzipLevel, []string{"compression.gzip.level"}, "", "gzip level when compression.type=gzip (-1: codec default)."},
	{"compression.lz4.level", valueSpec{typ: kmsg.ConfigTypeInt, min: 1, max: 17}, []string{"compression.lz4.level"}, "", "lz4 level when compression.type=lz4."},
	{"compression.zstd.level", valueSpec{typ: kmsg.ConfigTypeInt, min: -131072, max: 22}, []string{"compression.zstd.level"}, "", "zstd level when compression.type=zstd."},
	{"delete.retention.ms", specLongGE0, []string{"log.cleaner.delete.retention.ms"}, "", "How long tombstones are kept after compaction."},
	{"file.delete.delay.ms", specLongGE0, []string{"log.segment.delete.delay.ms"}, "", "Delay before a deleted segment's files are removed."},
	{"flush.messages", specLongGE1, []string{"log.flush.interval.messages"}, "", "fsync after this many records."},
	{"flush.ms", specLongGE0, []string{"log.flush.interval.ms"}, "", "fsync when the oldest unflushed write is this old."},
	{"follower.replication.throttled.replicas", valueSpec{typ: kmsg.ConfigTypeList}, nil, "", "Replicas whose follower replication is throttled."},
	{"index.interval.bytes", specIntGE0, []string{"log.index.interval.bytes"}, "", "Bytes between offset index entries."},
	{"leader.replication.throttled.replicas", valueSpec{typ: kmsg.ConfigTypeList}, nil, "", "Replicas whose leader replication is throttled."},
	{"max.compaction.lag.ms", specLongGE1, []string{"log.cleaner.max.compaction.lag.ms"}, "", "Maximum time a record stays uncompacted."},
	{"max.message.bytes", specIntGE0, []string{"message.max.bytes"}, "", "Largest record batch accepted."},
	{"message.timestamp.after.max.ms", specLongGE0, []string{"log.message.timestamp.after.max.ms"}, "", "Largest allowed distance of a CreateTime timestamp into the future."},
	{"message.timestamp.before.max.ms", specLongGE0, []string{"log.message.timestamp.before.max.ms"}, "", "Largest allowed age of a CreateTime timestamp."},
	{"message.timestamp.type", specTimestampType, []string{"log.message.timestamp.type"}, "", "CreateTime or LogAppendTime."},
	{"min.cleanable.dirty.ratio", specRatio, []string{"log.cleaner.min.cleanable.ratio"}, "", "Dirty ratio above which the log is compacted."},
	{"min.compaction.lag.ms", specLongGE0, []string{"log.cleaner.min.compaction.lag.ms"}, "", "Minimum age of a record before it may be compacted."},
	{"min.insync.replicas", specIntGE1, []string{"min.insync.replicas"}, "", "Replicas that must acknowledge an acks=all write."},
	{"preallocate", specBool, []string{"log.preallocate"}, "", "Preallocate segment files."},
	{"retention.bytes", specLong, []string{"log.retention.bytes"}, "", "Delete old segments while the partition is larger than this; -1 = no limit."},
	{"retention.ms", specLongGEm1, []string{"log.retention.ms", "log.retention.minutes", "log.retention.hours"}, "", "Delete segments older than this; -1 keeps forever."},
	{"segment.bytes", specSegmentBytes, []string{"log.segment.bytes"}, "", "Largest size of one segment file."},
	{"segment.index.bytes", valueSpec{typ: kmsg.ConfigTypeInt, min: 4}, []string{"log.index.size.max.bytes"}, "", "Largest size of an offset index file."},
	{"segment.jitter.ms", specLongGE0, []string{"log.roll.jitter.ms", "log.roll.jitter.hours"}, "", "Maximum random jitter subtracted from segment.ms."},
	{"segment.ms", specLongGE1, []string{"log.roll.ms", "log.roll.hours"}, "", "Roll a new segment after this long even if it is not full."},
	{"unclean.leader.election.enable", specBool, []string{"unclean.leader.election.enable"}, "", "Allow an out-of-sync replica to become leader."},
}

var topicPropsByName = func() map[string]topicProp {
	m := make(map[string]topicProp, len(topicProps))
	for _, p := range topicProps {
		m[p.name] = p
	}
	return m
}()

// validateTopicConfig checks one topic config by name and value; the
// error text goes to clients with INVALID_CONFIG.
func validateTopicConfig(name string, value *string) error {
	p, ok := topicPropsByName[name]
	if !ok {
		return fmt.Errorf("unknown topic config name: %s", name)
	}
	if value == nil {
		return fmt.Errorf("null value not supported for topic config %s", name)
	}
	if err := p.spec.validate(*value); err != nil {
		return fmt.Errorf("invalid value %s for configuration %s: %v", *value, name, err)
	}
	return nil
}

// brokerValueLocked is the effective value of a broker property (dynamic
// configs applied). b.mu must be held.
func (b *Broker) brokerValueLocked(name string) string {
	v, _ := b.mu.eff.Get(name)
	return v
}

// topicValueLocked is the effective value of a topic config: the topic's
// override, else the broker default its synonyms give. b.mu must be held.
func (b *Broker) topicValueLocked(t *topic, p topicProp) string {
	if t != nil {
		if v, ok := t.configs[p.name]; ok {
			return v
		}
	}
	if len(p.synonyms) > 0 {
		return b.brokerValueLocked(p.synonyms[0])
	}
	return p.def
}

// topicConfigValue is the effective value of a topic config by Kafka
// name; ok is false for names that are not topic configs.
func (b *Broker) topicConfigValue(t *topic, name string) (string, bool) {
	p, ok := topicPropsByName[name]
	if !ok {
		return "", false
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.topicValueLocked(t, p), true
}

// storageConfig is the effective storage configuration of t's logs.
func (b *Broker) storageConfig(t *topic) storage.Config {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.storageConfigLocked(t)
}

func (b *Broker) storageConfigLocked(t *topic) storage.Config {
	i64 := func(name string) int64 {
		n, _ := strconv.ParseInt(b.topicValueLocked(t, topicPropsByName[name]), 10, 64)
		return n
	}
	retentionMs, retentionBytes := i64("retention.ms"), i64("retention.bytes")
	// Retention deletes segments only under cleanup.policy=delete: a
	// compact-only topic (__consumer_offsets) keeps its history, which
	// the cleaner (cleaner.go) compacts instead; compact,delete does both.
	policy := splitList(b.topicValueLocked(t, topicPropsByName["cleanup.policy"]))
	if !containsFold(policy, "delete") {
		retentionMs, retentionBytes = -1, -1
	}
	ratio, _ := strconv.ParseFloat(b.topicValueLocked(t, topicPropsByName["min.cleanable.dirty.ratio"]), 64)
	return storage.Config{
		SegmentBytes:           i64("segment.bytes"),
		SegmentMs:              i64("segment.ms"),
		RetentionMs:            retentionMs,
		RetentionBytes:         retentionBytes,
		IndexIntervalBytes:     int32(i64("index.interval.bytes")),
		SegmentIndexBytes:      int32(i64("segment.index.bytes")),
		FlushMessages:          i64("flush.messages"),
		FlushMs:                i64("flush.ms"),
		FileDeleteDelayMs:      i64("file.delete.delay.ms"),
		MaxMessageBytes:        int32(i64("max.message.bytes")),
		LogAppendTime:          b.topicValueLocked(t, topicPropsByName["message.timestamp.type"]) == "LogAppendTime",
		ProducerIDExpirationMs: b.mu.eff.ProducerIDExpirationMs,
		Compact:                containsFold(policy, "compact"),
		MinCleanableDirtyRatio: ratio,
		MinCompactionLagMs:     i64("min.compaction.lag.ms"),
		MaxCompactionLagMs:     i64("max.compaction.lag.ms"),
		DeleteRetentionMs:      i64("delete.retention.ms"),
	}
}

// sortedKeys returns m's keys in order, for deterministic output.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// effectiveConfig is the static configuration with the dynamic layers
// applied: the cluster-wide defaults, then this node's values. Within one
// layer log.retention.ms beats .minutes beats .hours; a dynamic value
// beats a static one whatever its unit.
func (b *Broker) effectiveConfig(cluster, node map[string]string) (Config, error) {
	c := b.cfg
	for _, layer := range []map[string]string{cluster, node} {
		c.unitLevel = nil
		for _, k := range sortedKeys(layer) {
			if err := c.Set(k, layer[k]); err != nil {
				return c, err
			}
		}
	}
	c.unitLevel = nil
	return c, nil
}
