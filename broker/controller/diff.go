package controller

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
)

// Delta is what changed between two images, for the broker to act on
// (become leader or follower, create or delete partition logs, reload
// configs) without scanning every partition: images share whatever did not
// change, so a pointer comparison finds the changes.
type Delta struct {
	// CreatedTopics and DeletedTopics, sorted by name. A topic deleted and
	// created again under the same name is in both.
	CreatedTopics []*Topic
	DeletedTopics []*Topic
	// Partitions whose state changed (new partitions of existing topics
	// included, Old nil), sorted by topic name then index. Partitions of
	// created and deleted topics are not repeated here.
	Partitions []PartitionDelta
	// Brokers whose registration changed (registered, fenced, unfenced,
	// re-registered, unregistered), sorted.
	Brokers []int32
	// TopicConfigs names topics whose overrides changed; ClusterConfigs
	// and NodeConfigs report the dynamic broker configs.
	TopicConfigs   []string
	ClusterConfigs bool
	NodeConfigs    []int32
}

// PartitionDelta is one partition's change.
type PartitionDelta struct {
	Topic *Topic // in the new image
	Index int32
	Old   *Partition // nil for a new partition
	New   *Partition
}

// Diff returns the changes from old to new (old may be nil: everything is
// new).
func Diff(old, new *Image) Delta {
	if old == nil {
		old = NewImage()
	}
	var d Delta
	for id, t := range new.TopicsByID {
		ot := old.TopicsByID[id]
		if ot == nil {
			d.CreatedTopics = append(d.CreatedTopics, t)
			continue
		}
		if ot == t {
			continue
		}
		for i, p := range t.Partitions {
			var op *Partition
			if i < len(ot.Partitions) {
				op = ot.Partitions[i]
			}
			if op != p {
				d.Partitions = append(d.Partitions, PartitionDelta{Topic: t, Index: int32(i), Old: op, New: p})
			}
		}
		if !sameMap(ot.Configs, t.Configs) {
			d.TopicConfigs = append(d.TopicConfigs, t.Name)
		}
	}
	for id, t := range old.TopicsByID {
		if new.TopicsByID[id] == nil {
			d.DeletedTopics = append(d.DeletedTopics, t)
		}
	}
	for id, b := range new.Brokers {
		if old.Brokers[id] != b {
			d.Brokers = append(d.Brokers, id)
		}
	}
	for id := range old.Brokers {
		if new.Brokers[id] == nil {
			d.Brokers = append(d.Brokers, id)
		}
	}
	d.ClusterConfigs = !sameMap(old.ClusterConfigs, new.ClusterConfigs)
	for id, m := range new.NodeConfigs {
		if !sameMap(old.NodeConfigs[id], m) {
			d.NodeConfigs = append(d.NodeConfigs, id)
		}
	}
	for id := range old.NodeConfigs {
		if _, ok := new.NodeConfigs[id]; !ok {
			d.NodeConfigs = append(d.NodeConfigs, id)
		}
	}
	byName := func(ts []*Topic) { sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name }) }
	byName(d.CreatedTopics)
	byName(d.DeletedTopics)
	sort.Slice(d.Partitions, func(i, j int) bool {
		a, b := d.Partitions[i], d.Partitions[j]
		if a.Topic.Name != b.Topic.Name {
			return a.Topic.Name < b.Topic.Name
		}
		return a.Index < b.Index
	})
	sort.Slice(d.Brokers, func(i, j int) bool { return d.Brokers[i] < d.Brokers[j] })
	sort.Strings(d.TopicConfigs)
	sort.Slice(d.NodeConfigs, func(i, j int) bool { return d.NodeConfigs[i] < d.NodeConfigs[j] })
	return d
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// ParseVoters parses controller.quorum.voters, "1@host:9093,2@host:9095",
// into node id → address.
func ParseVoters(s string) (map[int32]string, error) {
	out := map[int32]string{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		idStr, addr, ok := strings.Cut(part, "@")
		if !ok || addr == "" {
			return nil, fmt.Errorf("controller.quorum.voters: %q is not id@host:port", part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("controller.quorum.voters: %q: %v", part, err)
		}
		id, err := strconv.ParseInt(idStr, 10, 32)
		if err != nil || id < 0 {
			return nil, fmt.Errorf("controller.quorum.voters: bad node id in %q", part)
		}
		if _, dup := out[int32(id)]; dup {
			return nil, fmt.Errorf("controller.quorum.voters: node id %d given twice", id)
		}
		out[int32(id)] = addr
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("controller.quorum.voters is empty")
	}
	return out, nil
}
