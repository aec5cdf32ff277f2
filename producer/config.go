package producer

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/tributary/tributary/client"
	"github.com/tributary/tributary/internal/compress"
	"github.com/tributary/tributary/partitioner"
)

// Opt configures a Producer. New applies options in order and validates
// the result.
type Opt struct{ apply func(*cfg) }

// Codec is a record batch compression codec.
type Codec int8

// The codecs Kafka defines, with their attribute bit values.
const (
	NoCompression Codec = Codec(compress.None)
	Gzip          Codec = Codec(compress.Gzip)
	Snappy        Codec = Codec(compress.Snappy)
	LZ4           Codec = Codec(compress.LZ4)
	ZSTD          Codec = Codec(compress.ZSTD)
)

func (c Codec) String() string { return compress.Codec(c).String() }

// Acks values (Java: acks).
const (
	AcksNone   int16 = 0  // fire and forget: no response, offsets unknown
	AcksLeader int16 = 1  // the leader appended the batch
	AcksAll    int16 = -1 // every in-sync replica has the batch
)

type cfg struct {
	clientOpts          []client.Opt
	client              *client.Client
	batchSize           int
	linger              time.Duration
	codec               Codec
	acks                int16
	idempotent          bool
	idempotentSet       bool
	maxInFlight         int
	deliveryTimeout     time.Duration
	requestTimeout      time.Duration
	maxRequestSize      int
	bufferMemory        int64
	maxBlock            time.Duration
	nonBlocking         bool
	unknownTopicRetries int
	part                partitioner.Partitioner
	transactionalID     string
	txnTimeout          time.Duration
	txnTimeoutSet       bool
}

func defaultCfg() cfg {
	return cfg{
		batchSize:           16384,
		linger:              5 * time.Millisecond,
		codec:               NoCompression,
		acks:                AcksAll,
		idempotent:          true,
		maxInFlight:         5,
		deliveryTimeout:     120 * time.Second,
		requestTimeout:      30 * time.Second,
		maxRequestSize:      1048576,
		bufferMemory:        33554432,
		maxBlock:            60 * time.Second,
		unknownTopicRetries: 4,
		txnTimeout:          60 * time.Second,
	}
}

func (c *cfg) validate() error {
	if c.client == nil && len(c.clientOpts) == 0 {
		return errors.New("producer: no seed brokers (use SeedBrokers, ClientOptions or WithClient)")
	}
	if c.batchSize < 1 {
		return fmt.Errorf("producer: BatchSize must be positive, got %d", c.batchSize)
	}
	if c.linger < 0 {
		return fmt.Errorf("producer: Linger must not be negative, got %v", c.linger)
	}
	switch c.codec {
	case NoCompression, Gzip, Snappy, LZ4, ZSTD:
	default:
		return fmt.Errorf("producer: unknown compression codec %d", c.codec)
	}
	switch c.acks {
	case AcksNone, AcksLeader, AcksAll:
	default:
		return fmt.Errorf("producer: Acks must be -1 (all), 0 or 1, got %d", c.acks)
	}
	if c.transactionalID != "" {
		// Java: transactional.id requires (and implies) idempotence,
		// which requires acks=all.
		if c.idempotentSet && !c.idempotent {
			return errors.New("producer: TransactionalID requires idempotence; remove Idempotence(false)")
		}
		if c.acks != AcksAll {
			return fmt.Errorf("producer: TransactionalID requires Acks(AcksAll), got acks=%d", c.acks)
		}
		if c.txnTimeout < time.Millisecond || c.txnTimeout.Milliseconds() > math.MaxInt32 {
			return fmt.Errorf("producer: TransactionTimeout must be between 1ms and %d ms, got %v", int32(math.MaxInt32), c.txnTimeout)
		}
	} else if c.txnTimeoutSet {
		return errors.New("producer: TransactionTimeout needs TransactionalID")
	}
	if c.acks != AcksAll {
		// Java: idempotence needs acks=all; left at its default it is
		// switched off, asked for explicitly it is a config error.
		if c.idempotentSet && c.idempotent {
			return fmt.Errorf("producer: Idempotence requires Acks(AcksAll), got acks=%d", c.acks)
		}
		c.idempotent = false
	}
	if c.maxInFlight < 1 || (c.idempotent && c.maxInFlight > 5) {
		return fmt.Errorf("producer: MaxInFlight must be 1..5 with idempotence (1.. without), got %d", c.maxInFlight)
	}
	if c.requestTimeout <= 0 || c.deliveryTimeout <= 0 || c.maxBlock < 0 {
		return errors.New("producer: RequestTimeout and DeliveryTimeout must be positive, MaxBlock not negative")
	}
	if c.deliveryTimeout < c.linger+c.requestTimeout {
		return fmt.Errorf("producer: DeliveryTimeout %v must be at least Linger + RequestTimeout (%v)", c.deliveryTimeout, c.linger+c.requestTimeout)
	}
	if c.maxRequestSize < recordBatchOverhead+64 {
		return fmt.Errorf("producer: MaxRequestSize %d is too small", c.maxRequestSize)
	}
	if c.unknownTopicRetries < -1 {
		return fmt.Errorf("producer: UnknownTopicRetries must be -1 (wait MaxBlock) or more, got %d", c.unknownTopicRetries)
	}
	if c.bufferMemory < int64(c.batchSize) {
		return fmt.Errorf("producer: BufferMemory %d is below BatchSize %d", c.bufferMemory, c.batchSize)
	}
	if c.part == nil {
		c.part = partitioner.Default()
	}
	return nil
}

// SeedBrokers sets the brokers used to discover the cluster (Java:
// bootstrap.servers). Shorthand for ClientOptions(client.SeedBrokers(...)).
func SeedBrokers(addrs ...string) Opt {
	return ClientOptions(client.SeedBrokers(addrs...))
}

// ClientOptions passes options to the client the producer creates (TLS,
// SASL, ClientID, Logger, ...). Ignored with WithClient. The producer's
// client asks brokers to auto-create missing topics, as Java's producer
// does; pass client.AllowAutoTopicCreation(false) to stop that.
func ClientOptions(opts ...client.Opt) Opt {
	return Opt{func(c *cfg) { c.clientOpts = append(c.clientOpts, opts...) }}
}

// WithClient makes the producer use an existing client, which it does not
// close. Default: the producer creates and owns its own client.
func WithClient(cl *client.Client) Opt { return Opt{func(c *cfg) { c.client = cl }} }

// BatchSize sets the size in bytes at which a partition's batch is closed
// and becomes ready to send, whether or not Linger has passed. A record
// larger than this gets a batch of its own. Default 16384 (Java: batch.size).
func BatchSize(n int) Opt { return Opt{func(c *cfg) { c.batchSize = n }} }

// Linger sets how long a batch waits for more records before it is sent.
// Zero sends as soon as the connection allows, batching only what
// accumulates meanwhile. Default 5ms (Java 4.x: linger.ms).
func Linger(d time.Duration) Opt { return Opt{func(c *cfg) { c.linger = d }} }

// Compression sets the codec batches are compressed with.
// Default NoCompression (Java: compression.type=none).
func Compression(codec Codec) Opt { return Opt{func(c *cfg) { c.codec = codec }} }

// Acks sets how many replicas must have a batch before the broker answers:
// AcksAll (-1), AcksLeader (1) or AcksNone (0). Default AcksAll (Java: acks=all).
// Anything but AcksAll switches idempotence off unless it was asked for
// explicitly, which is then an error.
func Acks(acks int16) Opt { return Opt{func(c *cfg) { c.acks = acks }} }

// Idempotence makes the broker deduplicate retried batches by producer id
// and sequence number, so each record is written once and in order.
// Default true (Java: enable.idempotence=true).
func Idempotence(on bool) Opt {
	return Opt{func(c *cfg) { c.idempotent, c.idempotentSet = on, true }}
}

// MaxInFlight bounds the produce requests awaiting a response per broker,
// and so the batches in flight per partition. At most 5 with idempotence,
// the number of batches a broker remembers per producer.
// Default 5 (Java: max.in.flight.requests.per.connection).
func MaxInFlight(n int) Opt { return Opt{func(c *cfg) { c.maxInFlight = n }} }

// DeliveryTimeout bounds the time from Produce to the record's callback,
// retries included; a record not acknowledged by then fails with
// ErrDeliveryTimeout. Default 120s (Java: delivery.timeout.ms).
func DeliveryTimeout(d time.Duration) Opt { return Opt{func(c *cfg) { c.deliveryTimeout = d }} }

// RequestTimeout sets the produce request's timeout (how long the broker
// waits for replication with acks=all) and how long the client waits for an
// answer. Default 30s (Java: request.timeout.ms).
func RequestTimeout(d time.Duration) Opt {
	return Opt{func(c *cfg) {
		c.requestTimeout = d
		c.clientOpts = append(c.clientOpts, client.RequestTimeout(d))
	}}
}

// MaxRequestSize bounds a produce request, and so the largest record: a
// bigger record fails with ErrRecordTooLarge without being sent.
// Default 1048576 (Java: max.request.size).
func MaxRequestSize(n int) Opt { return Opt{func(c *cfg) { c.maxRequestSize = n }} }

// BufferMemory bounds the bytes of records buffered and awaiting delivery.
// When full, Produce blocks up to MaxBlock (or fails at once with
// NonBlocking). Default 33554432 (Java: buffer.memory).
func BufferMemory(n int64) Opt { return Opt{func(c *cfg) { c.bufferMemory = n }} }

// MaxBlock bounds how long Produce blocks for buffer space, and how long a
// record waits for its topic to appear in metadata before it fails.
// Default 60s (Java: max.block.ms).
func MaxBlock(d time.Duration) Opt { return Opt{func(c *cfg) { c.maxBlock = d }} }

// UnknownTopicRetries bounds how many metadata answers may call a topic
// UNKNOWN_TOPIC_OR_PARTITION while records wait for it: one more, and
// those records fail with tributary.ErrUnknownTopicOrPartition instead of
// waiting MaxBlock for a topic that does not exist. Answers are spaced by
// the client's RetryBackoff, so the default fails a missing topic in about
// a second and still gives an auto-created topic time to appear. -1 waits
// for MaxBlock. Default 4, like franz-go (no Java counterpart: Java waits
// max.block.ms).
func UnknownTopicRetries(n int) Opt { return Opt{func(c *cfg) { c.unknownTopicRetries = n }} }

// NonBlocking makes Produce fail a record at once with ErrBufferFull
// instead of blocking when BufferMemory is used up. Default: block.
func NonBlocking() Opt { return Opt{func(c *cfg) { c.nonBlocking = true }} }

// Partitioner sets how records are spread over partitions.
// Default partitioner.Default(): murmur2 for keyed records, as Java does,
// and uniform sticky for keyless ones (Java: partitioner.class unset).
func Partitioner(p partitioner.Partitioner) Opt { return Opt{func(c *cfg) { c.part = p }} }

// TransactionalID makes the producer transactional (Java:
// transactional.id): records are produced only between BeginTxn and
// CommitTxn or AbortTxn, and become visible to read_committed consumers
// all at once on commit, never if aborted. The id names the producer
// across restarts: a new producer with the same id fences the old one
// (ErrFenced) and aborts its open transaction, so a restarted instance
// cannot race its zombie predecessor. Implies Idempotence(true) and needs
// Acks(AcksAll); New refuses Idempotence(false) or other acks with it.
// Default: none, the producer is not transactional.
func TransactionalID(id string) Opt { return Opt{func(c *cfg) { c.transactionalID = id }} }

// TransactionTimeout is how long the transaction coordinator lets a
// transaction stay open before it aborts it on its own; the broker caps
// it with transaction.max.timeout.ms (INVALID_TRANSACTION_TIMEOUT).
// Only with TransactionalID. Default 60s (Java: transaction.timeout.ms).
func TransactionTimeout(d time.Duration) Opt {
	return Opt{func(c *cfg) { c.txnTimeout, c.txnTimeoutSet = d, true }}
}
