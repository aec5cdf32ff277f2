package broker_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary/broker"
	"github.com/tributary/tributary/broker/brokertest"
)

// __consumer_offsets is compacted: after a million commits of the same
// few group/partition pairs its partition on disk is a small fraction of
// what it was, and a restarted broker reloads it and serves the right
// offsets within a second. The group coordinator's reload reads the
// cleaned log: batches with record gaps, empty batches spanning removed
// runs, and a deleted group's tombstones (the group stays deleted).
//
// The commits are written with the cleaner off, so "before" is the whole
// history; a restart turns it on.
func TestConsumerOffsetsCompactedAfterManyCommits(t *testing.T) {
	commits := 1_000_000
	if testing.Short() {
		commits = 100_000
	}
	const (
		groups     = 8
		partitions = 4 // of topic "ct", committed together by one request
	)
	cleaner := false
	b := brokertest.Start(t, func(c *broker.Config) {
		c.OffsetsTopicNumPartitions = 1
		c.OffsetsTopicSegmentBytes = 1 << 20
		c.GroupInitialRebalanceDelayMs = 0
		c.LogSegmentDeleteDelayMs = 0
		c.LogCleanerBackoffMs = 100
		c.LogCleanerEnable = cleaner
	})
	createTopic(t, b.Addr(), "ct", partitions, nil)
	cl := newClient(t, b.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	commit := func(cl *kgo.Client, group string, off int64) error {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group = group
		req.Generation = -1
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "ct"
		for p := int32(0); p < partitions; p++ {
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset = p, off+int64(p)
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		kr, err := cl.Request(ctx, req)
		if err != nil {
			return err
		}
		for _, p := range kr.(*kmsg.OffsetCommitResponse).Topics[0].Partitions {
			if p.ErrorCode != 0 {
				return fmt.Errorf("commit %s: error code %d", group, p.ErrorCode)
			}
		}
		return nil
	}
	// The first commit creates __consumer_offsets; wait for its load.
	require.Eventually(t, func() bool { return commit(cl, "g0", 0) == nil }, 20*time.Second, 20*time.Millisecond)

	// A group deleted later: its tombstones must keep it deleted across
	// cleaning and reload.
	require.NoError(t, commit(cl, "gone", 7))
	adm := kadm.NewClient(cl)
	dr, err := adm.DeleteGroups(ctx, "gone")
	require.NoError(t, err)
	require.NoError(t, dr["gone"].Err)

	// One goroutine per group, each group's commits in order, so the
	// newest offset of every pair is known.
	perGroup := commits / (groups * partitions)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, groups)
	for g := 0; g < groups; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Several connections: kgo sends one request at a time per
			// connection for these.
			gcl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
			if err != nil {
				errs <- err
				return
			}
			defer gcl.Close()
			for i := 1; i <= perGroup; i++ {
				if err := commit(gcl, fmt.Sprintf("g%d", g), int64(i*100)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	took := time.Since(start)
	done := groups * partitions * perGroup
	want := int64(perGroup * 100)

	offsetsDir := filepath.Join(b.Dir, "__consumer_offsets-0")
	beforeLog, beforeAll := dirBytes(t, offsetsDir)
	t.Logf("%d offset commits (%d requests, %d concurrent groups) in %v: %.0f commits/s; __consumer_offsets-0: %d bytes of .log files, %d bytes in all",
		done, done/partitions, groups, took.Round(time.Millisecond), float64(done)/took.Seconds(), beforeLog, beforeAll)

	// Restart with the cleaner on: the whole uncompacted log is
	// reloaded first (the figure to compare with), then cleaned.
	cleaner = true
	require.NoError(t, b.Broker.Close())
	t0 := time.Now()
	b.Restart(t)
	ready := time.Now()
	uncompacted := waitOffsets(t, b, groups, partitions, want, t0)
	t.Logf("restart on the uncompacted log: listening %v after the restart began, right offsets served %v after that",
		ready.Sub(t0).Round(time.Millisecond), (uncompacted - ready.Sub(t0)).Round(time.Millisecond))
	cl2 := newClient(t, b.Addr())

	var afterLog, afterAll int64
	// What stays is the active segment (up to 1 MiB, never cleaned)
	// and one small cleaned segment: a twentieth of a million commits'
	// ~60 MB, a quarter of the -short run's ~6 MB.
	shrink := int64(20)
	if testing.Short() {
		shrink = 4
	}
	defer func() {
		if t.Failed() {
			ents, _ := os.ReadDir(offsetsDir)
			for _, e := range ents {
				info, _ := e.Info()
				t.Logf("left: %s %d bytes", e.Name(), info.Size())
			}
			ot, _ := b.Observe().Topic("__consumer_offsets")
			t.Logf("partition: %+v", ot.Partitions)
		}
	}()
	// The replaced segments' files (.deleted) go once
	// file.delete.delay.ms (0 here) has passed, at the log's next append
	// or retention check: commits keep coming, as they do in a live
	// cluster.
	tick := int64(0)
	require.Eventually(t, func() bool {
		tick++
		require.NoError(t, commit(cl2, "tick", tick))
		afterLog, afterAll = dirBytes(t, offsetsDir)
		return afterAll*shrink < beforeAll
	}, 2*time.Minute, 100*time.Millisecond, "__consumer_offsets-0 stayed large")
	if t.Failed() {
		return
	}
	cleanedIn := time.Since(ready)
	t.Logf("after cleaning (%v after the broker listened: %.1f MB/s of log read): %d bytes of .log files (%.2f%% of before), %d bytes in all (%.2f%%)",
		cleanedIn.Round(time.Millisecond), float64(beforeLog)/cleanedIn.Seconds()/1e6,
		afterLog, 100*float64(afterLog)/float64(beforeLog), afterAll, 100*float64(afterAll)/float64(beforeAll))

	require.NoError(t, b.Broker.Close())
	t0 = time.Now()
	b.Restart(t)
	ready = time.Now()
	compacted := waitOffsets(t, b, groups, partitions, want, t0)
	served := compacted - ready.Sub(t0)
	t.Logf("restart on the compacted log: listening %v after the restart began, right offsets served %v after that",
		ready.Sub(t0).Round(time.Millisecond), served.Round(time.Millisecond))
	// The reload itself must be quick; the whole restart includes the
	// node's controller election and opening every log.
	require.Less(t, served, time.Second, "the compacted offsets took too long to reload")
	require.Less(t, compacted, 5*time.Second, "the restart took too long")

	// The deleted group stayed deleted.
	cl2 = newClient(t, b.Addr())
	lg, err := kadm.NewClient(cl2).ListGroups(ctx)
	require.NoError(t, err)
	require.NotContains(t, lg.Groups(), "gone")
	fo, err := kadm.NewClient(cl2).FetchOffsets(ctx, "gone")
	require.NoError(t, err)
	_, ok := fo.Lookup("ct", 0)
	require.False(t, ok, "a deleted group's offset came back")
}

// waitOffsets asks the restarted broker for every group's offsets, as
// fast as it answers, until they are right; it returns the time since t0.
func waitOffsets(t *testing.T, b *brokertest.Broker, groups, partitions int, want int64, t0 time.Time) time.Duration {
	t.Helper()
	cl := newClient(t, b.Addr())
	req := kmsg.NewPtrOffsetFetchRequest()
	for g := 0; g < groups; g++ {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = fmt.Sprintf("g%d", g)
		rt := kmsg.NewOffsetFetchRequestGroupTopic()
		rt.Topic = "ct"
		for p := 0; p < partitions; p++ {
			rt.Partitions = append(rt.Partitions, int32(p))
		}
		rg.Topics = append(rg.Topics, rt)
		req.Groups = append(req.Groups, rg)
	}
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		kr, err := cl.Broker(1).Request(ctx5(t), req)
		if err != nil {
			last = err.Error()
			time.Sleep(5 * time.Millisecond)
			continue
		}
		if last = offsetsWrong(kr.(*kmsg.OffsetFetchResponse), groups, partitions, want); last == "" {
			return time.Since(t0)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the restarted broker never served the committed offsets: %s", last)
	return 0
}

// offsetsWrong describes what is wrong in r, "" if every group has the
// expected offsets (want + partition).
func offsetsWrong(r *kmsg.OffsetFetchResponse, groups, partitions int, want int64) string {
	if len(r.Groups) != groups {
		return fmt.Sprintf("%d groups answered", len(r.Groups))
	}
	for _, g := range r.Groups {
		if g.ErrorCode != 0 {
			return fmt.Sprintf("group %s: error code %d", g.Group, g.ErrorCode)
		}
		if len(g.Topics) != 1 || len(g.Topics[0].Partitions) != partitions {
			return fmt.Sprintf("group %s: %d topics", g.Group, len(g.Topics))
		}
		for _, p := range g.Topics[0].Partitions {
			if p.ErrorCode != 0 || p.Offset != want+int64(p.Partition) {
				return fmt.Sprintf("group %s partition %d: offset %d, error %d; want %d", g.Group, p.Partition, p.Offset, p.ErrorCode, want+int64(p.Partition))
			}
		}
	}
	return ""
}

// dirBytes sums the sizes of dir's .log files and of all its files.
func dirBytes(t *testing.T, dir string) (logs, all int64) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil // a file deleted under the walk
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		all += info.Size()
		if strings.HasSuffix(path, ".log") {
			logs += info.Size()
		}
		return nil
	})
	require.NoError(t, err)
	return logs, all
}
