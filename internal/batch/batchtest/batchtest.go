// Package batchtest builds RecordBatch v2 bytes with franz-go's kmsg, the
// independent reference encoder, for tests of the batch parser and the
// broker's storage. It is for tests only.
package batchtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary/internal/compress"
)

// Rec is one record to encode.
type Rec struct {
	Key, Value []byte
	Headers    []kmsg.Header
	// TsDelta is the timestamp delta from the batch's base timestamp.
	TsDelta int64
}

// Opts shapes a batch.
type Opts struct {
	Codec         compress.Codec
	BaseTimestamp int64
	ProducerID    int64 // -1 when not idempotent (the zero value means pid 0)
	ProducerEpoch int16
	BaseSequence  int32
	Transactional bool
}

// NonIdempotent returns Opts for a plain producer.
func NonIdempotent(ts int64) Opts {
	return Opts{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, BaseTimestamp: ts}
}

// Build encodes recs as one batch with baseOffset 0, as a producer sends it.
func Build(o Opts, recs ...Rec) []byte {
	var raw []byte
	maxTs := o.BaseTimestamp
	for i, r := range recs {
		kr := kmsg.Record{
			TimestampDelta64: r.TsDelta,
			OffsetDelta:      int32(i),
			Key:              r.Key,
			Value:            r.Value,
			Headers:          r.Headers,
		}
		body := kr.AppendTo(nil)[1:] // encoded with Length 0: one varint byte
		raw = binary.AppendVarint(raw, int64(len(body)))
		raw = append(raw, body...)
		if o.BaseTimestamp+r.TsDelta > maxTs {
			maxTs = o.BaseTimestamp + r.TsDelta
		}
	}
	records, err := compress.Compress(o.Codec, nil, raw)
	if err != nil {
		panic(err)
	}
	attrs := int16(o.Codec)
	if o.Transactional {
		attrs |= 0x10
	}
	b := kmsg.RecordBatch{
		FirstOffset:          0,
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           attrs,
		LastOffsetDelta:      int32(len(recs) - 1),
		FirstTimestamp:       o.BaseTimestamp,
		MaxTimestamp:         maxTs,
		ProducerID:           o.ProducerID,
		ProducerEpoch:        o.ProducerEpoch,
		FirstSequence:        o.BaseSequence,
		NumRecords:           int32(len(recs)),
		Records:              records,
	}
	b.Length = int32(49 + len(records))
	out := b.AppendTo(nil)
	b.CRC = int32(crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b.AppendTo(nil)
}

// Values builds n records whose values are size bytes each.
func Values(n, size int) []Rec {
	recs := make([]Rec, n)
	for i := range recs {
		v := make([]byte, size)
		for j := range v {
			v[j] = byte('a' + (i+j)%26)
		}
		recs[i] = Rec{Value: v, TsDelta: int64(i)}
	}
	return recs
}

// FromKgo produces values through a real franz-go producer (idempotent,
// with the given codec) into an in-process kfake cluster and returns the
// produce request's batch bytes exactly as kgo sent them.
func FromKgo(codec compress.Codec, values ...string) ([][]byte, error) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var (
		mu  sync.Mutex
		out [][]byte
	)
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		mu.Lock()
		defer mu.Unlock()
		for _, t := range req.(*kmsg.ProduceRequest).Topics {
			for _, p := range t.Partitions {
				out = append(out, bytes.Clone(p.Records))
			}
		}
		return nil, nil, false
	})
	codecs := map[compress.Codec]kgo.CompressionCodec{
		compress.None: kgo.NoCompression(), compress.Gzip: kgo.GzipCompression(),
		compress.Snappy: kgo.SnappyCompression(), compress.LZ4: kgo.Lz4Compression(),
		compress.ZSTD: kgo.ZstdCompression(),
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("t"),
		kgo.ProducerBatchCompression(codecs[codec]), kgo.ProducerLinger(50*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(v),
			Headers: []kgo.RecordHeader{{Key: "i", Value: []byte(fmt.Sprint(i))}}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	return out, nil
}
