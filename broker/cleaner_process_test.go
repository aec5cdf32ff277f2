package broker_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/broker/brokertest"
)

// SIGKILL inside a cleaning pass, at every point storage names (new
// files written, swap marker published, old segments renamed, cleaned
// files renamed, swap finished, checkpoint written): the `tributary
// broker` process kills itself there (TRIBUTARY_TEST_CLEANER_KILL_AT, a
// test hook of cmd/tributary). After a restart the log must read back
// correctly — every key's newest value exactly once, older versions at
// most once each and in order — and a later pass must clean it fully.
func TestCleanerCrashAtEveryPointRecovers(t *testing.T) {
	for _, point := range []string{"cleaned-written", "swap-marked", "old-renamed", "log-renamed", "swapped", "checkpointed"} {
		t.Run(point, func(t *testing.T) {
			dir := t.TempDir()
			p := brokertest.StartProcess(t, dir, "env:TRIBUTARY_TEST_CLEANER_KILL_AT="+point, "log.cleaner.backoff.ms=50")
			// Nothing is cleanable while min.compaction.lag.ms is an
			// hour: the whole history is written first.
			compactedTopic(t, p.Addr(), "crash", map[string]string{"min.compaction.lag.ms": "3600000"})
			cl := newClient(t, p.Addr(), kgo.ProducerLinger(0))
			newest := produceVersions(t, cl, "crash", 20, 20)
			hw := highWatermark(t, newAdmin(t, p.Addr()), "crash")
			cl.Close()
			// Let the cleaner in; the process dies inside the pass.
			adm := newAdmin(t, p.Addr())
			_, _ = adm.AlterTopicConfigs(ctx5(t), []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "min.compaction.lag.ms", Value: kadm.StringPtr("0")}}, "crash")
			select {
			case <-p.Exited():
			case <-time.After(30 * time.Second):
				t.Fatalf("the broker never reached cleaner point %s", point)
			}

			p2 := brokertest.StartProcess(t, dir, "log.cleaner.backoff.ms=50")
			require.Equal(t, hw, highWatermark(t, newAdmin(t, p2.Addr()), "crash"), "records lost")
			checkReadsBack(t, readAllKgo(t, p2.Addr(), "crash", hw), newest)
			require.Eventually(t, func() bool {
				return onlyNewest(readAllKgo(t, p2.Addr(), "crash", hw), newest)
			}, 20*time.Second, 50*time.Millisecond, "a later pass did not clean the log")
			checkCompacted(t, readAllSDK(t, p2.Addr(), "crash", hw), newest)
		})
	}
}

// checkReadsBack checks a log that may be partly cleaned: offsets
// increase, every value belongs to its key, each key's versions come in
// order and at most once, and every key's newest value is there exactly
// once.
func checkReadsBack(t *testing.T, recs []readRec, newest map[string]string) {
	t.Helper()
	last := map[string]int{}
	newestSeen := map[string]int{}
	for i, r := range recs {
		if i > 0 {
			require.Greater(t, r.off, recs[i-1].off, "offsets must increase")
		}
		if r.key == fillerKey {
			continue
		}
		k, v, ok := strings.Cut(r.value, "=v")
		require.True(t, ok && k == r.key, "record %d: value %q does not belong to key %q", r.off, r.value, r.key)
		n, err := strconv.Atoi(v)
		require.NoError(t, err)
		if prev, seen := last[k]; seen {
			require.Greater(t, n, prev, "key %q: version %d after %d", k, n, prev)
		}
		last[k] = n
		if newest[k] == r.value {
			newestSeen[k]++
		}
	}
	for k, v := range newest {
		require.Equal(t, 1, newestSeen[k], "newest value %q of %q read %d times", v, k, newestSeen[k])
	}
	require.Len(t, newestSeen, len(newest), fmt.Sprintf("keys read: %v", newestSeen))
}
