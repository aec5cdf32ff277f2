package consumer

import (
	"errors"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/internal/batch"
	"github.com/tributary/tributary/internal/batch/batchtest"
	"github.com/tributary/tributary/internal/compress"
)

// testBatch builds a batch of n records at base, values "<offset>".
func testBatch(codec compress.Codec, base int64, n int) []byte {
	recs := make([]batchtest.Rec, n)
	for i := range recs {
		recs[i] = batchtest.Rec{Value: []byte{byte('a' + base + int64(i))}, TsDelta: int64(i)}
	}
	o := batchtest.NonIdempotent(1000)
	o.Codec = codec
	b := batchtest.Build(o, recs...)
	batch.SetBaseOffset(b, base)
	return b
}

func decodeOffsets(t *testing.T, data []byte, offset int64) ([]int64, int64, error) {
	t.Helper()
	rp := &kmsg.FetchResponseTopicPartition{Partition: 3, RecordBatches: data}
	recs, next, err := decodeBatches("t", rp, offset, false)
	var offs []int64
	for _, r := range recs {
		if r.Topic != "t" || r.Partition != 3 || len(r.Value) != 1 || r.Value[0] != byte('a'+r.Offset) ||
			r.Timestamp.UnixMilli() != 1000+r.Offset%3 {
			t.Fatalf("record %+v", r)
		}
		offs = append(offs, r.Offset)
	}
	return offs, next, err
}

// TestDecodeBatches covers the two passes of decodeBatches: records
// before the fetch offset are dropped, a partial batch at the end is left
// for the next fetch, and the records before a corrupt batch are kept
// with the fetch offset after them.
func TestDecodeBatches(t *testing.T) {
	b0 := testBatch(compress.None, 0, 3)
	b1 := testBatch(compress.Snappy, 3, 3)
	b2 := testBatch(compress.None, 6, 3)
	all := slices.Concat(b0, b1, b2)

	offs, next, err := decodeOffsets(t, all, 4)
	if err != nil || next != 9 || !slices.Equal(offs, []int64{4, 5, 6, 7, 8}) {
		t.Fatalf("from 4: %v next %d err %v", offs, next, err)
	}

	offs, next, err = decodeOffsets(t, all[:len(all)-5], 0)
	if err != nil || next != 6 || !slices.Equal(offs, []int64{0, 1, 2, 3, 4, 5}) {
		t.Fatalf("partial: %v next %d err %v", offs, next, err)
	}

	bad := slices.Concat(b0, b1, b2)
	bad[len(b0)+len(b1)+batch.HeaderSize] ^= 0xff // b2's first record
	offs, next, err = decodeOffsets(t, bad, 0)
	if !errors.Is(err, batch.ErrBadCRC) || next != 6 || !slices.Equal(offs, []int64{0, 1, 2, 3, 4, 5}) {
		t.Fatalf("corrupt: %v next %d err %v", offs, next, err)
	}

	offs, next, err = decodeOffsets(t, nil, 7)
	if err != nil || next != 7 || offs != nil {
		t.Fatalf("empty: %v next %d err %v", offs, next, err)
	}
}

// TestTakeAliasing: Poll hands out a chunk's records without copying
// them; an append by the caller must not overwrite the records the next
// Poll returns.
func TestTakeAliasing(t *testing.T) {
	recs := make([]*tributary.Record, 5)
	for i := range recs {
		recs[i] = &tributary.Record{Offset: int64(i)}
	}
	p := &partState{position: 0, buf: []chunk{{recs: recs, next: 5, bytes: 10}}}
	c := &Consumer{cfg: cfg{maxPollRecords: 2, maxBufferedBytes: 100}, order: []*partState{p}, buffered: 10, changed: make(chan struct{})}
	got := c.takeLocked()
	if len(got) != 2 || got[0].Offset != 0 || got[1].Offset != 1 || p.position != 2 {
		t.Fatalf("first take: %v, position %d", got, p.position)
	}
	_ = append(got, &tributary.Record{Offset: 99})
	got = c.takeLocked()
	if len(got) != 2 || got[0].Offset != 2 || got[1].Offset != 3 {
		t.Fatalf("second take after append: offsets %d %d", got[0].Offset, got[1].Offset)
	}
	got = c.takeLocked()
	if len(got) != 1 || got[0].Offset != 4 || p.position != 5 || c.buffered != 0 || len(p.buf) != 0 {
		t.Fatalf("last take: %v, position %d, buffered %d", got, p.position, c.buffered)
	}
}

// TestDecodeAllParallel: a large fetch answer is decoded on several
// goroutines (run with -race), each partition's result in its own slot.
func TestDecodeAllParallel(t *testing.T) {
	data := batchtest.Build(batchtest.NonIdempotent(0), batchtest.Values(1000, 100)...)
	results := make([]decoded, 4)
	for i := range results {
		b := slices.Clone(data)
		batch.SetBaseOffset(b, int64(i*1000))
		results[i] = decoded{
			s:     sentPart{offset: int64(i * 1000)},
			topic: "t",
			rp:    &kmsg.FetchResponseTopicPartition{Partition: int32(i), RecordBatches: b},
		}
	}
	c := &Consumer{}
	c.decodeAll(results)
	for i, d := range results {
		if d.err != nil || len(d.recs) != 1000 || d.next != int64(i*1000+1000) ||
			d.recs[0].Partition != int32(i) || d.recs[999].Offset != int64(i*1000+999) || d.rp != nil {
			t.Fatalf("partition %d: %d records, next %d, err %v", i, len(d.recs), d.next, d.err)
		}
	}
}
