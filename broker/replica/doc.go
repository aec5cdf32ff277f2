// Package replica is the broker's replica manager (Kafka's ReplicaManager
// and Partition): for every partition this node hosts it holds the
// leader or follower state, the in-sync replica set (ISR) and the high
// watermark (HW), and it runs the follower fetchers that pull data from
// other leaders. Network and controller are behind small interfaces
// (Transport, Config.AlterPartition), so a whole cluster of Managers runs
// in one test process over real storage.Logs.
//
// # API the broker codes against
//
//	cfg := replica.DefaultConfig(nodeID) // Kafka's replica.* defaults; set Transport, AlterPartition, HighWatermarkMoved
//	m, err := replica.New(cfg)           // validates; starts the ISR/HW-checkpoint loop
//	defer m.Close()                      // stops every fetcher and loop, waits for them
//	p := m.Add(topic, topicID, index, log) // a hosted partition, no role yet
//	m.Apply(p, st)                       // after every metadata change touching p (idempotent)
//	m.Remove(p)                          // no longer hosted (the broker closes/deletes the log)
//
// Leader side, from the request handlers:
//
//	p.ValidateLeaderEpoch(currentLeaderEpoch) // NOT_LEADER_OR_FOLLOWER, FENCED_/UNKNOWN_LEADER_EPOCH (KIP-320); -1 skips the epoch check
//	p.CheckProduce(acks, minISR)         // early check; AppendAsLeader repeats it atomically
//	p.AppendAsLeader(batches, acks, minISR) // check + storage.Log.Append at the leader epoch + HW move, atomic
//	                                     // with role changes (Kafka's leaderIsrUpdateLock)
//	p.Appended()                         // HW move after an append made through p.Log() directly
//	p.AckedAfterAppend(lastOffset+1, minISR) // acks=all: done once HW >= end; NOT_ENOUGH_REPLICAS_AFTER_APPEND
//	                                     // when the ISR shrank below minISR; NOT_LEADER_OR_FOLLOWER when leadership moved
//	p.FollowerFetch(replicaID, fetchOffset, currentLeaderEpoch, lastFetchedEpoch) (*EpochEndOffset, error)
//	p.EndOffsetForEpoch(currentLeaderEpoch, epoch) (EpochEndOffset, error) // OffsetForLeaderEpoch (key 23)
//	p.HighWatermark(), p.IsLeader(), p.LeaderEpoch(), p.ISR(), p.State()
//	p.Followers()                        // leader: each follower's fetched LEO, caught-up time, ISR membership
//
// Config.HighWatermarkMoved(p) is called (without locks held) whenever the
// HW of p moves or its role or ISR changes: the broker wakes the acks=all
// produces and fetches parked on p, which re-check.
//
// # What the broker's Fetch handler does for a follower (ReplicaID >= 0)
//
//  1. div, err := p.FollowerFetch(req.ReplicaID, fp.FetchOffset,
//     fp.CurrentLeaderEpoch, fp.LastFetchedEpoch). On err answer its code
//     (NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH,
//     OFFSET_OUT_OF_RANGE).
//  2. div != nil (Fetch v12+, KIP-595 style divergence): answer no records
//     and DivergingEpoch{Epoch: div.Epoch, EndOffset: div.EndOffset}.
//  3. Otherwise read with p.Log().Read(fetchOffset, LogEndOffset, ...):
//     followers read to the log end, not the HW, through the usual
//     sendfile path; the long poll must wake on appends, not only on HW.
//  4. Answer HighWatermark = p.HighWatermark() read after step 1 (the
//     fetch may have moved it) and LogStartOffset = p.Log().LogStartOffset().
//
// FollowerFetch trusts replicaID: a client that claims to be a broker
// would move the HW and the ISR (CVE-2018-1288). The broker must take
// ReplicaID >= 0 only from other brokers (Kafka: ClusterAction on the
// cluster) and treat anything else as a consumer fetch.
//
// Steps 1 and 3 are not atomic with a role change: a fetch validated
// just before a new leader epoch may carry records of that epoch. That
// is harmless (they are this leader's log, and the follower reconciles
// when its own Apply arrives), so no lock spans the read.
//
// OffsetForLeaderEpoch (key 23): for each partition,
// p.EndOffsetForEpoch(CurrentLeaderEpoch, LeaderEpoch) and answer
// LeaderEpoch/EndOffset (-1/-1 is UNDEFINED) or the error's code.
//
// ListOffsets (key 2) from a replica (ReplicaID >= 0, which the fetcher
// sends after OFFSET_OUT_OF_RANGE): timestamp -2 answers the log start,
// -1 should answer the log end as Kafka does for replicas (the HW is
// safe too, it only costs a refetch); p.ValidateLeaderEpoch checks the
// CurrentLeaderEpoch.
//
// The Transport the broker implements is three plain requests to a
// node. The fetcher builds Fetch v12 (topic names and ids both set,
// LastFetchedEpoch), OffsetForLeaderEpoch v4 and ListOffsets v4; a
// transport that sends Fetch at v13+ still works (answers are matched by
// topic id when the name is empty).
//
// # Replication protocol (Kafka's pull model)
//
// The leader appends at its leader epoch (stamped into every batch and
// recorded in the log's leader-epoch-checkpoint when the epoch begins, at
// its log end offset). Followers send Fetch v12 with ReplicaID = NodeID,
// CurrentLeaderEpoch and LastFetchedEpoch; the fetch offset is the
// follower's log end offset (LEO), which the leader records. The HW is the
// smallest LEO over the ISR (the committed ISR plus a pending
// AlterPartition's members, Kafka's "maximal ISR", KIP-497), never goes
// backwards and never passes an ISR member. After a leader change the HW
// does not move until every ISR follower fetched in the new epoch.
//
// A follower that caught up (LEO >= HW and >= the start offset of the
// leader's epoch) is added to the ISR through Config.AlterPartition; one
// not caught up to the leader's LEO for ReplicaLagTimeMax is removed. At
// most one AlterPartition per partition is in flight; one rejected for a
// stale view (FENCED_LEADER_EPOCH, INVALID_UPDATE_VERSION, ...) is retried
// only after the next Apply; one the partition's state cannot resolve
// (INELIGIBLE_REPLICA for a member not unfenced yet,
// OPERATION_NOT_ATTEMPTED) and an unreachable controller are retried
// after FetchBackoff.
//
// On becoming follower a partition first truncates any divergent tail
// (KIP-101/279): OffsetForLeaderEpoch for its latest epoch, truncate to
// min(leader's end offset, own end of that epoch), repeating while the
// leader answers an older epoch the follower does not have, then fetches.
// OFFSET_OUT_OF_RANGE truncates to the leader's end (when ahead) or
// starts over at the leader's log start (when behind); epoch and
// leadership errors back off until the next Apply or FetchBackoff. One
// fetcher goroutine per leader broker serves every partition followed
// from it (num.replica.fetchers = 1).
//
// # Locks
//
// Order: Partition.applyMu → Partition.roleMu → Partition.mu →
// storage.Log's own locks (innermost; see broker/storage);
// Partition.applyMu → Manager.mu → fetcher.mu;
// Partition.roleMu → fetcher.mu (a fetcher records a backoff while
// holding the role it appended under). fetcher.mu is never held while
// a Partition lock is taken.
// roleMu is Kafka's leaderIsrUpdateLock: leader and follower appends and
// truncations hold it shared, Apply exclusively, so no append lands
// under a role it was not checked against. mu guards the small state
// (ISR, follower LEOs, pending AlterPartition) and is never held across
// I/O or a callback. Callbacks (AlterPartition, HighWatermarkMoved) and
// Transport calls run with no lock held.
//
// # Goroutines
//
// The Manager owns: one loop (ISR shrink check every ISRCheckInterval,
// by default ReplicaLagTimeMax/2 as in Kafka, and a HW checkpoint of
// every log every HighWatermarkCheckpointInterval),
// one fetcher per leader being followed, and one goroutine per in-flight
// AlterPartition. Close cancels and waits for all of them; Remove and
// Apply stop a partition's fetching before they return: a request
// already built may still go out, but its answer is dropped (the
// partition's generation moved) and nothing touches the log after they
// return, so the broker may close or delete it.
//
// # Differences from Kafka
//
//   - No fetch sessions (KIP-227): followers send full fetches; a few
//     hundred partitions per leader cost little at this broker's scale.
//   - The HW advances with an ISR below min.insync.replicas (Kafka before
//     ELR, KIP-966); acks=all is refused there, acks=1 data becomes
//     visible.
//   - Leadership and fencing errors from a leader are retried after
//     FetchBackoff rather than parking the partition until the next
//     Apply; Apply still resets it at once.
package replica
