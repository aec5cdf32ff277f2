package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// Config configures a Node. Zero durations and counts take the defaults
// named on each field.
type Config struct {
	// NodeID is node.id.
	NodeID int32
	// Voters is controller.quorum.voters: node id → controller listener
	// host:port. It must hold NodeID.
	Voters map[int32]string
	// Listener is the controller listener, already bound (tests use
	// 127.0.0.1:0 and put its address in Voters). The Node owns it and
	// closes it on Close. nil: listen on Voters[NodeID].
	Listener net.Listener
	// Dir holds the Raft log and stable store (raft.db) and the snapshots,
	// e.g. <log.dir>/__cluster_metadata-0.
	Dir string
	// ClusterID is written into the image by the quorum's first leader.
	ClusterID string
	// Logger receives the node's and Raft's logs; nil discards them.
	Logger *slog.Logger
	// SessionTimeout is broker.session.timeout.ms: a broker that sends no
	// heartbeat for this long is fenced. Default 9 s.
	SessionTimeout time.Duration
	// HeartbeatInterval is broker.heartbeat.interval.ms, the pace the
	// broker is expected to heartbeat at; the leader checks sessions
	// twice per interval. Default 2 s.
	HeartbeatInterval time.Duration
	// Dial, if set, opens every outgoing connection (Raft and forwarded
	// operations); with Listener it is the seam a test uses to cut a node
	// off from the others (STYLE practice 12). nil: a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Bootstrap, if set, gives the initial image of a brand-new quorum
	// (its topics, configs and producer-id counter; brokers register
	// themselves). It is called only when Dir holds no Raft state, and its
	// image is used only if this node is the quorum's first leader: it
	// exists to migrate a single-node broker's metadata file.
	Bootstrap func() (*Image, error)

	// DisableAutoLeaderRebalance turns off auto.leader.rebalance.enable
	// (default on).
	DisableAutoLeaderRebalance bool
	// ImbalanceCheckInterval is leader.imbalance.check.interval.seconds,
	// default 300 s.
	ImbalanceCheckInterval time.Duration
	// ImbalancePercentage is leader.imbalance.per.broker.percentage,
	// default 10 (0 takes the default; use 1 for "almost any").
	ImbalancePercentage int

	// Raft timing, tuned for a LAN or loopback rather than Raft's WAN-ish
	// defaults: RaftHeartbeatTimeout 500 ms (a follower starts an
	// election after this long without the leader; elections settle in
	// about a second), RaftElectionTimeout 500 ms, RaftLeaderLease 250 ms
	// (a leader cut off from the majority steps down after this).
	RaftHeartbeatTimeout time.Duration
	RaftElectionTimeout  time.Duration
	RaftLeaderLease      time.Duration
	// SnapshotThreshold is the number of log entries after which Raft
	// snapshots the image and truncates the log (default 1024, keeping
	// 1024 trailing entries for followers that lag a little);
	// SnapshotInterval is how often it checks (default 30 s).
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
}

func (c *Config) fill() error {
	voters := make(map[int32]string, len(c.Voters))
	for id, addr := range c.Voters {
		voters[id] = addr
	}
	c.Voters = voters // the caller's map may change after Open
	if _, ok := c.Voters[c.NodeID]; !ok {
		return fmt.Errorf("controller: node %d is not in controller.quorum.voters %v", c.NodeID, c.Voters)
	}
	if c.Dir == "" {
		return errors.New("controller: Dir is required")
	}
	if c.Dial == nil {
		d := &net.Dialer{}
		c.Dial = d.DialContext
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.SessionTimeout, 9*time.Second)
	def(&c.HeartbeatInterval, 2*time.Second)
	def(&c.ImbalanceCheckInterval, 300*time.Second)
	def(&c.RaftHeartbeatTimeout, 500*time.Millisecond)
	def(&c.RaftElectionTimeout, 500*time.Millisecond)
	def(&c.RaftLeaderLease, 250*time.Millisecond)
	def(&c.SnapshotInterval, 30*time.Second)
	if c.RaftLeaderLease > c.RaftHeartbeatTimeout {
		c.RaftLeaderLease = c.RaftHeartbeatTimeout
	}
	if c.ImbalancePercentage <= 0 {
		c.ImbalancePercentage = 10
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 1024
	}
	return nil
}

// Node is one controller quorum voter: the Raft replica of the metadata
// log, the applied Image, and, while it is the Raft leader, the active
// controller (it decides every change, tracks broker heartbeats and fences
// silent brokers).
type Node struct {
	cfg   Config
	log   *slog.Logger
	raft  *raft.Raft
	store *raftboltdb.BoltStore
	trans *raft.NetworkTransport
	ln    net.Listener
	layer *streamLayer

	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup // every goroutine the Node starts

	// pendingBootstrap is Config.Bootstrap's image on a fresh Dir.
	pendingBootstrap *Image

	mu struct {
		sync.Mutex
		img     *Image
		changed chan struct{} // closed and replaced on every apply
		subs    map[int]chan struct{}
		nextSub int
		conns   map[net.Conn]struct{} // every open controller-listener and Raft connection
		// recent maps the request tokens of the last maxRecent applied
		// entries to their offset and stored answer, so a retried
		// operation is answered, not applied twice.
		recent      map[string]recentEntry
		recentOrder []string
	}

	// op serialises the active controller's decisions: decide on the
	// latest image, propose, wait for the apply, then the next. Lock
	// order: op before mu.
	op struct {
		sync.Mutex
		readyTerm uint64              // the term whose Barrier and Bootstrap are done
		lastSeen  map[int32]time.Time // broker → last heartbeat, this term only
		lastCheck time.Time           // last auto leader rebalance
	}
}

// Open starts a voter: it opens (or creates) the Raft state in Dir,
// bootstraps a brand-new quorum with the full voter set, and joins the
// election. It returns without waiting for a leader.
func Open(cfg Config) (*Node, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("controller", cfg.NodeID), closing: make(chan struct{})}
	n.mu.img = NewImage()
	n.mu.changed = make(chan struct{})
	n.mu.subs = map[int]chan struct{}{}
	n.mu.conns = map[net.Conn]struct{}{}
	n.mu.recent = map[string]recentEntry{}
	n.op.lastSeen = map[int32]time.Time{}

	ok := false
	defer func() {
		if !ok {
			n.cleanup()
		}
	}()
	n.ln = cfg.Listener
	if n.ln == nil {
		ln, err := net.Listen("tcp", cfg.Voters[cfg.NodeID])
		if err != nil {
			return nil, err
		}
		n.ln = ln
	}
	hl := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Info, Output: &slogWriter{n.log}})

	// bbolt locks its file; a second process on the same Dir fails after
	// the timeout instead of hanging.
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.Dir, "raft.db"), BoltOptions: &bbolt.Options{Timeout: 5 * time.Second}})
	if err != nil {
		return nil, fmt.Errorf("controller: open raft store: %w", err)
	}
	n.store = store
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, hl)
	if err != nil {
		return nil, fmt.Errorf("controller: open snapshot store: %w", err)
	}
	logs, err := raft.NewLogCache(256, store)
	if err != nil {
		return nil, err
	}
	existing, err := raft.HasExistingState(logs, store, snaps)
	if err != nil {
		return nil, err
	}
	if !existing && cfg.Bootstrap != nil {
		if n.pendingBootstrap, err = cfg.Bootstrap(); err != nil {
			return nil, fmt.Errorf("controller: bootstrap image: %w", err)
		}
	}

	n.layer = &streamLayer{n: n, conns: make(chan net.Conn), closed: make(chan struct{})}
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: n.layer, MaxPool: 3, Timeout: 2 * time.Second, Logger: hl,
	})

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(strconv.Itoa(int(cfg.NodeID)))
	rc.HeartbeatTimeout = cfg.RaftHeartbeatTimeout
	rc.ElectionTimeout = cfg.RaftElectionTimeout
	rc.LeaderLeaseTimeout = cfg.RaftLeaderLease
	// A follower learns that an entry committed from the leader's next
	// AppendEntries, sent at the latest every CommitTimeout..2×CommitTimeout
	// when nothing else flows. A forwarded operation waits for that before
	// it returns, so it is kept short: 10 ms makes a forwarded change
	// ~15-25 ms; an idle 3-voter quorum in one process then costs ~5 % of
	// a core (3 % at Raft's default 50 ms, 7.5 % at 5 ms).
	rc.CommitTimeout = 10 * time.Millisecond
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.SnapshotThreshold
	rc.Logger = hl
	notify := make(chan bool, 16)
	rc.NotifyCh = notify

	r, err := raft.NewRaft(rc, &fsm{n: n}, logs, store, snaps, n.trans)
	if err != nil {
		return nil, fmt.Errorf("controller: start raft: %w", err)
	}
	n.raft = r
	if !existing {
		// Every voter bootstraps the same full configuration; Raft
		// tolerates that, and a lone voter elects itself at once.
		var servers []raft.Server
		for id, addr := range cfg.Voters {
			servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(strconv.Itoa(int(id))), Address: raft.ServerAddress(addr)})
		}
		sort.Slice(servers, func(i, j int) bool { return servers[i].ID < servers[j].ID })
		if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return nil, fmt.Errorf("controller: bootstrap: %w", err)
		}
	}

	n.wg.Add(2)
	go n.acceptLoop()
	go n.run(notify)
	ok = true
	return n, nil
}

// Close stops the node: Raft, the listener, every connection and
// goroutine it started. A leader first transfers leadership to another
// voter; a node that dies without Close is replaced by an election after
// RaftHeartbeatTimeout.
func (n *Node) Close() error { return n.close(true) }

// close stops the node; handover false is a crash as far as the other
// voters can tell (tests use it).
func (n *Node) close(handover bool) error {
	n.closeOnce.Do(func() {
		// A leader hands over first, so the quorum does not sit out an
		// election timeout (KRaft's leader resigns the same way). It
		// gives up after an election timeout if no voter can take over.
		// The future is not waited on: Raft may never answer it if it
		// changes state meanwhile; polling the state is bounded.
		if handover && n.raft != nil && n.IsLeader() && len(n.cfg.Voters) > 1 {
			n.raft.LeadershipTransfer()
			deadline := time.Now().Add(2 * n.cfg.RaftElectionTimeout)
			for n.IsLeader() && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
		}
		close(n.closing)
		n.closeErr = n.cleanup()
	})
	return n.closeErr
}

func (n *Node) cleanup() error {
	var errs []error
	if n.raft != nil {
		errs = append(errs, n.raft.Shutdown().Error())
	}
	if n.trans != nil {
		errs = append(errs, n.trans.Close())
	}
	if n.ln != nil {
		n.ln.Close()
	}
	n.mu.Lock()
	conns := make([]net.Conn, 0, len(n.mu.conns))
	for c := range n.mu.conns {
		conns = append(conns, c)
	}
	n.mu.Unlock()
	for _, c := range conns { // outside mu: Close untracks itself
		c.Close()
	}
	n.wg.Wait()
	if n.store != nil {
		errs = append(errs, n.store.Close())
	}
	return errors.Join(errs...)
}

// Image returns the latest image applied on this node.
func (n *Node) Image() *Image {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mu.img
}

func (n *Node) setImage(img *Image) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.mu.img = img
	close(n.mu.changed)
	n.mu.changed = make(chan struct{})
	for _, ch := range n.mu.subs {
		select {
		case ch <- struct{}{}:
		default: // a signal is pending already: coalesce
		}
	}
}

// Subscribe returns a channel signalled after applies (several applies
// may give one signal: read Image() when it fires) and a cancel func.
func (n *Node) Subscribe() (<-chan struct{}, func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	id := n.mu.nextSub
	n.mu.nextSub++
	ch := make(chan struct{}, 1)
	n.mu.subs[id] = ch
	return ch, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		delete(n.mu.subs, id)
	}
}

// WaitApplied waits until this node's image has applied offset.
func (n *Node) WaitApplied(ctx context.Context, offset uint64) error {
	for {
		n.mu.Lock()
		img, changed := n.mu.img, n.mu.changed
		n.mu.Unlock()
		if img.Offset >= offset {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.closing:
			return errClosed
		}
	}
}

var errClosed = errors.New("controller: node closed")

// LeaderID returns the Raft leader's node id, -1 when unknown.
func (n *Node) LeaderID() int32 {
	_, id := n.raft.LeaderWithID()
	if id == "" {
		return -1
	}
	v, err := strconv.ParseInt(string(id), 10, 32)
	if err != nil {
		return -1
	}
	return int32(v)
}

// IsLeader reports whether this node is the active controller.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// ---- the FSM ----

type fsm struct{ n *Node }

// Apply applies one committed entry. A batch this code cannot decode
// (written by a newer version) is logged and skipped: the offset still
// advances, so waiters are not stuck, but this node's image may now lag the
// others' until it is upgraded.
func (f *fsm) Apply(l *raft.Log) any {
	cur := f.n.Image()
	recs, b, err := decodeEntry(l.Data)
	if err != nil {
		f.n.log.Error("controller: skipping undecodable metadata entry", "index", l.Index, "err", err)
		recs = nil
	}
	if b != nil && b.Request != "" {
		f.n.remember(b.Request, recentEntry{Index: l.Index, Result: b.Result})
	}
	f.n.setImage(ApplyBatch(cur, l.Index, recs))
	return err
}

// maxRecent bounds the request tokens remembered (a retry comes within
// seconds; a thousand entries is minutes of metadata traffic).
const maxRecent = 1024

type recentEntry struct {
	Index  uint64
	Result json.RawMessage
}

func (n *Node) remember(token string, e recentEntry) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.mu.recent[token]; ok {
		return
	}
	n.mu.recent[token] = e
	n.mu.recentOrder = append(n.mu.recentOrder, token)
	if len(n.mu.recentOrder) > maxRecent {
		delete(n.mu.recent, n.mu.recentOrder[0])
		n.mu.recentOrder = n.mu.recentOrder[1:]
	}
}

func (n *Node) recentLookup(token string) (recentEntry, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	e, ok := n.mu.recent[token]
	return e, ok
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) { return imageSnapshot{f.n.Image()}, nil }

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	img, err := UnmarshalImage(data)
	if err != nil {
		return err
	}
	f.n.setImage(img)
	return nil
}

// imageSnapshot persists an Image: it is immutable, so Raft may write it
// while the FSM applies newer entries.
type imageSnapshot struct{ img *Image }

func (s imageSnapshot) Persist(sink raft.SnapshotSink) error {
	data, err := MarshalImage(s.img)
	if err == nil {
		_, err = sink.Write(data)
	}
	if err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (imageSnapshot) Release() {}

// slogWriter turns hclog's lines into slog records: Raft's INFO at Debug
// (elections are routine), WARN and ERROR as such.
type slogWriter struct{ l *slog.Logger }

func (w *slogWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	switch {
	case bytes.Contains(p, []byte("[ERROR]")):
		w.l.Error(line)
	case bytes.Contains(p, []byte("[WARN]")):
		w.l.Warn(line)
	default:
		w.l.Debug(line)
	}
	return len(p), nil
}
