package broker

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// On-disk layout of the first log dir:
//
//	meta.properties            node.id, cluster.id, version (as Kafka writes it)
//	__cluster_metadata-0/      the controller quorum's Raft log (raft.db)
//	                           and snapshots of the metadata image
//	<topic>-<partition>/       one storage.Log per partition
//
// Since the controller quorum (metadata_sync.go) the metadata lives in
// __cluster_metadata-0/ (the Raft log and snapshots); a metadata file left
// by an older single-node broker is migrated into the quorum's first
// image and renamed to __cluster_metadata.json.migrated.
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
			b.clusterID = clusterIDFor(b.cfg.ControllerQuorumVoters)
		}
		return b.writeMetaProperties()
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
	b.directoryID = props["directory.id"]
	if b.clusterID == "" {
		return fmt.Errorf("broker: %s has no cluster.id", path)
	}
	if b.cfg.ClusterID != "" && b.cfg.ClusterID != b.clusterID {
		return fmt.Errorf("broker: %s has cluster.id=%s but the configuration says %s", path, b.clusterID, b.cfg.ClusterID)
	}
	return nil
}

// writeMetaProperties writes meta.properties as Kafka does.
func (b *Broker) writeMetaProperties() error {
	if b.directoryID == "" {
		b.directoryID = uuidString(newUUID())
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "#\n#%s\n", time.Now().UTC().Format(time.UnixDate))
	fmt.Fprintf(&buf, "cluster.id=%s\ndirectory.id=%s\nnode.id=%d\nversion=1\n", b.clusterID, b.directoryID, b.cfg.NodeID)
	return writeFileAtomic(filepath.Join(b.dir, metaPropertiesFile), buf.Bytes())
}

// load prepares the log dir: it creates it, takes its lock and reads (or
// writes) meta.properties. Topics come from the controller quorum
// (metadata_sync.go).
func (b *Broker) load() error {
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return fmt.Errorf("broker: log dir: %w", err)
	}
	if err := lockDir(b); err != nil {
		return err
	}
	return b.loadMetaProperties()
}

// readLegacyMeta reads the metadata file of a single-node broker from
// before the controller quorum, or returns nil when there is none.
func readLegacyMeta(dir string) (*metaFile, error) {
	data, err := os.ReadFile(filepath.Join(dir, metadataFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	var m metaFile
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("broker: %s: %w", metadataFile, err)
	}
	if m.Version != 1 {
		return nil, fmt.Errorf("broker: %s: unknown version %d", metadataFile, m.Version)
	}
	return &m, nil
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
