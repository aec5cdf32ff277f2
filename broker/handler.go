package broker

import (
	"bufio"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// request is one decoded request as the connection hands it to a handler.
//
// Strings in msg are copies, but []byte fields (record batches) point into
// the connection's pooled frame buffer, which is reused once the response
// is written: a handler must not keep them after it returns.
type request struct {
	conn     *clientConn // the connection it arrived on (client id, remote address)
	key      int16
	version  int16
	corrID   int32
	clientID string
	msg      kmsg.Request  // decoded body; msg.GetVersion() == version
	remote   time.Duration // time parked waiting (RemoteTimeMs), see observe.go
}

// A handler serves one API key. It returns one of:
//   - a kmsg.Response, which the connection encodes at the request's
//     version and writes in request order;
//   - a rawResponse, which writes its own frame (Fetch uses this to hand
//     segment bytes to the socket with sendfile);
//   - nil, for requests Kafka does not answer (Produce with acks=0);
//   - a deferred, when the handler has done the part that must happen in
//     request order (Produce's append) and the rest waits for something
//     else (acks=all waits for the high watermark): the connection runs it
//     on its own goroutine and handles later requests meanwhile, still
//     writing the responses in request order.
//
// An error means the request was malformed beyond what an error code can
// express: the connection logs it and closes, as Kafka does.
type handler func(b *Broker, req *request) (any, error)

// deferred finishes a request off the connection's handler goroutine; it
// returns what a handler returns (never another deferred).
type deferred func() (any, error)

// rawResponse is a response that writes its whole frame (size prefix,
// response header, body) itself.
type rawResponse interface {
	// writeFrame writes the response for conn. w buffers conn: flush it
	// before any direct write to conn such as sendfile.
	writeFrame(w *bufio.Writer, conn net.Conn, corrID int32, flexibleHeader bool) error
}

// apiHandler is one row of the API table: the versions the broker
// advertises in ApiVersions and the function that serves them.
type apiHandler struct {
	min, max int16
	fn       handler
}

// apis is filled by each NN_api.go file's init, one file per API key.
var apis = map[int16]apiHandler{}

func register(key int16, min, max int16, fn handler) {
	if _, dup := apis[key]; dup {
		panic("broker: API key registered twice")
	}
	apis[key] = apiHandler{min: min, max: max, fn: fn}
}
