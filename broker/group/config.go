package group

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"time"
)

// Config holds the group coordinator settings, named after and defaulting to
// Kafka's broker configuration. Start from DefaultConfig and change what
// you need; New rejects a zero or negative value instead of reading it as
// "use the default".
type Config struct {
	// OffsetsTopicPartitions is the number of __consumer_offsets
	// partitions (offsets.topic.num.partitions, default 50). It decides
	// which partition each Record belongs to.
	OffsetsTopicPartitions int32

	// InitialRebalanceDelay is how long a rebalance of an empty group
	// waits for more members before completing, extended by the same
	// amount each time a new member joins, up to the group's rebalance
	// timeout (group.initial.rebalance.delay.ms, default 3s). Zero is
	// allowed and means no delay.
	InitialRebalanceDelay time.Duration

	// MinSessionTimeout and MaxSessionTimeout bound the session timeout a
	// member may ask for; outside them JoinGroup answers
	// INVALID_SESSION_TIMEOUT (group.min.session.timeout.ms, default 6s;
	// group.max.session.timeout.ms, default 30min).
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration

	// MaxSize is the most members a group may have; a join beyond it gets
	// GROUP_MAX_SIZE_REACHED (group.max.size, default Integer.MAX_VALUE).
	MaxSize int

	// OffsetMetadataMaxBytes is the longest metadata string an offset
	// commit may carry; longer gets OFFSET_METADATA_TOO_LARGE
	// (offset.metadata.max.bytes, default 4096).
	OffsetMetadataMaxBytes int

	// OffsetsRetention is how long committed offsets are kept once their
	// group is empty, or since the commit for groups that do not use
	// group management (offsets.retention.minutes, default 7 days).
	OffsetsRetention time.Duration

	// OffsetsRetentionCheckInterval is how often expired offsets are
	// looked for (offsets.retention.check.interval.ms, default 10min).
	OffsetsRetentionCheckInterval time.Duration

	// NewUUID returns the random part of generated member ids
	// ("clientId-<uuid>", or "instanceId-<uuid>" for static members, as
	// Kafka builds them). The default is a random version-4 UUID; tests
	// replace it to make member ids predictable.
	NewUUID func() string
}

// newMemberJoinTimeout is how long a brand-new member's parked JoinGroup
// keeps it in the group. New members cannot heartbeat (they have no id yet)
// and the socket is muted while the join is parked, so without this a
// client that gave up and retried would leave defunct members behind. Kafka
// hard-codes the same 5 minutes (classic.group.new.member.join.timeout.ms).
const newMemberJoinTimeout = 5 * time.Minute

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		OffsetsTopicPartitions:        50,
		InitialRebalanceDelay:         3 * time.Second,
		MinSessionTimeout:             6 * time.Second,
		MaxSessionTimeout:             30 * time.Minute,
		MaxSize:                       math.MaxInt32,
		OffsetMetadataMaxBytes:        4096,
		OffsetsRetention:              7 * 24 * time.Hour,
		OffsetsRetentionCheckInterval: 10 * time.Minute,
		NewUUID:                       randomUUID,
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.OffsetsTopicPartitions <= 0 {
		errs = append(errs, fmt.Errorf("OffsetsTopicPartitions %d must be positive", c.OffsetsTopicPartitions))
	}
	if c.InitialRebalanceDelay < 0 {
		errs = append(errs, fmt.Errorf("InitialRebalanceDelay %v must not be negative", c.InitialRebalanceDelay))
	}
	if c.MinSessionTimeout <= 0 || c.MaxSessionTimeout < c.MinSessionTimeout {
		errs = append(errs, fmt.Errorf("session timeout bounds [%v, %v] must be positive and ordered", c.MinSessionTimeout, c.MaxSessionTimeout))
	}
	if c.MaxSize <= 0 {
		errs = append(errs, fmt.Errorf("MaxSize %d must be positive", c.MaxSize))
	}
	if c.OffsetMetadataMaxBytes < 0 {
		errs = append(errs, fmt.Errorf("OffsetMetadataMaxBytes %d must not be negative", c.OffsetMetadataMaxBytes))
	}
	if c.OffsetsRetention <= 0 {
		errs = append(errs, fmt.Errorf("OffsetsRetention %v must be positive", c.OffsetsRetention))
	}
	if c.OffsetsRetentionCheckInterval <= 0 {
		errs = append(errs, fmt.Errorf("OffsetsRetentionCheckInterval %v must be positive", c.OffsetsRetentionCheckInterval))
	}
	if c.NewUUID == nil {
		errs = append(errs, errors.New("NewUUID must be set"))
	}
	return errors.Join(errs...)
}

// randomUUID formats 16 random bytes as a version-4 UUID, the form of
// java.util.UUID.randomUUID().toString() that Kafka puts in member ids.
func randomUUID() string {
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand.Read never fails (Go 1.24+)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
