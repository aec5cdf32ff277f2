// Package ptest holds helpers shared by the producer's tests and its
// integration tests against the Tributary broker: records to produce,
// reading them back with franz-go, and checking what arrived.
package ptest

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary"
)

// JavaMurmur2 is an independent transcription of Kafka's
// org.apache.kafka.common.utils.Utils.murmur2, to check placement.
func JavaMurmur2(data []byte) int32 {
	const seed uint32 = 0x9747b28c
	const m uint32 = 0x5bd1e995
	const r = 24
	length := len(data)
	h := seed ^ uint32(length)
	for i := 0; i+4 <= length; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := length &^ 3
	switch length % 4 {
	case 3:
		h ^= uint32(data[tail+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[tail+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[tail])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// JavaPartition is Java's default partition for a keyed record.
func JavaPartition(key []byte, n int32) int32 { return (JavaMurmur2(key) & 0x7fffffff) % n }

// Consume reads n records of topic from the start with franz-go and
// checks that no more arrive.
func Consume(t testing.TB, addrs []string, topic string, n int) []*kgo.Record {
	t.Helper()
	return ConsumeN(t, addrs, topic, n)
}

func ConsumeN(t testing.TB, addrs []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records of %s", len(out), n, topic)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s[%d]: %v", topic, p, err) })
		out = append(out, fs.Records()...)
	}
	// Nothing more may arrive: every record exactly once.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	extra := cl.PollFetches(ctx2).Records()
	require.Empty(t, extra, "records beyond the %d produced", n)
	return out
}

// CheckDelivery verifies what franz-go reads back against what was
// produced and acknowledged: each record once, at the acknowledged
// partition and offset, in produce order per partition, with key, value,
// headers and timestamp intact.
func CheckDelivery(t testing.TB, sent []*tributary.Record, got []*kgo.Record, keyed bool, n int32) {
	t.Helper()
	require.Len(t, got, len(sent))
	byID := make(map[string]*tributary.Record, len(sent))
	for _, r := range sent {
		byID[string(r.Value)] = r
	}
	seen := make(map[string]bool)
	lastIdx := make(map[int32]int)
	for _, g := range got {
		r := byID[string(g.Value)]
		require.NotNil(t, r, "unknown record %q", g.Value)
		require.False(t, seen[string(g.Value)], "duplicate %q", g.Value)
		seen[string(g.Value)] = true
		require.Equal(t, r.Partition, g.Partition)
		require.Equal(t, r.Offset, g.Offset)
		require.Equal(t, r.Key, g.Key)
		require.Equal(t, r.Timestamp.UnixMilli(), g.Timestamp.UnixMilli())
		require.Len(t, g.Headers, len(r.Headers))
		for i, h := range r.Headers {
			require.Equal(t, h.Key, g.Headers[i].Key)
			require.Equal(t, h.Value, g.Headers[i].Value)
		}
		if keyed {
			require.Equal(t, JavaPartition(g.Key, n), g.Partition, "key %q", g.Key)
		}
		idx, _ := strconv.Atoi(string(g.Value[1:]))
		if last, ok := lastIdx[g.Partition]; ok {
			require.Greater(t, idx, last, "partition %d out of order", g.Partition)
		}
		lastIdx[g.Partition] = idx
	}
}

// MakeRecords returns n records for topic: values v0..vN-1 (CheckDelivery
// relies on them), keys from 97 distinct ones if keyed, headers on every
// third, and explicit, non-monotonic timestamps on every second.
func MakeRecords(topic string, n int, keyed bool) []*tributary.Record {
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	recs := make([]*tributary.Record, n)
	for i := range recs {
		r := &tributary.Record{Topic: topic, Value: []byte("v" + strconv.Itoa(i))}
		if keyed {
			r.Key = []byte("key-" + strconv.Itoa(i%97))
		}
		if i%3 == 0 {
			r.Headers = []tributary.Header{{Key: "h", Value: []byte(strconv.Itoa(i))}, {Key: "nil"}}
		}
		if i%2 == 0 {
			r.Timestamp = base.Add(time.Duration(i%50) * time.Millisecond) // not monotonic
		}
		recs[i] = r
	}
	return recs
}

// ProduceAll hands every record to produce (a Producer's Produce method),
// flushes, and fails t if the flush or any delivery failed. It takes the
// methods rather than the Producer because the producer package's own
// tests use it, and ptest cannot import producer without a cycle.
func ProduceAll(t testing.TB, produce func(context.Context, *tributary.Record, func(*tributary.Record, error)),
	flush func(context.Context) error, recs []*tributary.Record) {
	t.Helper()
	var mu sync.Mutex
	var errs []error
	for _, r := range recs {
		produce(context.Background(), r, func(_ *tributary.Record, err error) {
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, flush(ctx))
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, errs)
}
