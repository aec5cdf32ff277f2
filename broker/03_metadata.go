package broker

import (
	"net"
	"slices"
	"sort"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// Metadata: v0-13
//
// Brokers: every registered, unfenced broker at the address it
// registered (with its rack, v1+); controller: the active controller of
// the metadata quorum (-1 while there is none).
// Topics: a null list (v1+) or an empty one (v0) means every topic, sorted
// by name; otherwise the requested topics in request order, duplicates
// answered once. A missing topic is created when the request allows it
// (always before v4) and auto.create.topics.enable is set, with
// num.partitions partitions and returned at once; otherwise it gets
// UNKNOWN_TOPIC_OR_PARTITION (UNKNOWN_TOPIC_ID when asked by id, v10+).
// Every partition's leader, leader epoch (v7+), replicas, ISR and offline
// replicas (on fenced brokers, v5+) come from the metadata image; a
// partition without a leader answers LEADER_NOT_AVAILABLE with leader -1. Topic ids (v10+) are the real,
// persisted ids. Authorized operations are "not provided"
// (-2147483648) unless asked for (v8+), then everything (no ACLs yet).

func init() { register(3, 0, 13, handleMetadata) }

const authorizedOpsOmitted = -2147483648

// Every topic / cluster operation, as AclOperation bits: no ACLs yet, so a
// client may do anything.
const (
	topicAuthorizedOps   = 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<10 | 1<<11
	clusterAuthorizedOps = 1<<5 | 1<<7 | 1<<8 | 1<<9 | 1<<10 | 1<<11 | 1<<12 | 1<<13 | 1<<14
)

func handleMetadata(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.MetadataRequest)
	resp := r.ResponseKind().(*kmsg.MetadataResponse)

	img := b.image()
	for _, info := range img.LiveBrokers() {
		br := kmsg.NewMetadataResponseBroker()
		br.NodeID, br.Host, br.Port = info.ID, info.Host, info.Port
		if info.Rack != "" {
			br.Rack = kmsg.StringPtr(info.Rack)
		}
		resp.Brokers = append(resp.Brokers, br)
	}
	resp.ClusterID = kmsg.StringPtr(b.clusterID)
	resp.ControllerID = b.ControllerID()
	resp.AuthorizedOperations = authorizedOpsOmitted
	if r.IncludeClusterAuthorizedOperations {
		resp.AuthorizedOperations = clusterAuthorizedOps
	}

	all := r.Topics == nil || (r.Version == 0 && len(r.Topics) == 0)
	if all {
		b.mu.RLock()
		ts := make([]*topic, 0, len(b.mu.topics))
		for _, t := range b.mu.topics {
			ts = append(ts, t)
		}
		b.mu.RUnlock()
		sort.Slice(ts, func(i, j int) bool { return ts[i].name < ts[j].name })
		for _, t := range ts {
			resp.Topics = append(resp.Topics, b.metadataTopic(r, t))
		}
		return resp, nil
	}

	autoCreate := r.AllowAutoTopicCreation || r.Version < 4
	seenName := map[string]bool{}
	seenID := map[[16]byte]bool{}
	for _, rt := range r.Topics {
		if rt.Topic == nil {
			// By id (v10+).
			if seenID[rt.TopicID] {
				continue
			}
			seenID[rt.TopicID] = true
			t := b.lookupTopicID(rt.TopicID)
			if t == nil {
				st := kmsg.NewMetadataResponseTopic()
				st.TopicID = rt.TopicID
				st.ErrorCode = tributary.ErrUnknownTopicId.Code
				st.AuthorizedOperations = authorizedOpsOmitted
				resp.Topics = append(resp.Topics, st)
				continue
			}
			resp.Topics = append(resp.Topics, b.metadataTopic(r, t))
			continue
		}
		name := *rt.Topic
		if seenName[name] {
			continue
		}
		seenName[name] = true
		t := b.lookupTopic(name)
		if t == nil {
			code := tributary.ErrUnknownTopicOrPartition.Code
			if autoCreate && b.autoCreateEnabled() && !internalTopics[name] {
				var err error
				t, err = b.createTopicSpec(&topicSpec{name: name, partitions: -1, rf: -1, configs: map[string]string{}}, false)
				switch {
				case err == nil:
				case tributary.CodeOf(err) == tributary.ErrTopicAlreadyExists.Code:
					t = b.lookupTopic(name) // created concurrently
				default:
					code = tributary.CodeOf(err)
					b.logger.Info("metadata auto-create failed", "topic", name, "err", err)
				}
			}
			if t == nil {
				st := kmsg.NewMetadataResponseTopic()
				st.Topic = kmsg.StringPtr(name)
				st.ErrorCode = code
				st.AuthorizedOperations = authorizedOpsOmitted
				resp.Topics = append(resp.Topics, st)
				continue
			}
		}
		resp.Topics = append(resp.Topics, b.metadataTopic(r, t))
	}
	return resp, nil
}

func (b *Broker) autoCreateEnabled() bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.mu.eff.AutoCreateTopicsEnable
}

func (b *Broker) metadataTopic(r *kmsg.MetadataRequest, t *topic) kmsg.MetadataResponseTopic {
	st := kmsg.NewMetadataResponseTopic()
	st.Topic = kmsg.StringPtr(t.name)
	st.TopicID = t.id
	st.IsInternal = t.internal
	st.AuthorizedOperations = authorizedOpsOmitted
	if r.IncludeTopicAuthorizedOperations {
		st.AuthorizedOperations = topicAuthorizedOps
	}
	b.mu.RLock()
	ps := t.partitions
	b.mu.RUnlock()
	img := b.image()
	st.Partitions = make([]kmsg.MetadataResponseTopicPartition, 0, len(ps))
	for _, p := range ps {
		sp := kmsg.NewMetadataResponseTopicPartition()
		sp.Partition = p.index
		cs := p.state.Load()
		if cs == nil {
			sp.Leader = -1
			sp.ErrorCode = tributary.ErrLeaderNotAvailable.Code
			st.Partitions = append(st.Partitions, sp)
			continue
		}
		sp.Leader = cs.Leader
		sp.LeaderEpoch = cs.LeaderEpoch
		sp.Replicas = slices.Clone(cs.Replicas)
		sp.ISR = slices.Clone(cs.ISR)
		for _, r := range cs.Replicas {
			if !img.Alive(r) {
				sp.OfflineReplicas = append(sp.OfflineReplicas, r)
			}
		}
		if cs.Leader < 0 {
			sp.ErrorCode = tributary.ErrLeaderNotAvailable.Code
		}
		st.Partitions = append(st.Partitions, sp)
	}
	return st
}

// advertised is the host and port clients are told to connect to:
// advertised.listeners if set, else the listener, with a wildcard host or
// port 0 replaced by the address actually bound.
func (b *Broker) advertised() (string, int32) {
	var l listener
	if b.cfg.AdvertisedListeners != "" {
		l, _ = parseListeners(b.cfg.AdvertisedListeners)
	} else if b.cfg.Listener == nil {
		l, _ = parseListeners(b.cfg.Listeners)
	}
	if l.host == "" || l.port == 0 || l.host == "0.0.0.0" || l.host == "::" {
		if h, p, err := net.SplitHostPort(b.Addr()); err == nil {
			if l.host == "" || l.host == "0.0.0.0" || l.host == "::" {
				l.host = h
				if ip := net.ParseIP(h); ip != nil && ip.IsUnspecified() {
					l.host = "localhost"
				}
			}
			if l.port == 0 {
				n, _ := strconv.Atoi(p)
				l.port = int32(n)
			}
		}
	}
	return l.host, l.port
}
