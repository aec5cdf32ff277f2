package main

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/broker/brokertest"
)

// TestHonoursTributaryBrokers: without -brokers the example reads the
// seed brokers from TRIBUTARY_BROKERS, as the tributary CLI does, and
// prints the topic's records.
func TestHonoursTributaryBrokers(t *testing.T) {
	t.Setenv("TRIBUTARY_BROKERS", "")
	assert.Equal(t, "127.0.0.1:9092", defaultBrokers())

	b := brokertest.Start(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("ex"))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "ex")
	require.NoError(t, err)
	require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Value: []byte("one")}, &kgo.Record{Value: []byte("two")}).FirstErr())

	t.Setenv("TRIBUTARY_BROKERS", b.Addr())
	assert.Equal(t, b.Addr(), defaultBrokers())
	r, w, err := os.Pipe()
	require.NoError(t, err)
	stdout, args := os.Stdout, os.Args
	os.Stdout, os.Args = w, []string{"consumer", "-topic", "ex", "-n", "2"}
	defer func() { os.Stdout, os.Args = stdout, args }()
	main()
	w.Close()
	out, err := io.ReadAll(r)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.Len(t, lines, 2, "%s", out)
	assert.Contains(t, lines[0], `value="one"`)
	assert.Contains(t, lines[1], `value="two"`)
}
