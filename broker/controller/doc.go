// Package controller is the Tributary broker's cluster controller, KRaft's
// role: the cluster metadata (brokers and their liveness, topics with ids,
// partition assignments, leaders, leader and partition epochs, ISR,
// reassignments, topic and dynamic broker configs, producer-id blocks) as a
// log of records replicated by a Raft quorum of controller voters.
//
// # Two layers
//
// The metadata state machine is pure, like broker/group: no sockets, no
// Raft, no clock and no randomness (time, topic ids and placement's random
// start come in as arguments), so every scenario replays the same way and
// is tested directly (decide_test.go).
//
//   - Image is an immutable snapshot of the metadata at a log offset.
//     Readers keep a *Image without locks; nothing reachable from it is
//     ever modified. Helpers: TopicByName, TopicByID, Partition, Broker,
//     Alive, LiveBrokers, AllBrokers, Topics, LedBy, TopicConfig,
//     UncleanElection.
//   - Records (records.go) are the changes: RegisterBroker, FenceBroker,
//     UnfenceBroker, UnregisterBroker, CreateTopic, DeleteTopic,
//     CreatePartitions, PartitionChange (a partition's whole new state),
//     ConfigChange, ProducerIDBlock, Bootstrap. A Raft entry is a batch of
//     them, applied atomically by ApplyBatch(img, offset, recs) (Apply for
//     one). Apply never fails: a record that no longer fits (a change to a
//     deleted topic, a fence of an older incarnation) is a no-op, so every
//     node reaches the same image from the same log. The encoding is JSON,
//     versioned per batch and per record; see EncodeBatch.
//   - Decisions (decide.go, placement.go) are functions over an Image that
//     return the records to propose or a Kafka error (*Error wrapping a
//     tributary.Err*, with Kafka's message; Message(err) gives the text):
//     PlaceReplicas (AdminUtils' round-robin, rack-aware when every broker
//     has broker.rack), CreateTopicRecord(s), CreatePartitionsRecord,
//     DeleteTopicRecord, ConfigChangeRecords, RegisterBrokerRecords,
//     HeartbeatRecords, FenceBrokerRecords, UnfenceBrokerRecords,
//     UnregisterBrokerRecords, ElectLeadersRecords, Imbalance,
//     RebalanceRecords, AlterPartitionRecords, AlterReassignmentsRecords,
//     ListReassignments, AllocateProducerIDsRecord.
//   - Diff(old, new) lists what changed between two images (topics created
//     and deleted, partitions whose state changed, brokers, configs) by
//     pointer comparison, for the broker's reaction to each apply;
//     ParseVoters reads controller.quorum.voters.
//
// The Raft wiring is Node (node.go, ops.go, mux.go): hashicorp/raft with
// raft-boltdb (log and stable store in Dir/raft.db) and a
// FileSnapshotStore (Dir/snapshots, the Image as JSON; Raft snapshots
// every SnapshotThreshold entries and keeps as many trailing ones).
//
// # Rules the decisions follow (Kafka's)
//
//   - A broker registers fenced, with epoch = the offset of its
//     registration; its first heartbeat unfences it. Registering again
//     while the old incarnation is unfenced fences the old one first.
//   - Fencing (no heartbeat for broker.session.timeout.ms, checked by the
//     active controller only) takes the broker out of every ISR, except as
//     the last member, which stays so the partition remembers who holds
//     its data. A partition it led gets the first replica, in assignment
//     order, that is in the ISR and alive; else, when
//     unclean.leader.election.enable is true (topic override, else the
//     dynamic cluster config, else false), the first live replica with an
//     ISR of itself; else no leader (-1).
//   - Unfencing gives the broker every leaderless partition whose ISR holds
//     it (and, with unclean election, those it is a replica of).
//   - Every change of a partition bumps its partition epoch; every leader
//     change bumps its leader epoch.
//   - AlterPartition (ISR change asked by the leader) is rejected with
//     UNKNOWN_TOPIC_ID / UNKNOWN_TOPIC_OR_PARTITION, STALE_BROKER_EPOCH,
//     NOT_LEADER_OR_FOLLOWER (not from the leader), FENCED_LEADER_EPOCH
//     (another leader epoch), INVALID_UPDATE_VERSION (another partition
//     epoch), INVALID_REQUEST (ISR without the leader, duplicates),
//     INELIGIBLE_REPLICA (a member that is not a replica or is fenced).
//   - A reassignment to target sets replicas = target + (old − target),
//     adding = target − old, removing = old − target; it completes when
//     every adding replica is in the ISR (replicas = target, ISR ∩ target,
//     a new leader if the old one was removed). A nil target cancels.
//   - Producer ids go out in blocks of 1000.
//
// # Node API (what the broker calls)
//
//	n, err := controller.Open(controller.Config{NodeID: 1, Voters: map[int32]string{1: "127.0.0.1:9093"},
//	        Listener: ln, Dir: filepath.Join(logDir, "__cluster_metadata-0"), ClusterID: id, Logger: log})
//	defer n.Close()
//	n.Image()                      latest applied image (lock-free to read)
//	n.Subscribe()                  coalesced signal after applies, and a cancel func
//	n.WaitApplied(ctx, offset)     until this node applied offset
//	n.LeaderID(), n.IsLeader()     the active controller (-1 unknown)
//	n.Quorum(ctx)                  DescribeQuorum: leader, term, commit index, voters' log ends
//	n.RegisterBroker(ctx, BrokerInfo) (epoch, error)
//	n.Heartbeat(ctx, id, epoch) (fenced bool, error)
//	n.UnregisterBroker(ctx, id, epoch) error
//	n.CreateTopics(ctx, []TopicSpec) []TopicResult        one per spec, in order
//	n.DeleteTopics(ctx, [][16]byte) []error               one per id
//	n.CreatePartitions(ctx, name, total, assignment, validateOnly) error
//	n.AlterConfigs(ctx, []ConfigChange) error             set/delete, topic or broker ("" = cluster)
//	n.AlterPartition(ctx, AlterPartitionRequest) (*Partition, error)
//	n.ElectLeaders(ctx, unclean, tps or nil) (map[TopicPartition]error, error)
//	n.AlterReassignments(ctx, map[TopicPartition][]int32 (nil = cancel)) (map[TopicPartition]error, error)
//	n.ListReassignments(tps or nil) map[TopicPartition]Reassignment   from the local image
//	n.AllocateProducerIDs(ctx, brokerID, brokerEpoch) (first, count, error)
//
// Every operation may be called on any voter. A follower forwards it to the
// leader; the leader decides it on its latest image (after one Raft
// Barrier per term, so it has everything earlier leaders committed),
// proposes one batch, and answers with the batch's offset; the calling
// node returns once it has applied that offset, so its own Image shows
// the change. While there is no leader, or the one reached is no longer
// leader, the call retries until ctx ends and then fails with an error
// that is both tributary.ErrNotController and ctx's error; it never
// succeeds without a committed entry. Each call carries a token that goes
// into its log entry: a retry after the leader changed mid-operation finds
// the entry if it committed after all and gets the original answer, so it
// applies once (within the last 1024 entries; a retry across a snapshot
// install may still be decided again). Per-item errors
// (CreateTopics, DeleteTopics, ElectLeaders, AlterReassignments) come back
// per item; the broker's validation (topic names, config names and values,
// num.partitions and default.replication.factor) happens before the call.
//
// The broker migrates a single-node data directory with Config.Bootstrap:
// on a Dir without Raft state the node calls it, and if it becomes the
// first leader it proposes the image's topics (give each partition
// Replicas = ISR = [node.id] and its leader epoch), configs and producer-id
// counter as one Bootstrap record. Migrated partitions start leaderless and
// the node's first heartbeat elects it with the next leader epoch.
//
// Config.Listener and Config.Dial are the network seams: a test (or
// brokertest's network partition) wraps them to cut a voter off and heal
// it (partition_test.go shows how).
//
// # Wire
//
// The controller listener carries Raft and the forwarding RPC, told apart
// by the first byte of a connection ('R' Raft, 'C' RPC; see mux.go). The
// RPC is length-prefixed JSON between Tributary voters, not a Kafka API.
//
// # Goroutines and locks
//
// A Node runs: the accept loop, one goroutine per connection (handshake,
// then Raft's handler or the RPC server), and run(), the active
// controller's loop (readiness on a new term, the session check every
// min(HeartbeatInterval/2, SessionTimeout/4), the auto leader rebalance
// every ImbalanceCheckInterval), plus Raft's own. Close first hands
// leadership to another voter if this one leads (a graceful restart costs
// the quorum ~30 ms, a crash an election, ~1 s), then stops Raft, closes
// the listener and every tracked connection, and waits for all of them.
//
// Lock order: Node.op (serialises the active controller's decide →
// propose → apply, and guards the heartbeat times) before Node.mu (the
// current image, apply waiters, subscribers, open connections). Raft's FSM
// goroutine takes only mu, so a proposal waiting under op never blocks it.
package controller
