package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/broker"
	"github.com/tributary/tributary/broker/brokertest"
)

// TestClusterInfoConsole: cluster info points to the broker's console
// (found through DescribeConfigs' http.listener and checked with
// /healthz), and says nothing when the broker runs none.
func TestClusterInfoConsole(t *testing.T) {
	b := brokertest.Start(t)
	url := "http://" + b.HTTPAddr() + "/"
	out := ok(t, b.Addr(), "", "cluster", "info")
	assert.Regexp(t, `(?m)^CONSOLE\s+`+url+`$`, out)
	var c clusterJSON
	okJSON(t, b.Addr(), &c, "cluster", "info")
	require.Len(t, c.Brokers, 1)
	assert.Equal(t, url, c.Brokers[0].ConsoleURL)

	off := brokertest.Start(t, func(c *broker.Config) { c.HTTPListener = "" })
	out = ok(t, off.Addr(), "", "cluster", "info")
	assert.NotContains(t, out, "CONSOLE")
}
