package brokertest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary/tributary/broker"
)

// Cluster is a cluster of in-process brokers started by StartCluster:
// every node a combined broker and controller (a voter of the metadata
// quorum), each with its own log dir. Nodes keep their ports across
// Kill/Restart, so the quorum's addresses stay valid, and each can be cut
// off the network and healed.
type Cluster struct {
	Nodes []*Node
	t     testing.TB
}

// Node is one broker of a Cluster.
type Node struct {
	// ID is the node.id.
	ID int32
	// Dir is the log dir; it survives Kill and Restart.
	Dir string

	c         *Cluster
	overrides []func(*broker.Config)
	client    *gatedListener
	ctrl      *gatedListener
	gate      *gate

	mu      sync.Mutex
	b       *broker.Broker
	runErr  chan error
	running bool
}

// StartCluster starts n brokers on 127.0.0.1:0 (client and controller
// listeners each), with node ids 1..n, log dirs under t.TempDir(), and
// offsets.topic.replication.factor = min(n, 3). It returns once every
// node listens and the quorum has a leader. Overrides apply to every
// node after the test defaults. Every node is stopped when the test ends.
func StartCluster(t testing.TB, n int, overrides ...func(*broker.Config)) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("brokertest: StartCluster needs at least one node")
	}
	c := &Cluster{t: t}
	root := t.TempDir()
	var voters []string
	for i := 1; i <= n; i++ {
		cl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("brokertest: listen: %v", err)
		}
		ctl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("brokertest: listen: %v", err)
		}
		g := &gate{}
		nd := &Node{
			ID:        int32(i),
			Dir:       filepath.Join(root, "node-"+strconv.Itoa(i)),
			c:         c,
			overrides: overrides,
			gate:      g,
			client:    newGatedListener(cl.(*net.TCPListener), g),
			ctrl:      newGatedListener(ctl.(*net.TCPListener), g),
		}
		c.Nodes = append(c.Nodes, nd)
		voters = append(voters, fmt.Sprintf("%d@%s", i, ctl.Addr()))
	}
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, nd := range c.Nodes {
			wg.Add(1)
			go func() { defer wg.Done(); nd.stop(t) }()
		}
		wg.Wait()
		for _, nd := range c.Nodes {
			nd.client.stopListening()
			nd.ctrl.stopListening()
		}
	})
	quorum := strings.Join(voters, ",")
	rf := int16(min(n, 3))
	for _, nd := range c.Nodes {
		nd.overrides = append([]func(*broker.Config){func(cfg *broker.Config) {
			cfg.ControllerQuorumVoters = quorum
			cfg.OffsetsTopicReplicationFactor = rf
			cfg.TransactionStateLogReplicationFactor = rf
			cfg.TransactionStateLogMinIsr = int32(min(n, 2))
		}}, nd.overrides...)
	}
	// Start all nodes at once: each waits for a quorum, which needs a
	// majority running.
	errs := make(chan error, n)
	for _, nd := range c.Nodes {
		go func() { errs <- nd.start() }()
	}
	for range c.Nodes {
		if err := <-errs; err != nil {
			t.Fatalf("brokertest: %v", err)
		}
	}
	c.WaitController(t)
	return c
}

// Addrs returns the client address of every node, for a client's seed
// list (a node that is down or cut off is still listed: clients cope).
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, nd := range c.Nodes {
		out[i] = nd.Addr()
	}
	return out
}

// Node returns the node with the given id.
func (c *Cluster) Node(id int32) *Node {
	for _, nd := range c.Nodes {
		if nd.ID == id {
			return nd
		}
	}
	c.t.Fatalf("brokertest: no node %d", id)
	return nil
}

// Controller returns the node that is the active controller as the
// running, connected nodes see it, or nil.
func (c *Cluster) Controller() *Node {
	for _, nd := range c.Nodes {
		b := nd.Broker()
		if b == nil || nd.gate.isCut() {
			continue
		}
		if id := b.ControllerID(); id >= 0 {
			for _, o := range c.Nodes {
				if o.ID == id && o.Broker() != nil && !o.gate.isCut() {
					return o
				}
			}
		}
	}
	return nil
}

// WaitController waits (up to 30 s) until the running nodes agree on an
// active controller and returns it.
func (c *Cluster) WaitController(t testing.TB) *Node {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if nd := c.Controller(); nd != nil {
			return nd
		}
		if time.Now().After(deadline) {
			t.Fatalf("brokertest: no active controller within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Addr is the node's client address; it does not change across restarts.
func (nd *Node) Addr() string { return nd.client.addr }

// ControllerAddr is the node's controller listener address.
func (nd *Node) ControllerAddr() string { return nd.ctrl.addr }

// HTTPAddr is the node's console and /metrics address, "" while it is
// stopped.
func (nd *Node) HTTPAddr() string {
	if b := nd.Broker(); b != nil {
		return b.HTTPAddr()
	}
	return ""
}

// Broker is the running broker, or nil while the node is stopped.
func (nd *Node) Broker() *broker.Broker {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if !nd.running {
		return nil
	}
	return nd.b
}

// Kill stops the node (its connections drop, its data stays). In-process
// brokers close their logs on the way down; a crash with lost page cache
// is what StartProcess and kill -9 test.
func (nd *Node) Kill(t testing.TB) {
	t.Helper()
	nd.stop(t)
}

// Restart starts a stopped node again on the same ports and log dir (it
// stops it first if it runs).
func (nd *Node) Restart(t testing.TB) {
	t.Helper()
	nd.stop(t)
	if err := nd.start(); err != nil {
		t.Fatalf("brokertest: restart node %d: %v", nd.ID, err)
	}
}

// Partition cuts the node off the network: its open connections (in and
// out) are closed, new ones in either direction fail, until Heal. The
// process keeps running, as a broker behind a failed switch does.
func (nd *Node) Partition() {
	nd.gate.cut(true)
	for _, o := range nd.c.Nodes {
		if o != nd {
			o.gate.dropPeer(nd)
		}
	}
}

// Heal reconnects a node cut off by Partition.
func (nd *Node) Heal() { nd.gate.cut(false) }

func (nd *Node) start() error {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.running {
		return nil
	}
	if err := nd.client.relisten(); err != nil {
		return err
	}
	if err := nd.ctrl.relisten(); err != nil {
		return err
	}
	cfg := broker.DefaultConfig()
	cfg.NodeID = nd.ID
	cfg.LogDirs = []string{nd.Dir}
	cfg.Listener = nd.client.open()
	cfg.ControllerListener = nd.ctrl.open()
	cfg.Listeners = "PLAINTEXT://" + nd.Addr() + ",CONTROLLER://" + nd.ControllerAddr()
	cfg.Dial = nd.dial
	cfg.HTTPListener = "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{nd.c.t}, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", nd.ID)
	cfg.ShutdownTimeout = 5 * time.Second
	// Loopback timings: a dead broker is fenced in seconds, not Kafka's 9.
	cfg.BrokerSessionTimeoutMs = 3000
	cfg.BrokerHeartbeatIntervalMs = 500
	cfg.ReplicaLagTimeMaxMs = 5000
	cfg.ReplicaFetchBackoffMs = 200
	for _, o := range nd.overrides {
		o(&cfg)
	}
	b, err := broker.New(cfg)
	if err != nil {
		return fmt.Errorf("node %d: %w", nd.ID, err)
	}
	nd.b = b
	nd.runErr = make(chan error, 1)
	go func() { nd.runErr <- b.Run(context.Background()) }()
	select {
	case <-b.Ready():
	case err := <-nd.runErr:
		return fmt.Errorf("node %d stopped before listening: %v", nd.ID, err)
	case <-time.After(30 * time.Second):
		return fmt.Errorf("node %d did not listen within 30s", nd.ID)
	}
	nd.running = true
	return nil
}

func (nd *Node) stop(t testing.TB) {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if !nd.running {
		return
	}
	nd.running = false
	if err := nd.b.Close(); err != nil {
		t.Errorf("brokertest: close node %d: %v", nd.ID, err)
	}
	nd.client.stopListening()
	nd.ctrl.stopListening()
	select {
	case err := <-nd.runErr:
		if err != nil {
			t.Errorf("brokertest: node %d run: %v", nd.ID, err)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("brokertest: node %d: Run did not return after Close", nd.ID)
	}
}

// dial is the node's Config.Dial: it fails while this node or the
// target is cut off, and tracks the connection so a cut closes it.
func (nd *Node) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if nd.gate.isCut() {
		return nil, errors.New("brokertest: node is partitioned")
	}
	var target *Node
	for _, o := range nd.c.Nodes {
		if o.Addr() == addr || o.ControllerAddr() == addr {
			target = o
		}
	}
	if target != nil && target.gate.isCut() {
		return nil, errors.New("brokertest: target node is partitioned")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return nd.gate.track(conn, target), nil
}

// gate is a node's network switch: cut closes every tracked connection
// and refuses new ones.
type gate struct {
	mu    sync.Mutex
	down  bool
	conns map[*gatedConn]struct{}
}

type gatedConn struct {
	net.Conn
	g    *gate
	peer *Node // the other end, when it is a node of the cluster
	once sync.Once
}

func (c *gatedConn) Close() error {
	c.once.Do(func() {
		c.g.mu.Lock()
		delete(c.g.conns, c)
		c.g.mu.Unlock()
	})
	return c.Conn.Close()
}

func (g *gate) track(conn net.Conn, peer *Node) net.Conn {
	gc := &gatedConn{Conn: conn, g: g, peer: peer}
	g.mu.Lock()
	if g.conns == nil {
		g.conns = map[*gatedConn]struct{}{}
	}
	g.conns[gc] = struct{}{}
	down := g.down
	g.mu.Unlock()
	if down {
		gc.Conn.Close()
	}
	return gc
}

func (g *gate) isCut() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.down
}

func (g *gate) cut(down bool) {
	g.mu.Lock()
	g.down = down
	var drop []*gatedConn
	if down {
		for c := range g.conns {
			drop = append(drop, c)
		}
	}
	g.mu.Unlock()
	for _, c := range drop {
		c.Conn.Close()
	}
}

// dropPeer closes this node's outgoing connections to peer.
func (g *gate) dropPeer(peer *Node) {
	g.mu.Lock()
	var drop []*gatedConn
	for c := range g.conns {
		if c.peer == peer {
			drop = append(drop, c)
		}
	}
	g.mu.Unlock()
	for _, c := range drop {
		c.Conn.Close()
	}
}

// gatedListener hands one long-lived socket to successive brokers of a
// node (so its port survives restarts) and refuses connections while the
// node's gate is cut.
type gatedListener struct {
	ln *net.TCPListener
	g  *gate

	// While the node is stopped its socket is closed, so connections are
	// refused as a dead broker's are (left open, they would wait in the
	// listen backlog, unanswered, until the client's timeout); open binds
	// the same address again.
	mu     sync.Mutex
	addr   string
	closed bool
}

// stopListening closes the socket of a stopped node.
func (gl *gatedListener) stopListening() {
	gl.mu.Lock()
	defer gl.mu.Unlock()
	if !gl.closed {
		gl.ln.Close()
		gl.closed = true
	}
}

// relisten binds the node's address again after stopListening. The port
// was the node's until a moment ago; the kernel does not hand a port in
// use to another listener, so this only fails if someone else took it
// meanwhile, which is retried briefly.
func (gl *gatedListener) relisten() error {
	gl.mu.Lock()
	defer gl.mu.Unlock()
	if !gl.closed {
		return nil
	}
	var err error
	for range 50 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", gl.addr); err == nil {
			gl.ln, gl.closed = ln.(*net.TCPListener), false
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("brokertest: listening again on %s: %w", gl.addr, err)
}

func newGatedListener(ln *net.TCPListener, g *gate) *gatedListener {
	return &gatedListener{ln: ln, g: g, addr: ln.Addr().String()}
}

// open returns a net.Listener for one broker instance: closing it
// unblocks that broker's Accept without closing the socket.
func (gl *gatedListener) open() net.Listener {
	gl.mu.Lock()
	ln := gl.ln
	gl.mu.Unlock()
	ln.SetDeadline(time.Time{})
	return &instanceListener{gl: gl, ln: ln, done: make(chan struct{})}
}

type instanceListener struct {
	gl   *gatedListener
	ln   *net.TCPListener // the socket as it was when this instance opened
	done chan struct{}
	once sync.Once
}

func (il *instanceListener) Accept() (net.Conn, error) {
	for {
		select {
		case <-il.done:
			return nil, net.ErrClosed
		default:
		}
		// A short deadline lets Close of this instance end the wait
		// without closing the shared socket.
		il.ln.SetDeadline(time.Now().Add(100 * time.Millisecond))
		c, err := il.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return nil, err
		}
		select {
		case <-il.done:
			c.Close()
			return nil, net.ErrClosed
		default:
		}
		if il.gl.g.isCut() {
			c.Close()
			continue
		}
		return il.gl.g.track(c, nil), nil
	}
}

func (il *instanceListener) Close() error {
	il.once.Do(func() { close(il.done) })
	return nil
}

func (il *instanceListener) Addr() net.Addr { return il.ln.Addr() }
