// Package client holds the connections and cluster metadata that
// Tributary's producer, consumer and admin share. Most applications never
// import it: producer.New, consumer.New and admin.New each create a client
// of their own from the options given to them.
//
// # When to use it
//
// Create a client yourself to share one set of connections and one
// metadata cache between a producer, a consumer and an admin in the same
// process, to observe the SDK through hooks, or to send a Kafka request the
// other packages do not wrap.
//
//  1. Create it: client.New(client.SeedBrokers("kafka-1:9092", "kafka-2:9092")).
//     New checks the options and the seed addresses (a comma-separated
//     list passed as one seed, a PLAINTEXT:// prefix, a missing port are
//     reported with how to fix them) and does not connect; the first
//     request does. TLS, SASL, ClientID, DialTimeout and RequestTimeout
//     carry Java's names and defaults.
//  2. Share it: producer.WithClient(cl), consumer.WithClient(cl),
//     admin.WithClient(cl). They do not close a client they were given.
//  3. Close it last, after everything built on it: cl.Close() fails the
//     requests still pending with ErrClosed.
//
// # Errors
//
// Kafka error codes come back as the root package's tributary.Err* values,
// wrapped with context, so test them with errors.Is. Failures to reach a
// broker wrap ErrConnection, and the SDK retries them where that helps;
// when no broker at all could be reached (every seed refused or timed
// out) the error also matches ErrUnreachable and names the addresses
// tried, which usually means a wrong seed list or a cluster that is down.
// A closed client returns ErrClosed.
//
// # Observing the client
//
// WithHooks installs values implementing any of the Hook* interfaces
// (connections, requests written and read with sizes and latency, produce
// and fetch batches, group rebalances). examples/hooks-prometheus exports
// them to Prometheus.
//
// # Requests of your own
//
// Request sends a kmsg request to a suitable broker (the controller for
// admin requests) and RequestBroker to a given node; Limit bounds the
// version. Metadata, CachedMetadata and MetadataUpdated expose the
// cluster as the client sees it. A long-running process that touches many
// short-lived topics calls PurgeTopics to stop tracking them.
package client

// Notes for contributors (not part of the package documentation).
//
// Files:
//   - client.go: Client (configuration, brokers from seeds and metadata,
//     Request routing and its retry across brokers) and Broker, one
//     broker's handle. Do issues a request asynchronously and calls back
//     once; Request waits. A broker has up to four connections, one per
//     traffic kind (general, produce, fetch, group join/sync), because
//     responses on a connection come back in request order and a
//     long-polling Fetch or a JoinGroup must not hold up a Produce. Dials
//     run on their own goroutine so every waiting caller can give up with
//     its ctx.
//   - conn.go: one connection. Setup dials (optionally TLS), negotiates
//     versions with ApiVersions (retrying at the version a broker names in
//     a v0 UNSUPPORTED_VERSION answer, KIP-511, and falling back to v3,
//     then v0, on the next dial when a broker hangs up instead) and runs
//     SASL. Then a writer goroutine encodes queued requests at min(kmsg
//     max, broker max), several per write when they queue up, and a reader
//     goroutine matches responses by correlation id; at most
//     MaxInflightPerConn requests await answers and at most
//     MaxQueuedPerConn wait to be written (enqueue blocks beyond that). A
//     response's size is checked against BrokerMaxReadBytes before
//     anything is allocated. A broker silent past RequestTimeout (plus the
//     request's own timeout) has its connection closed; every failure of a
//     connection fails its queued and in-flight requests with an error
//     wrapping ErrConnection.
//   - metadata.go: Metadata fetches and caches topics, partitions, leaders
//     and brokers. The cache is refreshed every MetadataMaxAge, on demand
//     through TriggerMetadataRefresh (which the producer calls on
//     NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION,
//     LEADER_NOT_AVAILABLE) and whenever a connection is lost. Concurrent
//     triggers coalesce into one request, spaced by RetryBackoff.
//   - hooks.go: the Hook* interfaces; the connection caches which hooks
//     implement which, and orders a request's write hook before its read
//     hook.
//   - sasl.go: the Mechanism interface with PLAIN built in; SaslHandshake
//     v1, then SaslAuthenticate round trips.
//   - internal/clientx: what producer, consumer and admin need beyond the
//     public API (backoff, request timeout, logger).
//
// Locking: Client.mu, Broker.mu and conn.mu are taken in that order and
// never held across I/O. Callbacks run without locks held, on the
// connection's reader goroutine (or whichever goroutine saw the failure).
