package client

import (
	"time"
)

// Hook is a value that implements one or more of the Hook* interfaces in
// this package. Pass hooks to the client with WithHooks; the client, and the
// producer, consumer and admin built on it, call every hook that
// implements an interface when that event happens. This is how an
// application exports metrics (see examples/hooks-prometheus) without
// wrapping the SDK, in the manner of franz-go's kgo hooks.
//
// Hooks run synchronously on the goroutine that saw the event, often a
// connection's reader or writer: they must be fast and must not block, and
// they must be safe for concurrent use. A hook must not call back into the
// client.
type Hook any

// BrokerInfo names the broker an event concerns. NodeID is negative for a
// seed broker not yet matched to a node of the metadata.
type BrokerInfo struct {
	NodeID int32
	Addr   string
}

// HookBrokerConnect is called after every attempt to connect to a broker,
// once the connection is usable (dial, TLS, ApiVersions and SASL done) or
// has failed; dialTime is how long the attempt took.
type HookBrokerConnect interface {
	OnBrokerConnect(b BrokerInfo, dialTime time.Duration, err error)
}

// HookBrokerDisconnect is called once when a connection that
// HookBrokerConnect reported as usable is closed, with the reason
// (ErrClosed when the client closed it).
type HookBrokerDisconnect interface {
	OnBrokerDisconnect(b BrokerInfo, err error)
}

// HookBrokerWrite is called after each request is written to a broker (or
// the write failed): key is the Kafka API key, bytes the request's size on
// the wire, queueWait how long it waited in the client before being
// written.
type HookBrokerWrite interface {
	OnBrokerWrite(b BrokerInfo, key int16, bytes int, queueWait time.Duration, err error)
}

// HookBrokerRead is called after each response is read from a broker (or
// the read failed): bytes is the response's size on the wire, latency the
// time from writing the request to having read the response, which
// includes any time the broker legitimately held it (a Fetch long poll,
// acks=all replication).
type HookBrokerRead interface {
	OnBrokerRead(b BrokerInfo, key int16, bytes int, latency time.Duration, err error)
}

// ProduceBatchMetrics describes one record batch the producer wrote.
type ProduceBatchMetrics struct {
	NumRecords        int
	UncompressedBytes int   // the batch's records before compression, with the batch header
	CompressedBytes   int   // the batch as sent
	CompressionType   int8  // Kafka's attribute value: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd
	BaseOffset        int64 // the offset the broker assigned to the first record, -1 with acks=0
}

// HookProduceBatchWritten is called by the producer for every batch a
// broker acknowledged (or, with acks=0, that was written).
type HookProduceBatchWritten interface {
	OnProduceBatchWritten(b BrokerInfo, topic string, partition int32, m ProduceBatchMetrics)
}

// FetchBatchMetrics describes one record batch the consumer read.
type FetchBatchMetrics struct {
	NumRecords        int
	UncompressedBytes int
	CompressedBytes   int
	CompressionType   int8
}

// HookFetchBatchRead is called by the consumer for every record batch it
// decoded from a Fetch response.
type HookFetchBatchRead interface {
	OnFetchBatchRead(b BrokerInfo, topic string, partition int32, m FetchBatchMetrics)
}

// RebalanceEvent says what a group rebalance did to a consumer.
type RebalanceEvent struct {
	Group      string
	MemberID   string
	Generation int32
	// Assigned and Revoked are the partitions gained and lost, by topic.
	Assigned map[string][]int32
	Revoked  map[string][]int32
	// Lost is true when the partitions were taken away without an orderly
	// revoke (the session expired or the member was fenced).
	Lost bool
	// Err is set when the rebalance failed (the join or sync was refused).
	Err error
}

// HookGroupRebalance is called by the consumer each time a group
// rebalance completes, fails, or loses the member's partitions.
type HookGroupRebalance interface {
	OnGroupRebalance(ev RebalanceEvent)
}

// WithHooks adds hooks to the client. Default: none. A value implementing
// none of the Hook* interfaces is refused by New.
func WithHooks(hooks ...Hook) Opt {
	return Opt{func(c *cfg) { c.hooks = append(c.hooks, hooks...) }}
}

// Hooks returns the hooks the client was created with, for the producer,
// consumer and admin built on it to call (and for code that sends its own
// requests through the client). Do not modify the slice. The usual call:
//
//	for _, h := range cl.Hooks() {
//		if h, ok := h.(client.HookGroupRebalance); ok {
//			h.OnGroupRebalance(ev)
//		}
//	}
func (c *Client) Hooks() []Hook { return c.cfg.hooks }

// validHook reports whether h implements at least one hook interface.
func validHook(h Hook) bool {
	switch h.(type) {
	case HookBrokerConnect, HookBrokerDisconnect, HookBrokerWrite, HookBrokerRead,
		HookProduceBatchWritten, HookFetchBatchRead, HookGroupRebalance:
		return true
	}
	return false
}

// hookSet caches which hooks implement which interface, so the hot paths
// (one write and one read per request) do a nil check, not a type switch
// per hook.
type hookSet struct {
	connect    []HookBrokerConnect
	disconnect []HookBrokerDisconnect
	write      []HookBrokerWrite
	read       []HookBrokerRead
}

func newHookSet(hs []Hook) hookSet {
	var s hookSet
	for _, h := range hs {
		if x, ok := h.(HookBrokerConnect); ok {
			s.connect = append(s.connect, x)
		}
		if x, ok := h.(HookBrokerDisconnect); ok {
			s.disconnect = append(s.disconnect, x)
		}
		if x, ok := h.(HookBrokerWrite); ok {
			s.write = append(s.write, x)
		}
		if x, ok := h.(HookBrokerRead); ok {
			s.read = append(s.read, x)
		}
	}
	return s
}
