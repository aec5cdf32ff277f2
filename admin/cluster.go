package admin

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// BrokerDetail is one broker of the cluster.
type BrokerDetail struct {
	NodeID int32
	Host   string
	Port   int32
	Rack   string // "" if unset
	// Fenced is set for brokers the controller fenced (only with
	// DescribeCluster v2+, which this package does not ask for yet).
	Fenced bool
}

// Cluster describes the cluster.
type Cluster struct {
	ClusterID string
	// Controller is the controller's node id, -1 if unknown. With
	// DescribeCluster against KRaft clusters it is a random broker, as the
	// controllers are not reachable by clients (KIP-919).
	Controller int32
	// Brokers sorted by node id.
	Brokers []BrokerDetail
}

// DescribeCluster describes the cluster with DescribeCluster (KIP-700)
// when the broker supports it, else with Metadata.
func (a *Client) DescribeCluster(ctx context.Context) (Cluster, error) {
	req := kmsg.NewPtrDescribeClusterRequest()
	raw, err := a.cl.Request(ctx, req)
	switch {
	case err == nil:
		resp := raw.(*kmsg.DescribeClusterResponse)
		if resp.ErrorCode != 0 {
			return Cluster{}, fmt.Errorf("admin: describe cluster: %w", kafkaErr(resp.ErrorCode, resp.ErrorMessage))
		}
		c := Cluster{ClusterID: resp.ClusterID, Controller: resp.ControllerID}
		for _, b := range resp.Brokers {
			bd := BrokerDetail{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Fenced: b.IsFenced}
			if b.Rack != nil {
				bd.Rack = *b.Rack
			}
			c.Brokers = append(c.Brokers, bd)
		}
		sort.Slice(c.Brokers, func(i, j int) bool { return c.Brokers[i].NodeID < c.Brokers[j].NodeID })
		return c, nil
	case !errors.Is(err, tributary.ErrUnsupportedVersion):
		return Cluster{}, fmt.Errorf("admin: describe cluster: %w", err)
	}
	meta, err := a.metadata(ctx, []string{})
	if err != nil {
		return Cluster{}, fmt.Errorf("admin: describe cluster: %w", err)
	}
	c := Cluster{Controller: meta.ControllerID}
	if meta.ClusterID != nil {
		c.ClusterID = *meta.ClusterID
	}
	for _, b := range meta.Brokers {
		bd := BrokerDetail{NodeID: b.NodeID, Host: b.Host, Port: b.Port}
		if b.Rack != nil {
			bd.Rack = *b.Rack
		}
		c.Brokers = append(c.Brokers, bd)
	}
	sort.Slice(c.Brokers, func(i, j int) bool { return c.Brokers[i].NodeID < c.Brokers[j].NodeID })
	return c, nil
}

// ElectLeaders triggers preferred leader election (KIP-460) for the given
// partitions (topic → partitions; a nil map means every partition of the
// cluster). A partition already led by its preferred replica fails with
// tributary.ErrElectionNotNeeded, which is usually no failure at all.
func (a *Client) ElectLeaders(ctx context.Context, partitions map[string][]int32) (PartitionResults, error) {
	req := kmsg.NewPtrElectLeadersRequest()
	req.ElectionType = 0 // preferred
	req.TimeoutMillis = a.timeoutMillis()
	if partitions != nil {
		req.Topics = []kmsg.ElectLeadersRequestTopic{} // empty, not null: null means all
		for _, t := range sortedKeys(partitions) {
			rt := kmsg.NewElectLeadersRequestTopic()
			rt.Topic = t
			rt.Partitions = partitions[t]
			req.Topics = append(req.Topics, rt)
		}
	}
	raw, err := a.controllerRequest(ctx, req, func(r kmsg.Response) bool {
		return r.(*kmsg.ElectLeadersResponse).ErrorCode == tributary.ErrNotController.Code
	})
	if err != nil {
		return nil, fmt.Errorf("admin: elect leaders: %w", err)
	}
	resp := raw.(*kmsg.ElectLeadersResponse)
	if resp.ErrorCode != 0 {
		return nil, fmt.Errorf("admin: elect leaders: %w", kafkaErr(resp.ErrorCode, nil))
	}
	var out PartitionResults
	seen := make(map[tributary.TopicPartition]bool)
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			seen[tributary.TopicPartition{Topic: t.Topic, Partition: p.Partition}] = true
			out = append(out, PartitionResult{Topic: t.Topic, Partition: p.Partition, Err: kafkaErr(p.ErrorCode, p.ErrorMessage)})
		}
	}
	for t, ps := range partitions {
		for _, p := range ps {
			if !seen[tributary.TopicPartition{Topic: t, Partition: p}] {
				out = append(out, PartitionResult{Topic: t, Partition: p, Err: ErrNoResponse})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return tpLess(out[i].Topic, out[i].Partition, out[j].Topic, out[j].Partition) })
	return out, nil
}

// Reassignment is one partition's ongoing reassignment.
type Reassignment struct {
	Topic     string
	Partition int32
	// Replicas is the full replica set during the move; Adding and
	// Removing are the replicas being added and removed.
	Replicas []int32
	Adding   []int32
	Removing []int32
}

// ListPartitionReassignments lists ongoing reassignments (KIP-455) of the
// given partitions (topic → partitions; a nil or empty slice means all
// partitions of the topic; a nil map means the whole cluster), sorted by
// topic and partition.
func (a *Client) ListPartitionReassignments(ctx context.Context, partitions map[string][]int32) ([]Reassignment, error) {
	req := kmsg.NewPtrListPartitionReassignmentsRequest()
	req.TimeoutMillis = a.timeoutMillis()
	if partitions != nil {
		expanded, err := a.expandPartitions(ctx, partitions)
		if err != nil {
			return nil, fmt.Errorf("admin: list partition reassignments: %w", err)
		}
		req.Topics = []kmsg.ListPartitionReassignmentsRequestTopic{}
		for _, t := range sortedKeys(expanded) {
			rt := kmsg.NewListPartitionReassignmentsRequestTopic()
			rt.Topic = t
			rt.Partitions = expanded[t]
			req.Topics = append(req.Topics, rt)
		}
	}
	raw, err := a.controllerRequest(ctx, req, func(r kmsg.Response) bool {
		return r.(*kmsg.ListPartitionReassignmentsResponse).ErrorCode == tributary.ErrNotController.Code
	})
	if err != nil {
		return nil, fmt.Errorf("admin: list partition reassignments: %w", err)
	}
	resp := raw.(*kmsg.ListPartitionReassignmentsResponse)
	if resp.ErrorCode != 0 {
		return nil, fmt.Errorf("admin: list partition reassignments: %w", kafkaErr(resp.ErrorCode, resp.ErrorMessage))
	}
	var out []Reassignment
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out = append(out, Reassignment{Topic: t.Topic, Partition: p.Partition, Replicas: p.Replicas, Adding: p.AddingReplicas, Removing: p.RemovingReplicas})
		}
	}
	sort.Slice(out, func(i, j int) bool { return tpLess(out[i].Topic, out[i].Partition, out[j].Topic, out[j].Partition) })
	return out, nil
}

// AlterPartitionReassignments moves partitions to new replica sets
// (topic → partition → replicas, the first the preferred leader); a nil
// replica list cancels the partition's ongoing reassignment. Each
// partition has its own outcome; request-level failures (e.g.
// tributary.ErrClusterAuthorizationFailed) are returned as the error.
func (a *Client) AlterPartitionReassignments(ctx context.Context, assignments map[string]map[int32][]int32) (PartitionResults, error) {
	if len(assignments) == 0 {
		return nil, nil
	}
	req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	req.TimeoutMillis = a.timeoutMillis()
	for _, t := range sortedKeys(assignments) {
		rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
		rt.Topic = t
		for _, p := range sortedKeys(assignments[t]) {
			rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
			rp.Partition = p
			rp.Replicas = assignments[t][p]
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	raw, err := a.controllerRequest(ctx, req, func(r kmsg.Response) bool {
		return r.(*kmsg.AlterPartitionAssignmentsResponse).ErrorCode == tributary.ErrNotController.Code
	})
	if err != nil {
		return nil, fmt.Errorf("admin: alter partition reassignments: %w", err)
	}
	resp := raw.(*kmsg.AlterPartitionAssignmentsResponse)
	if resp.ErrorCode != 0 {
		return nil, fmt.Errorf("admin: alter partition reassignments: %w", kafkaErr(resp.ErrorCode, resp.ErrorMessage))
	}
	codes := make(map[tributary.TopicPartition]error)
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			codes[tributary.TopicPartition{Topic: t.Topic, Partition: p.Partition}] = kafkaErr(p.ErrorCode, p.ErrorMessage)
		}
	}
	var out PartitionResults
	for _, t := range sortedKeys(assignments) {
		for _, p := range sortedKeys(assignments[t]) {
			r := PartitionResult{Topic: t, Partition: p, Err: ErrNoResponse}
			if e, ok := codes[tributary.TopicPartition{Topic: t, Partition: p}]; ok {
				r.Err = e
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// expandPartitions replaces empty partition lists by every partition of
// the topic, from metadata. Unknown topics keep an empty list.
func (a *Client) expandPartitions(ctx context.Context, m map[string][]int32) (map[string][]int32, error) {
	var need []string
	for t, ps := range m {
		if len(ps) == 0 {
			need = append(need, t)
		}
	}
	out := make(map[string][]int32, len(m))
	for t, ps := range m {
		out[t] = ps
	}
	if len(need) == 0 {
		return out, nil
	}
	meta, err := a.metadata(ctx, need)
	if err != nil {
		return nil, err
	}
	for _, t := range meta.Topics {
		if t.Topic == nil || t.ErrorCode != 0 {
			continue
		}
		ps := make([]int32, 0, len(t.Partitions))
		for _, p := range t.Partitions {
			ps = append(ps, p.Partition)
		}
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		out[*t.Topic] = ps
	}
	return out, nil
}
