package broker

import (
	"log/slog"
	"net"
	"time"
)

// Config is the broker's configuration. Field comments give the Kafka
// property each field mirrors; the properties file and --override flags of
// `tributary broker` use those names, and so do DescribeConfigs and
// IncrementalAlterConfigs for dynamic broker configs.
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

	LogSegmentBytes             int64  // log.segment.bytes (1073741824)
	LogRollMs                   int64  // log.roll.ms (604800000)
	LogRetentionMs              int64  // log.retention.ms (604800000, -1 = forever)
	LogRetentionBytes           int64  // log.retention.bytes (-1)
	LogRetentionCheckIntervalMs int64  // log.retention.check.interval.ms (300000)
	LogCleanupPolicy            string // log.cleanup.policy (delete)
	LogIndexIntervalBytes       int32  // log.index.interval.bytes (4096)
	LogIndexSizeMaxBytes        int32  // log.index.size.max.bytes (10485760)
	LogFlushIntervalMessages    int64  // log.flush.interval.messages (Long.MAX: leave it to the OS)
	LogFlushIntervalMs          int64  // log.flush.interval.ms (unset = Long.MAX)
	LogSegmentDeleteDelayMs     int64  // log.segment.delete.delay.ms (60000)
	LogMessageTimestampType     string // log.message.timestamp.type (CreateTime)
	MessageMaxBytes             int32  // message.max.bytes (1048588)
	CompressionType             string // compression.type (producer)
	ProducerIDExpirationMs      int64  // producer.id.expiration.ms (86400000)

	SocketRequestMaxBytes int32 // socket.request.max.bytes (104857600)
	FetchMaxBytes         int32 // fetch.max.bytes (57671680)

	// Listener, when set, is used instead of opening Listeners: tests and
	// embedders hand the broker a socket they opened (127.0.0.1:0).
	Listener net.Listener
	// Logger receives the broker's logs; nil means slog.Default().
	Logger *slog.Logger
	// ShutdownTimeout bounds how long Close waits for connections to
	// drain (default 10s).
	ShutdownTimeout time.Duration
}

// DefaultConfig returns Kafka's defaults, adjusted only where a laptop
// broker needs it (listen on 127.0.0.1, keep data in ./tributary-data).
func DefaultConfig() Config {
	return Config{
		NodeID:                      1,
		Listeners:                   "PLAINTEXT://127.0.0.1:9092",
		LogDirs:                     []string{"./tributary-data"},
		NumPartitions:               1,
		DefaultReplicationFactor:    1,
		AutoCreateTopicsEnable:      true,
		LogSegmentBytes:             1 << 30,
		LogRollMs:                   7 * 24 * 3600 * 1000,
		LogRetentionMs:              7 * 24 * 3600 * 1000,
		LogRetentionBytes:           -1,
		LogRetentionCheckIntervalMs: 300000,
		LogCleanupPolicy:            "delete",
		LogIndexIntervalBytes:       4096,
		LogIndexSizeMaxBytes:        10 << 20,
		LogFlushIntervalMessages:    1<<63 - 1,
		LogFlushIntervalMs:          1<<63 - 1,
		LogSegmentDeleteDelayMs:     60000,
		LogMessageTimestampType:     "CreateTime",
		MessageMaxBytes:             1048588,
		CompressionType:             "producer",
		ProducerIDExpirationMs:      86400000,
		SocketRequestMaxBytes:       104857600,
		FetchMaxBytes:               57671680,
		ShutdownTimeout:             10 * time.Second,
	}
}
