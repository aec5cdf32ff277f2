package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/client"
	"github.com/tributary/tributary/internal/consumerproto"
)

// ListedGroup is one group as ListGroups shows it.
type ListedGroup struct {
	Group string
	// ProtocolType is "consumer" for consumer groups, "" for groups that
	// only commit offsets, "connect" for Connect workers, ...
	ProtocolType string
	// State is e.g. "Stable", "Empty", "PreparingRebalance" (ListGroups v4+;
	// "" from older brokers).
	State string
	// Coordinator is the node that answered for the group.
	Coordinator int32
}

// ListedGroups are groups sorted by name.
type ListedGroups []ListedGroup

// Names returns the group names in order.
func (ls ListedGroups) Names() []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Group
	}
	return out
}

// ListGroups lists the groups of every broker (each broker knows only the
// groups it coordinates), keeping those in one of states if any are given
// (e.g. "Stable", "Empty"; filtering needs ListGroups v4+). If some broker
// cannot answer, the groups of the others are returned with an error
// naming the brokers that failed.
func (a *Client) ListGroups(ctx context.Context, states ...string) (ListedGroups, error) {
	meta, err := a.metadata(ctx, []string{})
	if err != nil {
		return nil, fmt.Errorf("admin: list groups: %w", err)
	}
	var (
		mu   sync.Mutex
		out  ListedGroups
		errs []error
		wg   sync.WaitGroup
	)
	nodes := make([]int32, 0, len(meta.Brokers))
	for _, b := range meta.Brokers {
		nodes = append(nodes, b.NodeID)
	}
	a.knowBrokers(ctx, nodes)
	for _, b := range meta.Brokers {
		wg.Go(func() {
			req := kmsg.NewPtrListGroupsRequest()
			req.StatesFilter = states
			var r kmsg.Request = req
			if len(states) > 0 {
				r = client.Limit(req, 4, req.MaxVersion())
			}
			raw, err := a.cl.RequestBroker(ctx, b.NodeID, r)
			if err == nil {
				if resp := raw.(*kmsg.ListGroupsResponse); resp.ErrorCode != 0 {
					err = kafkaErr(resp.ErrorCode, nil)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("broker %d: %w", b.NodeID, err))
				return
			}
			for _, g := range raw.(*kmsg.ListGroupsResponse).Groups {
				out = append(out, ListedGroup{Group: g.Group, ProtocolType: g.ProtocolType, State: g.GroupState, Coordinator: b.NodeID})
			}
		})
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	if len(errs) > 0 {
		return out, fmt.Errorf("admin: list groups: %w", errors.Join(errs...))
	}
	return out, nil
}

// GroupMember is one member of a described group.
type GroupMember struct {
	MemberID   string
	InstanceID string // "" without static membership
	ClientID   string
	ClientHost string
	// Subscription and Assignment are decoded for groups of protocol type
	// "consumer"; nil otherwise or if they could not be decoded (then
	// DecodeErr says why).
	Subscription *consumerproto.Subscription
	Assignment   *consumerproto.Assignment
	DecodeErr    error
	// RawMetadata and RawAssignment are the member's JoinGroup metadata
	// and SyncGroup assignment as the coordinator holds them.
	RawMetadata   []byte
	RawAssignment []byte
}

// DescribedGroup is one group as DescribeGroups shows it.
type DescribedGroup struct {
	Group string
	// Coordinator is the node that answered.
	Coordinator int32
	// State is e.g. "Stable", "Empty", or "Dead" for a group that does not
	// exist (older brokers; v6+ answer GROUP_ID_NOT_FOUND instead).
	State        string
	ProtocolType string
	// Protocol is the chosen assignor, e.g. "range", "cooperative-sticky".
	Protocol string
	Members  []GroupMember
	Err      error
}

// AssignedPartitions returns topic → partitions assigned to any member
// (consumer groups only).
func (d DescribedGroup) AssignedPartitions() map[string][]int32 {
	out := make(map[string][]int32)
	for _, m := range d.Members {
		if m.Assignment == nil {
			continue
		}
		for t, ps := range m.Assignment.Partitions {
			out[t] = append(out[t], ps...)
		}
	}
	for t := range out {
		slices.Sort(out[t])
	}
	return out
}

// DescribedGroups are DescribeGroups' results in request order.
type DescribedGroups []DescribedGroup

// FirstErr returns the first failed group's error, naming it, or nil.
func (ds DescribedGroups) FirstErr() error {
	return firstErr(ds, func(d DescribedGroup) (string, error) { return d.Group, d.Err })
}

// On returns the described group.
func (ds DescribedGroups) On(group string) (DescribedGroup, bool) {
	return lookup(ds, group, func(d DescribedGroup) string { return d.Group })
}

// DescribeGroups describes groups, asking each group's coordinator, and
// decodes consumer groups' subscriptions and assignments.
func (a *Client) DescribeGroups(ctx context.Context, groups ...string) (DescribedGroups, error) {
	out, err := askCoordinators(ctx, a, groups, func(gs []string) kmsg.Request {
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Groups = gs
		return req
	}, func(node int32, raw kmsg.Response) (as []groupAnswer[DescribedGroup]) {
		for _, g := range raw.(*kmsg.DescribeGroupsResponse).Groups {
			as = append(as, groupAnswer[DescribedGroup]{g.Group, g.ErrorCode, describedGroup(node, g)})
		}
		return as
	}, func(g string, err error) DescribedGroup {
		return DescribedGroup{Group: g, Coordinator: -1, Err: err}
	})
	if err != nil {
		return nil, fmt.Errorf("admin: describe groups: %w", err)
	}
	return out, nil
}

// groupAnswer is one group's part of a coordinator's response.
type groupAnswer[R any] struct {
	group  string
	code   int16
	answer R
}

// askCoordinators sends request(gs) to the coordinators of groups (see
// forGroups) and returns, in the order of groups, each group's answer as
// read from the response by answers, or else missing(group, why). A group
// whose coordinator moved is asked again; answers for groups not asked
// for are ignored. No groups give nil.
func askCoordinators[R any](ctx context.Context, a *Client, groups []string, request func(gs []string) kmsg.Request,
	answers func(node int32, raw kmsg.Response) []groupAnswer[R], missing func(group string, err error) R) ([]R, error) {
	return askCoordinatorsOf(ctx, a, 0, groups, request, answers, missing)
}

// askCoordinatorsOf is askCoordinators for coordinators of type typ (0
// groups, 1 transactional ids).
func askCoordinatorsOf[R any](ctx context.Context, a *Client, typ int8, groups []string, request func(gs []string) kmsg.Request,
	answers func(node int32, raw kmsg.Response) []groupAnswer[R], missing func(group string, err error) R) ([]R, error) {
	if len(groups) == 0 {
		return nil, nil
	}
	var mu sync.Mutex
	got := make(map[string]R, len(groups))
	failed, err := a.forCoordinators(ctx, typ, groups, func(ctx context.Context, node int32, gs []string) ([]string, error) {
		raw, err := a.cl.RequestBroker(ctx, node, request(gs))
		if err != nil {
			return nil, err
		}
		var retry []string
		mu.Lock()
		defer mu.Unlock()
		for _, g := range answers(node, raw) {
			if !slices.Contains(gs, g.group) {
				continue
			}
			if coordinatorMoved(g.code) {
				retry = append(retry, g.group)
				continue
			}
			got[g.group] = g.answer
		}
		return retry, nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]R, len(groups))
	for i, g := range groups {
		r, ok := got[g]
		switch {
		case ok:
		case failed[g] != nil:
			r = missing(g, failed[g])
		default:
			r = missing(g, ErrNoResponse)
		}
		out[i] = r
	}
	return out, nil
}

func describedGroup(node int32, g kmsg.DescribeGroupsResponseGroup) DescribedGroup {
	d := DescribedGroup{
		Group: g.Group, Coordinator: node, State: g.State,
		ProtocolType: g.ProtocolType, Protocol: g.Protocol,
		Err: kafkaErr(g.ErrorCode, g.ErrorMessage),
	}
	for _, m := range g.Members {
		gm := GroupMember{
			MemberID: m.MemberID, ClientID: m.ClientID, ClientHost: m.ClientHost,
			RawMetadata: m.ProtocolMetadata, RawAssignment: m.MemberAssignment,
		}
		if m.InstanceID != nil {
			gm.InstanceID = *m.InstanceID
		}
		if g.ProtocolType == consumerproto.ProtocolType {
			if len(m.ProtocolMetadata) > 0 {
				s, err := consumerproto.DecodeSubscription(m.ProtocolMetadata)
				if err != nil {
					gm.DecodeErr = err
				} else {
					gm.Subscription = &s
				}
			}
			as, err := consumerproto.DecodeAssignment(m.MemberAssignment)
			if err != nil {
				gm.DecodeErr = errors.Join(gm.DecodeErr, err)
			} else {
				gm.Assignment = &as
			}
		}
		d.Members = append(d.Members, gm)
	}
	return d
}

// DeleteGroupResult is the outcome for one group of DeleteGroups.
type DeleteGroupResult struct {
	Group string
	Err   error
}

// DeleteGroupResults are DeleteGroups' results in request order.
type DeleteGroupResults []DeleteGroupResult

// FirstErr returns the first failed group's error, naming it, or nil.
func (rs DeleteGroupResults) FirstErr() error {
	return firstErr(rs, func(r DeleteGroupResult) (string, error) { return r.Group, r.Err })
}

// DeleteGroups deletes groups and their committed offsets, asking each
// group's coordinator. A group with members fails alone with
// tributary.ErrNonEmptyGroup, a missing one with tributary.ErrGroupIdNotFound.
func (a *Client) DeleteGroups(ctx context.Context, groups ...string) (DeleteGroupResults, error) {
	out, err := askCoordinators(ctx, a, groups, func(gs []string) kmsg.Request {
		req := kmsg.NewPtrDeleteGroupsRequest()
		req.Groups = gs
		return req
	}, func(_ int32, raw kmsg.Response) (as []groupAnswer[DeleteGroupResult]) {
		for _, g := range raw.(*kmsg.DeleteGroupsResponse).Groups {
			r := DeleteGroupResult{Group: g.Group, Err: kafkaErr(g.ErrorCode, g.ErrorMessage)}
			as = append(as, groupAnswer[DeleteGroupResult]{g.Group, g.ErrorCode, r})
		}
		return as
	}, func(g string, err error) DeleteGroupResult {
		return DeleteGroupResult{Group: g, Err: err}
	})
	if err != nil {
		return nil, fmt.Errorf("admin: delete groups: %w", err)
	}
	return out, nil
}

// PartitionOffset is an offset of one partition, as committed by a group.
type PartitionOffset struct {
	Topic     string
	Partition int32
	// At is the offset: the next record the group will consume.
	At int64
	// LeaderEpoch is the epoch of the record before At, -1 if unknown.
	// Zero is a real epoch: set -1 (or use NewPartitionOffset) when
	// committing an offset whose epoch you do not know.
	LeaderEpoch int32
	Metadata    string
}

// NewPartitionOffset returns the offset at of one partition, with an
// unknown leader epoch and no metadata.
func NewPartitionOffset(topic string, partition int32, at int64) PartitionOffset {
	return PartitionOffset{Topic: topic, Partition: partition, At: at, LeaderEpoch: -1}
}

// OffsetResult is a PartitionOffset with its own outcome.
type OffsetResult struct {
	PartitionOffset
	Err error
}

// OffsetResults are results sorted by topic and partition.
type OffsetResults []OffsetResult

// FirstErr returns the first failed partition's error, naming it, or nil.
func (rs OffsetResults) FirstErr() error {
	return firstErr(rs, func(r OffsetResult) (string, error) { return fmt.Sprintf("%s[%d]", r.Topic, r.Partition), r.Err })
}

// Lookup returns the result for one partition.
func (rs OffsetResults) Lookup(topic string, partition int32) (OffsetResult, bool) {
	return lookupPartition(rs, topic, partition, func(r OffsetResult) (string, int32) { return r.Topic, r.Partition })
}

// Offsets returns the offsets of the results without an error.
func (rs OffsetResults) Offsets() []PartitionOffset {
	var out []PartitionOffset
	for _, r := range rs {
		if r.Err == nil {
			out = append(out, r.PartitionOffset)
		}
	}
	return out
}

func sortOffsetResults(rs OffsetResults) {
	sort.Slice(rs, func(i, j int) bool { return tpLess(rs[i].Topic, rs[i].Partition, rs[j].Topic, rs[j].Partition) })
}

// FetchOffsets returns the offsets group has committed, for every
// partition it committed to; none, without error, for a group that does
// not exist (GROUP_ID_NOT_FOUND is read as that). A group-level failure (for example
// tributary.ErrGroupAuthorizationFailed) is returned as the error.
func (a *Client) FetchOffsets(ctx context.Context, group string) (OffsetResults, error) {
	var out OffsetResults
	err := a.forGroup(ctx, group, func(ctx context.Context, node int32, _ []string) ([]string, error) {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Group = group // v0-v7; nil Topics means all (v2+)
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = group // v8+
		req.Groups = append(req.Groups, rg)
		// v10 names topics by ID, which this package does not track.
		raw, err := a.cl.RequestBroker(ctx, node, client.Limit(req, 2, 9))
		if err != nil {
			return nil, err
		}
		resp := raw.(*kmsg.OffsetFetchResponse)
		code := resp.ErrorCode
		type part = kmsg.OffsetFetchResponseGroupTopicPartition
		var topics []struct {
			name  string
			parts []part
		}
		if resp.Version >= 8 {
			code = tributary.ErrNotCoordinator.Code // unless our group is there
			for _, g := range resp.Groups {
				if g.Group != group {
					continue
				}
				code = g.ErrorCode
				for _, t := range g.Topics {
					topics = append(topics, struct {
						name  string
						parts []part
					}{t.Topic, t.Partitions})
				}
			}
		} else {
			for _, t := range resp.Topics {
				ps := make([]part, len(t.Partitions))
				for i, p := range t.Partitions {
					ps[i] = part{Partition: p.Partition, Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, Metadata: p.Metadata, ErrorCode: p.ErrorCode}
				}
				topics = append(topics, struct {
					name  string
					parts []part
				}{t.Topic, ps})
			}
		}
		if coordinatorMoved(code) {
			return []string{group}, nil
		}
		if code == tributary.ErrGroupIdNotFound.Code {
			out = out[:0] // Kafka answers an unknown group with no offsets; some brokers with this error
			return nil, nil
		}
		if code != 0 {
			return nil, kafkaErr(code, nil)
		}
		out = out[:0]
		for _, t := range topics {
			for _, p := range t.parts {
				if coordinatorMoved(p.ErrorCode) {
					return []string{group}, nil
				}
				if p.Offset < 0 && p.ErrorCode == 0 {
					continue // listed but nothing committed
				}
				r := OffsetResult{PartitionOffset: PartitionOffset{Topic: t.name, Partition: p.Partition, At: p.Offset, LeaderEpoch: p.LeaderEpoch}, Err: kafkaErr(p.ErrorCode, nil)}
				if resp.Version < 5 {
					r.LeaderEpoch = -1
				}
				if p.Metadata != nil {
					r.Metadata = *p.Metadata
				}
				out = append(out, r)
			}
		}
		return nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("admin: fetch offsets of group %q: %w", group, err)
	}
	sortOffsetResults(out)
	return out, nil
}

// CommitOffsets commits offsets for group as an admin would (Java:
// alterConsumerGroupOffsets): with generation -1 and no member id, which
// the coordinator accepts only while the group has no active members
// (else tributary.ErrUnknownMemberId or similar, per partition). Each
// partition has its own outcome; a failure to reach the coordinator is
// returned as the error.
func (a *Client) CommitOffsets(ctx context.Context, group string, offsets ...PartitionOffset) (OffsetResults, error) {
	if len(offsets) == 0 {
		return nil, nil
	}
	var out OffsetResults
	err := a.forGroup(ctx, group, func(ctx context.Context, node int32, _ []string) ([]string, error) {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group = group
		req.Generation = -1
		req.RetentionTimeMillis = -1
		idx := make(map[string]int)
		for _, o := range offsets {
			i, ok := idx[o.Topic]
			if !ok {
				i = len(req.Topics)
				idx[o.Topic] = i
				rt := kmsg.NewOffsetCommitRequestTopic()
				rt.Topic = o.Topic
				req.Topics = append(req.Topics, rt)
			}
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Partition = o.Partition
			rp.Offset = o.At
			rp.LeaderEpoch = o.LeaderEpoch
			rp.Timestamp = -1
			rp.Metadata = kmsg.StringPtr(o.Metadata)
			req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
		}
		// v10 names topics by ID, which this package does not track.
		raw, err := a.cl.RequestBroker(ctx, node, client.Limit(req, 2, 9))
		if err != nil {
			return nil, err
		}
		resp := raw.(*kmsg.OffsetCommitResponse)
		codes := make(map[tributary.TopicPartition]int16)
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if coordinatorMoved(p.ErrorCode) {
					return []string{group}, nil
				}
				codes[tributary.TopicPartition{Topic: t.Topic, Partition: p.Partition}] = p.ErrorCode
			}
		}
		out = make(OffsetResults, len(offsets))
		for i, o := range offsets {
			out[i] = OffsetResult{PartitionOffset: o, Err: ErrNoResponse}
			if c, ok := codes[tributary.TopicPartition{Topic: o.Topic, Partition: o.Partition}]; ok {
				out[i].Err = kafkaErr(c, nil)
			}
		}
		return nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("admin: commit offsets of group %q: %w", group, err)
	}
	sortOffsetResults(out)
	return out, nil
}

// PartitionResult is the outcome for one partition of a call that returns
// nothing else.
type PartitionResult struct {
	Topic     string
	Partition int32
	Err       error
}

// PartitionResults are results sorted by topic and partition.
type PartitionResults []PartitionResult

// FirstErr returns the first failed partition's error, naming it, or nil.
func (rs PartitionResults) FirstErr() error {
	return firstErr(rs, func(r PartitionResult) (string, error) { return fmt.Sprintf("%s[%d]", r.Topic, r.Partition), r.Err })
}

// Lookup returns the result for one partition.
func (rs PartitionResults) Lookup(topic string, partition int32) (PartitionResult, bool) {
	return lookupPartition(rs, topic, partition, func(r PartitionResult) (string, int32) { return r.Topic, r.Partition })
}

// DeleteGroupOffsets deletes group's committed offsets for the given
// partitions (topic → partitions) with OffsetDelete (KIP-496). A partition
// of a topic the group is still subscribed to fails with
// tributary.ErrGroupSubscribedToTopic; group-level failures (for example
// tributary.ErrGroupIdNotFound) are returned as the error.
func (a *Client) DeleteGroupOffsets(ctx context.Context, group string, partitions map[string][]int32) (PartitionResults, error) {
	if len(partitions) == 0 {
		return nil, nil
	}
	var out PartitionResults
	err := a.forGroup(ctx, group, func(ctx context.Context, node int32, _ []string) ([]string, error) {
		req := kmsg.NewPtrOffsetDeleteRequest()
		req.Group = group
		for _, t := range sortedKeys(partitions) {
			rt := kmsg.NewOffsetDeleteRequestTopic()
			rt.Topic = t
			for _, p := range partitions[t] {
				rp := kmsg.NewOffsetDeleteRequestTopicPartition()
				rp.Partition = p
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		raw, err := a.cl.RequestBroker(ctx, node, req)
		if err != nil {
			return nil, err
		}
		resp := raw.(*kmsg.OffsetDeleteResponse)
		if coordinatorMoved(resp.ErrorCode) {
			return []string{group}, nil
		}
		if resp.ErrorCode != 0 {
			return nil, kafkaErr(resp.ErrorCode, nil)
		}
		codes := make(map[tributary.TopicPartition]int16)
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				codes[tributary.TopicPartition{Topic: t.Topic, Partition: p.Partition}] = p.ErrorCode
			}
		}
		out = out[:0]
		for _, t := range sortedKeys(partitions) {
			for _, p := range partitions[t] {
				r := PartitionResult{Topic: t, Partition: p, Err: ErrNoResponse}
				if c, ok := codes[tributary.TopicPartition{Topic: t, Partition: p}]; ok {
					r.Err = kafkaErr(c, nil)
				}
				out = append(out, r)
			}
		}
		return nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("admin: delete offsets of group %q: %w", group, err)
	}
	sort.Slice(out, func(i, j int) bool { return tpLess(out[i].Topic, out[i].Partition, out[j].Topic, out[j].Partition) })
	return out, nil
}
