package controller

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tributary/tributary"
)

// harness applies records the way a node does (one batch per log entry,
// offsets counting up) and remembers them, so a test can replay the log.
type harness struct {
	t       testing.TB
	img     *Image
	batches [][]Record
}

func newHarness(t testing.TB) *harness {
	h := &harness{t: t, img: NewImage()}
	h.apply([]Record{Bootstrap{ClusterID: "test"}})
	return h
}

// apply encodes and decodes the batch (so every scenario also round-trips
// the records) and applies it at the next offset.
func (h *harness) apply(recs []Record) {
	h.t.Helper()
	if len(recs) == 0 {
		return
	}
	data, err := EncodeBatch(recs)
	require.NoError(h.t, err)
	dec, err := DecodeBatch(data)
	require.NoError(h.t, err)
	again, err := EncodeBatch(dec)
	require.NoError(h.t, err)
	require.Equal(h.t, string(data), string(again), "records must survive encode/decode")
	require.Len(h.t, dec, len(recs))
	for i := range recs {
		require.IsType(h.t, recs[i], dec[i])
	}
	h.batches = append(h.batches, dec)
	h.img = ApplyBatch(h.img, h.img.Offset+1, dec)
	checkInvariants(h.t, h.img)
}

// brokers registers and unfences brokers with the given racks ("" for none).
func (h *harness) brokers(racks ...string) {
	h.t.Helper()
	for i, rack := range racks {
		id := int32(i + 1)
		h.apply(RegisterBrokerRecords(h.img, BrokerInfo{ID: id, Host: "127.0.0.1", Port: 9000 + id, Rack: rack}))
		recs, err := HeartbeatRecords(h.img, id, h.img.Brokers[id].Epoch)
		require.NoError(h.t, err)
		h.apply(recs)
	}
}

func (h *harness) create(name string, parts int32, rf int16, start int, configs map[string]string) *Topic {
	h.t.Helper()
	id := TopicID{byte(len(h.img.TopicsByID) + 1), 7}
	r, err := CreateTopicRecord(h.img, TopicSpec{Name: name, Partitions: parts, ReplicationFactor: rf, Configs: configs}, id, start)
	require.NoError(h.t, err)
	h.apply([]Record{r})
	return h.img.TopicByName(name)
}

func (h *harness) part(topic string, idx int32) *Partition { return h.img.Partition(topic, idx) }

func (h *harness) fence(id int32) { h.apply(FenceBrokerRecords(h.img, id)) }

func (h *harness) unfence(id int32) {
	h.t.Helper()
	recs, err := HeartbeatRecords(h.img, id, h.img.Brokers[id].Epoch)
	require.NoError(h.t, err)
	h.apply(recs)
}

// checkInvariants holds after every applied batch of every scenario.
func checkInvariants(t testing.TB, img *Image) {
	t.Helper()
	for _, tp := range img.Topics() {
		require.Same(t, tp, img.TopicsByID[tp.ID])
		for i, p := range tp.Partitions {
			where := fmt.Sprintf("%s-%d %+v", tp.Name, i, *p)
			require.NotEmpty(t, p.ISR, "ISR never empty: %s", where)
			for _, r := range p.ISR {
				require.True(t, p.IsReplica(r), "ISR ⊆ replicas: %s", where)
			}
			if p.Leader != -1 {
				require.True(t, p.InISR(p.Leader), "leader in ISR: %s", where)
				require.True(t, img.Alive(p.Leader), "leader alive: %s", where)
			}
			seen := map[int32]bool{}
			for _, r := range p.Replicas {
				require.False(t, seen[r], "distinct replicas: %s", where)
				seen[r] = true
			}
		}
	}
}

func TestPlacementDistinctAndEven(t *testing.T) {
	var brokers []*BrokerInfo
	for i := int32(1); i <= 5; i++ {
		brokers = append(brokers, &BrokerInfo{ID: i})
	}
	for start := 0; start < 5; start++ {
		a, err := PlaceReplicas(brokers, 20, 3, 0, start)
		require.NoError(t, err)
		require.Len(t, a, 20)
		leaders := map[int32]int{}
		replicas := map[int32]int{}
		for _, rs := range a {
			require.Len(t, rs, 3)
			require.Equal(t, 3, len(map[int32]bool{rs[0]: true, rs[1]: true, rs[2]: true}), "replicas distinct: %v", rs)
			leaders[rs[0]]++
			for _, r := range rs {
				replicas[r]++
			}
		}
		for id := int32(1); id <= 5; id++ {
			require.Equal(t, 4, leaders[id], "leaders spread evenly (start %d): %v", start, leaders)
			require.Equal(t, 12, replicas[id], "replicas spread evenly (start %d): %v", start, replicas)
		}
	}
	// Kafka's own example (AdminUtils doc): 5 brokers, 10 partitions, rf 3,
	// start 0: p0 = 0,1,2 ... p5 = 0,2,3 (shift grows when it wraps).
	a, err := PlaceReplicas(brokers, 10, 3, 0, 0)
	require.NoError(t, err)
	require.Equal(t, []int32{1, 2, 3}, a[0])
	require.Equal(t, []int32{5, 1, 2}, a[4])
	require.Equal(t, []int32{1, 3, 4}, a[5])
	require.Equal(t, []int32{5, 2, 3}, a[9])
}

func TestPlacementRackAware(t *testing.T) {
	var brokers []*BrokerInfo
	racks := []string{"a", "a", "b", "b", "c", "c"}
	for i, r := range racks {
		brokers = append(brokers, &BrokerInfo{ID: int32(i + 1), Rack: r})
	}
	rackOf := func(id int32) string { return racks[id-1] }
	for start := 0; start < 6; start++ {
		a, err := PlaceReplicas(brokers, 12, 3, 0, start)
		require.NoError(t, err)
		leaders := map[int32]int{}
		for _, rs := range a {
			got := map[string]bool{}
			for _, r := range rs {
				got[rackOf(r)] = true
			}
			require.Len(t, got, 3, "one replica per rack: %v", rs)
			leaders[rs[0]]++
		}
		for id := int32(1); id <= 6; id++ {
			require.Equal(t, 2, leaders[id], "leaders even: %v", leaders)
		}
	}
	// More replicas than racks: racks first, then any broker, still distinct.
	a, err := PlaceReplicas(brokers[:4], 4, 3, 0, 1)
	require.NoError(t, err)
	for _, rs := range a {
		require.Len(t, map[int32]bool{rs[0]: true, rs[1]: true, rs[2]: true}, 3)
		require.NotEqual(t, rackOf(rs[0]), rackOf(rs[1]), "second replica on the other rack: %v", rs)
	}
}

func TestPlacementErrors(t *testing.T) {
	brokers := []*BrokerInfo{{ID: 1}, {ID: 2}}
	_, err := PlaceReplicas(brokers, 3, 3, 0, 0)
	require.ErrorIs(t, err, tributary.ErrInvalidReplicationFactor)
	require.Equal(t, "Replication factor: 3 larger than available brokers: 2.", Message(err))
	_, err = PlaceReplicas(brokers, 3, 0, 0, 0)
	require.ErrorIs(t, err, tributary.ErrInvalidReplicationFactor)
	_, err = PlaceReplicas(nil, 1, 1, 0, 0)
	require.ErrorIs(t, err, tributary.ErrInvalidReplicationFactor)
}

func TestCreateTopicAndManualAssignment(t *testing.T) {
	h := newHarness(t)
	h.brokers("", "", "")
	tp := h.create("orders", 6, 3, 2, map[string]string{"cleanup.policy": "compact"})
	require.Len(t, tp.Partitions, 6)
	for _, p := range tp.Partitions {
		require.Equal(t, p.Replicas, p.ISR)
		require.Equal(t, p.Replicas[0], p.Leader)
		require.Zero(t, p.LeaderEpoch)
	}
	require.Equal(t, "compact", tp.Configs["cleanup.policy"])

	_, err := CreateTopicRecord(h.img, TopicSpec{Name: "orders", Partitions: 1, ReplicationFactor: 1}, TopicID{99}, 0)
	require.ErrorIs(t, err, tributary.ErrTopicAlreadyExists)
	_, err = CreateTopicRecord(h.img, TopicSpec{Name: "x", Partitions: 1, ReplicationFactor: 4}, TopicID{99}, 0)
	require.ErrorIs(t, err, tributary.ErrInvalidReplicationFactor)

	for _, bad := range [][][]int32{
		{{1, 1}},         // duplicate
		{{1, 9}},         // unknown broker
		{{1, 2}, {3}},    // inconsistent rf
		{{}},             // empty
		{{1, 2}, {2, 3}}, // fine: checked below
	} {
		_, err := CreateTopicRecord(h.img, TopicSpec{Name: "m", Assignment: bad}, TopicID{98}, 0)
		if len(bad) == 2 && len(bad[1]) == 2 {
			require.NoError(t, err)
			continue
		}
		require.ErrorIs(t, err, tributary.ErrInvalidReplicaAssignment, "%v", bad)
	}
	// A manual assignment naming a fenced broker: ISR is the live ones.
	h.fence(2)
	r, err := CreateTopicRecord(h.img, TopicSpec{Name: "m", Assignment: [][]int32{{2, 3}}}, TopicID{98}, 0)
	require.NoError(t, err)
	require.Equal(t, []int32{3}, r.Topic.Partitions[0].ISR)
	require.Equal(t, int32(3), r.Topic.Partitions[0].Leader)
	_, err = CreateTopicRecord(h.img, TopicSpec{Name: "m", Assignment: [][]int32{{2}}}, TopicID{98}, 0)
	require.ErrorIs(t, err, tributary.ErrInvalidReplicaAssignment)

	// Several topics in one call see each other: the second "a" fails.
	recs, res := CreateTopicsRecords(h.img, []TopicSpec{
		{Name: "a", Partitions: 1, ReplicationFactor: 1},
		{Name: "a", Partitions: 1, ReplicationFactor: 1},
		{Name: "v", Partitions: 1, ReplicationFactor: 1, ValidateOnly: true},
	}, []TopicID{{50}, {51}, {52}}, []int{0, 0, 0})
	require.Len(t, recs, 1)
	require.NoError(t, res[0].Err)
	require.ErrorIs(t, res[1].Err, tributary.ErrTopicAlreadyExists)
	require.NoError(t, res[2].Err)
}

func TestFenceElectsFromISR(t *testing.T) {
	h := newHarness(t)
	h.brokers("", "", "")
	h.apply([]Record{mustCreate(t, h.img, "t", [][]int32{{1, 2, 3}}, nil)})
	p0 := h.part("t", 0)
	require.Equal(t, int32(1), p0.Leader)

	h.fence(1)
	p := h.part("t", 0)
	require.Equal(t, int32(2), p.Leader, "next in replica order that is in the ISR and alive")
	require.Equal(t, []int32{2, 3}, p.ISR)
	require.Equal(t, p0.LeaderEpoch+1, p.LeaderEpoch)
	require.Equal(t, p0.PartitionEpoch+1, p.PartitionEpoch)

	// A follower fenced: out of the ISR, leader unchanged, leader epoch kept.
	h.fence(3)
	p2 := h.part("t", 0)
	require.Equal(t, int32(2), p2.Leader)
	require.Equal(t, []int32{2}, p2.ISR)
	require.Equal(t, p.LeaderEpoch, p2.LeaderEpoch)
	require.Equal(t, p.PartitionEpoch+1, p2.PartitionEpoch)

	// The last ISR member fenced: no leader, and the ISR keeps it.
	h.fence(2)
	p3 := h.part("t", 0)
	require.Equal(t, int32(-1), p3.Leader)
	require.Equal(t, []int32{2}, p3.ISR)
	require.Equal(t, p2.LeaderEpoch+1, p3.LeaderEpoch)

	// Broker 1 (not in the ISR) comes back: still no leader (clean only).
	h.unfence(1)
	require.Equal(t, int32(-1), h.part("t", 0).Leader)
	// Broker 2 (the last ISR member) comes back: it leads again.
	h.unfence(2)
	p4 := h.part("t", 0)
	require.Equal(t, int32(2), p4.Leader)
	require.Equal(t, p3.LeaderEpoch+1, p4.LeaderEpoch)
}

func TestFenceUncleanElection(t *testing.T) {
	for _, tc := range []struct {
		name    string
		topic   map[string]string
		cluster string // cluster-wide unclean.leader.election.enable, "" unset
		want    int32
	}{
		{name: "default off", want: -1},
		{name: "topic override on", topic: map[string]string{"unclean.leader.election.enable": "true"}, want: 3},
		{name: "cluster on", cluster: "true", want: 3},
		{name: "topic off beats cluster on", topic: map[string]string{"unclean.leader.election.enable": "false"}, cluster: "true", want: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.brokers("", "", "")
			if tc.cluster != "" {
				recs, err := ConfigChangeRecords(h.img, []ConfigChange{{Resource: ResourceBroker, Key: "unclean.leader.election.enable", Value: tc.cluster}})
				require.NoError(t, err)
				h.apply(recs)
			}
			h.apply([]Record{mustCreate(t, h.img, "t", [][]int32{{1, 2, 3}}, tc.topic)})
			h.fence(3) // out of the ISR
			h.unfence(3)
			h.fence(2)
			require.Equal(t, []int32{1}, h.part("t", 0).ISR)
			h.fence(1) // leader, last ISR member; 3 is alive but out of sync
			p := h.part("t", 0)
			require.Equal(t, tc.want, p.Leader)
			if tc.want == -1 {
				require.Equal(t, []int32{1}, p.ISR)
			} else {
				require.Equal(t, []int32{tc.want}, p.ISR)
			}
		})
	}
}

func TestConfigChangeTurningOnUncleanElects(t *testing.T) {
	h := newHarness(t)
	h.brokers("", "")
	h.apply([]Record{mustCreate(t, h.img, "t", [][]int32{{1, 2}}, nil)})
	h.fence(2)
	h.unfence(2) // back, but out of the ISR
	h.fence(1)
	require.Equal(t, int32(-1), h.part("t", 0).Leader)
	recs, err := ConfigChangeRecords(h.img, []ConfigChange{{Resource: ResourceTopic, Name: "t", Key: "unclean.leader.election.enable", Value: "true"}})
	require.NoError(t, err)
	h.apply(recs)
	require.Equal(t, int32(2), h.part("t", 0).Leader)
	require.Equal(t, "true", h.img.TopicByName("t").Configs["unclean.leader.election.enable"])

	_, err = ConfigChangeRecords(h.img, []ConfigChange{{Resource: ResourceTopic, Name: "nope", Key: "k", Value: "v"}})
	require.ErrorIs(t, err, tributary.ErrUnknownTopicOrPartition)
	recs, err = ConfigChangeRecords(h.img, []ConfigChange{{Resource: ResourceBroker, Name: "2", Key: "log.cleaner.threads", Value: "2"}})
	require.NoError(t, err)
	h.apply(recs)
	require.Equal(t, "2", h.img.NodeConfigs[2]["log.cleaner.threads"])
	recs, err = ConfigChangeRecords(h.img, []ConfigChange{{Resource: ResourceBroker, Name: "2", Key: "log.cleaner.threads", Delete: true}})
	require.NoError(t, err)
	h.apply(recs)
	require.Empty(t, h.img.NodeConfigs[2])
}

func TestReRegistrationFencesOldIncarnation(t *testing.T) {
	h := newHarness(t)
	h.brokers("", "")
	h.apply([]Record{mustCreate(t, h.img, "t", [][]int32{{1, 2}}, nil)})
	old := h.img.Brokers[1].Epoch
	h.apply(RegisterBrokerRecords(h.img, BrokerInfo{ID: 1, Host: "h", Port: 1}))
	b := h.img.Brokers[1]
	require.True(t, b.Fenced)
	require.Greater(t, b.Epoch, old)
	require.Equal(t, int32(2), h.part("t", 0).Leader)
	_, err := HeartbeatRecords(h.img, 1, old)
	require.ErrorIs(t, err, tributary.ErrStaleBrokerEpoch)
	_, err = HeartbeatRecords(h.img, 1, 0)
	require.ErrorIs(t, err, tributary.ErrStaleBrokerEpoch, "a heartbeat must name its incarnation")
	_, err = HeartbeatRecords(h.img, 7, 1)
	require.ErrorIs(t, err, tributary.ErrBrokerIdNotRegistered)
	h.unfence(1)
	require.False(t, h.img.Brokers[1].Fenced)
}

func TestPreferredElectionAndRebalance(t *testing.T) {
	h := newHarness(t)
	h.brokers("", "", "")
	h.create("t", 6, 3, 0, nil)
	// Restart broker 1 and 2 one after the other: leadership piles up on 3.
	h.fence(1)
	h.unfence(1)
	h.fence(2)
	h.unfence(2)
	// The fenced brokers left the ISR; bring them back as a leader would.
	for i := int32(0); i < 6; i++ {
		p := h.part("t", i)
		recs, err := AlterPartitionRecords(h.img, AlterPartitionRequest{
			TopicID: h.img.TopicByName("t").ID, Partition: i, LeaderID: p.Leader, BrokerEpoch: -1,
			LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, NewISR: p.Replicas,
		})
		require.NoError(t, err)
		h.apply(recs)
	}
	require.Len(t, h.img.LedBy(3), 6)
	imb := Imbalance(h.img)
	require.InDelta(t, 1.0, imb[1], 1e-9)
	require.InDelta(t, 1.0, imb[2], 1e-9)
	require.InDelta(t, 0.0, imb[3], 1e-9)

	// ElectLeaders(PREFERRED) on one partition, then the auto rebalance.
	_, res := ElectLeadersRecords(h.img, false, []tributary.TopicPartition{{Topic: "t", Partition: 99}})
	require.ErrorIs(t, res[tributary.TopicPartition{Topic: "t", Partition: 99}], tributary.ErrUnknownTopicOrPartition)
	var tp tributary.TopicPartition
	for i := int32(0); i < 6; i++ {
		if h.part("t", i).Replicas[0] == 3 {
			tp = tributary.TopicPartition{Topic: "t", Partition: i}
		}
	}
	_, res = ElectLeadersRecords(h.img, false, []tributary.TopicPartition{tp})
	require.ErrorIs(t, res[tp], tributary.ErrElectionNotNeeded)

	// 10 % threshold: nothing when below.
	require.NotEmpty(t, RebalanceRecords(h.img, 10))
	require.Empty(t, RebalanceRecords(h.img, 100))
	h.apply(RebalanceRecords(h.img, 10))
	for id := int32(1); id <= 3; id++ {
		require.Len(t, h.img.LedBy(id), 2, "even spread after rebalance")
	}
	require.Empty(t, RebalanceRecords(h.img, 10))
	_, res = ElectLeadersRecords(h.img, false, nil)
	require.Empty(t, res, "ELECTION_NOT_NEEDED is left out when electing all")

	// Preferred leader out of the ISR: PREFERRED_LEADER_NOT_AVAILABLE.
	h.fence(1)
	h.unfence(1)
	var p1 tributary.TopicPartition
	for i := int32(0); i < 6; i++ {
		if h.part("t", i).Replicas[0] == 1 {
			p1 = tributary.TopicPartition{Topic: "t", Partition: i}
		}
	}
	_, res = ElectLeadersRecords(h.img, false, []tributary.TopicPartition{p1})
	require.ErrorIs(t, res[p1], tributary.ErrPreferredLeaderNotAvailable)
}

func TestUncleanElectLeaders(t *testing.T) {
	h := newHarness(t)
	h.brokers("", "")
	h.apply([]Record{mustCreate(t, h.img, "t", [][]int32{{1, 2}}, nil)})
	tp := tributary.TopicPartition{Topic: "t", Partition: 0}
	_, res := ElectLeadersRecords(h.img, true, []tributary.TopicPartition{tp})
	require.ErrorIs(t, res[tp], tributary.ErrElectionNotNeeded)
	h.fence(2)
	h.unfence(2)
	h.fence(1)
	require.Equal(t, int32(-1), h.part("t", 0).Leader)
	recs, res := ElectLeadersRecords(h.img, true, []tributary.TopicPartition{tp})
	require.NoError(t, res[tp])
	h.apply(recs)
	require.Equal(t, int32(2), h.part("t", 0).Leader)
	require.Equal(t, []int32{2}, h.part("t", 0).ISR)
	h.fence(2)
	_, res = ElectLeadersRecords(h.img, true, []tributary.TopicPartition{tp})
	require.ErrorIs(t, res[tp], tributary.ErrEligibleLeadersNotAvailable)
}

func TestAlterPartitionRejections(t *testing.T) {
	h := newHarness(t)
	h.brokers("", "", "", "")
	h.apply([]Record{mustCreate(t, h.img, "t", [][]int32{{1, 2, 3}}, nil)})
	id := h.img.TopicByName("t").ID
	p := h.part("t", 0)
	ok := AlterPartitionRequest{TopicID: id, Partition: 0, LeaderID: 1, BrokerEpoch: h.img.Brokers[1].Epoch,
		LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, NewISR: []int32{1, 2}}
	for _, tc := range []struct {
		name string
		mod  func(r *AlterPartitionRequest)
		want error
	}{
		{"unknown topic", func(r *AlterPartitionRequest) { r.TopicID = TopicID{9} }, tributary.ErrUnknownTopicId},
		{"unknown partition", func(r *AlterPartitionRequest) { r.Partition = 3 }, tributary.ErrUnknownTopicOrPartition},
		{"stale broker epoch", func(r *AlterPartitionRequest) { r.BrokerEpoch-- }, tributary.ErrStaleBrokerEpoch},
		{"not the leader", func(r *AlterPartitionRequest) { r.LeaderID = 2; r.BrokerEpoch = -1 }, tributary.ErrNotLeaderOrFollower},
		{"stale leader epoch", func(r *AlterPartitionRequest) { r.LeaderEpoch-- }, tributary.ErrFencedLeaderEpoch},
		{"stale partition epoch", func(r *AlterPartitionRequest) { r.PartitionEpoch-- }, tributary.ErrInvalidUpdateVersion},
		{"non-replica in ISR", func(r *AlterPartitionRequest) { r.NewISR = []int32{1, 4} }, tributary.ErrIneligibleReplica},
		{"leader missing", func(r *AlterPartitionRequest) { r.NewISR = []int32{2} }, tributary.ErrInvalidRequest},
		{"empty ISR", func(r *AlterPartitionRequest) { r.NewISR = nil }, tributary.ErrInvalidRequest},
	} {
		r := ok
		r.NewISR = slices.Clone(ok.NewISR)
		tc.mod(&r)
		_, err := AlterPartitionRecords(h.img, r)
		require.ErrorIs(t, err, tc.want, tc.name)
	}
	recs, err := AlterPartitionRecords(h.img, ok)
	require.NoError(t, err)
	h.apply(recs)
	p2 := h.part("t", 0)
	require.Equal(t, []int32{1, 2}, p2.ISR)
	require.Equal(t, p.PartitionEpoch+1, p2.PartitionEpoch)
	require.Equal(t, p.LeaderEpoch, p2.LeaderEpoch)
	// The same request again carries a stale partition epoch now.
	_, err = AlterPartitionRecords(h.img, ok)
	require.ErrorIs(t, err, tributary.ErrInvalidUpdateVersion)
	// Expanding with a fenced broker: INELIGIBLE_REPLICA.
	h.fence(3)
	p2 = h.part("t", 0)
	_, err = AlterPartitionRecords(h.img, AlterPartitionRequest{TopicID: id, Partition: 0, LeaderID: 1, BrokerEpoch: -1,
		LeaderEpoch: p2.LeaderEpoch, PartitionEpoch: p2.PartitionEpoch, NewISR: []int32{1, 2, 3}})
	require.ErrorIs(t, err, tributary.ErrIneligibleReplica)
	// Unchanged ISR records nothing.
	recs, err = AlterPartitionRecords(h.img, AlterPartitionRequest{TopicID: id, Partition: 0, LeaderID: 1, BrokerEpoch: -1,
		LeaderEpoch: p2.LeaderEpoch, PartitionEpoch: p2.PartitionEpoch, NewISR: p2.ISR})
	require.NoError(t, err)
	require.Empty(t, recs)
}

func TestReassignmentLifecycle(t *testing.T) {
	h := newHarness(t)
	h.brokers("", "", "", "")
	h.apply([]Record{mustCreate(t, h.img, "t", [][]int32{{1, 2, 3}, {1, 2, 3}}, nil)})
	tp := tributary.TopicPartition{Topic: "t", Partition: 0}
	id := h.img.TopicByName("t").ID

	// Move 1,2,3 → 4,2,3: replicas = target + old-not-in-target.
	recs, res := AlterReassignmentsRecords(h.img, map[tributary.TopicPartition][]int32{tp: {4, 2, 3}})
	require.NoError(t, res[tp])
	h.apply(recs)
	p := h.part("t", 0)
	require.Equal(t, []int32{4, 2, 3, 1}, p.Replicas)
	require.Equal(t, []int32{4}, p.AddingReplicas)
	require.Equal(t, []int32{1}, p.RemovingReplicas)
	require.Equal(t, int32(1), p.Leader)
	lst := ListReassignments(h.img, nil)
	require.Equal(t, Reassignment{Replicas: []int32{4, 2, 3, 1}, AddingReplicas: []int32{4}, RemovingReplicas: []int32{1}}, lst[tp])
	require.Len(t, lst, 1)

	// Broker 4 catches up: the leader adds it, the reassignment finishes,
	// the removed leader hands over to the first ISR replica of the target.
	recs, err := AlterPartitionRecords(h.img, AlterPartitionRequest{TopicID: id, Partition: 0, LeaderID: 1, BrokerEpoch: -1,
		LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, NewISR: []int32{1, 2, 3, 4}})
	require.NoError(t, err)
	h.apply(recs)
	p2 := h.part("t", 0)
	require.Equal(t, []int32{4, 2, 3}, p2.Replicas)
	require.Equal(t, []int32{2, 3, 4}, p2.ISR)
	require.Empty(t, p2.AddingReplicas)
	require.Empty(t, p2.RemovingReplicas)
	require.Equal(t, int32(4), p2.Leader)
	require.Equal(t, p.LeaderEpoch+1, p2.LeaderEpoch)
	require.Empty(t, ListReassignments(h.img, nil))

	// Cancel: back to the original replicas.
	tp1 := tributary.TopicPartition{Topic: "t", Partition: 1}
	_, res = AlterReassignmentsRecords(h.img, map[tributary.TopicPartition][]int32{tp1: nil})
	require.ErrorIs(t, res[tp1], tributary.ErrNoReassignmentInProgress)
	recs, res = AlterReassignmentsRecords(h.img, map[tributary.TopicPartition][]int32{tp1: {4, 1, 2}})
	require.NoError(t, res[tp1])
	h.apply(recs)
	require.True(t, h.part("t", 1).Reassigning())
	recs, res = AlterReassignmentsRecords(h.img, map[tributary.TopicPartition][]int32{tp1: nil})
	require.NoError(t, res[tp1])
	h.apply(recs)
	require.Equal(t, []int32{1, 2, 3}, h.part("t", 1).Replicas)
	require.False(t, h.part("t", 1).Reassigning())

	// Shrinking to replicas already in the ISR finishes at once.
	recs, res = AlterReassignmentsRecords(h.img, map[tributary.TopicPartition][]int32{tp1: {2, 3}})
	require.NoError(t, res[tp1])
	h.apply(recs)
	p3 := h.part("t", 1)
	require.Equal(t, []int32{2, 3}, p3.Replicas)
	require.Equal(t, []int32{2, 3}, p3.ISR)
	require.Equal(t, int32(2), p3.Leader)

	// Bad targets.
	_, res = AlterReassignmentsRecords(h.img, map[tributary.TopicPartition][]int32{tp1: {2, 2}, {Topic: "zz"}: {1}, tp: {9}})
	require.ErrorIs(t, res[tp1], tributary.ErrInvalidReplicaAssignment)
	require.ErrorIs(t, res[tributary.TopicPartition{Topic: "zz"}], tributary.ErrUnknownTopicOrPartition)
	require.ErrorIs(t, res[tp], tributary.ErrInvalidReplicaAssignment)
}

func TestCreatePartitionsAndDelete(t *testing.T) {
	h := newHarness(t)
	h.brokers("", "", "")
	h.create("t", 3, 2, 1, nil)
	r, err := CreatePartitionsRecord(h.img, "t", 6, nil)
	require.NoError(t, err)
	h.apply([]Record{r})
	tp := h.img.TopicByName("t")
	require.Len(t, tp.Partitions, 6)
	leaders := map[int32]int{}
	for _, p := range tp.Partitions {
		require.Len(t, p.Replicas, 2)
		leaders[p.Leader]++
	}
	require.Equal(t, map[int32]int{1: 2, 2: 2, 3: 2}, leaders, "new partitions continue the round-robin")
	_, err = CreatePartitionsRecord(h.img, "t", 6, nil)
	require.ErrorIs(t, err, tributary.ErrInvalidPartitions)
	require.Equal(t, "Topic already has 6 partitions.", Message(err))
	_, err = CreatePartitionsRecord(h.img, "t", 2, nil)
	require.ErrorIs(t, err, tributary.ErrInvalidPartitions)
	_, err = CreatePartitionsRecord(h.img, "t", 8, [][]int32{{1, 2}})
	require.ErrorIs(t, err, tributary.ErrInvalidReplicaAssignment)
	_, err = CreatePartitionsRecord(h.img, "t", 7, [][]int32{{1, 2, 3}})
	require.ErrorIs(t, err, tributary.ErrInvalidReplicaAssignment)
	_, err = CreatePartitionsRecord(h.img, "nope", 7, nil)
	require.ErrorIs(t, err, tributary.ErrUnknownTopicOrPartition)

	d, err := DeleteTopicRecord(h.img, tp.ID)
	require.NoError(t, err)
	h.apply([]Record{d})
	require.Nil(t, h.img.TopicByName("t"))
	require.Nil(t, h.img.TopicByID(tp.ID))
	_, err = DeleteTopicRecord(h.img, tp.ID)
	require.ErrorIs(t, err, tributary.ErrUnknownTopicId)
}

func TestProducerIDBlocks(t *testing.T) {
	h := newHarness(t)
	h.brokers("", "")
	r, err := AllocateProducerIDsRecord(h.img, 1, h.img.Brokers[1].Epoch)
	require.NoError(t, err)
	require.Equal(t, ProducerIDBlock{BrokerID: 1, First: 0, Count: 1000}, r)
	h.apply([]Record{r})
	r, err = AllocateProducerIDsRecord(h.img, 2, -1)
	require.NoError(t, err)
	require.Equal(t, int64(1000), r.First)
	_, err = AllocateProducerIDsRecord(h.img, 1, 12345)
	require.ErrorIs(t, err, tributary.ErrStaleBrokerEpoch)
}

// TestApplyDeterminismAndSnapshot replays a scenario's log into a fresh
// image (same records, same image) and through a snapshot at every point
// (restore + the rest of the log gives the same image).
func TestApplyDeterminismAndSnapshot(t *testing.T) {
	h := newHarness(t)
	h.brokers("a", "b", "c")
	h.create("t", 4, 3, 1, map[string]string{"retention.ms": "1"})
	h.fence(2)
	h.unfence(2)
	r, _ := AllocateProducerIDsRecord(h.img, 1, -1)
	h.apply([]Record{r})
	recs, _ := AlterReassignmentsRecords(h.img, map[tributary.TopicPartition][]int32{{Topic: "t", Partition: 0}: {3, 1}})
	h.apply(recs)
	recs, _ = ConfigChangeRecords(h.img, []ConfigChange{{Resource: ResourceBroker, Key: "k", Value: "v"}})
	h.apply(recs)

	for cut := 0; cut <= len(h.batches); cut++ {
		img := NewImage()
		for i, b := range h.batches[:cut] {
			img = ApplyBatch(img, uint64(i+1), b)
		}
		data, err := MarshalImage(img)
		require.NoError(t, err)
		img, err = UnmarshalImage(data)
		require.NoError(t, err)
		for i, b := range h.batches[cut:] {
			img = ApplyBatch(img, uint64(cut+i+1), b)
		}
		requireSameImage(t, h.img, img)
	}
}

func requireSameImage(t *testing.T, want, got *Image) {
	t.Helper()
	a, err := MarshalImage(want)
	require.NoError(t, err)
	b, err := MarshalImage(got)
	require.NoError(t, err)
	require.JSONEq(t, string(a), string(b))
	require.Equal(t, want.Offset, got.Offset)
	require.True(t, reflect.DeepEqual(want.LiveBrokers(), got.LiveBrokers()))
}

func TestImageIsImmutable(t *testing.T) {
	h := newHarness(t)
	h.brokers("", "")
	h.create("t", 2, 2, 0, nil)
	before := h.img
	snap, _ := MarshalImage(before)
	h.fence(1)
	recs, _ := ConfigChangeRecords(h.img, []ConfigChange{{Resource: ResourceTopic, Name: "t", Key: "a", Value: "b"}})
	h.apply(recs)
	after, _ := MarshalImage(before)
	require.JSONEq(t, string(snap), string(after), "an applied record must not change an older image")
}

func TestDecodeRejectsUnknown(t *testing.T) {
	_, err := DecodeBatch([]byte(`{"v":1,"r":[{"t":"from_the_future","v":1,"d":{}}]}`))
	require.Error(t, err)
	_, err = DecodeBatch([]byte(`{"v":1,"r":[{"t":"fence_broker","v":9,"d":{}}]}`))
	require.Error(t, err)
	_, err = DecodeBatch([]byte(`{"v":2,"r":[]}`))
	require.Error(t, err)
	_, err = DecodeBatch([]byte(`not json`))
	require.Error(t, err)
	var e *Error
	require.False(t, errors.As(err, &e))
}

func mustCreate(t *testing.T, img *Image, name string, assignment [][]int32, configs map[string]string) Record {
	t.Helper()
	r, err := CreateTopicRecord(img, TopicSpec{Name: name, Assignment: assignment, Configs: configs}, TopicID{byte(len(img.TopicsByID) + 1)}, 0)
	require.NoError(t, err)
	return r
}
