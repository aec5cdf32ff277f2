package txn

import (
	"testing"
	"time"
)

// BenchmarkTransactionCycle measures one whole transaction through the
// coordinator: two AddPartitionsToTxn, AddOffsetsToTxn, EndTxn (commit)
// and MarkersWritten, with every record encoded, for a pool of producers.
func BenchmarkTransactionCycle(b *testing.B) {
	h := newHarness(b)
	ps := make([]*producer, 64)
	for i := range ps {
		ps[i] = h.producer("tx-" + string(rune('a'+i%26)) + string(rune('a'+i/26)))
		if ps[i].init() != 0 {
			b.Fatal("init")
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		p := ps[i%len(ps)]
		h.now = h.now.Add(time.Millisecond)
		if p.add("orders", int32(i%8)) != 0 || p.add("audit", 0) != 0 || p.addOffsets("g") != 0 || p.end(true) != 0 {
			b.Fatal("transaction failed")
		}
		h.writeMarkers()
		h.records = h.records[:0]
	}
}
