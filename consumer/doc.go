// Package consumer reads records from Kafka (or any Kafka-compatible
// cluster): as a member of a consumer group that shares a topic's
// partitions among its members, or from partitions you pick by hand.
//
// # 1. Create a consumer
//
// As a group member, name the seed brokers, the group and its topics; New
// joins the group in the background:
//
//	c, err := consumer.New(
//	    consumer.SeedBrokers("localhost:9092"),
//	    consumer.Group("billing"),
//	    consumer.Topics("orders"),
//	    consumer.AutoOffsetReset(consumer.ResetEarliest), // where a new group starts
//	)
//
// Options follow Java's consumer settings and defaults, and each one's doc
// names the Java setting it matches ([AutoCommit] is enable.auto.commit,
// [SessionTimeout] session.timeout.ms, ...).
//
// # 2. Poll, handle, commit
//
// Poll returns the next batch of records, each partition's in offset
// order. Handle them, then commit: a commit stores, for each partition,
// the offset after the last record handled, which is where the group
// starts again after a restart or a rebalance.
//
//	for {
//	    recs, err := c.Poll(ctx)
//	    if err != nil {
//	        if ctx.Err() != nil {
//	            break // shutting down (see 3)
//	        }
//	        log.Print(err) // one partition's or the group's trouble; the rest goes on
//	        continue
//	    }
//	    handle(recs)
//	    if err := c.Commit(ctx, recs...); err != nil && ctx.Err() == nil {
//	        log.Print(err)
//	    }
//	}
//
// Poll returns records only with a nil error and an error only with no
// records, so a loop can stop at any error without losing records.
// Commit waits for the coordinator; [Consumer.CommitAsync] does not. With
// [AutoCommit] (the default, as in Java) the consumer commits the
// position of every partition, that is everything Poll returned, every
// [AutoCommitInterval], before it gives partitions up in a rebalance, and
// in Close; the loop then has no Commit, but a record Poll returned may
// be committed before it was handled. Commit yourself, with
// AutoCommit(false), for at-least-once processing.
//
// # 3. Shut down without losing anything
//
// Stop the loop by ending Poll's context (signal.NotifyContext in a
// service), then commit and close with a fresh context: the loop's is
// done, and a commit under it would fail at once.
//
//	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
//	defer stop()
//	// ... the loop of 2, which breaks once ctx is done ...
//	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
//	defer cancel()
//	if err := c.Commit(shutdown); err != nil { // everything Poll returned was handled
//	    log.Print(err)
//	}
//	if err := c.Close(shutdown); err != nil {
//	    log.Print(err)
//	}
//
// Commit with no records commits the position of every partition. Close
// sends the asynchronous commits already made, commits positions itself
// with AutoCommit, calls OnRevoked, and leaves the group so that the
// others take the partitions over at once. After Close, Poll and the
// commits return [ErrClosed].
//
// # Picking partitions by hand
//
// Without Topics, [Consumer.Assign] and [Consumer.AssignOffsets] consume
// partitions you choose, from their committed offsets (with a Group),
// from [Earliest], [Latest] or from an offset. [Consumer.Seek],
// [Consumer.Pause], [Consumer.Resume], [Consumer.Position],
// [Consumer.Lag] and [Consumer.CommittedOffsets] work in both modes.
//
// # Rebalances
//
// When members join or leave, the group rebalances: [OnRevoked] is called
// with the partitions this member gives up (commit there if you do not
// auto-commit), [OnAssigned] with those it gains, and [OnLost] with those
// taken away when its membership expired. The default assignors are
// [Range] then [CooperativeSticky], as in Java 3.x;
// Assignors(CooperativeSticky()) makes rebalances incremental, and a
// custom [Assignor] can decide the plan.
//
// # Errors
//
// Kafka errors are the root package's (tributary.ErrRebalanceInProgress,
// ...), matched with errors.Is through any wrapping; a commit that failed
// for some partitions is a [*CommitError].
package consumer

// Notes for contributors (not part of the package documentation).
//
// Files: consumer.go (the Consumer, partition states, Poll, Close),
// fetch.go (fetchers and the offset resolver), group.go (membership),
// commit.go (commits, the coordinator), assignor.go (the public Assignor
// over internal/consumerproto, which holds the ConsumerProtocol codecs and
// the built-in assignors), config.go (options).
//
// Fetching: every broker leading an assigned partition has a fetcher
// goroutine that keeps one Fetch outstanding for all its partitions with a
// known offset. Records are decoded with internal/batch straight out of
// the response (keys, values and header values alias it, nothing is
// copied; compressed batches are decompressed into a fresh buffer),
// control batches and, with ReadCommitted, aborted transactions are
// skipped, and records before the fetch offset (KIP-74, compacted or
// mid-batch starts) are dropped. The decoded records wait in per-partition
// buffers for Poll; no fetch is sent while MaxBufferedBytes are buffered.
// Leader changes (NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH,
// UNKNOWN_TOPIC_OR_PARTITION) refresh the metadata and move the partition
// to its new leader; OFFSET_OUT_OF_RANGE resets it per AutoOffsetReset. A
// resolver goroutine looks up starting offsets (OffsetFetch, ListOffsets).
//
// Groups and commits: membership uses the classic protocol; the member is
// eager or cooperative (KIP-429) depending on its assignors, commits
// before it gives partitions up, and starts new partitions at the group's
// committed offsets. Commits are always of positions: the offset of the
// next record to read. Asynchronous commits go through one sender
// goroutine that merges those made while one is in flight.
//
// Goroutines and locking: every goroutine (fetchers, resolver, metadata
// watcher, group loop, auto-committer, the async commit sender) is started
// through one tracked helper or under Consumer.mu before closed is set,
// and Close stops and waits for all of them. Consumer.mu guards the
// partition states, buffers, group generation and async commit queue; it
// is never held across I/O or user callbacks, and only the client's own
// leaf locks are taken under it. Callbacks (OnAssigned, OnRevoked, OnLost)
// run on the group goroutine; CommitAsync callbacks on the sender.
