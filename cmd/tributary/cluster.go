package main

import (
	"context"
	"fmt"
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
}

type clusterJSON struct {
	ClusterID  string       `json:"cluster_id"`
	Controller int32        `json:"controller"`
	Brokers    []brokerJSON `json:"brokers"`
	Topics     int          `json:"topics"`
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
			out.Brokers = append(out.Brokers, brokerJSON{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack})
		}
		for _, tl := range topics {
			if !tl.Internal {
				out.Topics++
			}
		}
		if t.json() {
			return writeJSON(t.stdout, out)
		}
		section(t.stdout, "cluster")
		tb := newTable(t.stdout)
		tb.row("ID", out.ClusterID)
		tb.row("CONTROLLER", out.Controller)
		tb.row("TOPICS", out.Topics)
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
		return tb.flush()
	}
}
