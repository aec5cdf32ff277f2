package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/admin"
	"github.com/tributary/tributary/client"
	"github.com/tributary/tributary/consumer"
)

var consumeCmd = &leaf{
	name:    "consume",
	args:    "TOPIC... [-g GROUP] [-p PARTITION]... [-o start|end|OFFSET|-N|@UNIX_MS] [-e [end|OFFSET|@UNIX_MS]] [-n COUNT] [-f FORMAT]",
	summary: "consume records and print them, one per line by default",
	flags:   consume,
}

// checkTopic makes sure topic exists (with at least partition+1
// partitions when partition >= 0) and returns its partitions. A
// cluster that cannot be reached fails here, within seconds, instead of
// in a producer or consumer that would retry for minutes.
func checkTopic(ctx context.Context, cl *client.Client, topic string, partition int32) ([]client.PartitionMetadata, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		ps, err := cl.TopicPartitions(ctx, topic)
		switch {
		case err == nil && len(ps) > 0:
			if partition >= int32(len(ps)) {
				return nil, fmt.Errorf("topic %q has %d partitions; there is no partition %d", topic, len(ps), partition)
			}
			return ps, nil
		case err != nil && errors.Is(err, tributary.ErrUnknownTopicOrPartition):
			return nil, notFoundError{"topic", topic}
		case err != nil && !tributary.IsRetriable(err):
			return nil, err
		}
		// A topic just created by this request has no leaders yet.
		select {
		case <-ctx.Done():
			if err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("topic %q has no partitions yet", topic)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// recordFormat is a compiled -f FORMAT.
type recordFormat []func(b []byte, r *tributary.Record) []byte

// parseFormat compiles a format of literal text, the verbs %t (topic),
// %p (partition), %o (offset), %k (key), %v (value), %h (headers as
// k=v,k=v), %T (timestamp, Unix ms) and %%, and the escapes \n, \t, \r, \\.
func parseFormat(s string) (recordFormat, error) {
	var out recordFormat
	var lit []byte
	flushLit := func() {
		if len(lit) > 0 {
			l := slices.Clone(lit)
			out = append(out, func(b []byte, _ *tributary.Record) []byte { return append(b, l...) })
			lit = lit[:0]
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			switch s[i] {
			case 'n':
				lit = append(lit, '\n')
			case 't':
				lit = append(lit, '\t')
			case 'r':
				lit = append(lit, '\r')
			case '\\':
				lit = append(lit, '\\')
			default:
				return nil, usagef("-f %q: unknown escape \\%c (use \\n, \\t, \\r or \\\\)", s, s[i])
			}
		case c == '%' && i+1 < len(s):
			i++
			var fn func(b []byte, r *tributary.Record) []byte
			switch s[i] {
			case '%':
				lit = append(lit, '%')
				continue
			case 't':
				fn = func(b []byte, r *tributary.Record) []byte { return append(b, r.Topic...) }
			case 'p':
				fn = func(b []byte, r *tributary.Record) []byte { return strconv.AppendInt(b, int64(r.Partition), 10) }
			case 'o':
				fn = func(b []byte, r *tributary.Record) []byte { return strconv.AppendInt(b, r.Offset, 10) }
			case 'k':
				fn = func(b []byte, r *tributary.Record) []byte { return append(b, r.Key...) }
			case 'v':
				fn = func(b []byte, r *tributary.Record) []byte { return append(b, r.Value...) }
			case 'T':
				fn = func(b []byte, r *tributary.Record) []byte { return strconv.AppendInt(b, r.Timestamp.UnixMilli(), 10) }
			case 'h':
				fn = func(b []byte, r *tributary.Record) []byte {
					for j, h := range r.Headers {
						if j > 0 {
							b = append(b, ',')
						}
						b = append(b, h.Key...)
						b = append(b, '=')
						b = append(b, h.Value...)
					}
					return b
				}
			default:
				return nil, usagef("-f %q: unknown verb %%%c (use %%t %%p %%o %%k %%v %%h %%T or %%%%)", s, s[i])
			}
			flushLit()
			out = append(out, fn)
		case c == '%' || c == '\\':
			return nil, usagef("-f %q ends in the middle of %c", s, c)
		default:
			lit = append(lit, c)
		}
	}
	flushLit()
	return out, nil
}

func (f recordFormat) append(b []byte, r *tributary.Record) []byte {
	for _, fn := range f {
		b = fn(b, r)
	}
	return b
}

type headerJSON struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type recordJSON struct {
	Topic     string       `json:"topic"`
	Partition int32        `json:"partition"`
	Offset    int64        `json:"offset"`
	Timestamp int64        `json:"timestamp"`
	Key       *string      `json:"key"`
	Value     *string      `json:"value"`
	Headers   []headerJSON `json:"headers"`
}

func bytesPtr(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}

// startOffset is a parsed -o.
type startOffset struct {
	at     int64 // consumer.Earliest, consumer.Latest or an offset
	millis int64 // -1 unless @UNIX_MS
	last   int64 // N of -N: the last N records; 0 otherwise
}

func parseStart(s string) (startOffset, error) {
	switch {
	case s == "start" || s == "earliest" || s == "beginning":
		return startOffset{at: consumer.Earliest, millis: -1}, nil
	case s == "end" || s == "latest":
		return startOffset{at: consumer.Latest, millis: -1}, nil
	case strings.HasPrefix(s, "@"):
		ms, err := strconv.ParseInt(s[1:], 10, 64)
		if err != nil || ms < 0 {
			return startOffset{}, usagef("-o %q: @ needs a Unix time in milliseconds", s)
		}
		return startOffset{millis: ms}, nil
	case strings.HasPrefix(s, "-"):
		n, err := strconv.ParseInt(s[1:], 10, 64)
		if err != nil || n <= 0 {
			return startOffset{}, usagef("-o %q: -N needs a positive number of records", s)
		}
		return startOffset{at: consumer.Latest, millis: -1, last: n}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return startOffset{}, usagef("-o %q is not start, end, an OFFSET, -N or @UNIX_MS", s)
	}
	return startOffset{at: n, millis: -1}, nil
}

// endBound is a parsed -e: where each partition stops. Offsets are
// exclusive, as -o's are inclusive: -o 4 -e 8 prints offsets 4 to 7.
type endBound struct {
	set    bool
	atEnd  bool  // "end": the end offsets when the command starts
	offset int64 // -1 unless OFFSET
	millis int64 // -1 unless @UNIX_MS: stop before the first record at or after it
}

// isEndValue reports whether a word after -e is its value rather than
// the next argument (a bare -e means "end").
// A topic name cannot hold '@', so any @word is -e's (and a bad one is
// reported as such); a topic named only by digits must come before -e.
func isEndValue(s string) bool {
	if s == "end" || strings.HasPrefix(s, "@") {
		return true
	}
	_, err := strconv.ParseUint(s, 10, 63)
	return err == nil
}

func parseEnd(s string) (endBound, error) {
	switch {
	case s == "":
		return endBound{offset: -1, millis: -1}, nil
	case s == "end":
		return endBound{set: true, atEnd: true, offset: -1, millis: -1}, nil
	case strings.HasPrefix(s, "@"):
		ms, err := strconv.ParseInt(s[1:], 10, 64)
		if err != nil || ms < 0 {
			return endBound{}, usagef("-e %q: @ needs a Unix time in milliseconds", s)
		}
		return endBound{set: true, offset: -1, millis: ms}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return endBound{}, usagef("-e %q is not end, an OFFSET or @UNIX_MS", s)
	}
	return endBound{set: true, offset: n, millis: -1}, nil
}

func consume(f *flagSet) func(context.Context, *tool, []string) error {
	var group, offset, end, format string
	var partitions []string
	var count int
	f.String(&group, "g", "group", "GROUP", "", "consume as a member of GROUP, committing what is printed (default: no group, every partition)")
	f.List(&partitions, "p", "partition", "PARTITION", true, "consume only this partition (repeatable or comma-separated; not with -g)")
	f.String(&offset, "o", "offset", "WHERE", "start", "where to start: start, end, an OFFSET, -N (the last N records: N offsets before the end) or @UNIX_MS (the first record at or after it), in every partition; with -g only start or end, where the group has no committed offset")
	f.Optional(&end, "e", "end", "END", "end", isEndValue, "where to stop and exit, in every partition: end (the default for a bare -e: the end offsets when the command starts), an OFFSET (exclusive: -o 4 -e 8 prints 4 to 7) or @UNIX_MS (before the first record at or after it); default: never stop", "exit-at-end")
	f.Int(&count, "n", "num", "COUNT", 0, "exit after COUNT records (0: no limit)")
	f.String(&format, "f", "print-format", "FORMAT", `%v\n`, "how to print a record: %t topic, %p partition, %o offset, %k key, %v value, %h headers, %T timestamp (ms), \\n")
	return func(ctx context.Context, t *tool, args []string) error {
		if len(args) == 0 {
			return usagef("name at least one topic")
		}
		topics := slices.Compact(slices.Sorted(slices.Values(args)))
		start, err := parseStart(offset)
		if err != nil {
			return err
		}
		stop, err := parseEnd(end)
		if err != nil {
			return err
		}
		if group != "" && (start.millis >= 0 || start.at >= 0 || start.last > 0) {
			return usagef("with -g, -o must be start or end (where the group starts without committed offsets); move a group with 'tributary group seek'")
		}
		var only []int32
		for _, p := range partitions {
			n, err := strconv.ParseInt(p, 10, 32)
			if err != nil || n < 0 {
				return usagef("-p %q is not a partition number", p)
			}
			only = append(only, int32(n))
		}
		only = slices.Compact(slices.Sorted(slices.Values(only)))
		if group != "" && len(only) > 0 {
			return usagef("-p cannot be used with -g: the group assigns the partitions")
		}
		if count < 0 {
			return usagef("-n must not be negative")
		}
		fmtr, err := parseFormat(format)
		if err != nil {
			return err
		}

		cl, err := client.New(t.clientOpts()...)
		if err != nil {
			return err
		}
		defer cl.Close()
		a, err := admin.New(admin.WithClient(cl))
		if err != nil {
			return err
		}
		var all []tributary.TopicPartition
		for _, tp := range topics {
			maxP := int32(-1)
			if len(only) > 0 {
				maxP = only[len(only)-1]
			}
			ps, err := checkTopic(ctx, cl, tp, maxP)
			if err != nil {
				return err
			}
			for _, p := range ps {
				if len(only) == 0 || slices.Contains(only, p.Partition) {
					all = append(all, tributary.TopicPartition{Topic: tp, Partition: p.Partition})
				}
			}
		}
		listed := func(list func(context.Context, ...string) (admin.ListedOffsets, error)) (map[tributary.TopicPartition]int64, error) {
			l, err := list(ctx, topics...)
			if err != nil {
				return nil, err
			}
			out := map[tributary.TopicPartition]int64{}
			for _, tp := range all {
				o, ok := l.Lookup(tp.Topic, tp.Partition)
				if !ok {
					continue
				}
				if o.Err != nil {
					return nil, topicErr(tp.Topic, o.Err)
				}
				out[tp] = o.Offset
			}
			return out, nil
		}
		// ends are the exclusive end offsets of -e, per partition.
		var ends map[tributary.TopicPartition]int64
		switch {
		case stop.atEnd:
			if ends, err = listed(a.ListEndOffsets); err != nil {
				return err
			}
		case stop.offset >= 0:
			ends = map[tributary.TopicPartition]int64{}
			for _, tp := range all {
				ends[tp] = stop.offset
			}
		case stop.millis >= 0:
			// Records at or after the time already written end there;
			// elsewhere a record yet to come may, so -e also checks
			// each record's timestamp.
			if ends, err = listed(a.ListEndOffsets); err != nil {
				return err
			}
			after, err := listed(func(ctx context.Context, topics ...string) (admin.ListedOffsets, error) {
				return a.ListOffsetsAfterMilli(ctx, stop.millis, topics...)
			})
			if err != nil {
				return err
			}
			future := stop.millis > time.Now().UnixMilli()
			for tp, o := range after {
				switch {
				case o >= 0 && o < ends[tp]:
					ends[tp] = o
				case future:
					delete(ends, tp) // nothing that recent yet: watch timestamps
				}
				// Otherwise records to come are newer than a past
				// time: the partition ends where it ends now.
			}
		}

		opts := []consumer.Opt{consumer.WithClient(cl)}
		if group != "" {
			reset := consumer.ResetEarliest
			if start.at == consumer.Latest {
				reset = consumer.ResetLatest
			}
			opts = append(opts, consumer.Group(group), consumer.Topics(topics...), consumer.AutoCommit(false), consumer.AutoOffsetReset(reset))
		} else {
			opts = append(opts, consumer.AutoOffsetReset(consumer.ResetLatest))
		}
		c, err := consumer.New(opts...)
		if err != nil {
			return err
		}
		// Close leaves the group; it must not wait forever on a cluster
		// that went away.
		defer func() {
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c.Close(cctx)
		}()
		if group == "" {
			offs := make(map[tributary.TopicPartition]int64, len(all))
			for _, tp := range all {
				offs[tp] = start.at
			}
			switch {
			case start.millis >= 0:
				at, err := listed(func(ctx context.Context, topics ...string) (admin.ListedOffsets, error) {
					return a.ListOffsetsAfterMilli(ctx, start.millis, topics...)
				})
				if err != nil {
					return err
				}
				for _, tp := range all {
					offs[tp] = consumer.Latest // no record at or after the time
					if o, ok := at[tp]; ok && o >= 0 {
						offs[tp] = o
					}
				}
			case start.last > 0:
				first, err := listed(a.ListStartOffsets)
				if err != nil {
					return err
				}
				last, err := listed(a.ListEndOffsets)
				if err != nil {
					return err
				}
				for _, tp := range all {
					offs[tp] = max(last[tp]-start.last, first[tp], 0)
				}
			}
			if err := c.AssignOffsets(offs); err != nil {
				return err
			}
		}

		// done holds the partitions that reached their -e bound; they are
		// paused so nothing more of them is fetched.
		done := map[tributary.TopicPartition]bool{}
		finish := func(tp tributary.TopicPartition) {
			if !done[tp] {
				done[tp] = true
				c.Pause(tp)
			}
		}
		// atEnd reports whether every partition this consumer owns has
		// reached its -e bound.
		atEnd := func() bool {
			owned := c.Assignment()
			if len(owned) == 0 {
				return false
			}
			finished := true
			for _, tp := range owned {
				if done[tp] {
					continue
				}
				e, ok := ends[tp]
				pos, err := c.Position(tp)
				if ok && err == nil && pos >= e && pos >= 0 {
					finish(tp)
					continue
				}
				finished = false
			}
			return finished
		}
		// keep drops the records beyond -e, finishing their partitions.
		keep := func(recs []*tributary.Record) []*tributary.Record {
			out := recs[:0:0]
			for _, r := range recs {
				tp := tributary.TopicPartition{Topic: r.Topic, Partition: r.Partition}
				if done[tp] {
					continue
				}
				if e, ok := ends[tp]; ok && r.Offset >= e || stop.millis >= 0 && r.Timestamp.UnixMilli() >= stop.millis {
					finish(tp)
					continue
				}
				out = append(out, r)
			}
			return out
		}

		w := bufio.NewWriterSize(t.stdout, 64<<10)
		defer w.Flush()
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		var buf []byte
		printed := 0
		for {
			if stop.set && atEnd() {
				return nil
			}
			pctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
			recs, err := c.Poll(pctx)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return nil // interrupted: what was printed stands
				}
				if errors.Is(err, context.DeadlineExceeded) {
					w.Flush()
					continue
				}
				if errors.Is(err, tributary.ErrUnknownTopicOrPartition) {
					return fmt.Errorf("a topic of %q no longer exists: %w", topics, err)
				}
				if !tributary.IsRetriable(err) && !errors.Is(err, client.ErrConnection) {
					return err
				}
				fmt.Fprintf(t.stderr, "tributary consume: %s (retrying)\n", t.explain(err))
				continue
			}
			if stop.set {
				recs = keep(recs)
			}
			if count > 0 && printed+len(recs) > count {
				recs = recs[:count-printed]
			}
			for _, r := range recs {
				if t.json() {
					rj := recordJSON{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UnixMilli(),
						Key: bytesPtr(r.Key), Value: bytesPtr(r.Value), Headers: []headerJSON{}}
					for _, h := range r.Headers {
						rj.Headers = append(rj.Headers, headerJSON{Key: h.Key, Value: string(h.Value)})
					}
					if err := enc.Encode(rj); err != nil {
						return err
					}
				} else {
					buf = fmtr.append(buf[:0], r)
					if _, err := w.Write(buf); err != nil {
						return err
					}
				}
			}
			printed += len(recs)
			if err := w.Flush(); err != nil {
				if errors.Is(err, io.ErrClosedPipe) {
					return nil
				}
				return err
			}
			if group != "" && len(recs) > 0 {
				if err := c.Commit(ctx, recs...); err != nil && ctx.Err() == nil {
					fmt.Fprintf(t.stderr, "tributary consume: committing offsets: %s\n", t.explain(err))
				}
			}
			if count > 0 && printed >= count {
				return nil
			}
		}
	}
}
