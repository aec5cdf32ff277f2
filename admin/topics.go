package admin

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/client"
)

// ErrNoResponse is an item's error when the broker's answer left the item
// out: the request went through, but nothing says what happened to it.
var ErrNoResponse = errors.New("admin: the broker's response does not mention this item")

// TopicID is a topic's UUID (KIP-516); all zero when the broker does not
// report one.
type TopicID [16]byte

// String returns the ID as Kafka prints it: URL-safe base64 without padding.
func (id TopicID) String() string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// IsZero reports whether the ID is unset.
func (id TopicID) IsZero() bool { return id == TopicID{} }

// NewTopic describes a topic to create.
type NewTopic struct {
	Name string
	// Partitions is the partition count; -1 leaves it to the broker's
	// num.partitions. Zero is invalid (the broker answers INVALID_PARTITIONS).
	Partitions int32
	// ReplicationFactor is the replica count; -1 leaves it to the broker's
	// default.replication.factor. Zero is invalid.
	ReplicationFactor int16
	// Configs are topic config overrides, e.g. "cleanup.policy": "compact".
	Configs map[string]string
	// Assignment optionally places replicas by hand: partition → broker
	// ids, the first being the preferred leader. With it, Partitions and
	// ReplicationFactor must be -1.
	Assignment map[int32][]int32
}

// CreateTopicResult is the outcome for one topic of CreateTopics.
type CreateTopicResult struct {
	Topic string
	// ID is the new topic's ID (CreateTopics v7+, zero before).
	ID TopicID
	// Partitions and ReplicationFactor are what the broker created (or,
	// with ValidateOnly, would create); -1 if the broker does not say
	// (CreateTopics before v5).
	Partitions        int32
	ReplicationFactor int16
	Err               error
}

// CreateTopicResults are CreateTopics' results in request order.
type CreateTopicResults []CreateTopicResult

// FirstErr returns the first failed topic's error, naming the topic, or nil.
func (rs CreateTopicResults) FirstErr() error {
	return firstErr(rs, func(r CreateTopicResult) (string, error) { return r.Topic, r.Err })
}

// On returns the result for topic.
func (rs CreateTopicResults) On(topic string) (CreateTopicResult, bool) {
	return lookup(rs, topic, func(r CreateTopicResult) string { return r.Topic })
}

// CreateTopic creates one topic with partitions partitions (-1: broker
// default), replicationFactor replicas (-1: broker default) and configs
// overrides (may be nil). The error wraps a Kafka error such as
// tributary.ErrTopicAlreadyExists.
func (a *Client) CreateTopic(ctx context.Context, name string, partitions int32, replicationFactor int16, configs map[string]string) error {
	rs, err := a.CreateTopics(ctx, []NewTopic{{Name: name, Partitions: partitions, ReplicationFactor: replicationFactor, Configs: configs}})
	if err != nil {
		return err
	}
	return rs.FirstErr()
}

// CreateTopics creates topics in one request to the controller. The error
// is set only when no answer came back at all; each topic's outcome is in
// its result. Honours ValidateOnly.
func (a *Client) CreateTopics(ctx context.Context, topics []NewTopic, opts ...CallOpt) (CreateTopicResults, error) {
	co := callOpts(opts)
	if len(topics) == 0 {
		return nil, nil
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = a.timeoutMillis()
	req.ValidateOnly = co.validateOnly
	for _, t := range topics {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic = t.Name
		rt.NumPartitions = t.Partitions
		rt.ReplicationFactor = t.ReplicationFactor
		for _, p := range sortedKeys(t.Assignment) {
			ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			ra.Partition = p
			ra.Replicas = t.Assignment[p]
			rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
		}
		for _, k := range sortedKeys(t.Configs) {
			rc := kmsg.NewCreateTopicsRequestTopicConfig()
			rc.Name = k
			rc.Value = kmsg.StringPtr(t.Configs[k])
			rt.Configs = append(rt.Configs, rc)
		}
		req.Topics = append(req.Topics, rt)
	}
	raw, err := a.controllerRequest(ctx, req, func(r kmsg.Response) bool {
		return allOf(r.(*kmsg.CreateTopicsResponse).Topics, func(t kmsg.CreateTopicsResponseTopic) bool {
			return t.ErrorCode == tributary.ErrNotController.Code
		})
	})
	if err != nil {
		return nil, fmt.Errorf("admin: create topics: %w", err)
	}
	resp := raw.(*kmsg.CreateTopicsResponse)
	out := make(CreateTopicResults, len(topics))
	for i, t := range topics {
		out[i] = CreateTopicResult{Topic: t.Name, Partitions: -1, ReplicationFactor: -1, Err: ErrNoResponse}
		for _, rt := range resp.Topics {
			if rt.Topic != t.Name {
				continue
			}
			out[i].ID = rt.TopicID
			out[i].Err = kafkaErr(rt.ErrorCode, rt.ErrorMessage)
			if resp.Version >= 5 {
				out[i].Partitions, out[i].ReplicationFactor = rt.NumPartitions, rt.ReplicationFactor
			}
			break
		}
	}
	return out, nil
}

// DeleteTopicResult is the outcome for one topic of DeleteTopics.
type DeleteTopicResult struct {
	Topic string
	Err   error
}

// DeleteTopicResults are DeleteTopics' results in request order.
type DeleteTopicResults []DeleteTopicResult

// FirstErr returns the first failed topic's error, naming the topic, or nil.
func (rs DeleteTopicResults) FirstErr() error {
	return firstErr(rs, func(r DeleteTopicResult) (string, error) { return r.Topic, r.Err })
}

// DeleteTopics deletes topics by name in one request to the controller.
// The error is set only when no answer came back; a topic that does not
// exist fails alone with tributary.ErrUnknownTopicOrPartition.
func (a *Client) DeleteTopics(ctx context.Context, topics ...string) (DeleteTopicResults, error) {
	if len(topics) == 0 {
		return nil, nil
	}
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TimeoutMillis = a.timeoutMillis()
	req.TopicNames = topics    // v0-v5
	for _, t := range topics { // v6+
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	raw, err := a.controllerRequest(ctx, req, func(r kmsg.Response) bool {
		return allOf(r.(*kmsg.DeleteTopicsResponse).Topics, func(t kmsg.DeleteTopicsResponseTopic) bool {
			return t.ErrorCode == tributary.ErrNotController.Code
		})
	})
	if err != nil {
		return nil, fmt.Errorf("admin: delete topics: %w", err)
	}
	resp := raw.(*kmsg.DeleteTopicsResponse)
	out := make(DeleteTopicResults, len(topics))
	for i, t := range topics {
		out[i] = DeleteTopicResult{Topic: t, Err: ErrNoResponse}
		for _, rt := range resp.Topics {
			if rt.Topic != nil && *rt.Topic == t {
				out[i].Err = kafkaErr(rt.ErrorCode, rt.ErrorMessage)
				break
			}
		}
	}
	return out, nil
}

// TopicListing is one topic as ListTopics shows it.
type TopicListing struct {
	Topic    string
	ID       TopicID
	Internal bool
	// Partitions is the partition count.
	Partitions int
	// ReplicationFactor is partition 0's replica count (-1 if unknown).
	ReplicationFactor int
	Err               error
}

// TopicListings are topics sorted by name.
type TopicListings []TopicListing

// Names returns the topic names in order.
func (ls TopicListings) Names() []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Topic
	}
	return out
}

// ListTopics lists every topic in the cluster, internal ones included
// (see TopicListing.Internal), sorted by name.
func (a *Client) ListTopics(ctx context.Context) (TopicListings, error) {
	resp, err := a.metadata(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("admin: list topics: %w", err)
	}
	var out TopicListings
	for _, t := range resp.Topics {
		if t.Topic == nil {
			continue
		}
		l := TopicListing{Topic: *t.Topic, ID: t.TopicID, Internal: t.IsInternal, Partitions: len(t.Partitions), ReplicationFactor: -1, Err: kafkaErr(t.ErrorCode, nil)}
		for _, p := range t.Partitions {
			if p.Partition == 0 {
				l.ReplicationFactor = len(p.Replicas)
			}
		}
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Topic < out[j].Topic })
	return out, nil
}

// PartitionDetail is one partition as metadata describes it.
type PartitionDetail struct {
	Partition int32
	// Leader is the leader's node id, -1 while there is none.
	Leader int32
	// LeaderEpoch is -1 when the broker does not report epochs.
	LeaderEpoch int32
	Replicas    []int32
	ISR         []int32
	Offline     []int32
	Err         error
}

// TopicDetail is one topic as DescribeTopics shows it.
type TopicDetail struct {
	Topic    string
	ID       TopicID
	Internal bool
	// Partitions sorted by partition id.
	Partitions []PartitionDetail
	// Configs are the topic's configs from DescribeConfigs, sorted by name.
	Configs []Config
	// Err is the topic's error, e.g. tributary.ErrUnknownTopicOrPartition,
	// or the reason its configs could not be described.
	Err error
}

// TopicDetails are DescribeTopics' results, in request order (sorted by
// name when all topics were described).
type TopicDetails []TopicDetail

// FirstErr returns the first failed topic's error, naming the topic, or nil.
func (ds TopicDetails) FirstErr() error {
	return firstErr(ds, func(d TopicDetail) (string, error) { return d.Topic, d.Err })
}

// On returns the detail for topic.
func (ds TopicDetails) On(topic string) (TopicDetail, bool) {
	return lookup(ds, topic, func(d TopicDetail) string { return d.Topic })
}

// DescribeTopics describes topics (every topic if none are named): their
// partitions, leaders, leader epochs, replicas, ISR, offline replicas and
// ID from Metadata, and their configs from DescribeConfigs. A topic that
// does not exist fails alone.
func (a *Client) DescribeTopics(ctx context.Context, topics ...string) (TopicDetails, error) {
	if len(topics) == 0 {
		topics = nil // all
	}
	resp, err := a.metadata(ctx, topics)
	if err != nil {
		return nil, fmt.Errorf("admin: describe topics: %w", err)
	}
	byName := make(map[string]*kmsg.MetadataResponseTopic, len(resp.Topics))
	for i := range resp.Topics {
		if t := &resp.Topics[i]; t.Topic != nil {
			byName[*t.Topic] = t
		}
	}
	if len(topics) == 0 {
		topics = sortedKeys(byName)
	}
	out := make(TopicDetails, len(topics))
	var exist []string
	for i, name := range topics {
		d := TopicDetail{Topic: name, Err: ErrNoResponse}
		if t := byName[name]; t != nil {
			d.ID, d.Internal, d.Err = t.TopicID, t.IsInternal, kafkaErr(t.ErrorCode, nil)
			for _, p := range t.Partitions {
				d.Partitions = append(d.Partitions, PartitionDetail{
					Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
					Replicas: p.Replicas, ISR: p.ISR, Offline: p.OfflineReplicas,
					Err: kafkaErr(p.ErrorCode, nil),
				})
			}
			sort.Slice(d.Partitions, func(i, j int) bool { return d.Partitions[i].Partition < d.Partitions[j].Partition })
		}
		if d.Err == nil {
			exist = append(exist, name)
		}
		out[i] = d
	}
	if len(exist) > 0 {
		cfgs, err := a.DescribeTopicConfigs(ctx, exist...)
		for i := range out {
			if out[i].Err != nil {
				continue
			}
			if err != nil {
				out[i].Err = fmt.Errorf("describe configs: %w", err)
				continue
			}
			if rc, ok := cfgs.On(out[i].Topic); ok {
				out[i].Configs, out[i].Err = rc.Configs, rc.Err
			}
		}
	}
	return out, nil
}

// CreatePartitionsResult is the outcome for one topic of CreatePartitions.
type CreatePartitionsResult struct {
	Topic string
	Err   error
}

// CreatePartitionsResults are CreatePartitions' results in request order.
type CreatePartitionsResults []CreatePartitionsResult

// FirstErr returns the first failed topic's error, naming the topic, or nil.
func (rs CreatePartitionsResults) FirstErr() error {
	return firstErr(rs, func(r CreatePartitionsResult) (string, error) { return r.Topic, r.Err })
}

// CreatePartitions grows each topic to total partitions; the broker places
// the new replicas. Partitions only grow: a total at or below the current
// count fails with tributary.ErrInvalidPartitions. Honours ValidateOnly.
func (a *Client) CreatePartitions(ctx context.Context, total int32, topics []string, opts ...CallOpt) (CreatePartitionsResults, error) {
	co := callOpts(opts)
	if len(topics) == 0 {
		return nil, nil
	}
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.TimeoutMillis = a.timeoutMillis()
	req.ValidateOnly = co.validateOnly
	for _, t := range topics {
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic = t
		rt.Count = total
		req.Topics = append(req.Topics, rt)
	}
	raw, err := a.controllerRequest(ctx, req, func(r kmsg.Response) bool {
		return allOf(r.(*kmsg.CreatePartitionsResponse).Topics, func(t kmsg.CreatePartitionsResponseTopic) bool {
			return t.ErrorCode == tributary.ErrNotController.Code
		})
	})
	if err != nil {
		return nil, fmt.Errorf("admin: create partitions: %w", err)
	}
	resp := raw.(*kmsg.CreatePartitionsResponse)
	out := make(CreatePartitionsResults, len(topics))
	for i, t := range topics {
		out[i] = CreatePartitionsResult{Topic: t, Err: ErrNoResponse}
		for _, rt := range resp.Topics {
			if rt.Topic == t {
				out[i].Err = kafkaErr(rt.ErrorCode, rt.ErrorMessage)
				break
			}
		}
	}
	return out, nil
}

// metadata issues a Metadata request for topics (all if nil, none if
// empty) without
// touching the client's cache or its tracked topics, so describing a
// topic does not make the client refresh it forever.
func (a *Client) metadata(ctx context.Context, topics []string) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	if topics != nil {
		req.Topics = make([]kmsg.MetadataRequestTopic, 0, len(topics))
		for _, t := range topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(t)
			req.Topics = append(req.Topics, rt)
		}
	}
	// v1+: v0 reads an empty topic list as "all topics".
	raw, err := a.cl.Request(ctx, client.Limit(req, 1, req.MaxVersion()))
	if err != nil {
		return nil, err
	}
	resp := raw.(*kmsg.MetadataResponse)
	if resp.ErrorCode != 0 {
		return nil, kafkaErr(resp.ErrorCode, nil)
	}
	return resp, nil
}

// allOf reports whether f holds for every item (and there is one): a
// controller that moved answers NOT_CONTROLLER for every item, and only
// then is the whole request worth sending again.
func allOf[T any](items []T, f func(T) bool) bool {
	for _, it := range items {
		if !f(it) {
			return false
		}
	}
	return len(items) > 0
}

func sortedKeys[K int32 | string, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
