// Package consumerproto is the protocol plumbing of consumer groups that
// users of the SDK never touch: Kafka's ConsumerProtocol encoding of a
// member's subscription and assignment, and the assignors that run on the
// group's leader. The consumer package uses it for membership and wraps
// the assignors in its small public Assignor interface; the admin package
// uses it to decode the members of a described group.
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
package consumerproto
