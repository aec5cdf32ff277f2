package admin

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/client"
)

// Special "timestamps" for ListOffsets.
const (
	// OffsetLatest asks for the end offset: the high watermark (or the last
	// stable offset with ReadCommitted), where the next record will go.
	OffsetLatest int64 = -1
	// OffsetEarliest asks for the log start offset.
	OffsetEarliest int64 = -2
	// OffsetMaxTimestamp asks for the offset of the record with the highest
	// timestamp (ListOffsets v7+, KIP-734).
	OffsetMaxTimestamp int64 = -3
)

// ListedOffset is one partition's answer to ListOffsets.
type ListedOffset struct {
	Topic     string
	Partition int32
	// Offset is the offset asked for. For a timestamp with no record at or
	// after it, Kafka answers -1.
	Offset int64
	// Timestamp is the timestamp of the record at Offset for timestamp and
	// max-timestamp queries, -1 otherwise.
	Timestamp int64
	// LeaderEpoch is the epoch of the record at Offset, -1 if unknown.
	LeaderEpoch int32
	Err         error
}

// ListedOffsets are results sorted by topic and partition.
type ListedOffsets []ListedOffset

// FirstErr returns the first failed partition's error, naming it, or nil.
func (ls ListedOffsets) FirstErr() error {
	return firstErr(ls, func(l ListedOffset) (string, error) { return fmt.Sprintf("%s[%d]", l.Topic, l.Partition), l.Err })
}

// Lookup returns the result for one partition.
func (ls ListedOffsets) Lookup(topic string, partition int32) (ListedOffset, bool) {
	return lookupPartition(ls, topic, partition, func(l ListedOffset) (string, int32) { return l.Topic, l.Partition })
}

// ListStartOffsets lists the log start offset of every partition of topics.
func (a *Client) ListStartOffsets(ctx context.Context, topics ...string) (ListedOffsets, error) {
	return a.ListOffsets(ctx, OffsetEarliest, allPartitions(topics))
}

// ListEndOffsets lists the end offset (high watermark) of every partition
// of topics.
func (a *Client) ListEndOffsets(ctx context.Context, topics ...string) (ListedOffsets, error) {
	return a.ListOffsets(ctx, OffsetLatest, allPartitions(topics))
}

// ListOffsetsAfterMilli lists, for every partition of topics, the first
// offset whose record timestamp is at or after millis (Unix ms).
func (a *Client) ListOffsetsAfterMilli(ctx context.Context, millis int64, topics ...string) (ListedOffsets, error) {
	return a.ListOffsets(ctx, millis, allPartitions(topics))
}

// ListMaxTimestampOffsets lists, for every partition of topics, the offset
// and timestamp of the record with the highest timestamp.
func (a *Client) ListMaxTimestampOffsets(ctx context.Context, topics ...string) (ListedOffsets, error) {
	return a.ListOffsets(ctx, OffsetMaxTimestamp, allPartitions(topics))
}

func allPartitions(topics []string) map[string][]int32 {
	m := make(map[string][]int32, len(topics))
	for _, t := range topics {
		m[t] = nil
	}
	return m
}

// ListOffsets asks each partition's leader for the offset at: a Unix
// millisecond timestamp, or OffsetEarliest, OffsetLatest or
// OffsetMaxTimestamp. topics maps a topic to its partitions; a nil or
// empty slice means every partition. A topic that does not exist fails
// alone: per named partition, or as one result with Partition -1 when
// none were named. Requests that reach a broker no longer leading are
// retried after a metadata refresh, up to RequestRetries. Honours
// ReadCommitted.
func (a *Client) ListOffsets(ctx context.Context, at int64, topics map[string][]int32, opts ...CallOpt) (ListedOffsets, error) {
	co := callOpts(opts)
	out, err := askLeaders(ctx, a, topics, func(ps []tributary.TopicPartition) kmsg.Request {
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		if co.readCommitted {
			req.IsolationLevel = 1
		}
		req.TimeoutMillis = a.timeoutMillis()
		for _, g := range groupByTopic(ps) {
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = g.topic
			for _, p := range g.partitions {
				rp := kmsg.NewListOffsetsRequestTopicPartition()
				rp.Partition = p
				rp.CurrentLeaderEpoch = -1
				rp.Timestamp = at
				rp.MaxNumOffsets = 1
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		minV := int16(1) // v0 answers with a list of old-style offsets
		if at == OffsetMaxTimestamp {
			minV = 7
		}
		return client.Limit(req, minV, req.MaxVersion())
	}, func(raw kmsg.Response) (as []partitionAnswer[ListedOffset]) {
		resp := raw.(*kmsg.ListOffsetsResponse)
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				l := ListedOffset{Topic: rt.Topic, Partition: rp.Partition, Offset: rp.Offset, Timestamp: rp.Timestamp, LeaderEpoch: rp.LeaderEpoch, Err: kafkaErr(rp.ErrorCode, nil)}
				if resp.Version < 4 {
					l.LeaderEpoch = -1
				}
				as = append(as, partitionAnswer[ListedOffset]{tributary.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}, rp.ErrorCode, l})
			}
		}
		return as
	}, func(tp tributary.TopicPartition, err error) ListedOffset {
		return ListedOffset{Topic: tp.Topic, Partition: tp.Partition, Offset: -1, Timestamp: -1, LeaderEpoch: -1, Err: err}
	})
	if err != nil {
		return nil, fmt.Errorf("admin: list offsets: %w", err)
	}
	return out, nil
}

// DeletedRecords is one partition's answer to DeleteRecords.
type DeletedRecords struct {
	Topic     string
	Partition int32
	// LowWatermark is the partition's new log start offset.
	LowWatermark int64
	Err          error
}

// DeletedRecordsList are results sorted by topic and partition.
type DeletedRecordsList []DeletedRecords

// FirstErr returns the first failed partition's error, naming it, or nil.
func (ds DeletedRecordsList) FirstErr() error {
	return firstErr(ds, func(d DeletedRecords) (string, error) { return fmt.Sprintf("%s[%d]", d.Topic, d.Partition), d.Err })
}

// Lookup returns the result for one partition.
func (ds DeletedRecordsList) Lookup(topic string, partition int32) (DeletedRecords, bool) {
	return lookupPartition(ds, topic, partition, func(d DeletedRecords) (string, int32) { return d.Topic, d.Partition })
}

// DeleteRecords deletes every record before the given offset of each
// partition (topic → partition → offset; OffsetLatest, -1, means the high
// watermark: everything), asking each partition's leader. An offset past
// the high watermark fails with tributary.ErrOffsetOutOfRange.
func (a *Client) DeleteRecords(ctx context.Context, before map[string]map[int32]int64) (DeletedRecordsList, error) {
	topics := make(map[string][]int32, len(before))
	for t, ps := range before {
		topics[t] = sortedKeys(ps)
		if len(ps) == 0 {
			delete(topics, t)
		}
	}
	out, err := askLeaders(ctx, a, topics, func(ps []tributary.TopicPartition) kmsg.Request {
		req := kmsg.NewPtrDeleteRecordsRequest()
		req.TimeoutMillis = a.timeoutMillis()
		for _, g := range groupByTopic(ps) {
			rt := kmsg.NewDeleteRecordsRequestTopic()
			rt.Topic = g.topic
			for _, p := range g.partitions {
				rp := kmsg.NewDeleteRecordsRequestTopicPartition()
				rp.Partition = p
				rp.Offset = before[g.topic][p]
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		return req
	}, func(raw kmsg.Response) (as []partitionAnswer[DeletedRecords]) {
		for _, rt := range raw.(*kmsg.DeleteRecordsResponse).Topics {
			for _, rp := range rt.Partitions {
				d := DeletedRecords{Topic: rt.Topic, Partition: rp.Partition, LowWatermark: rp.LowWatermark, Err: kafkaErr(rp.ErrorCode, nil)}
				as = append(as, partitionAnswer[DeletedRecords]{tributary.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}, rp.ErrorCode, d})
			}
		}
		return as
	}, func(tp tributary.TopicPartition, err error) DeletedRecords {
		return DeletedRecords{Topic: tp.Topic, Partition: tp.Partition, LowWatermark: -1, Err: err}
	})
	if err != nil {
		return nil, fmt.Errorf("admin: delete records: %w", err)
	}
	return out, nil
}

// partitionAnswer is one partition's part of a leader's response.
type partitionAnswer[R any] struct {
	tp     tributary.TopicPartition
	code   int16
	answer R
}

// askLeaders sends request(ps) to the leaders of topics' partitions (see
// shardByLeader) and returns, sorted by topic and partition, each
// partition's answer as read from the response by answers, or else
// missing(tp, why). A partition whose leader moved is asked again;
// answers for partitions not asked for, and repeats, are ignored.
func askLeaders[R any](ctx context.Context, a *Client, topics map[string][]int32, request func(ps []tributary.TopicPartition) kmsg.Request,
	answers func(raw kmsg.Response) []partitionAnswer[R], missing func(tp tributary.TopicPartition, err error) R) ([]R, error) {
	var mu sync.Mutex
	var got []partitionAnswer[R]
	failed, err := a.shardByLeader(ctx, topics, func(ctx context.Context, node int32, ps []tributary.TopicPartition) ([]tributary.TopicPartition, error) {
		raw, err := a.cl.RequestBroker(ctx, node, request(ps))
		if err != nil {
			return nil, err
		}
		var retry []tributary.TopicPartition
		want := make(map[tributary.TopicPartition]bool, len(ps))
		for _, tp := range ps {
			want[tp] = true
		}
		seen := make(map[tributary.TopicPartition]bool, len(ps))
		mu.Lock()
		defer mu.Unlock()
		for _, p := range answers(raw) {
			if seen[p.tp] || !want[p.tp] {
				continue
			}
			seen[p.tp] = true
			if leaderMoved(p.code) {
				retry = append(retry, p.tp)
				continue
			}
			got = append(got, p)
		}
		for _, tp := range ps {
			if !seen[tp] {
				got = append(got, partitionAnswer[R]{tp: tp, answer: missing(tp, ErrNoResponse)})
			}
		}
		return retry, nil
	})
	if err != nil {
		return nil, err
	}
	for tp, err := range failed {
		got = append(got, partitionAnswer[R]{tp: tp, answer: missing(tp, err)})
	}
	sort.Slice(got, func(i, j int) bool {
		return tpLess(got[i].tp.Topic, got[i].tp.Partition, got[j].tp.Topic, got[j].tp.Partition)
	})
	var out []R
	for _, p := range got {
		out = append(out, p.answer)
	}
	return out, nil
}

// leaderMoved reports whether a partition error means "ask the leader
// again after a metadata refresh".
func leaderMoved(code int16) bool {
	switch code {
	case tributary.ErrNotLeaderOrFollower.Code, tributary.ErrLeaderNotAvailable.Code,
		tributary.ErrUnknownTopicOrPartition.Code, tributary.ErrReplicaNotAvailable.Code,
		tributary.ErrFencedLeaderEpoch.Code, tributary.ErrUnknownLeaderEpoch.Code:
		return true
	}
	return false
}

// shardByLeader sends partitions to their leaders. topics maps a topic to
// partitions, nil/empty meaning all. send issues one request to node for
// ps, records the answers itself, and returns the partitions to retry
// (their leader moved) or a transport error (then all of ps are retried).
// Partitions that still fail after RequestRetries attempts, or cannot be
// sent at all (unknown topic or partition), are returned in failed. err is
// set only when metadata could not be fetched at all on the first attempt.
func (a *Client) shardByLeader(ctx context.Context, topics map[string][]int32,
	send func(ctx context.Context, node int32, ps []tributary.TopicPartition) ([]tributary.TopicPartition, error),
) (failed map[tributary.TopicPartition]error, err error) {
	failed = make(map[tributary.TopicPartition]error)
	if len(topics) == 0 {
		return failed, nil
	}
	pending := make(map[string][]int32, len(topics))
	for t, ps := range topics {
		pending[t] = ps
	}
	for attempt := 1; len(pending) > 0; attempt++ {
		last := attempt > a.cfg.retries
		meta, err := a.metadata(ctx, sortedKeys(pending))
		if err != nil {
			if attempt == 1 {
				return nil, err
			}
			for t, ps := range pending {
				for _, p := range ps {
					failed[tributary.TopicPartition{Topic: t, Partition: p}] = err
				}
			}
			return failed, nil
		}
		mt := make(map[string]*kmsg.MetadataResponseTopic, len(meta.Topics))
		for i := range meta.Topics {
			if t := &meta.Topics[i]; t.Topic != nil {
				mt[*t.Topic] = t
			}
		}
		shards := make(map[int32][]tributary.TopicPartition)
		retry := make(map[string][]int32)
		for topic, ps := range pending {
			t := mt[topic]
			if t == nil || t.ErrorCode != 0 {
				terr := error(ErrNoResponse)
				if t != nil {
					terr = kafkaErr(t.ErrorCode, nil)
				}
				if t != nil && t.ErrorCode == tributary.ErrLeaderNotAvailable.Code && !last {
					retry[topic] = ps // topic being created
					continue
				}
				if len(ps) == 0 {
					failed[tributary.TopicPartition{Topic: topic, Partition: -1}] = terr
				}
				for _, p := range ps {
					failed[tributary.TopicPartition{Topic: topic, Partition: p}] = terr
				}
				continue
			}
			leaders := make(map[int32]kmsg.MetadataResponseTopicPartition, len(t.Partitions))
			for _, p := range t.Partitions {
				leaders[p.Partition] = p
			}
			if len(ps) == 0 {
				ps = sortedKeys(leaders)
			}
			for _, p := range ps {
				tp := tributary.TopicPartition{Topic: topic, Partition: p}
				mp, ok := leaders[p]
				switch {
				case !ok:
					failed[tp] = fmt.Errorf("partition %d: %w", p, tributary.ErrUnknownTopicOrPartition)
				case mp.Leader < 0:
					if last {
						failed[tp] = tributary.ErrLeaderNotAvailable
					} else {
						retry[topic] = append(retry[topic], p)
					}
				default:
					shards[mp.Leader] = append(shards[mp.Leader], tp)
				}
			}
		}
		a.knowBrokers(ctx, sortedKeys(shards))
		var mu sync.Mutex
		var wg sync.WaitGroup
		for node, ps := range shards {
			wg.Go(func() {
				again, err := send(ctx, node, ps)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if !retriableTransport(err) || last || ctx.Err() != nil {
						for _, tp := range ps {
							failed[tp] = err
						}
						return
					}
					again = ps
				}
				for _, tp := range again {
					if last {
						failed[tp] = tributary.ErrNotLeaderOrFollower
						continue
					}
					retry[tp.Topic] = append(retry[tp.Topic], tp.Partition)
				}
			})
		}
		wg.Wait()
		pending = retry
		if len(pending) > 0 {
			if err := a.sleep(ctx, attempt); err != nil {
				for t, ps := range pending {
					for _, p := range ps {
						failed[tributary.TopicPartition{Topic: t, Partition: p}] = err
					}
				}
				return failed, nil
			}
		}
	}
	return failed, nil
}

type topicPartitions struct {
	topic      string
	partitions []int32
}

// groupByTopic groups ps by topic, in first-seen order.
func groupByTopic(ps []tributary.TopicPartition) []topicPartitions {
	var out []topicPartitions
	idx := make(map[string]int)
	for _, tp := range ps {
		i, ok := idx[tp.Topic]
		if !ok {
			i = len(out)
			idx[tp.Topic] = i
			out = append(out, topicPartitions{topic: tp.Topic})
		}
		out[i].partitions = append(out[i].partitions, tp.Partition)
	}
	return out
}

func tpLess(t1 string, p1 int32, t2 string, p2 int32) bool {
	if t1 != t2 {
		return t1 < t2
	}
	return p1 < p2
}
