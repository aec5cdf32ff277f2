package controller

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tributary/tributary"
)

// netCut cuts voters off from each other through the Listener and Dial
// seams of Config, as brokertest's network partition will.
type netCut struct {
	mu     sync.Mutex
	byAddr map[string]int32
	cut    map[int32]bool
	conns  map[int32][]net.Conn
}

func newNetCut(voters map[int32]string) *netCut {
	nc := &netCut{byAddr: map[string]int32{}, cut: map[int32]bool{}, conns: map[int32][]net.Conn{}}
	for id, addr := range voters {
		nc.byAddr[addr] = id
	}
	return nc
}

func (nc *netCut) isCut(ids ...int32) bool {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	for _, id := range ids {
		if nc.cut[id] {
			return true
		}
	}
	return false
}

func (nc *netCut) add(c net.Conn, ids ...int32) {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	for _, id := range ids {
		nc.conns[id] = append(nc.conns[id], c)
	}
}

// setCut cuts node id off (closing its connections) or heals it.
func (nc *netCut) setCut(id int32, cut bool) {
	nc.mu.Lock()
	nc.cut[id] = cut
	conns := nc.conns[id]
	nc.conns[id] = nil
	nc.mu.Unlock()
	if cut {
		for _, c := range conns {
			c.Close()
		}
	}
}

func (nc *netCut) dial(from int32) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		to, known := nc.byAddr[addr]
		if known && nc.isCut(from, to) {
			return nil, errors.New("netcut: unreachable")
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			nc.add(c, from, to)
		}
		return c, err
	}
}

type cutListener struct {
	net.Listener
	id int32
	nc *netCut
}

func (l *cutListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.nc.isCut(l.id) {
			c.Close()
			continue
		}
		l.nc.add(c, l.id)
		return c, nil
	}
}

// TestNetworkPartition cuts the leader off: the majority elects another
// and keeps working; the cut node steps down and its operations fail
// with NOT_CONTROLLER after their deadline; healed, it catches up.
func TestNetworkPartition(t *testing.T) {
	done := checkGoroutines(t)
	var nc *netCut
	c := newTestCluster(t, 3, func(cfg *Config) {
		if nc == nil {
			nc = newNetCut(cfg.Voters)
		}
		cfg.Listener = &cutListener{Listener: cfg.Listener, id: cfg.NodeID, nc: nc}
		cfg.Dial = nc.dial(cfg.NodeID)
	})
	leader := c.leader(15 * time.Second)
	cutID := leader.cfg.NodeID
	nc.setCut(cutID, true)
	cutNode := c.nodes[cutID]

	require.Eventually(t, func() bool { return !cutNode.IsLeader() }, 10*time.Second, 10*time.Millisecond, "the cut leader steps down")
	var majority *Node
	require.Eventually(t, func() bool {
		for id, n := range c.nodes {
			if id != cutID && n.IsLeader() {
				majority = n
				return true
			}
		}
		return false
	}, 15*time.Second, 10*time.Millisecond, "the majority elects a leader")
	res := majority.CreateTopics(ctxT(t, 10*time.Second), []TopicSpec{{Name: "majority", Partitions: 1, ReplicationFactor: 1, ValidateOnly: true}})
	require.ErrorIs(t, res[0].Err, tributary.ErrInvalidReplicationFactor, "the majority's leader answers (no brokers yet)")
	require.NoError(t, majority.AlterConfigs(ctxT(t, 10*time.Second), []ConfigChange{{Resource: ResourceBroker, Key: "during", Value: "cut"}}))

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	err := cutNode.AlterConfigs(ctx, []ConfigChange{{Resource: ResourceBroker, Key: "lost", Value: "x"}})
	cancel()
	require.ErrorIs(t, err, tributary.ErrNotController)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	nc.setCut(cutID, false)
	target := majority.Image().Offset
	require.NoError(t, cutNode.WaitApplied(ctxT(t, 15*time.Second), target))
	require.Equal(t, "cut", cutNode.Image().ClusterConfigs["during"])
	require.NotContains(t, cutNode.Image().ClusterConfigs, "lost")
	c.closeAll()
	done()
}
