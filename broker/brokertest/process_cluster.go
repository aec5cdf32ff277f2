package brokertest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// ProcessCluster is a cluster of `tributary broker` subprocesses started
// by StartProcessCluster, for crash tests: a node can be killed with
// SIGKILL (losing nothing but what the page cache would lose on a real
// crash: nothing, unless the machine dies) and started again on the same
// ports and data, or paused with SIGSTOP as if cut off the network.
type ProcessCluster struct {
	Nodes []*ProcessNode
}

// ProcessNode is one node of a ProcessCluster.
type ProcessNode struct {
	ID  int32
	Dir string

	t         testing.TB
	client    *net.TCPListener
	ctrl      *net.TCPListener
	overrides []string

	mu      sync.Mutex
	proc    *Process
	started []*Process // every process of this node, for the cleanup
}

// StartProcessCluster starts n broker processes (node ids 1..n) forming
// one cluster, each a combined broker and controller. The test process
// binds every listener on 127.0.0.1:0 and hands the sockets to the
// children, so the quorum's addresses are fixed before any starts and
// survive restarts. Overrides ("key=value") apply to every node.
func StartProcessCluster(t testing.TB, n int, overrides ...string) *ProcessCluster {
	t.Helper()
	c := &ProcessCluster{}
	root := t.TempDir()
	var voters []string
	for i := 1; i <= n; i++ {
		cl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		nd := &ProcessNode{ID: int32(i), Dir: filepath.Join(root, "node-"+strconv.Itoa(i)), t: t, client: cl.(*net.TCPListener), ctrl: ctl.(*net.TCPListener)}
		c.Nodes = append(c.Nodes, nd)
		voters = append(voters, fmt.Sprintf("%d@%s", i, ctl.Addr()))
	}
	// One cleanup, registered before the test makes its clients, stops
	// every node at once after those clients closed: a client closing
	// against a half-stopped cluster (a group leaving, a producer
	// flushing) would wait out its timeouts on the listening sockets this
	// process still holds for the stopped nodes.
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, nd := range c.Nodes {
			nd.mu.Lock()
			started := nd.started
			nd.mu.Unlock()
			for _, p := range started {
				wg.Add(1)
				go func() { defer wg.Done(); p.finish() }()
			}
		}
		wg.Wait()
		for _, nd := range c.Nodes {
			nd.client.Close()
			nd.ctrl.Close()
		}
	})
	for _, nd := range c.Nodes {
		nd.overrides = append([]string{
			"node.id=" + strconv.Itoa(int(nd.ID)),
			"listeners=PLAINTEXT://" + nd.client.Addr().String() + ",CONTROLLER://" + nd.ctrl.Addr().String(),
			"controller.quorum.voters=" + strings.Join(voters, ","),
			"offsets.topic.replication.factor=" + strconv.Itoa(min(n, 3)),
			"transaction.state.log.replication.factor=" + strconv.Itoa(min(n, 3)),
			"transaction.state.log.min.isr=" + strconv.Itoa(min(n, 2)),
			"http.listener=127.0.0.1:0",
			"broker.session.timeout.ms=3000",
			"broker.heartbeat.interval.ms=500",
			"replica.lag.time.max.ms=5000",
			"replica.fetch.backoff.ms=200",
		}, overrides...)
	}
	var wg sync.WaitGroup
	for _, nd := range c.Nodes {
		wg.Add(1)
		go func() { defer wg.Done(); nd.Start() }()
	}
	wg.Wait()
	return c
}

// Addrs returns every node's client address.
func (c *ProcessCluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, nd := range c.Nodes {
		out[i] = nd.Addr()
	}
	return out
}

// Addr is the node's client address, fixed for the test.
func (nd *ProcessNode) Addr() string { return nd.client.Addr().String() }

// Process is the running process, or nil.
func (nd *ProcessNode) Process() *Process {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.proc
}

// Start starts the node's process (after a Kill) and waits until it
// serves.
func (nd *ProcessNode) Start() {
	nd.t.Helper()
	cf, err := nd.client.File()
	if err != nil {
		nd.t.Fatal(err)
	}
	defer cf.Close()
	kf, err := nd.ctrl.File()
	if err != nil {
		nd.t.Fatal(err)
	}
	defer kf.Close()
	ov := append(append([]string(nil), nd.overrides...), "env:TRIBUTARY_LISTEN_FDS=PLAINTEXT:3,CONTROLLER:4")
	p := startProcess(nd.t, nd.Dir, nil, []*os.File{cf, kf}, ov, func(p *Process) {
		nd.mu.Lock()
		nd.started = append(nd.started, p)
		nd.mu.Unlock()
	})
	nd.mu.Lock()
	nd.proc = p
	nd.mu.Unlock()
}

// Kill sends SIGKILL and waits for the process to die.
func (nd *ProcessNode) Kill() {
	nd.mu.Lock()
	p := nd.proc
	nd.proc = nil
	nd.mu.Unlock()
	if p != nil {
		p.Resume() // a paused process dies too, but reap it promptly
		p.Kill()
	}
}
