package broker

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// peers is the broker's client side towards other brokers: follower
// fetches and OffsetForLeaderEpoch go to partition leaders over their
// client listener, as in Kafka (the controller quorum has its own
// connections in broker/controller).
//
// One connection per (broker, lane); a lane carries one request at a
// time, so a follower's long-polling Fetch (its own lane) never delays an
// OffsetForLeaderEpoch. Connections are dialled lazily through
// Config.Dial, which tests use to cut a node off the network, and closed
// on any error (the next request dials again).
type peers struct {
	b  *Broker
	mu sync.Mutex
	// conns by (node id, lane); guarded by mu, each conn by its own mutex.
	conns  map[peerKey]*peerConn
	closed bool
}

type peerKey struct {
	node int32
	lane int
}

const (
	laneFetch = iota
	laneOther
	laneMarkers // WriteTxnMarkers: waits for acks=all, must not hold up the others
)

type peerConn struct {
	mu     sync.Mutex
	nc     net.Conn
	br     *bufio.Reader
	corrID int32
	addr   string
}

// peerClientID is the client id of inter-broker requests, as Kafka's
// replica fetchers name themselves.
const peerClientID = "tributary-replica-fetcher"

var errPeersClosed = errors.New("broker: closing")

// addrOf returns the client address of a registered broker.
func (b *Broker) peerAddr(node int32) (string, error) {
	img := b.image()
	if img == nil {
		return "", fmt.Errorf("%w: no metadata yet", tributary.ErrLeaderNotAvailable)
	}
	info := img.Broker(node)
	if info == nil {
		return "", fmt.Errorf("%w: broker %d is not registered", tributary.ErrBrokerNotAvailable, node)
	}
	return net.JoinHostPort(info.Host, strconv.Itoa(int(info.Port))), nil
}

// request sends req to broker node on lane and returns its response.
// ctx bounds the whole exchange.
func (ps *peers) request(ctx context.Context, node int32, lane int, req kmsg.Request) (kmsg.Response, error) {
	addr, err := ps.b.peerAddr(node)
	if err != nil {
		return nil, err
	}
	ps.mu.Lock()
	if ps.closed {
		ps.mu.Unlock()
		return nil, errPeersClosed
	}
	if ps.conns == nil {
		ps.conns = map[peerKey]*peerConn{}
	}
	k := peerKey{node, lane}
	pc := ps.conns[k]
	if pc == nil {
		pc = &peerConn{}
		ps.conns[k] = pc
	}
	ps.mu.Unlock()

	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.nc != nil && pc.addr != addr {
		pc.nc.Close() // the broker moved
		pc.nc = nil
	}
	if pc.nc == nil {
		nc, err := ps.b.dial(ctx, addr)
		if err != nil {
			return nil, fmt.Errorf("%w: dial broker %d at %s: %v", tributary.ErrNetworkException, node, addr, err)
		}
		ps.mu.Lock()
		closed := ps.closed
		ps.mu.Unlock()
		if closed {
			nc.Close()
			return nil, errPeersClosed
		}
		pc.nc, pc.br, pc.addr = nc, bufio.NewReaderSize(nc, 64<<10), addr
	}
	resp, err := pc.roundTrip(ctx, req)
	if err != nil {
		pc.nc.Close()
		pc.nc = nil
		return nil, fmt.Errorf("%w: broker %d: %v", tributary.ErrNetworkException, node, err)
	}
	return resp, nil
}

func (pc *peerConn) roundTrip(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	// The connection is exclusive to this call: a ctx that ends closes
	// it to unblock the read. stop does not wait for a callback already
	// running, so the call waits for it itself: otherwise it could touch
	// pc.nc after the caller dropped it, or expire the deadline of the
	// next call on the same connection.
	nc := pc.nc
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		nc.SetDeadline(time.Unix(1, 0))
	})
	defer func() {
		if !stop() {
			<-fired
		}
	}()
	if dl, ok := ctx.Deadline(); ok {
		pc.nc.SetDeadline(dl)
	} else {
		pc.nc.SetDeadline(time.Time{})
	}
	pc.corrID++
	corr := pc.corrID
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID(peerClientID))
	buf := f.AppendRequest(nil, req, corr)
	if _, err := pc.nc.Write(buf); err != nil {
		return nil, ctxErr(ctx, err)
	}
	var hdr [8]byte
	if _, err := io.ReadFull(pc.br, hdr[:]); err != nil {
		return nil, ctxErr(ctx, err)
	}
	size := int32(binary.BigEndian.Uint32(hdr[:4]))
	if size < 4 || size > 256<<20 {
		return nil, fmt.Errorf("response size %d out of range", size)
	}
	if got := int32(binary.BigEndian.Uint32(hdr[4:])); got != corr {
		return nil, fmt.Errorf("correlation id %d, want %d", got, corr)
	}
	body := make([]byte, size-4)
	if _, err := io.ReadFull(pc.br, body); err != nil {
		return nil, ctxErr(ctx, err)
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() && req.Key() != 18 {
		var err error
		if body, err = skipTags(body); err != nil {
			return nil, err
		}
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, err
	}
	return resp, nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// close closes every connection; later requests fail.
func (ps *peers) close() {
	ps.mu.Lock()
	ps.closed = true
	conns := ps.conns
	ps.conns = nil
	ps.mu.Unlock()
	for _, pc := range conns {
		// Unblock a read in progress without waiting for its lock.
		pc.mu.Lock()
		if pc.nc != nil {
			pc.nc.Close()
			pc.nc = nil
		}
		pc.mu.Unlock()
	}
}

// dial opens a connection to another broker through Config.Dial.
func (b *Broker) dial(ctx context.Context, addr string) (net.Conn, error) {
	if b.cfg.Dial != nil {
		return b.cfg.Dial(ctx, "tcp", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}
