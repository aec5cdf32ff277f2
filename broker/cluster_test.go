package broker_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary/admin"
	"github.com/tributary/tributary/broker"
	"github.com/tributary/tributary/broker/brokertest"
	"github.com/tributary/tributary/internal/batch/batchtest"
)

// skipShort skips a multi-node scenario under -short: CI's race run
// (-race -short) keeps TestClusterReplicatesAndFailsOver and the chaos
// test for the cluster's concurrency; the plain run has them all.
func skipShort(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node scenario: runs without -short")
	}
}

// clusterClient is a kgo client over every node of c.
func clusterClient(t testing.TB, addrs []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...), kgo.RetryTimeout(30 * time.Second), kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

// threeNodes starts a three-node cluster (cfgs apply to every node) with
// a kgo client over every node, its admin client, and a context that
// ends after d or with the test.
func threeNodes(t *testing.T, d time.Duration, cfgs ...func(*broker.Config)) (*brokertest.Cluster, *kgo.Client, *kadm.Client, context.Context) {
	t.Helper()
	c := brokertest.StartCluster(t, 3, cfgs...)
	cl := clusterClient(t, c.Addrs())
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c, cl, kadm.NewClient(cl), ctx
}

// createAssigned creates a one-partition topic on the given replicas
// (a manual assignment, which kadm has no call for).
func createAssigned(t testing.TB, ctx context.Context, cl *kgo.Client, topic string, replicas ...int32) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	ra.Partition, ra.Replicas = 0, replicas
	rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 30000
	resp, err := req.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.Zero(t, resp.Topics[0].ErrorCode, "create %s on %v", topic, replicas)
}

// waitFor polls cond until it holds or the deadline passes; detail, if
// given, adds what the failure should show (the last state seen).
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool, detail ...func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			for _, f := range detail {
				what += " (" + f() + ")"
			}
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// describe returns the topic's partitions as the cluster reports them.
// Metadata reaches brokers a moment after the controller commits it, so
// a broker that does not know the topic yet is asked again.
func describe(t testing.TB, adm *kadm.Client, topic string) kadm.PartitionDetails {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		td, err := adm.ListTopics(ctx, topic)
		if err == nil {
			err = td[topic].Err
		}
		if err == nil {
			return td[topic].Partitions
		}
		// A broker that does not know the topic yet, or a connection
		// to a node that just came back: ask again.
		if ctx.Err() != nil {
			require.NoError(t, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// produceSeq produces n records "p<partition>-<i>" to each partition with
// acks=all and returns how many were acknowledged per partition.
func produceSeq(t testing.TB, cl *kgo.Client, topic string, partitions int32, from, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for p := int32(0); p < partitions; p++ {
		for i := from; i < from+n; i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: []byte(fmt.Sprintf("p%d-%d", p, i))})
		}
	}
	require.NoError(t, cl.ProduceSync(ctx, recs...).FirstErr())
}

// readAll reads every record of topic from the start, up to want records
// per partition, and checks each partition holds exactly 0..want-1 in
// order.
func readAll(t testing.TB, addrs []string, topic string, partitions int32, want int) {
	t.Helper()
	cl := clusterClient(t, addrs, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DefaultProduceTopic(topic))
	got := map[int32][]string{}
	total := 0
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for total < int(partitions)*want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records before the deadline", total, int(partitions)*want)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch error: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Partition] = append(got[r.Partition], string(r.Value))
			total++
		})
	}
	for p := int32(0); p < partitions; p++ {
		if len(got[p]) != want {
			counts := map[int32]int{}
			for q, vs := range got {
				counts[q] = len(vs)
			}
			t.Fatalf("partition %d: %d records, want %d (all partitions: %v)", p, len(got[p]), want, counts)
		}
		for i, v := range got[p] {
			require.Equal(t, fmt.Sprintf("p%d-%d", p, i), v, "partition %d offset %d", p, i)
		}
	}
}

func leaderCounts(pd kadm.PartitionDetails) map[int32]int {
	m := map[int32]int{}
	for _, p := range pd {
		m[p.Leader]++
	}
	return m
}

func fullISR(pd kadm.PartitionDetails, rf int) bool {
	for _, p := range pd {
		if len(p.ISR) != rf || p.Leader < 0 {
			return false
		}
	}
	return true
}

// Three nodes replicate a topic with RF 3: replicas land on distinct
// brokers with leaders spread one per broker, acks=all writes survive the
// leader being stopped, the stopped node catches up and rejoins the ISR,
// and every record is read back once, in order.
func TestClusterReplicatesAndFailsOver(t *testing.T) {
	c, cl, adm, ctx := threeNodes(t, 30*time.Second)
	_, err := adm.CreateTopic(ctx, 3, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, "replicated")
	require.NoError(t, err)

	pd := describe(t, adm, "replicated")
	require.Len(t, pd, 3)
	for _, p := range pd {
		require.Len(t, p.Replicas, 3)
		r := slices.Clone(p.Replicas)
		slices.Sort(r)
		require.Equal(t, []int32{1, 2, 3}, r, "replicas on distinct brokers")
	}
	require.Equal(t, map[int32]int{1: 1, 2: 1, 3: 1}, leaderCounts(pd), "one leader per broker")

	produceSeq(t, cl, "replicated", 3, 0, 500)

	victim := c.Node(pd[0].Leader)
	victim.Kill(t)
	waitFor(t, 20*time.Second, "a new leader for partition 0", func() bool {
		pd := describe(t, adm, "replicated")
		return pd[0].Leader >= 0 && pd[0].Leader != victim.ID
	})
	produceSeq(t, cl, "replicated", 3, 500, 500)

	victim.Restart(t)
	waitFor(t, 30*time.Second, "the restarted node back in every ISR", func() bool {
		return fullISR(describe(t, adm, "replicated"), 3)
	})
	readAll(t, c.Addrs(), "replicated", 3, 1000)
}

// With min.insync.replicas equal to the replication factor, losing one
// replica makes acks=all writes fail with NOT_ENOUGH_REPLICAS, never a
// silent success; they succeed again once the replica is back.
func TestClusterNotEnoughReplicas(t *testing.T) {
	skipShort(t)
	c := brokertest.StartCluster(t, 3)
	cl := clusterClient(t, c.Addrs(), kgo.RecordDeliveryTimeout(3*time.Second), kgo.RecordRetries(2))
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("3")}, "strict")
	require.NoError(t, err)
	produceSeq(t, cl, "strict", 1, 0, 10)

	pd := describe(t, adm, "strict")
	var follower *brokertest.Node
	for _, id := range pd[0].Replicas {
		if id != pd[0].Leader {
			follower = c.Node(id)
			break
		}
	}
	follower.Kill(t)
	waitFor(t, 30*time.Second, "the ISR to shrink", func() bool { return len(describe(t, adm, "strict")[0].ISR) == 2 })

	err = cl.ProduceSync(ctx, &kgo.Record{Topic: "strict", Value: []byte("refused")}).FirstErr()
	require.Error(t, err)
	require.True(t, errors.Is(err, kerr.NotEnoughReplicas) || errors.Is(err, kerr.NotEnoughReplicasAfterAppend) || errors.Is(err, kgo.ErrRecordTimeout),
		"want NOT_ENOUGH_REPLICAS, got %v", err)
	// What the broker answers, without the client's retries in between.
	requireNotEnoughReplicas(t, c.Node(pd[0].Leader).Addr(), "strict", 0)

	follower.Restart(t)
	waitFor(t, 30*time.Second, "the ISR to grow back", func() bool { return len(describe(t, adm, "strict")[0].ISR) == 3 })
	produceSeq(t, cl, "strict", 1, 10, 10)
	readAll(t, c.Addrs(), "strict", 1, 20)
}

// produceAcksAll sends one acks=all produce of a record straight to addr
// (a partition's leader, with no client retries in between) and returns
// the partition's error code.
func produceAcksAll(t *testing.T, addr, topic string, partition int32, timeoutMs int32) int16 {
	t.Helper()
	cl := clusterClient(t, []string{addr})
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 9, -1, timeoutMs
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = batchtest.Build(batchtest.NonIdempotent(time.Now().UnixMilli()), batchtest.Values(1, 10)...)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(timeoutMs)*time.Millisecond+10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, seed(cl))
	require.NoError(t, err)
	require.Len(t, resp.Topics, 1)
	require.Len(t, resp.Topics[0].Partitions, 1)
	return resp.Topics[0].Partitions[0].ErrorCode
}

// requireNotEnoughReplicas sends acks=all produces to the partition's
// leader until one is refused before its append with NOT_ENOUGH_REPLICAS,
// as Kafka refuses a write while the ISR is below min.insync.replicas.
// Until the leader has the shrunken ISR an answer may be a timeout or
// NOT_ENOUGH_REPLICAS_AFTER_APPEND; an answer that acknowledges the write
// fails the test at once.
func requireNotEnoughReplicas(t *testing.T, leaderAddr, topic string, partition int32) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last int16
	for time.Now().Before(deadline) {
		last = produceAcksAll(t, leaderAddr, topic, partition, 1000)
		require.NotZero(t, last, "an acks=all write with the ISR below min.insync.replicas was acknowledged")
		if last == kerr.NotEnoughReplicas.Code {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no NOT_ENOUGH_REPLICAS from the leader of %s/%d within 30s; last answer: %v", topic, partition, kerr.ErrorForCode(last))
}

// Stopping the active controller elects another voter, and topics can
// still be created and used.
func TestClusterControllerFailover(t *testing.T) {
	skipShort(t)
	c := brokertest.StartCluster(t, 3)
	old := c.WaitController(t)
	old.Kill(t)
	var now *brokertest.Node
	waitFor(t, 20*time.Second, "a new controller", func() bool {
		now = c.Controller()
		return now != nil && now != old
	})
	var addrs []string
	for _, nd := range c.Nodes {
		if nd != old {
			addrs = append(addrs, nd.Addr())
		}
	}
	cl := clusterClient(t, addrs)
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := adm.CreateTopic(ctx, 2, 2, nil, "after-failover")
	require.NoError(t, err)
	produceSeq(t, cl, "after-failover", 2, 0, 100)
	readAll(t, addrs, "after-failover", 2, 100)
}

// After restarts leave leadership skewed (a bounced broker leads nothing
// when it comes back), a preferred election spreads it back over the
// preferred (first) replicas.
func TestClusterPreferredElection(t *testing.T) {
	skipShort(t)
	c, cl, adm, ctx := threeNodes(t, 60*time.Second, func(cfg *broker.Config) { cfg.AutoLeaderRebalanceEnable = false })
	_, err := adm.CreateTopic(ctx, 6, 3, nil, "skewed")
	require.NoError(t, err)
	produceSeq(t, cl, "skewed", 6, 0, 50)

	// Bounce nodes 1 and 2: each time, their leaderships move away.
	for _, id := range []int32{1, 2} {
		nd := c.Node(id)
		nd.Kill(t)
		waitFor(t, 20*time.Second, "leaders off the stopped node", func() bool { return leaderCounts(describe(t, adm, "skewed"))[id] == 0 })
		nd.Restart(t)
		waitFor(t, 30*time.Second, "full ISRs", func() bool { return fullISR(describe(t, adm, "skewed"), 3) })
	}
	skew := leaderCounts(describe(t, adm, "skewed"))
	require.Zero(t, skew[2], "the last node bounced leads nothing: %v", skew)
	require.False(t, maps2(skew, map[int32]int{1: 2, 2: 2, 3: 2}), "leadership is skewed: %v", skew)

	_, err = adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, nil)
	require.NoError(t, err)
	waitFor(t, 20*time.Second, "an even spread", func() bool {
		if maps2(leaderCounts(describe(t, adm, "skewed")), map[int32]int{1: 2, 2: 2, 3: 2}) {
			return true
		}
		// A preferred replica the controller did not see back in the
		// ISR yet is elected by asking again.
		adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, nil)
		return false
	})
	for _, p := range describe(t, adm, "skewed") {
		require.Equal(t, p.Replicas[0], p.Leader, "partition %d led by its preferred replica", p.Partition)
	}
	readAll(t, c.Addrs(), "skewed", 6, 50)
}

func maps2(a, b map[int32]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// A reassignment moves a replica to another broker while records are
// produced: the new replica catches up, the old one is dropped, and
// nothing is lost.
func TestClusterReassignmentUnderLoad(t *testing.T) {
	skipShort(t)
	c, cl, adm, ctx := threeNodes(t, 60*time.Second)
	createAssigned(t, ctx, cl, "moving", 1, 2)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var produced int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				produced = i
				return
			default:
			}
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "moving", Partition: 0, Value: []byte(fmt.Sprintf("p0-%d", i))}).FirstErr(); err != nil {
				t.Errorf("produce %d: %v", i, err)
				produced = i
				return
			}
		}
	}()
	waitFor(t, 10*time.Second, "some records", func() bool {
		o, err := adm.ListEndOffsets(ctx, "moving")
		return err == nil && o["moving"][0].Offset > 200
	})
	var areq kadm.AlterPartitionAssignmentsReq
	areq.Assign("moving", 0, []int32{3, 2})
	res, err := adm.AlterPartitionAssignments(ctx, areq)
	require.NoError(t, err)
	require.NoError(t, res["moving"][0].Err)
	waitFor(t, 30*time.Second, "the reassignment to complete", func() bool {
		p := describe(t, adm, "moving")[0]
		r := slices.Clone(p.Replicas)
		slices.Sort(r)
		return slices.Equal(r, []int32{2, 3}) && len(p.ISR) == 2
	})
	close(stop)
	wg.Wait()
	lr, err := adm.ListPartitionReassignments(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, lr, "no reassignment left in progress")
	readAll(t, c.Addrs(), "moving", 1, produced)
}

// A data directory written by the single-node broker from before the
// controller quorum (testdata/legacy-single-node.tar.gz: topics orders
// with 3 partitions and 300 records in partition 2, events with 50 records
// and cleanup.policy=compact, and group billing's committed offset 120 on
// orders-2) opens with every topic, record and committed offset intact.
func TestLegacySingleNodeDirectoryMigrates(t *testing.T) {
	dir := t.TempDir()
	untarGz(t, filepath.Join("testdata", "legacy-single-node.tar.gz"), dir)
	data := filepath.Join(dir, "data")
	b := brokertest.Start(t, func(cfg *broker.Config) {
		cfg.LogDirs = []string{data}
		cfg.OffsetsTopicNumPartitions = 3
	})
	cl := clusterClient(t, []string{b.Addr()})
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	td, err := adm.ListTopics(ctx, "orders", "events")
	require.NoError(t, err)
	require.Len(t, td["orders"].Partitions, 3)
	require.Len(t, td["events"].Partitions, 1)
	wantID, err := base64.RawURLEncoding.DecodeString("yz3mXOL_TVi76Gz28yslsQ")
	require.NoError(t, err)
	gotID := td["events"].ID
	require.Equal(t, wantID, gotID[:], "topic ids survive")
	ends, err := adm.ListEndOffsets(ctx, "orders", "events")
	require.NoError(t, err)
	require.EqualValues(t, 300, ends["orders"][2].Offset)
	require.EqualValues(t, 50, ends["events"][0].Offset)
	rc, err := adm.DescribeTopicConfigs(ctx, "events")
	require.NoError(t, err)
	v, err := rc.On("events", nil)
	require.NoError(t, err)
	found := false
	for _, c := range v.Configs {
		if c.Key == "cleanup.policy" {
			found = true
			require.Equal(t, "compact", *c.Value)
		}
	}
	require.True(t, found)
	var offs kadm.OffsetResponses
	waitFor(t, 20*time.Second, "the group's offsets", func() bool {
		offs, err = adm.FetchOffsets(ctx, "billing")
		return err == nil && offs.Error() == nil
	})
	o, ok := offs.Lookup("orders", 2)
	require.True(t, ok)
	require.EqualValues(t, 120, o.At)

	// Records read back, and the topic takes new ones.
	recs := consume(t, b.Addr(), "events", 50)
	for i, r := range recs {
		require.Equal(t, strconv.Itoa(i+1), string(r.Value))
	}
	// events is compacted (its legacy config says so): a record needs a
	// key, as Kafka requires.
	require.ErrorIs(t, cl.ProduceSync(ctx, &kgo.Record{Topic: "events", Value: []byte("no key")}).FirstErr(), kerr.InvalidRecord)
	require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Topic: "events", Key: []byte("k"), Value: []byte("51")}).FirstErr())
	_, err = os.Stat(filepath.Join(data, "__cluster_metadata.json"))
	require.ErrorIs(t, err, os.ErrNotExist, "the old metadata file is retired after the migration")

	// And again after a restart, now from the quorum's own state.
	b.Restart(t)
	cl2 := clusterClient(t, []string{b.Addr()})
	ends, err = kadm.NewClient(cl2).ListEndOffsets(ctx, "events")
	require.NoError(t, err)
	require.EqualValues(t, 51, ends["events"][0].Offset)
}

func untarGz(t testing.TB, src, dst string) {
	t.Helper()
	f, err := os.Open(src)
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		require.NoError(t, err)
		path := filepath.Join(dst, filepath.Clean(h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			require.NoError(t, os.MkdirAll(path, 0o755))
		case tar.TypeReg:
			require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
			out, err := os.Create(path)
			require.NoError(t, err)
			_, err = io.Copy(out, tr)
			require.NoError(t, err)
			require.NoError(t, out.Close())
		}
	}
}

// A leader cut off the network (Node.Partition) loses its partitions to
// the others once its session expires; acks=all writes go on through the
// new leader, and after Heal the old leader rejoins as a follower and the
// log holds every acknowledged record once.
func TestClusterNetworkPartition(t *testing.T) {
	skipShort(t)
	c, cl, adm, ctx := threeNodes(t, 60*time.Second)
	_, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, "cut")
	require.NoError(t, err)
	produceSeq(t, cl, "cut", 1, 0, 200)

	old := c.Node(describe(t, adm, "cut")[0].Leader)
	old.Partition()
	var others []string
	for _, nd := range c.Nodes {
		if nd != old {
			others = append(others, nd.Addr())
		}
	}
	ocl := clusterClient(t, others)
	oadm := kadm.NewClient(ocl)
	waitFor(t, 30*time.Second, "a leader on the connected side", func() bool {
		p := describe(t, oadm, "cut")[0]
		return p.Leader >= 0 && p.Leader != old.ID
	})
	produceSeq(t, ocl, "cut", 1, 200, 200)

	old.Heal()
	waitFor(t, 30*time.Second, "the healed node back in the ISR", func() bool { return fullISR(describe(t, adm, "cut"), 3) })
	readAll(t, c.Addrs(), "cut", 1, 400)
}

// The SDK's admin client describes the quorum: one leader, every voter
// caught up to the committed offset.
func TestClusterDescribeQuorumWithOurAdmin(t *testing.T) {
	skipShort(t)
	c := brokertest.StartCluster(t, 3)
	a, err := admin.New(admin.SeedBrokers(c.Addrs()...))
	require.NoError(t, err)
	t.Cleanup(a.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var q admin.Quorum
	waitFor(t, 20*time.Second, "every voter caught up", func() bool {
		q, err = a.DescribeQuorum(ctx)
		if err != nil || len(q.Voters) != 3 {
			return false
		}
		for _, v := range q.Voters {
			if v.Lag != 0 {
				return false
			}
		}
		return true
	})
	require.Equal(t, c.WaitController(t).ID, q.LeaderID)
	require.Positive(t, q.HighWatermark)
	require.Positive(t, q.LeaderEpoch)
}

// With two of three nodes down, the quorum and the ISR are short: acks=all
// writes fail (never a silent success), and they work again once one node
// is back, with every acknowledged record kept.
func TestClusterTwoOfThreeDown(t *testing.T) {
	skipShort(t)
	c, cl, adm, ctx := threeNodes(t, 90*time.Second)
	_, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, "two-down")
	require.NoError(t, err)
	produceSeq(t, cl, "two-down", 1, 0, 100)

	leader := describe(t, adm, "two-down")[0].Leader
	var downed []*brokertest.Node
	for _, nd := range c.Nodes {
		if nd.ID != leader && len(downed) < 2 {
			downed = append(downed, nd)
		}
	}
	// Both followers: the leader is alone and must not acknowledge.
	for _, nd := range downed {
		nd.Kill(t)
	}
	// Not idempotent: an idempotent producer must retry a timed-out
	// batch until it learns its fate, so it would wait for the ISR.
	short := clusterClient(t, []string{c.Node(leader).Addr()}, kgo.DisableIdempotentWrite(), kgo.RecordRetries(1),
		kgo.RecordDeliveryTimeout(4*time.Second), kgo.ProduceRequestTimeout(2*time.Second))
	err = short.ProduceSync(ctx, &kgo.Record{Topic: "two-down", Partition: 0, Value: []byte("never")}).FirstErr()
	require.Error(t, err, "an acks=all write with the ISR below min.insync.replicas must fail")
	// What the leader itself answers: with two of three voters down the
	// controller quorum is gone too, so the ISR cannot shrink (as in
	// KRaft's combined mode) and the write waits for followers that never
	// come: REQUEST_TIMED_OUT, never an acknowledgement. (With the quorum
	// alive the ISR shrinks and writes are refused with
	// NOT_ENOUGH_REPLICAS: TestClusterNotEnoughReplicas.)
	code := produceAcksAll(t, c.Node(leader).Addr(), "two-down", 0, 2000)
	require.Contains(t, []int16{kerr.RequestTimedOut.Code, kerr.NotEnoughReplicas.Code, kerr.NotEnoughReplicasAfterAppend.Code}, code,
		"answer %v", kerr.ErrorForCode(code))

	downed[0].Restart(t)
	waitFor(t, 60*time.Second, "a leader with two in-sync replicas", func() bool {
		p := describe(t, adm, "two-down")[0]
		return p.Leader >= 0 && len(p.ISR) >= 2
	})
	produceSeq(t, cl, "two-down", 1, 100, 100)
	downed[1].Restart(t)
	waitFor(t, 60*time.Second, "full ISR", func() bool { return fullISR(describe(t, adm, "two-down"), 3) })
	// The refused records may or may not be in the log (the leader
	// appended them before the ISR could not follow), but only after the
	// acknowledged ones of the first round, and the second round follows.
	rd := clusterClient(t, c.Addrs(), kgo.ConsumeTopics("two-down"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var vals []string
	for len(vals) < 200 {
		fs := rd.PollFetches(ctx)
		require.NoError(t, ctx.Err())
		fs.EachRecord(func(r *kgo.Record) {
			if strings.HasPrefix(string(r.Value), "p0-") { // not a refused write
				vals = append(vals, string(r.Value))
			}
		})
	}
	for i, v := range vals {
		require.Equal(t, fmt.Sprintf("p0-%d", i), v)
	}
}

// An acks=all produce waiting for a follower does not hold up the
// requests after it on the same connection: a later produce to another
// partition is appended while the first still waits, and the responses
// still come back in request order.
func TestAcksAllWaitDoesNotBlockTheConnection(t *testing.T) {
	skipShort(t)
	c, cl, adm, ctx := threeNodes(t, 60*time.Second, func(cfg *broker.Config) { cfg.ReplicaLagTimeMaxMs = 3000 })
	_, err := adm.CreateTopic(ctx, 1, 3, nil, "waits")
	require.NoError(t, err)
	p := describe(t, adm, "waits")[0]
	leader := c.Node(p.Leader)
	// "free" has one replica, on the same leader: nothing to wait for.
	createAssigned(t, ctx, cl, "free", leader.ID)
	describe(t, adm, "free")
	lcl := clusterClient(t, []string{leader.Addr()})
	ladm := kadm.NewClient(lcl)
	// The leader serves both topics (its registry caught up with the
	// metadata): ListOffsets is answered only by a partition's leader.
	waitFor(t, 20*time.Second, "the leader serving both topics", func() bool {
		o, err := ladm.ListEndOffsets(ctx, "free", "waits")
		return err == nil && o.Error() == nil && len(o["free"]) == 1 && len(o["waits"]) == 1
	})

	// A follower of "waits" stops fetching: acks=all there now waits
	// until the leader drops it from the ISR (replica.lag.time.max.ms).
	for _, id := range p.Replicas {
		if id != leader.ID {
			c.Node(id).Partition()
			break
		}
	}
	produce := func(topic string, acks int16) *kmsg.ProduceRequest {
		r := kmsg.NewPtrProduceRequest()
		r.Version, r.Acks, r.TimeoutMillis = 9, acks, 30000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = batchtest.Build(batchtest.NonIdempotent(time.Now().UnixMilli()), batchtest.Values(1, 10)...)
		rt.Partitions = append(rt.Partitions, rp)
		r.Topics = append(r.Topics, rt)
		return r
	}
	nc, err := net.DialTimeout("tcp", leader.Addr(), 5*time.Second)
	require.NoError(t, err)
	defer nc.Close()
	_, err = nc.Write(append(frame(produce("waits", -1), 1, "order"), frame(produce("free", 1), 2, "order")...))
	require.NoError(t, err)

	type answer struct {
		corr int32
		at   time.Time
	}
	answers := make(chan answer, 2)
	go func() {
		for range 2 {
			nc.SetReadDeadline(time.Now().Add(30 * time.Second))
			var size [4]byte
			if _, err := io.ReadFull(nc, size[:]); err != nil {
				close(answers)
				return
			}
			body := make([]byte, binary.BigEndian.Uint32(size[:]))
			if _, err := io.ReadFull(nc, body); err != nil {
				close(answers)
				return
			}
			answers <- answer{int32(binary.BigEndian.Uint32(body)), time.Now()}
		}
	}()
	var appended time.Time
	waitFor(t, 20*time.Second, "the second produce appended", func() bool {
		o, err := ladm.ListEndOffsets(ctx, "free")
		if err == nil && o["free"][0].Offset == 1 {
			appended = time.Now()
			return true
		}
		return false
	})
	first, ok := <-answers
	require.True(t, ok, "no answer to the acks=all produce")
	second, ok := <-answers
	require.True(t, ok, "no answer to the second produce")
	require.Equal(t, int32(1), first.corr, "responses in request order")
	require.Equal(t, int32(2), second.corr)
	require.True(t, appended.Before(first.at), "the second produce was appended (%v) only after the first was answered (%v)", appended, first.at)
}

// A topic deleted and created again under the same name while a broker
// was down: when it comes back, the old topic's records (in a directory
// of the same name) must not reappear in the new topic.
func TestClusterRecreatedTopicWhileNodeDown(t *testing.T) {
	skipShort(t)
	c, cl, adm, ctx := threeNodes(t, 60*time.Second)
	_, err := adm.CreateTopic(ctx, 1, 3, nil, "reborn")
	require.NoError(t, err)
	produceSeq(t, cl, "reborn", 1, 0, 50)
	waitFor(t, 30*time.Second, "full ISR", func() bool { return fullISR(describe(t, adm, "reborn"), 3) })

	down := c.Node(3)
	down.Kill(t)
	others := []string{c.Node(1).Addr(), c.Node(2).Addr()}
	ocl := clusterClient(t, others)
	oadm := kadm.NewClient(ocl)
	_, err = oadm.DeleteTopics(ctx, "reborn")
	require.NoError(t, err)
	waitFor(t, 30*time.Second, "the topic gone", func() bool {
		td, err := oadm.ListTopics(ctx)
		return err == nil && !td.Has("reborn")
	})
	// Node 3 is down: place the new topic on all three by hand.
	createAssigned(t, ctx, ocl, "reborn", 1, 2, 3)
	produceSeq(t, ocl, "reborn", 1, 0, 10)

	down.Restart(t)
	waitFor(t, 30*time.Second, "node 3 back in the new topic's ISR", func() bool { return fullISR(describe(t, adm, "reborn"), 3) })
	// Whoever leads, the topic holds its 10 new records only.
	ends, err := adm.ListEndOffsets(ctx, "reborn")
	require.NoError(t, err)
	require.EqualValues(t, 10, ends["reborn"][0].Offset)
	readAll(t, c.Addrs(), "reborn", 1, 10)
	// And node 3's copy is the new one: make it the leader and read again.
	var areq kadm.AlterPartitionAssignmentsReq
	areq.Assign("reborn", 0, []int32{3, 1, 2})
	_, err = adm.AlterPartitionAssignments(ctx, areq)
	require.NoError(t, err)
	// The election is asked again until it took: the reordered replica
	// list and the ISR reach every broker a moment after they commit.
	waitFor(t, 20*time.Second, "node 3 leading", func() bool {
		if describe(t, adm, "reborn")[0].Leader == 3 {
			return true
		}
		adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{"reborn": {0: {}}})
		return false
	})
	ends, err = adm.ListEndOffsets(ctx, "reborn")
	require.NoError(t, err)
	require.EqualValues(t, 10, ends["reborn"][0].Offset)
	readAll(t, c.Addrs(), "reborn", 1, 10)
}
