package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/tributary/tributary/admin"
)

var clusterCmd = &branch{
	name:    "cluster",
	summary: "describe the cluster",
	subs: []*leaf{
		{name: "cluster info", args: "", summary: "show the cluster id, controller and brokers", flags: clusterInfo},
	},
}

type brokerJSON struct {
	NodeID int32  `json:"node_id"`
	Host   string `json:"host"`
	Port   int32  `json:"port"`
	Rack   string `json:"rack,omitempty"`
	// ConsoleURL is the broker's web console when it runs one (a
	// Tributary broker's http.listener) and answers.
	ConsoleURL string `json:"console_url,omitempty"`
}

type voterJSON struct {
	NodeID       int32 `json:"node_id"`
	LogEndOffset int64 `json:"log_end_offset"`
	Lag          int64 `json:"lag"`
	LastFetchMs  int64 `json:"last_fetch_ms,omitempty"`
}

type quorumJSON struct {
	LeaderID      int32       `json:"leader_id"`
	LeaderEpoch   int32       `json:"leader_epoch"`
	HighWatermark int64       `json:"high_watermark"`
	Voters        []voterJSON `json:"voters"`
}

type clusterJSON struct {
	ClusterID  string       `json:"cluster_id"`
	Controller int32        `json:"controller"`
	Brokers    []brokerJSON `json:"brokers"`
	Topics     int          `json:"topics"`
	// Quorum is the controller quorum, when the cluster answers
	// DescribeQuorum (Tributary and KRaft clusters that expose it).
	Quorum *quorumJSON `json:"quorum,omitempty"`
}

func clusterInfo(f *flagSet) func(context.Context, *tool, []string) error {
	return func(ctx context.Context, t *tool, args []string) error {
		if len(args) > 0 {
			return usagef("unexpected arguments %q", args)
		}
		ctx, a, done, err := t.adminCtx(ctx)
		if err != nil {
			return err
		}
		defer done()
		c, err := a.DescribeCluster(ctx)
		if err != nil {
			return err
		}
		topics, err := a.ListTopics(ctx)
		if err != nil {
			return err
		}
		out := clusterJSON{ClusterID: c.ClusterID, Controller: c.Controller, Brokers: []brokerJSON{}}
		for _, b := range c.Brokers {
			out.Brokers = append(out.Brokers, brokerJSON{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack,
				ConsoleURL: consoleURL(ctx, a, b.NodeID, b.Host)})
		}
		for _, tl := range topics {
			if !tl.Internal {
				out.Topics++
			}
		}
		if q, err := a.DescribeQuorum(ctx); err == nil {
			qj := &quorumJSON{LeaderID: q.LeaderID, LeaderEpoch: q.LeaderEpoch, HighWatermark: q.HighWatermark, Voters: []voterJSON{}}
			for _, v := range q.Voters {
				vj := voterJSON{NodeID: v.NodeID, LogEndOffset: v.LogEndOffset, Lag: v.Lag}
				if !v.LastFetch.IsZero() {
					vj.LastFetchMs = v.LastFetch.UnixMilli()
				}
				qj.Voters = append(qj.Voters, vj)
			}
			out.Quorum = qj
		}
		if t.json() {
			return writeJSON(t.stdout, out)
		}
		section(t.stdout, "cluster")
		tb := newTable(t.stdout)
		tb.row("ID", out.ClusterID)
		tb.row("CONTROLLER", out.Controller)
		tb.row("TOPICS", out.Topics)
		for _, b := range out.Brokers {
			if b.ConsoleURL == "" {
				continue
			}
			if len(out.Brokers) == 1 {
				tb.row("CONSOLE", b.ConsoleURL)
			} else {
				tb.row("CONSOLE", fmt.Sprintf("%s (node %d)", b.ConsoleURL, b.NodeID))
			}
		}
		tb.flush()
		fmt.Fprintln(t.stdout)
		section(t.stdout, "brokers")
		tb = newTable(t.stdout, "ID", "HOST", "PORT", "RACK")
		for _, b := range out.Brokers {
			id := fmt.Sprint(b.NodeID)
			if b.NodeID == out.Controller {
				id += "*" // rpk marks the controller so
			}
			tb.row(id, b.Host, b.Port, b.Rack)
		}
		if err := tb.flush(); err != nil || out.Quorum == nil {
			return err
		}
		fmt.Fprintln(t.stdout)
		section(t.stdout, "quorum")
		q := out.Quorum
		tb = newTable(t.stdout)
		tb.row("LEADER", q.LeaderID)
		tb.row("EPOCH", q.LeaderEpoch)
		tb.row("HIGH-WATERMARK", q.HighWatermark)
		tb.flush()
		fmt.Fprintln(t.stdout)
		tb = newTable(t.stdout, "VOTER", "LOG-END-OFFSET", "LAG", "LAST-FETCH")
		for _, v := range q.Voters {
			last := "-"
			if v.LastFetchMs > 0 {
				last = time.UnixMilli(v.LastFetchMs).UTC().Format(time.RFC3339)
			}
			tb.row(v.NodeID, v.LogEndOffset, v.Lag, last)
		}
		return tb.flush()
	}
}

// consoleURL finds a Tributary broker's console: its http.listener from
// DescribeConfigs (the bound address, so a port of 0 is resolved), with a
// wildcard host replaced by the broker's host, if /healthz answers there.
// Other brokers (Apache Kafka) have no such config: "".
func consoleURL(ctx context.Context, a *admin.Client, node int32, brokerHost string) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	cfgs, err := a.DescribeBrokerConfigs(ctx, node)
	if err != nil {
		return ""
	}
	rc, ok := cfgs.On(strconv.Itoa(int(node)))
	if !ok {
		return ""
	}
	c, ok := rc.Lookup("http.listener")
	if !ok || c.ValueOr("") == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(c.ValueOr(""))
	if err != nil || port == "0" {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = brokerHost
	}
	u := "http://" + net.JoinHostPort(host, port) + "/"
	req, err := http.NewRequestWithContext(ctx, "GET", u+"healthz", nil)
	if err != nil {
		return ""
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return u
}
