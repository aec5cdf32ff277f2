package broker_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker"
	"github.com/tributary/tributary/broker/brokertest"
)

// rawConn is a bare TCP connection speaking the Kafka framing, for
// requests kgo would never send.
type rawConn struct {
	t  *testing.T
	nc net.Conn
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc}
}

// frame encodes a request frame with a request header v1/v2.
func frame(req kmsg.Request, corrID int32, clientID string) []byte {
	var b []byte
	b = append(b, 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corrID))
	b = binary.BigEndian.AppendUint16(b, uint16(len(clientID)))
	b = append(b, clientID...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func (c *rawConn) write(b []byte) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := c.nc.Write(b)
	require.NoError(c.t, err)
}

// read reads one response frame: correlation id and the rest.
func (c *rawConn) read() (int32, []byte, error) {
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(c.nc, size[:]); err != nil {
		return 0, nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.nc, body); err != nil {
		return 0, nil, err
	}
	return int32(binary.BigEndian.Uint32(body)), body[4:], nil
}

// expectClosed asserts the broker closes the connection promptly (EOF or
// reset, not a timeout).
func (c *rawConn) expectClosed() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 1024)
	for {
		_, err := c.nc.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.t.Fatalf("connection still open after 3s")
		}
		return
	}
}

func newAdmin(t testing.TB, addr string, opts ...kgo.Opt) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func ctx5(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestApiVersionsAdvertisesTable(t *testing.T) {
	b := brokertest.Start(t)
	adm := newAdmin(t, b.Addr())
	vs, err := adm.ApiVersions(ctx5(t))
	require.NoError(t, err)
	require.Len(t, vs, 1)
	bv, ok := vs[1]
	require.True(t, ok)
	require.NoError(t, bv.Err)
	for key, want := range map[int16][2]int16{18: {0, 4}, 3: {0, 13}, 19: {2, 7}, 20: {1, 6}, 32: {1, 4}, 33: {0, 2}, 37: {0, 3}, 44: {0, 1}, 60: {0, 2}} {
		min, max, ok := bv.KeyVersions(key)
		require.True(t, ok, "key %d not advertised", key)
		assert.Equal(t, want, [2]int16{min, max}, "key %d", key)
	}
}

func TestApiVersionsUnknownVersionAnsweredInV0(t *testing.T) {
	b := brokertest.Start(t)
	c := dialRaw(t, b.Addr())
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3 // encode a flexible v3 body, then claim v127
	fr := frame(req, 7, "raw")
	binary.BigEndian.PutUint16(fr[6:], 127)
	c.write(fr)
	corr, body, err := c.read()
	require.NoError(t, err)
	require.EqualValues(t, 7, corr)
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	require.NoError(t, resp.ReadFrom(body))
	assert.Equal(t, tributary.ErrUnsupportedVersion.Code, resp.ErrorCode)
	var found bool
	for _, k := range resp.ApiKeys {
		if k.ApiKey == 18 {
			found = true
			assert.EqualValues(t, 4, k.MaxVersion)
		}
	}
	assert.True(t, found, "ApiVersions key missing from the v0 answer")

	// The socket stays open: a v0 request on it is answered.
	v0 := kmsg.NewPtrApiVersionsRequest()
	v0.Version = 0
	c.write(frame(v0, 8, "raw"))
	corr, body, err = c.read()
	require.NoError(t, err)
	require.EqualValues(t, 8, corr)
	resp = kmsg.NewPtrApiVersionsResponse()
	require.NoError(t, resp.ReadFrom(body))
	assert.Zero(t, resp.ErrorCode)
	assert.Greater(t, len(resp.ApiKeys), 5)
}

func TestApiVersionsV3HeaderIsV0AndSoftwareNameChecked(t *testing.T) {
	b := brokertest.Start(t)
	c := dialRaw(t, b.Addr())
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = "tributary-test", "1.0"
	c.write(frame(req, 1, "raw"))
	_, body, err := c.read()
	require.NoError(t, err)
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 3
	// No header tag byte: the body parses from the first byte.
	require.NoError(t, resp.ReadFrom(body))
	assert.Zero(t, resp.ErrorCode)

	req.ClientSoftwareName = "-bad name"
	c.write(frame(req, 2, "raw"))
	_, body, err = c.read()
	require.NoError(t, err)
	resp = kmsg.NewPtrApiVersionsResponse()
	resp.Version = 3
	require.NoError(t, resp.ReadFrom(body))
	assert.Equal(t, tributary.ErrInvalidRequest.Code, resp.ErrorCode)
}

func TestUnsupportedRequestsCloseConnection(t *testing.T) {
	b := brokertest.Start(t)
	t.Run("unknown key", func(t *testing.T) {
		c := dialRaw(t, b.Addr())
		req := kmsg.NewPtrMetadataRequest()
		fr := frame(req, 1, "raw")
		binary.BigEndian.PutUint16(fr[4:], 999)
		c.write(fr)
		c.expectClosed()
	})
	t.Run("version above max", func(t *testing.T) {
		c := dialRaw(t, b.Addr())
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 12
		fr := frame(req, 1, "raw")
		binary.BigEndian.PutUint16(fr[6:], 99)
		c.write(fr)
		c.expectClosed()
	})
	t.Run("version below min", func(t *testing.T) {
		c := dialRaw(t, b.Addr())
		req := kmsg.NewPtrCreateTopicsRequest()
		req.Version = 0
		c.write(frame(req, 1, "raw"))
		c.expectClosed()
	})
}

func TestOversizedFrameClosedBeforeAllocation(t *testing.T) {
	b := brokertest.Start(t)
	c := dialRaw(t, b.Addr())
	start := time.Now()
	c.write([]byte{0x40, 0, 0, 0}) // 2^30 bytes announced, none sent
	c.expectClosed()
	assert.Less(t, time.Since(start), 2*time.Second)

	neg := dialRaw(t, b.Addr())
	neg.write([]byte{0xff, 0xff, 0xff, 0xfe})
	neg.expectClosed()
}

func TestGarbageBodyClosesOnlyThatConnection(t *testing.T) {
	b := brokertest.Start(t)
	adm := newAdmin(t, b.Addr())
	_, err := adm.ListBrokers(ctx5(t))
	require.NoError(t, err)

	c := dialRaw(t, b.Addr())
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 4
	fr := frame(req, 1, "raw")
	// Replace the body with an array length far beyond the frame.
	fr = append(fr[:len(fr)-9], 0x7f, 0xff, 0xff, 0xff, 1, 2, 3)
	binary.BigEndian.PutUint32(fr, uint32(len(fr)-4))
	c.write(fr)
	c.expectClosed()

	// The other client is still served.
	_, err = adm.ListBrokers(ctx5(t))
	require.NoError(t, err)
}

func TestPipelinedRequestsAnsweredInOrder(t *testing.T) {
	b := brokertest.Start(t)
	c := dialRaw(t, b.Addr())
	var all []byte
	const n = 300 // more than the in-flight bound
	for i := range n {
		var req kmsg.Request
		switch i % 3 {
		case 0:
			r := kmsg.NewPtrApiVersionsRequest()
			r.Version = 2
			req = r
		case 1:
			r := kmsg.NewPtrMetadataRequest()
			r.Version = 9
			req = r
		default:
			r := kmsg.NewPtrDescribeClusterRequest()
			r.Version = 0
			req = r
		}
		all = append(all, frame(req, int32(i), "pipe")...)
	}
	done := make(chan struct{})
	go func() { // write while reading: the broker applies backpressure
		defer close(done)
		c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		c.nc.Write(all)
	}()
	for i := range n {
		corr, _, err := c.read()
		require.NoError(t, err)
		require.EqualValues(t, i, corr)
	}
	<-done
}

func TestDescribeCluster(t *testing.T) {
	b := brokertest.Start(t)
	adm := newAdmin(t, b.Addr())
	md, err := adm.BrokerMetadata(ctx5(t))
	require.NoError(t, err)
	require.Len(t, md.Brokers, 1)
	assert.EqualValues(t, 1, md.Controller)
	assert.Equal(t, b.Addr(), net.JoinHostPort(md.Brokers[0].Host, itoa(md.Brokers[0].Port)))
	assert.NotEmpty(t, md.Cluster)

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	require.NoError(t, err)
	defer cl.Close()
	req := kmsg.NewPtrDescribeClusterRequest()
	req.Version = 1
	req.EndpointType = 1
	resp, err := req.RequestWith(ctx5(t), cl)
	require.NoError(t, err)
	require.Zero(t, resp.ErrorCode)
	assert.Equal(t, md.Cluster, resp.ClusterID)
	assert.EqualValues(t, 1, resp.ControllerID)
	require.Len(t, resp.Brokers, 1)
	assert.EqualValues(t, -2147483648, resp.ClusterAuthorizedOperations)

	req.EndpointType = 2
	resp, err = req.RequestWith(ctx5(t), cl)
	require.NoError(t, err)
	assert.Equal(t, tributary.ErrUnsupportedEndpointType.Code, resp.ErrorCode)
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

func TestIdleConnectionClosed(t *testing.T) {
	b := brokertest.Start(t, func(c *broker.Config) { c.ConnectionsMaxIdleMs = 200 })
	c := dialRaw(t, b.Addr())
	start := time.Now()
	c.expectClosed()
	assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond)
}
