package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// connKind separates traffic that must not queue behind other traffic:
// a Fetch long-polls and a JoinGroup waits for a rebalance, so neither may
// hold up a Produce or a Metadata request. Responses come back in request
// order on one connection, hence one connection per kind.
type connKind uint8

const (
	kindGeneral connKind = iota
	kindProduce
	kindFetch
	kindGroup
	numKinds
)

func kindOf(key int16) connKind {
	switch key {
	case 0:
		return kindProduce
	case 1:
		return kindFetch
	case 11, 14: // JoinGroup, SyncGroup block for a whole rebalance
		return kindGroup
	}
	return kindGeneral
}

// pending is one request on its way through a connection.
type pending struct {
	ctx      context.Context
	req      kmsg.Request
	minV     int16
	cb       func(kmsg.Response, error)
	corr     int32
	deadline time.Time
	noResp   bool // acks=0 Produce: done once written

	// For hooks, set only when the client has some.
	enqueued time.Time
	written  time.Time
	size     int
	seq      uint64 // write order, for ordering write hooks before read hooks
}

// fifo is a ring buffer; the connection's queues would otherwise leak the
// backing arrays of slices resliced from the front forever.
type fifo struct {
	buf  []*pending
	head int
	n    int
}

func (q *fifo) push(p *pending) {
	if q.n == len(q.buf) {
		nb := make([]*pending, max(8, 2*len(q.buf)))
		for i := range q.n {
			nb[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = nb, 0
	}
	q.buf[(q.head+q.n)%len(q.buf)] = p
	q.n++
}

func (q *fifo) peek() *pending { return q.buf[q.head] }

func (q *fifo) pop() *pending {
	p := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return p
}

func (q *fifo) drain() []*pending {
	out := make([]*pending, 0, q.n)
	for q.n > 0 {
		out = append(out, q.pop())
	}
	return out
}

// conn is one TCP (or TLS) connection to a broker. A writer goroutine
// encodes queued requests in order; a reader goroutine matches responses to
// them by correlation id. At most maxInflight requests await responses.
//
// mu guards queue, inflight, dead and err. The writer and reader hold no
// lock while doing I/O.
type conn struct {
	b        *Broker
	kind     connKind
	nc       net.Conn
	cfg      *cfg
	fmt      *kmsg.RequestFormatter
	versions [kmsg.MaxKey + 1]int16 // broker's max version per key, -1 if absent
	minVers  [kmsg.MaxKey + 1]int16 // broker's min version per key

	mu        sync.Mutex
	queue     fifo
	inflight  fifo
	dead      bool
	err       error
	writeCond sync.Cond // queue non-empty and inflight has room, or dead
	readCond  sync.Cond // inflight non-empty, or dead
	roomCond  sync.Cond // queue below maxQueued, or dead
	hooks     *hookSet
	writeSeq  uint64 // writer only: the last request's seq
	written   uint64 // guarded by mu: seq of the last request whose write hooks ran

	corr int32         // writer only after setup
	wbuf []byte        // writer only
	br   *bufio.Reader // reader only after setup
	done chan struct{}
	wg   sync.WaitGroup
}

func (c *Client) dialConn(ctx context.Context, b *Broker, kind connKind) (*conn, error) {
	start := time.Now()
	cn, err := c.dialConnNoHook(ctx, b, kind)
	for _, h := range c.hooks.connect {
		h.OnBrokerConnect(b.info(), time.Since(start), err)
	}
	return cn, err
}

func (c *Client) dialConnNoHook(ctx context.Context, b *Broker, kind connKind) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.dialTimeout)
	defer cancel()
	var nc net.Conn
	var err error
	if c.cfg.dialer != nil {
		nc, err = c.cfg.dialer(ctx, "tcp", b.addr)
	} else {
		var d net.Dialer
		nc, err = d.DialContext(ctx, "tcp", b.addr)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: dial %s: %w", ErrConnection, b.addr, err)
	}
	host, _, _ := net.SplitHostPort(b.addr)
	if c.cfg.tls != nil {
		tc := c.cfg.tls.Clone()
		if tc.ServerName == "" {
			tc.ServerName = host
		}
		tlsConn := tls.Client(nc, tc)
		if err := tlsConn.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("%w: tls handshake with %s: %w", ErrConnection, b.addr, err)
		}
		nc = tlsConn
	}
	cn := &conn{
		b:     b,
		kind:  kind,
		nc:    nc,
		cfg:   &c.cfg,
		fmt:   c.formatter,
		hooks: &c.hooks,
		done:  make(chan struct{}),
		// Pipelined responses are small and arrive together; one read
		// picks up several.
		br: bufio.NewReaderSize(nc, 32<<10),
	}
	cn.writeCond.L = &cn.mu
	cn.readCond.L = &cn.mu
	cn.roomCond.L = &cn.mu
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	// Closing the socket is the only way to interrupt blocking I/O when the
	// caller gives up during setup.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	err = cn.negotiate()
	if err == nil && len(c.cfg.sasl) > 0 {
		err = cn.authenticate(ctx, c.cfg.sasl, host)
	}
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		nc.Close()
		if !errors.Is(err, ErrConnection) && tributary.CodeOf(err) == tributary.ErrUnknownServerError.Code {
			err = fmt.Errorf("%w: %s: %w", ErrConnection, b.addr, err)
		}
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	cn.wg.Add(2)
	go cn.writeLoop()
	go cn.readLoop()
	return cn, nil
}

// negotiate runs ApiVersions, following KIP-511: a broker that does not
// know our version answers in v0 with UNSUPPORTED_VERSION and, if it can,
// its own maximum for ApiVersions, which we then use.
func (cn *conn) negotiate() error {
	for i := range cn.versions {
		cn.versions[i] = -1
	}
	v := kmsg.NewPtrApiVersionsRequest().MaxVersion()
	if pin := cn.b.apiVersionsPin.Load(); pin > 0 {
		v = int16(pin - 1)
	}
	for range 3 {
		req := kmsg.NewPtrApiVersionsRequest()
		req.ClientSoftwareName = cn.cfg.softwareName
		req.ClientSoftwareVersion = cn.cfg.softwareVersion
		raw, err := cn.roundTrip(req, v, v)
		if err != nil {
			// Some Kafka-compatible services (Azure Event Hubs) close the
			// connection on an ApiVersions version they do not know
			// instead of answering in v0. The next dial tries v3 (the
			// last before client software fields mattered), then v0.
			if errors.Is(err, ErrConnection) && v > 0 {
				next := int16(0)
				if v > 3 {
					next = 3
				}
				cn.b.apiVersionsPin.Store(int32(next) + 1)
			}
			return fmt.Errorf("api versions v%d: %w", v, err)
		}
		resp := raw.(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode == tributary.ErrUnsupportedVersion.Code {
			next := int16(0)
			for _, k := range resp.ApiKeys {
				if k.ApiKey == 18 {
					next = k.MaxVersion
				}
			}
			if next >= v {
				next = v - 1
			}
			if next < 0 {
				return fmt.Errorf("api versions: %w", tributary.ErrUnsupportedVersion)
			}
			v = next
			continue
		}
		if resp.ErrorCode != 0 {
			return fmt.Errorf("api versions: %w", tributary.ErrorForCode(resp.ErrorCode))
		}
		for _, k := range resp.ApiKeys {
			if k.ApiKey >= 0 && int(k.ApiKey) < len(cn.versions) && k.MaxVersion >= 0 {
				cn.versions[k.ApiKey] = k.MaxVersion
				cn.minVers[k.ApiKey] = k.MinVersion
			}
		}
		return nil
	}
	return fmt.Errorf("api versions: %w", tributary.ErrUnsupportedVersion)
}

// roundTrip writes one request and reads its response synchronously; it is
// used only during connection setup, before the I/O goroutines run.
// minV..maxV bounds the version; the broker's maximum, once known, caps it.
func (cn *conn) roundTrip(req kmsg.Request, minV, maxV int16) (kmsg.Response, error) {
	v := min(maxV, req.MaxVersion())
	if key := req.Key(); key != 18 {
		if bv := cn.versions[key]; bv < v {
			v = bv
		}
	}
	if v < minV || (req.Key() != 18 && v < cn.minVers[req.Key()]) {
		return nil, fmt.Errorf("broker does not support key %d at version >= %d: %w", req.Key(), minV, tributary.ErrUnsupportedVersion)
	}
	req.SetVersion(v)
	cn.corr++
	buf := cn.fmt.AppendRequest(nil, req, cn.corr)
	if _, err := cn.nc.Write(buf); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConnection, err)
	}
	body, err := cn.readFrame(cn.corr)
	if err != nil {
		return nil, err
	}
	return cn.decode(req, body)
}

// readFrame reads one size-prefixed response and checks its correlation id.
// The size is checked before allocating.
func (cn *conn) readFrame(corr int32) ([]byte, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(cn.br, hdr[:4]); err != nil {
		return nil, fmt.Errorf("%w: read from %s: %w", ErrConnection, cn.b.addr, err)
	}
	size := int32(binary.BigEndian.Uint32(hdr[:4]))
	if size < 4 || size > cn.cfg.maxReadBytes {
		return nil, fmt.Errorf("%w: %s sent a response of %d bytes (limit %d)", ErrConnection, cn.b.addr, size, cn.cfg.maxReadBytes)
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(cn.br, buf); err != nil {
		return nil, fmt.Errorf("%w: read from %s: %w", ErrConnection, cn.b.addr, err)
	}
	if got := int32(binary.BigEndian.Uint32(buf)); got != corr {
		return nil, fmt.Errorf("%w: %s answered correlation id %d, expected %d", ErrConnection, cn.b.addr, got, corr)
	}
	return buf[4:], nil
}

// decode parses a response body (after the correlation id) for req.
func (cn *conn) decode(req kmsg.Request, body []byte) (kmsg.Response, error) {
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if req.Key() == 18 {
		// ApiVersions answers always use the v0 header, and an
		// UNSUPPORTED_VERSION answer uses the v0 body; ErrorCode leads in
		// every version, so peek at it.
		if len(body) >= 2 && int16(binary.BigEndian.Uint16(body)) == tributary.ErrUnsupportedVersion.Code {
			resp.SetVersion(0)
		}
	} else if resp.IsFlexible() {
		var err error
		if body, err = skipTags(body); err != nil {
			return nil, err
		}
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("%w: decoding %T v%d from %s: %w", ErrConnection, resp, resp.GetVersion(), cn.b.addr, err)
	}
	return resp, nil
}

// skipTags skips the response header's tagged fields (header v1).
// errBadHeaderTags is built once: skipTags runs on every flexible
// response, and building the error there cost an allocation each time.
var errBadHeaderTags = fmt.Errorf("%w: malformed response header tags", ErrConnection)

func skipTags(b []byte) ([]byte, error) {
	bad := errBadHeaderTags
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, bad
	}
	b = b[k:]
	for range n {
		if _, k = binary.Uvarint(b); k <= 0 {
			return nil, bad
		}
		b = b[k:]
		size, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < size {
			return nil, bad
		}
		b = b[k+int(size):]
	}
	return b, nil
}

// enqueue hands a request to the writer. cb is called exactly once, from
// the reader goroutine on success, or from whichever goroutine notices the
// failure. While MaxQueuedPerConn requests wait to be written, enqueue
// blocks until one is, the request's ctx ends or the connection dies.
func (cn *conn) enqueue(p *pending) {
	cn.mu.Lock()
	if !cn.dead && cn.queue.n >= cn.cfg.maxQueued {
		if err := cn.waitRoomLocked(p.ctx); err != nil {
			cn.mu.Unlock()
			p.cb(nil, err)
			return
		}
	}
	if cn.dead {
		err := cn.err
		cn.mu.Unlock()
		p.cb(nil, err)
		return
	}
	if len(cn.hooks.write) > 0 || len(cn.hooks.read) > 0 {
		p.enqueued = time.Now()
	}
	cn.queue.push(p)
	cn.writeCond.Signal()
	cn.mu.Unlock()
}

// waitRoomLocked waits, with cn.mu held, until the queue has room or the
// connection died; it returns ctx's error if ctx ends first.
func (cn *conn) waitRoomLocked(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		cn.mu.Lock()
		cn.roomCond.Broadcast()
		cn.mu.Unlock()
	})
	defer stop()
	for !cn.dead && cn.queue.n >= cn.cfg.maxQueued {
		if err := ctx.Err(); err != nil {
			return err
		}
		cn.roomCond.Wait()
	}
	return nil
}

func (cn *conn) isDead() bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.dead
}

func expectsResponse(req kmsg.Request) bool {
	if pr, ok := req.(*kmsg.ProduceRequest); ok {
		return pr.Acks != 0
	}
	if l, ok := req.(*limited); ok {
		return expectsResponse(l.Request)
	}
	return true
}

// maxCoalesce bounds how many queued requests, and how many bytes, one
// write carries: pipelined small requests (produce to a few partitions,
// metadata, heartbeats) then cost one syscall instead of one each.
const (
	maxCoalesce      = 16
	maxCoalesceBytes = 1 << 20
)

type failure struct {
	p   *pending
	err error
}

func (cn *conn) writeLoop() {
	defer cn.wg.Done()
	var batch []*pending
	var failed []failure
	for {
		cn.mu.Lock()
		for !cn.dead && (cn.queue.n == 0 || cn.inflight.n >= cn.cfg.maxInflight) {
			cn.writeCond.Wait()
		}
		if cn.dead {
			cn.mu.Unlock()
			return
		}
		batch, failed = batch[:0], failed[:0]
		cn.wbuf = cn.wbuf[:0]
		var deadline time.Time
		firstLen := 0
		now := time.Now()
		popped := false
		for cn.queue.n > 0 && cn.inflight.n < cn.cfg.maxInflight && len(batch) < maxCoalesce && len(cn.wbuf) < maxCoalesceBytes {
			p := cn.queue.pop()
			popped = true
			if err := p.ctx.Err(); err != nil {
				failed = append(failed, failure{p, err})
				continue
			}
			key := p.req.Key()
			v := min(p.req.MaxVersion(), cn.versions[key])
			if v < p.minV || v < 0 || v < cn.minVers[key] {
				failed = append(failed, failure{p, fmt.Errorf("broker %d does not support request key %d at version >= %d: %w", cn.b.id, key, p.minV, tributary.ErrUnsupportedVersion)})
				continue
			}
			p.req.SetVersion(v)
			cn.corr++
			p.corr = cn.corr
			timeout := cn.cfg.requestTimeout
			inner := p.req
			if l, ok := inner.(*limited); ok {
				inner = l.Request
			}
			timeout += brokerWait(inner)
			p.deadline = now.Add(timeout)
			p.written = now
			if deadline.IsZero() || p.deadline.Before(deadline) {
				deadline = p.deadline
			}
			// Encoded under the lock, in queue order, so correlation
			// ids and bytes on the wire agree.
			start := len(cn.wbuf)
			cn.wbuf = cn.fmt.AppendRequest(cn.wbuf, p.req, p.corr)
			if start > 0 {
				// AppendRequest writes the size at the front of the
				// slice it is given: put back the first frame's size and
				// set this frame's.
				binary.BigEndian.PutUint32(cn.wbuf, uint32(firstLen))
				binary.BigEndian.PutUint32(cn.wbuf[start:], uint32(len(cn.wbuf)-start-4))
			} else {
				firstLen = len(cn.wbuf) - 4
			}
			p.size = len(cn.wbuf) - start
			cn.writeSeq++
			p.seq = cn.writeSeq
			if expectsResponse(p.req) {
				// Registered before writing so the reader can never
				// see a response for a request it does not know.
				cn.inflight.push(p)
				cn.readCond.Signal()
			} else {
				p.noResp = true
			}
			batch = append(batch, p)
		}
		if popped {
			cn.roomCond.Broadcast()
		}
		cn.mu.Unlock()
		for _, f := range failed {
			f.p.cb(nil, f.err)
		}
		if len(batch) == 0 {
			continue
		}

		cn.nc.SetWriteDeadline(deadline)
		_, err := cn.nc.Write(cn.wbuf)
		if cap(cn.wbuf) > 4<<20 {
			cn.wbuf = nil // do not pin one huge request's buffer forever
		}
		if hs := cn.hooks.write; len(hs) > 0 {
			info := cn.b.info()
			for _, p := range batch {
				for _, h := range hs {
					h.OnBrokerWrite(info, p.req.Key(), p.size, now.Sub(p.enqueued), err)
				}
			}
			// Let the reader report responses now that their writes are
			// reported: a request's hooks run in order.
			cn.mu.Lock()
			cn.written = cn.writeSeq
			cn.readCond.Broadcast()
			cn.mu.Unlock()
		}
		if err != nil {
			err = fmt.Errorf("%w: write to %s: %w", ErrConnection, cn.b.addr, err)
			for _, p := range batch {
				if p.noResp {
					p.cb(nil, err)
				}
			}
			cn.die(err)
			return
		}
		for _, p := range batch {
			if p.noResp {
				p.cb(nil, nil)
			}
		}
		clear(batch)
	}
}

func (cn *conn) readLoop() {
	defer cn.wg.Done()
	for {
		cn.mu.Lock()
		for !cn.dead && cn.inflight.n == 0 {
			cn.readCond.Wait()
		}
		if cn.dead {
			cn.mu.Unlock()
			return
		}
		p := cn.inflight.peek()
		cn.mu.Unlock()

		cn.nc.SetReadDeadline(p.deadline)
		body, err := cn.readFrame(p.corr)
		if len(cn.hooks.write) > 0 {
			cn.mu.Lock()
			for !cn.dead && cn.written < p.seq {
				cn.readCond.Wait()
			}
			cn.mu.Unlock()
		}
		if hs := cn.hooks.read; len(hs) > 0 {
			info, lat := cn.b.info(), time.Since(p.written)
			for _, h := range hs {
				h.OnBrokerRead(info, p.req.Key(), len(body)+8, lat, err)
			}
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				err = fmt.Errorf("%w: no response from %s within the request timeout: %w", ErrConnection, cn.b.addr, tributary.ErrRequestTimedOut)
			}
			cn.die(err)
			return
		}
		cn.mu.Lock()
		if cn.dead { // Close raced us; die already failed p
			cn.mu.Unlock()
			return
		}
		cn.inflight.pop()
		cn.writeCond.Signal()
		cn.mu.Unlock()

		resp, err := cn.decode(p.req, body)
		if err != nil {
			p.cb(nil, err)
			cn.die(err)
			return
		}
		p.cb(resp, nil)
	}
}

// die closes the connection once and fails everything queued or in flight
// with err.
func (cn *conn) die(err error) {
	cn.mu.Lock()
	if cn.dead {
		cn.mu.Unlock()
		return
	}
	cn.dead = true
	cn.err = err
	failed := append(cn.inflight.drain(), cn.queue.drain()...)
	cn.writeCond.Broadcast()
	cn.readCond.Broadcast()
	cn.roomCond.Broadcast()
	cn.mu.Unlock()
	cn.nc.Close()
	close(cn.done)
	for _, h := range cn.hooks.disconnect {
		h.OnBrokerDisconnect(cn.b.info(), err)
	}
	// Forget the connection before failing its requests, so a retry from a
	// callback dials afresh instead of finding this dead one.
	cn.b.connDied(cn, err)
	for _, p := range failed {
		p.cb(nil, err)
	}
}

// brokerWait is how long a broker may legitimately hold req before it
// answers (Produce's acks timeout, a Fetch long poll, a JoinGroup waiting
// for the rebalance), added to RequestTimeout for the read deadline so a
// healthy long wait is not mistaken for a dead connection. kmsg reports
// only some of these through kmsg.TimeoutRequest.
func brokerWait(req kmsg.Request) time.Duration {
	ms := func(v int32) time.Duration { return time.Duration(max(v, 0)) * time.Millisecond }
	switch r := req.(type) {
	case kmsg.TimeoutRequest:
		return ms(r.Timeout())
	case *kmsg.FetchRequest:
		return ms(r.MaxWaitMillis)
	case *kmsg.JoinGroupRequest:
		if r.Version == 0 { // v0 has no rebalance timeout: the session timeout bounds the join
			return ms(r.SessionTimeoutMillis)
		}
		return ms(r.RebalanceTimeoutMillis)
	}
	return 0
}
