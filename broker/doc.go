// Package broker is Tributary's Kafka-compatible broker as a library:
// New(cfg) validates the configuration and opens the log dir, Run(ctx)
// listens and serves, Close stops it cleanly. `tributary broker`
// (cmd/tributary) and brokertest (for tests) are thin wrappers around it.
//
// # How a request flows
//
// server.go owns connections. connlimit.go admits them (max.connections,
// max.connections.per.ip[.overrides]: one over a limit is closed at once)
// and keeps the accept loop alive through EMFILE and other accept errors
// (back-off from 5 ms to 1 s, rate-limited logs). Each connection has three
// goroutines joined by bounded queues: the reader checks the 4-byte frame
// size against socket.request.max.bytes and the API key before
// allocating anything, waits for room in the broker-wide
// queued.max.request.bytes budget (membudget.go), reads the frame into a
// buffer of its declared size (pooled up to 1 MiB) and decodes the header and body with kmsg
// (decodeFrame); the handler goroutine calls the API's handler from the
// table in handler.go, one request at a time in arrival order as Kafka
// does (Fetch, which may long-poll, runs beside it); the writer encodes
// the responses into pooled buffers and writes them strictly in request
// order. Anything Kafka answers by closing the connection (unknown key,
// unsupported version, undecodable body, a handler panic) closes that one
// connection and nothing else.
//
// Each API lives in a file named by its key (03_metadata.go,
// 19_create_topics.go, ...) that registers its version range in init; the
// ApiVersions answer is built from that table, so a key is advertised
// exactly when it is implemented.
//
// # Topics, configs and storage
//
// The topic registry (cluster.go, topics.go) maps names and ids to topics
// and their partitions; each partition owns a storage.Log in
// <log.dir>/<topic>-<partition>. meta.go persists the registry (names,
// ids, partition counts, leader epochs, config overrides) and the dynamic
// broker configs in <log.dir>/__cluster_metadata.json, replaced
// atomically (temporary file, fsync, rename, fsync of the directory) on
// every change, next to Kafka's meta.properties (node.id, cluster.id),
// with a reserve file that is given up when the disk is full so that a
// topic can still be deleted. orphans.go removes, at start, partition
// directories the metadata does not name, and deletes a topic's data by
// renaming it to <topic>-<n>.<id>-delete and removing it
// file.delete.delay.ms later.
// A flock on <log.dir>/.lock keeps a second broker off the same data.
//
// configs.go describes every broker property and topic config with
// Kafka's names, types, defaults and validation. A topic's effective
// config is its override, else the broker default it names (its
// synonym), where a broker default is, in order, the value set
// dynamically for this node, set dynamically cluster-wide, set in the
// properties file, or Kafka's default. storageConfig turns that into the
// storage.Config of the topic's logs; altering a config applies it to the
// open logs at once. The data path (datapath.go, 00_produce.go,
// 01_fetch.go, ...) finds partitions with lookupPartition and reads topic
// configs with topicConfigValue.
//
// # Goroutines and shutdown
//
// Every goroutine is started with goTracked (or tryGo) and Close waits for
// all of them (at most ShutdownTimeout): it closes b.closing (which
// long-polls and background loops select on), the listener and every
// connection, waits, closes the data path, then closes every log (flushed,
// with its clean-shutdown marker).
//
// # Locks
//
// Lock order: Broker.adminMu, then Broker.mu, then a partition's
// produceMu, then storage's own locks. adminMu serialises every change to
// topics and configs and the metadata file writes; disk work (opening,
// deleting logs, writing the file) happens under adminMu only, so
// produce and fetch lookups (mu.RLock) never wait for the disk. Broker.mu
// guards the topic maps, each topic's partitions slice and configs map
// (replaced, never mutated, so a slice read under the lock stays valid)
// and the dynamic broker configs. connMu guards the listener and the
// connection set; it is never held while taking another lock.
// A clientConn's budget mutex only guards its in-flight counters.
// connLimits.mu and memBudget.mu are leaves: admit reads Broker.mu
// (RLock) before taking connLimits.mu, never while holding it.
package broker
