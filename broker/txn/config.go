package txn

import (
	"errors"
	"fmt"
	"time"
)

// Config holds the transaction coordinator settings, named after and
// defaulting to Kafka's broker configuration. Start from DefaultConfig and
// change what you need; New rejects zero or negative values instead of
// reading them as "use the default".
type Config struct {
	// NumPartitions is the number of __transaction_state partitions
	// (transaction.state.log.num.partitions, default 50). It decides which
	// partition, and so which coordinator, holds a transactional id.
	NumPartitions int32

	// MaxTimeoutMs bounds the transaction timeout a producer may ask for
	// in InitProducerId; above it the answer is INVALID_TRANSACTION_TIMEOUT
	// (transaction.max.timeout.ms, default 900000 = 15 minutes).
	MaxTimeoutMs int32

	// AbortCheckInterval is how often Tick looks for ongoing transactions
	// older than their timeout and aborts them
	// (transaction.abort.timed.out.transaction.cleanup.interval.ms,
	// default 10s).
	AbortCheckInterval time.Duration

	// ExpirationMs is how long a transactional id may stay idle (no
	// transaction, no InitProducerId) before Tick forgets it and writes a
	// tombstone (transactional.id.expiration.ms, default 604800000 = 7
	// days).
	ExpirationMs int64

	// RemoveExpiredInterval is how often Tick looks for idle transactional
	// ids to expire
	// (transaction.remove.expired.transaction.cleanup.interval.ms, default
	// 3600000 = 1 hour).
	RemoveExpiredInterval time.Duration

	// AllocateProducerID returns a fresh producer id (the broker's
	// allocator). An error that is a *tributary.Error is answered with its
	// code; any other error with UNKNOWN_SERVER_ERROR. Required.
	AllocateProducerID func() (int64, error)

	// GroupPartition maps a consumer group to its __consumer_offsets
	// partition: AddOffsetsToTxn adds that partition to the transaction,
	// so the commit or abort marker also lands there. Required.
	GroupPartition func(group string) int32

	// PartitionExists, when set, is asked for every partition of an
	// AddPartitionsToTxn; a transaction naming a partition that does not
	// exist fails as Kafka fails it: UNKNOWN_TOPIC_OR_PARTITION for the
	// missing partitions, OPERATION_NOT_ATTEMPTED for the others, and
	// nothing is added. Nil treats every partition as existing (the owner
	// then checks before calling).
	PartitionExists func(topic string, partition int32) bool
}

// DefaultConfig returns Kafka's defaults. AllocateProducerID and
// GroupPartition have no default and must be set before New.
func DefaultConfig() Config {
	return Config{
		NumPartitions:         50,
		MaxTimeoutMs:          900000,
		AbortCheckInterval:    10 * time.Second,
		ExpirationMs:          604800000,
		RemoveExpiredInterval: time.Hour,
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.NumPartitions <= 0 {
		errs = append(errs, fmt.Errorf("NumPartitions %d must be positive", c.NumPartitions))
	}
	if c.MaxTimeoutMs <= 0 {
		errs = append(errs, fmt.Errorf("MaxTimeoutMs %d must be positive", c.MaxTimeoutMs))
	}
	if c.AbortCheckInterval <= 0 {
		errs = append(errs, fmt.Errorf("AbortCheckInterval %v must be positive", c.AbortCheckInterval))
	}
	if c.ExpirationMs <= 0 {
		errs = append(errs, fmt.Errorf("ExpirationMs %d must be positive", c.ExpirationMs))
	}
	if c.RemoveExpiredInterval <= 0 {
		errs = append(errs, fmt.Errorf("RemoveExpiredInterval %v must be positive", c.RemoveExpiredInterval))
	}
	if c.AllocateProducerID == nil {
		errs = append(errs, errors.New("AllocateProducerID must be set"))
	}
	if c.GroupPartition == nil {
		errs = append(errs, errors.New("GroupPartition must be set"))
	}
	return errors.Join(errs...)
}
