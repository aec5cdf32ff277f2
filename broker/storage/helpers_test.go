package storage

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary/internal/batch"
	"github.com/tributary/tributary/internal/batch/batchtest"
	"github.com/tributary/tributary/internal/compress"
)

// clock is a manual clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.UnixMilli(1_700_000_000_000)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *clock) Ms() int64 { return c.Now().UnixMilli() }

func testConfig() Config {
	c := DefaultConfig()
	c.FileDeleteDelayMs = 0
	return c
}

func openT(t *testing.T, dir string, cfg Config, c *clock) *Log {
	t.Helper()
	l, err := Open(dir, cfg, Options{Now: c.Now})
	require.NoError(t, err)
	return l
}

// crash drops the log as a killed process would: no flush, no snapshot,
// no clean-shutdown marker. Appended bytes are already in the files.
func crash(l *Log) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closeFilesLocked()
}

// mkBatch builds a batch of n records with values "<tag>-<i>" and
// timestamps ts, ts+1, ….
func mkBatch(codec compress.Codec, ts int64, tag string, n int) []byte {
	o := batchtest.NonIdempotent(ts)
	o.Codec = codec
	recs := make([]batchtest.Rec, n)
	for i := range recs {
		recs[i] = batchtest.Rec{Key: []byte(tag), Value: fmt.Appendf(nil, "%s-%d", tag, i), TsDelta: int64(i)}
	}
	return batchtest.Build(o, recs...)
}

func idemBatch(pid int64, epoch int16, seq int32, n int, ts int64) []byte {
	o := batchtest.Opts{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, BaseTimestamp: ts}
	recs := make([]batchtest.Rec, n)
	for i := range recs {
		recs[i] = batchtest.Rec{Value: fmt.Appendf(nil, "p%d-s%d", pid, int(seq)+i)}
	}
	return batchtest.Build(o, recs...)
}

func mustAppend(t *testing.T, l *Log, b []byte) AppendResult {
	t.Helper()
	r, err := l.Append(b, 0)
	require.NoError(t, err)
	return r
}

type rec struct {
	off   int64
	ts    int64
	value string
}

// kv is one record as a consumer reads it.
type kv struct {
	off   int64
	key   string
	value []byte // nil: tombstone
	ts    int64
}

// decodeKV parses raw log bytes (whole batches) with kmsg, the
// independent decoder, after checking each batch with batch.Validate,
// and returns every record and the offset after the last batch (its
// lastOffsetDelta counts, whatever records it still holds).
func decodeKV(t *testing.T, raw []byte) (out []kv, end int64) {
	t.Helper()
	for len(raw) > 0 {
		require.GreaterOrEqual(t, len(raw), 12)
		size := int(binary.BigEndian.Uint32(raw[8:])) + 12
		var b kmsg.RecordBatch
		require.NoError(t, b.ReadFrom(raw[:size]))
		_, err := batch.Validate(raw[:size], 64<<20)
		require.NoError(t, err, "batch at %d", b.FirstOffset)
		records, err := compress.Decompress(compress.Codec(b.Attributes&7), nil, b.Records, 64<<20)
		require.NoError(t, err)
		for range b.NumRecords {
			var r kmsg.Record
			l, n := binary.Varint(records)
			require.NoError(t, r.ReadFrom(records[:n+int(l)]))
			records = records[n+int(l):]
			ts := b.FirstTimestamp + r.TimestampDelta64
			if b.Attributes&batch.AttrLogAppendTime != 0 {
				ts = b.MaxTimestamp
			}
			out = append(out, kv{off: b.FirstOffset + int64(r.OffsetDelta), key: string(r.Key), value: r.Value, ts: ts})
		}
		require.Empty(t, records)
		end = b.FirstOffset + int64(b.LastOffsetDelta) + 1
		raw = raw[size:]
	}
	return out, end
}

// decodeBatches is decodeKV as offsets, timestamps and values.
func decodeBatches(t *testing.T, raw []byte) []rec {
	t.Helper()
	kvs, _ := decodeKV(t, raw)
	return asRecs(kvs)
}

func asRecs(kvs []kv) []rec {
	out := make([]rec, 0, len(kvs))
	for _, r := range kvs {
		out = append(out, rec{off: r.off, ts: r.ts, value: string(r.value)})
	}
	return out
}

func sliceBytes(t *testing.T, fs FileSlice) []byte {
	t.Helper()
	if fs.Len == 0 {
		return nil
	}
	b := make([]byte, fs.Len)
	_, err := fs.File.ReadAt(b, fs.Pos)
	if err == io.EOF {
		err = nil
	}
	require.NoError(t, err)
	return b
}

// readAll reads the whole log from the start through Read, segment by
// segment, as a consumer would (readLog), as offsets, timestamps and
// values.
func readAll(t *testing.T, l *Log) []rec {
	t.Helper()
	return asRecs(readLog(t, l))
}

func requireContiguous(t *testing.T, recs []rec, from, to int64) {
	t.Helper()
	require.Len(t, recs, int(to-from))
	for i, r := range recs {
		require.Equal(t, from+int64(i), r.off)
	}
}
