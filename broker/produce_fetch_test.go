package broker_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tributary/tributary/broker"
	"github.com/tributary/tributary/broker/brokertest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// Tests of the data path (Produce, Fetch, ListOffsets, DeleteRecords,
// InitProducerId) over TCP against a real broker, driven by franz-go.

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newClient(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.FetchMaxWait(200 * time.Millisecond)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

func createTopic(t testing.TB, addr, name string, partitions int32, configs map[string]string) {
	t.Helper()
	adm := kadm.NewClient(newClient(t, addr))
	cfg := map[string]*string{}
	for k, v := range configs {
		cfg[k] = &v
	}
	resp, err := adm.CreateTopic(testCtx(t), partitions, 1, cfg, name)
	require.NoError(t, err)
	require.NoError(t, resp.Err)
}

// consume reads want records from the start of every partition of topic.
func consume(t *testing.T, addr, topic string, want int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl := newClient(t, addr, append([]kgo.Opt{
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}, opts...)...)
	ctx := testCtx(t)
	var got []*kgo.Record
	for len(got) < want {
		fs := cl.PollFetches(ctx)
		for _, e := range fs.Errors() {
			require.NoError(t, e.Err, "fetch %s/%d", e.Topic, e.Partition)
		}
		got = append(got, fs.Records()...)
	}
	// Nothing more should arrive.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	extra := cl.PollFetches(short).Records()
	require.Empty(t, extra, "more records than produced")
	return got
}

// pinned returns a client that sends API key at most at version (kgo
// otherwise picks the highest version both sides know).
func pinned(t testing.TB, addr string, key, version int16, opts ...kgo.Opt) *kgo.Client {
	vs := kversion.Stable()
	vs.SetMaxKeyVersion(key, version)
	return newClient(t, addr, append([]kgo.Opt{kgo.MaxVersions(vs)}, opts...)...)
}

// seed returns the client's seed broker, for raw requests.
func seed(cl *kgo.Client) *kgo.Broker { return cl.SeedBrokers()[0] }

func TestProduceConsumeEveryCodec(t *testing.T) {
	b := brokertest.Start(t)
	codecs := map[string]kgo.CompressionCodec{
		"none":   kgo.NoCompression(),
		"gzip":   kgo.GzipCompression(),
		"snappy": kgo.SnappyCompression(),
		"lz4":    kgo.Lz4Compression(),
		"zstd":   kgo.ZstdCompression(),
	}
	base := time.UnixMilli(time.Now().UnixMilli() - 3600_000)
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := "codec-" + name
			createTopic(t, b.Addr(), topic, 1, nil)
			cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(codec))
			var recs []*kgo.Record
			for i := range 200 {
				r := &kgo.Record{Timestamp: base.Add(time.Duration(i) * time.Millisecond)}
				switch i % 5 {
				case 0: // key and value, compressible
					r.Key = fmt.Appendf(nil, "key-%d", i)
					r.Value = bytes.Repeat([]byte("value "), i)
				case 1: // null key
					r.Value = []byte("no key")
				case 2: // null value (tombstone)
					r.Key = []byte("k")
				case 3: // empty, not null
					r.Key, r.Value = []byte{}, []byte{}
				case 4:
					r.Value = []byte("with headers")
					r.Headers = []kgo.RecordHeader{{Key: "h1", Value: []byte("v1")}, {Key: "h2"}, {Key: "h3", Value: []byte{}}}
				}
				recs = append(recs, r)
			}
			require.NoError(t, cl.ProduceSync(testCtx(t), recs...).FirstErr())

			got := consume(t, b.Addr(), topic, len(recs))
			require.Len(t, got, len(recs))
			for i, r := range got {
				w := recs[i]
				require.Equal(t, int64(i), r.Offset)
				require.Equal(t, w.Key == nil, r.Key == nil, "record %d key nullness", i)
				require.Equal(t, w.Value == nil, r.Value == nil, "record %d value nullness", i)
				require.True(t, bytes.Equal(w.Key, r.Key), "record %d key", i)
				require.True(t, bytes.Equal(w.Value, r.Value), "record %d value", i)
				require.Equal(t, w.Timestamp.UnixMilli(), r.Timestamp.UnixMilli(), "record %d create time", i)
				require.Equal(t, len(w.Headers), len(r.Headers))
				for j, h := range w.Headers {
					require.Equal(t, h.Key, r.Headers[j].Key)
					require.True(t, bytes.Equal(h.Value, r.Headers[j].Value))
				}
			}
		})
	}
}

func TestLogAppendTimeTopic(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b.Addr(), "lat", 1, map[string]string{"message.timestamp.type": "LogAppendTime"})
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("lat"))
	before := time.Now().UnixMilli()
	old := time.UnixMilli(1_000_000)
	res := cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("a"), Timestamp: old}, &kgo.Record{Value: []byte("b"), Timestamp: old})
	require.NoError(t, res.FirstErr())
	raw := produceRaw(t, cl, 9, "lat", 0, rawBatch(-1, -1, -1, 1, 3))
	after := time.Now().UnixMilli()
	require.Zero(t, raw.ErrorCode)
	require.True(t, raw.LogAppendTime >= before && raw.LogAppendTime <= after, "produce response LogAppendTime %d", raw.LogAppendTime)
	for _, r := range consume(t, b.Addr(), "lat", 3) {
		require.True(t, r.Attrs.TimestampType() == 1, "timestamp type should be LogAppendTime")
		ts := r.Timestamp.UnixMilli()
		require.True(t, ts >= before && ts <= after, "broker time %d not in [%d, %d]", ts, before, after)
	}
}

func TestLargeRecords(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b.Addr(), "big", 1, map[string]string{"max.message.bytes": fmt.Sprint(3 << 20)})
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("big"), kgo.ProducerBatchMaxBytes(3<<20),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	val := make([]byte, 1<<20)
	for i := range val {
		val[i] = byte(i * 7)
	}
	for range 3 {
		require.NoError(t, cl.ProduceSync(testCtx(t), &kgo.Record{Value: val}).FirstErr())
	}
	// Partition max bytes below the record size: KIP-74 still returns it.
	got := consume(t, b.Addr(), "big", 3, kgo.FetchMaxPartitionBytes(1000), kgo.FetchMaxBytes(1000))
	for _, r := range got {
		require.True(t, bytes.Equal(val, r.Value))
	}
}

func TestIdempotentManyInFlight(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b.Addr(), "idem", 4, nil)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("idem"),
		kgo.ProducerLinger(0), kgo.ProducerBatchMaxBytes(2048)) // idempotent: 5 requests in flight
	const n = 20000
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := range n {
		wg.Add(1)
		cl.Produce(context.Background(), &kgo.Record{Key: fmt.Appendf(nil, "%d", i%97), Value: fmt.Appendf(nil, "%08d", i)}, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.NoError(t, firstErr)
	got := consume(t, b.Addr(), "idem", n)
	seen := make(map[string]bool, n)
	last := map[int32]int64{}
	for _, r := range got {
		require.False(t, seen[string(r.Value)], "duplicate %s", r.Value)
		seen[string(r.Value)] = true
		if prev, ok := last[r.Partition]; ok {
			require.Equal(t, prev+1, r.Offset)
		}
		last[r.Partition] = r.Offset
	}
	require.Len(t, seen, n)
}

// ---- raw batches ----

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// rawBatch builds an uncompressed RecordBatch v2 of n records.
func rawBatch(pid int64, epoch int16, seq int32, n int, valueSize int) []byte {
	var recs []byte
	ts := time.Now().UnixMilli()
	for i := range n {
		var body []byte
		body = append(body, 0) // attributes
		body = binary.AppendVarint(body, 0)
		body = binary.AppendVarint(body, int64(i))
		body = binary.AppendVarint(body, -1) // null key
		body = binary.AppendVarint(body, int64(valueSize))
		body = append(body, bytes.Repeat([]byte{'v'}, valueSize)...)
		body = binary.AppendUvarint(body, 0) // headers
		recs = binary.AppendVarint(recs, int64(len(body)))
		recs = append(recs, body...)
	}
	b := make([]byte, 61, 61+len(recs))
	be := binary.BigEndian
	be.PutUint64(b[0:], 0)
	be.PutUint32(b[8:], uint32(49+len(recs)))
	be.PutUint32(b[12:], 0xffffffff)
	b[16] = 2
	be.PutUint16(b[21:], 0)
	be.PutUint32(b[23:], uint32(n-1))
	be.PutUint64(b[27:], uint64(ts))
	be.PutUint64(b[35:], uint64(ts))
	be.PutUint64(b[43:], uint64(pid))
	be.PutUint16(b[51:], uint16(epoch))
	be.PutUint32(b[53:], uint32(seq))
	be.PutUint32(b[57:], uint32(n))
	b = append(b, recs...)
	be.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

func produceRaw(t *testing.T, cl *kgo.Client, version int16, topic string, partition int32, batch []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Version = version
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t), seed(cl))
	require.NoError(t, err)
	require.Len(t, resp.Topics, 1)
	require.Len(t, resp.Topics[0].Partitions, 1)
	return resp.Topics[0].Partitions[0]
}

func initPID(t *testing.T, cl *kgo.Client) (int64, int16) {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	resp, err := req.RequestWith(testCtx(t), seed(cl))
	require.NoError(t, err)
	require.Zero(t, resp.ErrorCode)
	return resp.ProducerID, resp.ProducerEpoch
}

func endOffset(t testing.TB, addr, topic string, partition int32) int64 {
	t.Helper()
	adm := kadm.NewClient(newClient(t, addr))
	lo, err := adm.ListEndOffsets(testCtx(t), topic)
	require.NoError(t, err)
	o, ok := lo.Lookup(topic, partition)
	require.True(t, ok)
	require.NoError(t, o.Err)
	return o.Offset
}

func TestProduceValidation(t *testing.T) {
	b := brokertest.Start(t, func(c *broker.Config) { c.AutoCreateTopicsEnable = false })
	createTopic(t, b.Addr(), "raw", 1, map[string]string{"max.message.bytes": "10000"})
	cl := newClient(t, b.Addr())

	for _, v := range []int16{3, 7, 9, 11} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			cl := pinned(t, b.Addr(), 0, v)
			start := endOffset(t, b.Addr(), "raw", 0)
			pid, epoch := initPID(t, cl)
			batch := rawBatch(pid, epoch, 0, 3, 10)
			first := produceRaw(t, cl, v, "raw", 0, append([]byte(nil), batch...))
			require.Zero(t, first.ErrorCode)
			require.Equal(t, start, first.BaseOffset)
			if v >= 5 {
				require.Equal(t, int64(0), first.LogStartOffset)
			}
			require.Equal(t, int64(-1), first.LogAppendTime)

			// The same batch again is a duplicate: the original offset,
			// no error, nothing stored twice.
			dup := produceRaw(t, cl, v, "raw", 0, append([]byte(nil), batch...))
			require.Zero(t, dup.ErrorCode)
			require.Equal(t, first.BaseOffset, dup.BaseOffset)
			require.Equal(t, start+3, endOffset(t, b.Addr(), "raw", 0))

			// A sequence gap.
			gap := produceRaw(t, cl, v, "raw", 0, rawBatch(pid, epoch, 10, 1, 10))
			require.Equal(t, int16(45), gap.ErrorCode, "OUT_OF_ORDER_SEQUENCE_NUMBER")

			// A corrupt CRC: CORRUPT_MESSAGE and nothing appended.
			bad := rawBatch(pid, epoch, 3, 1, 10)
			bad[len(bad)-2] ^= 0xff
			corrupt := produceRaw(t, cl, v, "raw", 0, bad)
			require.Equal(t, int16(2), corrupt.ErrorCode, "CORRUPT_MESSAGE")
			if v >= 8 {
				require.NotNil(t, corrupt.ErrorMessage)
			}

			// A base offset other than 0 is an invalid record; v8+ says
			// why and lists the record.
			inv := rawBatch(-1, -1, -1, 1, 10)
			binary.BigEndian.PutUint64(inv, 5)
			invalid := produceRaw(t, cl, v, "raw", 0, inv)
			require.Equal(t, int16(87), invalid.ErrorCode, "INVALID_RECORD")
			if v >= 8 {
				require.NotNil(t, invalid.ErrorMessage)
				require.Len(t, invalid.ErrorRecords, 1)
			} else {
				require.Nil(t, invalid.ErrorMessage)
			}

			// Larger than the topic's max.message.bytes.
			big := produceRaw(t, cl, v, "raw", 0, rawBatch(-1, -1, -1, 2, 8000))
			require.Equal(t, int16(10), big.ErrorCode, "MESSAGE_TOO_LARGE")
			require.Equal(t, start+3, endOffset(t, b.Addr(), "raw", 0))

			// The stream continues after the errors.
			next := produceRaw(t, cl, v, "raw", 0, rawBatch(pid, epoch, 3, 1, 10))
			require.Zero(t, next.ErrorCode)
			require.Equal(t, start+3, next.BaseOffset)
		})
	}

	t.Run("unknown-topic", func(t *testing.T) {
		r := produceRaw(t, cl, 9, "no-such-topic", 0, rawBatch(-1, -1, -1, 1, 1))
		require.Equal(t, int16(3), r.ErrorCode)
		r = produceRaw(t, cl, 9, "raw", 7, rawBatch(-1, -1, -1, 1, 1))
		require.Equal(t, int16(3), r.ErrorCode)
		adm := kadm.NewClient(cl)
		td, err := adm.ListTopics(testCtx(t))
		require.NoError(t, err)
		require.False(t, td.Has("no-such-topic"), "produce must not auto-create")
	})

	t.Run("old-versions", func(t *testing.T) {
		r := produceRaw(t, pinned(t, b.Addr(), 0, 2), 2, "raw", 0, []byte("not a message set"))
		require.Equal(t, int16(43), r.ErrorCode, "UNSUPPORTED_FOR_MESSAGE_FORMAT")
	})
}

func TestProduceAcksZero(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b.Addr(), "acks0", 1, nil)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("acks0"), kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	for i := range 50 {
		require.NoError(t, cl.ProduceSync(testCtx(t), &kgo.Record{Value: fmt.Appendf(nil, "%d", i)}).FirstErr())
	}
	got := consume(t, b.Addr(), "acks0", 50)
	require.Len(t, got, 50)

	// A failed acks=0 produce has no response to carry the error, so the
	// broker closes the connection, as Kafka does.
	conn, err := net.Dial("tcp", b.Addr())
	require.NoError(t, err)
	defer conn.Close()
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	req.Acks = 0
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "no-such-topic"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = rawBatch(-1, -1, -1, 1, 1)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw")).AppendRequest(nil, req, 1)
	_, err = conn.Write(frame)
	require.NoError(t, err)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "connection should be closed, not answered or left open")
}

func TestInitProducerID(t *testing.T) {
	b := brokertest.Start(t)
	cl := newClient(t, b.Addr())
	pid1, e1 := initPID(t, cl)
	pid2, _ := initPID(t, cl)
	require.Zero(t, e1)
	require.NotEqual(t, pid1, pid2)

	// KIP-360 epoch bump for the current id and epoch.
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = 4
	req.ProducerID, req.ProducerEpoch = pid2, 0
	resp, err := req.RequestWith(testCtx(t), seed(cl))
	require.NoError(t, err)
	require.Zero(t, resp.ErrorCode)
	require.Equal(t, pid2, resp.ProducerID)
	require.Equal(t, int16(1), resp.ProducerEpoch)

	// The bumped epoch restarts sequences at 0; the old epoch is fenced.
	createTopic(t, b.Addr(), "bump", 1, nil)
	r := produceRaw(t, cl, 9, "bump", 0, rawBatch(pid2, 0, 0, 2, 1))
	require.Zero(t, r.ErrorCode)
	r = produceRaw(t, cl, 9, "bump", 0, rawBatch(pid2, 1, 0, 1, 1))
	require.Zero(t, r.ErrorCode, "new epoch, sequence 0")
	require.Equal(t, int64(2), r.BaseOffset)
	r = produceRaw(t, cl, 9, "bump", 0, rawBatch(pid2, 0, 2, 1, 1))
	require.Contains(t, []int16{47, 90}, r.ErrorCode, "old epoch: INVALID_PRODUCER_EPOCH or PRODUCER_FENCED")

	// Ids are unique across restarts.
	b.Restart(t)
	cl = newClient(t, b.Addr())
	pid3, _ := initPID(t, cl)
	require.Greater(t, pid3, pid2)
}

// ---- fetch ----

func fetchRaw(t *testing.T, cl *kgo.Client, mod func(*kmsg.FetchRequest, *kmsg.FetchRequestTopicPartition), topic string, partition int32, offset int64) (*kmsg.FetchResponse, time.Duration) {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.Version = 12
	req.MaxWaitMillis = 0
	req.MinBytes = 1
	req.MaxBytes = 50 << 20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = partition
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = 1 << 20
	mod(req, &rp)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	start := time.Now()
	resp, err := req.RequestWith(testCtx(t), seed(cl))
	require.NoError(t, err)
	return resp, time.Since(start)
}

func TestFetchLongPoll(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b.Addr(), "poll", 1, nil)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("poll"))
	wait := func(r *kmsg.FetchRequest, _ *kmsg.FetchRequestTopicPartition) { r.MaxWaitMillis = 2000 }

	// Nothing arrives: the fetch returns empty after max wait.
	resp, took := fetchRaw(t, cl, wait, "poll", 0, 0)
	require.Zero(t, resp.Topics[0].Partitions[0].ErrorCode)
	require.Empty(t, resp.Topics[0].Partitions[0].RecordBatches)
	require.GreaterOrEqual(t, took, 1900*time.Millisecond)
	require.Less(t, took, 4*time.Second)

	// Data produced while parked wakes it at once.
	go func() {
		time.Sleep(300 * time.Millisecond)
		cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte("wake")})
	}()
	resp, took = fetchRaw(t, cl, wait, "poll", 0, 0)
	p := resp.Topics[0].Partitions[0]
	require.Zero(t, p.ErrorCode)
	require.NotEmpty(t, p.RecordBatches)
	require.Equal(t, int64(1), p.HighWatermark)
	require.Equal(t, int64(1), p.LastStableOffset)
	require.Less(t, took, 1500*time.Millisecond)
}

func TestFetchErrorsAndLimits(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b.Addr(), "f", 2, nil)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("f"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := range 10 {
		for p := range int32(2) {
			require.NoError(t, cl.ProduceSync(testCtx(t), &kgo.Record{Partition: p, Value: bytes.Repeat([]byte{'x'}, 100+i)}).FirstErr())
		}
	}
	none := func(*kmsg.FetchRequest, *kmsg.FetchRequestTopicPartition) {}

	resp, _ := fetchRaw(t, cl, none, "f", 0, 11)
	require.Equal(t, int16(1), resp.Topics[0].Partitions[0].ErrorCode, "above end: OFFSET_OUT_OF_RANGE")
	require.Equal(t, int64(10), resp.Topics[0].Partitions[0].HighWatermark)

	resp, _ = fetchRaw(t, cl, none, "f", 0, 10)
	require.Zero(t, resp.Topics[0].Partitions[0].ErrorCode, "at the end: empty, no error")

	resp, _ = fetchRaw(t, cl, none, "f", 0, -5)
	require.Equal(t, int16(1), resp.Topics[0].Partitions[0].ErrorCode, "negative offset: OFFSET_OUT_OF_RANGE")

	// A negative or zero partition limit still returns one batch (KIP-74).
	resp, _ = fetchRaw(t, cl, func(_ *kmsg.FetchRequest, p *kmsg.FetchRequestTopicPartition) { p.PartitionMaxBytes = -7 }, "f", 0, 0)
	require.Zero(t, resp.Topics[0].Partitions[0].ErrorCode)
	require.NotEmpty(t, resp.Topics[0].Partitions[0].RecordBatches)

	resp, _ = fetchRaw(t, cl, none, "nope", 0, 0)
	require.Equal(t, int16(3), resp.Topics[0].Partitions[0].ErrorCode)

	resp, _ = fetchRaw(t, cl, func(_ *kmsg.FetchRequest, p *kmsg.FetchRequestTopicPartition) { p.CurrentLeaderEpoch = 5 }, "f", 0, 0)
	require.Equal(t, int16(75), resp.Topics[0].Partitions[0].ErrorCode, "UNKNOWN_LEADER_EPOCH")

	resp, _ = fetchRaw(t, cl, func(r *kmsg.FetchRequest, _ *kmsg.FetchRequestTopicPartition) { r.SessionID, r.SessionEpoch = 12, 3 }, "f", 0, 0)
	require.Equal(t, int16(70), resp.ErrorCode, "FETCH_SESSION_ID_NOT_FOUND")

	// Response max bytes of 1: the first partition still gets one whole
	// batch (KIP-74), the second nothing.
	cl11 := pinned(t, b.Addr(), 1, 11)
	req := kmsg.NewPtrFetchRequest()
	req.MaxBytes = 1
	req.MinBytes = 1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "f"
	for p := range int32(2) {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p
		rp.PartitionMaxBytes = 1 << 20
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	fr, err := req.RequestWith(testCtx(t), seed(cl11))
	require.NoError(t, err)
	require.Equal(t, int16(11), fr.Version)
	require.Len(t, fr.Topics[0].Partitions, 2)
	p0, p1 := fr.Topics[0].Partitions[0], fr.Topics[0].Partitions[1]
	require.Equal(t, int32(0), p0.Partition)
	var rb kmsg.RecordBatch
	require.NoError(t, rb.ReadFrom(p0.RecordBatches))
	require.Equal(t, int(rb.Length)+12, len(p0.RecordBatches), "exactly one batch")
	require.Empty(t, p1.RecordBatches)
	require.Equal(t, int64(10), p1.HighWatermark)
}

func TestListOffsets(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b.Addr(), "lo", 1, nil)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("lo"), kgo.ProducerLinger(0))
	base := time.Now().Add(-time.Hour).UnixMilli()
	// timestamps: base, base+1000, ..., with the maximum in the middle.
	stamps := []int64{base, base + 1000, base + 9000, base + 3000, base + 4000}
	for _, ts := range stamps {
		require.NoError(t, cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("x"), Timestamp: time.UnixMilli(ts)}).FirstErr())
	}

	list := func(version int16, dup bool, tss ...int64) []kmsg.ListOffsetsResponseTopicPartition {
		cl := pinned(t, b.Addr(), 2, version)
		req := kmsg.NewPtrListOffsetsRequest()
		req.Version = version
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "lo"
		for _, ts := range tss {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Timestamp = ts
			rp.MaxNumOffsets = 1
			rt.Partitions = append(rt.Partitions, rp)
			if !dup {
				break
			}
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(testCtx(t), seed(cl))
		require.NoError(t, err)
		return resp.Topics[0].Partitions
	}
	one := func(version int16, ts int64) kmsg.ListOffsetsResponseTopicPartition {
		return list(version, false, ts)[0]
	}

	require.Equal(t, int64(5), one(8, -1).Offset)
	require.Equal(t, int32(0), one(8, -1).LeaderEpoch)
	require.Equal(t, int64(0), one(8, -2).Offset)
	require.Equal(t, int64(0), one(8, -4).Offset)
	mx := one(8, -3)
	require.Zero(t, mx.ErrorCode)
	require.Equal(t, int64(2), mx.Offset)
	require.Equal(t, base+9000, mx.Timestamp)
	require.Equal(t, int16(35), one(6, -3).ErrorCode, "-3 below v7")
	require.Equal(t, int16(35), one(7, -4).ErrorCode, "-4 below v8")

	byTS := one(5, base+2500)
	require.Equal(t, int64(2), byTS.Offset, "first offset with timestamp >= T")
	require.Equal(t, base+9000, byTS.Timestamp)
	require.Equal(t, int64(0), one(1, base).Offset)
	none := one(8, base+10_000)
	require.Equal(t, int64(-1), none.Offset)
	require.Equal(t, int64(-1), none.Timestamp)

	require.Equal(t, []int64{5}, one(0, -1).OldStyleOffsets)

	epochReq := kmsg.NewPtrListOffsetsRequest()
	et := kmsg.NewListOffsetsRequestTopic()
	et.Topic = "lo"
	for _, le := range []int32{5, 0, -1} {
		ep := kmsg.NewListOffsetsRequestTopicPartition()
		ep.CurrentLeaderEpoch = le
		ep.Timestamp = -1
		et.Partitions = append(et.Partitions, ep)
	}
	epochReq.Topics = append(epochReq.Topics, et)
	missing := kmsg.NewListOffsetsRequestTopic()
	missing.Topic = "missing"
	missing.Partitions = append(missing.Partitions, kmsg.NewListOffsetsRequestTopicPartition())
	epochReq.Topics = append(epochReq.Topics, missing)
	eresp, err := epochReq.RequestWith(testCtx(t), seed(cl))
	require.NoError(t, err)
	// The duplicate check comes first: the three entries name one partition.
	for _, p := range eresp.Topics[0].Partitions {
		require.Equal(t, int16(42), p.ErrorCode)
	}
	require.Equal(t, "missing", eresp.Topics[1].Topic)
	require.Equal(t, int16(3), eresp.Topics[1].Partitions[0].ErrorCode)
	epochReq.Topics = epochReq.Topics[:1]
	epochReq.Topics[0].Partitions = epochReq.Topics[0].Partitions[:1]
	eresp, err = epochReq.RequestWith(testCtx(t), seed(cl))
	require.NoError(t, err)
	require.Equal(t, int16(75), eresp.Topics[0].Partitions[0].ErrorCode, "UNKNOWN_LEADER_EPOCH")

	dups := list(8, true, -1, -2)
	require.Len(t, dups, 2)
	require.Equal(t, int16(42), dups[0].ErrorCode)
	require.Equal(t, int16(42), dups[1].ErrorCode)

	// kadm's view agrees.
	adm := kadm.NewClient(cl)
	after, err := adm.ListOffsetsAfterMilli(testCtx(t), base+3500, "lo")
	require.NoError(t, err)
	o, _ := after.Lookup("lo", 0)
	require.Equal(t, int64(2), o.Offset)
}

func TestDeleteRecords(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b.Addr(), "del", 1, nil)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("del"), kgo.ProducerLinger(0))
	for i := range 10 {
		require.NoError(t, cl.ProduceSync(testCtx(t), &kgo.Record{Value: fmt.Appendf(nil, "%d", i)}).FirstErr())
	}
	adm := kadm.NewClient(cl)
	os := kadm.Offsets{}
	os.AddOffset("del", 0, 4, -1)
	resp, err := adm.DeleteRecords(testCtx(t), os)
	require.NoError(t, err)
	r, _ := resp.Lookup("del", 0)
	require.NoError(t, r.Err)
	require.Equal(t, int64(4), r.LowWatermark)

	starts, err := adm.ListStartOffsets(testCtx(t), "del")
	require.NoError(t, err)
	s, _ := starts.Lookup("del", 0)
	require.Equal(t, int64(4), s.Offset)

	fr, _ := fetchRaw(t, cl, func(*kmsg.FetchRequest, *kmsg.FetchRequestTopicPartition) {}, "del", 0, 3)
	require.Equal(t, int16(1), fr.Topics[0].Partitions[0].ErrorCode, "below log start: OFFSET_OUT_OF_RANGE")
	require.Equal(t, int64(4), fr.Topics[0].Partitions[0].LogStartOffset)

	got := consume(t, b.Addr(), "del", 6)
	require.Equal(t, int64(4), got[0].Offset)

	os = kadm.Offsets{}
	os.AddOffset("del", 0, 11, -1)
	resp, err = adm.DeleteRecords(testCtx(t), os)
	require.NoError(t, err)
	r, _ = resp.Lookup("del", 0)
	require.Error(t, r.Err, "beyond the high watermark")
	require.True(t, strings.Contains(r.Err.Error(), "OFFSET_OUT_OF_RANGE"), r.Err.Error())

	// -1 means the high watermark.
	os = kadm.Offsets{}
	os.AddOffset("del", 0, -1, -1)
	resp, err = adm.DeleteRecords(testCtx(t), os)
	require.NoError(t, err)
	r, _ = resp.Lookup("del", 0)
	require.NoError(t, r.Err)
	require.Equal(t, int64(10), r.LowWatermark)
}

func TestRestartKeepsData(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b.Addr(), "keep", 2, nil)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("keep"))
	var recs []*kgo.Record
	for i := range 500 {
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "%d", i%10), Value: fmt.Appendf(nil, "%d", i)})
	}
	require.NoError(t, cl.ProduceSync(testCtx(t), recs...).FirstErr())
	want := map[int32][]string{}
	for _, r := range recs {
		want[r.Partition] = append(want[r.Partition], string(r.Value))
	}
	cl.Close()

	b.Restart(t)
	cl = newClient(t, b.Addr(), kgo.DefaultProduceTopic("keep"))
	require.NoError(t, cl.ProduceSync(testCtx(t), &kgo.Record{Key: []byte("0"), Value: []byte("after")}).FirstErr())
	got := consume(t, b.Addr(), "keep", 501)
	byPart := map[int32][]string{}
	for _, r := range got {
		require.Equal(t, int64(len(byPart[r.Partition])), r.Offset)
		byPart[r.Partition] = append(byPart[r.Partition], string(r.Value))
	}
	for p, vs := range want {
		require.Equal(t, vs, byPart[p][:len(vs)])
	}
}

// TestConsumeAtEveryFetchVersion runs kgo's consumer against each Fetch
// version served, so both the non-flexible and the flexible hand-written
// encodings are parsed by a real client end to end.
func TestConsumeAtEveryFetchVersion(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b.Addr(), "vers", 1, nil)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("vers"), kgo.ProducerBatchMaxBytes(4096))
	var recs []*kgo.Record
	for i := range 300 {
		recs = append(recs, &kgo.Record{Value: fmt.Appendf(nil, "%05d", i)})
	}
	require.NoError(t, cl.ProduceSync(testCtx(t), recs...).FirstErr())
	for v := int16(4); v <= 12; v++ {
		vs := kversion.Stable()
		vs.SetMaxKeyVersion(1, v)
		iso := kgo.ReadUncommitted()
		if v%2 == 0 {
			iso = kgo.ReadCommitted()
		}
		got := consume(t, b.Addr(), "vers", len(recs), kgo.MaxVersions(vs), kgo.FetchMaxPartitionBytes(5000), kgo.FetchIsolationLevel(iso))
		for i, r := range got {
			require.Equal(t, fmt.Sprintf("%05d", i), string(r.Value), "fetch v%d", v)
		}
	}
}

// TestProduceResponseKeepsRequestOrder sends one request naming several
// topics and partitions, some unknown, and checks the answer mirrors it.
func TestProduceResponseKeepsRequestOrder(t *testing.T) {
	b := brokertest.Start(t, func(c *broker.Config) { c.AutoCreateTopicsEnable = false })
	createTopic(t, b.Addr(), "zeta", 3, nil)
	createTopic(t, b.Addr(), "alpha", 1, nil)
	cl := newClient(t, b.Addr())
	req := kmsg.NewPtrProduceRequest()
	req.Acks = 1
	req.TimeoutMillis = 5000
	type tp struct {
		topic string
		part  int32
		code  int16
	}
	want := []tp{{"zeta", 2, 0}, {"zeta", 0, 0}, {"zeta", 9, 3}}
	want2 := []tp{{"ghost", 0, 3}}
	want3 := []tp{{"alpha", 0, 0}}
	for _, group := range [][]tp{want, want2, want3} {
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = group[0].topic
		for _, w := range group {
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition = w.part
			rp.Records = rawBatch(-1, -1, -1, 2, 5)
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(testCtx(t), seed(cl))
	require.NoError(t, err)
	require.Len(t, resp.Topics, 3)
	for i, group := range [][]tp{want, want2, want3} {
		require.Equal(t, group[0].topic, resp.Topics[i].Topic)
		require.Len(t, resp.Topics[i].Partitions, len(group))
		for j, w := range group {
			p := resp.Topics[i].Partitions[j]
			require.Equal(t, w.part, p.Partition)
			require.Equal(t, w.code, p.ErrorCode, "%s/%d", w.topic, w.part)
			if w.code == 0 {
				require.Equal(t, int64(0), p.BaseOffset)
			} else {
				require.Equal(t, int64(-1), p.BaseOffset)
			}
		}
	}
}
