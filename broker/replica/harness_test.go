package replica

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/storage"
	"github.com/tributary/tributary/internal/batch/batchtest"
)

// This file is a whole cluster in one process: real storage.Logs in temp
// directories, one Manager per node, a Transport that serves a
// follower's requests from the leader node's Partition and Log (what the
// broker's handlers will do over TCP), and a controller that commits
// AlterPartition and pushes every state change to the nodes with Apply.

const topicName = "t"

// clock is the injected Config.Now: replica lag moves only when a test
// says so.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type node struct {
	id    int32
	dir   string
	m     *Manager
	logs  []*storage.Log // by partition index
	parts []*Partition
	log   *storage.Log // partition 0's
	p     *Partition
}

type cluster struct {
	t   testing.TB
	clk *clock
	cfg func(id int32) Config

	mu     sync.Mutex
	sts    []State // by partition index
	nodes  map[int32]*node
	cut    map[int32]bool // nodes cut off from every other (and the controller)
	fenced map[int32]bool // nodes the controller refuses as new ISR members
	alters []AlterPartitionRequest

	changed chan struct{} // closed and replaced by notify: a log grew or a HW moved
	// mangle, when set, may rewrite the records of a fetch answer to
	// node id (a damaged network or a buggy leader).
	mangle func(id int32, records []byte) []byte

	fetches sync.Map // node id -> *atomic.Int64: fetches served from that follower
	ofle    sync.Map // node id -> *atomic.Int64: OffsetForLeaderEpoch requests served
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("REPLICA_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// newCluster starts n nodes (ids 1..n) hosting partition 0 of topicName,
// led by node 1 with every node in the ISR.
func newCluster(t testing.TB, n int, tweak func(*Config)) *cluster {
	return newClusterParts(t, n, []int32{1}, tweak)
}

// newClusterParts starts n nodes hosting len(leaders) partitions of
// topicName on every node, partition i led by leaders[i].
func newClusterParts(t testing.TB, n int, leaders []int32, tweak func(*Config)) *cluster {
	c := &cluster{
		t:       t,
		clk:     &clock{t: time.UnixMilli(1_700_000_000_000)},
		nodes:   make(map[int32]*node),
		cut:     make(map[int32]bool),
		fenced:  make(map[int32]bool),
		changed: make(chan struct{}),
	}
	c.cfg = func(id int32) Config {
		cfg := DefaultConfig(id)
		cfg.Logger = testLogger(t).With("node", id)
		cfg.Now = c.clk.Now
		cfg.FetchWaitMax = 20 * time.Millisecond
		cfg.FetchBackoff = 10 * time.Millisecond
		cfg.ISRCheckInterval = 5 * time.Millisecond
		cfg.HighWatermarkCheckpointInterval = 50 * time.Millisecond
		cfg.ReplicaLagTimeMax = 10 * time.Second
		cfg.Transport = &transport{c: c, from: id}
		cfg.AlterPartition = func(ctx context.Context, req AlterPartitionRequest) (State, error) {
			return c.alterPartition(id, req)
		}
		cfg.HighWatermarkMoved = func(*Partition) { c.notify() }
		if tweak != nil {
			tweak(&cfg)
		}
		return cfg
	}
	var replicas []int32
	for i := 1; i <= n; i++ {
		replicas = append(replicas, int32(i))
	}
	for _, l := range leaders {
		c.sts = append(c.sts, State{Leader: l, Replicas: replicas, ISR: slices.Clone(replicas)})
	}
	for _, id := range replicas {
		c.start(id, t.TempDir())
	}
	c.propagate()
	t.Cleanup(func() {
		for _, nd := range c.nodeList() {
			c.stop(nd.id)
		}
	})
	return c
}

// start opens node id's logs under dir and a Manager hosting them (no
// role until the next propagate).
func (c *cluster) start(id int32, dir string) *node {
	c.t.Helper()
	m, err := New(c.cfg(id))
	require.NoError(c.t, err)
	nd := &node{id: id, dir: dir, m: m}
	for i := range c.sts {
		l, err := storage.Open(filepath.Join(dir, fmt.Sprintf("%s-%d", topicName, i)), storage.DefaultConfig(), storage.Options{})
		require.NoError(c.t, err)
		nd.logs = append(nd.logs, l)
		nd.parts = append(nd.parts, m.Add(topicName, [16]byte{1}, int32(i), l))
	}
	nd.log, nd.p = nd.logs[0], nd.parts[0]
	c.mu.Lock()
	c.nodes[id] = nd
	c.mu.Unlock()
	return nd
}

// stop closes node id as a clean shutdown would; restart reopens it.
func (c *cluster) stop(id int32) *node {
	c.mu.Lock()
	nd := c.nodes[id]
	delete(c.nodes, id)
	c.mu.Unlock()
	if nd != nil {
		nd.m.Close()
		for _, l := range nd.logs {
			require.NoError(c.t, l.Close())
		}
	}
	return nd
}

func (c *cluster) restart(id int32) *node {
	nd := c.stop(id)
	nd = c.start(id, nd.dir)
	c.propagate()
	return nd
}

func (c *cluster) node(id int32) *node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

func (c *cluster) nodeList() []*node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*node
	for _, nd := range c.nodes {
		out = append(out, nd)
	}
	slices.SortFunc(out, func(a, b *node) int { return int(a.id - b.id) })
	return out
}

// state is partition 0's committed state.
func (c *cluster) state() State { return c.stateOf(0) }

func (c *cluster) stateOf(i int) State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sts[i].clone()
}

// propagate applies the controller's state on every reachable node, as
// the metadata log would.
func (c *cluster) propagate() {
	c.mu.Lock()
	var sts []State
	for _, st := range c.sts {
		sts = append(sts, st.clone())
	}
	var targets []*node
	for id, nd := range c.nodes {
		if !c.cut[id] {
			targets = append(targets, nd)
		}
	}
	c.mu.Unlock()
	for _, nd := range targets {
		for i, st := range sts {
			nd.m.Apply(nd.parts[i], st)
		}
	}
}

// elect makes leader the leader of partition 0 in a new epoch with isr,
// as the controller does on failover.
func (c *cluster) elect(leader int32, isr ...int32) { c.electPart(0, leader, isr...) }

func (c *cluster) electPart(i int, leader int32, isr ...int32) {
	c.mu.Lock()
	st := &c.sts[i]
	st.Leader = leader
	st.LeaderEpoch++
	st.PartitionEpoch++
	st.ISR = slices.Clone(isr)
	c.mu.Unlock()
	c.propagate()
}

func (c *cluster) setCut(id int32, cut bool) {
	c.mu.Lock()
	c.cut[id] = cut
	c.mu.Unlock()
}

func (c *cluster) reachable(a, b int32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.cut[a] && !c.cut[b] && c.nodes[b] != nil
}

// alterPartition is the controller's AlterPartition: fenced by leader
// and partition epochs as KRaft's is.
func (c *cluster) alterPartition(from int32, req AlterPartitionRequest) (State, error) {
	c.mu.Lock()
	if c.cut[from] {
		c.mu.Unlock()
		return State{}, errors.New("controller unreachable")
	}
	c.alters = append(c.alters, req)
	if req.Topic != topicName || req.Partition < 0 || int(req.Partition) >= len(c.sts) {
		c.mu.Unlock()
		return State{}, tributary.ErrUnknownTopicOrPartition
	}
	cur := &c.sts[req.Partition]
	switch {
	case req.LeaderEpoch != cur.LeaderEpoch || req.Leader != cur.Leader:
		c.mu.Unlock()
		return State{}, tributary.ErrFencedLeaderEpoch
	case req.PartitionEpoch != cur.PartitionEpoch:
		c.mu.Unlock()
		return State{}, tributary.ErrInvalidUpdateVersion
	}
	for _, id := range req.ISR {
		if c.fenced[id] && !slices.Contains(cur.ISR, id) {
			c.mu.Unlock()
			return State{}, tributary.ErrIneligibleReplica
		}
	}
	cur.ISR = slices.Clone(req.ISR)
	cur.PartitionEpoch++
	st := cur.clone()
	c.mu.Unlock()
	c.propagate()
	return st, nil
}

// notify wakes every long-polling fetch and waiting producer, as the
// broker's purgatory does on an append or a HW move.
func (c *cluster) notify() {
	c.mu.Lock()
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// changes returns the channel the next notify closes.
func (c *cluster) changes() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

func (c *cluster) fetchCount(id int32) int64 { return counter(&c.fetches, id).Load() }

func (c *cluster) ofleCount(id int32) int64 { return counter(&c.ofle, id).Load() }

func counter(m *sync.Map, id int32) *atomic.Int64 {
	v, _ := m.LoadOrStore(id, new(atomic.Int64))
	return v.(*atomic.Int64)
}

// transport routes a follower's requests to the leader node, answering
// as the broker's handlers will.
type transport struct {
	c    *cluster
	from int32
}

var errUnreachable = errors.New("test transport: node unreachable")

func (tr *transport) leaderPartition(leader int32, topic string, index int32) *Partition {
	nd := tr.c.node(leader)
	if nd == nil || topic != topicName || index < 0 || int(index) >= len(nd.parts) {
		return nil
	}
	return nd.parts[index]
}

func (tr *transport) Fetch(ctx context.Context, leader int32, req *kmsg.FetchRequest) (*kmsg.FetchResponse, error) {
	if !tr.c.reachable(tr.from, leader) {
		return nil, wait(ctx, errUnreachable)
	}
	counter(&tr.c.fetches, tr.from).Add(1)
	timeout := time.NewTimer(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	defer timeout.Stop()
	for {
		ch := tr.c.changes()
		resp, bytes := tr.fetchOnce(leader, req)
		if bytes > 0 {
			tr.c.mu.Lock()
			mangle := tr.c.mangle
			tr.c.mu.Unlock()
			if mangle != nil {
				for i := range resp.Topics {
					for j := range resp.Topics[i].Partitions {
						p := &resp.Topics[i].Partitions[j]
						p.RecordBatches = mangle(tr.from, p.RecordBatches)
					}
				}
			}
			return resp, nil
		}
		select {
		case <-ch: // the long poll: answer again once something changed
		case <-timeout.C:
			return resp, nil
		case <-ctx.Done():
			return resp, nil
		}
	}
}

func (tr *transport) fetchOnce(leader int32, req *kmsg.FetchRequest) (*kmsg.FetchResponse, int) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	total := 0
	for _, rt := range req.Topics {
		t := kmsg.NewFetchResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewFetchResponseTopicPartition()
			p.Partition = rp.Partition
			lp := tr.leaderPartition(leader, rt.Topic, rp.Partition)
			if lp == nil {
				p.ErrorCode = tributary.ErrUnknownTopicOrPartition.Code
				t.Partitions = append(t.Partitions, p)
				continue
			}
			div, err := lp.FollowerFetch(req.ReplicaID, rp.FetchOffset, rp.CurrentLeaderEpoch, rp.LastFetchedEpoch)
			l := lp.Log()
			switch {
			case err != nil:
				p.ErrorCode = tributary.CodeOf(err)
			case div != nil:
				p.DivergingEpoch.Epoch = div.Epoch
				p.DivergingEpoch.EndOffset = div.EndOffset
			default:
				fs, err := l.Read(rp.FetchOffset, l.LogEndOffset(), rp.PartitionMaxBytes, true)
				if err != nil {
					p.ErrorCode = tributary.CodeOf(err)
					break
				}
				if fs.Len > 0 {
					p.RecordBatches = make([]byte, fs.Len)
					if _, err := fs.File.ReadAt(p.RecordBatches, fs.Pos); err != nil && err != io.EOF {
						panic(err)
					}
					total += int(fs.Len)
				}
			}
			p.HighWatermark = lp.HighWatermark()
			p.LogStartOffset = l.LogStartOffset()
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, total
}

func (tr *transport) OffsetForLeaderEpoch(ctx context.Context, leader int32, req *kmsg.OffsetForLeaderEpochRequest) (*kmsg.OffsetForLeaderEpochResponse, error) {
	if !tr.c.reachable(tr.from, leader) {
		return nil, wait(ctx, errUnreachable)
	}
	counter(&tr.c.ofle, tr.from).Add(1)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range req.Topics {
		t := kmsg.NewOffsetForLeaderEpochResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			p.Partition = rp.Partition
			lp := tr.leaderPartition(leader, rt.Topic, rp.Partition)
			if lp == nil {
				p.ErrorCode = tributary.ErrUnknownTopicOrPartition.Code
			} else if eo, err := lp.EndOffsetForEpoch(rp.CurrentLeaderEpoch, rp.LeaderEpoch); err != nil {
				p.ErrorCode = tributary.CodeOf(err)
			} else {
				p.LeaderEpoch, p.EndOffset = eo.Epoch, eo.EndOffset
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil
}

func (tr *transport) ListOffsets(ctx context.Context, leader int32, req *kmsg.ListOffsetsRequest) (*kmsg.ListOffsetsResponse, error) {
	if !tr.c.reachable(tr.from, leader) {
		return nil, wait(ctx, errUnreachable)
	}
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		t := kmsg.NewListOffsetsResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewListOffsetsResponseTopicPartition()
			p.Partition = rp.Partition
			lp := tr.leaderPartition(leader, rt.Topic, rp.Partition)
			switch {
			case lp == nil:
				p.ErrorCode = tributary.ErrUnknownTopicOrPartition.Code
			default:
				if err := lp.ValidateLeaderEpoch(rp.CurrentLeaderEpoch); err != nil {
					p.ErrorCode = tributary.CodeOf(err)
				} else if rp.Timestamp == -2 {
					p.Offset = lp.Log().LogStartOffset()
				} else {
					p.Offset = lp.Log().LogEndOffset() // a replica asks: the log end
				}
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil
}

// wait makes an unreachable node cost a little time, like a dial
// timeout, so retry loops do not spin.
func wait(ctx context.Context, err error) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(2 * time.Millisecond):
		return err
	}
}

// produce appends n records tagged tag to partition 0 on node id as
// leader.
func (c *cluster) produce(id int32, tag string, n int, acks int16, minISR int) (storage.AppendResult, error) {
	return c.producePart(id, 0, tag, n, acks, minISR)
}

func (c *cluster) producePart(id int32, i int, tag string, n int, acks int16, minISR int) (storage.AppendResult, error) {
	nd := c.node(id)
	recs := make([]batchtest.Rec, n)
	for i := range recs {
		recs[i] = batchtest.Rec{Value: fmt.Appendf(nil, "%s-%d", tag, i)}
	}
	r, err := nd.parts[i].AppendAsLeader(batchtest.Build(batchtest.NonIdempotent(c.clk.Now().UnixMilli()), recs...), acks, minISR)
	if err == nil {
		c.notify()
	}
	return r, err
}

// rawLog is every byte of l from its log start to its end.
func rawLog(t testing.TB, l *storage.Log) []byte {
	t.Helper()
	var out []byte
	off, end := l.LogStartOffset(), l.LogEndOffset()
	for off < end {
		fs, err := l.Read(off, end, 1<<30, true)
		require.NoError(t, err)
		require.NotZero(t, fs.Len)
		b := make([]byte, fs.Len)
		_, err = fs.File.ReadAt(b, fs.Pos)
		if err == io.EOF {
			err = nil
		}
		require.NoError(t, err)
		out = append(out, b...)
		// The next offset is after the last batch read.
		var last int64
		for pos := 0; pos < len(b); {
			size := int(binary.BigEndian.Uint32(b[pos+8:])) + 12
			last = int64(binary.BigEndian.Uint64(b[pos:])) + int64(binary.BigEndian.Uint32(b[pos+23:]))
			pos += size
		}
		off = last + 1
	}
	return out
}

// values decodes every record value of raw log bytes with kmsg.
func values(t testing.TB, raw []byte) []string {
	t.Helper()
	var out []string
	for len(raw) > 0 {
		size := int(binary.BigEndian.Uint32(raw[8:])) + 12
		var b kmsg.RecordBatch
		require.NoError(t, b.ReadFrom(raw[:size]))
		recs := b.Records
		for range b.NumRecords {
			var r kmsg.Record
			l, n := binary.Varint(recs)
			require.NoError(t, r.ReadFrom(recs[:n+int(l)]))
			recs = recs[n+int(l):]
			out = append(out, string(r.Value))
		}
		raw = raw[size:]
	}
	return out
}

// eventually waits for cond with a deadline generous enough for a loaded
// machine.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// requireIdentical waits until every node's log of partition 0 equals
// the leader's byte for byte, with the same epochs.
func (c *cluster) requireIdentical(leader int32) { c.requireIdenticalPart(0, leader) }

func (c *cluster) requireIdenticalPart(i int, leader int32) {
	c.t.Helper()
	eventually(c.t, "identical logs", func() bool {
		want := c.node(leader).logs[i].LogEndOffset()
		for _, nd := range c.nodeList() {
			if nd.logs[i].LogEndOffset() != want {
				return false
			}
		}
		return true
	})
	ref := c.node(leader).logs[i]
	raw := rawLog(c.t, ref)
	for _, nd := range c.nodeList() {
		require.Equal(c.t, raw, rawLog(c.t, nd.logs[i]), "partition %d: node %d differs from leader %d", i, nd.id, leader)
		require.Equal(c.t, epochsWithData(ref), epochsWithData(nd.logs[i]), "partition %d: node %d epochs", i, nd.id)
	}
}

// epochsWithData drops a leader's epoch that began at the log end and has
// no batch yet: followers learn epochs from batches only.
func epochsWithData(l *storage.Log) []storage.EpochEntry {
	es := l.Epochs()
	for len(es) > 0 && es[len(es)-1].StartOffset >= l.LogEndOffset() {
		es = es[:len(es)-1]
	}
	return es
}
