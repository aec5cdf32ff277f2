package admin

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/client"
	"github.com/tributary/tributary/internal/stalldial"
)

// firstErrOf returns the call's error or, failing that, the first item
// error, for calls that report per item.
func firstErrOf(err error, items interface{ FirstErr() error }) error {
	if err != nil {
		return err
	}
	if items == nil {
		return nil
	}
	return items.FirstErr()
}

// With every seed down, CreateTopic took 41s (retries of retries) and
// other calls as long; each now fails within seconds, typed.
func TestNoReachableBrokerFailsFast(t *testing.T) {
	var addrs []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addrs = append(addrs, ln.Addr().String())
		ln.Close()
	}
	a, err := New(SeedBrokers(addrs...), ClientOptions(client.DialTimeout(time.Second)))
	require.NoError(t, err)
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	calls := map[string]func() error{
		"CreateTopic": func() error { return a.CreateTopic(ctx, "t", 1, 1, nil) },
		"DescribeTopics": func() error {
			_, err := a.DescribeTopics(ctx, "t")
			return err
		},
		"ListGroups": func() error {
			_, err := a.ListGroups(ctx)
			return err
		},
		"DescribeGroups": func() error {
			gs, err := a.DescribeGroups(ctx, "g")
			return firstErrOf(err, gs)
		},
		"FetchOffsets": func() error {
			os, err := a.FetchOffsets(ctx, "g")
			return firstErrOf(err, os)
		},
		"ListEndOffsets": func() error {
			os, err := a.ListEndOffsets(ctx, "t")
			return firstErrOf(err, os)
		},
		"Lag": func() error {
			_, err := a.Lag(ctx, "g")
			return err
		},
		"DescribeCluster": func() error {
			_, err := a.DescribeCluster(ctx)
			return err
		},
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		took := time.Since(start)
		require.Error(t, err, name)
		require.ErrorIs(t, err, client.ErrConnection, name)
		require.Contains(t, err.Error(), "cannot reach any broker", name)
		require.Less(t, took, 5*time.Second, "%s took %v", name, took)
	}
}

// Admin calls return when their ctx ends, whatever the broker does.
func TestCallsHonourContext(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			addrs, _, _ := b.start(t)
			d := &stalldial.Dialer{}
			a, err := New(SeedBrokers(addrs...), ClientOptions(client.Dialer(d.Dial)))
			require.NoError(t, err)
			defer a.Close()
			// Connections and metadata first, so the calls below wait on
			// answers, not on connection setup.
			_, err = a.DescribeCluster(context.Background())
			require.NoError(t, err)
			_, err = a.ListTopics(context.Background())
			require.NoError(t, err)
			d.Hold()
			defer d.Release()
			for name, call := range map[string]func(ctx context.Context) error{
				"CreateTopic": func(ctx context.Context) error { return a.CreateTopic(ctx, "held", 1, 1, nil) },
				"ListTopics": func(ctx context.Context) error {
					_, err := a.ListTopics(ctx)
					return err
				},
				"DescribeGroups": func(ctx context.Context) error {
					gs, err := a.DescribeGroups(ctx, "g")
					return firstErrOf(err, gs)
				},
			} {
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				start := time.Now()
				err := call(ctx)
				took := time.Since(start)
				cancel()
				require.True(t, errors.Is(err, context.DeadlineExceeded), "%s: %v", name, err)
				require.Less(t, took, 3*time.Second, "%s took %v", name, took)
			}
		})
	}
}
