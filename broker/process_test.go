package broker_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/broker/brokertest"
)

// TestBrokerProcessStopsCleanly runs `tributary broker` as a subprocess:
// it must print its address, serve, exit 0 on SIGTERM, and find its topics
// again on the next start.
func TestBrokerProcessStopsCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	p := brokertest.StartProcess(t, dir, "num.partitions=3")
	adm := newAdmin(t, p.Addr())
	ct, err := adm.CreateTopic(ctx5(t), -1, -1, nil, "kept")
	require.NoError(t, err)
	assert.EqualValues(t, 3, ct.NumPartitions)
	rss, err := p.PeakRSS()
	require.NoError(t, err)
	assert.Greater(t, rss, int64(1<<20))
	require.NoError(t, p.Stop())

	p = brokertest.StartProcess(t, dir)
	adm = newAdmin(t, p.Addr())
	md, err := adm.Metadata(ctx5(t), "kept")
	require.NoError(t, err)
	require.NoError(t, md.Topics["kept"].Err)
	assert.Len(t, md.Topics["kept"].Partitions, 3)
	assert.Equal(t, ct.ID, md.Topics["kept"].ID)
	require.NoError(t, p.Stop())
}
