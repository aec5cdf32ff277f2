package broker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tributary/tributary"
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
	if spec.rf > 1 {
		return errorf(tributary.ErrInvalidReplicationFactor, "unable to replicate the partition %d time(s): the target replication factor of %d cannot be reached because only 1 broker(s) are registered", spec.rf, spec.rf)
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

// createTopicSpec validates and (unless validateOnly) creates the topic:
// it opens every partition log, persists the metadata file and only then
// makes the topic visible.
func (b *Broker) createTopicSpec(spec *topicSpec, validateOnly bool) (*topic, error) {
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
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
	t := &topic{name: spec.name, internal: spec.internal, configs: spec.configs}
	if validateOnly {
		for i := int32(0); i < spec.partitions; i++ {
			t.partitions = append(t.partitions, &partition{topic: t, index: i})
		}
		return t, nil
	}
	for {
		t.id = newUUID()
		if b.lookupTopicID(t.id) == nil {
			break
		}
	}
	b.mu.RLock()
	cfg := b.storageConfigLocked(t)
	b.mu.RUnlock()
	for i := int32(0); i < spec.partitions; i++ {
		p, err := b.newPartition(t, i, cfg)
		if err != nil {
			b.discard(t.partitions)
			return nil, err
		}
		t.partitions = append(t.partitions, p)
	}
	if err := b.saveMeta(func(m *metaFile) { m.Topics = append(m.Topics, metaTopicOf(t)) }); err != nil {
		b.discard(t.partitions)
		return nil, errorf(tributary.ErrKafkaStorageError, "persisting metadata: %v", err)
	}
	b.mu.Lock()
	b.mu.topics[t.name] = t
	b.mu.byID[t.id] = t
	b.mu.Unlock()
	b.logger.Info("created topic", "topic", t.name, "id", uuidString(t.id), "partitions", len(t.partitions), "configs", t.configs)
	return t, nil
}

// newPartition opens a fresh log for partition i of t. A directory left
// by an interrupted delete is removed first so old records never
// reappear under a new topic.
func (b *Broker) newPartition(t *topic, i int32, cfg storage.Config) (*partition, error) {
	dir := b.partitionDir(t.name, i)
	if _, err := os.Stat(dir); err == nil {
		b.logger.Warn("removing stale partition directory", "dir", dir)
		if err := os.RemoveAll(dir); err != nil {
			return nil, errorf(tributary.ErrKafkaStorageError, "removing stale %s: %v", dir, err)
		}
	}
	l, err := b.openLog(dir, cfg)
	if err != nil {
		return nil, errorf(tributary.ErrKafkaStorageError, "opening %s: %v", dir, err)
	}
	return &partition{topic: t, index: i, log: l}, nil
}

func (b *Broker) openLog(dir string, cfg storage.Config) (*storage.Log, error) {
	return storage.Open(dir, cfg, storage.Options{Logger: b.logger.With("log", filepath.Base(dir))})
}

// discard deletes the logs of partitions that were never published.
func (b *Broker) discard(ps []*partition) {
	for _, p := range ps {
		if p.log != nil {
			if err := p.log.Delete(); err != nil {
				b.logger.Warn("deleting partition log", "dir", p.log.Dir(), "err", err)
			}
		}
	}
}

// deleteTopic removes the topic from the registry, persists that, and
// deletes its partition directories.
func (b *Broker) deleteTopic(t *topic) error {
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	if t.internal {
		return errorf(tributary.ErrInvalidRequest, "deleting internal topic %s is not allowed", t.name)
	}
	b.mu.Lock()
	if b.mu.topics[t.name] != t {
		b.mu.Unlock()
		return errorf(tributary.ErrUnknownTopicOrPartition, "topic %s does not exist", t.name)
	}
	delete(b.mu.topics, t.name)
	delete(b.mu.byID, t.id)
	b.mu.Unlock()
	if err := b.saveMeta(nil); err != nil {
		b.mu.Lock()
		b.mu.topics[t.name] = t
		b.mu.byID[t.id] = t
		b.mu.Unlock()
		return errorf(tributary.ErrKafkaStorageError, "persisting metadata: %v", err)
	}
	b.discard(t.partitions)
	b.logger.Info("deleted topic", "topic", t.name, "id", uuidString(t.id))
	return nil
}

// addPartitions grows t to count partitions.
func (b *Broker) addPartitions(t *topic, count int32, validateOnly bool) error {
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	b.mu.RLock()
	cur := int32(len(t.partitions))
	live := b.mu.topics[t.name] == t
	cfg := b.storageConfigLocked(t)
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
	if validateOnly {
		return nil
	}
	var added []*partition
	for i := cur; i < count; i++ {
		p, err := b.newPartition(t, i, cfg)
		if err != nil {
			b.discard(added)
			return err
		}
		added = append(added, p)
	}
	all := append(append([]*partition(nil), t.partitions...), added...)
	err := b.saveMeta(func(m *metaFile) {
		for i := range m.Topics {
			if m.Topics[i].Name == t.name {
				m.Topics[i].Partitions = count
				for range added {
					m.Topics[i].LeaderEpochs = append(m.Topics[i].LeaderEpochs, 0)
				}
			}
		}
	})
	if err != nil {
		b.discard(added)
		return errorf(tributary.ErrKafkaStorageError, "persisting metadata: %v", err)
	}
	b.mu.Lock()
	t.partitions = all
	b.mu.Unlock()
	b.logger.Info("added partitions", "topic", t.name, "from", cur, "to", count)
	return nil
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
