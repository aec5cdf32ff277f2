package partitioner

import (
	"fmt"
	"testing"

	"github.com/tributary/tributary"
	"github.com/twmb/franz-go/pkg/kgo"
)

func benchKey(n int) []byte {
	k := make([]byte, n)
	for i := range k {
		k[i] = byte('a' + i%26)
	}
	return k
}

// BenchmarkPartition measures the per-record cost the producer pays. The
// keyless cases include the sticky lookup; -benchmem must show 0 allocs.
func BenchmarkPartition(b *testing.B) {
	for _, bc := range []struct {
		name string
		p    Partitioner
		key  []byte
	}{
		{"Murmur2/key16", Murmur2(), benchKey(16)},
		{"Murmur2/key128", Murmur2(), benchKey(128)},
		{"XXHash/key16", XXHash(), benchKey(16)},
		{"XXHash/key128", XXHash(), benchKey(128)},
		{"Sarama/key16", Sarama(), benchKey(16)},
		{"Default/keyless", Default(), nil},
		{"Sticky/keyless", Sticky(), nil},
		{"RoundRobin", RoundRobin(), nil},
		{"Manual", Manual(), nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := &tributary.Record{Topic: "orders", Key: bc.key}
			b.ReportAllocs()
			for b.Loop() {
				r.Partition = bc.p.Partition(r, 12)
			}
		})
	}
}

// BenchmarkPartitionParallel is the contended case: every core producing
// to the same topic. Sticky only reads shared state between switches;
// RoundRobin writes one counter per record.
func BenchmarkPartitionParallel(b *testing.B) {
	for _, bc := range []struct {
		name string
		p    Partitioner
		key  []byte
	}{
		{"Murmur2/key16", Murmur2(), benchKey(16)},
		{"Sticky/keyless", Sticky(), nil},
		{"RoundRobin", RoundRobin(), nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r := &tributary.Record{Topic: "orders", Key: bc.key}
				for pb.Next() {
					r.Partition = bc.p.Partition(r, 12)
				}
			})
		})
	}
}

// BenchmarkStickySwitch is one batch completion plus the next record.
func BenchmarkStickySwitch(b *testing.B) {
	p := Sticky()
	obs := p.(BatchObserver)
	r := &tributary.Record{Topic: "orders"}
	cur := p.Partition(r, 12)
	b.ReportAllocs()
	for b.Loop() {
		obs.OnNewBatch("orders", cur, 12)
		cur = p.Partition(r, 12)
	}
}

// BenchmarkKgoStickyKeyPartitioner is franz-go's Java-compatible keyed
// partitioner, for comparison with Murmur2/key16 and key128.
func BenchmarkKgoStickyKeyPartitioner(b *testing.B) {
	for _, size := range []int{16, 128} {
		b.Run(fmt.Sprintf("key%d", size), func(b *testing.B) {
			tp := kgo.StickyKeyPartitioner(nil).ForTopic("orders")
			r := &kgo.Record{Topic: "orders", Key: benchKey(size)}
			b.ReportAllocs()
			for b.Loop() {
				_ = tp.Partition(r, 12)
			}
		})
	}
}
