// Package admin manages a Kafka cluster: topics and partitions, topic and
// broker configs, consumer groups with their offsets and lag, records,
// leaders, reassignments, ACLs and the cluster description. It works
// against any Kafka-compatible cluster.
//
// # 1. Create an admin client
//
//	a, err := admin.New(admin.SeedBrokers("kafka-1:9092", "kafka-2:9092"))
//	if err != nil { ... }
//	defer a.Close()
//
// New checks the options and does not connect. ClientOptions passes
// client options (TLS, SASL, ClientID); WithClient shares a client.Client
// with a producer or consumer, and Close then leaves it open.
//
// # 2. Call it
//
// Every call takes a ctx and returns when it ends. The common ones:
//
//	err = a.CreateTopic(ctx, "orders", 6, 3, map[string]string{"retention.ms": "86400000"})
//	topics, err := a.DescribeTopics(ctx, "orders") // partitions, leaders, configs
//	lags, err := a.Lag(ctx, "billing")             // how far behind a group is
//	plan, err := a.ResetGroupOffsets(ctx, "billing", admin.ShiftBy(-100), []string{"orders"})
//
// # 3. Read results and errors
//
// Calls that act on many items (topics, partitions, groups, brokers)
// return one result per item with its own Err, so one failed topic does
// not hide what happened to the others; each result list has FirstErr,
// and most have On or Lookup to find one item. The call's own error is set
// only when nothing could be done at all: no broker answered (it wraps
// client.ErrConnection, and names the brokers tried when none was
// reachable), the ctx ended, or a request-level Kafka error. Item errors
// wrap the root package's Kafka errors, so errors.Is(err,
// tributary.ErrTopicAlreadyExists) works; ErrNoResponse marks an item the
// broker's answer left out.
//
// Requests go where Kafka requires (the controller, a partition's leader,
// a group's coordinator); when that broker moved or is loading, the call
// refreshes metadata and retries, with the client's RetryBackoff, up to
// RequestRetries times or until the ctx ends.
package admin

// Notes for contributors (not part of the package documentation).
//
// Routing and retries:
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
//   - Connection failures are retried (retriableTransport), except
//     client.ErrUnreachable: with no broker reachable at all, retries only
//     delayed the answer by tens of seconds.
//
// Concurrency: a Client is safe for concurrent use. Its only state besides
// the underlying client is the group coordinator cache, guarded by its own
// mutex and never held across I/O. Calls that fan out (per leader, per
// coordinator, per broker) run one goroutine per destination and wait for
// all of them before returning.
//
// Versions: requests are sent at the highest version both kmsg and the
// broker support, except OffsetCommit and OffsetFetch, capped at v9
// because v10 names topics by ID.
