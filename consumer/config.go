package consumer

import (
	"errors"
	"fmt"
	"time"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/client"
)

// Opt configures a Consumer. New applies options in order and validates
// the result, so a bad value is reported once, up front.
type Opt struct{ apply func(*cfg) }

// OffsetReset is what a consumer does when it has no valid position for a
// partition: no committed offset, or a position outside the log (Java:
// auto.offset.reset).
type OffsetReset int8

const (
	// ResetLatest starts at the end of the log: only records produced
	// from now on are consumed.
	ResetLatest OffsetReset = iota
	// ResetEarliest starts at the log start offset.
	ResetEarliest
	// ResetNone makes Poll return an error wrapping ErrNoOffset (for a
	// partition without a committed offset) or
	// tributary.ErrOffsetOutOfRange, and the partition stays stopped
	// until Seek gives it a position.
	ResetNone
)

func (r OffsetReset) String() string {
	switch r {
	case ResetLatest:
		return "latest"
	case ResetEarliest:
		return "earliest"
	case ResetNone:
		return "none"
	}
	return fmt.Sprintf("OffsetReset(%d)", int8(r))
}

// IsolationLevel selects which transactional records a consumer sees
// (Java: isolation.level).
type IsolationLevel int8

const (
	// ReadUncommitted returns every record, including those of open and
	// aborted transactions, up to the high watermark.
	ReadUncommitted IsolationLevel = 0
	// ReadCommitted returns only records of committed transactions (and
	// non-transactional ones), up to the last stable offset.
	ReadCommitted IsolationLevel = 1
)

type cfg struct {
	clientOpts []client.Opt
	client     *client.Client

	group      string
	topics     []string
	instanceID string

	sessionTimeout    time.Duration
	rebalanceTimeout  time.Duration
	heartbeatInterval time.Duration
	assignors         []Assignor

	autoCommit         bool
	autoCommitInterval time.Duration
	reset              OffsetReset
	isolation          IsolationLevel

	fetchMinBytes     int32
	fetchMaxBytes     int32
	fetchMaxWait      time.Duration
	partitionMaxBytes int32
	maxPollRecords    int
	maxBufferedBytes  int64

	onAssigned func([]tributary.TopicPartition)
	onRevoked  func([]tributary.TopicPartition)
	onLost     func([]tributary.TopicPartition)
}

func defaultCfg() cfg {
	return cfg{
		sessionTimeout:     45 * time.Second,
		rebalanceTimeout:   300 * time.Second,
		heartbeatInterval:  3 * time.Second,
		assignors:          []Assignor{Range(), CooperativeSticky()},
		autoCommit:         true,
		autoCommitInterval: 5 * time.Second,
		reset:              ResetLatest,
		isolation:          ReadUncommitted,
		fetchMinBytes:      1,
		fetchMaxBytes:      52428800,
		fetchMaxWait:       500 * time.Millisecond,
		partitionMaxBytes:  1048576,
		maxPollRecords:     500,
	}
}

func (c *cfg) validate() error {
	if c.client == nil && len(c.clientOpts) == 0 {
		return errors.New("consumer: no seed brokers (use SeedBrokers, ClientOptions or WithClient)")
	}
	if len(c.topics) > 0 && c.group == "" {
		return errors.New("consumer: Topics needs a Group; use Assign to consume without one")
	}
	if c.instanceID != "" && c.group == "" {
		return errors.New("consumer: InstanceID needs a Group")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"SessionTimeout", c.sessionTimeout},
		{"RebalanceTimeout", c.rebalanceTimeout},
		{"HeartbeatInterval", c.heartbeatInterval},
		{"AutoCommitInterval", c.autoCommitInterval},
	} {
		if d.v <= 0 {
			return fmt.Errorf("consumer: %s must be positive, got %v", d.name, d.v)
		}
	}
	if c.heartbeatInterval >= c.sessionTimeout {
		return fmt.Errorf("consumer: HeartbeatInterval %v must be below SessionTimeout %v", c.heartbeatInterval, c.sessionTimeout)
	}
	if c.fetchMaxWait < 0 || c.fetchMaxWait > time.Duration(1<<31-1)*time.Millisecond {
		return fmt.Errorf("consumer: FetchMaxWait %v out of range", c.fetchMaxWait)
	}
	if len(c.assignors) == 0 {
		return errors.New("consumer: Assignors needs at least one assignor")
	}
	seen := make(map[string]bool)
	for _, a := range c.assignors {
		if a == nil {
			return errors.New("consumer: nil assignor")
		}
		if seen[a.Name()] {
			return fmt.Errorf("consumer: assignor %q listed twice", a.Name())
		}
		seen[a.Name()] = true
	}
	switch c.reset {
	case ResetLatest, ResetEarliest, ResetNone:
	default:
		return fmt.Errorf("consumer: unknown AutoOffsetReset %d", c.reset)
	}
	switch c.isolation {
	case ReadUncommitted, ReadCommitted:
	default:
		return fmt.Errorf("consumer: unknown IsolationLevel %d", c.isolation)
	}
	if c.fetchMinBytes < 0 {
		return fmt.Errorf("consumer: FetchMinBytes must not be negative, got %d", c.fetchMinBytes)
	}
	if c.fetchMaxBytes < 1 || c.partitionMaxBytes < 1 {
		return errors.New("consumer: FetchMaxBytes and MaxPartitionFetchBytes must be positive")
	}
	if c.maxPollRecords < 1 {
		return fmt.Errorf("consumer: MaxPollRecords must be positive, got %d", c.maxPollRecords)
	}
	if c.maxBufferedBytes == 0 {
		c.maxBufferedBytes = int64(c.fetchMaxBytes)
	}
	if c.maxBufferedBytes < 0 {
		return fmt.Errorf("consumer: MaxBufferedBytes must be positive, got %d", c.maxBufferedBytes)
	}
	return nil
}

// cooperative reports whether the member follows KIP-429's incremental
// protocol: only when every assignor it offers is cooperative, as Java
// decides, so that a group can move from eager to cooperative assignors
// with two rolling restarts.
func (c *cfg) cooperative() bool {
	for _, a := range c.assignors {
		if !a.Cooperative() {
			return false
		}
	}
	return true
}

// SeedBrokers sets the brokers used to discover the cluster (Java:
// bootstrap.servers). Shorthand for ClientOptions(client.SeedBrokers(...)).
func SeedBrokers(addrs ...string) Opt { return ClientOptions(client.SeedBrokers(addrs...)) }

// ClientID sets the client id sent with every request. Default "tributary"
// (Java: client.id). Shorthand for ClientOptions(client.ClientID(id)).
func ClientID(id string) Opt { return ClientOptions(client.ClientID(id)) }

// ClientOptions passes options to the client the consumer creates (TLS,
// SASL, Logger, RequestTimeout, ...). Ignored with WithClient.
func ClientOptions(opts ...client.Opt) Opt {
	return Opt{func(c *cfg) { c.clientOpts = append(c.clientOpts, opts...) }}
}

// WithClient makes the consumer use an existing client, which it does not
// close. Default: the consumer creates and owns its own client.
func WithClient(cl *client.Client) Opt { return Opt{func(c *cfg) { c.client = cl }} }

// Group sets the consumer group. With Topics the consumer joins the group
// and is assigned partitions; with Assign it only uses the group to fetch
// and commit offsets. Default: none (Java: group.id).
func Group(id string) Opt { return Opt{func(c *cfg) { c.group = id }} }

// Topics subscribes the group member to topics; New then joins the group
// in the background. Needs Group. Default: none (Java: subscribe()).
func Topics(topics ...string) Opt {
	return Opt{func(c *cfg) { c.topics = append(c.topics[:0:0], topics...) }}
}

// InstanceID makes the member static (KIP-345): a restart within
// SessionTimeout gets its partitions back without a rebalance, and Close
// does not leave the group. Default: dynamic membership (Java:
// group.instance.id).
func InstanceID(id string) Opt { return Opt{func(c *cfg) { c.instanceID = id }} }

// SessionTimeout is how long the coordinator waits for a heartbeat before
// it removes the member. Default 45s (Java: session.timeout.ms).
func SessionTimeout(d time.Duration) Opt { return Opt{func(c *cfg) { c.sessionTimeout = d }} }

// RebalanceTimeout is how long the coordinator waits for every member to
// rejoin during a rebalance, and so how long a member may take to commit
// and run OnRevoked. Default 300s (Java: max.poll.interval.ms, which is
// sent as the rebalance timeout).
func RebalanceTimeout(d time.Duration) Opt { return Opt{func(c *cfg) { c.rebalanceTimeout = d }} }

// HeartbeatInterval is how often the member heartbeats, and so how soon it
// learns of a rebalance. Must be below SessionTimeout. Default 3s (Java:
// heartbeat.interval.ms).
func HeartbeatInterval(d time.Duration) Opt { return Opt{func(c *cfg) { c.heartbeatInterval = d }} }

// Assignors sets the partition assignment strategies offered in JoinGroup,
// most preferred first; the coordinator picks the first one every member
// supports. Default [Range(), CooperativeSticky()], Java 3.x's default
// (Java: partition.assignment.strategy). As in Java, the member follows the
// cooperative protocol (KIP-429: keep partitions through a rebalance) only
// if every assignor listed is cooperative; with the default it is eager, so
// that it can share a group with range-only members. Pass
// Assignors(CooperativeSticky()) for incremental rebalancing.
func Assignors(as ...Assignor) Opt {
	return Opt{func(c *cfg) { c.assignors = append(c.assignors[:0:0], as...) }}
}

// AutoCommit makes the consumer commit, every AutoCommitInterval, the
// position of every partition: the offsets after the records Poll has
// returned. It also commits before partitions are revoked and in Close.
// Default true (Java: enable.auto.commit).
func AutoCommit(on bool) Opt { return Opt{func(c *cfg) { c.autoCommit = on }} }

// AutoCommitInterval sets how often AutoCommit commits. Default 5s (Java:
// auto.commit.interval.ms).
func AutoCommitInterval(d time.Duration) Opt { return Opt{func(c *cfg) { c.autoCommitInterval = d }} }

// AutoOffsetReset sets where a partition without a valid position starts.
// Default ResetLatest (Java: auto.offset.reset=latest).
func AutoOffsetReset(r OffsetReset) Opt { return Opt{func(c *cfg) { c.reset = r }} }

// Isolation sets which transactional records are returned. Default
// ReadUncommitted (Java: isolation.level=read_uncommitted).
func Isolation(l IsolationLevel) Opt { return Opt{func(c *cfg) { c.isolation = l }} }

// FetchMinBytes is how many bytes a broker waits for before it answers a
// fetch (or FetchMaxWait passes). Default 1 (Java: fetch.min.bytes).
func FetchMinBytes(n int32) Opt { return Opt{func(c *cfg) { c.fetchMinBytes = n }} }

// FetchMaxBytes bounds one fetch response (a broker still returns a first
// batch larger than this, so consumption never stalls). It is also the
// default MaxBufferedBytes. Default 52428800 (Java: fetch.max.bytes).
func FetchMaxBytes(n int32) Opt { return Opt{func(c *cfg) { c.fetchMaxBytes = n }} }

// FetchMaxWait bounds how long a broker holds a fetch waiting for
// FetchMinBytes. Default 500ms (Java: fetch.max.wait.ms).
func FetchMaxWait(d time.Duration) Opt { return Opt{func(c *cfg) { c.fetchMaxWait = d }} }

// MaxPartitionFetchBytes bounds the bytes one fetch returns per partition.
// Default 1048576 (Java: max.partition.fetch.bytes).
func MaxPartitionFetchBytes(n int32) Opt { return Opt{func(c *cfg) { c.partitionMaxBytes = n }} }

// MaxPollRecords bounds the records one Poll returns. Default 500 (Java:
// max.poll.records).
func MaxPollRecords(n int) Opt { return Opt{func(c *cfg) { c.maxPollRecords = n }} }

// MaxBufferedBytes bounds the fetched record bytes waiting for Poll: no
// fetch is sent while the buffer holds this much, so memory stays bounded
// by it plus one response per broker. Default FetchMaxBytes (Java has no
// equivalent; its bound is one outstanding fetch per broker).
func MaxBufferedBytes(n int64) Opt { return Opt{func(c *cfg) { c.maxBufferedBytes = n }} }

// OnAssigned is called after each rebalance with the partitions newly
// given to this member (eager members get their whole assignment each
// time; cooperative ones only what was added, possibly nothing, as in
// Java). It runs before any of those partitions is fetched, so it may Seek
// them; otherwise they start at the group's committed offsets. Callbacks
// run on the group goroutine, one at a time, and may call Commit; the
// member does not heartbeat while one runs. Default: none (Java:
// ConsumerRebalanceListener.onPartitionsAssigned).
func OnAssigned(fn func([]tributary.TopicPartition)) Opt {
	return Opt{func(c *cfg) { c.onAssigned = fn }}
}

// OnRevoked is called with partitions this member gives up in a rebalance,
// after they were auto-committed (with AutoCommit) and while the
// generation is still valid, so the callback can commit too. Poll returns
// no record of them afterwards. Eager members revoke everything on each
// rebalance; cooperative ones only what moves elsewhere. Default: none
// (Java: onPartitionsRevoked).
func OnRevoked(fn func([]tributary.TopicPartition)) Opt {
	return Opt{func(c *cfg) { c.onRevoked = fn }}
}

// OnLost is called with partitions this member lost without a chance to
// commit: its membership expired (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
// FENCED_INSTANCE_ID), so another member may already own them. Default:
// none (Java: onPartitionsLost).
func OnLost(fn func([]tributary.TopicPartition)) Opt {
	return Opt{func(c *cfg) { c.onLost = fn }}
}
