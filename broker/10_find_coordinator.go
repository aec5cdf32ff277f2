package broker

// FindCoordinator: v0-6.
//
// v0-3 ask for one key, v4+ (KIP-699) for a batch of CoordinatorKeys, each
// answered in request order. A group key (type 0, the only type before
// v1) is coordinated by the leader of its __consumer_offsets partition,
// whichever broker that is (COORDINATOR_NOT_AVAILABLE while the partition
// has no leader); the topic is created on the first such request. A
// transaction key (type 1) is coordinated the same way by the leader of
// its __transaction_state partition (txncoord.go), that topic created on
// the first such request. Any
// other key type (share groups, 2, included) is INVALID_REQUEST.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/group"
)

func init() { register(10, 0, 6, handleFindCoordinator) }

func handleFindCoordinator(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.FindCoordinatorRequest)
	resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := r.CoordinatorKeys
	if r.Version < 4 {
		keys = []string{r.CoordinatorKey}
	}
	var topicErr, txnErr *tributary.Error
	ensured, txnEnsured := false, false
	answer := func(key string) (int32, string, int32, *tributary.Error, string) {
		switch r.CoordinatorType {
		case 0:
		case 1:
			if !txnEnsured {
				txnEnsured = true
				txnErr = b.ensureTxnTopic(req)
			}
			if txnErr != nil {
				return -1, "", -1, txnErr, "the transaction coordinator is not available"
			}
			return b.txnCoordinatorFor(key)
		default:
			return -1, "", -1, tributary.ErrInvalidRequest, "unknown coordinator key type"
		}
		if !ensured {
			ensured = true
			topicErr = b.ensureOffsetsTopic(req)
		}
		if topicErr != nil {
			return -1, "", -1, topicErr, "the group coordinator is not available"
		}
		return b.groupCoordinatorFor(key)
	}
	if r.Version < 4 {
		node, h, p, err, msg := answer(keys[0])
		resp.NodeID, resp.Host, resp.Port = node, h, p
		if err != nil {
			resp.ErrorCode = err.Code
			if r.Version >= 1 {
				resp.ErrorMessage = kmsg.StringPtr(msg)
			}
		}
		return resp, nil
	}
	for _, k := range keys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key = k
		node, h, p, err, msg := answer(k)
		c.NodeID, c.Host, c.Port = node, h, p
		if err != nil {
			c.ErrorCode = err.Code
			c.ErrorMessage = kmsg.StringPtr(msg)
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	return resp, nil
}

// groupCoordinatorFor answers where group key is coordinated: the leader
// of its __consumer_offsets partition.
func (b *Broker) groupCoordinatorFor(key string) (int32, string, int32, *tributary.Error, string) {
	return b.internalLeader(offsetsTopic, func(n int32) int32 { return group.Partition(key, n) }, "group")
}

// internalLeader answers where a key of an internal topic (a group, a
// transactional id) is coordinated: the leader of the partition part
// maps it to.
func (b *Broker) internalLeader(topic string, part func(n int32) int32, what string) (int32, string, int32, *tributary.Error, string) {
	t := b.lookupTopic(topic)
	if t == nil {
		return -1, "", -1, tributary.ErrCoordinatorNotAvailable, topic + " does not exist yet"
	}
	b.mu.RLock()
	ps := t.partitions
	b.mu.RUnlock()
	if len(ps) == 0 {
		return -1, "", -1, tributary.ErrCoordinatorNotAvailable, topic + " has no partitions"
	}
	p := ps[part(int32(len(ps)))]
	st := p.state.Load()
	if st == nil || st.Leader < 0 {
		return -1, "", -1, tributary.ErrCoordinatorNotAvailable, "the " + what + "'s partition of " + topic + " has no leader"
	}
	info := b.image().Broker(st.Leader)
	if info == nil || info.Fenced {
		return -1, "", -1, tributary.ErrCoordinatorNotAvailable, "the " + what + " coordinator is not available"
	}
	return info.ID, info.Host, info.Port, nil, ""
}
