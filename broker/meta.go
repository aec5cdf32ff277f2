package broker

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"
)

// On-disk layout of the first log dir:
//
//	meta.properties            node.id, cluster.id, version (as Kafka writes it)
//	__cluster_metadata.json    topics (name, id, partition count, config
//	                           overrides, leader epochs) and dynamic broker
//	                           configs; replaced atomically on every change
//	<topic>-<partition>/       one storage.Log per partition
//
// The metadata file is the source of truth: a partition directory it does
// not name is a leftover of an interrupted create or delete, removed at
// start (orphans.go).
const (
	metaPropertiesFile = "meta.properties"
	metadataFile       = "__cluster_metadata.json"
)

type metaFile struct {
	Version int         `json:"version"`
	Topics  []metaTopic `json:"topics"`
	// Dynamic broker configs: for this node and the cluster default.
	NodeConfigs    map[string]string `json:"node_configs,omitempty"`
	ClusterConfigs map[string]string `json:"cluster_configs,omitempty"`
}

type metaTopic struct {
	Name         string            `json:"name"`
	ID           string            `json:"id"`
	Internal     bool              `json:"internal,omitempty"`
	Partitions   int32             `json:"partitions"`
	LeaderEpochs []int32           `json:"leader_epochs,omitempty"`
	Configs      map[string]string `json:"configs,omitempty"`
}

// snapshotLocked builds the metadata file contents from the current
// state. b.mu must be held (read is enough).
func (b *Broker) snapshotLocked() *metaFile {
	m := &metaFile{
		Version:        1,
		NodeConfigs:    cloneMap(b.mu.dynNode),
		ClusterConfigs: cloneMap(b.mu.dynCluster),
	}
	for _, t := range b.mu.topics {
		m.Topics = append(m.Topics, metaTopicOf(t))
	}
	sort.Slice(m.Topics, func(i, j int) bool { return m.Topics[i].Name < m.Topics[j].Name })
	return m
}

func metaTopicOf(t *topic) metaTopic {
	mt := metaTopic{
		Name:       t.name,
		ID:         uuidString(t.id),
		Internal:   t.internal,
		Partitions: int32(len(t.partitions)),
		Configs:    cloneMap(t.configs),
	}
	for _, p := range t.partitions {
		mt.LeaderEpochs = append(mt.LeaderEpochs, p.leaderEpoch)
	}
	return mt
}

// saveMeta writes the metadata file as the current state changed by
// mutate. The caller holds adminMu (so no other change races) but not mu.
func (b *Broker) saveMeta(mutate func(m *metaFile)) error {
	b.mu.RLock()
	m := b.snapshotLocked()
	b.mu.RUnlock()
	if mutate != nil {
		mutate(m)
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return b.writeMetadata(append(data, '\n'))
}

// writeFileAtomic replaces path with data so that a crash leaves either
// the old or the new contents: write a temporary file, fsync it, rename it
// over path, fsync the directory.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// loadMetaProperties reads meta.properties, or writes it for a new log
// dir. A node.id or cluster.id that contradicts the configuration stops
// the broker, as in Kafka: the directory belongs to another node.
func (b *Broker) loadMetaProperties() error {
	path := filepath.Join(b.dir, metaPropertiesFile)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		b.clusterID = b.cfg.ClusterID
		if b.clusterID == "" {
			b.clusterID = uuidString(newUUID())
		}
		var buf bytes.Buffer
		fmt.Fprintf(&buf, "#\n#%s\n", time.Now().UTC().Format(time.UnixDate))
		fmt.Fprintf(&buf, "cluster.id=%s\ndirectory.id=%s\nnode.id=%d\nversion=1\n", b.clusterID, uuidString(newUUID()), b.cfg.NodeID)
		return writeFileAtomic(path, buf.Bytes())
	}
	if err != nil {
		return err
	}
	props, err := ParseProperties(bufio.NewReader(f))
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if id := props["node.id"]; id != "" && id != strconv.Itoa(int(b.cfg.NodeID)) {
		return fmt.Errorf("broker: %s has node.id=%s but the configuration says %d", path, id, b.cfg.NodeID)
	}
	b.clusterID = props["cluster.id"]
	if b.clusterID == "" {
		return fmt.Errorf("broker: %s has no cluster.id", path)
	}
	if b.cfg.ClusterID != "" && b.cfg.ClusterID != b.clusterID {
		return fmt.Errorf("broker: %s has cluster.id=%s but the configuration says %s", path, b.clusterID, b.cfg.ClusterID)
	}
	return nil
}

// load prepares the log dir and opens every partition of every topic in
// the metadata file.
func (b *Broker) load() error {
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return fmt.Errorf("broker: log dir: %w", err)
	}
	if err := lockDir(b); err != nil {
		return err
	}
	if err := b.loadMetaProperties(); err != nil {
		return err
	}
	data, err := os.ReadFile(filepath.Join(b.dir, metadataFile))
	if errors.Is(err, os.ErrNotExist) {
		// A first create killed before the metadata file existed.
		b.removeOrphans(nil)
		b.ensureMetadataReserve(0)
		return nil
	}
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	var m metaFile
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("broker: %s: %w", metadataFile, err)
	}
	if m.Version != 1 {
		return fmt.Errorf("broker: %s: unknown version %d", metadataFile, m.Version)
	}
	b.mu.dynNode = nonNilMap(m.NodeConfigs)
	b.mu.dynCluster = nonNilMap(m.ClusterConfigs)
	eff, err := b.effectiveConfig(b.mu.dynCluster, b.mu.dynNode)
	if err != nil {
		return fmt.Errorf("broker: %s: dynamic broker configs: %w", metadataFile, err)
	}
	b.mu.eff = eff

	known := map[string]bool{}
	for _, mt := range m.Topics {
		id, err := parseUUID(mt.ID)
		if err != nil || mt.Partitions < 0 || mt.Name == "" {
			return fmt.Errorf("broker: %s: bad topic entry %q", metadataFile, mt.Name)
		}
		t := &topic{name: mt.Name, id: id, internal: mt.Internal, configs: nonNilMap(mt.Configs)}
		b.mu.topics[t.name] = t
		b.mu.byID[id] = t
		cfg := b.storageConfigLocked(t)
		for i := int32(0); i < mt.Partitions; i++ {
			p := &partition{topic: t, index: i}
			if int(i) < len(mt.LeaderEpochs) {
				p.leaderEpoch = mt.LeaderEpochs[i]
			}
			dir := b.partitionDir(t.name, i)
			known[filepath.Base(dir)] = true
			p.log, err = b.openLog(dir, cfg)
			if err != nil {
				return fmt.Errorf("broker: open %s: %w", dir, err)
			}
			t.partitions = append(t.partitions, p)
		}
	}
	b.removeOrphans(known)
	b.ensureMetadataReserve(len(data))
	b.logger.Info("loaded topics", "topics", len(m.Topics), "dir", b.dir)
	return nil
}

func (b *Broker) partitionDir(topicName string, index int32) string {
	return filepath.Join(b.dir, topicName+"-"+strconv.Itoa(int(index)))
}

// closeLogs closes every open log; the first error is returned.
func (b *Broker) closeLogs() error {
	var first error
	for _, p := range b.allPartitions() {
		if p.log == nil {
			continue
		}
		if err := p.log.Close(); err != nil && first == nil {
			first = fmt.Errorf("broker: close %s-%d: %w", p.topic.name, p.index, err)
		}
	}
	unlockDir(b)
	return first
}

func cloneMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
