package controller

import (
	"testing"

	"github.com/tributary/tributary"
)

// FuzzDecodeApply: any bytes given to DecodeBatch either fail to decode
// or decode to records that Apply takes without panicking, and the
// decisions still work on the resulting image.
func FuzzDecodeApply(f *testing.F) {
	h := newHarness(f)
	h.brokers("", "", "")
	h.create("t", 3, 2, 0, nil)
	base := h.img
	for _, b := range h.batches {
		data, _ := EncodeBatch(b)
		f.Add(data)
	}
	f.Add([]byte(`{"v":1,"r":[{"t":"create_partitions","v":1,"d":{"id":"AQcAAAAAAAAAAAAAAAAAAA","partitions":[null]}}]}`))
	f.Add([]byte(`{"v":1,"r":[{"t":"partition_change","v":1,"d":{"id":"AQcAAAAAAAAAAAAAAAAAAA","partition":0,"state":{"replicas":[],"isr":[]}}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := DecodeBatch(data)
		if err != nil {
			return
		}
		img := ApplyBatch(base, base.Offset+1, recs)
		for _, b := range img.LiveBrokers() {
			FenceBrokerRecords(img, b.ID)
		}
		ElectLeadersRecords(img, false, nil)
		ElectLeadersRecords(img, true, nil)
		RebalanceRecords(img, 10)
		ListReassignments(img, []tributary.TopicPartition{{Topic: "t", Partition: 0}})
		if _, err := MarshalImage(img); err != nil {
			t.Fatal(err)
		}
	})
}
