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
// does (Fetch, which may long-poll, runs beside it, and an acks=all
// Produce finishes its wait for the ISR off this goroutine after its
// in-order append — a "deferred"); the writer encodes
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
// # The cluster: metadata, replication and the data flow
//
// Every node is a combined broker and controller (KRaft's combined mode).
// broker/controller holds the cluster metadata — brokers and their
// liveness, topics with ids, replica assignments, leaders, leader epochs,
// ISR, configs, producer-id blocks — as an immutable Image that a Raft
// quorum (hashicorp/raft, log in <log.dir>/__cluster_metadata-0) applies
// record by record; the quorum's leader is the active controller and makes
// every decision (placement, elections, ISR changes, reassignments, fencing
// of brokers whose heartbeats stop). A node alone is a quorum of one.
// metadata_sync.go is this broker's side of it: openController starts the
// node's voter (migrating an old single-node __cluster_metadata.json into
// the first image), heartbeatLoop registers the broker and heartbeats, and
// reconcileLoop brings the local registry to each new image: it opens and
// retires partition logs, tells the replica manager each hosted
// partition's leader, ISR and epochs, applies config changes, and moves
// group coordination with __consumer_offsets leadership. Admin handlers
// validate, call the controller (on any node; it forwards to the leader)
// and wait until this node's registry shows the change (waitReconciled).
//
// broker/replica is the replica manager: per hosted partition, the leader
// or follower state, ISR, high watermark, and the follower fetchers (one
// per leader broker) that pull data over peer.go's connections. The data
// flow of an acks=all produce:
//
//	client Produce → 00_produce.go → replica.Partition.AppendAsLeader
//	  (checks leadership and min.insync.replicas, appends to the leader's
//	  storage.Log at its leader epoch) → notifyPartition wakes parked fetches
//	→ followers' fetchers: Fetch with their replica id → 01_fetch.go →
//	  FollowerFetch records each follower's log end and moves the high
//	  watermark to the minimum over the ISR → the follower appends
//	  (AppendAsFollower, keeping offsets and epochs)
//	→ HighWatermarkMoved → notifyPartition → the deferred acks=all wait
//	  (waitAcked, off the connection's handler goroutine) answers.
//
// Consumers read below the high watermark from the leader only; a
// restarted or demoted replica truncates a divergent tail with
// OffsetForLeaderEpoch (23_offset_for_leader_epoch.go) before fetching.
//
// # Transactions
//
// The transaction coordinator (txncoord.go, state machine in broker/txn)
// is placed like the group coordinator: the leader of the transactional
// id's __transaction_state partition. A transaction flows:
//
//	InitProducerId (id, epoch bump) → AddPartitionsToTxn / AddOffsetsToTxn
//	  (records to __transaction_state, acks=all)
//	→ Produce of transactional batches: the partition log opens the
//	  producer's transaction at its first offset, which holds the last
//	  stable offset (LSO) back
//	→ TxnOffsetCommit: the group coordinator keeps the offsets pending and
//	  writes them as a transactional batch of the producer
//	→ EndTxn: PrepareCommit/PrepareAbort durable, then answered; a marker
//	  writer appends a control batch to every partition (itself, or
//	  WriteTxnMarkers to the leader), which ends the transaction there,
//	  indexes an abort in the segment's .txnindex, moves the LSO and, on
//	  __consumer_offsets, applies or drops the pending offsets
//	→ MarkersWritten: CompleteCommit/CompleteAbort.
//
// read_committed Fetch and ListOffsets stop at the LSO, and Fetch lists
// the aborted transactions of the range it returns so the client drops
// their records.
//
// # Topics, configs and storage
//
// The topic registry (cluster.go, topics.go) maps names and ids to topics
// and their partitions; each partition this node hosts owns a storage.Log
// in <log.dir>/<topic>-<partition> and a replica.Partition, and every
// partition carries the controller's view of it (leader, replicas, ISR).
// meta.go keeps Kafka's meta.properties (node.id, cluster.id), with a
// reserve file that is given up when the disk is full so that a topic can
// still be deleted. orphans.go removes, once the registry reflects the
// metadata, partition directories the metadata does not give this node,
// and retires a deleted partition's data by renaming it to
// <topic>-<n>.<id>-delete and removing it file.delete.delay.ms later.
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
// cleaner.go runs the log cleaner (log.cleaner.enable): log.cleaner.threads
// tracked goroutines that each pick the dirtiest compacted log that is due
// (cleanup.policy=compact, its dirty ratio at min.cleanable.dirty.ratio or
// forced by max.compaction.lag.ms) and run storage's Log.Clean on it,
// paced by one shared log.cleaner.io.max.bytes.per.second bucket. Each
// pass that cleaned logs one "cleaned log" line; the dirty ratio of every
// compacted partition is in /metrics and the console's
// GET /api/topics/NAME, which `tributary topic describe` reads.
//
// # Goroutines and shutdown
//
// Every goroutine is started with goTracked (or tryGo) and Close waits for
// all of them (at most ShutdownTimeout): it closes b.closing (which
// long-polls and background loops select on), the listener and every
// connection, waits, stops the replica manager (its fetchers), the peer
// connections and the controller node, closes the data path, then closes
// every log (flushed, with its clean-shutdown marker).
//
// # Locks
//
// Lock order: Broker.adminMu, then Broker.mu, then the replica manager's
// locks (replica.Partition's, see broker/replica), then storage's own.
// adminMu is held by the reconcile loop while it opens and retires logs
// (and by removeOrphanDirs), so produce and fetch lookups (mu.RLock) never
// wait for the disk; no handler holds it while waiting for the controller
// (waitReconciled needs the reconcile loop to take it). Broker.mu guards
// the topic maps, each topic's partitions slice and configs map (replaced,
// never mutated, so a slice read under the lock stays valid) and the
// dynamic broker configs. The cleaner's own mutexes (busy logs, the
// token bucket) are leaves; its threads call into a log with no broker
// lock held. recon's mutex guards the reconciled image and
// the registration flag; it is a leaf. The controller's and replica
// manager's callbacks (HighWatermarkMoved, AlterPartition) run with none of
// the broker's locks held. connMu guards the listener and the connection
// set; it is never held while taking another lock. A clientConn's budget
// mutex only guards its in-flight counters. connLimits.mu and memBudget.mu
// are leaves: admit reads Broker.mu (RLock) before taking connLimits.mu,
// never while holding it. peers' mutex guards its connection map; each
// peer connection's own mutex is held for one request at a time.
package broker
