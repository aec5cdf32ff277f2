package storage

import (
	"bytes"
	"testing"
)

// FuzzDecodeEpochs feeds arbitrary bytes as a leader-epoch-checkpoint.
// Invariants: never panics; what it accepts is strictly ascending in
// epoch, non-decreasing in offset, non-negative, and re-encodes to the
// same bytes.
func FuzzDecodeEpochs(f *testing.F) {
	f.Add(encodeEpochs(nil))
	f.Add(encodeEpochs([]EpochEntry{{0, 0}, {3, 10}, {4, 10}}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		es, ok := decodeEpochs(b)
		if !ok {
			return
		}
		for i, e := range es {
			if e.Epoch < 0 || e.StartOffset < 0 {
				t.Fatalf("negative entry %v", e)
			}
			if i > 0 && (e.Epoch <= es[i-1].Epoch || e.StartOffset < es[i-1].StartOffset) {
				t.Fatalf("not ascending: %v", es)
			}
		}
		if !bytes.Equal(encodeEpochs(es), b) {
			t.Fatalf("accepted bytes do not re-encode the same")
		}
	})
}
