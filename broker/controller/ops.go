package controller

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/hashicorp/raft"
	"github.com/tributary/tributary"
)

// Operation names on the RPC.
const (
	opRegister            = "register_broker"
	opHeartbeat           = "heartbeat"
	opUnregister          = "unregister_broker"
	opCreateTopics        = "create_topics"
	opDeleteTopics        = "delete_topics"
	opCreatePartitions    = "create_partitions"
	opAlterConfigs        = "alter_configs"
	opAlterPartition      = "alter_partition"
	opElectLeaders        = "elect_leaders"
	opAlterReassignments  = "alter_reassignments"
	opAllocateProducerIDs = "allocate_producer_ids"
	opDescribeQuorum      = "describe_quorum"
	opStatus              = "status" // answered by every voter itself, never forwarded
)

// handler decides one operation on the active controller: the records to
// propose (none for a pure check) and how to build the answer from the
// image once they are applied. Called with n.op held.
type handler func(n *Node, img *Image, args json.RawMessage, now time.Time) (recs []Record, result func(post *Image) (any, error), err error)

var handlers map[string]handler

func init() {
	handlers = map[string]handler{
		opRegister:            hRegister,
		opHeartbeat:           hHeartbeat,
		opUnregister:          hUnregister,
		opCreateTopics:        hCreateTopics,
		opDeleteTopics:        hDeleteTopics,
		opCreatePartitions:    hCreatePartitions,
		opAlterConfigs:        hAlterConfigs,
		opAlterPartition:      hAlterPartition,
		opElectLeaders:        hElectLeaders,
		opAlterReassignments:  hAlterReassignments,
		opAllocateProducerIDs: hAllocateProducerIDs,
	}
}

func errNotLeader() error {
	return errorf(tributary.ErrNotController, "this node is not the active controller")
}

// exec runs one operation here, the active controller: decide on the
// latest image, propose, wait until applied here.
func (n *Node) exec(ctx context.Context, req *rpcRequest) *rpcResponse {
	if req.Op == opDescribeQuorum {
		return n.describeQuorum(ctx)
	}
	h := handlers[req.Op]
	if h == nil {
		return &rpcResponse{Err: toWire(errorf(tributary.ErrInvalidRequest, "unknown controller operation %q", req.Op))}
	}
	n.op.Lock()
	defer n.op.Unlock()
	if err := n.readyLocked(); err != nil {
		return &rpcResponse{Err: toWire(err)}
	}
	// A retry of an operation whose entry committed although its caller
	// did not hear so (the leader changed or died meanwhile) is answered
	// from the entry instead of being decided again, so it applies once:
	// a retried CreateTopics does not answer TOPIC_ALREADY_EXISTS.
	// (readyLocked's Barrier made every committed entry applied here.)
	if req.ID != "" {
		if e, ok := n.recentLookup(req.ID); ok {
			return n.replay(req, e)
		}
	}
	img := n.Image()
	recs, result, err := h(n, img, req.Args, time.Now())
	if err != nil {
		return &rpcResponse{Index: img.Offset, Err: toWire(err)}
	}
	index, post := img.Offset, img
	if len(recs) > 0 {
		// The answer goes into the entry for replay, except where it is
		// only known after the apply (replay recomputes those).
		var stored json.RawMessage
		if !answerAfterApply[req.Op] {
			if v, err := result(img); err == nil {
				stored, _ = json.Marshal(v)
			}
		}
		if index, err = n.proposeLocked(recs, req.ID, stored); err != nil {
			return &rpcResponse{Err: toWire(err)}
		}
		post = n.Image()
	}
	v, err := result(post)
	if err != nil {
		return &rpcResponse{Index: index, Err: toWire(err)}
	}
	data, err := json.Marshal(v)
	if err != nil {
		return &rpcResponse{Index: index, Err: toWire(err)}
	}
	return &rpcResponse{Index: index, Result: data}
}

// answerAfterApply names the operations whose answer depends on the
// applied entry: a registration's epoch is its offset; AlterPartition
// answers the partition's new state.
var answerAfterApply = map[string]bool{opRegister: true, opAlterPartition: true}

// replay answers a retried operation from its applied entry.
func (n *Node) replay(req *rpcRequest, e recentEntry) *rpcResponse {
	if !answerAfterApply[req.Op] {
		return &rpcResponse{Index: e.Index, Result: e.Result}
	}
	img := n.Image()
	var v any
	switch req.Op {
	case opRegister:
		var b BrokerInfo
		if err := decode(req.Args, &b); err != nil {
			return &rpcResponse{Err: toWire(err)}
		}
		if cur := img.Brokers[b.ID]; cur != nil {
			v = cur.Epoch
		}
	case opAlterPartition:
		var a AlterPartitionRequest
		if err := decode(req.Args, &a); err != nil {
			return &rpcResponse{Err: toWire(err)}
		}
		if t := img.TopicsByID[a.TopicID]; t != nil && int(a.Partition) < len(t.Partitions) && a.Partition >= 0 {
			v = t.Partitions[a.Partition]
		}
	}
	if v == nil {
		return &rpcResponse{Index: e.Index, Err: toWire(errorf(tributary.ErrUnknownServerError, "applied, but the state it made is gone"))}
	}
	data, _ := json.Marshal(v)
	return &rpcResponse{Index: e.Index, Result: data}
}

// readyLocked makes sure this leader's image holds everything committed
// before its term (a Barrier) and that the quorum is initialised, once per
// term. A new term also forgets every heartbeat time, which gives every
// broker a fresh session timeout under the new leader.
func (n *Node) readyLocked() error {
	if n.raft.State() != raft.Leader {
		return errNotLeader()
	}
	term := n.raft.CurrentTerm()
	if n.op.readyTerm == term {
		return nil
	}
	if err := n.raft.Barrier(5 * time.Second).Error(); err != nil {
		return errorf(tributary.ErrNotController, "barrier: %v", err)
	}
	n.op.lastSeen = map[int32]time.Time{}
	n.op.lastCheck = time.Time{}
	if !n.Image().Initialized {
		b := Bootstrap{ClusterID: n.cfg.ClusterID}
		if p := n.pendingBootstrap; p != nil {
			if p.ClusterID != "" {
				b.ClusterID = p.ClusterID
			}
			b.Topics, b.ClusterConfigs, b.NodeConfigs, b.NextProducerID = p.Topics(), p.ClusterConfigs, p.NodeConfigs, p.NextProducerID
		}
		if _, err := n.proposeLocked([]Record{b}, "", nil); err != nil {
			return err
		}
		n.log.Info("controller: initialised the metadata", "cluster_id", b.ClusterID, "topics", len(b.Topics))
	}
	n.op.readyTerm = term
	return nil
}

// proposeLocked commits one batch (with the operation's token and stored
// answer) and waits until it is applied here. Losing leadership meanwhile
// is NOT_CONTROLLER: the caller retries with the new leader, as Kafka's
// forwarding does, and the token makes the retry find the entry if it
// committed after all.
func (n *Node) proposeLocked(recs []Record, token string, answer json.RawMessage) (uint64, error) {
	data, err := encodeEntry(recs, token, answer)
	if err != nil {
		return 0, err
	}
	f := n.raft.Apply(data, 5*time.Second)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrEnqueueTimeout) {
			return 0, errorf(tributary.ErrRequestTimedOut, "metadata proposal: %v", err)
		}
		return 0, errorf(tributary.ErrNotController, "metadata proposal: %v", err)
	}
	if err, ok := f.Response().(error); ok && err != nil {
		return 0, errorf(tributary.ErrUnknownServerError, "metadata apply: %v", err)
	}
	return f.Index(), nil
}

// call runs op on the active controller: here when this node leads, else
// forwarded over the controller listener. It retries while there is no
// leader, or the one it reached is not (or no longer) the leader, until
// ctx ends; then the error is NOT_CONTROLLER wrapping ctx's error. On
// success it waits until this node applied the change.
func (n *Node) call(ctx context.Context, op string, args, out any) error {
	data, err := json.Marshal(args)
	if err != nil {
		return err
	}
	req := &rpcRequest{Op: op, Args: data, ID: newToken()}
	backoff := 10 * time.Millisecond
	for {
		select {
		case <-n.closing:
			return errClosed
		default:
		}
		var resp *rpcResponse
		var err error
		if n.IsLeader() {
			resp = n.exec(ctx, req)
		} else if addr, _ := n.raft.LeaderWithID(); addr != "" {
			resp, err = n.send(ctx, string(addr), req)
		} else {
			err = errors.New("no leader elected")
		}
		if err == nil && resp.Err != nil && resp.Err.Code == tributary.ErrNotController.Code {
			err = resp.Err.err()
		}
		if err == nil {
			if resp.Err != nil {
				return resp.Err.err()
			}
			if err := n.WaitApplied(ctx, resp.Index); err != nil {
				return fmt.Errorf("%w: the change is committed but not yet applied here: %w", tributary.ErrRequestTimedOut, err)
			}
			if out != nil && len(resp.Result) > 0 {
				return json.Unmarshal(resp.Result, out)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: no active controller reachable (%v): %w", tributary.ErrNotController, err, ctx.Err())
		case <-n.closing:
			return errClosed
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// newToken names one operation across its retries.
func newToken() string {
	var b [16]byte
	crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func decode(args json.RawMessage, v any) error {
	if err := json.Unmarshal(args, v); err != nil {
		return errorf(tributary.ErrInvalidRequest, "bad controller request: %v", err)
	}
	return nil
}

// ---- brokers ----

// RegisterBroker registers this incarnation of a broker and returns its
// epoch (the offset of the registration). The broker starts fenced; its
// first Heartbeat unfences it.
func (n *Node) RegisterBroker(ctx context.Context, b BrokerInfo) (int64, error) {
	var epoch int64
	err := n.call(ctx, opRegister, b, &epoch)
	return epoch, err
}

func hRegister(n *Node, img *Image, args json.RawMessage, now time.Time) ([]Record, func(*Image) (any, error), error) {
	var b BrokerInfo
	if err := decode(args, &b); err != nil {
		return nil, nil, err
	}
	n.op.lastSeen[b.ID] = now
	return RegisterBrokerRecords(img, b), func(post *Image) (any, error) { return post.Brokers[b.ID].Epoch, nil }, nil
}

type heartbeatArgs struct {
	ID    int32 `json:"id"`
	Epoch int64 `json:"epoch"`
}

// Heartbeat tells the active controller the broker is alive and returns
// whether it is fenced (false once this heartbeat unfenced it). Errors:
// BROKER_ID_NOT_REGISTERED, STALE_BROKER_EPOCH (register again).
func (n *Node) Heartbeat(ctx context.Context, id int32, epoch int64) (fenced bool, err error) {
	err = n.call(ctx, opHeartbeat, heartbeatArgs{id, epoch}, &fenced)
	return fenced, err
}

func hHeartbeat(n *Node, img *Image, args json.RawMessage, now time.Time) ([]Record, func(*Image) (any, error), error) {
	var a heartbeatArgs
	if err := decode(args, &a); err != nil {
		return nil, nil, err
	}
	recs, err := HeartbeatRecords(img, a.ID, a.Epoch)
	if err != nil {
		return nil, nil, err
	}
	n.op.lastSeen[a.ID] = now
	return recs, func(post *Image) (any, error) {
		b := post.Brokers[a.ID]
		return b == nil || b.Fenced, nil
	}, nil
}

// UnregisterBroker removes a broker for good (fencing it first).
func (n *Node) UnregisterBroker(ctx context.Context, id int32, epoch int64) error {
	return n.call(ctx, opUnregister, heartbeatArgs{id, epoch}, nil)
}

func hUnregister(n *Node, img *Image, args json.RawMessage, _ time.Time) ([]Record, func(*Image) (any, error), error) {
	var a heartbeatArgs
	if err := decode(args, &a); err != nil {
		return nil, nil, err
	}
	recs, err := UnregisterBrokerRecords(img, a.ID, a.Epoch)
	if err != nil {
		return nil, nil, err
	}
	delete(n.op.lastSeen, a.ID)
	return recs, noResult, nil
}

func noResult(*Image) (any, error) { return nil, nil }

// ---- topics ----

type wireTopicResult struct {
	ID                TopicID  `json:"id"`
	Err               *wireErr `json:"err,omitempty"`
	Partitions        int32    `json:"partitions"`
	ReplicationFactor int16    `json:"rf"`
}

// CreateTopics creates topics (or only checks them, ValidateOnly). One
// result per spec, in order; the topics are created together in one
// entry. If the controller cannot be reached every result carries that
// error.
func (n *Node) CreateTopics(ctx context.Context, specs []TopicSpec) []TopicResult {
	var wire []wireTopicResult
	err := n.call(ctx, opCreateTopics, specs, &wire)
	out := make([]TopicResult, len(specs))
	for i := range out {
		if err != nil || i >= len(wire) {
			out[i].Err = cmpOr(err, errorf(tributary.ErrUnknownServerError, "no result"))
			continue
		}
		w := wire[i]
		out[i] = TopicResult{ID: w.ID, Err: w.Err.err(), Partitions: w.Partitions, ReplicationFactor: w.ReplicationFactor}
	}
	return out
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func hCreateTopics(_ *Node, img *Image, args json.RawMessage, _ time.Time) ([]Record, func(*Image) (any, error), error) {
	var specs []TopicSpec
	if err := decode(args, &specs); err != nil {
		return nil, nil, err
	}
	ids := make([]TopicID, len(specs))
	starts := make([]int, len(specs))
	for i := range specs {
		ids[i] = newTopicID(img)
		starts[i] = rand.IntN(1 << 20)
	}
	recs, res := CreateTopicsRecords(img, specs, ids, starts)
	wire := make([]wireTopicResult, len(res))
	for i, r := range res {
		wire[i] = wireTopicResult{ID: r.ID, Err: toWire(r.Err), Partitions: r.Partitions, ReplicationFactor: r.ReplicationFactor}
	}
	return recs, func(*Image) (any, error) { return wire, nil }, nil
}

// newTopicID draws a random version-4 UUID not in use and not the zero
// or "sentinel" ids Kafka reserves.
func newTopicID(img *Image) TopicID {
	for {
		var id TopicID
		crand.Read(id[:])
		id[6] = id[6]&0x0f | 0x40
		id[8] = id[8]&0x3f | 0x80
		if img.TopicsByID[id] == nil {
			return id
		}
	}
}

// DeleteTopics deletes topics by id; one error (nil on success) per id.
func (n *Node) DeleteTopics(ctx context.Context, ids [][16]byte) []error {
	var wire []*wireErr
	err := n.call(ctx, opDeleteTopics, toTopicIDs(ids), &wire)
	out := make([]error, len(ids))
	for i := range out {
		if err != nil || i >= len(wire) {
			out[i] = cmpOr(err, errorf(tributary.ErrUnknownServerError, "no result"))
			continue
		}
		out[i] = wire[i].err()
	}
	return out
}

func toTopicIDs(ids [][16]byte) []TopicID {
	out := make([]TopicID, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

func hDeleteTopics(_ *Node, img *Image, args json.RawMessage, _ time.Time) ([]Record, func(*Image) (any, error), error) {
	var ids []TopicID
	if err := decode(args, &ids); err != nil {
		return nil, nil, err
	}
	c := newChange(img)
	wire := make([]*wireErr, len(ids))
	for i, id := range ids {
		r, err := DeleteTopicRecord(c.img, id)
		if err != nil {
			wire[i] = toWire(err)
			continue
		}
		c.add(r)
	}
	return c.recs, func(*Image) (any, error) { return wire, nil }, nil
}

type createPartitionsArgs struct {
	Name         string    `json:"name"`
	Total        int32     `json:"total"`
	Assignment   [][]int32 `json:"assignment,omitempty"`
	ValidateOnly bool      `json:"validate_only,omitempty"`
}

// CreatePartitions grows a topic to total partitions.
func (n *Node) CreatePartitions(ctx context.Context, name string, total int32, assignment [][]int32, validateOnly bool) error {
	return n.call(ctx, opCreatePartitions, createPartitionsArgs{name, total, assignment, validateOnly}, nil)
}

func hCreatePartitions(_ *Node, img *Image, args json.RawMessage, _ time.Time) ([]Record, func(*Image) (any, error), error) {
	var a createPartitionsArgs
	if err := decode(args, &a); err != nil {
		return nil, nil, err
	}
	r, err := CreatePartitionsRecord(img, a.Name, a.Total, a.Assignment)
	if err != nil || a.ValidateOnly {
		return nil, noResult, err
	}
	return []Record{r}, noResult, nil
}

// AlterConfigs applies config changes (set or delete, topic or broker
// resources) together in one entry. The broker validates names and values.
func (n *Node) AlterConfigs(ctx context.Context, changes []ConfigChange) error {
	return n.call(ctx, opAlterConfigs, changes, nil)
}

func hAlterConfigs(_ *Node, img *Image, args json.RawMessage, _ time.Time) ([]Record, func(*Image) (any, error), error) {
	var changes []ConfigChange
	if err := decode(args, &changes); err != nil {
		return nil, nil, err
	}
	recs, err := ConfigChangeRecords(img, changes)
	return recs, noResult, err
}

// ---- partitions ----

// AlterPartition asks for an ISR change (a partition leader's
// AlterPartition) and returns the partition's state afterwards.
func (n *Node) AlterPartition(ctx context.Context, req AlterPartitionRequest) (*Partition, error) {
	var p Partition
	if err := n.call(ctx, opAlterPartition, req, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

func hAlterPartition(_ *Node, img *Image, args json.RawMessage, _ time.Time) ([]Record, func(*Image) (any, error), error) {
	var req AlterPartitionRequest
	if err := decode(args, &req); err != nil {
		return nil, nil, err
	}
	recs, err := AlterPartitionRecords(img, req)
	if err != nil {
		return nil, nil, err
	}
	return recs, func(post *Image) (any, error) {
		t := post.TopicsByID[req.TopicID]
		if t == nil {
			return nil, errorf(tributary.ErrUnknownTopicId, "topic deleted")
		}
		return t.Partitions[req.Partition], nil
	}, nil
}

type tpErr struct {
	Topic     string   `json:"topic"`
	Partition int32    `json:"partition"`
	Err       *wireErr `json:"err,omitempty"`
}

func fromTPErrs(wire []tpErr) map[tributary.TopicPartition]error {
	out := make(map[tributary.TopicPartition]error, len(wire))
	for _, w := range wire {
		out[tributary.TopicPartition{Topic: w.Topic, Partition: w.Partition}] = w.Err.err()
	}
	return out
}

func toTPErrs(m map[tributary.TopicPartition]error) []tpErr {
	out := make([]tpErr, 0, len(m))
	for tp, err := range m {
		out = append(out, tpErr{Topic: tp.Topic, Partition: tp.Partition, Err: toWire(err)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}

type electArgs struct {
	Unclean bool                       `json:"unclean"`
	TPs     []tributary.TopicPartition `json:"tps"`
}

// ElectLeaders runs a PREFERRED (unclean false) or UNCLEAN election over
// tps (nil: every partition, answering only those elected or failed other
// than ELECTION_NOT_NEEDED). The error is for the call as a whole (no
// controller reachable).
func (n *Node) ElectLeaders(ctx context.Context, unclean bool, tps []tributary.TopicPartition) (map[tributary.TopicPartition]error, error) {
	var wire []tpErr
	if err := n.call(ctx, opElectLeaders, electArgs{unclean, tps}, &wire); err != nil {
		return nil, err
	}
	return fromTPErrs(wire), nil
}

func hElectLeaders(_ *Node, img *Image, args json.RawMessage, _ time.Time) ([]Record, func(*Image) (any, error), error) {
	var a electArgs
	if err := decode(args, &a); err != nil {
		return nil, nil, err
	}
	recs, res := ElectLeadersRecords(img, a.Unclean, a.TPs)
	wire := toTPErrs(res)
	return recs, func(*Image) (any, error) { return wire, nil }, nil
}

type reassignTarget struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Replicas  []int32 `json:"replicas"` // null cancels
}

// AlterReassignments starts (target replica list) or cancels (nil)
// partition reassignments. The error is for the call as a whole.
func (n *Node) AlterReassignments(ctx context.Context, targets map[tributary.TopicPartition][]int32) (map[tributary.TopicPartition]error, error) {
	args := make([]reassignTarget, 0, len(targets))
	for tp, r := range targets {
		args = append(args, reassignTarget{tp.Topic, tp.Partition, r})
	}
	var wire []tpErr
	if err := n.call(ctx, opAlterReassignments, args, &wire); err != nil {
		return nil, err
	}
	return fromTPErrs(wire), nil
}

func hAlterReassignments(_ *Node, img *Image, args json.RawMessage, _ time.Time) ([]Record, func(*Image) (any, error), error) {
	var a []reassignTarget
	if err := decode(args, &a); err != nil {
		return nil, nil, err
	}
	targets := make(map[tributary.TopicPartition][]int32, len(a))
	for _, t := range a {
		targets[tributary.TopicPartition{Topic: t.Topic, Partition: t.Partition}] = t.Replicas
	}
	recs, res := AlterReassignmentsRecords(img, targets)
	wire := toTPErrs(res)
	return recs, func(*Image) (any, error) { return wire, nil }, nil
}

// ListReassignments reports the reassignments in progress among tps (nil:
// all) from this node's image.
func (n *Node) ListReassignments(tps []tributary.TopicPartition) map[tributary.TopicPartition]Reassignment {
	return ListReassignments(n.Image(), tps)
}

// ---- producer ids ----

// AllocateProducerIDs hands the broker the next block of producer ids.
func (n *Node) AllocateProducerIDs(ctx context.Context, brokerID int32, brokerEpoch int64) (first int64, count int32, err error) {
	var b ProducerIDBlock
	if err := n.call(ctx, opAllocateProducerIDs, heartbeatArgs{brokerID, brokerEpoch}, &b); err != nil {
		return 0, 0, err
	}
	return b.First, b.Count, nil
}

func hAllocateProducerIDs(_ *Node, img *Image, args json.RawMessage, _ time.Time) ([]Record, func(*Image) (any, error), error) {
	var a heartbeatArgs
	if err := decode(args, &a); err != nil {
		return nil, nil, err
	}
	r, err := AllocateProducerIDsRecord(img, a.ID, a.Epoch)
	if err != nil {
		return nil, nil, err
	}
	return []Record{r}, func(*Image) (any, error) { return r, nil }, nil
}

// ---- quorum ----

// QuorumInfo is what DescribeQuorum answers for the metadata partition.
type QuorumInfo struct {
	LeaderID int32
	// LeaderEpoch is the Raft term.
	LeaderEpoch int32
	// HighWatermark is the leader's commit index.
	HighWatermark int64
	Voters        []VoterInfo
}

// VoterInfo is one voter's replication state as the leader sees it now.
type VoterInfo struct {
	ID int32
	// LogEndOffset is the voter's last log index, -1 when it did not
	// answer.
	LogEndOffset int64
	// LastFetchTimestamp and LastCaughtUpTimestamp (Unix ms, -1 unknown)
	// are when the leader last heard from it, and last found its log at
	// the high watermark.
	LastFetchTimestamp    int64
	LastCaughtUpTimestamp int64
}

type statusResult struct {
	ID        int32  `json:"id"`
	Term      uint64 `json:"term"`
	LastIndex uint64 `json:"last_index"`
}

func (n *Node) status() *rpcResponse {
	data, _ := json.Marshal(statusResult{ID: n.cfg.NodeID, Term: n.raft.CurrentTerm(), LastIndex: n.raft.LastIndex()})
	return &rpcResponse{Result: data}
}

// Quorum describes the controller quorum, asking the active controller,
// which asks every voter for its log end.
func (n *Node) Quorum(ctx context.Context) (QuorumInfo, error) {
	var q QuorumInfo
	err := n.call(ctx, opDescribeQuorum, struct{}{}, &q)
	return q, err
}

func (n *Node) describeQuorum(ctx context.Context) *rpcResponse {
	if !n.IsLeader() {
		return &rpcResponse{Err: toWire(errNotLeader())}
	}
	hw := int64(n.raft.CommitIndex())
	q := QuorumInfo{LeaderID: n.cfg.NodeID, LeaderEpoch: int32(n.raft.CurrentTerm()), HighWatermark: hw}
	ids := make([]int32, 0, len(n.cfg.Voters))
	for id := range n.cfg.Voters {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		v := VoterInfo{ID: id, LogEndOffset: -1, LastFetchTimestamp: -1, LastCaughtUpTimestamp: -1}
		now := time.Now().UnixMilli()
		if id == n.cfg.NodeID {
			v.LogEndOffset, v.LastFetchTimestamp = int64(n.raft.LastIndex()), now
		} else {
			sctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			resp, err := n.send(sctx, n.cfg.Voters[id], &rpcRequest{Op: opStatus, Args: json.RawMessage("{}")})
			cancel()
			var st statusResult
			if err == nil && json.Unmarshal(resp.Result, &st) == nil {
				v.LogEndOffset, v.LastFetchTimestamp = int64(st.LastIndex), now
			}
		}
		if v.LogEndOffset >= hw {
			v.LastCaughtUpTimestamp = v.LastFetchTimestamp
		}
		q.Voters = append(q.Voters, v)
	}
	data, _ := json.Marshal(q)
	return &rpcResponse{Index: 0, Result: data}
}

// ---- the active controller's loop ----

// run owns the periodic work of the active controller: readiness on a new
// term, the session check that fences silent brokers, and the auto leader
// rebalance.
func (n *Node) run(notify <-chan bool) {
	defer n.wg.Done()
	every := min(n.cfg.HeartbeatInterval/2, n.cfg.SessionTimeout/4)
	tick := time.NewTicker(max(every, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-n.closing:
			return
		case leader := <-notify:
			n.log.Info("controller: leadership changed", "leader", leader)
			if leader {
				n.op.Lock()
				if err := n.readyLocked(); err != nil {
					n.log.Warn("controller: not ready as leader", "err", err)
				}
				n.op.Unlock()
			}
		case now := <-tick.C:
			n.leaderTick(now)
		}
	}
}

func (n *Node) leaderTick(now time.Time) {
	n.op.Lock()
	defer n.op.Unlock()
	if !n.IsLeader() || n.readyLocked() != nil {
		return
	}
	for _, b := range n.Image().AllBrokers() {
		if b.Fenced {
			continue
		}
		seen, ok := n.op.lastSeen[b.ID]
		if !ok {
			n.op.lastSeen[b.ID] = now
			continue
		}
		if now.Sub(seen) <= n.cfg.SessionTimeout {
			continue
		}
		n.log.Info("controller: fencing broker: no heartbeat within broker.session.timeout.ms",
			"broker", b.ID, "silent", now.Sub(seen).Round(time.Millisecond))
		if _, err := n.proposeLocked(FenceBrokerRecords(n.Image(), b.ID), "", nil); err != nil {
			n.log.Warn("controller: fencing broker", "broker", b.ID, "err", err)
			return
		}
	}
	if n.cfg.DisableAutoLeaderRebalance {
		return
	}
	if n.op.lastCheck.IsZero() {
		n.op.lastCheck = now
		return
	}
	if now.Sub(n.op.lastCheck) < n.cfg.ImbalanceCheckInterval {
		return
	}
	n.op.lastCheck = now
	if recs := RebalanceRecords(n.Image(), n.cfg.ImbalancePercentage); len(recs) > 0 {
		n.log.Info("controller: auto leader rebalance", "changes", len(recs))
		if _, err := n.proposeLocked(recs, "", nil); err != nil {
			n.log.Warn("controller: auto leader rebalance", "err", err)
		}
	}
}
