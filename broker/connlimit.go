package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Connection admission and accept-error handling.
//
// Accept errors never stop the broker: running out of descriptors
// (EMFILE, ENFILE), a connection reset before it was accepted
// (ECONNABORTED) and anything else the listener reports are retried after
// a delay that doubles from 5 ms to 1 s, as net/http does. Only a closed
// listener ends the loop. With thousands of failures a second the log
// would become the next thing to exhaust, so both accept failures and
// refused connections are logged through a logLimiter: one line per
// interval carrying how many were suppressed.
//
// max.connections, max.connections.per.ip and
// max.connections.per.ip.overrides are read from the effective (dynamic)
// configuration at every accept, so an AlterConfigs applies to the next
// connection. A connection over a limit is closed at once and counted;
// the existing ones are left alone, as in Kafka.

const (
	acceptMinDelay = 5 * time.Millisecond
	acceptMaxDelay = time.Second
	// connLogEvery bounds how often refused connections and accept
	// failures are logged.
	connLogEvery = 5 * time.Second
)

// logLimiter lets one event through per interval and counts the rest.
type logLimiter struct {
	mu         sync.Mutex
	every      time.Duration
	last       time.Time
	suppressed int64
}

// allow reports whether to log now, and how many events were suppressed
// since the last line that was let through.
func (l *logLimiter) allow(now time.Time) (bool, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return true, n
}

// connLimits counts open connections in total and per IP.
type connLimits struct {
	mu    sync.Mutex
	total int
	perIP map[string]int
	// overrides is the parsed max.connections.per.ip.overrides, cached
	// by its raw value so hostnames are resolved once per change.
	overridesRaw string
	overrides    map[string]int

	refused   atomic.Int64
	acceptErr atomic.Int64

	refuseLog logLimiter
	acceptLog logLimiter
}

// ConnStats are connection counters since the broker started.
type ConnStats struct {
	Open          int   // connections being served
	Refused       int64 // closed at once by max.connections or max.connections.per.ip
	AcceptErrors  int64 // failed Accept calls (out of descriptors and the like)
	QueuedBytes   int64 // queued.max.request.bytes in use
	QueuedWaiting int   // connections waiting for that budget
}

// ConnStats returns the connection counters.
func (b *Broker) ConnStats() ConnStats {
	l := &b.connLimits
	l.mu.Lock()
	open := l.total
	l.mu.Unlock()
	used, waiting := b.mem.stats()
	return ConnStats{Open: open, Refused: l.refused.Load(), AcceptErrors: l.acceptErr.Load(), QueuedBytes: used, QueuedWaiting: waiting}
}

// acceptFailed logs (rate-limited) and waits before the next Accept; it
// returns the next delay, or false when the broker is closing.
func (b *Broker) acceptFailed(err error, delay time.Duration) (time.Duration, bool) {
	l := &b.connLimits
	l.acceptErr.Add(1)
	delay = min(max(2*delay, acceptMinDelay), acceptMaxDelay)
	l.acceptLog.every = connLogEvery
	if ok, n := l.acceptLog.allow(time.Now()); ok {
		b.logger.Warn("accept failed; retrying", "err", err, "delay", delay, "suppressed", n)
	}
	return delay, b.sleep(delay)
}

// admit counts nc against the limits; false means it was refused and
// closed. Every admitted connection must be given back with release.
func (b *Broker) admit(nc net.Conn) (ip string, ok bool) {
	ip = remoteIP(nc)
	b.mu.RLock()
	maxConns, perIP, raw := b.mu.eff.MaxConnections, b.mu.eff.MaxConnectionsPerIp, b.mu.eff.MaxConnectionsPerIpOverrides
	b.mu.RUnlock()
	l := &b.connLimits
	l.mu.Lock()
	if raw != l.overridesRaw || (raw != "" && l.overrides == nil) {
		l.overridesRaw = raw
		l.overrides = resolveConnOverrides(raw, b.logger.Warn)
	}
	limit := int(perIP)
	if n, found := l.overrides[ip]; found {
		limit = n
	}
	var reason string
	switch {
	case l.total >= int(maxConns):
		reason, limit = "max.connections", int(maxConns)
	case l.perIP[ip] >= limit:
		reason = "max.connections.per.ip"
	}
	if reason == "" {
		l.total++
		if l.perIP == nil {
			l.perIP = map[string]int{}
		}
		l.perIP[ip]++
		l.mu.Unlock()
		return ip, true
	}
	l.mu.Unlock()
	l.refused.Add(1) // before the close, which the client may observe first
	nc.Close()
	l.refuseLog.every = connLogEvery
	if ok, n := l.refuseLog.allow(time.Now()); ok {
		b.logger.Warn("refused connection", "remote", nc.RemoteAddr().String(), "limit", reason, "max", limit, "refused_total", l.refused.Load(), "suppressed", n)
	}
	return ip, false
}

// releaseConn gives back a connection admit counted.
func (b *Broker) releaseConn(ip string) {
	l := &b.connLimits
	l.mu.Lock()
	l.total--
	if l.perIP[ip]--; l.perIP[ip] <= 0 {
		delete(l.perIP, ip)
	}
	l.mu.Unlock()
}

func remoteIP(nc net.Conn) string {
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(nc.RemoteAddr().String())
	if err != nil {
		return nc.RemoteAddr().String()
	}
	return host
}

// parseConnOverrides splits "host:count,host:count" (the host may be an
// IPv6 address: the count follows the last colon).
func parseConnOverrides(v string) (map[string]int, error) {
	out := map[string]int{}
	for _, item := range splitList(v) {
		i := strings.LastIndexByte(item, ':')
		if i <= 0 {
			return nil, fmt.Errorf("%q is not host:count", item)
		}
		host := strings.Trim(strings.TrimSpace(item[:i]), "[]")
		n, err := strconv.ParseInt(strings.TrimSpace(item[i+1:]), 10, 32)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q: count is not a non-negative integer", item)
		}
		if host == "" {
			return nil, fmt.Errorf("%q: empty host", item)
		}
		out[host] = int(n)
	}
	return out, nil
}

func checkConnOverrides(v string) error {
	_, err := parseConnOverrides(v)
	return err
}

// resolveConnOverrides maps each override to the IP addresses it names:
// IP literals as they are, hostnames through the resolver (as Kafka's
// InetAddress.getByName). A hostname that does not resolve is logged
// and skipped rather than failing every later connection.
func resolveConnOverrides(raw string, warn func(string, ...any)) map[string]int {
	hosts, err := parseConnOverrides(raw)
	if err != nil {
		warn("ignoring max.connections.per.ip.overrides", "err", err)
		return map[string]int{}
	}
	out := make(map[string]int, len(hosts))
	for host, n := range hosts {
		if ip := net.ParseIP(host); ip != nil {
			out[ip.String()] = n
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
		cancel()
		if err != nil {
			warn("max.connections.per.ip.overrides: cannot resolve host; ignoring it", "host", host, "err", err)
			continue
		}
		for _, a := range addrs {
			out[a.IP.String()] = n
		}
	}
	return out
}

// errListenerClosed reports whether an Accept error means the listener
// is gone for good.
func errListenerClosed(err error) bool { return errors.Is(err, net.ErrClosed) }
