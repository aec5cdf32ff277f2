package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/broker"
	"github.com/tributary/tributary/broker/brokertest"
)

// topic describe shows a compacted partition's dirty ratio, read from its
// leader's console: with the cleaner off, a log that rolled a few
// segments is all dirty (1.000).
func TestTopicDescribeDirtyRatio(t *testing.T) {
	b := brokertest.Start(t, func(c *broker.Config) { c.LogCleanerEnable = false })
	addr := b.Addr()
	ok(t, addr, "", "topic", "create", "changelog", "-p", "1", "-c", "cleanup.policy=compact", "-c", "segment.bytes=1024")
	// Four runs, four batches of ~1 KiB: the log rolls past them.
	for range 4 {
		var in strings.Builder
		for i := range 15 {
			fmt.Fprintf(&in, "key-%d:%s\n", i%5, strings.Repeat("v", 50))
		}
		ok(t, addr, in.String(), "produce", "changelog", "-k", ":")
	}

	out := ok(t, addr, "", "topic", "describe", "changelog")
	assert.Regexp(t, `(?m)^0\s+1\s+0\s+1\s+1\s+0\s+60\s+1\.000$`, out)
	var described []topicDescribeJSON
	okJSON(t, addr, &described, "topic", "describe", "changelog")
	require.Len(t, described, 1)
	require.NotNil(t, described[0].Partitions[0].DirtyRatio)
	assert.Equal(t, 1.0, *described[0].Partitions[0].DirtyRatio)

	// A topic that is not compacted has no such column.
	ok(t, addr, "", "topic", "create", "plain", "-p", "1")
	out = ok(t, addr, "", "topic", "describe", "plain")
	assert.NotContains(t, out, "DIRTY-RATIO")
}
