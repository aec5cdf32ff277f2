package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary/internal/clientx"
)

var (
	// ErrClosed is returned for requests issued to, or still pending in, a
	// closed Client.
	ErrClosed = errors.New("client: closed")
	// ErrConnection wraps every failure to reach a broker or to get a
	// well-formed answer from it: dial, TLS, SASL transport, I/O and read
	// timeouts. Such failures are worth retrying, usually elsewhere after
	// a metadata refresh, and the SDK does so itself; they carry no Kafka
	// error code, so tributary.IsRetriable reports false for them.
	ErrConnection = errors.New("client: broker connection failed")
	// ErrUnknownBroker means a node id is not (or no longer) in the
	// cluster metadata.
	ErrUnknownBroker = errors.New("client: unknown broker")
	// ErrUnreachable is matched (with ErrConnection) by the error of a
	// request that found no broker to talk to: every broker the client
	// knows, and every seed, refused or failed a connection during the
	// request. The message names them. Unlike other connection errors it
	// is not worth retrying at once; check the seed addresses and that
	// the cluster is up.
	ErrUnreachable = errors.New("client: no broker reachable")
)

// Client is the connection and metadata core shared by the producer,
// consumer and admin packages. It is safe for concurrent use.
type Client struct {
	cfg       cfg
	hooks     hookSet
	log       *slog.Logger
	formatter *kmsg.RequestFormatter

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu guards everything below; it is never held during I/O. Lock order:
	// Client.mu before Broker.mu before conn.mu.
	mu          sync.Mutex
	closed      bool
	brokers     map[int32]*Broker // from metadata
	seeds       []*Broker         // ids -1, -2, ... like Java's bootstrap nodes
	meta        *Metadata         // immutable snapshot, never nil after New
	metaUpdated chan struct{}     // closed and replaced on every update
	topics      map[string]struct{}
	refreshing  bool
	refreshMore bool
	lastRefresh time.Time
}

// New validates opts and returns a Client. It does not connect; the first
// request does.
func New(opts ...Opt) (*Client, error) {
	c := &Client{cfg: defaultCfg()}
	for _, o := range opts {
		if o.apply != nil {
			o.apply(&c.cfg)
		}
	}
	if err := c.cfg.validate(); err != nil {
		return nil, err
	}
	c.log = c.cfg.logger
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c.hooks = newHookSet(c.cfg.hooks)
	c.formatter = kmsg.NewRequestFormatter(kmsg.FormatterClientID(c.cfg.clientID))
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.brokers = make(map[int32]*Broker)
	c.topics = make(map[string]struct{})
	c.meta = &Metadata{ControllerID: -1, Brokers: map[int32]BrokerMetadata{}, Topics: map[string]*TopicMetadata{}}
	c.metaUpdated = make(chan struct{})
	for i, s := range c.cfg.seeds {
		c.seeds = append(c.seeds, &Broker{cl: c, id: int32(-1 - i), addr: s})
	}
	c.wg.Add(1)
	go c.refreshTicker()
	return c, nil
}

// Close fails all pending and future requests with ErrClosed, closes every
// connection and waits for the client's goroutines.
func (c *Client) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	all := append([]*Broker{}, c.seeds...)
	for _, b := range c.brokers {
		all = append(all, b)
	}
	c.mu.Unlock()
	c.cancel()
	for _, b := range all {
		b.close(ErrClosed)
	}
	c.wg.Wait()
}

func init() {
	clientx.Of = func(cl any) clientx.Internals { return internals{cl.(*Client)} }
}

// internals implements clientx.Internals; its type is unexported, so its
// methods are not part of the public API.
type internals struct{ c *Client }

func (i internals) Backoff(attempt int) time.Duration { return i.c.backoff(attempt) }
func (i internals) RequestTimeout() time.Duration     { return i.c.cfg.requestTimeout }
func (i internals) Logger() *slog.Logger              { return i.c.log }

// backoff returns how long to wait before retry number attempt (1-based):
// RetryBackoff doubling per attempt up to RetryBackoffMax, with ±20% jitter
// as in Java's client, so that many clients do not retry in lockstep.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.cfg.retryBackoff
	for i := 1; i < attempt && d < c.cfg.retryBackoffMax; i++ {
		d *= 2
	}
	d = min(d, c.cfg.retryBackoffMax)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// Broker is one broker of the cluster, with its connections. Handles stay
// valid; a broker removed from the metadata fails requests with
// ErrUnknownBroker or ErrClosed.
type Broker struct {
	cl   *Client
	id   int32
	addr string

	// apiVersionsPin is 1 + the ApiVersions version to start with, 0 for
	// kmsg's newest; lowered when a broker hangs up on a newer one.
	apiVersionsPin atomic.Int32

	mu        sync.Mutex
	conns     [numKinds]*conn
	dialing   [numKinds]chan struct{}
	dialErr   [numKinds]error
	dialErrAt [numKinds]time.Time
	closed    error
}

func (b *Broker) info() BrokerInfo { return BrokerInfo{NodeID: b.id, Addr: b.addr} }

// ID returns the broker's node id (negative for seed brokers).
func (b *Broker) ID() int32 { return b.id }

// Addr returns the broker's host:port.
func (b *Broker) Addr() string { return b.addr }

// Closed reports whether the handle is retired: the client was closed, or
// metadata showed the node gone or moved to another address (Client.Broker
// then returns a fresh handle).
func (b *Broker) Closed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed != nil
}

func (b *Broker) getConn(ctx context.Context, kind connKind) (*conn, error) {
	for {
		b.mu.Lock()
		if b.closed != nil {
			err := b.closed
			b.mu.Unlock()
			return nil, err
		}
		if cn := b.conns[kind]; cn != nil {
			b.mu.Unlock()
			return cn, nil
		}
		if ch := b.dialing[kind]; ch != nil {
			b.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		// A broker that just refused us is not redialed by every waiting
		// request; they share the failure until the backoff passes.
		if err := b.dialErr[kind]; err != nil && time.Since(b.dialErrAt[kind]) < b.cl.cfg.retryBackoff {
			b.mu.Unlock()
			return nil, err
		}
		// The dial runs on its own goroutine so that every caller,
		// including this one, can give up with its ctx while the dial
		// continues for the others (bounded by DialTimeout).
		ch := make(chan struct{})
		b.dialing[kind] = ch
		b.cl.wg.Add(1) // under b.mu with b.closed unset: Close has not started waiting
		b.mu.Unlock()
		go b.dial(kind, ch)
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		b.mu.Lock()
		cn, err := b.conns[kind], b.dialErr[kind]
		if b.closed != nil {
			cn, err = nil, b.closed
		}
		b.mu.Unlock()
		if cn != nil || err != nil {
			return cn, err
		}
	}
}

// dial connects for kind and publishes the result (a connection, or an
// error that callers share until RetryBackoff passes), then closes ch.
func (b *Broker) dial(kind connKind, ch chan struct{}) {
	defer b.cl.wg.Done()
	cn, err := b.cl.dialConn(b.cl.ctx, b, kind)

	b.mu.Lock()
	b.dialing[kind] = nil
	close(ch)
	if err == nil && b.closed != nil {
		err = b.closed
		b.mu.Unlock()
		cn.die(err)
		cn.wg.Wait()
		return
	}
	if err != nil {
		b.dialErr[kind], b.dialErrAt[kind] = err, time.Now()
		b.mu.Unlock()
		b.cl.log.Debug("dial failed", "broker", b.id, "addr", b.addr, "err", err)
		b.cl.TriggerMetadataRefresh()
		return
	}
	b.dialErr[kind] = nil
	b.conns[kind] = cn
	b.mu.Unlock()
}

func (b *Broker) connDied(cn *conn, err error) {
	b.mu.Lock()
	if b.conns[cn.kind] == cn {
		b.conns[cn.kind] = nil
	}
	closed := b.closed != nil
	b.mu.Unlock()
	if !closed && !errors.Is(err, ErrClosed) {
		b.cl.log.Debug("connection lost", "broker", b.id, "addr", b.addr, "err", err)
		b.cl.TriggerMetadataRefresh()
	}
}

func (b *Broker) close(err error) {
	b.mu.Lock()
	if b.closed == nil {
		b.closed = err
	}
	conns := b.conns
	b.conns = [numKinds]*conn{}
	b.mu.Unlock()
	for _, cn := range conns {
		if cn != nil {
			cn.die(err)
			cn.wg.Wait()
		}
	}
}

// Do issues req asynchronously and calls cb exactly once with the response
// or an error. Requests to one broker of the same kind are written and
// answered in the order Do is called (from one goroutine). cb runs on a
// connection goroutine and must not block for long.
//
// The request version is the highest both kmsg and the broker support; wrap
// req with Limit to bound it.
func (b *Broker) Do(ctx context.Context, req kmsg.Request, cb func(kmsg.Response, error)) {
	minV := int16(0)
	if l, ok := req.(*limited); ok {
		minV = l.minV
	}
	cn, err := b.getConn(ctx, kindOf(req.Key()))
	if err != nil {
		cb(nil, err)
		return
	}
	cn.enqueue(&pending{ctx: ctx, req: req, minV: minV, cb: cb})
}

type result struct {
	resp kmsg.Response
	err  error
}

// Request issues req to this broker and waits for the response.
func (b *Broker) Request(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	ch := make(chan result, 1)
	b.Do(ctx, req, func(r kmsg.Response, err error) { ch <- result{r, err} })
	select {
	case r := <-ch:
		return r.resp, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// MaxVersion returns the highest version of key the broker supports, or -1,
// connecting if needed.
func (b *Broker) MaxVersion(ctx context.Context, key int16) (int16, error) {
	if key < 0 || int(key) > kmsg.MaxKey {
		return -1, nil
	}
	cn, err := b.getConn(ctx, kindGeneral)
	if err != nil {
		return -1, err
	}
	return cn.versions[key], nil
}

// limited bounds the version a request is sent at.
type limited struct {
	kmsg.Request
	minV, maxV int16
}

func (l *limited) MaxVersion() int16 { return min(l.maxV, l.Request.MaxVersion()) }

// Limit returns req bounded to versions minV..maxV: it is sent at the
// highest version in that range the broker supports, or fails with
// tributary.ErrUnsupportedVersion. The response is req's own response type.
func Limit(req kmsg.Request, minV, maxV int16) kmsg.Request {
	return &limited{Request: req, minV: minV, maxV: maxV}
}

// Broker returns the handle for a node id from the metadata, refreshing the
// metadata once if the id is unknown.
func (c *Client) Broker(ctx context.Context, nodeID int32) (*Broker, error) {
	for i := 0; ; i++ {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		b := c.brokers[nodeID]
		c.mu.Unlock()
		if b != nil {
			return b, nil
		}
		if i > 0 {
			return nil, fmt.Errorf("%w: node %d", ErrUnknownBroker, nodeID)
		}
		// Brokers only: asking for no topics is cheap on any cluster.
		if _, err := c.fetchMetadata(ctx, nil, false); err != nil {
			return nil, err
		}
	}
}

// RequestBroker issues req to the broker with the given node id.
func (c *Client) RequestBroker(ctx context.Context, nodeID int32, req kmsg.Request) (kmsg.Response, error) {
	b, err := c.Broker(ctx, nodeID)
	if err != nil {
		return nil, err
	}
	return b.Request(ctx, req)
}

// Request issues req to a suitable broker and returns its response. Admin
// requests that Kafka requires at the controller (kmsg.AdminRequest) go to
// the controller; anything else goes to any live broker. Connection
// failures are retried with backoff on another broker while ctx allows;
// once every known broker and seed has refused or failed a connection, it
// gives up with an error that names them and wraps ErrConnection, rather
// than retrying for as long as ctx allows. Errors inside the response are
// left to the caller.
//
// Group and transaction coordinator requests must be sent with
// RequestBroker to the coordinator, which the caller looks up with
// FindCoordinator.
func (c *Client) Request(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	_, admin := req.(kmsg.AdminRequest)
	var lastErr error
	var failed map[string]bool // addresses whose connection failed in this call
	for attempt := 1; ; attempt++ {
		var b *Broker
		var err error
		if admin {
			b, err = c.controller(ctx)
		} else {
			b, err = c.anyBroker(attempt, failed)
		}
		if err == nil {
			var resp kmsg.Response
			if resp, err = b.Request(ctx, req); err == nil {
				return resp, nil
			}
		}
		if errors.Is(err, ErrClosed) || ctx.Err() != nil {
			return nil, err
		}
		lastErr = err
		if !errors.Is(err, ErrConnection) && !errors.Is(err, ErrUnknownBroker) || attempt >= 8 {
			return nil, lastErr
		}
		var ue *unreachableError
		if errors.As(err, &ue) { // a nested metadata request already tried them all
			return nil, err
		}
		if b != nil && errors.Is(err, ErrConnection) {
			if failed == nil {
				failed = make(map[string]bool)
			}
			failed[b.addr] = true
			if attempt >= 2 {
				if addrs := c.allFailed(failed); addrs != nil {
					return nil, &unreachableError{addrs: addrs, last: err}
				}
			}
		}
		select {
		case <-time.After(c.backoff(attempt)):
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last error: %w)", ctx.Err(), lastErr)
		case <-c.ctx.Done():
			return nil, ErrClosed
		}
	}
}

// unreachableError says that no broker could be reached. It wraps the last
// connection error, and so ErrConnection.
type unreachableError struct {
	addrs []string
	last  error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("client: cannot reach any broker (tried %s): %v", strings.Join(e.addrs, ", "), e.last)
}

func (e *unreachableError) Unwrap() error { return e.last }

func (e *unreachableError) Is(target error) bool { return target == ErrUnreachable }

// allFailed returns the addresses of every broker the client knows (from
// metadata, else the seeds) if all of them are in failed, else nil.
func (c *Client) allFailed(failed map[string]bool) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var addrs []string
	for _, b := range c.brokers {
		addrs = append(addrs, b.addr)
	}
	for _, b := range c.seeds {
		addrs = append(addrs, b.addr)
	}
	for _, a := range addrs {
		if !failed[a] {
			return nil
		}
	}
	slices.Sort(addrs)
	return slices.Compact(addrs)
}

func (c *Client) controller(ctx context.Context) (*Broker, error) {
	c.mu.Lock()
	id := c.meta.ControllerID
	b := c.brokers[id]
	c.mu.Unlock()
	if b != nil {
		return b, nil
	}
	m, err := c.fetchMetadata(ctx, nil, false)
	if err != nil {
		return nil, err
	}
	return c.Broker(ctx, m.ControllerID)
}

// anyBroker picks a broker to send a cluster-wide request to: a known
// broker at random, falling back to the seeds, rotating by attempt, and
// preferring one whose address has not failed in this request.
func (c *Client) anyBroker(attempt int, failed map[string]bool) (*Broker, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	cands := make([]*Broker, 0, len(c.brokers)+len(c.seeds))
	for _, b := range c.brokers {
		cands = append(cands, b)
	}
	if len(cands) == 0 || attempt > len(cands) {
		cands = append(cands, c.seeds...)
	}
	if len(failed) > 0 {
		fresh := slices.DeleteFunc(slices.Clone(cands), func(b *Broker) bool { return failed[b.addr] })
		if len(fresh) > 0 {
			cands = fresh
		} else if len(c.brokers) > 0 {
			// Every known broker failed; the seeds may still answer.
			for _, b := range c.seeds {
				if !failed[b.addr] {
					return b, nil
				}
			}
		}
	}
	return cands[(rand.IntN(len(cands))+attempt)%len(cands)], nil
}

// updateBrokers replaces the broker set with what metadata reported,
// keeping the connections of brokers whose address did not change.
func (c *Client) updateBrokersLocked(bs map[int32]BrokerMetadata) (gone []*Broker) {
	for id, bm := range bs {
		addr := net.JoinHostPort(bm.Host, strconv.Itoa(int(bm.Port)))
		if old := c.brokers[id]; old != nil {
			if old.addr == addr {
				continue
			}
			gone = append(gone, old)
		}
		c.brokers[id] = &Broker{cl: c, id: id, addr: addr}
	}
	for id, b := range c.brokers {
		if _, ok := bs[id]; !ok {
			gone = append(gone, b)
			delete(c.brokers, id)
		}
	}
	return gone
}
