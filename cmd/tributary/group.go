package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/admin"
)

var groupCmd = &branch{
	name:    "group",
	summary: "list, describe, move and delete consumer groups",
	subs: []*leaf{
		{name: "group list", args: "", summary: "list groups", flags: groupList},
		{name: "group describe", args: "GROUP...", summary: "show members, assignments, committed offsets and lag", flags: groupDescribe},
		{name: "group seek", args: "GROUP --to start|end|OFFSET|+N|-N|@UNIX_MS [--topics T]...", summary: "move a group's committed offsets (the group must have no active members)", flags: groupSeek},
		{name: "group delete", args: "GROUP...", summary: "delete groups and their committed offsets", flags: groupDelete},
	},
}

// groupMissing reports whether a described group does not exist: newer
// brokers answer GROUP_ID_NOT_FOUND, older ones describe it as Dead.
func groupMissing(d admin.DescribedGroup) bool {
	return errors.Is(d.Err, tributary.ErrGroupIdNotFound) || (d.Err == nil && d.State == "Dead")
}

type groupListJSON struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
	Coordinator  int32  `json:"coordinator"`
}

func groupList(f *flagSet) func(context.Context, *tool, []string) error {
	return func(ctx context.Context, t *tool, args []string) error {
		if len(args) > 0 {
			return usagef("unexpected arguments %q", args)
		}
		ctx, a, done, err := t.groupAdmin(ctx)
		if err != nil {
			return err
		}
		defer done()
		gs, err := a.ListGroups(ctx)
		if err != nil && len(gs) == 0 {
			return err
		}
		out := []groupListJSON{}
		for _, g := range gs {
			out = append(out, groupListJSON{Group: g.Group, State: g.State, ProtocolType: g.ProtocolType, Coordinator: g.Coordinator})
		}
		if t.json() {
			if werr := writeJSON(t.stdout, out); werr != nil {
				return werr
			}
		} else {
			tb := newTable(t.stdout, "GROUP", "STATE", "PROTOCOL-TYPE", "COORDINATOR")
			for _, g := range out {
				tb.row(g.Group, g.State, g.ProtocolType, g.Coordinator)
			}
			tb.flush()
		}
		return err // some brokers did not answer
	}
}

type memberJSON struct {
	MemberID   string             `json:"member_id"`
	InstanceID string             `json:"instance_id,omitempty"`
	ClientID   string             `json:"client_id"`
	ClientHost string             `json:"client_host"`
	Assignment map[string][]int32 `json:"assignment"`
}

type partitionLagJSON struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed int64  `json:"committed_offset"`
	LogStart  int64  `json:"log_start_offset"`
	LogEnd    int64  `json:"log_end_offset"`
	Lag       int64  `json:"lag"`
	MemberID  string `json:"member_id,omitempty"`
	Error     string `json:"error,omitempty"`
}

type groupDescribeJSON struct {
	Group        string             `json:"group"`
	Coordinator  int32              `json:"coordinator"`
	State        string             `json:"state"`
	ProtocolType string             `json:"protocol_type"`
	Protocol     string             `json:"protocol"`
	Members      []memberJSON       `json:"members"`
	Partitions   []partitionLagJSON `json:"partitions"`
	TotalLag     int64              `json:"total_lag"`
}

func groupDescribe(f *flagSet) func(context.Context, *tool, []string) error {
	return func(ctx context.Context, t *tool, args []string) error {
		if len(args) == 0 {
			return usagef("name at least one group")
		}
		ctx, a, done, err := t.groupAdmin(ctx)
		if err != nil {
			return err
		}
		defer done()
		ds, err := a.DescribeGroups(ctx, args...)
		if err != nil {
			return err
		}
		for _, d := range ds {
			if groupMissing(d) {
				return notFoundError{"group", d.Group}
			}
			if d.Err != nil {
				return fmt.Errorf("group %q: %w", d.Group, d.Err)
			}
		}
		lags, err := a.Lag(ctx, args...)
		if err != nil {
			return err
		}
		out := make([]groupDescribeJSON, 0, len(ds))
		for i, d := range ds {
			if lags[i].Err != nil {
				return fmt.Errorf("group %q: %w", d.Group, lags[i].Err)
			}
			g := groupDescribeJSON{Group: d.Group, Coordinator: d.Coordinator, State: d.State, ProtocolType: d.ProtocolType, Protocol: d.Protocol,
				Members: []memberJSON{}, Partitions: []partitionLagJSON{}, TotalLag: lags[i].Total}
			for _, m := range d.Members {
				mj := memberJSON{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, ClientHost: m.ClientHost, Assignment: map[string][]int32{}}
				if m.Assignment != nil {
					for tp, ps := range m.Assignment.Partitions {
						mj.Assignment[tp] = slices.Sorted(slices.Values(ps))
					}
				}
				g.Members = append(g.Members, mj)
			}
			for _, p := range lags[i].Partitions {
				g.Partitions = append(g.Partitions, partitionLagJSON{Topic: p.Topic, Partition: p.Partition, Committed: p.Committed,
					LogStart: p.Start, LogEnd: p.End, Lag: p.Lag, MemberID: p.MemberID, Error: errString(p.Err)})
			}
			out = append(out, g)
		}
		return writeEach(t, out, printGroup)
	}
}

func printGroup(w io.Writer, g groupDescribeJSON) {
	tb := newTable(w)
	tb.row("GROUP", g.Group)
	tb.row("COORDINATOR", g.Coordinator)
	tb.row("STATE", g.State)
	tb.row("PROTOCOL", g.Protocol)
	tb.row("MEMBERS", len(g.Members))
	tb.row("TOTAL-LAG", g.TotalLag)
	tb.flush()
	if len(g.Members) > 0 {
		fmt.Fprintln(w)
		tb = newTable(w, "MEMBER-ID", "INSTANCE-ID", "CLIENT-ID", "HOST", "ASSIGNMENT")
		for _, m := range g.Members {
			var parts []string
			for _, tp := range slices.Sorted(maps.Keys(m.Assignment)) {
				parts = append(parts, fmt.Sprintf("%s[%s]", tp, ints(m.Assignment[tp])))
			}
			tb.row(m.MemberID, m.InstanceID, m.ClientID, m.ClientHost, strings.Join(parts, " "))
		}
		tb.flush()
	}
	if len(g.Partitions) > 0 {
		fmt.Fprintln(w)
		tb = newTable(w, "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-START-OFFSET", "LOG-END-OFFSET", "LAG", "MEMBER-ID", "ERROR")
		for _, p := range g.Partitions {
			tb.row(p.Topic, p.Partition, offsetCell(p.Committed), offsetCell(p.LogStart), offsetCell(p.LogEnd), offsetCell(p.Lag), p.MemberID, p.Error)
		}
		tb.flush()
	}
}

// offsetCell shows an unknown (-1) offset as "-".
func offsetCell(o int64) any {
	if o < 0 {
		return nil
	}
	return o
}

// seekTarget is a parsed --to.
type seekTarget struct {
	spec     admin.ResetSpec
	absolute bool
	offset   int64
}

// parseSeekTo parses start|end|OFFSET|+N|-N|@UNIX_MS.
func parseSeekTo(s string) (seekTarget, error) {
	switch {
	case s == "start" || s == "earliest" || s == "beginning":
		return seekTarget{spec: admin.ToEarliest()}, nil
	case s == "end" || s == "latest":
		return seekTarget{spec: admin.ToLatest()}, nil
	case strings.HasPrefix(s, "@"):
		ms, err := strconv.ParseInt(s[1:], 10, 64)
		if err != nil || ms < 0 {
			return seekTarget{}, usagef("--to %q: @ needs a Unix time in milliseconds", s)
		}
		return seekTarget{spec: admin.ToTimestamp(ms)}, nil
	case strings.HasPrefix(s, "+") || strings.HasPrefix(s, "-"):
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return seekTarget{}, usagef("--to %q: +N or -N needs a whole number", s)
		}
		return seekTarget{spec: admin.ShiftBy(n)}, nil
	case s == "":
		return seekTarget{}, usagef("--to is required: start, end, an offset, +N, -N or @UNIX_MS")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return seekTarget{}, usagef("--to %q is not start, end, an offset, +N, -N or @UNIX_MS", s)
	}
	return seekTarget{absolute: true, offset: n}, nil
}

type seekJSON struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Error     string `json:"error,omitempty"`
}

func groupSeek(f *flagSet) func(context.Context, *tool, []string) error {
	var to string
	var topics []string
	var dryRun bool
	f.String(&to, "", "to", "WHERE", "", "start, end, an absolute OFFSET, +N/-N (shift), or @UNIX_MS (first record at or after)")
	f.List(&topics, "t", "topics", "TOPIC", true, "only these topics, every partition (repeatable or comma-separated; default: the topics the group committed to)")
	f.Bool(&dryRun, "", "dry-run", "show the new offsets without committing them")
	return func(ctx context.Context, t *tool, args []string) error {
		if len(args) != 1 {
			return usagef("name exactly one group")
		}
		group := args[0]
		target, err := parseSeekTo(to)
		if err != nil {
			return err
		}
		ctx, a, done, err := t.groupAdmin(ctx)
		if err != nil {
			return err
		}
		defer done()
		ds, err := a.DescribeGroups(ctx, group)
		if err != nil {
			return err
		}
		if d := ds[0]; d.Err != nil && !groupMissing(d) {
			return fmt.Errorf("group %q: %w", group, d.Err)
		} else if len(d.Members) > 0 {
			return fmt.Errorf("group %q has %d active members; stop its consumers before seeking", group, len(d.Members))
		}
		if len(topics) > 0 {
			det, err := a.DescribeTopics(ctx, topics...)
			if err != nil {
				return err
			}
			for _, d := range det {
				if d.Err != nil {
					return topicErr(d.Topic, d.Err)
				}
			}
		}
		var res admin.OffsetResults
		if target.absolute {
			res, err = seekAbsolute(ctx, a, group, target.offset, topics, dryRun)
		} else {
			var opts []admin.CallOpt
			if dryRun {
				opts = append(opts, admin.ValidateOnly())
			}
			res, err = a.ResetGroupOffsets(ctx, group, target.spec, topics, opts...)
		}
		if err != nil {
			return err
		}
		if len(res) == 0 {
			return fmt.Errorf("group %q has no committed offsets to move; name the topics with --topics", group)
		}
		out := make([]seekJSON, 0, len(res))
		for _, r := range res {
			out = append(out, seekJSON{Topic: r.Topic, Partition: r.Partition, Offset: r.At, Error: errString(r.Err)})
		}
		if t.json() {
			if err := writeJSON(t.stdout, out); err != nil {
				return err
			}
		} else {
			tb := newTable(t.stdout, "TOPIC", "PARTITION", "NEW-OFFSET", "STATUS")
			for _, r := range res {
				tb.row(r.Topic, r.Partition, r.At, status(r.Err))
			}
			tb.flush()
		}
		if err := res.FirstErr(); err != nil {
			return fmt.Errorf("group %q: %w", group, err)
		}
		return nil
	}
}

// seekAbsolute commits offset for every partition of topics (or every
// partition the group committed to), clamped to each partition's
// [log start, end], as kafka-consumer-groups --to-offset does.
func seekAbsolute(ctx context.Context, a *admin.Client, group string, offset int64, topics []string, dryRun bool) (admin.OffsetResults, error) {
	want := make(map[string][]int32)
	if len(topics) == 0 {
		committed, err := a.FetchOffsets(ctx, group)
		if err != nil {
			return nil, err
		}
		for _, c := range committed {
			want[c.Topic] = append(want[c.Topic], c.Partition)
		}
	} else {
		for _, tp := range topics {
			want[tp] = nil
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	starts, err := a.ListOffsets(ctx, admin.OffsetEarliest, want)
	if err != nil {
		return nil, err
	}
	ends, err := a.ListOffsets(ctx, admin.OffsetLatest, want)
	if err != nil {
		return nil, err
	}
	var plan admin.OffsetResults
	for _, s := range starts {
		r := admin.OffsetResult{PartitionOffset: admin.NewPartitionOffset(s.Topic, s.Partition, offset), Err: s.Err}
		if e, ok := ends.Lookup(s.Topic, s.Partition); ok && r.Err == nil {
			r.Err = e.Err
			r.At = min(max(offset, s.Offset), e.Offset)
		}
		plan = append(plan, r)
	}
	slices.SortFunc(plan, func(x, y admin.OffsetResult) int {
		if c := strings.Compare(x.Topic, y.Topic); c != 0 {
			return c
		}
		return int(x.Partition - y.Partition)
	})
	if dryRun {
		return plan, nil
	}
	done, err := a.CommitOffsets(ctx, group, plan.Offsets()...)
	if err != nil {
		return nil, err
	}
	for i, p := range plan {
		if d, ok := done.Lookup(p.Topic, p.Partition); ok && p.Err == nil {
			plan[i].Err = d.Err
		}
	}
	return plan, nil
}

func groupDelete(f *flagSet) func(context.Context, *tool, []string) error {
	return func(ctx context.Context, t *tool, args []string) error {
		if len(args) == 0 {
			return usagef("name at least one group")
		}
		ctx, a, done, err := t.groupAdmin(ctx)
		if err != nil {
			return err
		}
		defer done()
		rs, err := a.DeleteGroups(ctx, args...)
		if err != nil {
			return err
		}
		type row struct {
			Group string `json:"group"`
			Error string `json:"error,omitempty"`
		}
		var out []row
		var first error
		for _, r := range rs {
			e := r.Err
			switch {
			case errors.Is(e, tributary.ErrGroupIdNotFound):
				e = notFoundError{"group", r.Group}
			case errors.Is(e, tributary.ErrNonEmptyGroup):
				e = fmt.Errorf("group %q has active members; stop its consumers first", r.Group)
			case e != nil:
				e = fmt.Errorf("group %q: %w", r.Group, e)
			}
			if e != nil && first == nil {
				first = e
			}
			out = append(out, row{Group: r.Group, Error: errString(e)})
		}
		if t.json() {
			if err := writeJSON(t.stdout, out); err != nil {
				return err
			}
		} else {
			tb := newTable(t.stdout, "GROUP", "STATUS")
			for _, r := range out {
				st := "OK"
				if r.Error != "" {
					st = r.Error
				}
				tb.row(r.Group, st)
			}
			tb.flush()
		}
		return first
	}
}
