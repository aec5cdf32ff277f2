// Package brokerit runs the producer against the Tributary broker
// (broker/brokertest) and reads back with franz-go. It is a package of its
// own so that the producer's unit tests keep building while the broker is
// being changed.
package brokerit

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker"
	"github.com/tributary/tributary/broker/brokertest"
	"github.com/tributary/tributary/client"
	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/producer/internal/pbench"
	"github.com/tributary/tributary/producer/internal/ptest"
)

func createTopics(t testing.TB, addr string, partitions int32, topics ...string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	require.NoError(t, err)
	defer cl.Close()
	resps, err := kadm.NewClient(cl).CreateTopics(context.Background(), partitions, 1, nil, topics...)
	require.NoError(t, err)
	require.NoError(t, resps.Error())
}

func newProducer(t testing.TB, addr string, opts ...producer.Opt) *producer.Producer {
	t.Helper()
	p, err := producer.New(append([]producer.Opt{
		producer.SeedBrokers(addr),
		producer.ClientOptions(client.RetryBackoff(10 * time.Millisecond)),
	}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Close(ctx)
	})
	return p
}

func produceAll(t *testing.T, p *producer.Producer, recs []*tributary.Record) {
	t.Helper()
	ptest.ProduceAll(t, p.Produce, p.Flush, recs)
}

func TestProduceEveryCodecToBroker(t *testing.T) {
	b := brokertest.Start(t)
	codecs := []producer.Codec{producer.NoCompression, producer.Gzip, producer.Snappy, producer.LZ4, producer.ZSTD}
	var topics []string
	for _, c := range codecs {
		topics = append(topics, "t-"+c.String())
	}
	createTopics(t, b.Addr(), 6, topics...)
	for _, codec := range codecs {
		t.Run(codec.String(), func(t *testing.T) {
			topic := "t-" + codec.String()
			p := newProducer(t, b.Addr(), producer.Compression(codec), producer.BatchSize(4096))
			recs := ptest.MakeRecords(topic, 3000, true)
			produceAll(t, p, recs)
			ptest.CheckDelivery(t, recs, ptest.Consume(t, []string{b.Addr()}, topic, len(recs)), true, 6)
		})
	}
}

func TestProduceKeylessToBroker(t *testing.T) {
	b := brokertest.Start(t)
	createTopics(t, b.Addr(), 3, "k")
	p := newProducer(t, b.Addr(), producer.BatchSize(2048))
	recs := ptest.MakeRecords("k", 5000, false)
	produceAll(t, p, recs)
	ptest.CheckDelivery(t, recs, ptest.Consume(t, []string{b.Addr()}, "k", len(recs)), false, 3)
}

func TestUnknownTopicOnBroker(t *testing.T) {
	b := brokertest.Start(t, func(c *broker.Config) { c.AutoCreateTopicsEnable = false })
	p := newProducer(t, b.Addr(), producer.MaxBlock(300*time.Millisecond))
	res := p.ProduceSync(context.Background(), &tributary.Record{Topic: "nope", Value: []byte("x")})
	require.ErrorIs(t, res.FirstErr(), tributary.ErrUnknownTopicOrPartition)
}

// BenchmarkProduceVsKgoBroker is BenchmarkProduceVsKgo against the
// Tributary broker instead of kfake:
//
//	go test ./producer/brokerit -run '^$' -bench . -benchtime 3x
func BenchmarkProduceVsKgoBroker(b *testing.B) {
	br := brokertest.Start(b)
	pbench.Compare(b, []string{br.Addr()})
}

// BenchmarkProduceBroker reports per-client -benchmem figures against the
// Tributary broker.
func BenchmarkProduceBroker(b *testing.B) {
	br := brokertest.Start(b)
	pbench.PerClient(b, []string{br.Addr()}, "broker")
}

// On a LogAppendTime topic the callback reports the broker's append time,
// not the producer's timestamp.
func TestLogAppendTimeReported(t *testing.T) {
	b := brokertest.Start(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	require.NoError(t, err)
	defer cl.Close()
	lat := "LogAppendTime"
	resp, err := kadm.NewClient(cl).CreateTopic(context.Background(), 1, 1, map[string]*string{"message.timestamp.type": &lat}, "lat")
	require.NoError(t, err)
	require.NoError(t, resp.Err)

	p := newProducer(t, b.Addr())
	old := time.Now().Add(-30 * time.Minute).Truncate(time.Millisecond)
	before := time.Now().Add(-time.Second)
	res := p.ProduceSync(context.Background(), &tributary.Record{Topic: "lat", Value: []byte("x"), Timestamp: old})
	require.NoError(t, res.FirstErr())
	require.True(t, res[0].Record.Timestamp.After(before), "timestamp %v is not the append time", res[0].Record.Timestamp)
}
