// Package consumer is Tributary's Kafka consumer: it reads records from
// any Kafka-compatible cluster, from partitions assigned by hand or as a
// member of a consumer group, and commits how far it got.
//
//	c, err := consumer.New(consumer.SeedBrokers("localhost:9092"),
//	    consumer.Group("billing"), consumer.Topics("orders"))
//	defer c.Close(ctx)
//	for {
//	    recs, err := c.Poll(ctx) // up to MaxPollRecords, each partition in offset order
//	    handle(recs)
//	    c.Commit(ctx, recs...) // or leave it to AutoCommit
//	}
//
// Without Topics, [Consumer.Assign] and [Consumer.AssignOffsets] pick
// partitions by hand; [Consumer.Seek], [Consumer.Pause],
// [Consumer.Resume], [Consumer.Position], [Consumer.Lag] and
// [Consumer.CommittedOffsets] work in both modes. Options follow Java's
// consumer settings and defaults, each naming the Java setting it matches.
//
// # Fetching (fetch.go)
//
// Every broker leading an assigned partition has a fetcher goroutine that
// keeps one Fetch outstanding for all its partitions with a known offset.
// Records are decoded with internal/batch straight out of the response
// (keys, values and header values alias it, nothing is copied; compressed
// batches are decompressed into a fresh buffer), control batches and,
// with ReadCommitted, aborted transactions are skipped, and records
// before the fetch offset (KIP-74, compacted or mid-batch starts) are
// dropped. The decoded records wait in per-partition buffers for Poll; no
// fetch is sent while MaxBufferedBytes are buffered. Leader changes
// (NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH, UNKNOWN_TOPIC_OR_PARTITION)
// refresh the metadata and move the partition to its new leader;
// OFFSET_OUT_OF_RANGE resets it per AutoOffsetReset. A resolver goroutine
// looks up starting offsets (OffsetFetch, ListOffsets).
//
// # Groups (group.go) and commits (commit.go)
//
// Group membership uses the classic protocol, described below with the
// assignors; the member is eager or cooperative (KIP-429) depending on
// its assignors, commits before it gives partitions up, and starts new
// partitions at the group's committed offsets. Commits are synchronous
// (Commit, CommitOffsets), asynchronous and ordered (CommitAsync), or
// automatic every AutoCommitInterval, always of positions: the offset of
// the next record to read.
//
// # Goroutines and locking
//
// Every goroutine (fetchers, resolver, metadata watcher, group loop,
// auto-committer, asynchronous commits) is started through one tracked
// helper, and Close stops and waits for all of them. Consumer.mu guards
// the partition states, buffers and group generation; it is never held
// across I/O or user callbacks, and only the client's own leaf locks are
// taken under it. Callbacks (OnAssigned, OnRevoked, OnLost) run on the
// group goroutine.
//
// # Assignors
//
// In the classic group protocol the coordinator does not assign
// partitions: it elects one member leader and hands it every member's
// subscription, and the leader's [Assignor] computes the plan it sends
// back in SyncGroup. An assignor is a pure function of the members and
// the topics' partition counts, so it is tested without a broker:
//
//   - [Range] and [RoundRobin] reproduce Java's RangeAssignor and
//     RoundRobinAssignor exactly (and franz-go's RangeBalancer and
//     RoundRobinBalancer), so a group keeps its plan whichever client
//     leads it.
//   - [CooperativeSticky] is Java's CooperativeStickyAssignor (KIP-429):
//     balanced, sticky, and incremental, moving partitions in two
//     rebalances so none is consumed twice. [Sticky] is its eager
//     variant (KIP-54).
//
// # ConsumerProtocol
//
// Members describe themselves in JoinGroup with a [Subscription] (topics,
// user data, owned partitions from v1, generation from v2, rack from v3)
// and receive an [Assignment] in SyncGroup. Both are encoded with kmsg;
// decoding accepts every version Java, librdkafka and franz-go send,
// tolerates clients that announce a version without writing its fields,
// and returns an error wrapping [ErrMalformed], never a panic, on garbage.
package consumer
