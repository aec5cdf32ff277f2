package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tributary/tributary"
)

// testCluster runs n voters in this process on loopback listeners.
type testCluster struct {
	t      testing.TB
	voters map[int32]string
	dirs   map[int32]string
	nodes  map[int32]*Node
	mod    func(*Config)
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("CONTROLLER_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newTestCluster(t testing.TB, n int, mod func(*Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, voters: map[int32]string{}, dirs: map[int32]string{}, nodes: map[int32]*Node{}, mod: mod}
	lns := map[int32]net.Listener{}
	for i := int32(1); i <= int32(n); i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		lns[i] = ln
		c.voters[i] = ln.Addr().String()
		c.dirs[i] = filepath.Join(t.TempDir(), "__cluster_metadata-0")
	}
	for i := int32(1); i <= int32(n); i++ {
		c.openWith(i, lns[i])
	}
	t.Cleanup(c.closeAll)
	return c
}

func (c *testCluster) config(id int32, ln net.Listener) Config {
	cfg := Config{NodeID: id, Voters: c.voters, Listener: ln, Dir: c.dirs[id], ClusterID: "test-cluster", Logger: testLogger(c.t)}
	if c.mod != nil {
		c.mod(&cfg)
	}
	return cfg
}

func (c *testCluster) openWith(id int32, ln net.Listener) {
	c.t.Helper()
	n, err := Open(c.config(id, ln))
	require.NoError(c.t, err)
	c.nodes[id] = n
}

// open (re)starts node id on its old address and Dir.
func (c *testCluster) open(id int32) {
	c.t.Helper()
	var ln net.Listener
	require.Eventually(c.t, func() bool {
		var err error
		ln, err = net.Listen("tcp", c.voters[id])
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "re-listen on %s", c.voters[id])
	c.openWith(id, ln)
}

func (c *testCluster) close(id int32) {
	c.t.Helper()
	require.NoError(c.t, c.nodes[id].Close())
	delete(c.nodes, id)
}

// kill stops node id without a leadership handover, as a crash would.
func (c *testCluster) kill(id int32) {
	c.t.Helper()
	require.NoError(c.t, c.nodes[id].close(false))
	delete(c.nodes, id)
}

func (c *testCluster) closeAll() {
	for id, n := range c.nodes {
		n.Close()
		delete(c.nodes, id)
	}
}

// leader waits until one open node leads and every open node knows it.
func (c *testCluster) leader(timeout time.Duration) *Node {
	c.t.Helper()
	var leader *Node
	require.Eventually(c.t, func() bool {
		leader = nil
		for _, n := range c.nodes {
			if n.IsLeader() {
				leader = n
			}
		}
		if leader == nil {
			return false
		}
		for _, n := range c.nodes {
			if n.LeaderID() != leader.cfg.NodeID {
				return false
			}
		}
		return leader.Image().Initialized
	}, timeout, 10*time.Millisecond, "no leader elected")
	return leader
}

func (c *testCluster) follower() *Node {
	for _, n := range c.nodes {
		if !n.IsLeader() {
			return n
		}
	}
	c.t.Fatal("no follower")
	return nil
}

// checkGoroutines fails if goroutines started during the test outlive it.
func checkGoroutines(t *testing.T) func() {
	base := runtime.NumGoroutine()
	return func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > base {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Fatalf("goroutines leaked: %d running, %d before\n%s", runtime.NumGoroutine(), base, buf)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func registerAndUnfence(t *testing.T, n *Node, id int32) int64 {
	t.Helper()
	epoch, err := n.RegisterBroker(ctxT(t, 10*time.Second), BrokerInfo{ID: id, Host: "127.0.0.1", Port: 9000 + id})
	require.NoError(t, err)
	require.True(t, n.Image().Brokers[id].Fenced, "registers fenced")
	fenced, err := n.Heartbeat(ctxT(t, 10*time.Second), id, epoch)
	require.NoError(t, err)
	require.False(t, fenced, "first heartbeat unfences")
	return epoch
}

func TestSingleNodeBootstrapAndRestart(t *testing.T) {
	done := checkGoroutines(t)
	c := newTestCluster(t, 1, nil)
	n := c.leader(10 * time.Second)
	require.Equal(t, "test-cluster", n.Image().ClusterID)

	epoch := registerAndUnfence(t, n, 1)
	res := n.CreateTopics(ctxT(t, 10*time.Second), []TopicSpec{{Name: "a", Partitions: 3, ReplicationFactor: 1}})
	require.NoError(t, res[0].Err)
	require.Equal(t, int32(3), res[0].Partitions)
	require.NotNil(t, n.Image().TopicByID(res[0].ID), "visible on return")
	first, count, err := n.AllocateProducerIDs(ctxT(t, 10*time.Second), 1, epoch)
	require.NoError(t, err)
	require.Equal(t, int64(0), first)
	require.Equal(t, int32(1000), count)
	before := n.Image()

	c.close(1)
	c.open(1)
	n = c.leader(10 * time.Second)
	require.NoError(t, n.WaitApplied(ctxT(t, 10*time.Second), before.Offset))
	requireSameTopics(t, before, n.Image())
	require.Equal(t, "test-cluster", n.Image().ClusterID)

	// The restarted broker registers again: new epoch, fenced until its
	// heartbeat; its partitions lose and regain their leader.
	epoch2 := registerAndUnfence(t, n, 1)
	require.Greater(t, epoch2, epoch)
	for _, p := range n.Image().TopicByName("a").Partitions {
		require.Equal(t, int32(1), p.Leader)
		require.Positive(t, p.LeaderEpoch)
	}
	first, _, err = n.AllocateProducerIDs(ctxT(t, 10*time.Second), 1, epoch2)
	require.NoError(t, err)
	require.Equal(t, int64(1000), first, "producer ids never handed out twice")
	_, err = n.Heartbeat(ctxT(t, 10*time.Second), 1, epoch)
	require.ErrorIs(t, err, tributary.ErrStaleBrokerEpoch)
	c.closeAll()
	done()
}

func requireSameTopics(t *testing.T, want, got *Image) {
	t.Helper()
	require.Equal(t, len(want.TopicsByName), len(got.TopicsByName))
	for name, tw := range want.TopicsByName {
		tg := got.TopicByName(name)
		require.NotNil(t, tg, name)
		require.Equal(t, tw.ID, tg.ID)
		require.Equal(t, len(tw.Partitions), len(tg.Partitions))
	}
}

func TestBootstrapImageMigrates(t *testing.T) {
	done := checkGoroutines(t)
	c := newTestCluster(t, 1, func(cfg *Config) {
		cfg.Bootstrap = func() (*Image, error) {
			img := NewImage()
			img.ClusterID = "old-cluster"
			img.NextProducerID = 5000
			img.ClusterConfigs["log.retention.ms"] = "1000"
			img.putTopic(&Topic{Name: "old", ID: TopicID{1, 2, 3}, Configs: map[string]string{"cleanup.policy": "compact"},
				Partitions: []*Partition{{Replicas: []int32{1}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 4}}})
			return img, nil
		}
	})
	n := c.leader(10 * time.Second)
	img := n.Image()
	require.Equal(t, "old-cluster", img.ClusterID)
	require.Equal(t, int64(5000), img.NextProducerID)
	require.Equal(t, "1000", img.ClusterConfigs["log.retention.ms"])
	p := img.Partition("old", 0)
	require.NotNil(t, p)
	require.Equal(t, int32(-1), p.Leader, "leaderless until its broker registers")
	registerAndUnfence(t, n, 1)
	p = n.Image().Partition("old", 0)
	require.Equal(t, int32(1), p.Leader)
	require.Equal(t, int32(5), p.LeaderEpoch, "the migrated leader epoch goes on")
	require.Equal(t, TopicID{1, 2, 3}, n.Image().TopicByName("old").ID)

	// Bootstrap runs on a fresh Dir only.
	c.close(1)
	c.mod = func(cfg *Config) {
		cfg.Bootstrap = func() (*Image, error) { return nil, errors.New("must not be called on restart") }
	}
	c.open(1)
	n = c.leader(10 * time.Second)
	require.NoError(t, n.WaitApplied(ctxT(t, 10*time.Second), img.Offset))
	require.NotNil(t, n.Image().TopicByName("old"))
	c.closeAll()
	done()
}

func TestThreeNodeQuorum(t *testing.T) {
	done := checkGoroutines(t)
	c := newTestCluster(t, 3, func(cfg *Config) {
		// Small snapshots so a restarted node catches up from a
		// snapshot plus the log, not from the whole log.
		cfg.SnapshotThreshold = 8
		cfg.SnapshotInterval = 50 * time.Millisecond
	})
	leader := c.leader(15 * time.Second)
	f := c.follower()
	for id := int32(1); id <= 3; id++ {
		registerAndUnfence(t, c.nodes[id], id)
	}

	// A follower forwards; the caller's image shows the topic on return,
	// the others' soon after.
	res := f.CreateTopics(ctxT(t, 10*time.Second), []TopicSpec{{Name: "fwd", Partitions: 6, ReplicationFactor: 3}})
	require.NoError(t, res[0].Err)
	tp := f.Image().TopicByName("fwd")
	require.NotNil(t, tp, "visible on the calling follower at return")
	for _, p := range tp.Partitions {
		require.Len(t, p.Replicas, 3)
		require.Equal(t, p.Replicas[0], p.Leader)
	}
	for _, n := range c.nodes {
		require.NoError(t, n.WaitApplied(ctxT(t, 10*time.Second), f.Image().Offset))
		require.NotNil(t, n.Image().TopicByName("fwd"))
	}
	// Errors come back typed across the forward.
	res = f.CreateTopics(ctxT(t, 10*time.Second), []TopicSpec{{Name: "fwd", Partitions: 1, ReplicationFactor: 1}, {Name: "big", Partitions: 1, ReplicationFactor: 4}})
	require.ErrorIs(t, res[0].Err, tributary.ErrTopicAlreadyExists)
	require.ErrorIs(t, res[1].Err, tributary.ErrInvalidReplicationFactor)
	require.Equal(t, "Replication factor: 4 larger than available brokers: 3.", Message(res[1].Err))

	q, err := f.Quorum(ctxT(t, 10*time.Second))
	require.NoError(t, err)
	// (Not necessarily `leader`: under -race on a loaded machine Raft may
	// have changed leaders since.)
	require.Contains(t, c.voters, q.LeaderID)
	require.Positive(t, q.LeaderEpoch)
	require.Len(t, q.Voters, 3)
	for _, v := range q.Voters {
		require.GreaterOrEqual(t, v.LogEndOffset, int64(1), "voter %d answered", v.ID)
	}

	// The leader dies: another is elected within a few seconds and topic
	// creation goes on.
	leader = c.leader(10 * time.Second)
	old := leader.cfg.NodeID
	start := time.Now()
	c.kill(old)
	leader = c.leader(10 * time.Second)
	t.Logf("new leader %d elected %v after the old one died", leader.cfg.NodeID, time.Since(start).Round(time.Millisecond))
	require.NotEqual(t, old, leader.cfg.NodeID)
	res = c.follower().CreateTopics(ctxT(t, 10*time.Second), []TopicSpec{{Name: "after-failover", Partitions: 1, ReplicationFactor: 1}})
	require.NoError(t, res[0].Err)

	// Grow the log past the snapshot threshold while the old leader is
	// away, so it has to catch up from a snapshot.
	for i := 0; i < 20; i++ {
		require.NoError(t, leader.AlterConfigs(ctxT(t, 10*time.Second), []ConfigChange{{Resource: ResourceBroker, Key: "k", Value: fmt.Sprint(i)}}))
	}
	// Close a second voter: no majority. Operations fail with a timeout
	// (NOT_CONTROLLER wrapping the deadline), never a silent success.
	second := c.follower().cfg.NodeID
	c.close(second)
	var survivor *Node
	for _, n := range c.nodes {
		survivor = n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	res = survivor.CreateTopics(ctx, []TopicSpec{{Name: "no-quorum", Partitions: 1, ReplicationFactor: 1}})
	cancel()
	require.ErrorIs(t, res[0].Err, tributary.ErrNotController)
	require.ErrorIs(t, res[0].Err, context.DeadlineExceeded)
	require.Nil(t, survivor.Image().TopicByName("no-quorum"))

	// Restore one: a majority again, and the operation works.
	c.open(second)
	leader = c.leader(15 * time.Second)
	res = survivor.CreateTopics(ctxT(t, 10*time.Second), []TopicSpec{{Name: "quorum-back", Partitions: 1, ReplicationFactor: 1}})
	require.NoError(t, res[0].Err)

	// Restart the first one with its Dir: it catches up.
	c.open(old)
	target := survivor.Image().Offset
	require.NoError(t, c.nodes[old].WaitApplied(ctxT(t, 15*time.Second), target))
	requireSameTopics(t, survivor.Image(), c.nodes[old].Image())
	require.Equal(t, "19", c.nodes[old].Image().ClusterConfigs["k"])
	snaps, err := filepath.Glob(filepath.Join(c.dirs[old], "snapshots", "*", "state.bin"))
	require.NoError(t, err)
	require.NotEmpty(t, snaps, "the restarted voter installed or took a snapshot")
	c.closeAll()
	done()
}

// TestHeartbeatFencing stops one broker's heartbeats: the controller
// fences it after the session timeout and its partitions get new leaders;
// heartbeats again unfence it.
func TestHeartbeatFencing(t *testing.T) {
	done := checkGoroutines(t)
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.SessionTimeout = 800 * time.Millisecond
		cfg.HeartbeatInterval = 100 * time.Millisecond
	})
	c.leader(15 * time.Second)
	epochs := map[int32]int64{}
	for id := int32(1); id <= 3; id++ {
		epochs[id] = registerAndUnfence(t, c.nodes[id], id)
	}
	res := c.nodes[1].CreateTopics(ctxT(t, 10*time.Second), []TopicSpec{{Name: "t", Partitions: 6, ReplicationFactor: 3}})
	require.NoError(t, res[0].Err)
	before := c.nodes[1].Image().TopicByName("t")
	require.Len(t, c.nodes[1].Image().LedBy(2), 2)

	// Each broker heartbeats through its own controller node (so most
	// heartbeats are forwarded); broker 2 stops.
	var mu sync.Mutex
	silent := map[int32]bool{2: true}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for id := int32(1); id <= 3; id++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				mu.Lock()
				s := silent[id]
				mu.Unlock()
				if !s {
					ctx, cancel := context.WithTimeout(context.Background(), time.Second)
					c.nodes[id].Heartbeat(ctx, id, epochs[id])
					cancel()
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()

	n := c.nodes[1]
	require.Eventually(t, func() bool {
		img := n.Image()
		return img.Brokers[2].Fenced && len(img.LedBy(2)) == 0
	}, 10*time.Second, 20*time.Millisecond, "broker 2 fenced and its partitions re-led")
	img := n.Image()
	require.False(t, img.Brokers[1].Fenced)
	require.False(t, img.Brokers[3].Fenced)
	for i, p := range img.TopicByName("t").Partitions {
		require.NotEqual(t, int32(-1), p.Leader)
		require.False(t, p.InISR(2), "fenced broker out of every ISR")
		old := before.Partitions[i]
		if old.Leader == 2 {
			require.Equal(t, old.LeaderEpoch+1, p.LeaderEpoch)
		}
		require.Greater(t, p.PartitionEpoch, old.PartitionEpoch)
	}

	mu.Lock()
	silent[2] = false
	mu.Unlock()
	require.Eventually(t, func() bool { return !n.Image().Brokers[2].Fenced }, 10*time.Second, 20*time.Millisecond, "heartbeats unfence")
	close(stop)
	wg.Wait()
	stop = make(chan struct{})
	c.closeAll()
	done()
}

// TestNewLeaderGivesFreshSessions: a broker silent for most of its session
// timeout under the old leader is not fenced the moment a new leader takes
// over; the new leader gives it a whole session timeout first.
func TestNewLeaderGivesFreshSessions(t *testing.T) {
	done := checkGoroutines(t)
	const session = 2 * time.Second
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.SessionTimeout = session
		cfg.HeartbeatInterval = 100 * time.Millisecond
	})
	leader := c.leader(15 * time.Second)
	registerAndUnfence(t, leader, 7) // the heartbeat in here is the last one
	// Silent for 1.5 s under the old leader (no fence yet), then the
	// leader goes away; the election adds about a second of silence.
	time.Sleep(1500 * time.Millisecond)
	require.False(t, leader.Image().Brokers[7].Fenced)
	closed := time.Now()
	c.kill(leader.cfg.NodeID)
	n := c.leader(15 * time.Second)
	require.Eventually(t, func() bool { return n.Image().Brokers[7].Fenced }, 15*time.Second, 10*time.Millisecond)
	took := time.Since(closed)
	t.Logf("fenced %v after the old leader closed", took.Round(time.Millisecond))
	require.GreaterOrEqual(t, took, session, "the new leader must wait a whole session timeout")
	c.closeAll()
	done()
}

// TestCloseHandsOverLeadership: a leader that closes transfers
// leadership, so the quorum has a new leader at once, not after an
// election timeout.
func TestCloseHandsOverLeadership(t *testing.T) {
	done := checkGoroutines(t)
	c := newTestCluster(t, 3, func(cfg *Config) {
		// Elections would take at least 3 s: a quicker new leader can
		// only come from the handover.
		cfg.RaftHeartbeatTimeout = 3 * time.Second
		cfg.RaftElectionTimeout = 3 * time.Second
	})
	leader := c.leader(30 * time.Second)
	start := time.Now()
	c.close(leader.cfg.NodeID)
	next := c.leader(30 * time.Second)
	took := time.Since(start)
	t.Logf("leader %d took over %v after leader %d closed", next.cfg.NodeID, took.Round(time.Millisecond), leader.cfg.NodeID)
	require.Less(t, took, 3*time.Second)
	res := next.CreateTopics(ctxT(t, 10*time.Second), []TopicSpec{{Name: "x", Partitions: 1, ReplicationFactor: 1, ValidateOnly: true}})
	require.ErrorIs(t, res[0].Err, tributary.ErrInvalidReplicationFactor, "no brokers registered: the leader answers")
	c.closeAll()
	done()
}

// TestOperationsAcrossForwarding runs the remaining operations from a
// follower, so each is forwarded, decided on the leader and visible here.
func TestOperationsAcrossForwarding(t *testing.T) {
	done := checkGoroutines(t)
	c := newTestCluster(t, 3, nil)
	c.leader(15 * time.Second)
	f := c.follower()
	ctx := ctxT(t, 30*time.Second)
	epochs := map[int32]int64{}
	for id := int32(1); id <= 3; id++ {
		epochs[id] = registerAndUnfence(t, f, id)
	}
	res := f.CreateTopics(ctx, []TopicSpec{{Name: "t", Assignment: [][]int32{{1, 2}, {2, 3}}}, {Name: "v", Partitions: 1, ReplicationFactor: 1, ValidateOnly: true}})
	require.NoError(t, res[0].Err)
	require.NoError(t, res[1].Err)
	require.Nil(t, f.Image().TopicByName("v"), "validate only creates nothing")
	id := res[0].ID

	require.NoError(t, f.CreatePartitions(ctx, "t", 3, [][]int32{{3, 1}}, false))
	require.Len(t, f.Image().TopicByName("t").Partitions, 3)
	require.NoError(t, f.CreatePartitions(ctx, "t", 5, nil, true))
	require.Len(t, f.Image().TopicByName("t").Partitions, 3)
	err := f.CreatePartitions(ctx, "t", 2, nil, false)
	require.ErrorIs(t, err, tributary.ErrInvalidPartitions)

	require.NoError(t, f.AlterConfigs(ctx, []ConfigChange{{Resource: ResourceTopic, Name: "t", Key: "retention.ms", Value: "5"}}))
	require.Equal(t, "5", f.Image().TopicByName("t").Configs["retention.ms"])

	// ISR shrink by the leader, then a stale retry.
	p := f.Image().Partition("t", 0)
	ap := AlterPartitionRequest{TopicID: id, Partition: 0, LeaderID: p.Leader, BrokerEpoch: epochs[p.Leader],
		LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, NewISR: []int32{p.Leader}}
	got, err := f.AlterPartition(ctx, ap)
	require.NoError(t, err)
	require.Equal(t, []int32{1}, got.ISR)
	require.Equal(t, p.PartitionEpoch+1, got.PartitionEpoch)
	_, err = f.AlterPartition(ctx, ap)
	require.ErrorIs(t, err, tributary.ErrInvalidUpdateVersion)

	// Reassign partition 1 from 2,3 to 1,3; finish it by adding 1 to the ISR.
	tp1 := tributary.TopicPartition{Topic: "t", Partition: 1}
	errs, err := f.AlterReassignments(ctx, map[tributary.TopicPartition][]int32{tp1: {1, 3}, {Topic: "nope"}: {1}})
	require.NoError(t, err)
	require.NoError(t, errs[tp1])
	require.ErrorIs(t, errs[tributary.TopicPartition{Topic: "nope"}], tributary.ErrUnknownTopicOrPartition)
	lst := f.ListReassignments(nil)
	require.Equal(t, []int32{1}, lst[tp1].AddingReplicas)
	require.Equal(t, []int32{2}, lst[tp1].RemovingReplicas)
	p = f.Image().Partition("t", 1)
	_, err = f.AlterPartition(ctx, AlterPartitionRequest{TopicID: id, Partition: 1, LeaderID: p.Leader, BrokerEpoch: -1,
		LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, NewISR: []int32{2, 3, 1}})
	require.NoError(t, err)
	p = f.Image().Partition("t", 1)
	require.Equal(t, []int32{1, 3}, p.Replicas)
	require.Equal(t, int32(1), p.Leader, "the removed leader hands over to the first target replica in the ISR")
	require.Empty(t, f.ListReassignments(nil))

	el, err := f.ElectLeaders(ctx, false, []tributary.TopicPartition{tp1, {Topic: "t", Partition: 7}})
	require.NoError(t, err)
	require.ErrorIs(t, el[tp1], tributary.ErrElectionNotNeeded)
	require.ErrorIs(t, el[tributary.TopicPartition{Topic: "t", Partition: 7}], tributary.ErrUnknownTopicOrPartition)
	el, err = f.ElectLeaders(ctx, true, []tributary.TopicPartition{tp1})
	require.NoError(t, err)
	require.ErrorIs(t, el[tp1], tributary.ErrElectionNotNeeded)

	errsDel := f.DeleteTopics(ctx, [][16]byte{id, {9, 9}})
	require.NoError(t, errsDel[0])
	require.ErrorIs(t, errsDel[1], tributary.ErrUnknownTopicId)
	require.Nil(t, f.Image().TopicByName("t"))

	require.NoError(t, f.UnregisterBroker(ctx, 3, epochs[3]))
	require.Nil(t, f.Image().Broker(3))
	_, err = f.Heartbeat(ctx, 3, epochs[3])
	require.ErrorIs(t, err, tributary.ErrBrokerIdNotRegistered)

	// Subscribe signals after applies.
	sig, cancel := f.Subscribe()
	defer cancel()
	require.NoError(t, f.AlterConfigs(ctx, []ConfigChange{{Resource: ResourceBroker, Name: "1", Key: "a", Value: "b"}}))
	select {
	case <-sig:
	case <-ctx.Done():
		t.Fatal("no signal after an apply")
	}
	c.closeAll()
	done()
}

// TestSnapshotRestart restarts a lone voter whose state is a snapshot plus
// log entries written after it: the image comes back whole.
func TestSnapshotRestart(t *testing.T) {
	done := checkGoroutines(t)
	c := newTestCluster(t, 1, func(cfg *Config) { cfg.SnapshotThreshold = 4 })
	n := c.leader(10 * time.Second)
	ctx := ctxT(t, 30*time.Second)
	registerAndUnfence(t, n, 1)
	for i := 0; i < 5; i++ {
		res := n.CreateTopics(ctx, []TopicSpec{{Name: fmt.Sprint("before-", i), Partitions: 2, ReplicationFactor: 1}})
		require.NoError(t, res[0].Err)
	}
	require.NoError(t, n.raft.Snapshot().Error())
	for i := 0; i < 3; i++ {
		res := n.CreateTopics(ctx, []TopicSpec{{Name: fmt.Sprint("after-", i), Partitions: 1, ReplicationFactor: 1}})
		require.NoError(t, res[0].Err)
	}
	require.NoError(t, n.AlterConfigs(ctx, []ConfigChange{{Resource: ResourceTopic, Name: "before-0", Key: "retention.ms", Value: "7"}}))
	before := n.Image()
	c.close(1)
	snaps, err := filepath.Glob(filepath.Join(c.dirs[1], "snapshots", "*", "state.bin"))
	require.NoError(t, err)
	require.NotEmpty(t, snaps)

	c.open(1)
	n = c.leader(10 * time.Second)
	require.NoError(t, n.WaitApplied(ctx, before.Offset))
	requireSameImage(t, before, n.Image())
	c.closeAll()
	done()
}

// TestAutoLeaderRebalance: after a restart leaves a broker without the
// partitions it should lead, the active controller moves them back at the
// next imbalance check.
func TestAutoLeaderRebalance(t *testing.T) {
	done := checkGoroutines(t)
	c := newTestCluster(t, 1, func(cfg *Config) { cfg.ImbalanceCheckInterval = 200 * time.Millisecond })
	n := c.leader(10 * time.Second)
	ctx := ctxT(t, 30*time.Second)
	for id := int32(1); id <= 3; id++ {
		registerAndUnfence(t, n, id)
	}
	res := n.CreateTopics(ctx, []TopicSpec{{Name: "t", Assignment: [][]int32{{1, 2, 3}, {2, 3, 1}, {3, 1, 2}}}})
	require.NoError(t, res[0].Err)
	// Broker 1 restarts: it loses partition 0 and leaves every ISR.
	registerAndUnfence(t, n, 1)
	p := n.Image().Partition("t", 0)
	require.Equal(t, int32(2), p.Leader)
	// Its leader lets it back into the ISR once caught up.
	_, err := n.AlterPartition(ctx, AlterPartitionRequest{TopicID: res[0].ID, Partition: 0, LeaderID: 2, BrokerEpoch: -1,
		LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, NewISR: []int32{2, 3, 1}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return n.Image().Partition("t", 0).Leader == 1 }, 10*time.Second, 10*time.Millisecond,
		"preferred leader restored by the auto rebalance")
	require.InDelta(t, 0.0, Imbalance(n.Image())[1], 1e-9)
	c.closeAll()
	done()
}

// TestRetriedOperationAppliesOnce sends the same operation (same token)
// twice, as call() does when the first answer was lost with a leader: the
// second is answered from the applied entry, not decided again.
func TestRetriedOperationAppliesOnce(t *testing.T) {
	done := checkGoroutines(t)
	c := newTestCluster(t, 1, nil)
	n := c.leader(10 * time.Second)
	registerAndUnfence(t, n, 1)
	args, err := json.Marshal([]TopicSpec{{Name: "once", Partitions: 2, ReplicationFactor: 1}})
	require.NoError(t, err)
	req := &rpcRequest{Op: opCreateTopics, Args: args, ID: newToken()}
	first := n.exec(context.Background(), req)
	require.Nil(t, first.Err)
	offset := n.Image().Offset
	second := n.exec(context.Background(), req)
	require.Nil(t, second.Err)
	require.Equal(t, first, second, "same answer, no TOPIC_ALREADY_EXISTS")
	require.Equal(t, offset, n.Image().Offset, "nothing new in the log")
	// A new token is a new operation.
	req.ID = newToken()
	third := n.exec(context.Background(), req)
	var res []wireTopicResult
	require.NoError(t, json.Unmarshal(third.Result, &res))
	require.Equal(t, tributary.ErrTopicAlreadyExists.Code, res[0].Err.Code)

	// Registration: the replay answers the epoch the entry gave.
	args, _ = json.Marshal(BrokerInfo{ID: 2, Host: "h", Port: 2})
	req = &rpcRequest{Op: opRegister, Args: args, ID: newToken()}
	first = n.exec(context.Background(), req)
	second = n.exec(context.Background(), req)
	require.Equal(t, first, second)
	var epoch int64
	require.NoError(t, json.Unmarshal(second.Result, &epoch))
	require.Equal(t, n.Image().Brokers[2].Epoch, epoch)
	c.closeAll()
	done()
}

// TestControllerListenerRejectsGarbage: bad bytes on the controller
// listener close the connection and leave the node working.
func TestControllerListenerRejectsGarbage(t *testing.T) {
	done := checkGoroutines(t)
	c := newTestCluster(t, 1, nil)
	n := c.leader(10 * time.Second)
	addr := c.voters[1]
	for _, payload := range [][]byte{
		[]byte("X"),                                 // unknown protocol byte
		{'C', 0xff, 0xff, 0xff, 0xff},               // frame above the limit
		append([]byte{'C', 0, 0, 0, 5}, "{{{{{"...), // not JSON
	} {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		_, err = conn.Write(payload)
		require.NoError(t, err)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		require.Error(t, err, "connection closed")
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "closed, not left hanging: %q", payload)
		conn.Close()
	}
	// An unknown operation is answered INVALID_REQUEST.
	resp, err := n.send(ctxT(t, 10*time.Second), addr, &rpcRequest{Op: "nope", Args: json.RawMessage("{}")})
	require.NoError(t, err)
	require.Equal(t, tributary.ErrInvalidRequest.Code, resp.Err.Code)
	// Malformed arguments too.
	resp, err = n.send(ctxT(t, 10*time.Second), addr, &rpcRequest{Op: opCreateTopics, Args: json.RawMessage(`{"x":1}`)})
	require.NoError(t, err)
	require.Equal(t, tributary.ErrInvalidRequest.Code, resp.Err.Code)
	registerAndUnfence(t, n, 1)
	c.closeAll()
	done()
}

// TestConnectionLimit: idle connections beyond maxConns are refused, and
// once they go the node takes connections again.
func TestConnectionLimit(t *testing.T) {
	done := checkGoroutines(t)
	c := newTestCluster(t, 1, nil)
	n := c.leader(10 * time.Second)
	setMax := func(v int) { // under mu: track reads it there
		n.mu.Lock()
		maxConns = v
		n.mu.Unlock()
	}
	old := maxConns
	setMax(8)
	defer setMax(old)
	var idle []net.Conn
	for range maxConns {
		conn, err := net.Dial("tcp", c.voters[1])
		require.NoError(t, err)
		idle = append(idle, conn)
	}
	require.Eventually(t, func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		return len(n.mu.conns) >= maxConns
	}, 10*time.Second, 10*time.Millisecond)
	extra, err := net.Dial("tcp", c.voters[1])
	require.NoError(t, err)
	extra.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = extra.Read(make([]byte, 1))
	require.Error(t, err)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "refused, not left hanging")
	extra.Close()
	for _, conn := range idle {
		conn.Close()
	}
	setMax(old)
	registerAndUnfence(t, n, 1)
	c.closeAll()
	done()
}

func TestOpenRejectsBadConfig(t *testing.T) {
	_, err := Open(Config{NodeID: 1, Voters: map[int32]string{2: "127.0.0.1:1"}, Dir: t.TempDir()})
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "controller.quorum.voters"))
	_, err = Open(Config{NodeID: 1, Voters: map[int32]string{1: "127.0.0.1:0"}})
	require.Error(t, err)
}

// BenchmarkOps measures one operation's round trip on a 3-voter quorum:
// a heartbeat (no log entry) and a config change (one committed entry),
// called on the leader and on a follower (forwarded).
func BenchmarkOps(b *testing.B) {
	c := newTestCluster(b, 3, nil)
	leader := c.leader(15 * time.Second)
	f := c.follower()
	ctx := context.Background()
	epoch, err := leader.RegisterBroker(ctx, BrokerInfo{ID: 1, Host: "h", Port: 1})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		n    *Node
	}{{"leader", leader}, {"follower", f}} {
		b.Run("heartbeat/"+bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := bc.n.Heartbeat(ctx, 1, epoch); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("commit/"+bc.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				if err := bc.n.AlterConfigs(ctx, []ConfigChange{{Resource: ResourceBroker, Key: "k", Value: fmt.Sprint(i)}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
