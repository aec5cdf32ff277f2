package admin

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/tributary/tributary"
)

// ErrNoCommittedOffset is a partition's error in ResetGroupOffsets with
// ShiftBy when the group has no committed offset to shift from.
var ErrNoCommittedOffset = errors.New("admin: the group has no committed offset for this partition")

// ResetSpec says where ResetGroupOffsets moves a group's offsets.
type ResetSpec struct {
	kind  int8
	value int64
}

// The zero ResetSpec is invalid, so a forgotten spec cannot silently
// rewind a group to the beginning.
const (
	resetEarliest int8 = iota + 1
	resetLatest
	resetTimestamp
	resetShift
)

// ToEarliest resets to each partition's log start offset.
func ToEarliest() ResetSpec { return ResetSpec{kind: resetEarliest} }

// ToLatest resets to each partition's end offset (high watermark).
func ToLatest() ResetSpec { return ResetSpec{kind: resetLatest} }

// ToTimestamp resets to the first offset whose record timestamp is at or
// after millis (Unix ms); partitions with no such record go to their end
// offset, as Kafka's kafka-consumer-groups --to-datetime does.
func ToTimestamp(millis int64) ResetSpec { return ResetSpec{kind: resetTimestamp, value: millis} }

// ShiftBy moves each committed offset by n (negative: back), clamped to
// the partition's [log start, end] range like kafka-consumer-groups
// --shift-by. A partition without a committed offset fails with
// ErrNoCommittedOffset.
func ShiftBy(n int64) ResetSpec { return ResetSpec{kind: resetShift, value: n} }

// ResetGroupOffsets computes new offsets for group with ListOffsets and
// commits them with CommitOffsets, which the coordinator accepts only while
// the group has no active members. It covers every partition of topics, or
// with no topics every partition the group has committed to. With
// ValidateOnly it only computes the offsets (a dry run). Each partition has
// its own outcome.
func (a *Client) ResetGroupOffsets(ctx context.Context, group string, to ResetSpec, topics []string, opts ...CallOpt) (OffsetResults, error) {
	co := callOpts(opts)
	if to.kind < resetEarliest || to.kind > resetShift {
		return nil, fmt.Errorf("admin: reset offsets: invalid ResetSpec (use ToEarliest, ToLatest, ToTimestamp or ShiftBy)")
	}
	var committed OffsetResults
	if len(topics) == 0 || to.kind == resetShift {
		var err error
		if committed, err = a.FetchOffsets(ctx, group); err != nil {
			return nil, err
		}
	}
	want := make(map[string][]int32)
	if len(topics) == 0 {
		for _, c := range committed {
			want[c.Topic] = append(want[c.Topic], c.Partition)
		}
	} else {
		for _, t := range topics {
			want[t] = nil // every partition
		}
	}
	if len(want) == 0 {
		return nil, nil
	}

	var plan OffsetResults
	switch to.kind {
	case resetEarliest, resetLatest, resetTimestamp:
		at := map[int8]int64{resetEarliest: OffsetEarliest, resetLatest: OffsetLatest, resetTimestamp: to.value}[to.kind]
		listed, err := a.ListOffsets(ctx, at, want)
		if err != nil {
			return nil, err
		}
		var ends ListedOffsets
		if to.kind == resetTimestamp {
			if ends, err = a.ListOffsets(ctx, OffsetLatest, want); err != nil {
				return nil, err
			}
		}
		for _, l := range listed {
			r := OffsetResult{PartitionOffset: PartitionOffset{Topic: l.Topic, Partition: l.Partition, At: l.Offset, LeaderEpoch: l.LeaderEpoch}, Err: l.Err}
			if to.kind == resetTimestamp && l.Err == nil && l.Offset < 0 {
				e, _ := ends.Lookup(l.Topic, l.Partition)
				r.At, r.LeaderEpoch, r.Err = e.Offset, e.LeaderEpoch, e.Err
			}
			plan = append(plan, r)
		}
	case resetShift:
		starts, err := a.ListOffsets(ctx, OffsetEarliest, want)
		if err != nil {
			return nil, err
		}
		ends, err := a.ListOffsets(ctx, OffsetLatest, want)
		if err != nil {
			return nil, err
		}
		for _, s := range starts {
			r := OffsetResult{PartitionOffset: PartitionOffset{Topic: s.Topic, Partition: s.Partition, LeaderEpoch: -1}}
			e, _ := ends.Lookup(s.Topic, s.Partition)
			c, ok := committed.Lookup(s.Topic, s.Partition)
			switch {
			case s.Err != nil:
				r.Err = s.Err
			case e.Err != nil:
				r.Err = e.Err
			case !ok:
				r.Err = ErrNoCommittedOffset
			case c.Err != nil:
				r.Err = c.Err
			default:
				r.At = min(max(c.At+to.value, s.Offset), e.Offset)
				r.Metadata = c.Metadata
			}
			plan = append(plan, r)
		}
	}
	sortOffsetResults(plan)
	if co.validateOnly {
		return plan, nil
	}
	var commit []PartitionOffset
	for _, p := range plan {
		if p.Err == nil {
			commit = append(commit, p.PartitionOffset)
		}
	}
	if len(commit) == 0 {
		return plan, nil
	}
	done, err := a.CommitOffsets(ctx, group, commit...)
	if err != nil {
		return nil, err
	}
	for i, p := range plan {
		if p.Err != nil {
			continue
		}
		if d, ok := done.Lookup(p.Topic, p.Partition); ok {
			plan[i].Err = d.Err
		}
	}
	return plan, nil
}

// PartitionLag is one partition's lag for a group.
type PartitionLag struct {
	Topic     string
	Partition int32
	// Committed is the group's committed offset, -1 if it has none.
	Committed int64
	// Start and End are the partition's log start and end offsets, -1 if
	// unknown (see Err).
	Start, End int64
	// Lag is End - Committed, at least 0. With nothing committed it is
	// End - Start: every retained record is still to be read. -1 if End is
	// unknown.
	Lag int64
	// MemberID is the member the partition is assigned to, "" if none.
	MemberID string
	Err      error
}

// GroupLag is one group's lag.
type GroupLag struct {
	Group string
	// State is the group's state from DescribeGroups.
	State string
	// Partitions are every partition the group has committed to or has
	// assigned, sorted by topic and partition.
	Partitions []PartitionLag
	// Total sums the non-negative partition lags.
	Total int64
	// Err is set when the group could not be described or its offsets not
	// fetched.
	Err error
}

// GroupLags are Lag's results in request order.
type GroupLags []GroupLag

// FirstErr returns the first failed group's error, naming it, or nil.
// Partition errors are in each group's Partitions.
func (ls GroupLags) FirstErr() error {
	return firstErr(ls, func(l GroupLag) (string, error) { return l.Group, l.Err })
}

// Lag computes each group's lag per partition: its committed offsets
// (FetchOffsets) against end offsets (ListOffsets), over the partitions it
// committed to and, for consumer groups, the partitions assigned to its
// members.
func (a *Client) Lag(ctx context.Context, groups ...string) (GroupLags, error) {
	described, err := a.DescribeGroups(ctx, groups...)
	if err != nil {
		return nil, err
	}
	out := make(GroupLags, len(groups))
	for i, d := range described {
		out[i] = a.groupLag(ctx, d)
	}
	return out, nil
}

func (a *Client) groupLag(ctx context.Context, d DescribedGroup) GroupLag {
	gl := GroupLag{Group: d.Group, State: d.State}
	if d.Err != nil {
		gl.Err = d.Err
		return gl
	}
	committed, err := a.FetchOffsets(ctx, d.Group)
	if err != nil {
		gl.Err = err
		return gl
	}
	type tp = tributary.TopicPartition
	owner := make(map[tp]string)
	for _, m := range d.Members {
		if m.Assignment == nil {
			continue
		}
		for t, ps := range m.Assignment.Partitions {
			for _, p := range ps {
				owner[tp{Topic: t, Partition: p}] = m.MemberID
			}
		}
	}
	parts := make(map[tp]bool)
	want := make(map[string][]int32)
	add := func(k tp) {
		if !parts[k] {
			parts[k] = true
			want[k.Topic] = append(want[k.Topic], k.Partition)
		}
	}
	for _, c := range committed {
		add(tp{Topic: c.Topic, Partition: c.Partition})
	}
	for k := range owner {
		add(k)
	}
	if len(want) == 0 {
		return gl
	}
	ends, err := a.ListOffsets(ctx, OffsetLatest, want)
	if err != nil {
		gl.Err = err
		return gl
	}
	starts, err := a.ListOffsets(ctx, OffsetEarliest, want)
	if err != nil {
		gl.Err = err
		return gl
	}
	for k := range parts {
		pl := PartitionLag{Topic: k.Topic, Partition: k.Partition, Committed: -1, Start: -1, End: -1, Lag: -1, MemberID: owner[k]}
		if c, ok := committed.Lookup(k.Topic, k.Partition); ok {
			if c.Err != nil {
				pl.Err = c.Err
			} else {
				pl.Committed = c.At
			}
		}
		if s, ok := starts.Lookup(k.Topic, k.Partition); ok && s.Err == nil {
			pl.Start = s.Offset
		}
		e, ok := ends.Lookup(k.Topic, k.Partition)
		switch {
		case !ok:
			pl.Err = errors.Join(pl.Err, ErrNoResponse)
		case e.Err != nil:
			pl.Err = errors.Join(pl.Err, e.Err)
		default:
			pl.End = e.Offset
			switch {
			case pl.Committed >= 0:
				pl.Lag = max(pl.End-pl.Committed, 0)
			case pl.Start >= 0:
				pl.Lag = max(pl.End-pl.Start, 0)
			}
		}
		if pl.Lag > 0 {
			gl.Total += pl.Lag
		}
		gl.Partitions = append(gl.Partitions, pl)
	}
	sort.Slice(gl.Partitions, func(i, j int) bool {
		return tpLess(gl.Partitions[i].Topic, gl.Partitions[i].Partition, gl.Partitions[j].Topic, gl.Partitions[j].Partition)
	})
	return gl
}
