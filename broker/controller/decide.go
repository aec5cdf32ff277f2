package controller

import (
	"errors"
	"slices"
	"sort"
	"strconv"

	"github.com/tributary/tributary"
)

// The decision functions: pure functions over an Image that return the
// records the leader proposes (or a Kafka error). None of them reads a
// clock or a random source; what must be random (a topic id, placement's
// start) comes in as an argument.

// change accumulates the records of one decision while keeping a scratch
// image with them applied, so a later step (an election after a fence, a
// second topic of one CreateTopics) sees the earlier ones.
type change struct {
	img  *Image
	recs []Record
}

func newChange(img *Image) *change { return &change{img: img} }

func (c *change) add(r Record) {
	c.recs = append(c.recs, r)
	c.img = Apply(c.img, c.img.Offset, r)
}

// setPartition records a new state for partition idx of t, bumping the
// partition epoch and, when the leader changed, the leader epoch. A state
// equal to the current one records nothing.
func (c *change) setPartition(id TopicID, idx int32, next *Partition) {
	t := c.img.TopicsByID[id]
	cur := t.Partitions[idx]
	next.LeaderEpoch, next.PartitionEpoch = cur.LeaderEpoch, cur.PartitionEpoch
	if next.equal(cur) {
		return
	}
	next.PartitionEpoch = cur.PartitionEpoch + 1
	if next.Leader != cur.Leader {
		next.LeaderEpoch = cur.LeaderEpoch + 1
	}
	c.add(PartitionChange{ID: id, Partition: idx, State: next})
}

// eachPartition calls f for every partition in name then index order, so
// decisions over "all partitions" come out the same on every run.
func eachPartition(img *Image, f func(t *Topic, idx int32, p *Partition)) {
	for _, t := range img.Topics() {
		for i, p := range t.Partitions {
			f(t, int32(i), p)
		}
	}
}

// cleanLeader returns the first replica, in replica order, that is in isr
// and alive, or -1. Kafka's PartitionChangeBuilder walks the replicas in
// assignment order too, so the preferred leader wins whenever it can.
func cleanLeader(img *Image, replicas, isr []int32) int32 {
	for _, r := range replicas {
		if slices.Contains(isr, r) && img.Alive(r) {
			return r
		}
	}
	return -1
}

// anyLiveReplica returns the first alive replica or -1 (unclean election).
func anyLiveReplica(img *Image, replicas []int32) int32 {
	for _, r := range replicas {
		if img.Alive(r) {
			return r
		}
	}
	return -1
}

// without returns s minus x, keeping order.
func without(s []int32, x ...int32) []int32 {
	out := make([]int32, 0, len(s))
	for _, v := range s {
		if !slices.Contains(x, v) {
			out = append(out, v)
		}
	}
	return out
}

// intersect returns the members of a that are in b, in a's order.
func intersect(a, b []int32) []int32 {
	out := make([]int32, 0, len(a))
	for _, v := range a {
		if slices.Contains(b, v) {
			out = append(out, v)
		}
	}
	return out
}

// ---- brokers ----

// RegisterBrokerRecords registers a broker incarnation. A previous
// incarnation that is still unfenced is fenced first (with its elections):
// the new process has lost whatever the old one held in memory and rejoins
// as a follower. The new registration starts fenced; its first heartbeat
// unfences it. Its epoch is the offset of the entry that carries these
// records (read it from the image once applied).
func RegisterBrokerRecords(img *Image, b BrokerInfo) []Record {
	c := newChange(img)
	if old := img.Brokers[b.ID]; old != nil && !old.Fenced {
		fence(c, old)
	}
	c.add(RegisterBroker{ID: b.ID, Host: b.Host, Port: b.Port, Rack: b.Rack, ControllerAddr: b.ControllerAddr})
	return c.recs
}

// checkBroker validates a broker id and epoch. Broker epochs are log
// offsets, so never below 1: an epoch of 0 or -1 means "not given" and is
// not checked (AlterPartition and AllocateProducerIds callers may leave it
// out), except by a heartbeat, which must name its incarnation.
func checkBroker(img *Image, id int32, epoch int64) (*BrokerInfo, error) {
	b := img.Brokers[id]
	if b == nil {
		return nil, errorf(tributary.ErrBrokerIdNotRegistered, "Broker %d is not registered.", id)
	}
	if epoch > 0 && b.Epoch != epoch {
		return nil, errorf(tributary.ErrStaleBrokerEpoch, "Expected broker epoch %d, but got broker epoch %d.", b.Epoch, epoch)
	}
	return b, nil
}

// HeartbeatRecords handles a broker heartbeat: a fenced broker is unfenced
// (the simple form of KRaft's "caught up" rule: its first heartbeat after
// registering). An unknown broker is BROKER_ID_NOT_REGISTERED, an older
// incarnation STALE_BROKER_EPOCH.
func HeartbeatRecords(img *Image, id int32, epoch int64) ([]Record, error) {
	b, err := checkBroker(img, id, epoch)
	if err != nil {
		return nil, err
	}
	if b.Epoch != epoch {
		return nil, errorf(tributary.ErrStaleBrokerEpoch, "Expected broker epoch %d, but got broker epoch %d.", b.Epoch, epoch)
	}
	if !b.Fenced {
		return nil, nil
	}
	return UnfenceBrokerRecords(img, id), nil
}

// FenceBrokerRecords fences broker id (missed heartbeats) and moves its
// leaderships: for every partition whose ISR holds it, it leaves the ISR
// unless it is the last member (Kafka keeps the last one so the partition
// remembers who has its data); a partition it led gets the first live ISR
// replica as leader, else, if unclean.leader.election.enable holds for the
// topic, the first live replica (with an ISR of just that one), else no
// leader (-1).
func FenceBrokerRecords(img *Image, id int32) []Record {
	b := img.Brokers[id]
	if b == nil || b.Fenced {
		return nil
	}
	c := newChange(img)
	fence(c, b)
	return c.recs
}

func fence(c *change, b *BrokerInfo) {
	c.add(FenceBroker{ID: b.ID, Epoch: b.Epoch})
	eachPartition(c.img, func(t *Topic, idx int32, p *Partition) {
		if !p.InISR(b.ID) && p.Leader != b.ID {
			return
		}
		next := p.clone()
		if len(next.ISR) > 1 {
			next.ISR = without(next.ISR, b.ID)
		}
		if p.Leader == b.ID {
			next.Leader = cleanLeader(c.img, next.Replicas, next.ISR)
			if next.Leader == -1 && c.img.UncleanElection(t) {
				if l := anyLiveReplica(c.img, next.Replicas); l >= 0 {
					next.Leader, next.ISR = l, []int32{l}
				}
			}
		}
		c.setPartition(t.ID, idx, next)
	})
}

// UnfenceBrokerRecords unfences broker id and gives it the partitions
// that have no leader and can take it: those whose ISR holds it, and, when
// the topic allows unclean election, those it is a replica of.
func UnfenceBrokerRecords(img *Image, id int32) []Record {
	b := img.Brokers[id]
	if b == nil || !b.Fenced {
		return nil
	}
	c := newChange(img)
	c.add(UnfenceBroker{ID: id, Epoch: b.Epoch})
	electLeaderless(c)
	return c.recs
}

// electLeaderless elects a leader for every partition without one where a
// live candidate exists.
func electLeaderless(c *change) {
	eachPartition(c.img, func(t *Topic, idx int32, p *Partition) {
		if p.Leader != -1 {
			return
		}
		next := p.clone()
		next.Leader = cleanLeader(c.img, p.Replicas, p.ISR)
		if next.Leader == -1 && c.img.UncleanElection(t) {
			if l := anyLiveReplica(c.img, p.Replicas); l >= 0 {
				next.Leader, next.ISR = l, []int32{l}
			}
		}
		if next.Leader != -1 {
			c.setPartition(t.ID, idx, next)
		}
	})
}

// UnregisterBrokerRecords removes a broker (fencing it first if needed).
func UnregisterBrokerRecords(img *Image, id int32, epoch int64) ([]Record, error) {
	b, err := checkBroker(img, id, epoch)
	if err != nil {
		return nil, err
	}
	c := newChange(img)
	if !b.Fenced {
		fence(c, b)
	}
	c.add(UnregisterBroker{ID: id, Epoch: b.Epoch})
	return c.recs, nil
}

// ---- topics ----

// TopicSpec is one topic to create, already validated by the broker (name,
// configs) and with num.partitions / default.replication.factor resolved.
// Either Assignment (one replica list per partition) or Partitions and
// ReplicationFactor is set.
type TopicSpec struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	Assignment        [][]int32
	Configs           map[string]string
	Internal          bool
	ValidateOnly      bool
}

// TopicResult is the outcome of one TopicSpec.
type TopicResult struct {
	ID  TopicID
	Err error
	// Partitions and ReplicationFactor as created (CreateTopics v5+
	// answers them).
	Partitions        int32
	ReplicationFactor int16
}

// MaxPartitions bounds a topic's partition count, as the broker does
// (the controller's RPC must not allocate without a bound either).
const MaxPartitions = 10000

// CreateTopicRecord decides the creation of one topic: its placement
// (PlaceReplicas over the live brokers from start, or the validated manual
// assignment) and each partition's first state (ISR = the live replicas,
// leader = the first of them, epochs 0).
func CreateTopicRecord(img *Image, spec TopicSpec, id TopicID, start int) (CreateTopic, error) {
	if img.TopicsByName[spec.Name] != nil {
		return CreateTopic{}, errorf(tributary.ErrTopicAlreadyExists, "Topic '%s' already exists.", spec.Name)
	}
	if img.TopicsByID[id] != nil {
		return CreateTopic{}, errorf(tributary.ErrInconsistentTopicId, "topic id %s is taken", id)
	}
	if spec.Partitions > MaxPartitions || len(spec.Assignment) > MaxPartitions {
		return CreateTopic{}, errorf(tributary.ErrInvalidPartitions, "Number of partitions is above the limit of %d.", MaxPartitions)
	}
	var assignment [][]int32
	if spec.Assignment != nil {
		if err := validateAssignment(img, spec.Assignment, 0); err != nil {
			return CreateTopic{}, err
		}
		assignment = spec.Assignment
	} else {
		if spec.Partitions <= 0 {
			return CreateTopic{}, errorf(tributary.ErrInvalidPartitions, "Number of partitions was set to an invalid non-positive value.")
		}
		var err error
		assignment, err = PlaceReplicas(img.LiveBrokers(), spec.Partitions, spec.ReplicationFactor, 0, start)
		if err != nil {
			return CreateTopic{}, err
		}
	}
	t := &Topic{Name: spec.Name, ID: id, Internal: spec.Internal, Configs: cloneMap(spec.Configs)}
	for _, replicas := range assignment {
		t.Partitions = append(t.Partitions, newPartition(img, replicas))
	}
	return CreateTopic{Topic: t}, nil
}

func newPartition(img *Image, replicas []int32) *Partition {
	isr := make([]int32, 0, len(replicas))
	for _, r := range replicas {
		if img.Alive(r) {
			isr = append(isr, r)
		}
	}
	p := &Partition{Replicas: slices.Clone(replicas), ISR: isr, Leader: -1}
	if len(isr) > 0 {
		p.Leader = isr[0]
	}
	return p
}

// validateAssignment checks a manual assignment as KRaft's
// ReplicationControlManager does, with its messages. rf is the replica
// count every partition must have, 0 to take the first partition's.
func validateAssignment(img *Image, assignment [][]int32, rf int) error {
	if len(assignment) == 0 {
		return errorf(tributary.ErrInvalidReplicaAssignment, "The manual partition assignment is empty.")
	}
	for i, replicas := range assignment {
		if len(replicas) == 0 {
			return errorf(tributary.ErrInvalidReplicaAssignment, "The manual partition assignment includes an empty replica list.")
		}
		if rf == 0 {
			rf = len(replicas)
		}
		if len(replicas) != rf {
			return errorf(tributary.ErrInvalidReplicaAssignment, "The manual partition assignment includes a partition with %d replica(s), but this is not consistent with previous partitions, which have %d replica(s).", len(replicas), rf)
		}
		seen := map[int32]bool{}
		live := false
		for _, r := range replicas {
			if seen[r] {
				return errorf(tributary.ErrInvalidReplicaAssignment, "The manual partition assignment includes the broker %d more than once.", r)
			}
			seen[r] = true
			if img.Brokers[r] == nil {
				return errorf(tributary.ErrInvalidReplicaAssignment, "The manual partition assignment includes broker %d, but no such broker is registered.", r)
			}
			live = live || img.Alive(r)
		}
		if !live {
			return errorf(tributary.ErrInvalidReplicaAssignment, "All brokers specified in the manual partition assignment for partition %d are fenced or in controlled shutdown.", i)
		}
	}
	return nil
}

// CreateTopicsRecords decides several creations at once, each seeing the
// ones before it. ids[i] and starts[i] are the random inputs for specs[i].
// A ValidateOnly spec is checked but records nothing.
func CreateTopicsRecords(img *Image, specs []TopicSpec, ids []TopicID, starts []int) ([]Record, []TopicResult) {
	c := newChange(img)
	res := make([]TopicResult, len(specs))
	for i, s := range specs {
		r, err := CreateTopicRecord(c.img, s, ids[i], starts[i])
		if err != nil {
			res[i].Err = err
			continue
		}
		res[i] = TopicResult{ID: r.Topic.ID, Partitions: int32(len(r.Topic.Partitions)), ReplicationFactor: int16(len(r.Topic.Partitions[0].Replicas))}
		if !s.ValidateOnly {
			c.add(r)
		}
	}
	return c.recs, res
}

// DeleteTopicRecord deletes a topic by id.
func DeleteTopicRecord(img *Image, id TopicID) (Record, error) {
	if img.TopicsByID[id] == nil {
		return nil, errorf(tributary.ErrUnknownTopicId, "Topic id %s not found.", id)
	}
	return DeleteTopic{ID: id}, nil
}

// CreatePartitionsRecord grows topic name to total partitions. The new
// partitions are placed like AdminUtils places added partitions: the
// round-robin continues from partition 0's preferred leader, at partition
// index = the current count, with the topic's replication factor; or they
// take the manual assignment (one list per new partition).
func CreatePartitionsRecord(img *Image, name string, total int32, assignment [][]int32) (Record, error) {
	t := img.TopicsByName[name]
	if t == nil {
		return nil, errorf(tributary.ErrUnknownTopicOrPartition, "This server does not host this topic-partition.")
	}
	cur := int32(len(t.Partitions))
	switch {
	case total < cur:
		return nil, errorf(tributary.ErrInvalidPartitions, "Topic currently has %d partitions, which is higher than the requested %d.", cur, total)
	case total == cur:
		return nil, errorf(tributary.ErrInvalidPartitions, "Topic already has %d partitions.", cur)
	}
	if total > MaxPartitions {
		return nil, errorf(tributary.ErrInvalidPartitions, "Number of partitions is above the limit of %d.", MaxPartitions)
	}
	rf := len(t.Partitions[0].Replicas)
	if assignment != nil {
		if int32(len(assignment)) != total-cur {
			return nil, errorf(tributary.ErrInvalidReplicaAssignment, "Attempted to add %d additional partition(s), but only %d assignment(s) were specified.", total-cur, len(assignment))
		}
		if err := validateAssignment(img, assignment, rf); err != nil {
			return nil, err
		}
	} else {
		live := img.LiveBrokers()
		start := 0
		for i, b := range live {
			if b.ID == t.Partitions[0].Replicas[0] {
				start = i
			}
		}
		var err error
		assignment, err = PlaceReplicas(live, total-cur, int16(rf), cur, start)
		if err != nil {
			return nil, err
		}
	}
	r := CreatePartitions{ID: t.ID}
	for _, replicas := range assignment {
		r.Partitions = append(r.Partitions, newPartition(img, replicas))
	}
	return r, nil
}

// ConfigChangeRecords checks that every change names an existing resource
// (a topic by name; a broker by "" or a node id) and returns them as
// records, to be applied together.
func ConfigChangeRecords(img *Image, changes []ConfigChange) ([]Record, error) {
	recs := make([]Record, 0, len(changes))
	for _, ch := range changes {
		switch ch.Resource {
		case ResourceTopic:
			if img.TopicsByName[ch.Name] == nil {
				return nil, errorf(tributary.ErrUnknownTopicOrPartition, "Topic %s does not exist.", ch.Name)
			}
		case ResourceBroker:
			if ch.Name != "" {
				if _, err := strconv.ParseInt(ch.Name, 10, 32); err != nil {
					return nil, errorf(tributary.ErrInvalidRequest, "Invalid broker id %q.", ch.Name)
				}
			}
		default:
			return nil, errorf(tributary.ErrInvalidRequest, "Unsupported resource type %d.", ch.Resource)
		}
		recs = append(recs, ch)
	}
	// Turning on unclean election may give an offline partition a leader
	// now, as KRaft does when the config changes.
	c := newChange(img)
	for _, r := range recs {
		c.add(r)
	}
	electLeaderless(c)
	return c.recs, nil
}

// ---- producer ids ----

// ProducerIDBlockSize is the number of ids one AllocateProducerIds hands
// out, Kafka's ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE.
const ProducerIDBlockSize = 1000

// AllocateProducerIDsRecord hands broker id the next block of producer ids.
func AllocateProducerIDsRecord(img *Image, id int32, epoch int64) (ProducerIDBlock, error) {
	if _, err := checkBroker(img, id, epoch); err != nil {
		return ProducerIDBlock{}, err
	}
	return ProducerIDBlock{BrokerID: id, First: img.NextProducerID, Count: ProducerIDBlockSize}, nil
}

// ---- elections ----

// ElectLeadersRecords runs ElectLeaders: PREFERRED moves leadership to the
// first replica when it is alive and in the ISR (ELECTION_NOT_NEEDED if it
// already leads, PREFERRED_LEADER_NOT_AVAILABLE otherwise); UNCLEAN gives a
// leaderless partition a leader, from the ISR if possible, else any live
// replica (ELECTION_NOT_NEEDED if it has one, ELIGIBLE_LEADERS_NOT_AVAILABLE
// if none is alive). tps nil means every partition, and then only the
// partitions that got a new leader or failed with something other than
// ELECTION_NOT_NEEDED are in the result, as Kafka answers.
func ElectLeadersRecords(img *Image, unclean bool, tps []tributary.TopicPartition) ([]Record, map[tributary.TopicPartition]error) {
	c := newChange(img)
	res := map[tributary.TopicPartition]error{}
	all := tps == nil
	if all {
		eachPartition(img, func(t *Topic, idx int32, _ *Partition) {
			tps = append(tps, tributary.TopicPartition{Topic: t.Name, Partition: idx})
		})
	}
	for _, tp := range tps {
		t := c.img.TopicsByName[tp.Topic]
		if t == nil || tp.Partition < 0 || int(tp.Partition) >= len(t.Partitions) {
			res[tp] = errorf(tributary.ErrUnknownTopicOrPartition, "The partition does not exist.")
			continue
		}
		p := t.Partitions[tp.Partition]
		err := electOne(c, t, tp.Partition, p, unclean)
		if all && errors.Is(err, tributary.ErrElectionNotNeeded) {
			continue
		}
		res[tp] = err
	}
	return c.recs, res
}

func electOne(c *change, t *Topic, idx int32, p *Partition, unclean bool) error {
	next := p.clone()
	if !unclean {
		pref := p.Replicas[0]
		if p.Leader == pref {
			return errorf(tributary.ErrElectionNotNeeded, "Leader election not needed for topic partition.")
		}
		if !p.InISR(pref) || !c.img.Alive(pref) {
			return errorf(tributary.ErrPreferredLeaderNotAvailable, "Failed to elect leader for partition %s-%d under strategy PREFERRED.", t.Name, idx)
		}
		next.Leader = pref
		c.setPartition(t.ID, idx, next)
		return nil
	}
	if p.Leader != -1 && c.img.Alive(p.Leader) {
		return errorf(tributary.ErrElectionNotNeeded, "Leader election not needed for topic partition.")
	}
	next.Leader = cleanLeader(c.img, p.Replicas, p.ISR)
	if next.Leader == -1 {
		next.Leader = anyLiveReplica(c.img, p.Replicas)
		if next.Leader == -1 {
			return errorf(tributary.ErrEligibleLeadersNotAvailable, "Failed to elect leader for partition %s-%d under strategy UNCLEAN.", t.Name, idx)
		}
		next.ISR = []int32{next.Leader}
	}
	c.setPartition(t.ID, idx, next)
	return nil
}

// Imbalance returns, per broker that is the preferred leader (first
// replica) of at least one partition, the fraction of those partitions it
// does not lead: Kafka's leader imbalance ratio.
func Imbalance(img *Image) map[int32]float64 {
	total := map[int32]int{}
	notLed := map[int32]int{}
	eachPartition(img, func(_ *Topic, _ int32, p *Partition) {
		if len(p.Replicas) == 0 {
			return
		}
		pref := p.Replicas[0]
		total[pref]++
		if p.Leader != pref {
			notLed[pref]++
		}
	})
	out := make(map[int32]float64, len(total))
	for b, n := range total {
		out[b] = float64(notLed[b]) / float64(n)
	}
	return out
}

// RebalanceRecords is one run of the auto leader rebalance: for every
// broker whose imbalance is above pct percent
// (leader.imbalance.per.broker.percentage), a preferred election of each
// partition it should lead where it is alive and in the ISR.
func RebalanceRecords(img *Image, pct int) []Record {
	imb := Imbalance(img)
	c := newChange(img)
	eachPartition(img, func(t *Topic, idx int32, p *Partition) {
		if len(p.Replicas) == 0 {
			return
		}
		pref := p.Replicas[0]
		if p.Leader == pref || imb[pref]*100 <= float64(pct) {
			return
		}
		if p.InISR(pref) && c.img.Alive(pref) && !p.Reassigning() {
			next := p.clone()
			next.Leader = pref
			c.setPartition(t.ID, idx, next)
		}
	})
	return c.recs
}

// ---- AlterPartition ----

// AlterPartitionRequest is a leader's request to change its partition's
// ISR (Kafka's AlterPartition, key 56).
type AlterPartitionRequest struct {
	TopicID   TopicID
	Partition int32
	LeaderID  int32
	// BrokerEpoch of the asking leader; 0 or -1 skips the check.
	BrokerEpoch    int64
	LeaderEpoch    int32
	PartitionEpoch int32
	NewISR         []int32
}

// AlterPartitionRecords validates an ISR change as Kafka's
// ReplicationControlManager does: unknown partition →
// UNKNOWN_TOPIC_OR_PARTITION (UNKNOWN_TOPIC_ID for the topic), stale
// broker epoch → STALE_BROKER_EPOCH, not from the leader →
// NOT_LEADER_OR_FOLLOWER, another leader epoch → FENCED_LEADER_EPOCH,
// another partition epoch → INVALID_UPDATE_VERSION, an ISR without the
// leader or with duplicates → INVALID_REQUEST, an ISR member that is not a
// replica or is fenced → INELIGIBLE_REPLICA. A valid change sets the ISR
// (partition epoch + 1) and completes a reassignment whose new replicas
// all joined. An unchanged ISR records nothing. The partition's state after
// the records are applied is the answer.
func AlterPartitionRecords(img *Image, req AlterPartitionRequest) ([]Record, error) {
	t := img.TopicsByID[req.TopicID]
	if t == nil {
		return nil, errorf(tributary.ErrUnknownTopicId, "Topic id %s not found.", req.TopicID)
	}
	if req.Partition < 0 || int(req.Partition) >= len(t.Partitions) {
		return nil, errorf(tributary.ErrUnknownTopicOrPartition, "Partition %d of %s does not exist.", req.Partition, t.Name)
	}
	if _, err := checkBroker(img, req.LeaderID, req.BrokerEpoch); err != nil {
		return nil, err
	}
	p := t.Partitions[req.Partition]
	if p.Leader != req.LeaderID {
		return nil, errorf(tributary.ErrNotLeaderOrFollower, "Broker %d is not the leader of %s-%d (leader %d).", req.LeaderID, t.Name, req.Partition, p.Leader)
	}
	if req.LeaderEpoch != p.LeaderEpoch {
		return nil, errorf(tributary.ErrFencedLeaderEpoch, "Leader epoch %d is not the current %d.", req.LeaderEpoch, p.LeaderEpoch)
	}
	if req.PartitionEpoch != p.PartitionEpoch {
		return nil, errorf(tributary.ErrInvalidUpdateVersion, "Partition epoch %d is not the current %d.", req.PartitionEpoch, p.PartitionEpoch)
	}
	seen := map[int32]bool{}
	for _, r := range req.NewISR {
		if seen[r] {
			return nil, errorf(tributary.ErrInvalidRequest, "The new ISR lists broker %d more than once.", r)
		}
		seen[r] = true
		if !p.IsReplica(r) || !img.Alive(r) {
			return nil, errorf(tributary.ErrIneligibleReplica, "Broker %d is not an eligible ISR member of %s-%d (not a replica, or fenced).", r, t.Name, req.Partition)
		}
	}
	if !seen[p.Leader] {
		return nil, errorf(tributary.ErrInvalidRequest, "The new ISR does not include the leader %d.", p.Leader)
	}
	c := newChange(img)
	next := p.clone()
	next.ISR = slices.Clone(req.NewISR)
	c.setPartition(t.ID, req.Partition, next)
	maybeCompleteReassignment(c, t.ID, req.Partition)
	return c.recs, nil
}

// ---- reassignment ----

// Reassignment is one in-progress reassignment, as
// ListPartitionReassignments reports it.
type Reassignment struct {
	Replicas         []int32
	AddingReplicas   []int32
	RemovingReplicas []int32
}

// AlterReassignmentsRecords starts or cancels reassignments. A target
// makes replicas = target + (current − target), adding = target − current,
// removing = current − target (current meaning the replicas before any
// reassignment in progress, which the new target replaces); the
// reassignment finishes at once when every adding replica is already in
// the ISR, else when AlterPartition brings the last of them in. A nil
// target cancels (NO_REASSIGNMENT_IN_PROGRESS if there is none): the
// replicas go back to the original ones. Targets must be non-empty lists of
// distinct registered brokers (INVALID_REPLICA_ASSIGNMENT).
func AlterReassignmentsRecords(img *Image, targets map[tributary.TopicPartition][]int32) ([]Record, map[tributary.TopicPartition]error) {
	c := newChange(img)
	res := map[tributary.TopicPartition]error{}
	tps := make([]tributary.TopicPartition, 0, len(targets))
	for tp := range targets {
		tps = append(tps, tp)
	}
	sort.Slice(tps, func(i, j int) bool {
		if tps[i].Topic != tps[j].Topic {
			return tps[i].Topic < tps[j].Topic
		}
		return tps[i].Partition < tps[j].Partition
	})
	for _, tp := range tps {
		res[tp] = reassignOne(c, tp, targets[tp])
	}
	return c.recs, res
}

func reassignOne(c *change, tp tributary.TopicPartition, target []int32) error {
	t := c.img.TopicsByName[tp.Topic]
	if t == nil || tp.Partition < 0 || int(tp.Partition) >= len(t.Partitions) {
		return errorf(tributary.ErrUnknownTopicOrPartition, "The partition does not exist.")
	}
	p := t.Partitions[tp.Partition]
	orig := without(p.Replicas, p.AddingReplicas...)
	if target == nil {
		if !p.Reassigning() {
			return errorf(tributary.ErrNoReassignmentInProgress, "No reassignment in progress for %s-%d.", tp.Topic, tp.Partition)
		}
		next := p.clone()
		next.Replicas, next.AddingReplicas, next.RemovingReplicas = orig, nil, nil
		finishReplicas(c, t, next)
		c.setPartition(t.ID, tp.Partition, next)
		return nil
	}
	if err := validateAssignment(c.img, [][]int32{target}, len(target)); err != nil {
		return err
	}
	next := p.clone()
	next.Replicas = append(slices.Clone(target), without(orig, target...)...)
	next.AddingReplicas = without(target, orig...)
	next.RemovingReplicas = without(orig, target...)
	if len(next.AddingReplicas) == 0 && len(next.RemovingReplicas) == 0 {
		next.AddingReplicas, next.RemovingReplicas = nil, nil
	}
	c.setPartition(t.ID, tp.Partition, next)
	maybeCompleteReassignment(c, t.ID, tp.Partition)
	return nil
}

// maybeCompleteReassignment finishes a reassignment whose adding replicas
// are all in the ISR: replicas = the target, ISR ∩ target, a new leader if
// the old one was removed.
func maybeCompleteReassignment(c *change, id TopicID, idx int32) {
	t := c.img.TopicsByID[id]
	p := t.Partitions[idx]
	if !p.Reassigning() {
		return
	}
	for _, r := range p.AddingReplicas {
		if !p.InISR(r) {
			return
		}
	}
	target := without(p.Replicas, p.RemovingReplicas...)
	if len(intersect(p.ISR, target)) == 0 {
		return // nothing of the target is in sync yet: wait
	}
	next := p.clone()
	next.Replicas, next.AddingReplicas, next.RemovingReplicas = target, nil, nil
	finishReplicas(c, t, next)
	c.setPartition(id, idx, next)
}

// finishReplicas trims next's ISR to its replicas (never to nothing) and
// re-elects when the leader is no longer a replica.
func finishReplicas(c *change, t *Topic, next *Partition) {
	if isr := intersect(next.ISR, next.Replicas); len(isr) > 0 {
		next.ISR = isr
	}
	if next.Leader != -1 && !slices.Contains(next.Replicas, next.Leader) {
		next.Leader = cleanLeader(c.img, next.Replicas, next.ISR)
		if next.Leader == -1 && c.img.UncleanElection(t) {
			if l := anyLiveReplica(c.img, next.Replicas); l >= 0 {
				next.Leader, next.ISR = l, []int32{l}
			}
		}
	}
}

// ListReassignments reports the reassignments in progress among tps (nil:
// all partitions).
func ListReassignments(img *Image, tps []tributary.TopicPartition) map[tributary.TopicPartition]Reassignment {
	out := map[tributary.TopicPartition]Reassignment{}
	add := func(tp tributary.TopicPartition, p *Partition) {
		if p != nil && p.Reassigning() {
			out[tp] = Reassignment{Replicas: slices.Clone(p.Replicas), AddingReplicas: slices.Clone(p.AddingReplicas), RemovingReplicas: slices.Clone(p.RemovingReplicas)}
		}
	}
	if tps == nil {
		eachPartition(img, func(t *Topic, idx int32, p *Partition) {
			add(tributary.TopicPartition{Topic: t.Name, Partition: idx}, p)
		})
		return out
	}
	for _, tp := range tps {
		add(tp, img.Partition(tp.Topic, tp.Partition))
	}
	return out
}
