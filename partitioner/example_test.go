package partitioner_test

import (
	"fmt"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/partitioner"
)

// A producer asks the partitioner for each record's partition, and tells a
// BatchObserver when a batch completes so that keyless records move on.
func Example() {
	p := partitioner.Default()
	const partitions = 12

	keyed := &tributary.Record{Topic: "orders", Key: []byte("foobar")}
	fmt.Println("foobar ->", p.Partition(keyed, partitions))

	keyless := &tributary.Record{Topic: "orders", Value: []byte("v")}
	first := p.Partition(keyless, partitions)
	fmt.Println("keyless sticks:", p.Partition(keyless, partitions) == first)

	if obs, ok := p.(partitioner.BatchObserver); ok {
		obs.OnNewBatch("orders", first, partitions) // the batch on first is full
	}
	fmt.Println("keyless moved:", p.Partition(keyless, partitions) != first)
	// Output:
	// foobar -> 6
	// keyless sticks: true
	// keyless moved: true
}

// Murmur2Hash is Java's Utils.murmur2; the partition is its sign-masked
// value modulo the partition count.
func ExampleMurmur2Hash() {
	h := partitioner.Murmur2Hash([]byte("21"))
	fmt.Println(h, (h&0x7fffffff)%10)
	// Output: -973932308 0
}
