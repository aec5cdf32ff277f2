package broker

// Observability: the broker's side of broker/observe, broker/metrics and
// broker/console. Everything the metrics and the console know about the
// broker goes through observer (observe.Source) below: replicas, ISR,
// leader and controller come from the metadata image (each partition's
// state as the reconcile loop last saw it), offsets and sizes from the
// replicas this node hosts, and the ISR and election counters from
// countReplication, which the reconcile loop calls on every new image.
//
// Reads for the console (records, group lag) are served from this node's
// state directly rather than through our SDK against our own listener:
// a page view then costs no connection, no client metadata round trips and
// no consumer, works while the Kafka listener is saturated, and reads
// exactly what a scrape reads (lag is computed by admin.Lag's rule from
// the coordinator's committed offsets and the logs' watermarks), so a
// partition this node holds no replica of has no offsets here. Write
// actions go through the broker's own request handlers, so they take every
// check a client's request takes.
//
// The hot-path hooks below are no-ops when http.listener is empty: then
// there is no metrics registry at all.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/console"
	"github.com/tributary/tributary/broker/controller"
	"github.com/tributary/tributary/broker/group"
	"github.com/tributary/tributary/broker/metrics"
	"github.com/tributary/tributary/broker/observe"
	"github.com/tributary/tributary/broker/storage"
	"github.com/tributary/tributary/internal/batch"
)

// obsState is the broker's metrics and HTTP listener. metrics is set by
// New and never changes; addr is set by startHTTP before Ready.
type obsState struct {
	metrics *metrics.Metrics
	srv     *http.Server           // guarded by Broker.connMu
	addr    atomic.Pointer[string] // bound HTTP address
	started time.Time
	// Replication events seen by the reconcile loop (countReplication).
	isrShrinks, isrExpands, elections, uncleanElections atomic.Int64
}

// maxObservedGroups bounds the groups one Groups call describes, so a
// scrape or page view is a bounded amount of work on the coordinator's
// goroutine.
const maxObservedGroups = 1000

// initObserve creates the metrics registry when the HTTP listener is on.
func (b *Broker) initObserve() {
	b.obs.started = time.Now()
	if b.cfg.HTTPListener == "" {
		return
	}
	names := make([]string, 0, len(apis))
	for key := range apis {
		names = append(names, kmsg.NameForKey(key))
	}
	slices.Sort(names)
	b.obs.metrics = metrics.New(observer{b}, names, metrics.Options{PartitionSeriesMax: int(b.cfg.MetricsPartitionSeriesMax)})
}

// startHTTP binds http.listener and serves the console, /metrics,
// /healthz and /readyz on it. The effective http.listener (what
// DescribeConfigs reports) becomes the bound address, so a port of 0 can
// be discovered by clients such as `tributary cluster info`.
func (b *Broker) startHTTP() error {
	if b.cfg.HTTPListener == "" {
		return nil
	}
	ln, err := net.Listen("tcp", b.cfg.HTTPListener)
	if err != nil {
		return fmt.Errorf("broker: http.listener: %w", err)
	}
	addr := ln.Addr().String()
	b.obs.addr.Store(&addr)
	b.mu.Lock()
	b.mu.eff.HTTPListener = addr
	b.cfg.HTTPListener = addr
	b.mu.Unlock()
	c := console.New(console.Options{
		Source:       observer{b},
		Metrics:      b.obs.metrics,
		Actions:      observer{b},
		WriteEnabled: b.cfg.ConsoleWriteEnable,
		Logger:       b.logger,
	})
	srv := &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	// srv is published under connMu so a concurrent Close either sees it
	// (and closes it) or has already started (and we do not serve).
	b.connMu.Lock()
	select {
	case <-b.closing:
		b.connMu.Unlock()
		ln.Close()
		return errors.New("broker: closed")
	default:
	}
	b.obs.srv = srv
	b.connMu.Unlock()
	b.goTracked(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.logger.Error("http listener stopped", "err", err)
		}
	})
	b.goTracked(func() { c.Run(b.closing) })
	return nil
}

// stopHTTP closes the HTTP listener and its connections (Close calls it
// before waiting for tracked goroutines).
func (b *Broker) stopHTTP() {
	b.connMu.Lock()
	srv := b.obs.srv
	b.connMu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// HTTPAddr is the host:port of the console and /metrics once Ready is
// closed; "" when http.listener is empty.
func (b *Broker) HTTPAddr() string {
	if p := b.obs.addr.Load(); p != nil {
		return *p
	}
	return ""
}

// Observe returns the broker's read-only view (for embedders that build
// their own pages or collectors).
func (b *Broker) Observe() observe.Source { return observer{b} }

// Metrics returns the broker's metrics, nil when http.listener is empty.
func (b *Broker) Metrics() *metrics.Metrics { return b.obs.metrics }

// reqTimes are the moments one request passed (for RequestMetrics).
type reqTimes struct{ recv, start, end time.Time }

// parked records how long a handler waited on something outside itself
// (fetch long poll, acks=all): Kafka's RemoteTimeMs.
func (r *request) parked(since time.Time) { r.remote = time.Since(since) }

// observeRequest records a request whose response was written at now,
// having left the response queue at dequeued.
func (b *Broker) observeRequest(inf *inflight, dequeued time.Time) {
	m := b.obs.metrics
	if m == nil || inf.t.recv.IsZero() || inf.t.start.IsZero() {
		return
	}
	now := time.Now()
	local := inf.t.end.Sub(inf.t.start) - inf.req.remote
	m.Request(kmsg.NameForKey(inf.req.key), metrics.RequestTimes{
		Queue: inf.t.start.Sub(inf.t.recv), Local: max(local, 0), Remote: inf.req.remote,
		ResponseQueue: max(dequeued.Sub(inf.t.end), 0), Send: now.Sub(dequeued),
	})
}

// observeProduce counts a successful append of one partition's batches.
func (b *Broker) observeProduce(topic string, batches []byte, res storage.AppendResult) {
	if m := b.obs.metrics; m != nil && !res.Duplicate {
		m.Produced(topic, len(batches), res.LastOffset-res.BaseOffset+1)
	}
}

// observeProduceFailed counts a failed append to an existing partition.
func (b *Broker) observeProduceFailed(topic string) {
	if m := b.obs.metrics; m != nil {
		m.ProduceFailed(topic)
	}
}

// observeFetch counts a fetch response's record bytes and failures per
// topic, as it is about to be written.
func (b *Broker) observeFetch(resp *fetchResponse) {
	m := b.obs.metrics
	if m == nil {
		return
	}
	for i := range resp.topics {
		t := &resp.topics[i]
		var n int64
		failed := false
		for j := range t.parts {
			n += t.parts[j].recordsLen()
			failed = failed || t.parts[j].errCode != 0
		}
		m.Fetched(t.topic, n, failed)
	}
}

// observeConn counts a connection opened or closed.
func (b *Broker) observeConn(opened bool) {
	if m := b.obs.metrics; m != nil {
		if opened {
			m.ConnOpened()
		} else {
			m.ConnClosed()
		}
	}
}

// observeConnRefused counts a connection refused by a limit.
func (b *Broker) observeConnRefused() {
	if m := b.obs.metrics; m != nil {
		m.ConnRefused()
	}
}

// enforceRetention runs retention on p and counts what it deleted.
func (b *Broker) enforceRetention(p *partition) error {
	m := b.obs.metrics
	if m == nil {
		return p.log.EnforceRetention()
	}
	before := p.log.Stats()
	err := p.log.EnforceRetention()
	after := p.log.Stats()
	m.Retention(int64(before.Segments-after.Segments), before.Size-after.Size)
	return err
}

// observer implements observe.Source over a Broker.
type observer struct{ b *Broker }

func (o observer) Cluster() observe.Cluster {
	b := o.b
	ready := false
	select {
	case <-b.ready:
		ready = true
	default:
	}
	select {
	case <-b.closing:
		ready = false
	default:
	}
	c := observe.Cluster{
		ClusterID: b.clusterID, NodeID: b.cfg.NodeID, Controller: b.ControllerID(),
		Ready: ready, StartTime: b.obs.started,
		ISRShrinks: b.obs.isrShrinks.Load(), ISRExpands: b.obs.isrExpands.Load(),
		LeaderElections: b.obs.elections.Load(), UncleanLeaderElections: b.obs.uncleanElections.Load(),
	}
	if img := b.image(); img != nil {
		for _, info := range img.LiveBrokers() {
			br := observe.Broker{NodeID: info.ID, Host: info.Host, Port: info.Port, Rack: info.Rack}
			if info.ID == b.cfg.NodeID {
				if a := b.HTTPAddr(); a != "" {
					br.ConsoleURL = "http://" + a + "/"
				}
			}
			c.Brokers = append(c.Brokers, br)
		}
	}
	if len(c.Brokers) == 0 { // before the first metadata
		host, port := b.advertised()
		c.Brokers = []observe.Broker{{NodeID: b.cfg.NodeID, Host: host, Port: port}}
	}
	return c
}

// snapshotTopics copies the topic registry: names, partitions and the
// effective min.insync.replicas, under one read lock.
func (o observer) snapshotTopics(name string) []topicSnap {
	b := o.b
	b.mu.RLock()
	defer b.mu.RUnlock()
	var out []topicSnap
	add := func(t *topic) {
		minISR, _ := strconv.Atoi(b.topicValueLocked(t, topicPropsByName["min.insync.replicas"]))
		compact := containsFold(splitList(b.topicValueLocked(t, topicPropsByName["cleanup.policy"])), "compact")
		out = append(out, topicSnap{t: t, parts: t.partitions, minISR: minISR, compact: compact})
	}
	if name != "" {
		if t := b.mu.topics[name]; t != nil {
			add(t)
		}
		return out
	}
	for _, t := range b.mu.topics {
		add(t)
	}
	slices.SortFunc(out, func(x, y topicSnap) int {
		switch {
		case x.t.name < y.t.name:
			return -1
		case x.t.name > y.t.name:
			return 1
		}
		return 0
	})
	return out
}

type topicSnap struct {
	t       *topic
	parts   []*partition
	minISR  int
	compact bool // cleanup.policy includes compact
}

func (o observer) describe(s topicSnap) observe.Topic {
	t := observe.Topic{Name: s.t.name, ID: uuidString(s.t.id), Internal: s.t.internal, ReplicationFactor: int(s.t.replicationFactor())}
	t.Partitions = make([]observe.Partition, len(s.parts))
	for i, p := range s.parts {
		op := observe.Partition{
			Topic: s.t.name, Partition: p.index, Leader: -1, LeaderEpoch: p.leaderEpoch(), MinISR: s.minISR,
			HighWatermark: -1, LogStart: -1, LogEnd: -1, Size: -1,
		}
		if cs := p.state.Load(); cs != nil {
			op.Leader = cs.Leader
			op.Replicas = slices.Clone(cs.Replicas)
			op.ISR = slices.Clone(cs.ISR)
		}
		if p.log != nil {
			st := p.log.Stats()
			op.Local = true
			op.HighWatermark, op.LogStart, op.LogEnd, op.Size, op.Segments = p.rep.HighWatermark(), st.LogStart, st.LogEnd, st.Size, st.Segments
			if s.compact {
				op.Compacted, op.DirtyRatio = true, p.log.CleanState().Ratio
			}
		}
		t.Partitions[i] = op
	}
	return t
}

func (o observer) Topics() []observe.Topic {
	snaps := o.snapshotTopics("")
	out := make([]observe.Topic, len(snaps))
	for i, s := range snaps {
		out[i] = o.describe(s)
	}
	return out
}

func (o observer) Topic(name string) (observe.Topic, bool) {
	snaps := o.snapshotTopics(name)
	if len(snaps) == 0 {
		return observe.Topic{}, false
	}
	t := o.describe(snaps[0])
	for _, e := range o.b.topicConfigEntries(snaps[0].t, false) {
		v := ""
		if e.value != nil {
			v = *e.value
		}
		t.Configs = append(t.Configs, observe.Config{Name: e.name, Value: v, Source: e.source.String()})
	}
	return t, true
}

// Groups describes the groups on the coordinator's goroutine (one call
// for all of them, bounded by maxObservedGroups) and computes lag here.
func (o observer) Groups(ctx context.Context) ([]observe.Group, error) {
	b := o.b
	var (
		listed    []kmsg.ListGroupsResponseGroup
		described []kmsg.DescribeGroupsResponseGroup
		fetched   []kmsg.OffsetFetchResponseGroup
		errs      = map[string]string{}
	)
	call := &groupCall{reply: make(chan kmsg.Response, 1), run: func(gc *groupCoordinator, now time.Time, _ group.Ref) kmsg.Response {
		lr := gc.c.ListGroups(now, kmsg.NewPtrListGroupsRequest())
		listed = lr.Groups
		if len(listed) > maxObservedGroups {
			listed = listed[:maxObservedGroups]
		}
		dr := kmsg.NewPtrDescribeGroupsRequest()
		dr.Version = 5
		fr := kmsg.NewPtrOffsetFetchRequest()
		fr.Version = 8
		for _, g := range listed {
			if e := gc.groupError(g.Group); e != nil {
				errs[g.Group] = e.Name
				continue
			}
			dr.Groups = append(dr.Groups, g.Group)
			rg := kmsg.NewOffsetFetchRequestGroup()
			rg.Group = g.Group
			fr.Groups = append(fr.Groups, rg)
		}
		if len(dr.Groups) > 0 {
			described = gc.c.DescribeGroups(now, dr).Groups
			fetched = gc.c.OffsetFetch(now, fr).Groups
		}
		return lr
	}}
	select {
	case b.groups.Load().calls <- call:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-b.closing:
		return nil, errGroupsClosing
	}
	select {
	case resp := <-call.reply:
		if resp == nil {
			return nil, errGroupPanic
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-b.closing:
		return nil, errGroupsClosing
	}

	byID := map[string]*kmsg.DescribeGroupsResponseGroup{}
	for i := range described {
		byID[described[i].Group] = &described[i]
	}
	offs := map[string]*kmsg.OffsetFetchResponseGroup{}
	for i := range fetched {
		offs[fetched[i].Group] = &fetched[i]
	}
	out := make([]observe.Group, 0, len(listed))
	for _, lg := range listed {
		g := observe.Group{ID: lg.Group, State: lg.GroupState, ProtocolType: lg.ProtocolType, Err: errs[lg.Group]}
		if d := byID[lg.Group]; d != nil {
			g.State, g.ProtocolType, g.Protocol = d.State, d.ProtocolType, d.Protocol
			if d.ErrorCode != 0 {
				g.Err = tributary.ErrorForCode(d.ErrorCode).Error()
			}
			for _, m := range d.Members {
				om := observe.Member{ID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost}
				if m.InstanceID != nil {
					om.InstanceID = *m.InstanceID
				}
				if d.ProtocolType == "consumer" && len(m.MemberAssignment) > 0 {
					var a kmsg.ConsumerMemberAssignment
					if a.ReadFrom(m.MemberAssignment) == nil {
						for _, t := range a.Topics {
							om.Assigned = append(om.Assigned, observe.TopicPartitions{Topic: t.Topic, Partitions: slices.Clone(t.Partitions)})
						}
					}
				}
				g.Members = append(g.Members, om)
			}
		}
		g.Offsets = o.lag(g, offs[lg.Group])
		out = append(out, g)
	}
	return out, nil
}

// lag applies admin.Lag's rule to the partitions g committed to or has
// assigned: End is the high watermark, Start the log start offset.
func (o observer) lag(g observe.Group, f *kmsg.OffsetFetchResponseGroup) []observe.GroupOffset {
	type tp struct {
		t string
		p int32
	}
	owner := map[tp]string{}
	for _, m := range g.Members {
		for _, a := range m.Assigned {
			for _, p := range a.Partitions {
				owner[tp{a.Topic, p}] = m.ID
			}
		}
	}
	committed := map[tp]int64{}
	if f != nil {
		for _, t := range f.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode == 0 && p.Offset >= 0 {
					committed[tp{t.Topic, p.Partition}] = p.Offset
				}
			}
		}
	}
	keys := map[tp]bool{}
	for k := range committed {
		keys[k] = true
	}
	for k := range owner {
		keys[k] = true
	}
	out := make([]observe.GroupOffset, 0, len(keys))
	for k := range keys {
		go_ := observe.GroupOffset{Topic: k.t, Partition: k.p, Committed: -1, Start: -1, End: -1, Lag: -1, Member: owner[k]}
		if c, ok := committed[k]; ok {
			go_.Committed = c
		}
		if p, err := o.b.lookupPartition(k.t, k.p); err == nil && p.log != nil {
			st := p.log.Stats()
			go_.Start, go_.End = st.LogStart, st.HighWatermark
			if go_.Committed >= 0 {
				go_.Lag = max(go_.End-go_.Committed, 0)
			} else {
				go_.Lag = max(go_.End-go_.Start, 0)
			}
		}
		out = append(out, go_)
	}
	slices.SortFunc(out, func(x, y observe.GroupOffset) int {
		switch {
		case x.Topic != y.Topic:
			if x.Topic < y.Topic {
				return -1
			}
			return 1
		case x.Partition < y.Partition:
			return -1
		case x.Partition > y.Partition:
			return 1
		}
		return 0
	})
	return out
}

// Records reads committed records (below the high watermark) of one
// partition, decoding (and decompressing) its batches; control batches
// are skipped. At most 1000 records and 16 MiB of batches are read.
func (o observer) Records(ctx context.Context, req observe.ReadRequest) ([]observe.Record, error) {
	p, err := o.b.lookupPartition(req.Topic, req.Partition)
	if err != nil {
		return nil, err
	}
	if p.log == nil {
		return nil, errorf(tributary.ErrNotLeaderOrFollower, "broker %d holds no replica of %s-%d; browse it on a broker that does", o.b.cfg.NodeID, req.Topic, req.Partition)
	}
	n := min(max(req.Max, 1), 1000)
	budget := int64(16 << 20)
	if req.MaxBytes > 0 {
		budget = min(budget, int64(req.MaxBytes))
	}
	l := p.log
	st := l.Stats()
	hw := st.HighWatermark
	off := req.Offset
	if req.FromTime >= 0 {
		found, _, ok, err := l.OffsetForTimestamp(req.FromTime, hw)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, nil // nothing at or after that time
		}
		off = found
	}
	off = max(off, st.LogStart)
	start := off
	if off >= hw {
		return nil, nil
	}
	dec := batch.GetBuffer()
	defer batch.PutBuffer(dec)
	var out []observe.Record
	var buf []byte
	for off < hw && len(out) < n && budget > 0 {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		fs, err := l.Read(off, hw, int32(min(budget, 1<<20)), true)
		if err != nil {
			if errors.Is(err, tributary.ErrOffsetOutOfRange) && len(out) > 0 {
				break // retention moved the start while we read
			}
			return out, err
		}
		if fs.Len == 0 {
			break
		}
		budget -= fs.Len
		buf = slices.Grow(buf[:0], int(fs.Len))[:fs.Len]
		if _, err := fs.File.ReadAt(buf, fs.Pos); err != nil {
			return out, fmt.Errorf("reading %s: %w", l.Dir(), err)
		}
		for rest := buf; len(rest) > 0 && len(out) < n; {
			h, err := batch.ParseHeader(rest)
			if err != nil {
				return out, err
			}
			size := h.Size()
			if size > int64(len(rest)) || h.Length < batch.MinLength {
				return out, fmt.Errorf("batch at offset %d: %w", h.BaseOffset, batch.ErrBadLength)
			}
			bb := rest[:size]
			rest = rest[size:]
			if next := h.LastOffset() + 1; next > off {
				off = next
			} else {
				return out, fmt.Errorf("batch at offset %d does not advance past %d", h.BaseOffset, off)
			}
			if h.IsControl() {
				continue
			}
			region, err := batch.RecordsRegion(bb, (*dec)[:0], 64<<20)
			if err != nil {
				return out, err
			}
			it := batch.NewRecords(region, h.RecordCount)
			var r batch.Record
			for it.Next(&r) && len(out) < n {
				ro := h.BaseOffset + int64(r.OffsetDelta)
				if ro < start {
					continue // the batch began before the offset asked for
				}
				ts := h.BaseTimestamp + r.TimestampDelta
				if h.IsLogAppendTime() {
					ts = h.MaxTimestamp
				}
				rec := observe.Record{Offset: ro, Timestamp: time.UnixMilli(ts), Key: cloneNil(r.Key), Value: cloneNil(r.Value)}
				hs := r.Headers
				for {
					k, v, ok := hs.Next()
					if !ok {
						break
					}
					rec.Headers = append(rec.Headers, observe.Header{Key: string(k), Value: slices.Clone(v)})
				}
				out = append(out, rec)
			}
			if err := it.Err(); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// cloneNil copies b, keeping nil (a null key or value) apart from empty.
func cloneNil(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// consoleClientID names the console's requests in logs and group member
// descriptions.
const consoleClientID = "tributary-console"

// serve runs msg through its handler at the highest version we serve, as
// if a client had sent it; ctx bounds only the wait for an answer.
func (o observer) serve(ctx context.Context, msg kmsg.Request) (kmsg.Response, error) {
	api, ok := apis[msg.Key()]
	if !ok {
		return nil, fmt.Errorf("broker: no handler for %s", kmsg.NameForKey(msg.Key()))
	}
	msg.SetVersion(api.max)
	type result struct {
		resp any
		err  error
	}
	done := make(chan result, 1)
	if !o.b.tryGo(func() {
		resp, err := api.fn(o.b, &request{key: msg.Key(), version: api.max, clientID: consoleClientID, msg: msg})
		done <- result{resp, err}
	}) {
		return nil, errors.New("broker: closing")
	}
	select {
	case r := <-done:
		if r.err != nil {
			return nil, r.err
		}
		resp, ok := r.resp.(kmsg.Response)
		if !ok {
			return nil, fmt.Errorf("broker: %s answered %T", kmsg.NameForKey(msg.Key()), r.resp)
		}
		return resp, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// codeErr is the error of a response's error code and message, nil for 0.
func codeErr(code int16, msg *string) error {
	if code == 0 {
		return nil
	}
	err := tributary.ErrorForCode(code)
	if msg != nil && *msg != "" {
		return fmt.Errorf("%w: %s", err, *msg)
	}
	return err
}

func (o observer) CreateTopic(ctx context.Context, name string, partitions int32, rf int16) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = name, partitions, rf
	req.Topics = append(req.Topics, t)
	req.TimeoutMillis = 30000
	resp, err := o.serve(ctx, req)
	if err != nil {
		return err
	}
	rt := resp.(*kmsg.CreateTopicsResponse).Topics[0]
	return codeErr(rt.ErrorCode, rt.ErrorMessage)
}

func (o observer) DeleteTopic(ctx context.Context, name string) error {
	req := kmsg.NewPtrDeleteTopicsRequest()
	t := kmsg.NewDeleteTopicsRequestTopic()
	t.Topic = kmsg.StringPtr(name)
	req.Topics = append(req.Topics, t)
	req.TopicNames = []string{name}
	req.TimeoutMillis = 30000
	resp, err := o.serve(ctx, req)
	if err != nil {
		return err
	}
	rt := resp.(*kmsg.DeleteTopicsResponse).Topics[0]
	return codeErr(rt.ErrorCode, rt.ErrorMessage)
}

// ResetGroupOffsets computes the new offsets from the logs (as
// kafka-consumer-groups does with ListOffsets) and commits them with an
// OffsetCommit of generation -1, which the coordinator accepts only while
// the group has no members.
func (o observer) ResetGroupOffsets(ctx context.Context, groupID, topicName string, to observe.ResetTarget) error {
	fr := kmsg.NewPtrOffsetFetchRequest()
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = groupID
	fr.Groups = append(fr.Groups, rg)
	resp, err := o.serve(ctx, fr)
	if err != nil {
		return err
	}
	fg := resp.(*kmsg.OffsetFetchResponse).Groups
	if len(fg) != 1 {
		return errors.New("broker: OffsetFetch answered no group")
	}
	if err := codeErr(fg[0].ErrorCode, nil); err != nil {
		return err
	}
	committed := map[string]map[int32]int64{}
	for _, t := range fg[0].Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode == 0 && p.Offset >= 0 {
				if committed[t.Topic] == nil {
					committed[t.Topic] = map[int32]int64{}
				}
				committed[t.Topic][p.Partition] = p.Offset
			}
		}
	}
	want := map[string][]int32{}
	if topicName != "" {
		snaps := o.snapshotTopics(topicName)
		if len(snaps) == 0 {
			return fmt.Errorf("%w: topic %s", tributary.ErrUnknownTopicOrPartition, topicName)
		}
		for _, p := range snaps[0].parts {
			want[topicName] = append(want[topicName], p.index)
		}
	} else {
		for t, ps := range committed {
			for p := range ps {
				want[t] = append(want[t], p)
			}
		}
	}
	if len(want) == 0 {
		return fmt.Errorf("group %s has no committed offsets to reset", groupID)
	}
	cr := kmsg.NewPtrOffsetCommitRequest()
	cr.Group, cr.Generation, cr.MemberID = groupID, -1, ""
	for _, t := range slices.Sorted(maps.Keys(want)) {
		ct := kmsg.NewOffsetCommitRequestTopic()
		ct.Topic = t
		ps := want[t]
		slices.Sort(ps)
		for _, pi := range ps {
			p, err := o.b.lookupPartition(t, pi)
			if err == nil && p.log == nil {
				err = errorf(tributary.ErrNotLeaderOrFollower, "broker %d holds no replica", o.b.cfg.NodeID)
			}
			if err != nil {
				return fmt.Errorf("%s[%d]: %w", t, pi, err)
			}
			st := p.log.Stats()
			var off int64
			switch to.Kind {
			case observe.ResetToEarliest:
				off = st.LogStart
			case observe.ResetToLatest:
				off = st.HighWatermark
			case observe.ResetToTime:
				found, _, ok, err := p.log.OffsetForTimestamp(to.Value, st.HighWatermark)
				if err != nil {
					return fmt.Errorf("%s[%d]: %w", t, pi, err)
				}
				off = st.HighWatermark
				if ok {
					off = found
				}
			case observe.ResetShiftBy:
				c, ok := committed[t][pi]
				if !ok {
					return fmt.Errorf("%s[%d]: the group has no committed offset to shift", t, pi)
				}
				off = min(max(c+to.Value, st.LogStart), st.HighWatermark)
			default:
				return fmt.Errorf("broker: invalid reset target %d", to.Kind)
			}
			cp := kmsg.NewOffsetCommitRequestTopicPartition()
			cp.Partition, cp.Offset, cp.LeaderEpoch = pi, off, -1
			ct.Partitions = append(ct.Partitions, cp)
		}
		cr.Topics = append(cr.Topics, ct)
	}
	resp, err = o.serve(ctx, cr)
	if err != nil {
		return err
	}
	for _, t := range resp.(*kmsg.OffsetCommitResponse).Topics {
		for _, p := range t.Partitions {
			if err := codeErr(p.ErrorCode, nil); err != nil {
				return fmt.Errorf("%s[%d]: %w", t.Topic, p.Partition, err)
			}
		}
	}
	return nil
}

// countReplication counts, between two metadata images, the events Kafka
// meters: ISR shrinks and expands of partitions this broker leads (as on
// Kafka's leader, IsrShrinksPerSec/IsrExpandsPerSec), and the leader
// elections this broker won (summed over the brokers, the controller's
// LeaderElectionRateAndTimeMs; unclean when the new leader was not in the
// previous ISR).
func (b *Broker) countReplication(prev, img *controller.Image) {
	if prev == nil {
		return
	}
	me := b.cfg.NodeID
	for _, t := range img.Topics() {
		pt := prev.TopicByID([16]byte(t.ID))
		if pt == nil {
			continue
		}
		for i, p := range t.Partitions {
			if i >= len(pt.Partitions) {
				break
			}
			q := pt.Partitions[i]
			if p.Leader == me && q.Leader == me && p.LeaderEpoch == q.LeaderEpoch {
				switch {
				case len(p.ISR) < len(q.ISR):
					b.obs.isrShrinks.Add(1)
				case len(p.ISR) > len(q.ISR):
					b.obs.isrExpands.Add(1)
				}
			}
			if p.Leader == me && p.LeaderEpoch != q.LeaderEpoch && q.Leader != me {
				b.obs.elections.Add(1)
				if !q.InISR(me) {
					b.obs.uncleanElections.Add(1)
				}
			}
		}
	}
}
