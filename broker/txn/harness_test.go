package txn

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary/broker/group"
)

// harness drives a Coordinator the way the broker will: it calls a
// handler, drains the outbox and keeps the records (the __transaction_state
// log) and the marker jobs it was asked to run. Time only moves through
// advance, which calls Tick.
type harness struct {
	t       testing.TB
	c       *Coordinator
	cfg     Config
	now     time.Time
	records []Record
	markers []MarkerJob
	nextPID int64
	epoch   int32 // coordinator epoch Loaded with
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func testConfig(h *harness) Config {
	cfg := DefaultConfig()
	cfg.AllocateProducerID = func() (int64, error) {
		h.nextPID++
		return h.nextPID, nil
	}
	cfg.GroupPartition = func(g string) int32 { return group.Partition(g, 50) }
	return cfg
}

// newHarness returns a coordinator that leads every partition at
// coordinator epoch 1.
func newHarness(t testing.TB, tweak ...func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, now: t0, nextPID: 1000, epoch: 1}
	h.cfg = testConfig(h)
	for _, f := range tweak {
		f(&h.cfg)
	}
	c, err := New(h.cfg)
	require.NoError(t, err)
	h.c = c
	for p := int32(0); p < h.cfg.NumPartitions; p++ {
		h.c.Loaded(h.now, p, h.epoch)
	}
	h.drain()
	return h
}

func (h *harness) drain() Output {
	out := h.c.Drain()
	h.records = append(h.records, out.Records...)
	h.markers = append(h.markers, out.Markers...)
	return out
}

func (h *harness) advance(d time.Duration) Output {
	h.now = h.now.Add(d)
	h.c.Tick(h.now)
	return h.drain()
}

// writeMarkers completes every marker job handed out so far.
func (h *harness) writeMarkers() {
	jobs := h.markers
	h.markers = nil
	for _, j := range jobs {
		h.c.MarkersWritten(h.now, j)
		h.drain()
	}
}

// replay loads the records written so far into a fresh coordinator, as a
// broker taking over every partition would, at coordinator epoch 2.
func (h *harness) replay() *harness {
	h.t.Helper()
	n := &harness{t: h.t, now: h.now, nextPID: h.nextPID, epoch: h.epoch + 1}
	n.cfg = testConfig(n)
	n.cfg.NumPartitions = h.cfg.NumPartitions
	c, err := New(n.cfg)
	require.NoError(h.t, err)
	n.c = c
	for p := int32(0); p < n.cfg.NumPartitions; p++ {
		n.c.BeginLoad(p)
	}
	for _, r := range h.records {
		require.NoError(h.t, n.c.Load(r.Partition, r.Key, r.Value))
	}
	for p := int32(0); p < n.cfg.NumPartitions; p++ {
		n.c.Loaded(n.now, p, n.epoch)
	}
	// The new coordinator appends to the same log.
	n.records = append([]Record(nil), h.records...)
	n.drain()
	return n
}

func (h *harness) describe(id string) kmsg.DescribeTransactionsResponseTransactionState {
	req := kmsg.NewPtrDescribeTransactionsRequest()
	req.TransactionalIDs = []string{id}
	return h.c.DescribeTransactions(h.now, req).TransactionStates[0]
}

func (h *harness) state(id string) string {
	h.t.Helper()
	d := h.describe(id)
	require.Zero(h.t, d.ErrorCode, "describe %s", id)
	return d.State
}

// lastValue decodes the last record written.
func (h *harness) lastValue() (string, *kmsg.TxnMetadataValue) {
	h.t.Helper()
	require.NotEmpty(h.t, h.records)
	r := h.records[len(h.records)-1]
	var k kmsg.TxnMetadataKey
	require.NoError(h.t, k.ReadFrom(r.Key))
	require.Equal(h.t, Partition(k.TransactionalID, h.cfg.NumPartitions), r.Partition)
	if r.Value == nil {
		return k.TransactionalID, nil
	}
	var v kmsg.TxnMetadataValue
	require.NoError(h.t, v.ReadFrom(r.Value))
	return k.TransactionalID, &v
}

// producer is a scripted transactional producer: it builds requests as a
// Java or franz-go producer would and remembers its id and epoch.
type producer struct {
	h       *harness
	id      string
	timeout int32
	pid     int64
	epoch   int16
	version int16 // request version for every API
}

func (h *harness) producer(id string) *producer {
	return &producer{h: h, id: id, timeout: 60000, pid: -1, epoch: -1, version: 4}
}

func (p *producer) initReq(kip360 bool) *kmsg.InitProducerIDRequest {
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = p.version
	req.TransactionalID = kmsg.StringPtr(p.id)
	req.TransactionTimeoutMillis = p.timeout
	if kip360 {
		req.ProducerID, req.ProducerEpoch = p.pid, p.epoch
	}
	return req
}

// init sends InitProducerId (without KIP-360 fields) and adopts the id and
// epoch on success.
func (p *producer) init() int16 { return p.send(p.initReq(false)) }

// recover sends InitProducerId with the id and epoch it holds (KIP-360).
func (p *producer) recover() int16 { return p.send(p.initReq(true)) }

func (p *producer) send(req *kmsg.InitProducerIDRequest) int16 {
	resp := p.h.c.InitProducerID(p.h.now, req)
	p.h.drain()
	if resp.ErrorCode == 0 {
		p.pid, p.epoch = resp.ProducerID, resp.ProducerEpoch
	}
	return resp.ErrorCode
}

// add adds partitions of one topic and returns the first partition's code
// (every partition shares it unless the test says otherwise).
func (p *producer) add(topic string, partitions ...int32) int16 {
	resp := p.addResp(topic, partitions...)
	return resp.Topics[0].Partitions[0].ErrorCode
}

func (p *producer) addResp(topic string, partitions ...int32) *kmsg.AddPartitionsToTxnResponse {
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version = min(p.version, 3)
	req.TransactionalID = p.id
	req.ProducerID, req.ProducerEpoch = p.pid, p.epoch
	rt := kmsg.NewAddPartitionsToTxnRequestTopic()
	rt.Topic, rt.Partitions = topic, partitions
	req.Topics = append(req.Topics, rt)
	resp := p.h.c.AddPartitionsToTxn(p.h.now, req)
	p.h.drain()
	return resp
}

func (p *producer) addOffsets(group string) int16 {
	req := kmsg.NewPtrAddOffsetsToTxnRequest()
	req.Version = p.version
	req.TransactionalID = p.id
	req.ProducerID, req.ProducerEpoch = p.pid, p.epoch
	req.Group = group
	resp := p.h.c.AddOffsetsToTxn(p.h.now, req)
	p.h.drain()
	return resp.ErrorCode
}

func (p *producer) end(commit bool) int16 {
	req := kmsg.NewPtrEndTxnRequest()
	req.Version = p.version
	req.TransactionalID = p.id
	req.ProducerID, req.ProducerEpoch = p.pid, p.epoch
	req.Commit = commit
	resp := p.h.c.EndTxn(p.h.now, req)
	p.h.drain()
	return resp.ErrorCode
}

// mustInit initialises the producer, failing the test on an error.
func (p *producer) mustInit() *producer {
	p.h.t.Helper()
	require.Zero(p.h.t, p.init(), "init %s", p.id)
	return p
}
