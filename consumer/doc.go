// Package consumer is Tributary's Kafka consumer.
//
// This first part holds the consumer-group assignors and the encoding of
// Kafka's ConsumerProtocol; the consumer itself (group membership over the
// classic protocol, eager and cooperative, manual assignment, fetching,
// commits, seek, pause and resume) comes next and builds on them.
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
