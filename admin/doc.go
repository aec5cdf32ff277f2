// Package admin manages a Kafka cluster: topics and partitions, topic and
// broker configs, offsets and records, consumer groups and their offsets
// and lag, leaders, reassignments, ACLs and the cluster description. It is thin
// over package client, which owns connections, version negotiation and
// metadata, and works against any Kafka-compatible cluster.
//
//	a, err := admin.New(admin.SeedBrokers("localhost:9092"))
//	defer a.Close()
//	err = a.CreateTopic(ctx, "orders", 6, 3, map[string]string{"cleanup.policy": "compact"})
//
// # Results and errors
//
// Calls that act on many items (topics, partitions, groups, brokers)
// return one result per item with its own Err, so one failed topic does
// not hide what happened to the others; each result list has FirstErr,
// and most have On or Lookup to find one item. The call's own error is
// set only when nothing could be done at all (no broker answered, the
// context ended, a request-level Kafka error). Item errors wrap the root
// package's Kafka errors, so errors.Is(err, tributary.ErrTopicAlreadyExists)
// works; ErrNoResponse marks an item the broker's answer left out.
//
// # Routing and retries
//
//   - Topic creation and deletion, partition creation, leader election and
//     reassignments go to the controller; an answer of NOT_CONTROLLER
//     refreshes metadata and retries.
//   - ListOffsets and DeleteRecords go to each partition's leader; a
//     partition whose leader moved is retried after a metadata refresh.
//   - Group requests go to the group's coordinator, found with
//     FindCoordinator (batched, v4+, when the broker supports it) and
//     cached; NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS and
//     COORDINATOR_NOT_AVAILABLE forget the cached coordinator and retry.
//     ListGroups asks every broker, since each knows only its own groups.
//   - Broker configs are described and altered at the broker they belong
//     to; topic configs anywhere.
//
// Retries back off as the client's RetryBackoff says and stop after
// RequestRetries attempts or when the context ends.
//
// # Concurrency
//
// A Client is safe for concurrent use. Its only state besides the
// underlying client is the group coordinator cache, guarded by its own
// mutex and never held across I/O. Calls that fan out (per leader, per
// coordinator, per broker) run one goroutine per destination and wait for
// all of them before returning.
//
// # Versions
//
// Requests are sent at the highest version both kmsg and the broker
// support, except OffsetCommit and OffsetFetch, capped at v9 because v10
// names topics by ID.
package admin
