package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/partitioner"
	"github.com/tributary/tributary/producer"
)

var produceCmd = &leaf{
	name:    "produce",
	args:    "TOPIC [-k SEPARATOR] [-H key=value]... [-p PARTITION] [-i FILE]",
	summary: "produce one record per line of stdin (or a file)",
	flags:   produce,
}

// maxLine bounds one input line, and so one record; larger lines fail
// with a clear error rather than exhausting memory.
const maxLine = 16 << 20

type produceSummaryJSON struct {
	Topic      string                  `json:"topic"`
	Records    int                     `json:"records"`
	Partitions []producedPartitionJSON `json:"partitions"`
}

type producedPartitionJSON struct {
	Partition   int32 `json:"partition"`
	Records     int   `json:"records"`
	FirstOffset int64 `json:"first_offset"`
	LastOffset  int64 `json:"last_offset"`
}

func produce(f *flagSet) func(context.Context, *tool, []string) error {
	var keySep, file string
	var headers []string
	var partition int
	f.String(&keySep, "k", "key-separator", "SEP", "", "split each line at the first SEP into key and value (default: no key)")
	f.List(&headers, "H", "header", "key=value", false, "header added to every record (repeatable)")
	f.Int(&partition, "p", "partition", "N", -1, "produce to this partition (-1: the default partitioner, murmur2 of the key like Java)")
	// -i, not -f: -f is consume's print format, and a flag means one
	// thing across commands.
	f.String(&file, "i", "input", "FILE", "", "read records from FILE instead of stdin")
	return func(ctx context.Context, t *tool, args []string) error {
		if len(args) != 1 {
			return usagef("name exactly one topic")
		}
		topic := args[0]
		if partition < -1 {
			return usagef("-p must be a partition number, or -1")
		}
		var hdrs []tributary.Header
		for _, h := range headers {
			k, v, ok := strings.Cut(h, "=")
			if !ok || k == "" {
				return usagef("-H %q is not key=value", h)
			}
			hdrs = append(hdrs, tributary.Header{Key: k, Value: []byte(v)})
		}
		in := t.stdin
		if file != "" {
			fh, err := os.Open(file)
			if err != nil {
				return err
			}
			defer fh.Close()
			in = fh
		}
		opts := []producer.Opt{producer.ClientOptions(t.clientOpts()...), producer.Linger(5 * time.Millisecond)}
		if partition >= 0 {
			opts = append(opts, producer.Partitioner(partitioner.Manual()))
		}
		p, err := producer.New(opts...)
		if err != nil {
			return err
		}
		defer p.Close(context.Background())
		// Learn the topic (and whether the cluster is there at all) before
		// reading input: the producer itself would retry for its whole
		// DeliveryTimeout.
		if _, err := checkTopic(ctx, p.Client(), topic, int32(partition)); err != nil {
			return err
		}

		var (
			mu      sync.Mutex
			failed  error
			nfailed int
			parts   = map[int32]*producedPartitionJSON{}
		)
		cb := func(r *tributary.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				nfailed++
				if failed == nil {
					failed = err
				}
				return
			}
			pp := parts[r.Partition]
			if pp == nil {
				pp = &producedPartitionJSON{Partition: r.Partition, FirstOffset: r.Offset, LastOffset: r.Offset}
				parts[r.Partition] = pp
			}
			pp.Records++
			pp.FirstOffset = min(pp.FirstOffset, r.Offset)
			pp.LastOffset = max(pp.LastOffset, r.Offset)
		}
		hasFailed := func() bool {
			mu.Lock()
			defer mu.Unlock()
			return failed != nil
		}

		br := bufio.NewReaderSize(in, 64<<10)
		n := 0
		for line := 1; ; line++ {
			text, err := readLine(br)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("reading line %d: %w", line, err)
			}
			r := &tributary.Record{Topic: topic, Value: []byte(text), Headers: hdrs}
			if keySep != "" {
				k, v, ok := strings.Cut(text, keySep)
				if !ok {
					return fmt.Errorf("line %d has no key separator %q", line, keySep)
				}
				r.Key, r.Value = []byte(k), []byte(v)
			}
			if partition >= 0 {
				r.Partition = int32(partition)
			}
			p.Produce(ctx, r, cb)
			n++
			if hasFailed() || ctx.Err() != nil {
				break
			}
		}
		if err := p.Flush(ctx); err != nil && !hasFailed() {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if failed != nil {
			return fmt.Errorf("%d of %d records were not produced to %q: %w", nfailed, n, topic, failed)
		}
		out := produceSummaryJSON{Topic: topic, Records: n, Partitions: []producedPartitionJSON{}}
		for id := int32(0); len(out.Partitions) < len(parts); id++ {
			if pp := parts[id]; pp != nil {
				out.Partitions = append(out.Partitions, *pp)
			}
		}
		if t.json() {
			return writeJSON(t.stdout, out)
		}
		fmt.Fprintf(t.stdout, "Produced %d records to %q.\n", n, topic)
		return nil
	}
}

// readLine returns the next line without its "\n" (a final line without
// one counts), or io.EOF when the input is done.
func readLine(br *bufio.Reader) (string, error) {
	var sb strings.Builder
	for {
		chunk, err := br.ReadSlice('\n')
		if sb.Len()+len(chunk) > maxLine {
			return "", fmt.Errorf("line longer than %d bytes", maxLine)
		}
		sb.Write(chunk)
		switch {
		case err == nil:
			s := sb.String()
			return s[:len(s)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && sb.Len() > 0:
			return sb.String(), nil
		default:
			return "", err
		}
	}
}
