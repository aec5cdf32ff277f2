package broker

import (
	"context"
	"errors"
	"fmt"
	"github.com/tributary/tributary/broker/controller"
	"log/slog"
	"math"
	"net"
	"strconv"
	"strings"
	"time"
)

// Config is the broker's configuration. Field comments give the Kafka
// property each field mirrors; the properties file and --override flags of
// `tributary broker` use those names (see Set), and so do DescribeConfigs
// and IncrementalAlterConfigs for dynamic broker configs.
//
// Topic-level settings (segment.bytes, retention.ms, ...) default to the
// log.* values here and can be overridden per topic.
type Config struct {
	NodeID              int32    // node.id (default 1)
	Listeners           string   // listeners (default PLAINTEXT://127.0.0.1:9092)
	AdvertisedListeners string   // advertised.listeners (default: listeners)
	LogDirs             []string // log.dirs (default ./tributary-data); only the first is used today
	ClusterID           string   // cluster id; generated and stored in meta.properties when empty

	NumPartitions            int32 // num.partitions (1)
	DefaultReplicationFactor int16 // default.replication.factor (1)
	AutoCreateTopicsEnable   bool  // auto.create.topics.enable (true)

	LogSegmentBytes                int64   // log.segment.bytes (1073741824)
	LogRollMs                      int64   // log.roll.ms (604800000); also log.roll.hours
	LogRollJitterMs                int64   // log.roll.jitter.ms (0)
	LogRetentionMs                 int64   // log.retention.ms (604800000, -1 = forever); also .minutes, .hours
	LogRetentionBytes              int64   // log.retention.bytes (-1)
	LogRetentionCheckIntervalMs    int64   // log.retention.check.interval.ms (300000)
	LogCleanupPolicy               string  // log.cleanup.policy (delete)
	LogIndexIntervalBytes          int32   // log.index.interval.bytes (4096)
	LogIndexSizeMaxBytes           int32   // log.index.size.max.bytes (10485760)
	LogFlushIntervalMessages       int64   // log.flush.interval.messages (Long.MAX: leave it to the OS)
	LogFlushIntervalMs             int64   // log.flush.interval.ms (unset = Long.MAX)
	LogSegmentDeleteDelayMs        int64   // log.segment.delete.delay.ms (60000)
	LogMessageTimestampType        string  // log.message.timestamp.type (CreateTime)
	LogMessageTimestampBeforeMaxMs int64   // log.message.timestamp.before.max.ms (Long.MAX)
	LogMessageTimestampAfterMaxMs  int64   // log.message.timestamp.after.max.ms (3600000)
	LogPreallocate                 bool    // log.preallocate (false)
	LogCleanerDeleteRetentionMs    int64   // log.cleaner.delete.retention.ms (86400000)
	LogCleanerMinCompactionLagMs   int64   // log.cleaner.min.compaction.lag.ms (0)
	LogCleanerMaxCompactionLagMs   int64   // log.cleaner.max.compaction.lag.ms (Long.MAX)
	LogCleanerMinCleanableRatio    float64 // log.cleaner.min.cleanable.ratio (0.5)
	MinInsyncReplicas              int32   // min.insync.replicas (1)
	UncleanLeaderElectionEnable    bool    // unclean.leader.election.enable (false)
	MessageMaxBytes                int32   // message.max.bytes (1048588)
	CompressionType                string  // compression.type (producer)
	CompressionGzipLevel           int32   // compression.gzip.level (-1 = codec default)
	CompressionLz4Level            int32   // compression.lz4.level (9)
	CompressionZstdLevel           int32   // compression.zstd.level (3)
	ProducerIDExpirationMs         int64   // producer.id.expiration.ms (86400000)

	// The log cleaner (cleaner.go); the topic-level compaction settings
	// are the log.cleaner.* defaults above.
	LogCleanerEnable              bool    // log.cleaner.enable (true)
	LogCleanerThreads             int32   // log.cleaner.threads (1)
	LogCleanerBackoffMs           int64   // log.cleaner.backoff.ms (15000)
	LogCleanerDedupeBufferSize    int64   // log.cleaner.dedupe.buffer.size (134217728), shared by the threads
	LogCleanerIoMaxBytesPerSecond float64 // log.cleaner.io.max.bytes.per.second (Double.MAX: unthrottled)

	// Transaction coordinator (txncoord.go). The state topic settings
	// apply when __transaction_state is created.
	TransactionStateLogNumPartitions          int32 // transaction.state.log.num.partitions (50)
	TransactionStateLogReplicationFactor      int16 // transaction.state.log.replication.factor (1; Kafka's 3 cannot be met by one node)
	TransactionStateLogMinIsr                 int32 // transaction.state.log.min.isr (1; Kafka's 2)
	TransactionStateLogSegmentBytes           int32 // transaction.state.log.segment.bytes (104857600)
	TransactionMaxTimeoutMs                   int32 // transaction.max.timeout.ms (900000)
	TransactionAbortTimedOutCleanupIntervalMs int32 // transaction.abort.timed.out.transaction.cleanup.interval.ms (10000)
	TransactionRemoveExpiredCleanupIntervalMs int32 // transaction.remove.expired.transaction.cleanup.interval.ms (3600000)
	TransactionalIDExpirationMs               int32 // transactional.id.expiration.ms (604800000)

	// Group coordinator (groups.go). The offsets topic settings apply when
	// __consumer_offsets is created; an existing topic keeps its own.
	OffsetsTopicNumPartitions       int32 // offsets.topic.num.partitions (50)
	OffsetsTopicReplicationFactor   int16 // offsets.topic.replication.factor (1; Kafka's 3 cannot be met by one node)
	OffsetsTopicSegmentBytes        int32 // offsets.topic.segment.bytes (104857600)
	OffsetsRetentionMinutes         int32 // offsets.retention.minutes (10080)
	OffsetsRetentionCheckIntervalMs int64 // offsets.retention.check.interval.ms (600000)
	OffsetMetadataMaxBytes          int32 // offset.metadata.max.bytes (4096)
	GroupInitialRebalanceDelayMs    int32 // group.initial.rebalance.delay.ms (3000)
	GroupMinSessionTimeoutMs        int32 // group.min.session.timeout.ms (6000)
	GroupMaxSessionTimeoutMs        int32 // group.max.session.timeout.ms (1800000)
	GroupMaxSize                    int32 // group.max.size (Integer.MAX)

	SocketRequestMaxBytes int32 // socket.request.max.bytes (104857600)
	ConnectionsMaxIdleMs  int64 // connections.max.idle.ms (600000): close a connection that sends nothing for this long
	FetchMaxBytes         int32 // fetch.max.bytes (57671680)

	// Cluster (KRaft's keys). Every node today is a combined
	// broker+controller: a voter of the metadata quorum and a broker.
	ProcessRoles                       []string // process.roles (broker,controller)
	ControllerQuorumVoters             string   // controller.quorum.voters: id@host:port,...; empty = this node alone
	ControllerListenerNames            string   // controller.listener.names (CONTROLLER)
	BrokerRack                         string   // broker.rack (none)
	BrokerSessionTimeoutMs             int32    // broker.session.timeout.ms (9000)
	BrokerHeartbeatIntervalMs          int32    // broker.heartbeat.interval.ms (2000)
	ReplicaLagTimeMaxMs                int64    // replica.lag.time.max.ms (30000)
	ReplicaFetchWaitMaxMs              int32    // replica.fetch.wait.max.ms (500)
	ReplicaFetchMinBytes               int32    // replica.fetch.min.bytes (1)
	ReplicaFetchMaxBytes               int32    // replica.fetch.max.bytes (1048576)
	ReplicaFetchResponseMaxBytes       int32    // replica.fetch.response.max.bytes (10485760)
	ReplicaFetchBackoffMs              int32    // replica.fetch.backoff.ms (1000)
	ReplicaHighWatermarkCheckpointMs   int64    // replica.high.watermark.checkpoint.interval.ms (5000)
	AutoLeaderRebalanceEnable          bool     // auto.leader.rebalance.enable (true)
	LeaderImbalanceCheckIntervalSecs   int64    // leader.imbalance.check.interval.seconds (300)
	LeaderImbalancePerBrokerPercentage int32    // leader.imbalance.per.broker.percentage (10)
	// Connection and request-memory limits (connlimit.go, membudget.go).
	MaxConnections               int32  // max.connections (Integer.MAX)
	MaxConnectionsPerIp          int32  // max.connections.per.ip (Integer.MAX)
	MaxConnectionsPerIpOverrides string // max.connections.per.ip.overrides ("host:count,...")
	QueuedMaxRequestBytes        int64  // queued.max.request.bytes (104857600; Kafka's -1 = unbounded)
	// How often recovery points and log start offsets reach their
	// checkpoint files (checkpointLoop).
	LogFlushOffsetCheckpointIntervalMs      int32 // log.flush.offset.checkpoint.interval.ms (60000)
	LogFlushStartOffsetCheckpointIntervalMs int32 // log.flush.start.offset.checkpoint.interval.ms (60000)
	// Observability (observe.go): the HTTP listener serving the console,
	// /metrics, /healthz and /readyz.
	HTTPListener              string // http.listener (127.0.0.1:9644; "" disables it and the metrics)
	ConsoleWriteEnable        bool   // console.write.enable (false): the console may create/delete topics and reset offsets
	MetricsPartitionSeriesMax int32  // metrics.partition.series.max (2000): partitions with per-partition series

	// Listener, when set, is used instead of opening Listeners: tests and
	// embedders hand the broker a socket they opened (127.0.0.1:0).
	Listener net.Listener
	// ControllerListener, when set, is used instead of opening the
	// controller listener named in Listeners (tests hand the broker a
	// socket on 127.0.0.1:0, as with Listener).
	ControllerListener net.Listener
	// Dial opens the broker's own connections to other nodes (follower
	// fetches, the controller quorum); nil means a net.Dialer. Tests use
	// it to cut a node off the network.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Logger receives the broker's logs; nil means slog.Default().
	Logger *slog.Logger
	// Announce, when set, is called once the broker serves, in place of
	// its INFO lines saying where it listens (the Kafka and the HTTP
	// listener): the tributary command prints its own line, which
	// scripts wait for, and the address is then said once.
	Announce func(b *Broker)
	// ShutdownTimeout bounds how long Close waits for connections to
	// drain (default 10s).
	ShutdownTimeout time.Duration

	// unitLevel records which spelling of a time property set it, so that
	// log.retention.ms beats .minutes beats .hours (and log.roll.ms beats
	// log.roll.hours) whatever order they appear in, as in Kafka.
	unitLevel map[string]int
}

// DefaultConfig returns Kafka's defaults, adjusted only where a laptop
// broker needs it (listen on 127.0.0.1, keep data in ./tributary-data).
func DefaultConfig() Config {
	return Config{
		NodeID:                                    1,
		Listeners:                                 "PLAINTEXT://127.0.0.1:9092",
		LogDirs:                                   []string{"./tributary-data"},
		NumPartitions:                             1,
		DefaultReplicationFactor:                  1,
		AutoCreateTopicsEnable:                    true,
		LogSegmentBytes:                           1 << 30,
		LogRollMs:                                 7 * 24 * 3600 * 1000,
		LogRetentionMs:                            7 * 24 * 3600 * 1000,
		LogRetentionBytes:                         -1,
		LogRetentionCheckIntervalMs:               300000,
		LogCleanupPolicy:                          "delete",
		LogIndexIntervalBytes:                     4096,
		LogIndexSizeMaxBytes:                      10 << 20,
		LogFlushIntervalMessages:                  math.MaxInt64,
		LogFlushIntervalMs:                        math.MaxInt64,
		LogSegmentDeleteDelayMs:                   60000,
		LogMessageTimestampType:                   "CreateTime",
		LogMessageTimestampBeforeMaxMs:            math.MaxInt64,
		LogMessageTimestampAfterMaxMs:             3600000,
		LogCleanerDeleteRetentionMs:               86400000,
		LogCleanerMaxCompactionLagMs:              math.MaxInt64,
		LogCleanerMinCleanableRatio:               0.5,
		LogCleanerEnable:                          true,
		LogCleanerThreads:                         1,
		LogCleanerBackoffMs:                       15000,
		LogCleanerDedupeBufferSize:                128 << 20,
		LogCleanerIoMaxBytesPerSecond:             math.MaxFloat64,
		MinInsyncReplicas:                         1,
		MessageMaxBytes:                           1048588,
		CompressionType:                           "producer",
		CompressionGzipLevel:                      -1,
		CompressionLz4Level:                       9,
		CompressionZstdLevel:                      3,
		ProducerIDExpirationMs:                    86400000,
		TransactionStateLogNumPartitions:          50,
		TransactionStateLogReplicationFactor:      1,
		TransactionStateLogMinIsr:                 1,
		TransactionStateLogSegmentBytes:           104857600,
		TransactionMaxTimeoutMs:                   900000,
		TransactionAbortTimedOutCleanupIntervalMs: 10000,
		TransactionRemoveExpiredCleanupIntervalMs: 3600000,
		TransactionalIDExpirationMs:               604800000,
		OffsetsTopicNumPartitions:                 50,
		OffsetsTopicReplicationFactor:             1,
		OffsetsTopicSegmentBytes:                  104857600,
		OffsetsRetentionMinutes:                   7 * 24 * 60,
		OffsetsRetentionCheckIntervalMs:           600000,
		OffsetMetadataMaxBytes:                    4096,
		GroupInitialRebalanceDelayMs:              3000,
		GroupMinSessionTimeoutMs:                  6000,
		GroupMaxSessionTimeoutMs:                  1800000,
		GroupMaxSize:                              math.MaxInt32,
		SocketRequestMaxBytes:                     104857600,
		ConnectionsMaxIdleMs:                      600000,
		FetchMaxBytes:                             57671680,
		MaxConnections:                            math.MaxInt32,
		MaxConnectionsPerIp:                       math.MaxInt32,
		QueuedMaxRequestBytes:                     defaultQueuedMaxRequestBytes,
		HTTPListener:                              "127.0.0.1:9644",
		MetricsPartitionSeriesMax:                 2000,
		ShutdownTimeout:                           10 * time.Second,

		ProcessRoles:                            []string{"broker", "controller"},
		ControllerListenerNames:                 "CONTROLLER",
		BrokerSessionTimeoutMs:                  9000,
		BrokerHeartbeatIntervalMs:               2000,
		ReplicaLagTimeMaxMs:                     30000,
		ReplicaFetchWaitMaxMs:                   500,
		ReplicaFetchMinBytes:                    1,
		ReplicaFetchMaxBytes:                    1048576,
		ReplicaFetchResponseMaxBytes:            10485760,
		ReplicaFetchBackoffMs:                   1000,
		ReplicaHighWatermarkCheckpointMs:        5000,
		AutoLeaderRebalanceEnable:               true,
		LeaderImbalanceCheckIntervalSecs:        300,
		LeaderImbalancePerBrokerPercentage:      10,
		LogFlushOffsetCheckpointIntervalMs:      60000,
		LogFlushStartOffsetCheckpointIntervalMs: 60000,
	}
}

// Set sets one broker property by its Kafka name, validating the value
// the way Kafka does. log.retention.hours/.minutes and log.roll.hours are
// accepted and converted; the more precise spelling wins whatever the
// order. An unknown name gives an error wrapping errUnknownConfig, which
// the properties loader logs and ignores, as Kafka does.
func (c *Config) Set(key, value string) error {
	key = strings.TrimSpace(key)
	value = strings.TrimSpace(value)
	if u, ok := unitAliases[key]; ok {
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return fmt.Errorf("%s: %q is not a number", key, value)
		}
		if n < -1 {
			return fmt.Errorf("%s: %d is below -1", key, n)
		}
		if c.unitLevel[u.target] > u.level {
			return nil // a more precise spelling was already set
		}
		ms := n
		if n > 0 {
			if n > math.MaxInt64/u.factor {
				ms = math.MaxInt64
			} else {
				ms = n * u.factor
			}
		}
		if err := c.Set(u.target, strconv.FormatInt(ms, 10)); err != nil {
			return err
		}
		c.setLevel(u.target, u.level)
		return nil
	}
	if key == "log.dir" { // log.dirs wins when both are given
		if c.unitLevel["log.dirs"] > 0 {
			return nil
		}
		return brokerPropsByName["log.dirs"].set(c, value)
	}
	p, ok := brokerPropsByName[key]
	if !ok {
		return fmt.Errorf("%w: %s", errUnknownConfig, key)
	}
	if err := p.set(c, value); err != nil {
		return err
	}
	if unitTargets[key] || key == "log.dirs" {
		c.setLevel(key, 3)
	}
	return nil
}

func (c *Config) setLevel(key string, level int) {
	if c.unitLevel == nil {
		c.unitLevel = map[string]int{}
	}
	c.unitLevel[key] = level
}

// Get returns the value of a broker property as Kafka prints it.
func (c *Config) Get(key string) (string, bool) {
	p, ok := brokerPropsByName[key]
	if !ok {
		return "", false
	}
	return p.get(c), true
}

var errUnknownConfig = errors.New("unknown config")

type unitAlias struct {
	target string
	factor int64
	level  int // ms = 3 beats minutes = 2 beats hours = 1
}

var unitAliases = map[string]unitAlias{
	"log.retention.hours":   {"log.retention.ms", 3600000, 1},
	"log.retention.minutes": {"log.retention.ms", 60000, 2},
	"log.roll.hours":        {"log.roll.ms", 3600000, 1},
	"log.roll.jitter.hours": {"log.roll.jitter.ms", 3600000, 1},
}

var unitTargets = map[string]bool{"log.retention.ms": true, "log.roll.ms": true, "log.roll.jitter.ms": true}

// validate checks cross-field rules and fills derived defaults.
func (c *Config) validate() error {
	if len(c.LogDirs) == 0 || c.LogDirs[0] == "" {
		return errors.New("broker: log.dirs is empty")
	}
	if c.NodeID < 0 {
		return fmt.Errorf("broker: node.id %d is negative", c.NodeID)
	}
	if c.Listener == nil {
		if _, err := parseListeners(c.Listeners); err != nil {
			return err
		}
	}
	if c.AdvertisedListeners != "" {
		if _, err := parseListeners(c.AdvertisedListeners); err != nil {
			return fmt.Errorf("broker: advertised.listeners: %w", err)
		}
	}
	// Every property must hold a value its own validation accepts: a
	// Config built in Go skips Set.
	for _, p := range brokerProps {
		if err := p.spec.validate(p.get(c)); err != nil {
			return fmt.Errorf("broker: %s: %w", p.name, err)
		}
	}
	voters, err := parseVoters(c.ControllerQuorumVoters)
	if err != nil {
		return err
	}
	if len(voters) > 0 {
		if _, ok := voters[c.NodeID]; !ok {
			return fmt.Errorf("broker: node.id %d is not in controller.quorum.voters %q (every node is a combined broker and controller)", c.NodeID, c.ControllerQuorumVoters)
		}
		if _, ok := c.controllerListener(); !ok && c.ControllerListener == nil {
			return fmt.Errorf("broker: controller.quorum.voters is set but listeners has no %s listener", c.ControllerListenerNames)
		}
	}
	if !containsFold(c.ProcessRoles, "broker") || !containsFold(c.ProcessRoles, "controller") {
		return fmt.Errorf("broker: process.roles=%s: only combined nodes (broker,controller) are supported", strings.Join(c.ProcessRoles, ","))
	}
	if c.MaxConnectionsPerIp == 0 && c.MaxConnectionsPerIpOverrides == "" {
		return errors.New("broker: max.connections.per.ip is 0 but max.connections.per.ip.overrides is empty: no connection could be accepted")
	}
	if c.SocketRequestMaxBytes < 1024 {
		return fmt.Errorf("broker: socket.request.max.bytes %d is too small", c.SocketRequestMaxBytes)
	}
	return nil
}

// listener is one parsed entry of listeners / advertised.listeners.
type listener struct {
	name string // PLAINTEXT
	host string
	port int32
}

func (l listener) hostPort() string {
	return net.JoinHostPort(l.host, strconv.Itoa(int(l.port)))
}

// parseListeners parses Kafka's listeners syntax,
// NAME://host:port[,NAME://host:port...], and returns the first PLAINTEXT
// one (the only security protocol served today).
func parseListeners(s string) (listener, error) {
	ls, err := parseListenerList(s)
	if err != nil {
		return listener{}, err
	}
	for _, l := range ls {
		if l.name == "PLAINTEXT" {
			return l, nil
		}
	}
	if len(ls) == 0 {
		return listener{}, errors.New("broker: no listener configured")
	}
	return listener{}, fmt.Errorf("broker: no PLAINTEXT listener in %q (only PLAINTEXT is supported)", s)
}

// parseListenerList parses every entry of Kafka's listeners syntax.
func parseListenerList(s string) ([]listener, error) {
	var out []listener
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, hp, ok := strings.Cut(part, "://")
		if !ok {
			return nil, fmt.Errorf("broker: listener %q is not NAME://host:port", part)
		}
		host, port, err := net.SplitHostPort(hp)
		if err != nil {
			return nil, fmt.Errorf("broker: listener %q: %v", part, err)
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("broker: listener %q: bad port", part)
		}
		out = append(out, listener{name: strings.ToUpper(name), host: host, port: int32(p)})
	}
	return out, nil
}

// controllerListener returns the listener named by
// controller.listener.names, if Listeners has one.
func (c *Config) controllerListener() (listener, bool) {
	ls, err := parseListenerList(c.Listeners)
	if err != nil {
		return listener{}, false
	}
	for _, name := range splitList(c.ControllerListenerNames) {
		for _, l := range ls {
			if strings.EqualFold(l.name, name) {
				return l, true
			}
		}
	}
	return listener{}, false
}

// parseVoters parses controller.quorum.voters (controller.ParseVoters);
// empty means a node alone.
func parseVoters(s string) (map[int32]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	v, err := controller.ParseVoters(s)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	return v, nil
}
