package admin

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/broker/brokertest"
	"github.com/tributary/tributary/client"
)

// env is one cluster under test, with our admin and franz-go's kadm (the
// reference that reads back what ours did) pointed at it.
type env struct {
	name    string
	addrs   []string
	kfake   *kfake.Cluster // nil for our broker
	brokers int            // number of brokers, the highest usable RF
	a       *Client
	kcl     *kgo.Client
	kadm    *kadm.Client
}

// backend starts a cluster for one test.
type backend struct {
	name  string
	start func(t *testing.T, kopts ...kfake.Opt) (addrs []string, kf *kfake.Cluster, brokers int)
}

var backends = []backend{
	{"kfake", func(t *testing.T, kopts ...kfake.Opt) ([]string, *kfake.Cluster, int) {
		c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(3)}, kopts...)...)
		require.NoError(t, err)
		t.Cleanup(c.Close)
		return c.ListenAddrs(), c, 3
	}},
	{"tributary", func(t *testing.T, _ ...kfake.Opt) ([]string, *kfake.Cluster, int) {
		b := brokertest.Start(t)
		return []string{b.Addr()}, nil, 1
	}},
}

// forEachBackend runs fn against a fresh kfake cluster and a fresh
// Tributary broker.
func forEachBackend(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			fn(t, newEnv(t, b))
		})
	}
}

// kfakeOnly runs fn against kfake alone, for APIs our broker does not have.
func kfakeOnly(t *testing.T, fn func(t *testing.T, e *env), kopts ...kfake.Opt) {
	t.Helper()
	fn(t, newEnv(t, backends[0], kopts...))
}

func newEnv(t *testing.T, b backend, kopts ...kfake.Opt) *env {
	t.Helper()
	addrs, kf, n := b.start(t, kopts...)
	a, err := New(SeedBrokers(addrs...), ClientOptions(client.RetryBackoff(20*time.Millisecond), client.RetryBackoffMax(200*time.Millisecond)))
	require.NoError(t, err)
	t.Cleanup(a.Close)
	// MetadataMinAge: kgo answers Metadata requests from a cache that
	// young; reads after our writes must see the cluster.
	kcl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.MetadataMinAge(10*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(kcl.Close)
	return &env{name: b.name, addrs: addrs, kfake: kf, brokers: n, a: a, kcl: kcl, kadm: kadm.NewClient(kcl)}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var topicSeq atomic.Int64

// topicName returns a topic name unique within the test binary.
func topicName(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, topicSeq.Add(1))
}

// mkTopic creates a topic with kadm (the reference), so tests of reads do
// not depend on our writes.
func (e *env) mkTopic(t *testing.T, partitions int32, configs map[string]*string) string {
	t.Helper()
	name := topicName("t")
	resp, err := e.kadm.CreateTopic(testCtx(t), partitions, 1, configs, name)
	require.NoError(t, err)
	require.NoError(t, resp.Err)
	e.waitTopic(t, name, int(partitions))
	return name
}

// waitTopic waits until every broker's metadata shows the topic with n
// partitions that all have leaders.
func (e *env) waitTopic(t *testing.T, topic string, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		md, err := e.kadm.Metadata(context.Background(), topic)
		if err != nil {
			return false
		}
		td, ok := md.Topics[topic]
		if !ok || td.Err != nil || len(td.Partitions) != n {
			return false
		}
		for _, p := range td.Partitions {
			if p.Leader < 0 {
				return false
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond)
}

// produce writes n records to each partition of topic with kgo, record i
// of a partition with timestamp base+i ms.
func (e *env) produce(t *testing.T, topic string, partitions int32, n int, base time.Time) {
	t.Helper()
	var recs []*kgo.Record
	for p := range partitions {
		for i := range n {
			recs = append(recs, &kgo.Record{
				Topic: topic, Partition: p,
				Value:     []byte(strconv.Itoa(i)),
				Timestamp: base.Add(time.Duration(i) * time.Millisecond),
			})
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	defer cl.Close()
	require.NoError(t, cl.ProduceSync(testCtx(t), recs...).FirstErr())
}
