package client

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A Fetch long poll or a JoinGroup held for the rebalance must extend the
// read deadline: with only RequestTimeout, a consumer's connection was
// closed under a healthy 30s+ rebalance.
func TestBrokerWaitCoversLongPollsAndJoins(t *testing.T) {
	f := kmsg.NewPtrFetchRequest()
	f.MaxWaitMillis = 5000
	j := kmsg.NewPtrJoinGroupRequest()
	j.Version = 5
	j.RebalanceTimeoutMillis = 60000
	j0 := kmsg.NewPtrJoinGroupRequest()
	j0.SessionTimeoutMillis = 10000
	p := kmsg.NewPtrProduceRequest()
	p.TimeoutMillis = 7000
	for _, c := range []struct {
		req  kmsg.Request
		want time.Duration
	}{
		{f, 5 * time.Second},
		{j, time.Minute},
		{j0, 10 * time.Second},
		{p, 7 * time.Second},
		{kmsg.NewPtrMetadataRequest(), 0},
	} {
		if got := brokerWait(c.req); got != c.want {
			t.Errorf("%T: brokerWait = %v, want %v", c.req, got, c.want)
		}
	}
}
