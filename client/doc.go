// Package client is the connection and metadata core that Tributary's
// producer, consumer and admin packages share. It speaks the Kafka wire
// protocol through kmsg and works against any Kafka-compatible cluster.
//
// # Pieces
//
//   - Client (client.go) holds the configuration, the brokers known from
//     the seeds and from metadata, and the metadata cache. Request sends a
//     kmsg request to a suitable broker (the controller for
//     kmsg.AdminRequest), RequestBroker to a given node. Close fails every
//     pending request with ErrClosed.
//   - Broker (client.go) is one broker's handle. Do issues a request
//     asynchronously and calls back once; Request waits. A broker has up to
//     four connections, one per traffic kind (general, produce, fetch,
//     group join/sync), because responses on a connection come back in
//     request order and a long-polling Fetch or a JoinGroup must not hold up
//     a Produce.
//   - conn (conn.go) is one connection. Setup dials (optionally TLS),
//     negotiates versions with ApiVersions (retrying at the version a broker
//     names in a v0 UNSUPPORTED_VERSION answer, KIP-511, and falling back to
//     v3, then v0, on the next dial when a broker hangs up instead) and runs
//     SASL. Then a writer goroutine encodes queued requests at min(kmsg
//     max, broker max), several per write when they queue up, and a reader
//     goroutine matches responses by correlation id; at most
//     MaxInflightPerConn requests await answers. A response's size is
//     checked against BrokerMaxReadBytes before anything is allocated. A
//     broker silent past RequestTimeout (plus the request's own timeout) has
//     its connection closed; every failure of a connection fails its queued
//     and in-flight requests with an error wrapping ErrConnection.
//   - Metadata (metadata.go): Metadata fetches and caches topics,
//     partitions, leaders and brokers. The cache is refreshed every
//     MetadataMaxAge, and on demand through TriggerMetadataRefresh (which the
//     producer calls on NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION,
//     LEADER_NOT_AVAILABLE) and whenever a connection is lost. Concurrent
//     triggers coalesce into one request, spaced by RetryBackoff.
//     MetadataUpdated lets users react to each new snapshot.
//   - SASL (sasl.go): the Mechanism interface with PLAIN built in;
//     SaslHandshake v1, then SaslAuthenticate round trips.
//
// # Errors
//
// Kafka error codes are the root package's tributary.Err* values, wrapped
// with context, so errors.Is works. Transport failures wrap ErrConnection,
// a closed client ErrClosed.
//
// # Locking
//
// Client.mu, Broker.mu and conn.mu are taken in that order and never held
// across I/O. Callbacks run without locks held, on the connection's
// reader goroutine (or whichever goroutine saw the failure).
package client
