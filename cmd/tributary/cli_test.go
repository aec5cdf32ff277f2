package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/broker"
	"github.com/tributary/tributary/broker/brokertest"
)

// binary is the tributary binary built once by TestMain; the CLI tests run
// it as a user would, against a broker started in the test.
var binary string

// buildFlags are extra `go build` flags for the binary (-race under
// `go test -race`, see race_test.go).
var buildFlags []string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tributary-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "tributary")
	out, err := exec.Command("go", append(append([]string{"build"}, buildFlags...), "-o", binary, ".")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building tributary: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startBroker starts an in-process broker whose groups rebalance at once
// (no group.initial.rebalance.delay.ms), so group tests do not wait 3s.
func startBroker(t *testing.T) string {
	t.Helper()
	b := brokertest.Start(t, func(c *broker.Config) { c.GroupInitialRebalanceDelayMs = 0 })
	return b.Addr()
}

type result struct {
	stdout, stderr string
	code           int
}

// cli runs the binary with stdin and args against brokers (if not "").
func cli(t *testing.T, brokers, stdin string, args ...string) result {
	t.Helper()
	r := run(brokers, stdin, args...)
	require.GreaterOrEqual(t, r.code, 0, "tributary %q: %s", args, r.stderr)
	return r
}

// run is cli without a *testing.T, for goroutines: a failure to run the
// binary at all is code -1 with the reason in stderr.
func run(brokers, stdin string, args ...string) result {
	if brokers != "" {
		args = append(args, "-b", brokers)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), "TRIBUTARY_BROKERS=")
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		r.code, r.stderr = -1, fmt.Sprintf("did not finish in 60s; stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		r.code, r.stderr = -1, err.Error()
	}
	return r
}

// ok runs the binary and requires exit status 0.
func ok(t *testing.T, brokers, stdin string, args ...string) string {
	t.Helper()
	r := cli(t, brokers, stdin, args...)
	require.Equal(t, 0, r.code, "tributary %q failed; stderr: %s", args, r.stderr)
	return r.stdout
}

// okJSON runs the binary with --format json and decodes its output.
func okJSON(t *testing.T, brokers string, v any, args ...string) {
	t.Helper()
	out := ok(t, brokers, "", append(args, "--format", "json")...)
	require.NoError(t, json.Unmarshal([]byte(out), v), "output: %s", out)
}

// oneSentence asserts stderr is exactly one line.
func oneSentence(t *testing.T, stderr string) {
	t.Helper()
	assert.Equal(t, 1, strings.Count(stderr, "\n"), "stderr should be one line: %q", stderr)
}

func TestProduceConsumeRoundTrip(t *testing.T) {
	addr := startBroker(t)
	ok(t, addr, "", "topic", "create", "lines", "-p", "1")

	input := "first\nsecond line with  spaces\n\nünïcödé ✓\n\ttabbed\nlast"
	out := ok(t, addr, input, "produce", "lines")
	assert.Contains(t, out, "Produced 6 records")

	got := ok(t, addr, "", "consume", "lines", "-e")
	assert.Equal(t, input+"\n", got, "every line back, in order, byte for byte")

	got = ok(t, addr, "", "consume", "lines", "-n", "2")
	assert.Equal(t, "first\nsecond line with  spaces\n", got, "-n stops after COUNT records")

	got = ok(t, addr, "", "consume", "lines", "-o", "4", "-e", "-f", `%o:%v\n`)
	assert.Equal(t, "4:\ttabbed\n5:last\n", got, "-o OFFSET")

	got = ok(t, addr, "", "consume", "lines", "-o", "end", "-e")
	assert.Empty(t, got, "-o end -e prints nothing and exits")

	// -o @UNIX_MS starts at the first record at or after the time.
	time.Sleep(20 * time.Millisecond)
	mark := time.Now().UnixMilli()
	time.Sleep(20 * time.Millisecond)
	ok(t, addr, "later-1\nlater-2\n", "produce", "lines")
	got = ok(t, addr, "", "consume", "lines", "-o", fmt.Sprintf("@%d", mark), "-e")
	assert.Equal(t, "later-1\nlater-2\n", got)
	got = ok(t, addr, "", "consume", "lines", "-o", "@0", "-e", "-f", `%v|`)
	assert.Equal(t, strings.ReplaceAll(input, "\n", "|")+"|later-1|later-2|", got)
}

func TestProduceKeysHeadersPartitions(t *testing.T) {
	addr := startBroker(t)
	ok(t, addr, "", "topic", "create", "kv", "-p", "3")

	ok(t, addr, "k1:v1\nk2:v:2\nk3:\n", "produce", "kv", "-k", ":", "-H", "src=cli", "-H", "trace=a=b", "-p", "2")
	got := ok(t, addr, "", "consume", "kv", "-e", "-f", `%t %p %o key=%k value=%v headers=%h\n`)
	assert.Equal(t,
		"kv 2 0 key=k1 value=v1 headers=src=cli,trace=a=b\n"+
			"kv 2 1 key=k2 value=v:2 headers=src=cli,trace=a=b\n"+
			"kv 2 2 key=k3 value= headers=src=cli,trace=a=b\n", got)

	// JSON: one object per record per line, with the timestamp.
	before := time.Now().Add(-time.Minute).UnixMilli()
	lines := strings.Split(strings.TrimSpace(ok(t, addr, "", "consume", "kv", "-e", "--format", "json")), "\n")
	require.Len(t, lines, 3)
	var rec recordJSON
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &rec))
	require.NotNil(t, rec.Key)
	assert.Equal(t, "k2", *rec.Key)
	assert.Equal(t, "v:2", *rec.Value)
	assert.EqualValues(t, 2, rec.Partition)
	assert.EqualValues(t, 1, rec.Offset)
	assert.Equal(t, []headerJSON{{"src", "cli"}, {"trace", "a=b"}}, rec.Headers)
	assert.Greater(t, rec.Timestamp, before)
	got = ok(t, addr, "", "consume", "kv", "-e", "-f", `%T\n`)
	assert.Equal(t, fmt.Sprint(rec.Timestamp), strings.Fields(got)[1], "%%T is the timestamp in Unix ms")

	// Keys go where Java would put them: the same key, the same partition.
	ok(t, addr, "same:1\nsame:2\nsame:3\nother:4\n", "produce", "kv", "-k", ":")
	got = ok(t, addr, "", "consume", "kv", "-e", "-f", `%k %p\n`)
	parts := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(got), "\n") {
		k, p, _ := strings.Cut(l, " ")
		if k == "same" && parts[k] != "" {
			assert.Equal(t, parts[k], p, "one key, one partition")
		}
		parts[k] = p
	}

	var sum produceSummaryJSON
	require.NoError(t, json.Unmarshal([]byte(ok(t, addr, "a\nb\n", "produce", "kv", "-p", "0", "--format", "json")), &sum))
	assert.Equal(t, produceSummaryJSON{Topic: "kv", Records: 2, Partitions: []producedPartitionJSON{{Partition: 0, Records: 2, FirstOffset: sum.Partitions[0].FirstOffset, LastOffset: sum.Partitions[0].FirstOffset + 1}}}, sum)

	r := cli(t, addr, "no separator here\n", "produce", "kv", "-k", ":")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, `line 1 has no key separator ":"`)
	oneSentence(t, r.stderr)

	r = cli(t, addr, "x\n", "produce", "kv", "-p", "7")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "no partition 7")
}

func TestTopicCommands(t *testing.T) {
	addr := startBroker(t)
	out := ok(t, addr, "", "topic", "create", "orders", "payments", "-p", "2", "-r", "1", "-c", "cleanup.policy=compact", "-c", "retention.ms=3600000")
	assert.Regexp(t, `(?m)^orders\s+OK$`, out)
	assert.Regexp(t, `(?m)^payments\s+OK$`, out)

	r := cli(t, addr, "", "topic", "create", "orders")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, `topic "orders" already exists`)
	oneSentence(t, r.stderr)

	out = ok(t, addr, "", "topic", "list")
	assert.Regexp(t, `(?m)^NAME\s+PARTITIONS\s+REPLICAS$`, out)
	assert.Regexp(t, `(?m)^orders\s+2\s+1$`, out)
	var listed []topicListJSON
	okJSON(t, addr, &listed, "topic", "list")
	names := []string{}
	for _, l := range listed {
		names = append(names, l.Name)
	}
	assert.Equal(t, []string{"orders", "payments"}, names)

	out = ok(t, addr, "", "topic", "describe", "orders")
	assert.Regexp(t, `(?m)^cleanup\.policy\s+compact\s+topic$`, out)
	// A compacted topic shows each partition's dirty ratio, read from
	// the leader's console.
	assert.Regexp(t, `(?m)^PARTITION\s+LEADER\s+EPOCH\s+REPLICAS\s+ISR\s+LOG-START-OFFSET\s+HIGH-WATERMARK\s+DIRTY-RATIO$`, out)
	assert.Regexp(t, `(?m)^1\s+1\s+0\s+1\s+1\s+0\s+0\s+0\.000$`, out, "partition 1: leader, epoch, replicas, ISR, offsets, dirty ratio")

	ok(t, addr, "", "topic", "alter-config", "orders", "--set", "retention.ms=60000", "--set", "segment.ms=120000", "--delete", "cleanup.policy")
	var described []topicDescribeJSON
	okJSON(t, addr, &described, "topic", "describe", "orders")
	require.Len(t, described, 1)
	cfg := map[string]configJSON{}
	for _, c := range described[0].Configs {
		cfg[c.Name] = c
	}
	assert.Equal(t, "60000", *cfg["retention.ms"].Value)
	assert.Equal(t, "topic", cfg["retention.ms"].Source)
	assert.Equal(t, "120000", *cfg["segment.ms"].Value)
	assert.Equal(t, "delete", *cfg["cleanup.policy"].Value, "deleted override falls back to the default")
	assert.Equal(t, "default", cfg["cleanup.policy"].Source)

	ok(t, addr, "", "topic", "add-partitions", "orders", "-n", "5")
	okJSON(t, addr, &described, "topic", "describe", "orders")
	require.Len(t, described[0].Partitions, 5)
	for i, p := range described[0].Partitions {
		assert.EqualValues(t, i, p.Partition)
		assert.EqualValues(t, 1, p.Leader)
		assert.Equal(t, []int32{1}, p.ISR)
	}
	r = cli(t, addr, "", "topic", "add-partitions", "orders", "-n", "3")
	assert.Equal(t, 1, r.code, "partitions only grow")
	assert.Contains(t, r.stderr, "can only grow")

	out = ok(t, addr, "", "topic", "delete", "payments")
	assert.Regexp(t, `(?m)^payments\s+OK$`, out)
	okJSON(t, addr, &listed, "topic", "list")
	require.Len(t, listed, 1)
	assert.Equal(t, "orders", listed[0].Name)

	r = cli(t, addr, "", "topic", "describe", "payments")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "tributary topic describe: topic \"payments\" does not exist.\n", r.stderr)
	r = cli(t, addr, "", "topic", "delete", "payments")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, `topic "payments" does not exist`)
}

func TestGroupSeekAndResume(t *testing.T) {
	addr := startBroker(t)
	ok(t, addr, "", "topic", "create", "events", "-p", "2")
	ok(t, addr, "a:1\nb:2\nc:3\nd:4\ne:5\nf:6\n", "produce", "events", "-k", ":")
	all := []string{"1", "2", "3", "4", "5", "6"}
	sortedLines := func(s string) []string {
		ls := strings.Fields(s)
		slices.Sort(ls)
		return ls
	}

	// A group reads everything once, committing as it prints.
	assert.Equal(t, all, sortedLines(ok(t, addr, "", "consume", "events", "-g", "billing", "-e")))
	assert.Empty(t, ok(t, addr, "", "consume", "events", "-g", "billing", "-e"), "the group resumes at its committed offsets")

	out := ok(t, addr, "", "group", "list")
	assert.Regexp(t, `(?m)^billing\s+Empty\s+consumer\s+1$`, out)
	out = ok(t, addr, "", "group", "describe", "billing")
	assert.Regexp(t, `(?m)^TOTAL-LAG\s+0$`, out)
	var groups []groupDescribeJSON
	okJSON(t, addr, &groups, "group", "describe", "billing")
	require.Len(t, groups, 1)
	g := groups[0]
	assert.Equal(t, "Empty", g.State)
	var committed int64
	for _, p := range g.Partitions {
		assert.Equal(t, p.LogEnd, p.Committed, "partition %d", p.Partition)
		assert.EqualValues(t, 0, p.Lag)
		committed += p.Committed
	}
	assert.EqualValues(t, 6, committed, "committed offsets cover the six records")

	// Back to the start: the group sees everything again.
	out = ok(t, addr, "", "group", "seek", "billing", "--to", "start")
	assert.Regexp(t, `(?m)^events\s+\d\s+0\s+OK$`, out)
	okJSON(t, addr, &groups, "group", "describe", "billing")
	assert.EqualValues(t, 6, groups[0].TotalLag, "after seeking to start the lag is everything")
	assert.Equal(t, all, sortedLines(ok(t, addr, "", "consume", "events", "-g", "billing", "-e")))

	// An absolute offset, clamped to each partition's end; then a shift.
	var seek []seekJSON
	okJSON(t, addr, &seek, "group", "seek", "billing", "--to", "1", "--topics", "events")
	require.Len(t, seek, 2)
	for _, s := range seek {
		assert.EqualValues(t, 1, s.Offset)
	}
	assert.Len(t, strings.Fields(ok(t, addr, "", "consume", "events", "-g", "billing", "-e")), 4, "two partitions, one record skipped in each")
	okJSON(t, addr, &seek, "group", "seek", "billing", "--to", "-1")
	assert.Len(t, strings.Fields(ok(t, addr, "", "consume", "events", "-g", "billing", "-e")), 2, "shifted back one in each partition")

	// A timestamp in the future moves to the end.
	ok(t, addr, "", "group", "seek", "billing", "--to", fmt.Sprintf("@%d", time.Now().Add(time.Hour).UnixMilli()))
	assert.Empty(t, ok(t, addr, "", "consume", "events", "-g", "billing", "-e"))

	out = ok(t, addr, "", "group", "delete", "billing")
	assert.Regexp(t, `(?m)^billing\s+OK$`, out)
	var listed []groupListJSON
	okJSON(t, addr, &listed, "group", "list")
	assert.Empty(t, listed)

	r := cli(t, addr, "", "group", "describe", "billing")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "tributary group describe: group \"billing\" does not exist.\n", r.stderr)
	r = cli(t, addr, "", "group", "seek", "billing", "--to", "sideways")
	assert.Equal(t, 2, r.code)
}

func TestClusterInfo(t *testing.T) {
	addr := startBroker(t)
	ok(t, addr, "", "topic", "create", "t1")
	_, port, _ := net.SplitHostPort(addr)
	out := ok(t, addr, "", "cluster", "info")
	assert.Regexp(t, `(?m)^1\*\s+127\.0\.0\.1\s+`+port+`\s+-$`, out, "the controller is marked")
	var c clusterJSON
	okJSON(t, addr, &c, "cluster", "info")
	assert.NotEmpty(t, c.ClusterID)
	assert.EqualValues(t, 1, c.Controller)
	assert.Equal(t, 1, c.Topics)
	require.Len(t, c.Brokers, 1)
	assert.Equal(t, "127.0.0.1", c.Brokers[0].Host)
	assert.Equal(t, port, fmt.Sprint(c.Brokers[0].Port))
}

func TestPerf(t *testing.T) {
	addr := startBroker(t)
	ok(t, addr, "", "topic", "create", "load", "-p", "2")

	out := ok(t, addr, "", "perf", "produce", "load", "-n", "2000", "-s", "64")
	assert.Regexp(t, `(?m)^RECORDS\s+RECORDS/S\s+MB/S\s+AVG-LATENCY\s+P50\s+P95\s+P99\s+MAX$`, out)
	assert.Regexp(t, `(?m)^2000\s+\d+\.\d\s+`, out)

	var p perfProduceJSON
	okJSON(t, addr, &p, "perf", "produce", "load", "-n", "1000", "-s", "10", "--acks", "1")
	assert.EqualValues(t, 1000, p.Records)
	assert.EqualValues(t, 10000, p.Bytes)
	assert.Positive(t, p.RecordsPerSec)
	assert.LessOrEqual(t, p.P50LatencyMs, p.P95LatencyMs)
	assert.LessOrEqual(t, p.P95LatencyMs, p.P99LatencyMs)
	assert.LessOrEqual(t, p.P99LatencyMs, p.MaxLatencyMs)

	// --throughput paces the records: 200 at 1000/s take about 0.2s.
	okJSON(t, addr, &p, "perf", "produce", "load", "-n", "200", "-s", "0", "--throughput", "1000", "--acks", "0")
	assert.EqualValues(t, 200, p.Records)
	assert.GreaterOrEqual(t, p.Seconds, 0.19)
	assert.LessOrEqual(t, p.RecordsPerSec, 1100.0)

	out = ok(t, addr, "", "perf", "consume", "load", "-n", "2500")
	assert.Regexp(t, `(?m)^RECORDS\s+MB\s+SECONDS\s+RECORDS/S\s+MB/S$`, out)
	assert.Regexp(t, `(?m)^2500\s+`, out)
	var c perfConsumeJSON
	okJSON(t, addr, &c, "perf", "consume", "load") // everything present
	assert.EqualValues(t, 3200, c.Records)
	assert.EqualValues(t, 2000*64+1000*10, c.Bytes)

	r := cli(t, addr, "", "perf", "consume", "load", "-n", "3201", "--timeout", "500ms")
	assert.Equal(t, 1, r.code, "fewer records than asked for is a failure")
	assert.Contains(t, r.stderr, "only 3200 of 3201 records arrived")

	r = cli(t, addr, "", "perf", "produce", "load", "--acks", "2")
	assert.Equal(t, 2, r.code)
}

func TestErrors(t *testing.T) {
	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := ln.Addr().String()
	ln.Close()

	// All at once: each takes about 3s of retries, and t.Parallel would
	// run only GOMAXPROCS of them at a time.
	cmds := [][]string{
		{"topic", "list"},
		{"topic", "describe", "x"},
		{"group", "describe", "g"},
		{"cluster", "info"},
		{"consume", "x"},
		{"produce", "x"},
		{"perf", "produce", "x", "-n", "1"},
	}
	results := make([]result, len(cmds))
	took := make([]time.Duration, len(cmds))
	var wg sync.WaitGroup
	for i, args := range cmds {
		wg.Go(func() {
			start := time.Now()
			results[i] = run(dead, "line\n", args...)
			took[i] = time.Since(start)
		})
	}
	wg.Wait()
	for i, r := range results {
		assert.Equal(t, 1, r.code, "%q: %s", cmds[i], r.stderr)
		assert.Contains(t, r.stderr, "cannot reach broker at "+dead+": ", "%q", cmds[i])
		oneSentence(t, r.stderr)
		assert.Less(t, took[i], 10*time.Second, "%q should give up within seconds", cmds[i])
	}

	addr := startBroker(t)
	r := cli(t, addr, "", "consume", "missing", "-e")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "tributary consume: topic \"missing\" does not exist.\n", r.stderr)

	for _, args := range [][]string{
		{"topic", "list", "--bogus"},
		{"topic", "create", "x", "-p", "many"},
		{"topic", "create"},
		{"consume", "x", "-f", "%q"},
		{"consume", "x", "-o", "middle"},
		{"consume", "x", "-g", "g", "-o", "5"},
		{"topic", "list", "--format", "yaml"},
		{"topic", "frobnicate"},
		{"frobnicate"},
		{"group", "seek", "g"},
		{"produce"},
		{"produce", "a", "b"},
	} {
		r := cli(t, addr, "", args...)
		assert.Equal(t, 2, r.code, "%q: %s", args, r.stderr)
		assert.NotEmpty(t, r.stderr)
	}

	r = cli(t, "", "", "topic")
	assert.Equal(t, 2, r.code, "a command group without a command")
	assert.Contains(t, r.stderr, "add-partitions")

	r = cli(t, "", "", "help")
	assert.Equal(t, 0, r.code)
	for _, c := range []string{"broker", "topic", "group", "produce", "consume", "cluster", "perf", "version", "completion"} {
		assert.Regexp(t, `(?m)^  `+c+`\s`, r.stdout)
	}
	r = cli(t, "", "", "topic", "create", "-h")
	assert.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "-p, --partitions N")
	assert.Contains(t, r.stdout, "-b, --brokers HOSTS")

	// TRIBUTARY_BROKERS is the default for -b.
	cmd := exec.Command(binary, "topic", "list", "--format", "json")
	cmd.Env = append(os.Environ(), "TRIBUTARY_BROKERS="+addr)
	out, err := cmd.Output()
	require.NoError(t, err)
	assert.Equal(t, "[]\n", string(out))
}

func TestGroupWithActiveMember(t *testing.T) {
	addr := startBroker(t)
	ok(t, addr, "", "topic", "create", "live", "-p", "3")
	ok(t, addr, "", "topic", "create", "other", "-p", "1")
	ok(t, addr, "x:1\ny:2\nz:3\n", "produce", "live", "-k", ":")
	ok(t, addr, "o:4\n", "produce", "other", "-k", ":")

	// A member that keeps consuming until interrupted, from two topics.
	cmd := exec.Command(binary, "consume", "live", "other", "-g", "watchers", "-f", `%t %v\n`, "-b", addr)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(t, cmd.Start())
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})

	var g []groupDescribeJSON
	require.Eventually(t, func() bool {
		r := cli(t, addr, "", "group", "describe", "watchers", "--format", "json")
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &g) != nil || len(g) != 1 {
			return false
		}
		return g[0].State == "Stable" && g[0].TotalLag == 0 && len(g[0].Partitions) == 4
	}, 20*time.Second, 100*time.Millisecond, "the member joins, consumes everything and commits")
	require.Len(t, g[0].Members, 1)
	m := g[0].Members[0]
	assert.Equal(t, "tributary-cli", m.ClientID)
	assert.Equal(t, map[string][]int32{"live": {0, 1, 2}, "other": {0}}, m.Assignment)
	for _, p := range g[0].Partitions {
		assert.Equal(t, m.MemberID, p.MemberID, "%s[%d] is assigned to the member", p.Topic, p.Partition)
	}
	text := ok(t, addr, "", "group", "describe", "watchers")
	assert.Regexp(t, `(?m)^MEMBERS\s+1$`, text)
	assert.Regexp(t, `(?m)^`+regexp.QuoteMeta(m.MemberID)+`\s+-\s+tributary-cli\s+\S+\s+live\[0,1,2\] other\[0\]$`, text)

	// Offsets of a group with members cannot be moved.
	r := cli(t, addr, "", "group", "seek", "watchers", "--to", "start")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, `group "watchers" has 1 active members; stop its consumers before seeking`)

	// Ctrl-C: the member leaves the group and exits cleanly.
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	select {
	case <-exited:
		require.NoError(t, waitErr, "stderr: %s", errb.String())
	case <-time.After(15 * time.Second):
		t.Fatal("consume did not exit after SIGINT")
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	slices.Sort(lines)
	assert.Equal(t, []string{"live 1", "live 2", "live 3", "other 4"}, lines)
	okJSON(t, addr, &g, "group", "describe", "watchers")
	assert.Equal(t, "Empty", g[0].State, "the member left")
	assert.EqualValues(t, 0, g[0].TotalLag)
}
