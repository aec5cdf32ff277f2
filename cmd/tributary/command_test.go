package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/client"
	"github.com/tributary/tributary/consumer"
)

func TestFlagsMixWithArguments(t *testing.T) {
	var p int
	var cs []string
	var e bool
	l := &leaf{name: "x"}
	tl := &tool{}
	f := newFlagSet(l, tl)
	f.Int(&p, "p", "partitions", "N", -1, "")
	f.List(&cs, "c", "config", "k=v", false, "")
	f.Bool(&e, "e", "exit", "")

	pos, err := f.parse([]string{"one", "-p", "3", "two", "--config", "a=1", "-e", "-c", "b=2", "--", "-three", "--four"})
	require.NoError(t, err)
	assert.Equal(t, []string{"one", "two", "-three", "--four"}, pos)
	assert.Equal(t, 3, p)
	assert.Equal(t, []string{"a=1", "b=2"}, cs)
	assert.True(t, e)
	assert.Equal(t, "text", tl.format)

	// An optional-value flag: bare, it means its implied value.
	var end string
	f = newFlagSet(l, tl)
	f.Optional(&end, "e", "end", "END", "end", isEndValue, "", "exit-at-end")
	for _, c := range []struct {
		args []string
		end  string
		pos  []string
	}{
		{[]string{"t", "-e"}, "end", []string{"t"}},
		{[]string{"-e", "t"}, "end", []string{"t"}},
		{[]string{"-e", "7", "t"}, "7", []string{"t"}},
		{[]string{"t", "--end", "@5"}, "@5", []string{"t"}},
		{[]string{"t", "-e=9"}, "9", []string{"t"}},
		{[]string{"t", "--exit-at-end"}, "end", []string{"t"}},
		{[]string{"t", "--", "-e"}, "", []string{"t", "-e"}},
	} {
		end = ""
		pos, err := f.parse(c.args)
		require.NoError(t, err, "%q", c.args)
		assert.Equal(t, c.end, end, "%q", c.args)
		assert.Equal(t, c.pos, pos, "%q", c.args)
	}

	_, err = f.parse([]string{"--nope"})
	var ue usageError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, "unknown flag -nope", ue.msg)
	_, err = f.parse([]string{"-p", "1.5"})
	require.ErrorAs(t, err, &ue)
	_, err = f.parse([]string{"-h"})
	assert.ErrorIs(t, err, flag.ErrHelp)
}

func TestParseFormat(t *testing.T) {
	r := &tributary.Record{
		Topic: "orders", Partition: 2, Offset: 41,
		Key: []byte("k"), Value: []byte("v 1"),
		Headers:   []tributary.Header{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("x=y")}},
		Timestamp: time.UnixMilli(1700000000123),
	}
	for _, c := range []struct{ format, want string }{
		{`%v\n`, "v 1\n"},
		{`%t/%p@%o %k=%v %h %T`, "orders/2@41 k=v 1 a=1,b=x=y 1700000000123"},
		{`100%% %v\t|\\|\r`, "100% v 1\t|\\|\r"},
		{`plain`, "plain"},
		{``, ""},
	} {
		f, err := parseFormat(c.format)
		require.NoError(t, err, c.format)
		assert.Equal(t, c.want, string(f.append(nil, r)), c.format)
	}
	for _, bad := range []string{`%x`, `%`, `\q`, `ends with \`} {
		_, err := parseFormat(bad)
		var ue usageError
		assert.ErrorAs(t, err, &ue, bad)
	}
	// Null key and value print as nothing.
	f, _ := parseFormat(`[%k][%v][%h]`)
	assert.Equal(t, "[][][]", string(f.append(nil, &tributary.Record{})))
}

func TestParseStartAndSeekTo(t *testing.T) {
	for in, want := range map[string]startOffset{
		"start": {at: consumer.Earliest, millis: -1},
		"end":   {at: consumer.Latest, millis: -1},
		"0":     {at: 0, millis: -1},
		"42":    {at: 42, millis: -1},
		"@1700": {millis: 1700},
		"-3":    {at: consumer.Latest, millis: -1, last: 3},
	} {
		got, err := parseStart(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "-0", "-x", "@", "@x", "soon", "1.5"} {
		_, err := parseStart(bad)
		assert.Error(t, err, bad)
	}

	for _, in := range []string{"start", "end", "@5", "+3", "-3"} {
		got, err := parseSeekTo(in)
		require.NoError(t, err, in)
		assert.False(t, got.absolute, in)
	}
	got, err := parseSeekTo("17")
	require.NoError(t, err)
	assert.Equal(t, seekTarget{absolute: true, offset: 17}, got)
	for _, bad := range []string{"", "@-1", "+x", "sideways"} {
		_, err := parseSeekTo(bad)
		var ue usageError
		assert.ErrorAs(t, err, &ue, bad)
	}
}

func TestReadLine(t *testing.T) {
	br := bufio.NewReaderSize(strings.NewReader("a\n\nlong "+strings.Repeat("x", 100)+"\nlast"), 16)
	var lines []string
	for {
		l, err := readLine(br)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		lines = append(lines, l)
	}
	assert.Equal(t, []string{"a", "", "long " + strings.Repeat("x", 100), "last"}, lines)

	_, err := readLine(bufio.NewReader(strings.NewReader(strings.Repeat("y", maxLine+1))))
	assert.ErrorContains(t, err, "line longer than")
}

func TestExplain(t *testing.T) {
	tl := &tool{brokers: "h1:9092, h2:9092"}
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	err := fmt.Errorf("admin: list topics: %w", fmt.Errorf("%w: dial h1:9092: %w", client.ErrConnection, dial))
	assert.Equal(t, "cannot reach broker at h1:9092,h2:9092: connect: connection refused", tl.explain(err))
	assert.Equal(t, `topic "x" does not exist`, tl.explain(topicErr("x", fmt.Errorf("wrapped: %w", tributary.ErrUnknownTopicOrPartition))))
	assert.Equal(t, "describe cluster: boom", tl.explain(errors.New("admin: describe cluster: boom")))
	assert.Contains(t, tl.explain(context.DeadlineExceeded), "no answer from the cluster at h1:9092,h2:9092")

	assert.Equal(t, "it failed.", sentence("it failed"))
	assert.Equal(t, "a; b.", sentence("a\nb\n"))
}

func TestProgressLine(t *testing.T) {
	p := &progress{interval: 20 * time.Millisecond}
	p.records.Add(500)
	p.bytes.Add(50000)
	p.latN.Add(2)
	p.latSum.Add(3000)
	p.latMax.Add(2000)
	var buf lockedBuffer
	stop := p.run(context.Background(), &buf, "sent", true)
	// Wait for three lines rather than for a while: on a loaded machine
	// the ticker may not fire in any given interval.
	require.Eventually(t, func() bool { return strings.Count(buf.String(), "\n") >= 3 }, 20*time.Second, 5*time.Millisecond)
	stop()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	assert.Regexp(t, `^500 records sent, \d+\.\d records/s \(\d+\.\d\d MB/s\), 1\.5 ms avg latency, 2\.0 ms max latency\.$`, lines[0])
	for _, l := range lines[1:] {
		assert.Regexp(t, `^0 records sent, 0\.0 records/s \(0\.00 MB/s\)\.$`, l, "later lines cover only their own second")
	}
}

// lockedBuffer is a strings.Builder safe to write from one goroutine
// while another reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
