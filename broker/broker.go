package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tributary/tributary/broker/controller"
	"github.com/tributary/tributary/broker/group"
	"github.com/tributary/tributary/broker/replica"
)

// Broker is a single-node Kafka-compatible broker. New validates the
// configuration and loads the topics without listening; Run serves until
// its context ends or Close is called.
type Broker struct {
	cfg         Config // static configuration as validated by New
	logger      *slog.Logger
	dir         string // first log dir: metadata file, meta.properties, partition dirs
	clusterID   string
	directoryID string   // meta.properties directory.id
	lockFile    *os.File // flock on <dir>/.lock while open
	data        dataPath // produce/fetch state, see datapath.go
	// groups is the group coordinator (groups.go). Run sets it after
	// the reconcile loop, which reads it, has started.
	groups atomic.Pointer[groupCoordinator]
	// txns is the transaction coordinator (txncoord.go), set the same
	// way.
	txns atomic.Pointer[txnCoordinator]
	obs  obsState // metrics and the HTTP listener, see observe.go

	// The cluster (metadata_sync.go): this node's voter of the
	// controller quorum, the replica manager of the partitions it hosts,
	// and its client side to other brokers.
	ctrl        *controller.Node
	ctrlAddr    string // the controller listener's address
	rep         *replica.Manager
	peers       peers
	brokerEpoch atomic.Int64
	repParts    sync.Map // *replica.Partition → *partition
	// recon is the reconcile loop's progress: the image the registry
	// reflects and whether the controller has accepted this broker.
	// Waiters (waitServing, waitReconciled) sleep on cond.
	recon struct {
		sync.Mutex
		cond       *sync.Cond
		img        atomic.Pointer[controller.Image]
		registered bool
	}

	// closing is closed when Close starts; long-polling handlers and
	// background loops select on it.
	closing chan struct{}
	// life is cancelled when Close starts: the parent of the contexts
	// broker goroutines wait on the controller with.
	life       context.Context
	lifeCancel context.CancelFunc
	ready      chan struct{} // closed once the listener is open
	closeOnce  sync.Once
	closeErr   error
	runOnce    sync.Once

	// track counts the goroutines Close waits for; trackMu makes
	// "is Close running" and wg.Add atomic so no goroutine starts after
	// Close began waiting.
	trackMu  sync.Mutex
	tracking bool // false once Close started
	track    sync.WaitGroup

	// adminMu serialises everything that changes topics or configs and
	// writes the metadata file (create/delete topics, add partitions,
	// alter configs). It is taken before mu, and I/O (opening and
	// deleting logs, writing the metadata file) happens under adminMu
	// only, so produce and fetch lookups (mu.RLock) never wait on disk.
	adminMu sync.Mutex

	mu struct {
		sync.RWMutex
		topics map[string]*topic
		byID   map[[16]byte]*topic
		// dynamic broker configs (IncrementalAlterConfigs on a BROKER
		// resource), by Kafka name: for this node and the cluster-wide
		// default (resource name "").
		dynNode    map[string]string
		dynCluster map[string]string
		// eff is cfg with the dynamic configs applied: the broker
		// defaults topics without overrides use.
		eff Config
	}

	connLimits connLimits // max.connections and friends, see connlimit.go
	mem        memBudget  // queued.max.request.bytes, see membudget.go

	connMu struct {
		sync.Mutex
		ln    net.Listener
		addr  string
		conns map[*clientConn]struct{}
	}
}

// New validates cfg, opens the first log dir (creating it and
// meta.properties when new), loads the topic registry and opens every
// partition log. It does not listen: Run does.
func New(cfg Config) (*Broker, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	b := &Broker{
		cfg:      cfg,
		logger:   cfg.Logger,
		closing:  make(chan struct{}),
		ready:    make(chan struct{}),
		tracking: true,
	}
	b.life, b.lifeCancel = context.WithCancel(context.Background())
	if b.logger == nil {
		b.logger = slog.Default()
	}
	b.dir = cfg.LogDirs[0]
	b.mu.topics = make(map[string]*topic)
	b.mu.byID = make(map[[16]byte]*topic)
	b.mu.dynNode = map[string]string{}
	b.mu.dynCluster = map[string]string{}
	b.mu.eff = cfg
	b.connMu.conns = make(map[*clientConn]struct{})
	b.mem.init(cfg.QueuedMaxRequestBytes, b.goTracked, b.closing)
	b.initObserve()

	if err := b.load(); err != nil {
		b.closeLogs()
		return nil, err
	}
	if err := b.initDataPath(); err != nil {
		b.closeLogs()
		return nil, fmt.Errorf("broker: data path: %w", err)
	}
	// The coordinator itself starts in Run, once the offsets topic's
	// partition count is known; a configuration it refuses must fail
	// here.
	if _, err := group.New(groupConfig(cfg, max(cfg.OffsetsTopicNumPartitions, 1))); err != nil {
		b.closeLogs()
		return nil, fmt.Errorf("broker: group coordinator: %w", err)
	}
	if err := b.openController(); err != nil {
		b.closeLogs()
		return nil, err
	}
	b.goTracked(b.retentionLoop)
	b.goTracked(b.flushLoop)
	b.goTracked(b.checkpointLoop)
	return b, nil
}

// Run listens (on cfg.Listener if set, else on the first PLAINTEXT
// listener of cfg.Listeners) and serves until ctx ends or Close is called.
// It returns after the broker is fully closed. Run may be called once.
func (b *Broker) Run(ctx context.Context) error {
	started := false
	b.runOnce.Do(func() { started = true })
	if !started {
		return errors.New("broker: Run called twice")
	}
	select {
	case <-b.closing:
		return errors.New("broker: closed")
	default:
	}
	ln := b.cfg.Listener
	if ln == nil {
		l, err := parseListeners(b.cfg.Listeners)
		if err != nil {
			return err
		}
		ln, err = net.Listen("tcp", l.hostPort())
		if err != nil {
			return fmt.Errorf("broker: listen: %w", err)
		}
	}
	b.connMu.Lock()
	b.connMu.ln = ln
	b.connMu.addr = ln.Addr().String()
	b.connMu.Unlock()

	// Serve only once the controller knows this broker and the registry
	// reflects the metadata: a client must never see a broker that has
	// no topics yet. Connections wait in the listen backlog meanwhile.
	b.startCluster()
	if err := b.waitServing(ctx); err != nil {
		b.Close()
		return fmt.Errorf("broker: joining the cluster: %w", err)
	}
	b.legacyMigrated()
	b.removeOrphanDirs()
	b.ensureMetadataReserve(0)
	if err := b.initGroups(); err != nil {
		b.Close()
		return err
	}
	if err := b.initTxns(); err != nil {
		b.Close()
		return err
	}
	if err := b.startHTTP(); err != nil {
		b.Close()
		return err
	}
	// The cleaner threads are tracked goroutines: Close stops them
	// before it closes the logs (cleaner.go).
	b.startCleaner()
	close(b.ready)
	if b.cfg.Announce != nil {
		b.cfg.Announce(b)
	} else {
		if a := b.HTTPAddr(); a != "" {
			b.logger.Info("console and metrics listening", "url", "http://"+a+"/")
		}
		b.logger.Info("tributary broker listening", "addr", ln.Addr().String(), "node.id", b.cfg.NodeID, "cluster.id", b.clusterID)
	}

	stop := context.AfterFunc(ctx, func() { b.Close() })
	defer stop()

	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			select {
			case <-b.closing:
				return b.Close()
			default:
			}
			if errListenerClosed(err) {
				b.logger.Error("listener closed; stopping", "err", err)
				b.Close()
				return err
			}
			// Out of descriptors (EMFILE, ENFILE), ECONNABORTED and the
			// like: back off and retry, never stop (connlimit.go).
			var ok bool
			if delay, ok = b.acceptFailed(err, delay); !ok {
				return b.Close()
			}
			continue
		}
		delay = 0
		b.serveConn(nc)
	}
}

// Addr is the address the broker listens on, host:port, once Ready is
// closed; empty before.
func (b *Broker) Addr() string {
	b.connMu.Lock()
	defer b.connMu.Unlock()
	return b.connMu.addr
}

// Ready is closed once the broker listens.
func (b *Broker) Ready() <-chan struct{} { return b.ready }

// Close stops accepting, closes every connection, waits for every
// goroutine (at most ShutdownTimeout for handlers still running), closes
// the data path and then every log (flushed, with the clean-shutdown
// marker). It is idempotent: later calls wait for the first and return
// its result.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		close(b.closing)
		b.lifeCancel()
		if b.recon.cond != nil {
			b.recon.Lock()
			b.recon.cond.Broadcast()
			b.recon.Unlock()
		}
		b.connMu.Lock()
		if b.connMu.ln != nil {
			b.connMu.ln.Close()
		}
		conns := make([]*clientConn, 0, len(b.connMu.conns))
		for c := range b.connMu.conns {
			conns = append(conns, c)
		}
		b.connMu.Unlock()
		for _, c := range conns {
			c.kill()
		}
		b.stopHTTP()

		b.trackMu.Lock()
		b.tracking = false
		b.trackMu.Unlock()
		done := make(chan struct{})
		go func() { b.track.Wait(); close(done) }()
		timeout := b.cfg.ShutdownTimeout
		if timeout <= 0 {
			timeout = 10 * time.Second
		}
		select {
		case <-done:
		case <-time.After(timeout):
			b.logger.Error("shutdown timeout: goroutines still running; closing logs anyway", "timeout", timeout)
		}
		if b.rep != nil {
			b.rep.Close()
		}
		b.peers.close()
		if b.ctrl != nil {
			if err := b.ctrl.Close(); err != nil {
				b.logger.Warn("closing the controller", "err", err)
			}
		}
		b.closeDataPath()
		b.closeErr = b.closeLogs()
		b.logger.Info("tributary broker stopped")
	})
	return b.closeErr
}

// goTracked runs f in a goroutine that Close waits for. Once Close has
// started, f is not run at all.
func (b *Broker) goTracked(f func()) {
	b.trackMu.Lock()
	if !b.tracking {
		b.trackMu.Unlock()
		return
	}
	b.track.Add(1)
	b.trackMu.Unlock()
	go func() {
		defer b.track.Done()
		f()
	}()
}

// sleep waits d or until Close starts; it reports whether d passed.
func (b *Broker) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-b.closing:
		return false
	}
}
