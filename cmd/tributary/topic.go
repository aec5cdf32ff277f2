package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/admin"
)

var topicCmd = &branch{
	name:    "topic",
	summary: "create, list, describe, alter and delete topics",
	subs: []*leaf{
		{name: "topic create", args: "NAME... [-p PARTITIONS] [-r REPLICAS] [-c key=value]...", summary: "create topics", flags: topicCreate},
		{name: "topic list", args: "[-i]", summary: "list topics", flags: topicList},
		{name: "topic describe", args: "NAME...", summary: "show partitions, leaders, replicas, ISR, offsets and configs", flags: topicDescribe},
		{name: "topic delete", args: "NAME...", summary: "delete topics", flags: topicDelete},
		{name: "topic add-partitions", args: "NAME... -n TOTAL", summary: "grow topics to TOTAL partitions", flags: topicAddPartitions},
		{name: "topic alter-config", args: "NAME... [--set key=value]... [--delete key]...", summary: "set or remove topic config overrides", flags: topicAlterConfig},
	},
}

// topicStatus is one topic's outcome in create, delete, add-partitions and
// alter-config.
type topicStatus struct {
	Topic string `json:"topic"`
	Error string `json:"error,omitempty"`
}

// printStatuses prints per-topic outcomes and returns the first failure.
func printStatuses(t *tool, names []string, errs []error) error {
	out := make([]topicStatus, len(names))
	var first error
	for i, n := range names {
		out[i] = topicStatus{Topic: n, Error: errString(errs[i])}
		if errs[i] != nil && first == nil {
			first = errs[i]
		}
	}
	if t.json() {
		if err := writeJSON(t.stdout, out); err != nil {
			return err
		}
	} else {
		tb := newTable(t.stdout, "TOPIC", "STATUS")
		for i, n := range names {
			tb.row(n, status(errs[i]))
		}
		tb.flush()
	}
	return first
}

func needTopics(args []string) error {
	if len(args) == 0 {
		return usagef("name at least one topic")
	}
	return nil
}

func topicCreate(f *flagSet) func(context.Context, *tool, []string) error {
	var partitions, replicas int
	var configs []string
	f.Int(&partitions, "p", "partitions", "N", -1, "partitions per topic (-1: the broker's num.partitions)")
	f.Int(&replicas, "r", "replicas", "N", -1, "replication factor (-1: the broker's default.replication.factor)")
	f.List(&configs, "c", "topic-config", "key=value", false, "topic config override (repeatable)")
	return func(ctx context.Context, t *tool, args []string) error {
		if err := needTopics(args); err != nil {
			return err
		}
		if partitions == 0 || partitions < -1 {
			return usagef("-p must be positive (or -1 for the broker default)")
		}
		if replicas == 0 || replicas < -1 || replicas > 1<<15-1 {
			return usagef("-r must be positive (or -1 for the broker default)")
		}
		cfgs, err := keyValues("-c", configs)
		if err != nil {
			return err
		}
		ctx, a, done, err := t.adminCtx(ctx)
		if err != nil {
			return err
		}
		defer done()
		var nts []admin.NewTopic
		for _, n := range args {
			nts = append(nts, admin.NewTopic{Name: n, Partitions: int32(partitions), ReplicationFactor: int16(replicas), Configs: cfgs})
		}
		rs, err := a.CreateTopics(ctx, nts)
		if err != nil {
			return err
		}
		errs := make([]error, len(args))
		for i, n := range args {
			r, _ := rs.On(n)
			errs[i] = r.Err
			if errors.Is(r.Err, tributary.ErrTopicAlreadyExists) {
				errs[i] = fmt.Errorf("topic %q already exists", n)
			} else if r.Err != nil {
				errs[i] = fmt.Errorf("topic %q: %w", n, r.Err)
			}
		}
		return printStatuses(t, args, errs)
	}
}

type topicListJSON struct {
	Name              string `json:"name"`
	ID                string `json:"id"`
	Partitions        int    `json:"partitions"`
	ReplicationFactor int    `json:"replication_factor"`
	Internal          bool   `json:"internal"`
}

func topicList(f *flagSet) func(context.Context, *tool, []string) error {
	var internal bool
	f.Bool(&internal, "i", "internal", "include internal topics such as __consumer_offsets")
	return func(ctx context.Context, t *tool, args []string) error {
		if len(args) > 0 {
			return usagef("unexpected arguments %q", args)
		}
		ctx, a, done, err := t.adminCtx(ctx)
		if err != nil {
			return err
		}
		defer done()
		ls, err := a.ListTopics(ctx)
		if err != nil {
			return err
		}
		out := []topicListJSON{}
		for _, l := range ls {
			if l.Internal && !internal {
				continue
			}
			out = append(out, topicListJSON{Name: l.Topic, ID: l.ID.String(), Partitions: l.Partitions, ReplicationFactor: l.ReplicationFactor, Internal: l.Internal})
		}
		if t.json() {
			return writeJSON(t.stdout, out)
		}
		tb := newTable(t.stdout, "NAME", "PARTITIONS", "REPLICAS")
		for _, l := range out {
			tb.row(l.Name, l.Partitions, l.ReplicationFactor)
		}
		return tb.flush()
	}
}

type partitionJSON struct {
	Partition     int32   `json:"partition"`
	Leader        int32   `json:"leader"`
	LeaderEpoch   int32   `json:"leader_epoch"`
	Replicas      []int32 `json:"replicas"`
	ISR           []int32 `json:"isr"`
	Offline       []int32 `json:"offline_replicas"`
	LogStart      int64   `json:"log_start_offset"`
	HighWatermark int64   `json:"high_watermark"`
	// DirtyRatio is the leader replica's dirty ratio (compacted topics
	// on Tributary brokers only; see dirtyRatios).
	DirtyRatio *float64 `json:"dirty_ratio,omitempty"`
	Error      string   `json:"error,omitempty"`
}

type configJSON struct {
	Name      string  `json:"name"`
	Value     *string `json:"value"`
	Source    string  `json:"source"`
	ReadOnly  bool    `json:"read_only,omitempty"`
	Sensitive bool    `json:"sensitive,omitempty"`
}

type topicDescribeJSON struct {
	Name       string          `json:"name"`
	ID         string          `json:"id"`
	Internal   bool            `json:"internal"`
	Partitions []partitionJSON `json:"partitions"`
	Configs    []configJSON    `json:"configs"`
	compacted  bool            // cleanup.policy includes compact
}

func topicDescribe(f *flagSet) func(context.Context, *tool, []string) error {
	return func(ctx context.Context, t *tool, args []string) error {
		if err := needTopics(args); err != nil {
			return err
		}
		ctx, a, done, err := t.adminCtx(ctx)
		if err != nil {
			return err
		}
		defer done()
		ds, err := a.DescribeTopics(ctx, args...)
		if err != nil {
			return err
		}
		for _, d := range ds {
			if d.Err != nil {
				return topicErr(d.Topic, d.Err)
			}
		}
		starts, err := a.ListStartOffsets(ctx, args...)
		if err != nil {
			return err
		}
		ends, err := a.ListEndOffsets(ctx, args...)
		if err != nil {
			return err
		}
		out := make([]topicDescribeJSON, 0, len(ds))
		for _, d := range ds {
			td := topicDescribeJSON{Name: d.Topic, ID: d.ID.String(), Internal: d.Internal, Partitions: []partitionJSON{}, Configs: []configJSON{}}
			for _, p := range d.Partitions {
				pj := partitionJSON{
					Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
					Replicas: nonNil(p.Replicas), ISR: nonNil(p.ISR), Offline: nonNil(p.Offline),
					LogStart: -1, HighWatermark: -1, Error: errString(p.Err),
				}
				if s, ok := starts.Lookup(d.Topic, p.Partition); ok && s.Err == nil {
					pj.LogStart = s.Offset
				}
				if e, ok := ends.Lookup(d.Topic, p.Partition); ok && e.Err == nil {
					pj.HighWatermark = e.Offset
				}
				td.Partitions = append(td.Partitions, pj)
			}
			for _, c := range d.Configs {
				td.Configs = append(td.Configs, configJSON{Name: c.Name, Value: c.Value, Source: configSource(c.Source), ReadOnly: c.ReadOnly, Sensitive: c.Sensitive})
				if c.Name == "cleanup.policy" && c.Value != nil && strings.Contains(*c.Value, "compact") {
					td.compacted = true
				}
			}
			out = append(out, td)
		}
		dirtyRatios(ctx, a, out)
		return writeEach(t, out, printTopic)
	}
}

func configSource(s admin.ConfigSource) string {
	switch s {
	case admin.SourceDynamicTopic:
		return "topic"
	case admin.SourceDynamicBroker:
		return "broker"
	case admin.SourceDynamicDefaultBroker:
		return "cluster"
	case admin.SourceStaticBroker:
		return "broker-static"
	case admin.SourceDefault:
		return "default"
	}
	return s.String()
}

func printTopic(w io.Writer, td topicDescribeJSON) {
	section(w, "summary")
	tb := newTable(w)
	tb.row("NAME", td.Name)
	tb.row("ID", td.ID)
	tb.row("INTERNAL", td.Internal)
	tb.row("PARTITIONS", len(td.Partitions))
	if len(td.Partitions) > 0 {
		tb.row("REPLICAS", len(td.Partitions[0].Replicas))
	}
	tb.flush()
	fmt.Fprintln(w)
	section(w, "configs")
	tb = newTable(w, "KEY", "VALUE", "SOURCE")
	for _, c := range td.Configs {
		v := "-"
		switch {
		case c.Sensitive:
			v = "(sensitive)"
		case c.Value != nil:
			v = *c.Value
		}
		tb.row(c.Name, v, c.Source)
	}
	tb.flush()
	fmt.Fprintln(w)
	section(w, "partitions")
	cols := []string{"PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "LOG-START-OFFSET", "HIGH-WATERMARK"}
	if td.compacted {
		cols = append(cols, "DIRTY-RATIO")
	}
	tb = newTable(w, cols...)
	for _, p := range td.Partitions {
		row := []any{p.Partition, p.Leader, p.LeaderEpoch, ints(p.Replicas), ints(p.ISR), p.LogStart, p.HighWatermark}
		if td.compacted {
			ratio := "-"
			if p.DirtyRatio != nil {
				ratio = strconv.FormatFloat(*p.DirtyRatio, 'f', 3, 64)
			}
			row = append(row, ratio)
		}
		tb.row(row...)
	}
	tb.flush()
}

// dirtyRatios fills in the dirty ratio of every partition of the
// compacted topics in ts. Kafka's admin API has no such figure, so it
// comes from each partition leader's console (a Tributary broker's
// http.listener, found as consoleURL finds it): GET /api/topics/NAME,
// which reports that node's replica. Partitions whose leader has no
// reachable console (Apache Kafka, http.listener off) keep none.
func dirtyRatios(ctx context.Context, a *admin.Client, ts []topicDescribeJSON) {
	need := false
	for _, td := range ts {
		need = need || td.compacted
	}
	if !need {
		return
	}
	cl, err := a.DescribeCluster(ctx)
	if err != nil {
		return
	}
	hosts := map[int32]string{}
	for _, b := range cl.Brokers {
		hosts[b.NodeID] = b.Host
	}
	urls := map[int32]string{}
	for i := range ts {
		td := &ts[i]
		if !td.compacted {
			continue
		}
		views := map[int32]consoleTopic{} // by leader
		for j := range td.Partitions {
			p := &td.Partitions[j]
			host, ok := hosts[p.Leader]
			if !ok {
				continue
			}
			u, ok := urls[p.Leader]
			if !ok {
				u = consoleURL(ctx, a, p.Leader, host)
				urls[p.Leader] = u
			}
			if u == "" {
				continue
			}
			v, ok := views[p.Leader]
			if !ok {
				v = fetchConsoleTopic(ctx, u, td.Name)
				views[p.Leader] = v
			}
			for _, cp := range v.Partitions {
				if cp.Partition == p.Partition && cp.Local && cp.Compacted && cp.DirtyRatio >= 0 {
					r := cp.DirtyRatio
					p.DirtyRatio = &r
				}
			}
		}
	}
}

// consoleTopic is the part of a console's GET /api/topics/NAME that
// dirtyRatios reads (broker/console.TopicJSON).
type consoleTopic struct {
	Partitions []struct {
		Partition  int32   `json:"partition"`
		Local      bool    `json:"local"`
		Compacted  bool    `json:"compacted"`
		DirtyRatio float64 `json:"dirty_ratio"`
	} `json:"partitions"`
}

func fetchConsoleTopic(ctx context.Context, base, topic string) consoleTopic {
	var v consoleTopic
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", base+"api/topics/"+url.PathEscape(topic), nil)
	if err != nil {
		return v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return v
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&v)
	}
	return v
}

func topicDelete(f *flagSet) func(context.Context, *tool, []string) error {
	return func(ctx context.Context, t *tool, args []string) error {
		if err := needTopics(args); err != nil {
			return err
		}
		ctx, a, done, err := t.adminCtx(ctx)
		if err != nil {
			return err
		}
		defer done()
		rs, err := a.DeleteTopics(ctx, args...)
		if err != nil {
			return err
		}
		errs := make([]error, len(args))
		for i, r := range rs {
			if r.Err != nil {
				errs[i] = topicErr(r.Topic, r.Err)
			}
		}
		return printStatuses(t, args, errs)
	}
}

func topicAddPartitions(f *flagSet) func(context.Context, *tool, []string) error {
	var total int
	f.Int(&total, "n", "num", "TOTAL", 0, "the total number of partitions each topic should have")
	return func(ctx context.Context, t *tool, args []string) error {
		if err := needTopics(args); err != nil {
			return err
		}
		if total <= 0 || total > 1<<31-1 {
			return usagef("-n TOTAL is required and must be positive")
		}
		ctx, a, done, err := t.adminCtx(ctx)
		if err != nil {
			return err
		}
		defer done()
		rs, err := a.CreatePartitions(ctx, int32(total), args)
		if err != nil {
			return err
		}
		errs := make([]error, len(args))
		for i, r := range rs {
			switch {
			case errors.Is(r.Err, tributary.ErrInvalidPartitions):
				errs[i] = fmt.Errorf("topic %q: partitions can only grow, and %d is not more than it has: %w", r.Topic, total, r.Err)
			case r.Err != nil:
				errs[i] = topicErr(r.Topic, r.Err)
			}
		}
		return printStatuses(t, args, errs)
	}
}

func topicAlterConfig(f *flagSet) func(context.Context, *tool, []string) error {
	var sets, deletes []string
	f.List(&sets, "s", "set", "key=value", false, "set a config override (repeatable)")
	f.List(&deletes, "d", "delete", "KEY", true, "remove a config override, back to the broker default (repeatable)")
	return func(ctx context.Context, t *tool, args []string) error {
		if err := needTopics(args); err != nil {
			return err
		}
		if len(sets)+len(deletes) == 0 {
			return usagef("nothing to change: give --set key=value or --delete key")
		}
		kvs, err := keyValues("--set", sets)
		if err != nil {
			return err
		}
		var changes []admin.AlterConfig
		for _, s := range sets {
			k, _, _ := strings.Cut(s, "=")
			changes = append(changes, admin.SetConfig(k, kvs[k]))
		}
		for _, d := range deletes {
			changes = append(changes, admin.DeleteConfig(d))
		}
		ctx, a, done, err := t.adminCtx(ctx)
		if err != nil {
			return err
		}
		defer done()
		rs, err := a.AlterTopicConfigs(ctx, changes, args)
		if err != nil {
			return err
		}
		errs := make([]error, len(args))
		for i, n := range args {
			for _, r := range rs {
				if r.Name == n && r.Err != nil {
					errs[i] = topicErr(n, r.Err)
				}
			}
		}
		return printStatuses(t, args, errs)
	}
}
