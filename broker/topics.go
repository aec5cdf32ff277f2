package broker

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/controller"
	"github.com/tributary/tributary/broker/storage"
)

// maxPartitionsPerTopic bounds what one CreateTopics or CreatePartitions
// may ask for: every partition is a directory and open files, so a
// request must not be able to exhaust them.
const maxPartitionsPerTopic = 10000

// apiError is a Kafka error code with a message for the response's
// ErrorMessage field. errors.Is and tributary.CodeOf see the code.
type apiError struct {
	kerr *tributary.Error
	msg  string
}

func (e *apiError) Error() string { return e.kerr.Name + ": " + e.msg }
func (e *apiError) Unwrap() error { return e.kerr }

func errorf(kerr *tributary.Error, format string, args ...any) error {
	return &apiError{kerr: kerr, msg: fmt.Sprintf(format, args...)}
}

// errCodeMsg splits err into the wire code and message of a response.
func errCodeMsg(err error) (int16, *string) {
	if err == nil {
		return 0, nil
	}
	var ae *apiError
	if errors.As(err, &ae) {
		msg := ae.msg
		return ae.kerr.Code, &msg
	}
	msg := err.Error()
	return tributary.CodeOf(err), &msg
}

// validateTopicName applies Kafka's rules (org.apache.kafka.common.internals.Topic).
func validateTopicName(name string) error {
	switch {
	case name == "":
		return errorf(tributary.ErrInvalidTopicException, "topic name is empty")
	case name == "." || name == "..":
		return errorf(tributary.ErrInvalidTopicException, "topic name cannot be %q", name)
	case len(name) > 249:
		return errorf(tributary.ErrInvalidTopicException, "topic name is longer than 249 characters")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return errorf(tributary.ErrInvalidTopicException, "topic name %q contains a character other than ASCII alphanumerics, '.', '_' and '-'", name)
		}
	}
	return nil
}

// collisionName maps '.' to '_': Kafka refuses two topics that differ only
// there because their metric names would collide.
func collisionName(name string) string { return strings.ReplaceAll(name, ".", "_") }

// topicSpec is a topic to create, already defaulted.
type topicSpec struct {
	name       string
	partitions int32
	rf         int16
	configs    map[string]string
	internal   bool
}

// checkNewTopicLocked validates spec against the rules and existing
// topics. b.mu must be held.
func (b *Broker) checkNewTopicLocked(spec *topicSpec) error {
	if err := validateTopicName(spec.name); err != nil {
		return err
	}
	if _, ok := b.mu.topics[spec.name]; ok {
		return errorf(tributary.ErrTopicAlreadyExists, "topic '%s' already exists", spec.name)
	}
	if !spec.internal && internalTopics[spec.name] {
		return errorf(tributary.ErrInvalidRequest, "creation of internal topic %s is prohibited", spec.name)
	}
	if strings.ContainsAny(spec.name, "._") {
		cn := collisionName(spec.name)
		for other := range b.mu.topics {
			if collisionName(other) == cn {
				return errorf(tributary.ErrInvalidTopicException, "topic '%s' collides with existing topic: %s", spec.name, other)
			}
		}
	}
	if spec.partitions == -1 {
		spec.partitions = b.mu.eff.NumPartitions
	}
	if spec.partitions < 1 {
		return errorf(tributary.ErrInvalidPartitions, "number of partitions must be larger than 0")
	}
	if spec.partitions > maxPartitionsPerTopic {
		return errorf(tributary.ErrInvalidPartitions, "number of partitions %d is above this broker's limit of %d", spec.partitions, maxPartitionsPerTopic)
	}
	if spec.rf == -1 {
		spec.rf = b.mu.eff.DefaultReplicationFactor
	}
	if spec.rf < 1 {
		return errorf(tributary.ErrInvalidReplicationFactor, "replication factor must be larger than 0")
	}
	for _, k := range sortedKeys(spec.configs) {
		v := spec.configs[k]
		if err := validateTopicConfig(k, &v); err != nil {
			return errorf(tributary.ErrInvalidConfig, "%v", err)
		}
		spec.configs[k] = topicPropsByName[k].spec.canonical(v)
	}
	return nil
}

// createTopic creates a topic with the given partitions, replication
// factor (-1 for the defaults) and config overrides. The group and
// transaction coordinators use it for their internal topics, which
// CreateTopics refuses.
func (b *Broker) createTopic(name string, partitions int32, rf int16, configs map[string]string) error {
	spec := &topicSpec{name: name, partitions: partitions, rf: rf, configs: cloneMap(configs), internal: internalTopics[name]}
	if spec.configs == nil {
		spec.configs = map[string]string{}
	}
	_, err := b.createTopicSpec(spec, false)
	return err
}

// createTopicSpec validates and (unless validateOnly) creates the topic
// through the controller, and returns it once this broker's registry
// shows it. Placement (which brokers hold each partition) is the
// controller's.
func (b *Broker) createTopicSpec(spec *topicSpec, validateOnly bool) (*topic, error) {
	return b.createTopicAssigned(spec, nil, validateOnly, 0)
}

// createTopicAssigned is createTopicSpec with an optional manual
// assignment (one replica list per partition) and the request's timeout.
func (b *Broker) createTopicAssigned(spec *topicSpec, assignment [][]int32, validateOnly bool, timeoutMs int32) (*topic, error) {
	select {
	case <-b.closing:
		return nil, errorf(tributary.ErrBrokerNotAvailable, "broker is shutting down")
	default:
	}
	b.mu.RLock()
	err := b.checkNewTopicLocked(spec)
	b.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	if err := b.checkPartitionBudget(spec.partitions, spec.rf); err != nil {
		return nil, err
	}
	ctx, cancel := b.adminCtx(timeoutMs)
	defer cancel()
	cs := controller.TopicSpec{
		Name:              spec.name,
		Partitions:        spec.partitions,
		ReplicationFactor: spec.rf,
		Assignment:        assignment,
		Configs:           spec.configs,
		Internal:          spec.internal,
		ValidateOnly:      validateOnly,
	}
	if len(assignment) > 0 {
		cs.Partitions, cs.ReplicationFactor = int32(len(assignment)), int16(len(assignment[0]))
	}
	res := b.ctrl.CreateTopics(ctx, []controller.TopicSpec{cs})
	if res[0].Err != nil {
		return nil, res[0].Err
	}
	if validateOnly {
		t := &topic{name: spec.name, internal: spec.internal, configs: spec.configs}
		for i := int32(0); i < res[0].Partitions; i++ {
			t.partitions = append(t.partitions, &partition{topic: t, index: i})
		}
		return t, nil
	}
	if err := b.afterChange(ctx); err != nil {
		return nil, errorf(tributary.ErrRequestTimedOut, "topic %s was created but this broker has not caught up yet: %v", spec.name, err)
	}
	t := b.lookupTopicID(res[0].ID)
	if t == nil {
		return nil, errorf(tributary.ErrUnknownTopicOrPartition, "topic %s was deleted right after its creation", spec.name)
	}
	return t, nil
}

func (b *Broker) openLog(dir string, cfg storage.Config) (*storage.Log, error) {
	return storage.Open(dir, cfg, storage.Options{Logger: b.logger.With("log", filepath.Base(dir))})
}

// deleteTopic deletes the topic through the controller; every broker
// hosting a replica removes its log when it sees the change.
func (b *Broker) deleteTopic(t *topic) error {
	if t.internal {
		return errorf(tributary.ErrInvalidRequest, "deleting internal topic %s is not allowed", t.name)
	}
	ctx, cancel := b.adminCtx(0)
	defer cancel()
	err := b.withMetadataReserve(func() error { return b.ctrl.DeleteTopics(ctx, [][16]byte{t.id})[0] })
	if err != nil {
		return err
	}
	return b.afterChange(ctx)
}

// addPartitions grows t to count partitions through the controller.
func (b *Broker) addPartitions(t *topic, count int32, assignment [][]int32, validateOnly bool) error {
	b.mu.RLock()
	cur := int32(len(t.partitions))
	live := b.mu.topics[t.name] == t
	b.mu.RUnlock()
	switch {
	case !live:
		return errorf(tributary.ErrUnknownTopicOrPartition, "topic %s does not exist", t.name)
	case count < cur:
		return errorf(tributary.ErrInvalidPartitions, "topic currently has %d partitions, which is higher than the requested %d", cur, count)
	case count == cur:
		return errorf(tributary.ErrInvalidPartitions, "topic already has %d partitions", cur)
	case count > maxPartitionsPerTopic:
		return errorf(tributary.ErrInvalidPartitions, "number of partitions %d is above this broker's limit of %d", count, maxPartitionsPerTopic)
	}
	if err := b.checkPartitionBudget(count-cur, t.replicationFactor()); err != nil {
		return err
	}
	ctx, cancel := b.adminCtx(0)
	defer cancel()
	if err := b.ctrl.CreatePartitions(ctx, t.name, count, assignment, validateOnly); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	return b.afterChange(ctx)
}

// retentionLoop enforces retention on every log each
// log.retention.check.interval.ms.
func (b *Broker) retentionLoop() {
	interval := time.Duration(b.cfg.LogRetentionCheckIntervalMs) * time.Millisecond
	for b.sleep(interval) {
		for _, p := range b.allPartitions() {
			if err := b.enforceRetention(p); err != nil {
				b.logger.Warn("retention", "topic", p.topic.name, "partition", p.index, "err", err)
			}
		}
	}
}

// checkpointLoop writes every log's recovery point each
// log.flush.offset.checkpoint.interval.ms and its log start offset each
// log.flush.start.offset.checkpoint.interval.ms, as Kafka's LogManager
// does, so an unclean restart rescans only what was written since.
func (b *Broker) checkpointLoop() {
	rpEvery := time.Duration(b.cfg.LogFlushOffsetCheckpointIntervalMs) * time.Millisecond
	lsoEvery := time.Duration(b.cfg.LogFlushStartOffsetCheckpointIntervalMs) * time.Millisecond
	if rpEvery <= 0 && lsoEvery <= 0 {
		return
	}
	tick := time.Second
	for _, d := range []time.Duration{rpEvery, lsoEvery} {
		if d > 0 {
			tick = max(min(tick, d), 10*time.Millisecond)
		}
	}
	lastRP, lastLSO := time.Now(), time.Now()
	for b.sleep(tick) {
		now := time.Now()
		rp := rpEvery > 0 && now.Sub(lastRP) >= rpEvery
		lso := lsoEvery > 0 && now.Sub(lastLSO) >= lsoEvery
		if rp {
			lastRP = now
		}
		if lso {
			lastLSO = now
		}
		if !rp && !lso {
			continue
		}
		for _, p := range b.allPartitions() {
			if rp {
				if err := p.log.CheckpointRecoveryPoint(); err != nil {
					b.logger.Warn("recovery point checkpoint", "topic", p.topic.name, "partition", p.index, "err", err)
				}
			}
			if lso {
				if err := p.log.CheckpointLogStartOffset(); err != nil {
					b.logger.Warn("log start offset checkpoint", "topic", p.topic.name, "partition", p.index, "err", err)
				}
			}
		}
	}
}

// flushLoop fsyncs logs whose flush.ms has passed since the loop last
// flushed them. With the defaults (flush.ms = Long.MAX) it only wakes up
// once a second to look at the configs; durability is left to the page
// cache and the storage's own flush.messages handling, as in Kafka.
func (b *Broker) flushLoop() {
	last := map[*partition]time.Time{}
	tick := time.Second
	for b.sleep(tick) {
		tick = time.Second
		now := time.Now()
		seen := map[*partition]bool{}
		for _, p := range b.allPartitions() {
			seen[p] = true
			ms, _ := b.topicConfigValue(p.topic, "flush.ms")
			flushMs, _ := strconv.ParseInt(ms, 10, 64)
			if flushMs < 0 || flushMs >= int64(time.Hour/time.Millisecond)*24*365 {
				continue
			}
			d := time.Duration(flushMs) * time.Millisecond
			tick = max(min(tick, d), 10*time.Millisecond)
			if l, ok := last[p]; !ok {
				last[p] = now
			} else if now.Sub(l) >= d {
				if err := p.log.Flush(); err != nil {
					b.logger.Warn("flush", "topic", p.topic.name, "partition", p.index, "err", err)
				}
				last[p] = now
			}
		}
		for p := range last {
			if !seen[p] {
				delete(last, p)
			}
		}
	}
}

// checkPartitionBudget refuses a change that would give this broker more
// partitions than it can hold open: each hosted partition keeps its active
// segment open, and storage's file cache holds at most half the
// descriptor limit, leaving the rest for connections. Kafka has no such
// check and runs out of descriptors instead (issue 12); here the create
// fails up front with a message that says what to raise. The share of
// the new replicas this broker gets is estimated as an even spread over
// the live brokers.
func (b *Broker) checkPartitionBudget(partitions int32, rf int16) error {
	limit := storage.DefaultFileCache().Limit()
	live := 1
	if img := b.image(); img != nil {
		live = max(len(img.LiveBrokers()), 1)
	}
	replicas := int(partitions) * max(int(rf), 1)
	mine := (replicas + live - 1) / live
	hosted := len(b.allPartitions())
	if hosted+mine > limit {
		return errorf(tributary.ErrInvalidPartitions,
			"this would put %d partitions on broker %d, which can keep %d segment files open (half its file descriptor limit, RLIMIT_NOFILE); raise the limit or use fewer partitions",
			hosted+mine, b.cfg.NodeID, limit)
	}
	return nil
}
