package controller

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/tributary/tributary"
)

// The controller listener carries two protocols, told apart by the first
// byte a dialer writes:
//
//	'R'  Raft (hashicorp/raft's NetworkTransport framing)
//	'C'  controller RPC: a forwarded operation. Frames are a big-endian
//	     uint32 length and a JSON body: rpcRequest in, rpcResponse out,
//	     one request per connection at a time.
//
// JSON rather than Kafka's own BrokerRegistration/AlterPartition schemas
// because only Tributary nodes of one version speak it, it carries the
// Node API's Go shapes one to one (Kafka's forwarding envelope would need
// a kmsg request and response per operation plus the mapping both ways),
// and it is readable in a packet capture.
const (
	protoRaft = 'R'
	protoRPC  = 'C'

	maxFrame         = 64 << 20
	handshakeTimeout = 5 * time.Second
)

// maxConns bounds the node's open connections (Raft's pools and
// forwarded operations need a handful per voter; the rest is a misbehaving
// or hostile peer). A variable so a test can hit it.
var maxConns = 1024

// track adds c to the connections Close closes; false (and c closed) when
// the node is closing already or has maxConns open.
func (n *Node) track(c net.Conn) bool {
	n.mu.Lock()
	full := len(n.mu.conns) >= maxConns
	select {
	case <-n.closing:
		full = true
	default:
	}
	if full {
		n.mu.Unlock()
		c.Close() // outside mu: a trackedConn's Close takes it
		return false
	}
	n.mu.conns[c] = struct{}{}
	n.mu.Unlock()
	return true
}

func (n *Node) untrack(c net.Conn) {
	n.mu.Lock()
	delete(n.mu.conns, c)
	n.mu.Unlock()
}

// trackedConn removes itself from the node's set when closed, so Close
// can close whatever is still open (Raft does not close inbound
// connections on shutdown).
type trackedConn struct {
	net.Conn
	n    *Node
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.n.untrack(c) })
	return c.Conn.Close()
}

func (n *Node) acceptLoop() {
	defer n.wg.Done()
	for {
		c, err := n.ln.Accept()
		if err != nil {
			select {
			case <-n.closing:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			n.log.Warn("controller: accept", "err", err)
			select {
			case <-n.closing:
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		tc := &trackedConn{Conn: c, n: n}
		if !n.track(tc) {
			select {
			case <-n.closing:
				return
			default:
				continue // over maxConns: this one is refused
			}
		}
		n.wg.Add(1)
		go n.handshake(tc)
	}
}

func (n *Node) handshake(c *trackedConn) {
	defer n.wg.Done()
	c.SetReadDeadline(time.Now().Add(handshakeTimeout))
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	switch b[0] {
	case protoRaft:
		select {
		case n.layer.conns <- c:
		case <-n.layer.closed:
			c.Close()
		}
	case protoRPC:
		n.serveRPC(c)
	default:
		c.Close()
	}
}

// streamLayer hands Raft the connections that said 'R' and dials others
// with the 'R' prefix.
type streamLayer struct {
	n         *Node
	conns     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
}

func (s *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.closed:
		return nil, errors.New("controller: raft layer closed")
	}
}

func (s *streamLayer) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}

// Addr is the address the other voters know this one by
// (controller.quorum.voters), which need not be the bound one (0.0.0.0,
// a name): Raft compares it with its configuration.
func (s *streamLayer) Addr() net.Addr { return voterAddr(s.n.cfg.Voters[s.n.cfg.NodeID]) }

type voterAddr string

func (voterAddr) Network() string  { return "tcp" }
func (a voterAddr) String() string { return string(a) }

func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := s.n.cfg.Dial(ctx, "tcp", string(addr))
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, n: s.n}
	if !s.n.track(tc) {
		return nil, errClosed
	}
	if _, err := tc.Write([]byte{protoRaft}); err != nil {
		tc.Close()
		return nil, err
	}
	return tc, nil
}

// ---- RPC ----

type rpcRequest struct {
	Op   string          `json:"op"`
	Args json.RawMessage `json:"args"`
	// ID is the operation's token, the same on every retry.
	ID string `json:"id,omitempty"`
}

type rpcResponse struct {
	// Index is the log offset the caller must have applied before it
	// answers, so its own Image shows the change.
	Index  uint64          `json:"index"`
	Err    *wireErr        `json:"err,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

// wireErr carries a Kafka error code and message across the RPC.
type wireErr struct {
	Code int16  `json:"code"`
	Msg  string `json:"msg,omitempty"`
}

func toWire(err error) *wireErr {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return &wireErr{Code: e.Err.Code, Msg: e.Message}
	}
	return &wireErr{Code: tributary.CodeOf(err), Msg: err.Error()}
}

func (w *wireErr) err() error {
	if w == nil {
		return nil
	}
	return kafkaErr(w.Code, w.Msg)
}

func writeFrame(w *bufio.Writer, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(data)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	return w.Flush()
}

func readFrame(r *bufio.Reader, v any) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	size := binary.BigEndian.Uint32(hdr[:])
	if size > maxFrame {
		return fmt.Errorf("controller: rpc frame of %d bytes is above the %d limit", size, maxFrame)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(r, data); err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

func (n *Node) serveRPC(c *trackedConn) {
	defer c.Close()
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	for {
		var req rpcRequest
		if err := readFrame(r, &req); err != nil {
			return
		}
		var resp *rpcResponse
		if req.Op == opStatus {
			resp = n.status()
		} else {
			resp = n.exec(context.Background(), &req)
		}
		if err := writeFrame(w, resp); err != nil {
			return
		}
	}
}

// send dials addr and runs one request. A transport error (dial, write,
// read) is returned as is; the caller decides whether to retry.
func (n *Node) send(ctx context.Context, addr string, req *rpcRequest) (*rpcResponse, error) {
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	c, err := n.cfg.Dial(dctx, "tcp", addr)
	cancel()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, n: n}
	if !n.track(tc) {
		return nil, errClosed
	}
	defer tc.Close()
	// The leader bounds its own work (a proposal fails when it loses
	// leadership); this deadline only keeps a dead peer from holding us.
	deadline := time.Now().Add(30 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	tc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { tc.SetDeadline(time.Now()) })
	defer stop()
	w := bufio.NewWriter(tc)
	if err := w.WriteByte(protoRPC); err != nil {
		return nil, err
	}
	if err := writeFrame(w, req); err != nil {
		return nil, err
	}
	var resp rpcResponse
	if err := readFrame(bufio.NewReader(tc), &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}
