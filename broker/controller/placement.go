package controller

import (
	"sort"

	"github.com/tributary/tributary"
)

// PlaceReplicas assigns replicas for partitions startPartition ..
// startPartition+n-1 over brokers the way Kafka's
// AdminUtils.assignReplicasToBrokers does: the first replica (the
// preferred leader) goes round-robin over the brokers from start, the
// others follow it shifted by an offset that grows every time the
// round-robin wraps, so a partition's replicas are distinct and the
// followers of one broker's leaders spread over the others. start is the
// random start Kafka draws (the caller draws it, so this stays
// deterministic); it also seeds the shift, as Kafka's fixedStartIndex does.
//
// When every broker has a rack (broker.rack) the rack-aware variant runs:
// brokers are ordered alternating racks (r1b0, r2b3, r3b6, r1b1, …) and a
// follower is placed on a rack, and a broker, that holds no replica of the
// partition yet while one is left. A mix of brokers with and without racks
// is placed rack-unaware (Kafka refuses such a mix unless told to ignore
// racks; a development cluster is better served by placing anyway).
//
// brokers must be sorted by id and distinct. rf above len(brokers) is
// INVALID_REPLICATION_FACTOR with Kafka's message.
func PlaceReplicas(brokers []*BrokerInfo, n int32, rf int16, startPartition int32, start int) ([][]int32, error) {
	if rf <= 0 {
		return nil, errorf(tributary.ErrInvalidReplicationFactor, "Replication factor must be larger than 0.")
	}
	if n <= 0 {
		return nil, errorf(tributary.ErrInvalidPartitions, "Number of partitions must be larger than 0.")
	}
	if int(rf) > len(brokers) {
		return nil, errorf(tributary.ErrInvalidReplicationFactor, "Replication factor: %d larger than available brokers: %d.", rf, len(brokers))
	}
	if start < 0 {
		start = -start
	}
	racked := true
	for _, b := range brokers {
		if b.Rack == "" {
			racked = false
		}
	}
	if racked {
		return placeRackAware(brokers, n, int(rf), startPartition, start), nil
	}
	ids := make([]int32, len(brokers))
	for i, b := range brokers {
		ids[i] = b.ID
	}
	return placeUnaware(ids, n, int(rf), startPartition, start), nil
}

func placeUnaware(ids []int32, n int32, rf int, startPartition int32, start int) [][]int32 {
	nb := len(ids)
	startIndex := start % nb
	shift := start % nb
	cur := int(max(0, startPartition))
	out := make([][]int32, 0, n)
	for range n {
		if cur > 0 && cur%nb == 0 {
			shift++
		}
		first := (cur + startIndex) % nb
		replicas := []int32{ids[first]}
		for j := 0; j < rf-1; j++ {
			replicas = append(replicas, ids[replicaIndex(first, shift, j, nb)])
		}
		out = append(out, replicas)
		cur++
	}
	return out
}

// replicaIndex is the position of the (j+2)-th replica: never the first
// broker itself, since the shift is taken modulo nb-1 and then plus one.
func replicaIndex(first, shift, j, nb int) int {
	if nb == 1 {
		return first
	}
	s := 1 + (shift+j)%(nb-1)
	return (first + s) % nb
}

func placeRackAware(brokers []*BrokerInfo, n int32, rf int, startPartition int32, start int) [][]int32 {
	rackOf := map[int32]string{}
	byRack := map[string][]int32{}
	for _, b := range brokers {
		rackOf[b.ID] = b.Rack
		byRack[b.Rack] = append(byRack[b.Rack], b.ID)
	}
	racks := make([]string, 0, len(byRack))
	for r := range byRack {
		racks = append(racks, r)
		sort.Slice(byRack[r], func(i, j int) bool { return byRack[r][i] < byRack[r][j] })
	}
	sort.Strings(racks)
	// Alternate racks: one broker of each rack in turn.
	var arranged []int32
	next := map[string]int{}
	for i := 0; len(arranged) < len(brokers); i = (i + 1) % len(racks) {
		r := racks[i]
		if next[r] < len(byRack[r]) {
			arranged = append(arranged, byRack[r][next[r]])
			next[r]++
		}
	}
	nb, nr := len(arranged), len(racks)
	startIndex := start % nb
	shift := start % nb
	cur := int(max(0, startPartition))
	out := make([][]int32, 0, n)
	for range n {
		if cur > 0 && cur%nb == 0 {
			shift++
		}
		first := (cur + startIndex) % nb
		leader := arranged[first]
		replicas := []int32{leader}
		racksUsed := map[string]bool{rackOf[leader]: true}
		used := map[int32]bool{leader: true}
		k := 0
		for range rf - 1 {
			for {
				b := arranged[replicaIndex(first, shift*nr, k, nb)]
				k++
				if (!racksUsed[rackOf[b]] || len(racksUsed) == nr) && (!used[b] || len(used) == nb) {
					replicas = append(replicas, b)
					racksUsed[rackOf[b]] = true
					used[b] = true
					break
				}
			}
		}
		out = append(out, replicas)
		cur++
	}
	return out
}
