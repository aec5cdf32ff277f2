package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConsumePartitionLastNAndEnd: -p picks partitions, -o -N starts N
// records before the end, and -e bounds the end: bare (the end when the
// command starts), an OFFSET (exclusive, as -o's is inclusive) or
// @UNIX_MS; -p means a partition in produce and consume alike.
func TestConsumePartitionLastNAndEnd(t *testing.T) {
	addr := startBroker(t)
	ok(t, addr, "", "topic", "create", "pe", "-p", "2")
	ok(t, addr, "a\nb\nc\n", "produce", "pe", "-p", "0")
	time.Sleep(5 * time.Millisecond) // the next records get a later timestamp
	mark := time.Now().UnixMilli()
	time.Sleep(5 * time.Millisecond)
	ok(t, addr, "d\ne\nf\n", "produce", "pe", "-p", "0")
	ok(t, addr, "g\nh\ni\n", "produce", "pe", "-p", "1")

	lines := func(args ...string) string {
		t.Helper()
		return strings.Join(sortedLines(ok(t, addr, "", append([]string{"consume", "pe"}, args...)...)), " ")
	}
	assert.Equal(t, "g h i", lines("-p", "1", "-e"))
	assert.Equal(t, "e f", lines("-p", "0", "-o", "-2", "-e"))
	assert.Equal(t, "0:e 0:f 1:h 1:i", lines("-p", "0,1", "-o", "-2", "-e", "-f", `%p:%v\n`))
	assert.Equal(t, "0:f 1:i", lines("-p", "0", "-p", "1", "-o", "-1", "-e", "end", "-f", `%p:%v\n`))
	assert.Equal(t, "a b c d e f g h i", lines("-o", "-100", "-e"), "-N beyond the start starts at the start")
	assert.Equal(t, "1 2 3", lines("-p", "0", "-o", "1", "-e", "4", "-f", `%o\n`), "-e OFFSET is exclusive")
	assert.Equal(t, "a b", lines("-p", "0", "-e", "2"))
	assert.Equal(t, "a b c", lines("-e", fmt.Sprintf("@%d", mark)), "-e @MS stops before the first record at or after it")
	assert.Equal(t, "d e f", lines("-p", "0", "-o", fmt.Sprintf("@%d", mark), "-e"))
	assert.Equal(t, "g h i", lines("-e", "-p", "1"), "a bare -e followed by a flag")
	assert.Equal(t, "g h i", lines("-p", "1", "--exit-at-end"), "the old spelling")
	assert.Equal(t, "g h i", lines("-p", "1", "--end=end"))

	// -e OFFSET beyond the end waits for the records up to it.
	done := make(chan string, 1)
	go func() {
		done <- strings.Join(sortedLines(run(addr, "", "consume", "pe", "-p", "1", "-o", "3", "-e", "5").stdout), " ")
	}()
	ok(t, addr, "j\nk\nl\n", "produce", "pe", "-p", "1")
	select {
	case got := <-done:
		assert.Equal(t, "j k", got)
	case <-time.After(60 * time.Second):
		t.Fatal("consume -e 5 did not exit once offset 5 was reached")
	}

	for _, args := range [][]string{
		{"consume", "pe", "-p", "x"},
		{"consume", "pe", "-p", "-1"},
		{"consume", "pe", "-g", "g", "-p", "0"},
		{"consume", "pe", "-g", "g", "-o", "-2"},
		{"consume", "pe", "-o", "-0"},
		{"consume", "pe", "-e=soon"},
		{"consume", "pe", "-e", "@x"},
	} {
		r := cli(t, addr, "", args...)
		assert.Equal(t, 2, r.code, "%q: %s", args, r.stderr)
	}
	r := cli(t, addr, "", "consume", "pe", "-p", "5", "-e")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "there is no partition 5")
}

// TestErrorTextNoRepeatedPrefix: an error is printed once, without a
// part repeated by two layers of wrapping. The bug: "MESSAGE_TOO_LARGE:
// MESSAGE_TOO_LARGE: batch exceeds max.message.bytes".
func TestErrorTextNoRepeatedPrefix(t *testing.T) {
	addr := startBroker(t)
	ok(t, addr, "", "topic", "create", "small", "-c", "max.message.bytes=200")
	r := cli(t, addr, strings.Repeat("x", 500)+"\n", "produce", "small")
	require.Equal(t, 1, r.code)
	oneSentence(t, r.stderr)
	assert.Contains(t, r.stderr, "MESSAGE_TOO_LARGE: batch exceeds max.message.bytes")
	assert.NotContains(t, r.stderr, "MESSAGE_TOO_LARGE: MESSAGE_TOO_LARGE")
	assert.Equal(t, 1, strings.Count(r.stderr, "tributary produce:"))

	assert.Equal(t, "a: b: c", dedupe("a: b: b: c"))
	assert.Equal(t, "a: b: a", dedupe("a: b: a"))
	assert.Equal(t, "x", dedupe("x"))
}

// sortedLines splits output into its lines, sorted.
func sortedLines(s string) []string {
	ls := strings.Fields(s)
	slices.Sort(ls)
	return ls
}
