package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/broker/brokertest"
)

// TestTxnCommands: with a transaction left open on orders[1] (a kgo
// transactional producer), `txn list`, `txn describe` and `txn
// producers` show it, in tables and in JSON, and unknown names are
// reported plainly; against kfake and against our broker.
func TestTxnCommands(t *testing.T) {
	t.Run("kfake", func(t *testing.T) {
		kf, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "orders"))
		require.NoError(t, err)
		t.Cleanup(kf.Close)
		txnCommands(t, kf.ListenAddrs()[0])
	})
	t.Run("tributary", func(t *testing.T) {
		b := brokertest.Start(t)
		ok(t, b.Addr(), "", "topic", "create", "orders", "-p", "2")
		txnCommands(t, b.Addr())
	})
}

func txnCommands(t *testing.T, addr string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	txn, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID("billing-1"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	defer txn.Close()
	require.NoError(t, txn.BeginTransaction())
	require.NoError(t, txn.ProduceSync(ctx, &kgo.Record{Topic: "orders", Partition: 1, Value: []byte("x")}).FirstErr())

	out := ok(t, addr, "", "txn", "list")
	assert.Regexp(t, `TRANSACTIONAL-ID\s+STATE\s+PRODUCER-ID\s+COORDINATOR`, out)
	assert.Regexp(t, `billing-1\s+Ongoing\s+\d+\s+\d+`, out)
	var listed []txnListJSON
	okJSON(t, addr, &listed, "txn", "list", "--state", "Ongoing")
	require.Len(t, listed, 1)
	assert.Equal(t, "billing-1", listed[0].TransactionalID)
	okJSON(t, addr, &listed, "txn", "list", "--state", "PrepareCommit")
	assert.Empty(t, listed)

	out = ok(t, addr, "", "txn", "describe", "billing-1")
	assert.Regexp(t, `STATE\s+Ongoing`, out)
	assert.Regexp(t, `PARTITIONS\s+orders\[1\]`, out)
	assert.Regexp(t, `TIMEOUT\s+\d`, out)
	var described []txnDescribeJSON
	okJSON(t, addr, &described, "txn", "describe", "billing-1")
	require.Len(t, described, 1)
	assert.Equal(t, []txnPartitionJSON{{Topic: "orders", Partition: 1}}, described[0].Partitions)
	assert.Equal(t, listed0(t, addr).ProducerID, described[0].ProducerID)
	assert.Positive(t, described[0].StartedMs)

	out = ok(t, addr, "", "txn", "producers", "orders")
	assert.Regexp(t, `orders\s+1\s+\d+\s+\d+\s+0\s+\S+\s+\S+\s+0`, out, "the open transaction starts at offset 0")
	var producers []producerJSON
	okJSON(t, addr, &producers, "txn", "producers", "orders", "1")
	require.Len(t, producers, 1)
	assert.Equal(t, int64(0), producers[0].TxnStartOffset)
	assert.Equal(t, described[0].ProducerID, producers[0].ProducerID)
	okJSON(t, addr, &producers, "txn", "producers", "orders", "0")
	assert.Empty(t, producers)

	for _, args := range [][]string{
		{"txn", "describe", "nope"},
		{"txn", "producers", "nosuch"},
	} {
		r := cli(t, addr, "", args...)
		assert.NotEqual(t, 0, r.code, "%q", args)
		assert.Contains(t, r.stderr, "does not exist", "%q", args)
		oneSentence(t, r.stderr)
	}
	r := cli(t, addr, "", "txn", "producers", "orders", "x")
	assert.Equal(t, 2, r.code)

	require.NoError(t, txn.EndTransaction(ctx, kgo.TryCommit))
	out = ok(t, addr, "", "txn", "describe", "billing-1")
	assert.False(t, strings.Contains(out, "Ongoing"), out)
}

func listed0(t *testing.T, addr string) txnListJSON {
	t.Helper()
	var listed []txnListJSON
	okJSON(t, addr, &listed, "txn", "list")
	require.NotEmpty(t, listed)
	return listed[0]
}
