package client

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// Metadata is a snapshot of the cluster as the client last saw it. A
// snapshot is never modified after it is published; treat it as read-only.
type Metadata struct {
	ClusterID    string
	ControllerID int32
	Brokers      map[int32]BrokerMetadata
	Topics       map[string]*TopicMetadata
	FetchedAt    time.Time
}

// BrokerMetadata is one broker as metadata describes it.
type BrokerMetadata struct {
	NodeID int32
	Host   string
	Port   int32
	Rack   string
}

// TopicMetadata is one topic. Err is the topic-level error (for example
// tributary.ErrUnknownTopicOrPartition); Partitions is sorted by partition.
type TopicMetadata struct {
	Topic      string
	ID         [16]byte
	Internal   bool
	Err        error
	Partitions []PartitionMetadata
}

// PartitionMetadata is one partition. Leader is -1 while there is none.
type PartitionMetadata struct {
	Partition   int32
	Leader      int32
	LeaderEpoch int32
	Replicas    []int32
	ISR         []int32
	Offline     []int32
	Err         error
}

// CachedMetadata returns the latest snapshot without any I/O.
func (c *Client) CachedMetadata() *Metadata {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.meta
}

// MetadataUpdated returns a channel that is closed the next time the cached
// metadata changes. Call it again afterwards for the following update.
func (c *Client) MetadataUpdated() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.metaUpdated
}

// Metadata fetches metadata for topics (all topics if none are given),
// merges it into the cache and returns the new snapshot. Named topics are
// remembered and kept fresh by background refreshes.
func (c *Client) Metadata(ctx context.Context, topics ...string) (*Metadata, error) {
	if len(topics) > 0 {
		c.track(topics)
	}
	return c.fetchMetadata(ctx, topics, len(topics) == 0)
}

// TopicPartitions returns a topic's partitions from the cache, fetching
// metadata if the topic is not cached or was in error. A topic-level error
// (e.g. tributary.ErrUnknownTopicOrPartition) is returned wrapped.
func (c *Client) TopicPartitions(ctx context.Context, topic string) ([]PartitionMetadata, error) {
	if t := c.CachedMetadata().Topics[topic]; t != nil && t.Err == nil {
		return t.Partitions, nil
	}
	m, err := c.Metadata(ctx, topic)
	if err != nil {
		return nil, err
	}
	t := m.Topics[topic]
	if t == nil {
		return nil, fmt.Errorf("topic %q: %w", topic, tributary.ErrUnknownTopicOrPartition)
	}
	if t.Err != nil {
		return nil, fmt.Errorf("topic %q: %w", topic, t.Err)
	}
	return t.Partitions, nil
}

// PartitionLeader returns the leader's node id and leader epoch for one
// partition.
func (c *Client) PartitionLeader(ctx context.Context, topic string, partition int32) (leader, epoch int32, err error) {
	ps, err := c.TopicPartitions(ctx, topic)
	if err != nil {
		return -1, -1, err
	}
	if partition < 0 || int(partition) >= len(ps) {
		return -1, -1, fmt.Errorf("topic %q partition %d: %w", topic, partition, tributary.ErrUnknownTopicOrPartition)
	}
	p := ps[partition]
	if p.Err != nil && p.Leader < 0 {
		return -1, -1, fmt.Errorf("topic %q partition %d: %w", topic, partition, p.Err)
	}
	if p.Leader < 0 {
		return -1, -1, fmt.Errorf("topic %q partition %d: %w", topic, partition, tributary.ErrLeaderNotAvailable)
	}
	return p.Leader, p.LeaderEpoch, nil
}

func (c *Client) track(topics []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range topics {
		c.topics[t] = struct{}{}
	}
}

// PurgeTopics forgets topics: they leave the cached metadata and are no
// longer refreshed, until a request names them again. A long-running
// client that touches many short-lived topics calls it so its metadata
// requests and cache stay the size of what it uses (franz-go:
// PurgeTopicsFromClient). The producer's and consumer's own PurgeTopics
// call this.
func (c *Client) PurgeTopics(topics ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := *c.meta
	m.Topics = maps.Clone(c.meta.Topics)
	for _, t := range topics {
		delete(c.topics, t)
		delete(m.Topics, t)
	}
	c.meta = &m
	close(c.metaUpdated)
	c.metaUpdated = make(chan struct{})
}

// TriggerMetadataRefresh asks for a background refresh of the tracked
// topics (plus topics). Concurrent triggers coalesce into one request, and
// refreshes are spaced by at least RetryBackoff, so error storms cannot
// turn into metadata storms.
func (c *Client) TriggerMetadataRefresh(topics ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range topics {
		c.topics[t] = struct{}{}
	}
	if c.closed {
		return
	}
	if c.refreshing {
		c.refreshMore = true
		return
	}
	c.refreshing = true
	c.wg.Add(1)
	go c.refreshLoop()
}

func (c *Client) refreshLoop() {
	defer c.wg.Done()
	for {
		c.mu.Lock()
		wait := c.cfg.retryBackoff - time.Since(c.lastRefresh)
		c.refreshMore = false
		c.mu.Unlock()
		if wait > 0 {
			select {
			case <-time.After(wait):
			case <-c.ctx.Done():
			}
		}
		if c.ctx.Err() == nil {
			ctx, cancel := context.WithTimeout(c.ctx, c.cfg.requestTimeout)
			if _, err := c.fetchMetadata(ctx, c.trackedTopics(), false); err != nil {
				c.log.Debug("metadata refresh failed", "err", err)
			}
			cancel()
		}
		c.mu.Lock()
		if !c.refreshMore || c.closed {
			c.refreshing = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
}

func (c *Client) refreshTicker() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.metadataMaxAge)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			c.TriggerMetadataRefresh()
		case <-c.ctx.Done():
			return
		}
	}
}

func (c *Client) trackedTopics() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.topics))
	for t := range c.topics {
		out = append(out, t)
	}
	return out
}

// fetchMetadata requests metadata for topics (or all), retrying connection
// failures on other brokers, and publishes a merged snapshot.
func (c *Client) fetchMetadata(ctx context.Context, topics []string, all bool) (*Metadata, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = c.cfg.autoCreate
	if !all {
		req.Topics = make([]kmsg.MetadataRequestTopic, 0, len(topics))
		for _, t := range topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(t)
			req.Topics = append(req.Topics, rt)
		}
	}
	c.mu.Lock()
	c.lastRefresh = time.Now()
	c.mu.Unlock()
	// Metadata v0 cannot ask for "no topics" and reads an empty list as
	// "all"; every broker in use today speaks v1+.
	raw, err := c.Request(ctx, Limit(req, 1, req.MaxVersion()))
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	resp := raw.(*kmsg.MetadataResponse)
	if resp.ErrorCode != 0 { // v13+ top-level error (KIP-1102)
		return nil, fmt.Errorf("metadata: %w", tributary.ErrorForCode(resp.ErrorCode))
	}
	return c.publish(resp, all), nil
}

func (c *Client) publish(resp *kmsg.MetadataResponse, all bool) *Metadata {
	m := &Metadata{
		ControllerID: resp.ControllerID,
		Brokers:      make(map[int32]BrokerMetadata, len(resp.Brokers)),
		FetchedAt:    time.Now(),
	}
	if resp.ClusterID != nil {
		m.ClusterID = *resp.ClusterID
	}
	for _, b := range resp.Brokers {
		bm := BrokerMetadata{NodeID: b.NodeID, Host: b.Host, Port: b.Port}
		if b.Rack != nil {
			bm.Rack = *b.Rack
		}
		m.Brokers[b.NodeID] = bm
	}
	fresh := make(map[string]*TopicMetadata, len(resp.Topics))
	for _, t := range resp.Topics {
		if t.Topic == nil {
			continue
		}
		tm := &TopicMetadata{Topic: *t.Topic, ID: t.TopicID, Internal: t.IsInternal, Err: tributary.ErrorForCode(t.ErrorCode)}
		tm.Partitions = make([]PartitionMetadata, 0, len(t.Partitions))
		for _, p := range t.Partitions {
			tm.Partitions = append(tm.Partitions, PartitionMetadata{
				Partition:   p.Partition,
				Leader:      p.Leader,
				LeaderEpoch: p.LeaderEpoch,
				Replicas:    p.Replicas,
				ISR:         p.ISR,
				Offline:     p.OfflineReplicas,
				Err:         tributary.ErrorForCode(p.ErrorCode),
			})
		}
		sortPartitions(tm)
		fresh[tm.Topic] = tm
	}

	c.mu.Lock()
	if all {
		m.Topics = fresh
	} else {
		m.Topics = maps.Clone(c.meta.Topics)
		maps.Copy(m.Topics, fresh)
	}
	var gone []*Broker
	if len(m.Brokers) > 0 { // an empty broker list is a broker bug; keep what we had
		gone = c.updateBrokersLocked(m.Brokers)
	} else {
		m.Brokers = c.meta.Brokers
	}
	c.meta = m
	close(c.metaUpdated)
	c.metaUpdated = make(chan struct{})
	closed := c.closed
	if !closed {
		c.wg.Add(len(gone))
	}
	c.mu.Unlock()
	for _, b := range gone {
		err := fmt.Errorf("%w: node %d left the cluster or moved", ErrUnknownBroker, b.id)
		if closed {
			b.close(err)
			continue
		}
		// Closing waits for the connection goroutines; not on the
		// caller's time.
		go func() {
			defer c.wg.Done()
			b.close(err)
		}()
	}
	return m
}

// sortPartitions orders partitions by id and, if the broker skipped some,
// leaves holes marked with an error so index == partition holds.
func sortPartitions(tm *TopicMetadata) {
	n := int32(0)
	for _, p := range tm.Partitions {
		n = max(n, p.Partition+1)
	}
	if int(n) == len(tm.Partitions) {
		ordered := true
		for i, p := range tm.Partitions {
			if p.Partition != int32(i) {
				ordered = false
				break
			}
		}
		if ordered {
			return
		}
	}
	if n > 1<<20 { // hostile partition id; do not allocate for it
		tm.Err = errors.Join(tm.Err, fmt.Errorf("partition id %d out of range", n-1))
		tm.Partitions = nil
		return
	}
	out := make([]PartitionMetadata, n)
	for i := range out {
		out[i] = PartitionMetadata{Partition: int32(i), Leader: -1, LeaderEpoch: -1, Err: tributary.ErrLeaderNotAvailable}
	}
	for _, p := range tm.Partitions {
		if p.Partition >= 0 {
			out[p.Partition] = p
		}
	}
	tm.Partitions = out
}
