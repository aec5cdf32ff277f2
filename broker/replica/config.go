package replica

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Config configures a Manager. DefaultConfig returns Kafka's defaults;
// New rejects zero or negative durations and sizes rather than guessing.
type Config struct {
	// NodeID is this broker's node.id: the ReplicaID of its fetches and
	// its identity in State.Replicas/ISR.
	NodeID int32
	Logger *slog.Logger
	// Now is the clock for lag and caught-up times; nil means time.Now.
	// Tests move it to expire followers without sleeping.
	Now func() time.Time

	ReplicaLagTimeMax     time.Duration // replica.lag.time.max.ms, 30000
	FetchWaitMax          time.Duration // replica.fetch.wait.max.ms, 500
	FetchMinBytes         int32         // replica.fetch.min.bytes, 1
	FetchMaxBytes         int32         // replica.fetch.max.bytes, 1048576 (per partition)
	FetchResponseMaxBytes int32         // replica.fetch.response.max.bytes, 10485760
	FetchBackoff          time.Duration // replica.fetch.backoff.ms, 1000
	// HighWatermarkCheckpointInterval is
	// replica.high.watermark.checkpoint.interval.ms, 5000.
	HighWatermarkCheckpointInterval time.Duration
	// ISRCheckInterval is how often a leader looks for followers to drop
	// from the ISR. Kafka runs its isr-expiration task every
	// replica.lag.time.max.ms / 2, the default here; tests shorten it.
	ISRCheckInterval time.Duration

	// Transport is how a follower reaches a leader (the broker implements
	// it over its inter-broker connections). Required.
	Transport Transport
	// AlterPartition asks the controller to change the ISR (Kafka's
	// AlterPartition, key 56). It returns the committed state, or an
	// error wrapping a Kafka error (FENCED_LEADER_EPOCH,
	// INVALID_UPDATE_VERSION, ...) when the controller refused, or any
	// other error when it could not be reached. Required.
	AlterPartition func(ctx context.Context, req AlterPartitionRequest) (State, error)
	// HighWatermarkMoved is called, with no lock held, whenever the HW of
	// p moved or its role or ISR changed, so the broker wakes the
	// acks=all produces and fetches parked on p. Optional.
	HighWatermarkMoved func(p *Partition)
}

// DefaultConfig returns Kafka's defaults for node id; Transport and
// AlterPartition must still be set.
func DefaultConfig(nodeID int32) Config {
	return Config{
		NodeID:                          nodeID,
		ReplicaLagTimeMax:               30 * time.Second,
		FetchWaitMax:                    500 * time.Millisecond,
		FetchMinBytes:                   1,
		FetchMaxBytes:                   1 << 20,
		FetchResponseMaxBytes:           10 << 20,
		FetchBackoff:                    time.Second,
		HighWatermarkCheckpointInterval: 5 * time.Second,
		ISRCheckInterval:                15 * time.Second,
	}
}

func (c *Config) validate() error {
	switch {
	case c.NodeID < 0:
		return errors.New("replica: NodeID must be >= 0")
	case c.ReplicaLagTimeMax <= 0, c.FetchWaitMax <= 0, c.FetchBackoff <= 0,
		c.HighWatermarkCheckpointInterval <= 0, c.ISRCheckInterval <= 0:
		return errors.New("replica: every duration must be positive (see DefaultConfig)")
	case c.FetchMinBytes < 0 || c.FetchMaxBytes <= 0 || c.FetchResponseMaxBytes <= 0:
		return errors.New("replica: fetch byte limits must be positive")
	case c.Transport == nil:
		return errors.New("replica: Transport is required")
	case c.AlterPartition == nil:
		return errors.New("replica: AlterPartition is required")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Transport carries a follower's requests to a leader broker. Each call
// goes to node leader; an error means no answer (the fetcher backs off
// FetchBackoff), Kafka errors travel inside the responses.
type Transport interface {
	Fetch(ctx context.Context, leader int32, req *kmsg.FetchRequest) (*kmsg.FetchResponse, error)
	OffsetForLeaderEpoch(ctx context.Context, leader int32, req *kmsg.OffsetForLeaderEpochRequest) (*kmsg.OffsetForLeaderEpochResponse, error)
	// ListOffsets finds the leader's log start and end after
	// OFFSET_OUT_OF_RANGE, as Kafka's follower does.
	ListOffsets(ctx context.Context, leader int32, req *kmsg.ListOffsetsRequest) (*kmsg.ListOffsetsResponse, error)
}

// State is a partition's leader-and-ISR state as the controller committed
// it. Leader -1 means no leader.
type State struct {
	Leader         int32
	LeaderEpoch    int32
	PartitionEpoch int32
	Replicas       []int32
	ISR            []int32
	Adding         []int32 // replicas being added by a reassignment
	Removing       []int32 // replicas being removed by a reassignment
}

func (s State) clone() State {
	s.Replicas = slices.Clone(s.Replicas)
	s.ISR = slices.Clone(s.ISR)
	s.Adding = slices.Clone(s.Adding)
	s.Removing = slices.Clone(s.Removing)
	return s
}

// AlterPartitionRequest asks the controller to set a partition's ISR. The
// leader sends its leader epoch and the partition epoch it last saw, so
// the controller refuses a change based on stale state
// (FENCED_LEADER_EPOCH, INVALID_UPDATE_VERSION).
type AlterPartitionRequest struct {
	Topic          string
	TopicID        [16]byte
	Partition      int32
	Leader         int32
	LeaderEpoch    int32
	PartitionEpoch int32
	ISR            []int32
}

// EpochEndOffset is an OffsetForLeaderEpoch answer or a Fetch response's
// DivergingEpoch: the largest epoch at or below the one asked and where
// it ends. -1/-1 is UNDEFINED.
type EpochEndOffset struct {
	Epoch     int32
	EndOffset int64
}
