package broker

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A connection is three goroutines joined by bounded channels:
//
//	readLoop   reads a frame (size and API key checked before any
//	           allocation), decodes it, and queues it; it blocks when
//	           maxInflight requests or maxInflightBytes of frames are
//	           queued, so a client cannot make the broker buffer without
//	           bound, and before allocating a frame that does not fit the
//	           broker-wide queued.max.request.bytes (membudget.go), so
//	           many clients cannot either.
//	handleLoop runs handlers in request order, one at a time, as Kafka
//	           does: a pipelining idempotent producer needs its batches
//	           appended in the order sent. Keys in concurrentKeys (Fetch)
//	           run in their own goroutine so a long poll does not hold up
//	           later requests; they only read.
//	writeLoop  writes responses strictly in request order, flushing when it
//	           has to wait, and recycles the frame buffer.
//
// A frame that cannot be decoded, an unknown key, an unsupported version
// (except ApiVersions) or a handler panic closes the connection, as Kafka
// does; other connections are unaffected.
const (
	maxInflight      = 100
	maxInflightBytes = 16 << 20
	connBufSize      = 32 << 10
)

// concurrentKeys are served off the in-order handler goroutine.
var concurrentKeys = map[int16]bool{1: true}

// clientConn is one client connection.
type clientConn struct {
	b      *Broker
	conn   net.Conn
	remote string // remote address, for logs
	ip     string // counted against max.connections.per.ip until kill

	dead     chan struct{} // closed by kill
	killOnce sync.Once

	handleCh chan *inflight
	writeCh  chan *inflight

	budget struct {
		sync.Mutex
		cond  *sync.Cond
		n     int
		bytes int
		dead  bool
	}
}

// inflight is one request between reading and the written response.
type inflight struct {
	req  *request
	buf  *[]byte // the frame; request []byte fields point into it
	size int
	done chan struct{}
	resp any
	err  error
	t    reqTimes // for RequestMetrics, see observe.go
}

// RemoteAddr is the client's address.
func (c *clientConn) RemoteAddr() string { return c.remote }

// Done is closed when the connection is closed; a handler waiting for
// something may give up then.
func (c *clientConn) Done() <-chan struct{} { return c.dead }

func (b *Broker) tryGo(f func()) bool {
	b.trackMu.Lock()
	if !b.tracking {
		b.trackMu.Unlock()
		return false
	}
	b.track.Add(1)
	b.trackMu.Unlock()
	go func() {
		defer b.track.Done()
		f()
	}()
	return true
}

func (b *Broker) serveConn(nc net.Conn) {
	ip, ok := b.admit(nc)
	if !ok {
		return
	}
	c := &clientConn{
		ip:       ip,
		b:        b,
		conn:     nc,
		remote:   nc.RemoteAddr().String(),
		dead:     make(chan struct{}),
		handleCh: make(chan *inflight, maxInflight),
		writeCh:  make(chan *inflight, maxInflight),
	}
	c.budget.cond = sync.NewCond(&c.budget.Mutex)
	b.connMu.Lock()
	select {
	case <-b.closing:
		b.connMu.Unlock()
		nc.Close()
		b.releaseConn(ip)
		return
	default:
	}
	b.connMu.conns[c] = struct{}{}
	b.connMu.Unlock()
	b.observeConn(true)
	if !b.tryGo(c.readLoop) {
		c.kill()
		return
	}
	if !b.tryGo(c.handleLoop) {
		c.kill()
		close(c.handleCh)
		return
	}
	b.tryGo(c.writeLoop)
}

// kill closes the connection at once.
func (c *clientConn) kill() {
	c.killOnce.Do(func() {
		close(c.dead)
		c.conn.Close()
		c.budget.Lock()
		c.budget.dead = true
		c.budget.cond.Broadcast()
		c.budget.Unlock()
		c.b.connMu.Lock()
		delete(c.b.connMu.conns, c)
		c.b.connMu.Unlock()
		c.b.releaseConn(c.ip)
		c.b.observeConn(false)
	})
}

// acquire reserves room for one more request of size bytes; false when
// the connection died while waiting.
func (c *clientConn) acquire(size int) bool {
	c.budget.Lock()
	defer c.budget.Unlock()
	for !c.budget.dead && (c.budget.n >= maxInflight || (c.budget.n > 0 && c.budget.bytes+size > maxInflightBytes)) {
		c.budget.cond.Wait()
	}
	if c.budget.dead {
		return false
	}
	c.budget.n++
	c.budget.bytes += size
	return true
}

// releaseAll gives back both reservations of a frame: this connection's
// and queued.max.request.bytes.
func (c *clientConn) releaseAll(size int) {
	c.release(size)
	c.b.mem.release(int64(size))
}

func (c *clientConn) release(size int) {
	c.budget.Lock()
	c.budget.n--
	c.budget.bytes -= size
	c.budget.cond.Signal()
	c.budget.Unlock()
}

func (c *clientConn) readLoop() {
	defer close(c.handleCh)
	br := bufio.NewReaderSize(c.conn, connBufSize)
	maxSize := int(c.b.cfg.SocketRequestMaxBytes)
	idle := time.Duration(c.b.cfg.ConnectionsMaxIdleMs) * time.Millisecond
	var sizeBuf [4]byte
	for {
		c.conn.SetReadDeadline(time.Now().Add(idle))
		if _, err := io.ReadFull(br, sizeBuf[:]); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.b.logger.Debug("connection read failed", "remote", c.remote, "err", err)
			}
			return
		}
		size := int(int32(binary.BigEndian.Uint32(sizeBuf[:])))
		if size < 0 || size > maxSize {
			c.b.logger.Warn("closing connection: invalid request size", "remote", c.remote, "size", size, "socket.request.max.bytes", maxSize)
			c.kill()
			return
		}
		// The request header must be in before any budget is reserved or
		// memory allocated: an unknown API key closes the connection
		// without making it wait for, or take, 100 MB.
		if hdr, err := br.Peek(min(size, 2)); err != nil {
			return
		} else if len(hdr) == 2 {
			if _, ok := apis[int16(binary.BigEndian.Uint16(hdr))]; !ok {
				c.b.logger.Warn("closing connection: unknown api key", "remote", c.remote, "key", int16(binary.BigEndian.Uint16(hdr)))
				c.kill()
				return
			}
		}
		if !c.acquire(size) {
			return
		}
		if !c.b.mem.acquire(int64(size), c.dead) {
			c.release(size)
			return
		}
		bp, err := readRequestFrame(br, size)
		if err != nil {
			c.releaseAll(size)
			c.kill()
			return
		}
		req, err := decodeFrame(*bp)
		if err != nil {
			c.b.logger.Warn("closing connection: bad request", "remote", c.remote, "err", err)
			putBuf(bp)
			c.releaseAll(size)
			c.kill()
			return
		}
		req.conn = c
		c.handleCh <- &inflight{req: req, buf: bp, size: size, done: make(chan struct{}), t: reqTimes{recv: time.Now()}}
	}
}

func (c *clientConn) handleLoop() {
	defer close(c.writeCh)
	for inf := range c.handleCh {
		c.writeCh <- inf // never blocks: writeCh holds maxInflight
		if concurrentKeys[inf.req.key] {
			if !c.b.tryGo(func() { c.run(inf) }) {
				inf.err = errors.New("broker closing")
				close(inf.done)
			}
			continue
		}
		c.run(inf)
	}
}

// run calls the request's handler; a panic is logged and closes only this
// connection.
func (c *clientConn) run(inf *inflight) {
	async := false
	inf.t.start = time.Now()
	defer func() {
		if !async {
			inf.t.end = time.Now()
			close(inf.done)
		}
	}()
	defer func() {
		if r := recover(); r != nil {
			inf.err = fmt.Errorf("handler panic: %v\n%s", r, debug.Stack())
		}
	}()
	select {
	case <-c.dead:
		inf.err = net.ErrClosed
		return
	default:
	}
	inf.resp, inf.err = apis[inf.req.key].fn(c.b, inf.req)
	if d, ok := inf.resp.(deferred); ok && inf.err == nil {
		// The handler did its ordered part (an append) and now waits
		// (acks=all): finish off this goroutine so later requests on
		// the connection are handled meanwhile. The writer still waits
		// for inf.done, so responses stay in request order.
		inf.resp = nil
		async = c.b.tryGo(func() {
			defer close(inf.done)
			defer func() { inf.t.end = time.Now() }()
			defer func() {
				if r := recover(); r != nil {
					inf.resp, inf.err = nil, fmt.Errorf("handler panic: %v\n%s", r, debug.Stack())
				}
			}()
			inf.resp, inf.err = d()
		})
		if !async {
			inf.err = errors.New("broker closing")
		}
	}
}

func (c *clientConn) writeLoop() {
	var cur *inflight // taken from writeCh, not yet released
	defer func() {
		c.kill()
		// Requests still queued hold budget and their frames may be in
		// use by a handler: wait for each, then give both back.
		if cur != nil {
			<-cur.done
			putBuf(cur.buf)
			c.releaseAll(cur.size)
		}
		for inf := range c.writeCh {
			<-inf.done
			putBuf(inf.buf)
			c.releaseAll(inf.size)
		}
	}()
	bw := bufio.NewWriterSize(c.conn, connBufSize)
	for {
		// Flush only when about to wait: back-to-back responses share
		// one write.
		var inf *inflight
		select {
		case inf = <-c.writeCh:
		default:
			if bw.Buffered() > 0 && bw.Flush() != nil {
				return
			}
			inf = <-c.writeCh
		}
		if inf == nil {
			bw.Flush()
			return
		}
		cur = inf
		select {
		case <-inf.done:
		default:
			if bw.Buffered() > 0 && bw.Flush() != nil {
				return
			}
			select {
			case <-inf.done:
			case <-c.dead:
				return
			}
		}
		dequeued := time.Now()
		err := c.writeResponse(bw, inf)
		c.b.observeRequest(inf, dequeued)
		putBuf(inf.buf)
		c.releaseAll(inf.size)
		cur = nil
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				c.b.logger.Warn("closing connection", "remote", c.remote, "key", inf.req.key, "version", inf.req.version, "err", err)
			}
			return
		}
	}
}

func (c *clientConn) writeResponse(bw *bufio.Writer, inf *inflight) error {
	if inf.err != nil {
		return inf.err
	}
	req := inf.req
	switch resp := inf.resp.(type) {
	case nil:
		return nil
	case kmsg.Response:
		bp := getBuf(0)
		*bp = appendResponse((*bp)[:0], req.corrID, resp)
		_, err := bw.Write(*bp)
		putBuf(bp)
		return err
	case rawResponse:
		return resp.writeFrame(bw, c.conn, req.corrID, req.key != 18 && req.msg.IsFlexible())
	default:
		return fmt.Errorf("handler for key %d returned %T", req.key, inf.resp)
	}
}

// appendResponse appends a whole response frame: size, correlation id,
// header tags when flexible (never for ApiVersions, whose response header
// is always v0), body at resp's version.
func appendResponse(dst []byte, corrID int32, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(corrID))
	if resp.IsFlexible() && resp.Key() != 18 {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// errUnsupportedRequest marks frames Kafka answers by closing.
var errUnsupportedRequest = errors.New("unsupported request")

// decodeFrame parses one request frame (the bytes after the size prefix):
// the request header (v1, or v2 with tagged fields for flexible
// versions), then the body with kmsg. Strings are copied; []byte fields
// (record batches) point into frame, which stays valid until the
// response is written.
//
// An ApiVersions request above our version is not decoded: it is answered
// in v0 with UNSUPPORTED_VERSION (KIP-511), so its body may be anything.
func decodeFrame(frame []byte) (req *request, err error) {
	defer func() {
		if r := recover(); r != nil {
			req, err = nil, fmt.Errorf("decode panic: %v", r)
		}
	}()
	if len(frame) < 10 {
		return nil, fmt.Errorf("frame of %d bytes is too short for a request header", len(frame))
	}
	key := int16(binary.BigEndian.Uint16(frame[0:]))
	version := int16(binary.BigEndian.Uint16(frame[2:]))
	corrID := int32(binary.BigEndian.Uint32(frame[4:]))
	idLen := int(int16(binary.BigEndian.Uint16(frame[8:])))
	rest := frame[10:]
	var clientID string
	if idLen > 0 {
		if idLen > len(rest) {
			return nil, errors.New("client id longer than the frame")
		}
		clientID = string(rest[:idLen])
		rest = rest[idLen:]
	} else if idLen < -1 {
		return nil, fmt.Errorf("bad client id length %d", idLen)
	}

	api, ok := apis[key]
	msg := kmsg.RequestForKey(key)
	if !ok || msg == nil {
		return nil, fmt.Errorf("%w: key %d", errUnsupportedRequest, key)
	}
	req = &request{key: key, version: version, corrID: corrID, clientID: clientID, msg: msg}
	if version < 0 || version < api.min || version > api.max {
		if key == 18 && version > api.max {
			msg.SetVersion(0) // answered in v0; the body is not parsed
			return req, nil
		}
		return nil, fmt.Errorf("%w: %s v%d (supported %d-%d)", errUnsupportedRequest, kmsg.NameForKey(key), version, api.min, api.max)
	}
	msg.SetVersion(version)
	if msg.IsFlexible() {
		if rest, err = skipTags(rest); err != nil {
			return nil, err
		}
	}
	if err := msg.ReadFrom(rest); err != nil {
		return nil, fmt.Errorf("%s v%d: %w", kmsg.NameForKey(key), version, err)
	}
	return req, nil
}

// skipTags skips a tagged-field section without allocating: each field
// consumes at least two bytes, so the loop is bounded by the input.
func skipTags(b []byte) ([]byte, error) {
	n, b, err := uvarint(b)
	if err != nil {
		return nil, err
	}
	for ; n > 0; n-- {
		if _, b, err = uvarint(b); err != nil {
			return nil, err
		}
		var size uint64
		if size, b, err = uvarint(b); err != nil {
			return nil, err
		}
		if size > uint64(len(b)) {
			return nil, errors.New("tagged field longer than the frame")
		}
		b = b[size:]
	}
	return b, nil
}

func uvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 || v > 1<<31 {
		return 0, nil, errors.New("bad uvarint in request header")
	}
	return v, b[n:], nil
}
