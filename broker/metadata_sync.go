package broker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/controller"
	"github.com/tributary/tributary/broker/replica"
	"github.com/tributary/tributary/broker/storage"
)

// The broker side of the cluster: the controller quorum (broker/controller)
// holds the metadata, and this file makes the node's local state follow
// it.
//
//   - openController starts this node's voter of the metadata quorum
//     (a single node is a quorum of one), migrating a single-node
//     __cluster_metadata.json into the quorum's first image.
//   - heartbeatLoop registers the broker with the active controller and
//     heartbeats every broker.heartbeat.interval.ms; a broker whose
//     heartbeats stop is fenced by the controller and loses its
//     leaderships.
//   - reconcileLoop wakes on every applied metadata change and brings the
//     local registry (b.mu.topics) to the new image: it creates and deletes
//     partition logs, tells the replica manager each hosted partition's
//     leader, ISR and epochs (which makes it lead or follow), applies
//     config changes and moves group coordination with the leadership of
//     __consumer_offsets partitions.
//
// Handlers read topics and partitions from the registry, as before; the
// image (b.image) answers Metadata, DescribeCluster and FindCoordinator.

// controllerDir is the metadata quorum's directory inside the first log
// dir, named after KRaft's __cluster_metadata-0.
const controllerDir = "__cluster_metadata-0"

// openController starts the controller quorum voter and the replica
// manager. It does not wait for a leader.
func (b *Broker) openController() error {
	voters, err := parseVoters(b.cfg.ControllerQuorumVoters)
	if err != nil {
		return err
	}
	ln := b.cfg.ControllerListener
	if len(voters) == 0 {
		// A node alone: a quorum of one on a loopback port nobody
		// else needs to know.
		if ln == nil {
			if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
				return fmt.Errorf("broker: controller listener: %w", err)
			}
		}
		voters = map[int32]string{b.cfg.NodeID: ln.Addr().String()}
	} else if ln == nil {
		cl, _ := b.cfg.controllerListener()
		if ln, err = net.Listen("tcp", cl.hostPort()); err != nil {
			return fmt.Errorf("broker: controller listener: %w", err)
		}
	}
	b.ctrlAddr = ln.Addr().String()
	node, err := controller.Open(controller.Config{
		NodeID:                     b.cfg.NodeID,
		Voters:                     voters,
		Listener:                   ln,
		Dial:                       b.cfg.Dial,
		Dir:                        filepath.Join(b.dir, controllerDir),
		ClusterID:                  b.clusterID,
		Logger:                     b.logger,
		SessionTimeout:             time.Duration(b.cfg.BrokerSessionTimeoutMs) * time.Millisecond,
		HeartbeatInterval:          time.Duration(b.cfg.BrokerHeartbeatIntervalMs) * time.Millisecond,
		Bootstrap:                  b.legacyImage,
		DisableAutoLeaderRebalance: !b.cfg.AutoLeaderRebalanceEnable,
		ImbalanceCheckInterval:     time.Duration(b.cfg.LeaderImbalanceCheckIntervalSecs) * time.Second,
		ImbalancePercentage:        max(int(b.cfg.LeaderImbalancePerBrokerPercentage), 1),
	})
	if err != nil {
		ln.Close()
		return fmt.Errorf("broker: controller: %w", err)
	}
	b.ctrl = node
	b.peers.b = b
	b.rep, err = replica.New(replica.Config{
		NodeID:                          b.cfg.NodeID,
		Logger:                          b.logger,
		ReplicaLagTimeMax:               time.Duration(b.cfg.ReplicaLagTimeMaxMs) * time.Millisecond,
		FetchWaitMax:                    time.Duration(b.cfg.ReplicaFetchWaitMaxMs) * time.Millisecond,
		FetchMinBytes:                   b.cfg.ReplicaFetchMinBytes,
		FetchMaxBytes:                   b.cfg.ReplicaFetchMaxBytes,
		FetchResponseMaxBytes:           b.cfg.ReplicaFetchResponseMaxBytes,
		FetchBackoff:                    time.Duration(b.cfg.ReplicaFetchBackoffMs) * time.Millisecond,
		HighWatermarkCheckpointInterval: time.Duration(b.cfg.ReplicaHighWatermarkCheckpointMs) * time.Millisecond,
		ISRCheckInterval:                max(time.Duration(b.cfg.ReplicaLagTimeMaxMs)*time.Millisecond/2, 50*time.Millisecond),
		Transport:                       peerTransport{b},
		AlterPartition:                  b.alterPartition,
		HighWatermarkMoved:              b.replicaMoved,
	})
	if err != nil {
		node.Close()
		b.ctrl = nil
		return fmt.Errorf("broker: replica manager: %w", err)
	}
	b.recon.cond = sync.NewCond(&b.recon.Mutex)
	return nil
}

// clusterIDFor derives a cluster id for a node that has none configured:
// random for a node alone, and for a quorum a hash of its voter list, so
// that every node of a cluster started from the same configuration agrees
// without a formatting step.
func clusterIDFor(voters string) string {
	if voters == "" {
		return uuidString(newUUID())
	}
	sum := sha256.Sum256([]byte("tributary cluster " + voters))
	var u [16]byte
	copy(u[:], sum[:16])
	return uuidString(u)
}

// image is the metadata image the local registry reflects, or nil before
// the first reconcile.
func (b *Broker) image() *controller.Image { return b.recon.img.Load() }

// ControllerID is the node id of the active controller as this node
// sees it, or -1.
func (b *Broker) ControllerID() int32 {
	if b.ctrl == nil {
		return -1
	}
	return b.ctrl.LeaderID()
}

// startCluster starts the loops that follow the controller. Run calls it
// before listening and waits (waitServing) until this broker is
// registered and its registry reflects the metadata.
func (b *Broker) startCluster() {
	b.goTracked(b.reconcileLoop)
	b.goTracked(b.heartbeatLoop)
}

// waitServing waits until the broker has registered with the controller
// and reconciled an initialized image that shows it unfenced.
func (b *Broker) waitServing(ctx context.Context) error {
	return b.waitRecon(ctx, errors.New("broker: closed"), func(img *controller.Image) bool {
		// The registration of this incarnation (its address may have
		// changed), not one left from before a restart.
		info := img.Broker(b.cfg.NodeID)
		return img.Initialized && img.Alive(b.cfg.NodeID) && b.recon.registered &&
			info != nil && info.Epoch == b.brokerEpoch.Load()
	})
}

// waitReconciled waits until the registry reflects metadata offset off
// (an admin change this node made through the controller), so a client
// that created a topic here can use it here at once.
func (b *Broker) waitReconciled(ctx context.Context, off uint64) error {
	return b.waitRecon(ctx, errorf(tributary.ErrBrokerNotAvailable, "broker is shutting down"), func(img *controller.Image) bool {
		return img.Offset >= off
	})
}

// waitRecon waits until done holds for the reconciled image (called
// with recon's lock held), ctx ends (its error) or Close starts (closed).
// The reconcile loop, Close and ctx's end all broadcast recon.cond.
func (b *Broker) waitRecon(ctx context.Context, closed error, done func(*controller.Image) bool) error {
	stop := context.AfterFunc(ctx, func() {
		b.recon.Lock()
		b.recon.cond.Broadcast()
		b.recon.Unlock()
	})
	defer stop()
	b.recon.Lock()
	defer b.recon.Unlock()
	for {
		if img := b.recon.img.Load(); img != nil && done(img) {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		select {
		case <-b.closing:
			return closed
		default:
		}
		b.recon.cond.Wait()
	}
}

// adminCtx bounds an admin change through the controller: the request's
// timeout when it has one, else 30 s; Close ends it.
func (b *Broker) adminCtx(timeoutMs int32) (context.Context, context.CancelFunc) {
	d := 30 * time.Second
	if timeoutMs > 0 {
		d = time.Duration(timeoutMs) * time.Millisecond
	}
	return context.WithTimeout(b.life, d)
}

// afterChange waits until a change the controller committed is reflected
// here; the offset is the node's image offset once the call returned.
func (b *Broker) afterChange(ctx context.Context) error {
	return b.waitReconciled(ctx, b.ctrl.Image().Offset)
}

// heartbeatLoop registers this broker with the active controller and
// heartbeats; it registers again when the controller no longer knows this
// incarnation (a new epoch after a restart, or after being unregistered).
func (b *Broker) heartbeatLoop() {
	interval := time.Duration(b.cfg.BrokerHeartbeatIntervalMs) * time.Millisecond
	var epoch int64 = -1
	for {
		ctx, cancel := context.WithTimeout(b.life, max(interval, time.Second))
		var err error
		if epoch < 0 {
			host, port := b.advertised()
			var info controller.BrokerInfo
			info.ID, info.Host, info.Port, info.Rack, info.ControllerAddr = b.cfg.NodeID, host, port, b.cfg.BrokerRack, b.ctrlAddr
			epoch, err = b.ctrl.RegisterBroker(ctx, info)
			if err != nil {
				epoch = -1
			} else {
				b.brokerEpoch.Store(epoch)
			}
		}
		if epoch >= 0 {
			_, err = b.ctrl.Heartbeat(ctx, b.cfg.NodeID, epoch)
			if err == nil {
				b.recon.Lock()
				if !b.recon.registered {
					b.recon.registered = true
					b.recon.cond.Broadcast()
				}
				b.recon.Unlock()
			} else if errors.Is(err, tributary.ErrStaleBrokerEpoch) || errors.Is(err, tributary.ErrBrokerIdNotRegistered) {
				b.logger.Warn("controller does not know this broker's epoch; registering again", "epoch", epoch, "err", err)
				epoch = -1
			}
		}
		cancel()
		if err != nil && !errors.Is(err, context.Canceled) {
			b.logger.Debug("heartbeat failed", "err", err)
		}
		wait := interval
		if err != nil {
			wait = min(interval, 200*time.Millisecond)
		}
		if !b.sleep(wait) {
			return
		}
	}
}

// reconcileLoop applies every new image to the local state.
func (b *Broker) reconcileLoop() {
	ch, cancel := b.ctrl.Subscribe()
	defer cancel()
	for {
		img := b.ctrl.Image()
		if prev := b.recon.img.Load(); prev == nil || img.Offset > prev.Offset || prev != img {
			b.reconcile(prev, img)
		}
		select {
		case <-ch:
		case <-b.closing:
			return
		}
	}
}

// reconcile brings the registry from prev (nil at start) to img. It runs
// only on the reconcile loop, under adminMu: disk work (opening and
// deleting logs) happens here, off the request path.
func (b *Broker) reconcile(prev, img *controller.Image) {
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	me := b.cfg.NodeID

	// Dynamic broker configs first: topics without overrides follow them.
	nodeCfg := img.NodeConfigs[me]
	if prev == nil || !maps.Equal(prev.ClusterConfigs, img.ClusterConfigs) || !maps.Equal(prev.NodeConfigs[me], nodeCfg) {
		if eff, err := b.effectiveConfig(img.ClusterConfigs, nodeCfg); err != nil {
			b.logger.Error("dynamic broker configs from the controller are invalid; keeping the previous ones", "err", err)
		} else {
			b.mu.Lock()
			b.mu.dynCluster = nonNilMap(cloneMap(img.ClusterConfigs))
			b.mu.dynNode = nonNilMap(cloneMap(nodeCfg))
			b.mu.eff = eff
			b.mu.Unlock()
			if prev != nil {
				b.applyConfigsToLogs()
			}
		}
	}

	type roleChange struct {
		p  *partition
		st *controller.Partition
	}
	var changes []roleChange
	var removed []*partition

	// Topics deleted, or re-created under the same name with a new id.
	b.mu.RLock()
	var gone []*topic
	for name, t := range b.mu.topics {
		if nt := img.TopicByName(name); nt == nil || nt.ID != controller.TopicID(t.id) {
			gone = append(gone, t)
		}
	}
	b.mu.RUnlock()
	for _, t := range gone {
		b.mu.Lock()
		delete(b.mu.topics, t.name)
		delete(b.mu.byID, t.id)
		b.mu.Unlock()
		var logs []*partition
		for _, p := range t.partitions {
			if p.log != nil {
				logs = append(logs, p)
			}
		}
		// Retired now, before any topic is created below: a topic
		// deleted and created again under the same name between two
		// images needs the directory names its old logs still hold.
		b.unhost(logs)
		b.logger.Info("deleted topic", "topic", t.name, "id", uuidString(t.id))
	}

	for _, nt := range img.Topics() {
		b.mu.RLock()
		t := b.mu.topics[nt.Name]
		b.mu.RUnlock()
		created := t == nil
		if created {
			t = &topic{name: nt.Name, id: [16]byte(nt.ID), internal: nt.Internal, configs: nonNilMap(cloneMap(nt.Configs))}
		} else if !maps.Equal(t.configs, nt.Configs) {
			b.mu.Lock()
			t.configs = nonNilMap(cloneMap(nt.Configs))
			b.mu.Unlock()
			cfg := b.storageConfig(t)
			for _, p := range t.partitions {
				if p.log != nil {
					p.log.SetConfig(cfg)
				}
			}
		}
		b.mu.RLock()
		old := t.partitions
		cfg := b.storageConfigLocked(t)
		b.mu.RUnlock()
		next := old
		changed := false
		for i, st := range nt.Partitions {
			idx := int32(i)
			hosted := st.IsReplica(me) || slices.Contains(st.AddingReplicas, me)
			var cur *partition
			if i < len(old) {
				cur = old[i]
			}
			if cur != nil && (cur.log != nil) == hosted && cur.state.Load() == st {
				// Unchanged since the last image (images share what
				// did not change): no replica manager call, no wakeups.
				continue
			}
			switch {
			case cur != nil && (cur.log != nil) == hosted:
				// Same hosting: only the replica state may have moved.
			case hosted:
				np, err := b.hostPartition(t, idx, cfg)
				if err != nil {
					b.logger.Error("cannot open a partition this broker hosts; it stays offline here", "topic", t.name, "partition", idx, "err", err)
					np = &partition{topic: t, index: idx}
				}
				if cur != nil && cur.log != nil {
					removed = append(removed, cur)
				}
				cur = np
			default:
				if cur != nil && cur.log != nil {
					removed = append(removed, cur)
				}
				cur = &partition{topic: t, index: idx}
			}
			cur.state.Store(st)
			if i >= len(old) || old[i] != cur {
				if !changed {
					next = slices.Clone(old)
					changed = true
				}
				if i < len(next) {
					next[i] = cur
				} else {
					next = append(next, cur)
				}
			}
			if cur.rep != nil {
				changes = append(changes, roleChange{cur, st})
			}
		}
		if created || changed {
			b.mu.Lock()
			t.partitions = next
			if created {
				b.mu.topics[t.name] = t
				b.mu.byID[t.id] = t
			}
			b.mu.Unlock()
			if created {
				b.logger.Info("created topic", "topic", t.name, "id", uuidString(t.id), "partitions", len(next))
			}
		}
	}

	// Roles after the registry: a partition that starts leading is
	// already findable by the requests it will be sent.
	for _, c := range changes {
		b.rep.Apply(c.p.rep, replicaState(c.st))
		b.notifyPartition(c.p)
		switch c.p.topic.name {
		case offsetsTopic:
			b.offsetsRoleChanged(c.p)
		case txnStateTopic:
			b.txnStateRoleChanged(c.p)
		}
	}
	b.unhost(removed)
	if img.ClusterID != "" && img.ClusterID != b.clusterID {
		b.adoptClusterID(img.ClusterID)
	}

	b.countReplication(prev, img)
	b.recon.Lock()
	b.recon.img.Store(img)
	b.recon.cond.Broadcast()
	b.recon.Unlock()
	if gc := b.groups.Load(); gc != nil && b.lookupTopic(offsetsTopic) != nil && !gc.topicKnown.Load() {
		go b.callGroups(nil, &groupCall{topicReady: true})
	}
	if tc := b.txns.Load(); tc != nil && b.lookupTopic(txnStateTopic) != nil && !tc.topicKnown.Load() {
		go b.callTxns(nil, &txnCall{topicReady: true})
	}
}

// unhost stops hosting partitions: the replica manager lets go of them,
// whatever is parked on them wakes up (and finds them gone), and their
// directories are renamed to <dir>.<id>-delete at once and removed after
// file.delete.delay.ms, as Kafka does (orphans.go).
func (b *Broker) unhost(ps []*partition) {
	for _, p := range ps {
		b.rep.Remove(p.rep)
		b.repParts.Delete(p.rep)
		b.notifyPartition(p)
		switch p.topic.name {
		case offsetsTopic:
			b.offsetsRoleChanged(&partition{topic: p.topic, index: p.index})
		case txnStateTopic:
			b.txnStateRoleChanged(&partition{topic: p.topic, index: p.index})
		}
		v, _ := b.topicConfigValue(p.topic, "file.delete.delay.ms")
		ms, _ := strconv.ParseInt(v, 10, 64)
		b.retire([]*partition{p}, time.Duration(ms)*time.Millisecond)
	}
}

// offsetsRoleChanged moves the groups of one __consumer_offsets partition
// with its leadership. It must not wait for the coordinator loop, which
// may itself wait for the registry.
func (b *Broker) offsetsRoleChanged(p *partition) {
	if b.groups.Load() == nil {
		return
	}
	b.tryGo(func() {
		if err := b.syncOffsetsPartition(p.index); err != nil {
			b.logger.Debug("moving group coordination", "partition", p.index, "err", err)
		}
	})
}

// hostPartition opens (creating if needed) the log of a partition this
// node holds a replica of and registers it with the replica manager.
func (b *Broker) hostPartition(t *topic, idx int32, cfg storage.Config) (*partition, error) {
	dir := b.partitionDir(t.name, idx)
	_, statErr := os.Stat(dir)
	fresh := os.IsNotExist(statErr)
	var named bool // partition.metadata already names t
	if !fresh {
		id, ok := readPartitionMetadata(dir)
		named = ok && id == t.id
		if ok && !named {
			// Left by a topic of the same name that was deleted while
			// this broker was down: never let its records reappear.
			b.logger.Warn("partition directory belongs to an older topic of the same name; retiring it", "dir", dir, "topic_id", uuidString(id))
			if err := os.Rename(dir, dir+"."+hexID()+deleteDirSuffix); err != nil {
				return nil, err
			}
			fresh = true
		}
	}
	l, err := b.openLog(dir, cfg)
	if err != nil {
		if fresh {
			// What the failed open made (out of descriptors, full disk).
			os.RemoveAll(dir)
		}
		return nil, err
	}
	if !named {
		if err := writePartitionMetadata(dir, t.id); err != nil {
			l.Close()
			return nil, err
		}
	}
	p := &partition{topic: t, index: idx, log: l}
	p.rep = b.rep.Add(t.name, t.id, idx, l)
	b.repParts.Store(p.rep, p)
	return p, nil
}

// replicaState converts the controller's view of a partition into the
// replica manager's.
func replicaState(st *controller.Partition) replica.State {
	return replica.State{
		Leader:         st.Leader,
		LeaderEpoch:    st.LeaderEpoch,
		PartitionEpoch: st.PartitionEpoch,
		Replicas:       slices.Clone(st.Replicas),
		ISR:            slices.Clone(st.ISR),
		Adding:         slices.Clone(st.AddingReplicas),
		Removing:       slices.Clone(st.RemovingReplicas),
	}
}

// replicaMoved is the replica manager's HighWatermarkMoved: wake what is
// parked on the partition.
func (b *Broker) replicaMoved(rp *replica.Partition) {
	if v, ok := b.repParts.Load(rp); ok {
		b.notifyPartition(v.(*partition))
	}
}

// alterPartition is the replica manager's way to the controller.
func (b *Broker) alterPartition(ctx context.Context, req replica.AlterPartitionRequest) (replica.State, error) {
	st, err := b.ctrl.AlterPartition(ctx, controller.AlterPartitionRequest{
		TopicID:        controller.TopicID(req.TopicID),
		Partition:      req.Partition,
		LeaderID:       b.cfg.NodeID,
		BrokerEpoch:    b.brokerEpoch.Load(),
		LeaderEpoch:    req.LeaderEpoch,
		PartitionEpoch: req.PartitionEpoch,
		NewISR:         req.ISR,
	})
	if err != nil {
		return replica.State{}, err
	}
	return replicaState(st), nil
}

// applyConfigsToLogs pushes the effective topic configs to every open log
// after the broker defaults changed.
func (b *Broker) applyConfigsToLogs() {
	for _, p := range b.allPartitions() {
		p.log.SetConfig(b.storageConfig(p.topic))
	}
}

// adoptClusterID records the quorum's cluster id in meta.properties: a
// node that joined a cluster belongs to it from then on.
func (b *Broker) adoptClusterID(id string) {
	b.clusterID = id
	if err := b.writeMetaProperties(); err != nil {
		b.logger.Warn("writing meta.properties", "err", err)
	}
}

// legacyImage turns a single-node broker's __cluster_metadata.json into
// the first image of the quorum (Config.Bootstrap), so an upgraded data
// directory keeps its topics (with their ids, configs and leader epochs),
// dynamic configs and producer-id counter. Partitions stay on this node.
func (b *Broker) legacyImage() (*controller.Image, error) {
	img := controller.NewImage()
	img.ClusterID = b.clusterID
	m, err := readLegacyMeta(b.dir)
	if err != nil || m == nil {
		return img, err
	}
	me := b.cfg.NodeID
	for _, mt := range m.Topics {
		id, err := parseUUID(mt.ID)
		if err != nil || mt.Partitions < 0 || mt.Name == "" {
			return nil, fmt.Errorf("broker: %s: bad topic entry %q", metadataFile, mt.Name)
		}
		t := &controller.Topic{Name: mt.Name, ID: controller.TopicID(id), Internal: mt.Internal, Configs: nonNilMap(cloneMap(mt.Configs))}
		for i := int32(0); i < mt.Partitions; i++ {
			var epoch int32
			if int(i) < len(mt.LeaderEpochs) {
				epoch = mt.LeaderEpochs[i]
			}
			t.Partitions = append(t.Partitions, &controller.Partition{
				Replicas: []int32{me}, ISR: []int32{me}, Leader: me, LeaderEpoch: epoch,
			})
		}
		img.TopicsByName[t.Name] = t
		img.TopicsByID[t.ID] = t
	}
	img.ClusterConfigs = nonNilMap(cloneMap(m.ClusterConfigs))
	if len(m.NodeConfigs) > 0 {
		img.NodeConfigs[me] = nonNilMap(cloneMap(m.NodeConfigs))
	}
	if next, err := readPIDBlock(b.dir); err == nil {
		img.NextProducerID = next
	}
	b.logger.Info("migrating single-node metadata into the controller quorum", "file", metadataFile, "topics", len(m.Topics))
	return img, nil
}

// legacyMigrated renames the old metadata file once the quorum holds its
// contents, so it is never read again.
func (b *Broker) legacyMigrated() {
	path := filepath.Join(b.dir, metadataFile)
	if _, err := os.Stat(path); err == nil {
		if err := os.Rename(path, path+".migrated"); err == nil {
			syncDir(b.dir)
		}
	}
}

// peerTransport is the replica manager's Transport over peers.
type peerTransport struct{ b *Broker }

func (t peerTransport) Fetch(ctx context.Context, leader int32, req *kmsg.FetchRequest) (*kmsg.FetchResponse, error) {
	return peerCall[*kmsg.FetchResponse](ctx, t.b, leader, laneFetch, req)
}

func (t peerTransport) OffsetForLeaderEpoch(ctx context.Context, leader int32, req *kmsg.OffsetForLeaderEpochRequest) (*kmsg.OffsetForLeaderEpochResponse, error) {
	return peerCall[*kmsg.OffsetForLeaderEpochResponse](ctx, t.b, leader, laneOther, req)
}

// splitHostPort splits host:port, with port 0 when it does not parse.
func splitHostPort(hp string) (string, int32) {
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		return hp, 0
	}
	n, _ := strconv.Atoi(p)
	return h, int32(n)
}

func (t peerTransport) ListOffsets(ctx context.Context, leader int32, req *kmsg.ListOffsetsRequest) (*kmsg.ListOffsetsResponse, error) {
	return peerCall[*kmsg.ListOffsetsResponse](ctx, t.b, leader, laneOther, req)
}

// removeOrphanDirs removes partition directories the metadata does not
// give this node (orphans.go): Run calls it once the registry reflects
// the metadata. adminMu keeps the reconcile loop from creating a
// directory meanwhile.
func (b *Broker) removeOrphanDirs() {
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	known := map[string]bool{}
	for _, p := range b.allPartitions() {
		known[filepath.Base(p.log.Dir())] = true
	}
	b.removeOrphans(known)
}

// partitionMetadataFile names the topic a partition directory belongs
// to, as Kafka's partition.metadata does (KIP-516): "version: 0" and
// "topic_id: <id>".
const partitionMetadataFile = "partition.metadata"

func readPartitionMetadata(dir string) ([16]byte, bool) {
	data, err := os.ReadFile(filepath.Join(dir, partitionMetadataFile))
	if err != nil {
		return [16]byte{}, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "topic_id:"); ok {
			id, err := parseUUID(strings.TrimSpace(v))
			return id, err == nil
		}
	}
	return [16]byte{}, false
}

func writePartitionMetadata(dir string, id [16]byte) error {
	return writeFileAtomic(filepath.Join(dir, partitionMetadataFile), []byte("version: 0\ntopic_id: "+uuidString(id)+"\n"))
}

func hexID() string {
	id := newUUID()
	return hex.EncodeToString(id[:])
}

// peerCall sends req to broker node on lane and returns its response as
// the type the request's ResponseKind gives.
func peerCall[R kmsg.Response](ctx context.Context, b *Broker, node int32, lane int, req kmsg.Request) (R, error) {
	resp, err := b.peers.request(ctx, node, lane, req)
	if err != nil {
		var zero R
		return zero, err
	}
	return resp.(R), nil
}
