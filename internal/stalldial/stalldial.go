// Package stalldial is a dialer for tests whose connections can be
// stalled: while Hold is in force, requests are written but reads wait,
// so answers do not arrive, as with a broker that stopped answering (on
// kfake and on our broker alike). A connection closed while held returns
// net.ErrClosed from its read.
package stalldial

import (
	"context"
	"net"
	"sync"
)

// Dialer dials TCP connections whose reads Hold can stall. The zero
// value is ready to use; pass Dial as a client's dialer.
type Dialer struct {
	mu   sync.Mutex
	held chan struct{} // closed when reads may go on; nil when not held
}

// Dial opens a connection whose reads honour Hold.
func (d *Dialer) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	nc, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &conn{Conn: nc, d: d, closed: make(chan struct{})}, nil
}

// Hold stalls every read of every connection, open or later, until
// Release.
func (d *Dialer) Hold() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.held == nil {
		d.held = make(chan struct{})
	}
}

// Release lets held reads go on.
func (d *Dialer) Release() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.held != nil {
		close(d.held)
		d.held = nil
	}
}

type conn struct {
	net.Conn
	d      *Dialer
	once   sync.Once
	closed chan struct{}
}

func (c *conn) Read(b []byte) (int, error) {
	c.d.mu.Lock()
	held := c.d.held
	c.d.mu.Unlock()
	if held != nil {
		select {
		case <-held:
		case <-c.closed:
			return 0, net.ErrClosed
		}
	}
	return c.Conn.Read(b)
}

func (c *conn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
