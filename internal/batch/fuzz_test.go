package batch_test

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary/internal/batch"
	"github.com/tributary/tributary/internal/batch/batchtest"
	"github.com/tributary/tributary/internal/compress"
)

// FuzzValidate states the parser's invariants: Validate never panics and
// never allocates without bound (the decompression limit), a batch that
// validates still validates identically after the broker rewrites its
// offset and leader epoch, and after it stamps LogAppendTime; the record
// iterator agrees with Validate on the count. Failing inputs land in
// testdata/fuzz/FuzzValidate and replay as regression tests.
func FuzzValidate(f *testing.F) {
	for _, c := range codecs {
		f.Add(sample(c))
		o := batchtest.Opts{Codec: c, ProducerID: 9, ProducerEpoch: 1, BaseSequence: 3, BaseTimestamp: 100}
		f.Add(batchtest.Build(o, batchtest.Values(5, 20)...))
	}
	for _, c := range []compress.Codec{compress.None, compress.Snappy} {
		bs, err := batchtest.FromKgo(c, "one", "two", "three")
		if err != nil {
			f.Fatal(err)
		}
		for _, b := range bs {
			f.Add(b)
		}
	}
	f.Add(batchtest.Build(batchtest.NonIdempotent(0))) // zero records
	f.Add(batchtest.Build(batchtest.NonIdempotent(0), batchtest.Rec{Headers: []kmsg.Header{{Key: "", Value: []byte{}}}}))

	const limit = 1 << 20
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := batch.Validate(b, limit)
		if err != nil {
			return
		}
		if info.NumRecords != info.RecordCount {
			t.Fatalf("valid batch walked %d records, header says %d", info.NumRecords, info.RecordCount)
		}
		if info.Size() != int64(len(b)) {
			t.Fatalf("size %d != len %d", info.Size(), len(b))
		}
		region, err := batch.RecordsRegion(b, nil, limit)
		if err != nil {
			t.Fatalf("RecordsRegion failed on a valid batch: %v", err)
		}
		it := batch.NewRecords(region, info.RecordCount)
		var r batch.Record
		n := int32(0)
		for it.Next(&r) {
			for {
				if _, _, ok := r.Headers.Next(); !ok {
					break
				}
			}
			n++
		}
		if it.Err() != nil || n != info.RecordCount {
			t.Fatalf("iterator: %d records, err %v; Validate: %d", n, it.Err(), info.RecordCount)
		}

		c := bytes.Clone(b)
		batch.SetBaseOffset(c, 12345)
		batch.SetPartitionLeaderEpoch(c, 3)
		again, err := batch.Validate(c, limit)
		if err != nil {
			t.Fatalf("revalidate after offset assignment: %v", err)
		}
		want := info
		want.BaseOffset = 12345
		want.PartitionLeaderEpoch = 3
		if again != want {
			t.Fatalf("revalidate differs:\n got %+v\nwant %+v", again, want)
		}

		batch.SetLogAppendTime(c, 777)
		lat, err := batch.Validate(c, limit)
		if err != nil {
			t.Fatalf("revalidate after LogAppendTime: %v", err)
		}
		if !lat.IsLogAppendTime() || lat.Header.MaxTimestamp != 777 || (lat.NumRecords > 0 && lat.MaxTimestamp != 777) {
			t.Fatalf("LogAppendTime not applied: %+v", lat)
		}
	})
}
