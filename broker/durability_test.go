package broker_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tributary/tributary/broker/brokertest"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestDurabilityKill9 is the crash test of the data path: a broker
// process is killed with SIGKILL while an idempotent acks=all producer
// streams to it, restarted on the same log dir, and every record the
// producer saw acknowledged must be there, once, in produce order.
// Records in flight at the kill may or may not have been stored, but
// never twice and never out of order.
func TestDurabilityKill9(t *testing.T) {
	pad := "-" + strings.Repeat("p", 80) // bulk, so segments fill and roll
	valueOf := func(r *kgo.Record) int {
		v, _, _ := strings.Cut(string(r.Value), "-")
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Errorf("bad value %q", r.Value)
		}
		return n
	}
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	for round := range 3 {
		t.Run(fmt.Sprint("round", round), func(t *testing.T) {
			dir := t.TempDir()
			// Later rounds roll small segments, so the kill can land
			// around a roll and recovery spans several segments.
			var overrides []string
			if round > 0 {
				overrides = append(overrides, "log.segment.bytes=1048576")
			}
			p := brokertest.StartProcess(t, dir, overrides...)
			createTopic(t, p.Addr(), "dur", 2, nil)

			cl, err := kgo.NewClient(kgo.SeedBrokers(p.Addr()), kgo.DefaultProduceTopic("dur"),
				kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(time.Millisecond),
				kgo.ProducerBatchMaxBytes(16<<10), // many small requests, so some are in flight at the kill
				kgo.ProducerBatchCompression(kgo.NoCompression()),
				kgo.RecordDeliveryTimeout(5*time.Second), kgo.RetryTimeout(5*time.Second))
			require.NoError(t, err)

			var (
				mu    sync.Mutex
				acked = map[int32][]int{} // partition → values acknowledged, in ack order
			)
			ctx, cancel := context.WithCancel(context.Background())
			produced := make(chan struct{})
			go func() {
				defer close(produced)
				for i := 0; ctx.Err() == nil; i++ {
					cl.Produce(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i % 7)), Value: []byte(strconv.Itoa(i) + pad)}, func(r *kgo.Record, err error) {
						if err != nil {
							return
						}
						v := valueOf(r)
						mu.Lock()
						acked[r.Partition] = append(acked[r.Partition], v)
						mu.Unlock()
					})
				}
			}()

			// Kill once a few thousand records are acknowledged (the
			// stream is then mid-flight), or after a bound.
			deadline := time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) {
				mu.Lock()
				n := len(acked[0]) + len(acked[1])
				mu.Unlock()
				if n >= 3000+round*20000 {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(time.Duration(rand.IntN(100)) * time.Millisecond) // not in step with the acks
			p.Kill()
			cancel()
			<-produced
			cl.Close() // fails what is still buffered; those were never acknowledged

			mu.Lock()
			want := map[int32][]int{0: acked[0], 1: acked[1]}
			total := len(want[0]) + len(want[1])
			mu.Unlock()
			require.Greater(t, total, 0, "nothing was acknowledged before the kill")

			if round > 0 {
				segs, _ := filepath.Glob(filepath.Join(dir, "dur-*", "*.log"))
				require.Greater(t, len(segs), 2, "expected rolled segments")
			}
			p2 := brokertest.StartProcess(t, dir, overrides...)
			got := map[int32][]int{}
			cons, err := kgo.NewClient(kgo.SeedBrokers(p2.Addr()), kgo.ConsumeTopics("dur"),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
			require.NoError(t, err)
			defer cons.Close()
			// Read to the end offsets the restarted broker reports.
			ends := map[int32]int64{}
			for part := range int32(2) {
				ends[part] = endOffset(t, p2.Addr(), "dur", part)
			}
			pctx, pcancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer pcancel()
			for got0, got1 := int64(0), int64(0); got0 < ends[0] || got1 < ends[1]; {
				fs := cons.PollFetches(pctx)
				if err := pctx.Err(); err != nil {
					t.Fatalf("consuming after restart: %v (have %d/%d, %d/%d)", err, got0, ends[0], got1, ends[1])
				}
				for _, e := range fs.Errors() {
					if !errors.Is(e.Err, context.DeadlineExceeded) {
						require.NoError(t, e.Err)
					}
				}
				fs.EachRecord(func(r *kgo.Record) {
					v := valueOf(r)
					require.Equal(t, int64(len(got[r.Partition])), r.Offset, "offsets are dense from 0")
					got[r.Partition] = append(got[r.Partition], v)
					if r.Partition == 0 {
						got0 = r.Offset + 1
					} else {
						got1 = r.Offset + 1
					}
				})
			}

			for part := range int32(2) {
				g := got[part]
				for i := 1; i < len(g); i++ {
					require.Less(t, g[i-1], g[i], "partition %d: duplicate or reordered record at offset %d", part, i)
				}
				have := make(map[int]bool, len(g))
				for _, v := range g {
					have[v] = true
				}
				for _, v := range want[part] {
					require.True(t, have[v], "partition %d: acknowledged record %d lost", part, v)
				}
			}
			t.Logf("acknowledged %d, stored %d", total, len(got[0])+len(got[1]))
		})
	}
}
