package admin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/client"
	"github.com/tributary/tributary/internal/clientx"
)

// Opt configures a Client. New applies options in order and validates the
// result.
type Opt struct{ apply func(*cfg) }

type cfg struct {
	clientOpts []client.Opt
	client     *client.Client
	timeout    time.Duration
	retries    int
}

func defaultCfg() cfg {
	return cfg{
		timeout: 15 * time.Second,
		retries: 20,
	}
}

func (c *cfg) validate() error {
	if c.client == nil && len(c.clientOpts) == 0 {
		return errors.New("admin: no seed brokers (use SeedBrokers, ClientOptions or WithClient)")
	}
	if c.timeout <= 0 {
		return fmt.Errorf("admin: Timeout must be positive, got %v", c.timeout)
	}
	if c.retries < 0 {
		return fmt.Errorf("admin: RequestRetries must not be negative, got %d", c.retries)
	}
	return nil
}

// SeedBrokers sets the brokers used to discover the cluster (Java:
// bootstrap.servers). Shorthand for ClientOptions(client.SeedBrokers(...)).
func SeedBrokers(addrs ...string) Opt {
	return ClientOptions(client.SeedBrokers(addrs...))
}

// ClientOptions passes options to the client the admin creates (TLS, SASL,
// ClientID, Logger, ...). Ignored with WithClient.
func ClientOptions(opts ...client.Opt) Opt {
	return Opt{func(c *cfg) { c.clientOpts = append(c.clientOpts, opts...) }}
}

// WithClient makes the admin use an existing client, which Close does not
// close. Default: the admin creates and owns its own client.
func WithClient(cl *client.Client) Opt { return Opt{func(c *cfg) { c.client = cl }} }

// Timeout sets the timeout sent in requests that carry one (CreateTopics,
// DeleteTopics, CreatePartitions, DeleteRecords, ElectLeaders,
// AlterPartitionReassignments): how long the broker waits for the change
// to be applied before it answers REQUEST_TIMED_OUT. Default 15s, like
// franz-go's kadm (Java's admin sends request.timeout.ms, 30s).
func Timeout(d time.Duration) Opt { return Opt{func(c *cfg) { c.timeout = d }} }

// RequestRetries bounds how often one request is retried after a retriable
// failure that a retry can fix: the group coordinator moved or is loading
// (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS,
// COORDINATOR_NOT_AVAILABLE), the controller moved (NOT_CONTROLLER), or a
// partition leader moved (NOT_LEADER_OR_FOLLOWER and friends). Retries back
// off as the client's RetryBackoff says; the context bounds them too.
// Default 20, like franz-go (Java: retries, bounded by default.api.timeout.ms).
func RequestRetries(n int) Opt { return Opt{func(c *cfg) { c.retries = n }} }

// Client is an admin client. It is safe for concurrent use.
type Client struct {
	cfg  cfg
	cl   *client.Client
	owns bool

	coords coordinatorCache
}

// New validates opts and returns an admin Client. It does not connect; the
// first request does.
func New(opts ...Opt) (*Client, error) {
	c := defaultCfg()
	for _, o := range opts {
		if o.apply != nil {
			o.apply(&c)
		}
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	a := &Client{cfg: c, cl: c.client}
	if a.cl == nil {
		cl, err := client.New(c.clientOpts...)
		if err != nil {
			return nil, err
		}
		a.cl, a.owns = cl, true
	}
	a.coords.m = make(map[string]int32)
	return a, nil
}

// Close closes the underlying client if the admin created it.
func (a *Client) Close() {
	if a.owns {
		a.cl.Close()
	}
}

// Client returns the underlying client, for requests this package does not
// wrap.
func (a *Client) Client() *client.Client { return a.cl }

// CallOpt adjusts one call. Each call's documentation says which it honours.
type CallOpt struct{ apply func(*callCfg) }

type callCfg struct {
	validateOnly  bool
	readCommitted bool
}

// ValidateOnly makes CreateTopics, CreatePartitions and the Alter*Configs
// calls ask the broker to check the request without applying it. Default
// off (Java: CreateTopicsOptions.validateOnly and friends).
func ValidateOnly() CallOpt { return CallOpt{func(c *callCfg) { c.validateOnly = true }} }

// ReadCommitted makes ListOffsets return the last stable offset instead of
// the high watermark for the latest offset, so transactional records not
// yet committed are not counted. Default read_uncommitted
// (Java: ListOffsetsOptions isolationLevel).
func ReadCommitted() CallOpt { return CallOpt{func(c *callCfg) { c.readCommitted = true }} }

func callOpts(opts []CallOpt) callCfg {
	var c callCfg
	for _, o := range opts {
		if o.apply != nil {
			o.apply(&c)
		}
	}
	return c
}

// kafkaErr turns a response's error code and optional message into an
// error that errors.Is matches against tributary's Err* values.
func kafkaErr(code int16, msg *string) error {
	err := tributary.ErrorForCode(code)
	if err == nil {
		return nil
	}
	if msg != nil && *msg != "" && *msg != err.Error() {
		return fmt.Errorf("%w: %s", err, *msg)
	}
	return err
}

func (a *Client) timeoutMillis() int32 { return int32(a.cfg.timeout / time.Millisecond) }

// sleep waits for the client's backoff for attempt, or until ctx is done.
func (a *Client) sleep(ctx context.Context, attempt int) error {
	return clientx.Sleep(ctx, clientx.Of(a.cl).Backoff(attempt))
}

// retriableTransport reports whether err is a failure to reach a broker
// that another attempt (after a metadata refresh) may fix. With no broker
// reachable at all, retrying RequestRetries times only delayed the answer
// by tens of seconds.
func retriableTransport(err error) bool {
	if errors.Is(err, client.ErrUnreachable) {
		return false
	}
	return errors.Is(err, client.ErrConnection) || errors.Is(err, client.ErrUnknownBroker)
}

// controllerRequest issues req to the controller. If notController reports
// that the answer came from a broker that is no longer the controller, the
// metadata is refreshed and the request retried, up to RequestRetries.
func (a *Client) controllerRequest(ctx context.Context, req kmsg.Request, notController func(kmsg.Response) bool) (kmsg.Response, error) {
	for attempt := 1; ; attempt++ {
		resp, err := a.cl.Request(ctx, req)
		if err != nil {
			return nil, err
		}
		if !notController(resp) || attempt > a.cfg.retries {
			return resp, nil
		}
		if err := a.sleep(ctx, attempt); err != nil {
			return resp, nil
		}
		if _, err := a.cl.Metadata(ctx); err != nil {
			return nil, err
		}
	}
}

// knowBrokers makes sure the client has handles for nodes before requests
// fan out to them concurrently, so that one metadata refresh serves them
// all instead of one per goroutine.
func (a *Client) knowBrokers(ctx context.Context, nodes []int32) {
	for _, n := range nodes {
		if _, err := a.cl.Broker(ctx, n); err != nil {
			continue // each request reports its own failure
		}
	}
}

// firstErr returns the first non-nil error of items, wrapped with the name
// of the item it belongs to.
func firstErr[T any](items []T, f func(T) (string, error)) error {
	for _, it := range items {
		if name, err := f(it); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// lookup returns the item of items whose key is name (the On methods).
func lookup[T any](items []T, name string, key func(T) string) (T, bool) {
	for _, it := range items {
		if key(it) == name {
			return it, true
		}
	}
	var zero T
	return zero, false
}

// lookupPartition returns the item of items that is about one partition.
func lookupPartition[T any](items []T, topic string, partition int32, key func(T) (string, int32)) (T, bool) {
	for _, it := range items {
		if t, p := key(it); t == topic && p == partition {
			return it, true
		}
	}
	var zero T
	return zero, false
}
