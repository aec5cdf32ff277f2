package broker_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/brokertest"
)

// kill -9 after ten segments, then a damaged batch header in segment 4:
// the restarted broker keeps segments 5-10 readable, answers fetches of
// the damaged batch with CORRUPT_MESSAGE, and keeps the log end. Before,
// the restart rescanned from segment 0, cut the log at the damage and
// deleted the six later segments.
func TestKill9CorruptOldSegmentKeepsLaterData(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	dir := t.TempDir()
	p := brokertest.StartProcess(t, dir)
	createTopic(t, p.Addr(), "rot", 1, map[string]string{"segment.bytes": "2048"})
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.Addr()), kgo.DefaultProduceTopic("rot"), kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	require.NoError(t, err)
	segs := func() []string {
		s, _ := filepath.Glob(filepath.Join(dir, "rot-0", "*.log"))
		sort.Strings(s)
		return s
	}
	ctx := ctx5(t)
	n := 0
	for ; len(segs()) < 11; n++ {
		require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(n) + "-" + string(make([]byte, 150)))}).FirstErr())
	}
	cl.Close()
	end := endOffset(t, p.Addr(), "rot", 0)
	require.EqualValues(t, n, end)
	require.NoError(t, p.Kill())

	// The magic byte of segment 4's second batch.
	files := segs()
	seg4 := files[3]
	raw, err := os.ReadFile(seg4)
	require.NoError(t, err)
	second := 12 + int64(binary.BigEndian.Uint32(raw[8:]))
	require.Less(t, second+17, int64(len(raw)))
	badOffset := int64(binary.BigEndian.Uint64(raw[second:]))
	f, err := os.OpenFile(seg4, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte{raw[second+16] ^ 0x10}, second+16)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	seg5Base, err := strconv.ParseInt(filepath.Base(files[4])[:20], 10, 64)
	require.NoError(t, err)

	start := time.Now()
	p2 := brokertest.StartProcess(t, dir)
	t.Logf("restart after kill -9 took %v (process start included)", time.Since(start))
	require.EqualValues(t, end, endOffset(t, p2.Addr(), "rot", 0), "nothing truncated")
	for _, f := range files {
		require.FileExists(t, f)
	}

	// Segments 5-10 read as written.
	cons, err := kgo.NewClient(kgo.SeedBrokers(p2.Addr()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"rot": {0: kgo.NewOffset().At(seg5Base)}}),
		kgo.FetchMaxWait(100*time.Millisecond))
	require.NoError(t, err)
	defer cons.Close()
	next := seg5Base
	for next < end {
		fs := cons.PollFetches(ctx)
		require.NoError(t, ctx.Err())
		for _, e := range fs.Errors() {
			require.NoError(t, e.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			require.Equal(t, next, r.Offset)
			v, _, _ := bytesCut(r.Value)
			require.Equal(t, strconv.FormatInt(r.Offset, 10), v)
			next++
		})
	}

	// The damaged batch answers CORRUPT_MESSAGE.
	adm, err := kgo.NewClient(kgo.SeedBrokers(p2.Addr()))
	require.NoError(t, err)
	defer adm.Close()
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis = 0
	req.MaxBytes = 1 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "rot"
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset = badOffset
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	req.Version = 11
	resp, err := req.RequestWith(ctx, adm)
	require.NoError(t, err)
	require.Len(t, resp.Topics, 1)
	require.Equal(t, tributary.ErrCorruptMessage.Code, resp.Topics[0].Partitions[0].ErrorCode)
}

func bytesCut(b []byte) (string, string, bool) {
	for i, c := range b {
		if c == '-' {
			return string(b[:i]), string(b[i+1:]), true
		}
	}
	return string(b), "", false
}
