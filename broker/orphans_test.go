package broker_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/broker"
	"github.com/tributary/tributary/broker/brokertest"
)

var partitionShaped = regexp.MustCompile(`^(.+)-([0-9]+)(\.[0-9a-f]{32}-delete)?$`)

// partitionDirs lists the partition-shaped directories of dir, sorted.
func partitionDirs(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		if e.IsDir() && partitionShaped.MatchString(e.Name()) && !strings.HasPrefix(e.Name(), "__cluster_metadata") {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// expectedDirs is the partition directories the broker's metadata names.
func expectedDirs(t *testing.T, adm *kadm.Client) []string {
	t.Helper()
	md, err := adm.Metadata(ctx5(t))
	require.NoError(t, err)
	var out []string
	for name, td := range md.Topics {
		require.NoError(t, td.Err)
		for p := range td.Partitions {
			out = append(out, fmt.Sprintf("%s-%d", name, p))
		}
	}
	sort.Strings(out)
	return out
}

// Issue 12: every start logged a line per directory left by interrupted
// creates and deletes, and kept them. Startup removes partition-shaped
// directories the metadata does not name, with one summary line, and
// leaves everything else alone.
func TestStartupRemovesOrphanPartitionDirs(t *testing.T) {
	var summary atomic.Int64
	b := brokertest.Start(t, func(c *broker.Config) {
		c.Logger = slog.New(lineCounter{c.Logger.Handler(), "removed partition directories", &summary})
	})
	createTopic(t, b.Addr(), "keep", 1, nil)
	orphans := []string{"ghost-0", "ghost-12", "keep-7", "keep-0.0123456789abcdef0123456789abcdef-delete", "a.b_c-3"}
	others := []string{"notapartition", "lost+found", "__cluster_metadata-0", "bad name-1", "keep-x"}
	for _, d := range append(append([]string(nil), orphans...), others...) {
		require.NoError(t, os.MkdirAll(filepath.Join(b.Dir, d, "sub"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(b.Dir, d, "00000000000000000000.log"), []byte("x"), 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(b.Dir, "file-1"), nil, 0o644))
	b.Restart(t)
	for _, d := range orphans {
		assert.NoDirExists(t, filepath.Join(b.Dir, d))
	}
	for _, d := range others {
		assert.DirExists(t, filepath.Join(b.Dir, d))
	}
	assert.FileExists(t, filepath.Join(b.Dir, "file-1"))
	assert.DirExists(t, filepath.Join(b.Dir, "keep-0"))
	assert.EqualValues(t, 1, summary.Load(), "one summary line, not one per orphan")
	servedOnce(t, b.Addr(), "after-orphans", 5)
}

// Deleting a topic renames its partition directories to Kafka's
// <topic>-<n>.<id>-delete and removes them file.delete.delay.ms later; a
// topic created again under the name starts empty.
func TestDeleteTopicRenamesThenRemovesInBackground(t *testing.T) {
	b := brokertest.Start(t, func(c *broker.Config) { c.LogSegmentDeleteDelayMs = 300 })
	adm := newAdmin(t, b.Addr())
	createTopic(t, b.Addr(), "gone", 3, map[string]string{"file.delete.delay.ms": "600000"})
	createTopic(t, b.Addr(), "soon", 2, nil)
	cl := newClient(t, b.Addr())
	require.NoError(t, cl.ProduceSync(testCtx(t), &kgo.Record{Topic: "gone", Value: []byte("old")}).FirstErr())
	_, err := adm.DeleteTopics(ctx5(t), "gone", "soon")
	require.NoError(t, err)

	dirs := partitionDirs(t, b.Dir)
	var deleting int
	for _, d := range dirs {
		require.NotRegexp(t, `^gone-[0-9]+$`, d)
		if strings.HasPrefix(d, "gone-") && strings.HasSuffix(d, "-delete") {
			deleting++
		}
	}
	assert.Equal(t, 3, deleting, "renamed and kept for file.delete.delay.ms: %v", dirs)
	// soon uses the broker default (300 ms): removed in the background.
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := 0
		for _, d := range partitionDirs(t, b.Dir) {
			if strings.HasPrefix(d, "soon-") {
				left++
			}
		}
		if left == 0 {
			break
		}
		require.False(t, time.Now().After(deadline), "soon's directories still there 10s after delete")
		time.Sleep(20 * time.Millisecond)
	}

	createTopic(t, b.Addr(), "gone", 1, nil)
	offs, err := adm.ListEndOffsets(ctx5(t), "gone")
	require.NoError(t, err)
	o, _ := offs.Lookup("gone", 0)
	assert.EqualValues(t, 0, o.Offset, "a re-created topic must not see the old records")

	b.Restart(t)
	assert.Equal(t, []string{"gone-0"}, partitionDirs(t, b.Dir), "the next start removes what was still waiting")
}

// Issue 12: deleting a topic on a full disk failed because writing the
// new metadata needs room. On a real full filesystem (a 4 MiB tmpfs filled
// to the last byte; mounting needs root, which CI has) the metadata
// reserve is given up for it.
func TestDeleteTopicOnFullTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root (CI runs as root)")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	dir := filepath.Join(mnt, "data")
	b := brokertest.Start(t, func(c *broker.Config) { c.LogDirs = []string{dir} })
	adm := newAdmin(t, b.Addr())
	createTopic(t, b.Addr(), "full", 1, nil)

	// Fill the filesystem.
	f, err := os.Create(filepath.Join(mnt, "filler"))
	require.NoError(t, err)
	chunk := make([]byte, 4096)
	for i := range chunk {
		chunk[i] = 1
	}
	for {
		if _, err := f.Write(chunk); err != nil {
			require.ErrorIs(t, err, syscall.ENOSPC)
			break
		}
	}
	for { // the last partial block
		if _, err := f.Write(chunk[:1]); err != nil {
			break
		}
	}
	f.Close()
	// Nothing else fits now, not even a byte.
	require.Error(t, os.WriteFile(filepath.Join(mnt, "probe"), []byte("x"), 0o644))

	resp, err := adm.DeleteTopics(ctx5(t), "full")
	require.NoError(t, err)
	require.NoError(t, resp["full"].Err, "delete on a full disk")

	require.NoError(t, os.Remove(filepath.Join(mnt, "filler")))
	b.Restart(t)
	md, err := newAdmin(t, b.Addr()).Metadata(ctx5(t))
	require.NoError(t, err)
	assert.NotContains(t, md.Topics.Names(), "full")
	assert.Empty(t, partitionDirs(t, dir))
}

// Issue 12: 20 interrupted creates left 11,936 orphan directories. Kill
// the broker process at random moments while it creates and deletes
// topics; after every restart the partition directories are exactly
// those the metadata names.
func TestKilledCreateDeleteLeavesNoOrphans(t *testing.T) {
	rounds := 50
	if testing.Short() {
		rounds = 5
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 12))
	killedIn := map[string]int{}
	for round := range rounds {
		p := brokertest.StartProcess(t, dir)
		adm := newAdmin(t, p.Addr(), kgo.RetryTimeout(time.Second))
		require.Equal(t, expectedDirs(t, adm), partitionDirs(t, dir), "round %d: directories after restart", round)

		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var phase atomic.Value
		phase.Store("start")
		grng := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64())) // the goroutine's own
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				name := fmt.Sprintf("r%d-t%d", round, i)
				phase.Store("create")
				if _, err := adm.CreateTopic(ctx, int32(1+grng.IntN(16)), 1, nil, name); err != nil {
					return
				}
				phase.Store("delete")
				if _, err := adm.DeleteTopics(ctx, name); err != nil {
					return
				}
			}
		}()
		time.Sleep(time.Duration(10+rng.IntN(200)) * time.Millisecond)
		killedIn[phase.Load().(string)]++
		require.NoError(t, p.Kill())
		cancel()
		wg.Wait()
		adm.Close()
	}
	p := brokertest.StartProcess(t, dir)
	adm := newAdmin(t, p.Addr())
	assert.Equal(t, expectedDirs(t, adm), partitionDirs(t, dir), "directories the metadata does not name after %d killed rounds", rounds)
	t.Logf("%d rounds, killed during: %v", rounds, killedIn)
	// Deleted topics are gone for good.
	md, err := adm.Metadata(ctx5(t))
	require.NoError(t, err)
	for _, name := range md.Topics.Names() {
		resp, err := adm.DeleteTopics(ctx5(t), name)
		require.NoError(t, err)
		require.NoError(t, resp[name].Err)
	}
	require.NoError(t, p.Stop())
	p = brokertest.StartProcess(t, dir)
	assert.Empty(t, partitionDirs(t, dir))
}
