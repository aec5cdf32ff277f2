package broker

// TxnOffsetCommit: v0–4. Offsets a transactional producer commits for a
// consumer group inside its transaction (consume-transform-produce). The
// group coordinator (broker/group) holds them pending and writes them to
// __consumer_offsets as a transactional batch of the producer; they take
// effect when the transaction's commit marker reaches that partition, and
// are dropped on abort (txncoord.go, writeMarker). v5 belongs to KIP-890
// part 2, not advertised.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/group"
)

func init() { register(28, 0, 4, handleTxnOffsetCommit) }

func handleTxnOffsetCommit(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.TxnOffsetCommitRequest)
	fail := func(e *tributary.Error) kmsg.Response { return group.TxnOffsetCommitAnswer(r, e.Code) }
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			if _, err := b.lookupPartition(t.Topic, p.Partition); err != nil {
				return fail(tributary.ErrUnknownTopicOrPartition), nil
			}
		}
	}
	return b.groupRequest(req, r.Group, fail, func(c *group.Coordinator, now time.Time, _ group.Ref) kmsg.Response {
		// A zombie's late commit is refused here, before it becomes
		// pending: the group's offsets partition knows the producer's
		// newer epoch from the marker that fenced it (Kafka refuses it
		// at the append, with the same result).
		if p, err := b.leaderPartition(offsetsTopic, group.Partition(r.Group, max(b.groups.Load().nparts, 1))); err == nil {
			if epoch, known := p.log.ProducerState(r.ProducerID); known && r.ProducerEpoch < epoch {
				return fail(tributary.ErrProducerFenced)
			}
		}
		return c.TxnOffsetCommit(now, r)
	})
}
