package broker_test

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker"
	"github.com/tributary/tributary/broker/brokertest"
	"github.com/tributary/tributary/consumer"
)

// Compaction tests: a real broker with a fast cleaner (backoff 50 ms) and
// small segments, clients over TCP.

func startCleaning(t *testing.T, more ...func(*broker.Config)) *brokertest.Broker {
	return brokertest.Start(t, append([]func(*broker.Config){func(c *broker.Config) {
		c.LogCleanerBackoffMs = 50
		c.LogSegmentDeleteDelayMs = 0
	}}, more...)...)
}

// compactedTopic creates a one-partition compacted topic with 1 KiB
// segments and the given extra configs.
func compactedTopic(t *testing.T, addr, name string, configs map[string]string) {
	t.Helper()
	cfg := map[string]string{"cleanup.policy": "compact", "segment.bytes": "1024", "min.cleanable.dirty.ratio": "0.01"}
	for k, v := range configs {
		cfg[k] = v
	}
	createTopic(t, addr, name, 1, cfg)
}

const fillerKey = "~filler"

// produceVersions writes versions rounds of every key, round after
// round (value "<key>=v<round>"), then filler records under one extra key
// so that every round lies in segments below the active one (the cleaner
// never touches the active segment). It returns the newest value of each
// key.
func produceVersions(t *testing.T, cl *kgo.Client, topic string, keys, versions int) map[string]string {
	t.Helper()
	ctx := ctx5(t)
	newest := map[string]string{}
	for v := 0; v < versions; v++ {
		var recs []*kgo.Record
		for k := 0; k < keys; k++ {
			key := fmt.Sprintf("key-%03d", k)
			val := fmt.Sprintf("%s=v%d", key, v)
			newest[key] = val
			recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(val)})
		}
		require.NoError(t, cl.ProduceSync(ctx, recs...).FirstErr())
	}
	fill(t, cl, topic, 12)
	return newest
}

// fill appends n filler records of 200 bytes, one batch each: a few
// segments' worth. The values are random so that the producer's
// compression cannot shrink them: zeros compressed to a few bytes once
// left the records written before a fill in the active segment, which
// the cleaner never touches.
func fill(t *testing.T, cl *kgo.Client, topic string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		v := make([]byte, 200)
		crand.Read(v)
		require.NoError(t, cl.ProduceSync(ctx5(t), &kgo.Record{Topic: topic, Key: []byte(fillerKey), Value: v}).FirstErr())
	}
}

type readRec struct {
	off        int64
	key, value string
	tombstone  bool
}

func highWatermark(t *testing.T, adm *kadm.Client, topic string) int64 {
	t.Helper()
	ends, err := adm.ListEndOffsets(ctx5(t), topic)
	require.NoError(t, err)
	e, ok := ends.Lookup(topic, 0)
	require.True(t, ok)
	require.NoError(t, e.Err)
	return e.Offset
}

// readAllKgo reads partition 0 from its start to hw with franz-go.
func readAllKgo(t *testing.T, addr, topic string, hw int64) []readRec {
	t.Helper()
	cl := newClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	defer cl.Close()
	ctx := ctx5(t)
	var out []readRec
	for len(out) == 0 || out[len(out)-1].off < hw-1 {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "read %d records, last %v, want up to %d", len(out), out, hw-1)
		for _, e := range fs.Errors() {
			require.NoError(t, e.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, readRec{r.Offset, string(r.Key), string(r.Value), r.Value == nil})
		})
	}
	return out
}

// readAllSDK reads partition 0 from its start to hw with our consumer.
func readAllSDK(t *testing.T, addr, topic string, hw int64) []readRec {
	t.Helper()
	c, err := consumer.New(consumer.SeedBrokers(addr), consumer.FetchMaxWait(100*time.Millisecond))
	require.NoError(t, err)
	defer c.Close(context.Background())
	require.NoError(t, c.AssignOffsets(map[tributary.TopicPartition]int64{{Topic: topic, Partition: 0}: 0}))
	ctx := ctx5(t)
	var out []readRec
	for len(out) == 0 || out[len(out)-1].off < hw-1 {
		recs, err := c.Poll(ctx)
		require.NoError(t, err, "read %d records, want up to %d", len(out), hw-1)
		for _, r := range recs {
			out = append(out, readRec{r.Offset, string(r.Key), string(r.Value), r.Value == nil})
		}
	}
	return out
}

// checkCompacted checks what a reader got: offsets strictly increasing;
// every key of newest appears exactly once, with its newest value (the
// filler key may appear in the uncleaned active tail). It returns
// whether there was at least one offset gap.
func checkCompacted(t *testing.T, recs []readRec, newest map[string]string) (gaps bool) {
	t.Helper()
	seen := map[string]int{}
	for i, r := range recs {
		if i > 0 {
			require.Greater(t, r.off, recs[i-1].off, "offsets must increase")
			gaps = gaps || r.off > recs[i-1].off+1
		}
		if r.key == fillerKey {
			continue
		}
		want, ok := newest[r.key]
		require.True(t, ok, "unexpected key %q at %d", r.key, r.off)
		require.Equal(t, want, r.value, "key %q at offset %d is not its newest value", r.key, r.off)
		seen[r.key]++
	}
	for k := range newest {
		require.Equal(t, 1, seen[k], "key %q read %d times", k, seen[k])
	}
	return gaps
}

// onlyNewest reports whether recs hold every key of newest once with its
// newest value (the condition waited for; checkCompacted asserts it).
func onlyNewest(recs []readRec, newest map[string]string) bool {
	seen := map[string]int{}
	for _, r := range recs {
		if r.key == fillerKey {
			continue
		}
		want, ok := newest[r.key]
		if !ok || want != r.value || (r.tombstone && want != "") {
			return false
		}
		seen[r.key]++
	}
	for k := range newest {
		if seen[k] != 1 {
			return false
		}
	}
	return true
}

func dirtyRatio(t *testing.T, b *brokertest.Broker, topic string) float64 {
	t.Helper()
	ot, ok := b.Observe().Topic(topic)
	require.True(t, ok)
	require.True(t, ot.Partitions[0].Compacted)
	return ot.Partitions[0].DirtyRatio
}

// Many versions of a set of keys; once the cleaner ran, franz-go and our
// consumer both read exactly the newest value of every key, with offset
// gaps where the older versions were.
func TestCleanerKeepsNewestValuePerKey(t *testing.T) {
	b := startCleaning(t)
	compactedTopic(t, b.Addr(), "compact-a", nil)
	cl := newClient(t, b.Addr(), kgo.ProducerLinger(0))
	adm := newAdmin(t, b.Addr())
	newest := produceVersions(t, cl, "compact-a", 20, 30)
	hw := highWatermark(t, adm, "compact-a")
	require.Greater(t, hw, int64(600))

	require.Eventually(t, func() bool {
		return onlyNewest(readAllKgo(t, b.Addr(), "compact-a", hw), newest)
	}, 20*time.Second, 50*time.Millisecond, "the cleaner never left only the newest values")
	// Passes may still be due (older filler records): compare the two
	// readers once nothing is left to clean.
	require.Eventually(t, func() bool { return dirtyRatio(t, b, "compact-a") == 0 }, 10*time.Second, 20*time.Millisecond)
	kg := readAllKgo(t, b.Addr(), "compact-a", hw)
	require.True(t, checkCompacted(t, kg, newest), "no offset gaps after cleaning")
	sdk := readAllSDK(t, b.Addr(), "compact-a", hw)
	require.True(t, checkCompacted(t, sdk, newest))
	require.Equal(t, kg, sdk, "franz-go and our consumer read different logs")
	require.Less(t, len(kg), int(hw)/10, "cleaning kept %d of %d records", len(kg), hw)

	// Progress is visible: the dirty ratio is back to 0 (above) and the
	// cleaner's counters moved.
	body := scrapeMetrics(t, b.HTTPAddr())
	require.Contains(t, body, `tributary_log_cleaner_dirty_ratio{partition="0",topic="compact-a"} 0`)
	require.NotContains(t, body, "tributary_log_cleaner_read_bytes_total 0\n")
	require.NotContains(t, body, "tributary_log_cleaner_passes_total 0\n")
}

// A tombstone (null value) survives the first pass for delete.retention.ms
// — readers see the delete — and is gone after a later pass.
func TestCleanerTombstonesExpireAfterDeleteRetention(t *testing.T) {
	b := startCleaning(t)
	compactedTopic(t, b.Addr(), "compact-b", map[string]string{"delete.retention.ms": "1000"})
	cl := newClient(t, b.Addr(), kgo.ProducerLinger(0))
	adm := newAdmin(t, b.Addr())
	ctx := ctx5(t)
	newest := map[string]string{}
	for v := 0; v < 5; v++ {
		for k := 0; k < 10; k++ {
			key := fmt.Sprintf("key-%03d", k)
			newest[key] = fmt.Sprintf("%s=v%d", key, v)
			require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Topic: "compact-b", Key: []byte(key), Value: []byte(newest[key])}).FirstErr())
		}
	}
	for k := 0; k < 5; k++ {
		key := fmt.Sprintf("key-%03d", k)
		newest[key] = "" // a tombstone
		require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Topic: "compact-b", Key: []byte(key)}).FirstErr())
	}
	fill(t, cl, "compact-b", 12)
	hw := highWatermark(t, adm, "compact-b")

	// After the first pass: every key once, the deleted ones as
	// tombstones.
	require.Eventually(t, func() bool {
		return onlyNewest(readAllKgo(t, b.Addr(), "compact-b", hw), newest)
	}, 20*time.Second, 50*time.Millisecond)
	recs := readAllKgo(t, b.Addr(), "compact-b", hw)
	checkCompacted(t, recs, newest)
	tombs := 0
	for _, r := range recs {
		if r.tombstone {
			tombs++
		}
	}
	require.Equal(t, 5, tombs, "tombstones must be kept until delete.retention.ms has passed")

	// Later passes (new dirty data makes the log due again) drop them
	// once their delete horizon passed.
	live := map[string]string{}
	for k, v := range newest {
		if v != "" {
			live[k] = v
		}
	}
	require.Eventually(t, func() bool {
		fill(t, cl, "compact-b", 8)
		recs := readAllKgo(t, b.Addr(), "compact-b", highWatermark(t, adm, "compact-b"))
		return onlyNewest(recs, live)
	}, 30*time.Second, 200*time.Millisecond, "tombstones still there long after delete.retention.ms")
	recs = readAllSDK(t, b.Addr(), "compact-b", highWatermark(t, adm, "compact-b"))
	checkCompacted(t, recs, live)
}

// min.cleanable.dirty.ratio decides: below it a log is left alone, above
// it cleaned; max.compaction.lag.ms forces a clean below it. The configs
// change at run time (IncrementalAlterConfigs) and apply to the open log.
func TestCleanerDirtyRatioAndMaxCompactionLag(t *testing.T) {
	b := startCleaning(t)
	compactedTopic(t, b.Addr(), "compact-c", nil)
	cl := newClient(t, b.Addr(), kgo.ProducerLinger(0))
	adm := newAdmin(t, b.Addr())
	alter := func(name, value string) {
		t.Helper()
		rs, err := adm.AlterTopicConfigs(ctx5(t), []kadm.AlterConfig{{Op: kadm.SetConfig, Name: name, Value: kadm.StringPtr(value)}}, "compact-c")
		require.NoError(t, err)
		require.NoError(t, rs[0].Err)
	}
	// A clean tail first.
	newest := produceVersions(t, cl, "compact-c", 20, 20)
	require.Eventually(t, func() bool {
		return onlyNewest(readAllKgo(t, b.Addr(), "compact-c", highWatermark(t, adm, "compact-c")), newest)
	}, 20*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool { return dirtyRatio(t, b, "compact-c") == 0 }, 10*time.Second, 20*time.Millisecond)

	// Dirty it below a high threshold.
	alter("min.cleanable.dirty.ratio", "0.99")
	for k := 0; k < 3; k++ {
		key := fmt.Sprintf("key-%03d", k)
		newest[key] = key + "=late"
		require.NoError(t, cl.ProduceSync(ctx5(t), &kgo.Record{Topic: "compact-c", Key: []byte(key), Value: []byte(newest[key])}).FirstErr())
	}
	fill(t, cl, "compact-c", 8)
	var ratio float64
	require.Eventually(t, func() bool { ratio = dirtyRatio(t, b, "compact-c"); return ratio > 0 }, 10*time.Second, 20*time.Millisecond)
	require.Less(t, ratio, 0.99)

	// Proof the cleaner kept working meanwhile: another topic, due,
	// gets cleaned; ours is left as it was.
	compactedTopic(t, b.Addr(), "compact-c-control", nil)
	ctl := produceVersions(t, cl, "compact-c-control", 10, 10)
	require.Eventually(t, func() bool {
		return onlyNewest(readAllKgo(t, b.Addr(), "compact-c-control", highWatermark(t, adm, "compact-c-control")), ctl)
	}, 20*time.Second, 50*time.Millisecond)
	require.Equal(t, ratio, dirtyRatio(t, b, "compact-c"), "a log below min.cleanable.dirty.ratio was cleaned")

	// Lowering the threshold below the ratio cleans it.
	alter("min.cleanable.dirty.ratio", fmt.Sprint(ratio/2))
	require.Eventually(t, func() bool { return dirtyRatio(t, b, "compact-c") == 0 }, 10*time.Second, 20*time.Millisecond)
	checkCompacted(t, readAllKgo(t, b.Addr(), "compact-c", highWatermark(t, adm, "compact-c")), newest)

	// Below the ratio again, but max.compaction.lag.ms forces it.
	alter("min.cleanable.dirty.ratio", "0.99")
	for k := 3; k < 6; k++ {
		key := fmt.Sprintf("key-%03d", k)
		newest[key] = key + "=lag"
		require.NoError(t, cl.ProduceSync(ctx5(t), &kgo.Record{Topic: "compact-c", Key: []byte(key), Value: []byte(newest[key])}).FirstErr())
	}
	fill(t, cl, "compact-c", 8)
	require.Eventually(t, func() bool { ratio = dirtyRatio(t, b, "compact-c"); return ratio > 0 }, 10*time.Second, 20*time.Millisecond)
	require.Less(t, ratio, 0.99)
	alter("max.compaction.lag.ms", "300")
	require.Eventually(t, func() bool { return dirtyRatio(t, b, "compact-c") == 0 }, 15*time.Second, 20*time.Millisecond,
		"max.compaction.lag.ms did not force a clean")
	checkCompacted(t, readAllKgo(t, b.Addr(), "compact-c", highWatermark(t, adm, "compact-c")), newest)
}

func scrapeMetrics(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return string(body)
}

// log.cleaner.io.max.bytes.per.second (dynamic) paces the cleaner: a
// pass cannot finish faster than its bytes allow, and Close does not wait
// for a throttled pass.
func TestCleanerIOThrottle(t *testing.T) {
	b := startCleaning(t)
	compactedTopic(t, b.Addr(), "compact-io", map[string]string{"min.compaction.lag.ms": "3600000"})
	cl := newClient(t, b.Addr(), kgo.ProducerLinger(0))
	adm := newAdmin(t, b.Addr())
	newest := produceVersions(t, cl, "compact-io", 20, 20)
	hw := highWatermark(t, adm, "compact-io")

	const rate = 20000 // bytes/s; the log is ~15 KB, read and rewritten
	setBroker := func(name, value string) {
		t.Helper()
		rs, err := adm.AlterBrokerConfigs(ctx5(t), []kadm.AlterConfig{{Op: kadm.SetConfig, Name: name, Value: kadm.StringPtr(value)}})
		require.NoError(t, err)
		for _, r := range rs {
			require.NoError(t, r.Err)
		}
	}
	setTopic := func(name, value string) {
		t.Helper()
		rs, err := adm.AlterTopicConfigs(ctx5(t), []kadm.AlterConfig{{Op: kadm.SetConfig, Name: name, Value: kadm.StringPtr(value)}}, "compact-io")
		require.NoError(t, err)
		require.NoError(t, rs[0].Err)
	}
	setBroker("log.cleaner.io.max.bytes.per.second", fmt.Sprint(rate))
	start := time.Now()
	setTopic("min.compaction.lag.ms", "0")
	require.Eventually(t, func() bool {
		return onlyNewest(readAllKgo(t, b.Addr(), "compact-io", hw), newest)
	}, 30*time.Second, 50*time.Millisecond)
	// The counters move when the pass returns, just after the swap.
	var moved int64
	require.Eventually(t, func() bool { moved = cleanerBytes(t, b.HTTPAddr()); return moved > 5000 }, 10*time.Second, 10*time.Millisecond)
	took := time.Since(start)
	t.Logf("throttled to %d B/s: %d bytes read and written in %v", rate, moved, took.Round(time.Millisecond))
	// The bucket lets the first bytes through unpaid and skips sleeps
	// under a millisecond: allow 20%.
	require.GreaterOrEqual(t, took.Seconds(), 0.8*float64(moved)/rate, "%d bytes in %v: faster than %d B/s", moved, took, rate)

	// A crawl: Close must not wait for the pass.
	setBroker("log.cleaner.io.max.bytes.per.second", "100")
	for k := 0; k < 20; k++ {
		key := fmt.Sprintf("key-%03d", k)
		require.NoError(t, cl.ProduceSync(ctx5(t), &kgo.Record{Topic: "compact-io", Key: []byte(key), Value: []byte(key + "=again")}).FirstErr())
	}
	fill(t, cl, "compact-io", 12)
	require.Eventually(t, func() bool {
		return strings.Contains(scrapeMetrics(t, b.HTTPAddr()), "\ntributary_log_cleaner_running_passes 1\n")
	}, 10*time.Second, 20*time.Millisecond, "no pass started")
	closeStart := time.Now()
	require.NoError(t, b.Broker.Close())
	closeTook := time.Since(closeStart)
	t.Logf("Close during a pass throttled to 100 B/s took %v", closeTook.Round(time.Millisecond))
	require.Less(t, closeTook, 3*time.Second, "Close waited for a throttled cleaning pass")
}

// cleanerBytes is what the cleaner read and wrote, from /metrics.
func cleanerBytes(t *testing.T, addr string) int64 {
	t.Helper()
	var total int64
	for _, line := range strings.Split(scrapeMetrics(t, addr), "\n") {
		for _, name := range []string{"tributary_log_cleaner_read_bytes_total ", "tributary_log_cleaner_written_bytes_total "} {
			if v, ok := strings.CutPrefix(line, name); ok {
				f, err := strconv.ParseFloat(v, 64)
				require.NoError(t, err)
				total += int64(f)
			}
		}
	}
	return total
}

// Several cleaner threads share the logs: each log is cleaned by one
// thread at a time, and all of them end up clean.
func TestCleanerThreadsShareLogs(t *testing.T) {
	b := startCleaning(t, func(c *broker.Config) {
		c.LogCleanerThreads = 3
		c.LogCleanerDedupeBufferSize = 3 << 20
	})
	const topics = 6
	cl := newClient(t, b.Addr(), kgo.ProducerLinger(0))
	adm := newAdmin(t, b.Addr())
	newest := make([]map[string]string, topics)
	for i := range topics {
		compactedTopic(t, b.Addr(), fmt.Sprintf("compact-t%d", i), nil)
		newest[i] = produceVersions(t, cl, fmt.Sprintf("compact-t%d", i), 10, 15)
	}
	for i := range topics {
		name := fmt.Sprintf("compact-t%d", i)
		hw := highWatermark(t, adm, name)
		require.Eventually(t, func() bool {
			return onlyNewest(readAllKgo(t, b.Addr(), name, hw), newest[i])
		}, 30*time.Second, 50*time.Millisecond, name)
	}
}

// A topic deleted while a pass runs on its log: the pass aborts (the log
// closes under it), and the cleaner goes on with the other logs.
func TestCleanerTopicDeletedMidPass(t *testing.T) {
	b := startCleaning(t)
	adm := newAdmin(t, b.Addr())
	cl := newClient(t, b.Addr(), kgo.ProducerLinger(0))
	setRate := func(v string) {
		t.Helper()
		rs, err := adm.AlterBrokerConfigs(ctx5(t), []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.cleaner.io.max.bytes.per.second", Value: kadm.StringPtr(v)}})
		require.NoError(t, err)
		for _, r := range rs {
			require.NoError(t, r.Err)
		}
	}
	setRate("2000") // a ~15 KB pass takes seconds
	compactedTopic(t, b.Addr(), "compact-gone", nil)
	produceVersions(t, cl, "compact-gone", 20, 20)
	running := func() bool {
		return strings.Contains(scrapeMetrics(t, b.HTTPAddr()), "\ntributary_log_cleaner_running_passes 1\n")
	}
	require.Eventually(t, running, 10*time.Second, 20*time.Millisecond, "no pass started")
	r, err := adm.DeleteTopic(ctx5(t), "compact-gone")
	require.NoError(t, err)
	require.NoError(t, r.Err)
	require.Eventually(t, func() bool { return !running() }, 10*time.Second, 20*time.Millisecond, "the pass outlived its log")

	setRate("1e300")
	compactedTopic(t, b.Addr(), "compact-next", nil)
	newest := produceVersions(t, cl, "compact-next", 10, 10)
	hw := highWatermark(t, adm, "compact-next")
	require.Eventually(t, func() bool {
		return onlyNewest(readAllKgo(t, b.Addr(), "compact-next", hw), newest)
	}, 20*time.Second, 50*time.Millisecond)
}
