package replica

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/batch/batchtest"
)

// BenchmarkAcksAll measures acks=all throughput of one partition through
// RF 1 and RF 3 in one process: real logs (page cache, no fsync), the
// replication protocol of this package, and the test transport in place
// of TCP (it copies the fetched bytes, as a socket would). Eight
// producers each keep one 100-record batch of 100-byte values in
// flight, as a producer with linger would.
//
//	go test -run XXX -bench AcksAll -benchtime 20000x ./broker/replica/
func BenchmarkAcksAll(b *testing.B) {
	for _, rf := range []int{1, 3} {
		b.Run(fmt.Sprintf("rf%d", rf), func(b *testing.B) {
			c := newCluster(b, rf, nil)
			p := c.node(1).p
			const perBatch, producers = 100, 8
			recs := batchtest.Values(perBatch, 100)
			minISR := min(rf, 2)
			var wg sync.WaitGroup
			work := make(chan struct{}, b.N)
			for range b.N {
				work <- struct{}{}
			}
			close(work)
			b.ResetTimer()
			start := time.Now()
			for range producers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range work {
						r, err := p.AppendAsLeader(batchtest.Build(batchtest.NonIdempotent(start.UnixMilli()), recs...), -1, minISR)
						if err != nil {
							b.Error(err)
							return
						}
						c.notify()
						for {
							ch := c.changes()
							done, err := p.AckedAfterAppend(r.LastOffset+1, minISR)
							if done {
								if err != nil {
									b.Error(err)
								}
								break
							}
							<-ch
						}
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			b.ReportMetric(float64(b.N*perBatch)/el.Seconds(), "records/s")
		})
	}
}
