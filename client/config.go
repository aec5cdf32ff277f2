package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Opt configures a Client. Options are applied in order by New, which then
// validates the result, so a bad value is reported once, up front.
type Opt struct{ apply func(*cfg) }

type cfg struct {
	seeds           []string
	clientID        string
	dialTimeout     time.Duration
	requestTimeout  time.Duration
	metadataMaxAge  time.Duration
	retryBackoff    time.Duration
	retryBackoffMax time.Duration
	tls             *tls.Config
	sasl            []Mechanism
	dialer          func(ctx context.Context, network, addr string) (net.Conn, error)
	logger          *slog.Logger
	maxReadBytes    int32
	maxInflight     int
	maxQueued       int
	hooks           []Hook
	autoCreate      bool
	softwareName    string
	softwareVersion string
}

func defaultCfg() cfg {
	return cfg{
		clientID:        "tributary",
		dialTimeout:     10 * time.Second,
		requestTimeout:  30 * time.Second,
		metadataMaxAge:  5 * time.Minute,
		retryBackoff:    100 * time.Millisecond,
		retryBackoffMax: time.Second,
		maxReadBytes:    100 << 20,
		maxInflight:     16,
		maxQueued:       1024,
		softwareName:    "tributary",
		softwareVersion: "0.1.0",
	}
}

func (c *cfg) validate() error {
	if len(c.seeds) == 0 {
		return errors.New("client: no seed brokers (use SeedBrokers)")
	}
	for _, s := range c.seeds {
		if err := checkSeed(s); err != nil {
			return err
		}
	}
	for i, h := range c.hooks {
		if !validHook(h) {
			return fmt.Errorf("client: hook %d (%T) implements none of the Hook* interfaces", i, h)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"DialTimeout", c.dialTimeout},
		{"RequestTimeout", c.requestTimeout},
		{"MetadataMaxAge", c.metadataMaxAge},
		{"RetryBackoff", c.retryBackoff},
		{"RetryBackoffMax", c.retryBackoffMax},
	} {
		if d.v <= 0 {
			return fmt.Errorf("client: %s must be positive, got %v", d.name, d.v)
		}
	}
	if c.retryBackoffMax < c.retryBackoff {
		return fmt.Errorf("client: RetryBackoffMax %v is below RetryBackoff %v", c.retryBackoffMax, c.retryBackoff)
	}
	if c.maxReadBytes < 1<<10 {
		return fmt.Errorf("client: BrokerMaxReadBytes %d is below 1KiB", c.maxReadBytes)
	}
	if c.maxInflight < 1 {
		return fmt.Errorf("client: MaxInflightPerConn must be at least 1, got %d", c.maxInflight)
	}
	if c.maxQueued < 1 {
		return fmt.Errorf("client: MaxQueuedPerConn must be at least 1, got %d", c.maxQueued)
	}
	for _, m := range c.sasl {
		if m == nil {
			return errors.New("client: nil SASL mechanism")
		}
	}
	return nil
}

// checkSeed rejects the seed strings people actually pass by mistake, with
// what to do instead: New is the one place that can say so; a bad seed
// otherwise shows up much later as a dial error for an odd address.
func checkSeed(s string) error {
	const how = `pass each broker as its own "host:port" argument, e.g. SeedBrokers("kafka-1:9092", "kafka-2:9092")`
	switch {
	case s == "":
		return fmt.Errorf("client: empty seed broker address; %s", how)
	case strings.Contains(s, ","):
		return fmt.Errorf("client: seed broker %q is a comma-separated list; split it: %s (strings.Split(list, \",\") does it)", s, how)
	case strings.Contains(s, "://"):
		return fmt.Errorf("client: seed broker %q has a scheme; drop %q: the address is host:port, the listener name (PLAINTEXT, SSL) is not part of it", s, s[:strings.Index(s, "://")+3])
	case strings.IndexFunc(s, unicode.IsSpace) >= 0:
		return fmt.Errorf("client: seed broker %q contains whitespace; trim it (strings.TrimSpace)", s)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if strings.Contains(err.Error(), "missing port") {
			return fmt.Errorf("client: seed broker %q has no port; add one, e.g. %q (Kafka's default is 9092)", s, net.JoinHostPort(strings.Trim(s, "[]"), "9092"))
		}
		return fmt.Errorf("client: seed broker %q is not host:port (%v); %s", s, err, how)
	}
	if host == "" {
		return fmt.Errorf("client: seed broker %q has no host; write e.g. %q", s, "localhost"+s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("client: seed broker %q: port %q is not a number from 1 to 65535", s, port)
	}
	return nil
}

// SeedBrokers sets the host:port addresses used to discover the cluster.
// Required; there is no default (Java: bootstrap.servers).
func SeedBrokers(addrs ...string) Opt {
	return Opt{func(c *cfg) { c.seeds = append(c.seeds[:0:0], addrs...) }}
}

// ClientID sets the client ID sent in every request header, which brokers
// use in logs and quotas. Default "tributary" (Java: client.id).
func ClientID(id string) Opt { return Opt{func(c *cfg) { c.clientID = id }} }

// DialTimeout bounds establishing a connection, including TLS and SASL.
// Default 10s (Java: socket.connection.setup.timeout.ms bounds the TCP part).
func DialTimeout(d time.Duration) Opt { return Opt{func(c *cfg) { c.dialTimeout = d }} }

// RequestTimeout bounds how long the client waits for a response after
// writing a request, on top of any timeout the request itself carries
// (a Produce's or Fetch's own wait). A broker that stays silent longer has
// its connection closed. Default 30s (Java: request.timeout.ms).
func RequestTimeout(d time.Duration) Opt { return Opt{func(c *cfg) { c.requestTimeout = d }} }

// MetadataMaxAge sets how often cached metadata is refreshed even when
// nothing suggests it changed. Default 5m (Java: metadata.max.age.ms).
func MetadataMaxAge(d time.Duration) Opt { return Opt{func(c *cfg) { c.metadataMaxAge = d }} }

// RetryBackoff sets the first wait before retrying a failed request; it
// doubles per attempt, with jitter, up to RetryBackoffMax.
// Default 100ms (Java: retry.backoff.ms).
func RetryBackoff(d time.Duration) Opt { return Opt{func(c *cfg) { c.retryBackoff = d }} }

// RetryBackoffMax caps the exponential retry backoff.
// Default 1s (Java: retry.backoff.max.ms).
func RetryBackoffMax(d time.Duration) Opt { return Opt{func(c *cfg) { c.retryBackoffMax = d }} }

// TLS makes every connection use TLS with this config. If ServerName is
// empty it is set per broker from the broker's host. Default: plaintext
// (Java: security.protocol=SSL plus ssl.* settings).
func TLS(t *tls.Config) Opt { return Opt{func(c *cfg) { c.tls = t }} }

// SASL authenticates every connection with the first mechanism the broker
// supports, in the order given. Default: none (Java: sasl.mechanism and
// sasl.jaas.config).
func SASL(mechanisms ...Mechanism) Opt {
	return Opt{func(c *cfg) { c.sasl = append(c.sasl[:0:0], mechanisms...) }}
}

// Dialer replaces the function used to open TCP connections, for tests and
// proxies. TLS, if configured, is layered on top of the returned conn.
// Default: a net.Dialer with DialTimeout.
func Dialer(fn func(ctx context.Context, network, addr string) (net.Conn, error)) Opt {
	return Opt{func(c *cfg) { c.dialer = fn }}
}

// Logger sets where the client logs connection and metadata events.
// Default: discard.
func Logger(l *slog.Logger) Opt { return Opt{func(c *cfg) { c.logger = l }} }

// BrokerMaxReadBytes caps the size of a response the client accepts. The
// size prefix is checked before any allocation, so a hostile or confused
// peer (say, a TLS listener answering plaintext) cannot make the client
// allocate gigabytes. Default 100MiB, like franz-go (Kafka's
// socket.request.max.bytes is the broker-side counterpart).
func BrokerMaxReadBytes(n int32) Opt { return Opt{func(c *cfg) { c.maxReadBytes = n }} }

// MaxInflightPerConn bounds how many requests may await a response on one
// connection; further requests wait to be written. Default 16. The producer
// applies its own, stricter per-partition limit (max.in.flight.requests.per.connection).
func MaxInflightPerConn(n int) Opt { return Opt{func(c *cfg) { c.maxInflight = n }} }

// AllowAutoTopicCreation sets whether metadata requests ask brokers to
// create the topics they name that do not exist (brokers do so only with
// auto.create.topics.enable). Default false, like franz-go; Java's consumer
// asks per allow.auto.create.topics, its producer always asks, and so does
// Tributary's producer with the client it creates.
func AllowAutoTopicCreation(allow bool) Opt { return Opt{func(c *cfg) { c.autoCreate = allow }} }

// MaxQueuedPerConn bounds how many requests may wait on one connection to
// be written. Once that many wait, Broker.Do (and so every request) blocks
// until one is written, its context ends or the connection fails, so a
// stalled broker pushes back on its callers instead of growing a queue
// without limit. Default 1024 (no Java counterpart: Java bounds the
// producer by buffer.memory and queues admin calls per node).
func MaxQueuedPerConn(n int) Opt { return Opt{func(c *cfg) { c.maxQueued = n }} }

// SoftwareNameAndVersion sets what ApiVersions v3+ reports as the client
// software (KIP-511). Both must match [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?.
// Default "tributary" / "0.1.0" (Java: client.software.name/version, fixed).
func SoftwareNameAndVersion(name, version string) Opt {
	return Opt{func(c *cfg) { c.softwareName, c.softwareVersion = name, version }}
}
