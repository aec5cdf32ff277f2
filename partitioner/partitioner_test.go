package partitioner

import (
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/stretchr/testify/require"
	"github.com/tributary/tributary"
	"github.com/twmb/franz-go/pkg/kgo"
)

func rec(topic string, key []byte) *tributary.Record {
	return &tributary.Record{Topic: topic, Key: key}
}

// TestObserverInterfaces pins which partitioners the producer must notify:
// the ones with sticky state, and not RoundRobin, whose Java counterpart
// skips partitions precisely because it reacts to new batches.
func TestObserverInterfaces(t *testing.T) {
	for name, p := range map[string]Partitioner{
		"Default": Default(), "Murmur2": Murmur2(), "XXHash": XXHash(), "Sticky": Sticky(), "Sarama": Sarama(),
	} {
		_, ok := p.(BatchObserver)
		require.Truef(t, ok, "%s must implement BatchObserver", name)
	}
	for name, p := range map[string]Partitioner{"RoundRobin": RoundRobin(), "Manual": Manual()} {
		_, ok := p.(BatchObserver)
		require.Falsef(t, ok, "%s must not implement BatchObserver", name)
	}
}

// TestHashPartitionersNilKeyIsStickyEmptyKeyIsHashed checks Java's null vs
// empty distinction for every hashing partitioner: an empty key is a key
// and always lands on its hash partition, while nil-key records follow the
// sticky partition and move when its batch completes.
func TestHashPartitionersNilKeyIsStickyEmptyKeyIsHashed(t *testing.T) {
	const n = 100
	for name, tc := range map[string]struct {
		p         Partitioner
		emptyPart int32
	}{
		"Murmur2": {Murmur2(), 81}, // 275646681 % 100, from the Java vectors
		"XXHash":  {XXHash(), 21},  // 0xef46db3751d8e999 % 100
		"Sarama":  {Sarama(), 35},  // -(int32(0x811c9dc5) % 100)
	} {
		t.Run(name, func(t *testing.T) {
			obs := tc.p.(BatchObserver)
			seen := map[int32]bool{}
			for range 50 {
				sticky := tc.p.Partition(rec("t", nil), n)
				seen[sticky] = true
				for range 10 {
					require.Equal(t, sticky, tc.p.Partition(rec("t", nil), n), "nil key must stay on the sticky partition")
					require.Equal(t, tc.emptyPart, tc.p.Partition(rec("t", []byte{}), n), "empty key must be hashed")
				}
				obs.OnNewBatch("t", sticky, n)
				require.NotEqual(t, sticky, tc.p.Partition(rec("t", nil), n), "nil key must move after OnNewBatch")
			}
			// 50 moves over 100 partitions: a hashed nil key would sit on
			// one partition; sticky visits many.
			require.Greater(t, len(seen), 20)
		})
	}
}

// TestKeyedRecordsIgnoreOnNewBatch: batch completions move only keyless
// records; a key stays on its partition.
func TestKeyedRecordsIgnoreOnNewBatch(t *testing.T) {
	p := Default()
	obs := p.(BatchObserver)
	want := p.Partition(rec("t", []byte("foobar")), 10)
	require.Equal(t, int32(6), want)
	for i := range int32(10) {
		obs.OnNewBatch("t", i, 10)
		require.Equal(t, want, p.Partition(rec("t", []byte("foobar")), 10))
	}
}

// XXH64 of "" and "a" are the reference values from the xxHash project;
// the partitions pin the unsigned 64-bit modulo (these hashes have the top
// bit set, so a signed conversion would place them elsewhere).
func TestXXHashPlacement(t *testing.T) {
	p := XXHash()
	for _, v := range []struct {
		key  string
		hash uint64
		p10  int32
		p100 int32
	}{
		{"", 0xef46db3751d8e999, 1, 21},
		{"a", 0xd24ec4f1a98c6e5b, 5, 55},
		{"foobar", 0xa2aa05ed9085aaf9, 5, 45},
		{"ключ", 0xa17d2dd13d89d19c, 8, 48},
		{"order-42", 0xb5623ec0a2fa4fce, 0, 70},
	} {
		require.Equal(t, v.hash, xxhash.Sum64String(v.key))
		require.Equalf(t, v.p10, p.Partition(rec("t", []byte(v.key)), 10), "key %q", v.key)
		require.Equalf(t, v.p100, p.Partition(rec("t", []byte(v.key)), 100), "key %q", v.key)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		k := make([]byte, rng.IntN(100))
		for i := range k {
			k[i] = byte(rng.Uint32())
		}
		n := 1 + rng.Int32N(5000)
		got := p.Partition(rec("t", k), n)
		require.Equal(t, int32(xxhash.Sum64(k)%uint64(n)), got)
	}
}

func fnv32a(b []byte) uint32 {
	h := fnv.New32a()
	h.Write(b)
	return h.Sum32()
}

// TestSaramaPlacement: FNV-1a reference values ("", "a", "foobar" are in
// the FNV test suite) and Sarama's negate-the-remainder rule, which for
// these high-bit hashes gives a different partition than Java's mask.
func TestSaramaPlacement(t *testing.T) {
	p := Sarama()
	for _, v := range []struct {
		key    string
		hash   uint32
		sarama int32
		masked int32 // what toPositive(hash) % 10 would give instead
		n      int32
	}{
		{"", 0x811c9dc5, 5, 3, 10},
		{"a", 0xe40c292c, 6, 2, 10},
		{"foobar", 0xbf9cf968, 6, 2, 10},
		{"ключ", 0x95c4e9e1, 3, 5, 10},
		{"order-42", 0x572446f4, 2, 2, 10}, // high bit clear: both agree
	} {
		require.Equal(t, v.hash, fnv1a32([]byte(v.key)))
		require.Equalf(t, v.sarama, p.Partition(rec("t", []byte(v.key)), v.n), "key %q", v.key)
		require.Equal(t, v.masked, toPositive(int32(v.hash))%v.n)
	}
}

// TestSaramaMatchesKgo compares with franz-go's SaramaCompatHasher driven by
// the standard library's FNV-1a, both independent of our code.
func TestSaramaMatchesKgo(t *testing.T) {
	kp := kgo.StickyKeyPartitioner(kgo.SaramaCompatHasher(fnv32a)).ForTopic("t")
	p := Sarama()
	rng := rand.New(rand.NewPCG(5, 6))
	for range 5000 {
		k := make([]byte, rng.IntN(64))
		for i := range k {
			k[i] = byte(rng.Uint32())
		}
		require.Equal(t, fnv32a(k), fnv1a32(k))
		for _, n := range []int32{1, 3, 10, 64, 1000} {
			require.Equalf(t, kp.Partition(&kgo.Record{Key: k}, int(n)), int(p.Partition(rec("t", k), n)), "key %x n %d", k, n)
		}
	}
}

func TestManualKeepsPartition(t *testing.T) {
	p := Manual()
	for _, part := range []int32{0, 3, 9, 42, -1} {
		r := &tributary.Record{Topic: "t", Key: []byte("foobar"), Partition: part}
		// Out-of-range values are returned as they are: the producer, which
		// can fail the record with an error, does the range check.
		require.Equal(t, part, p.Partition(r, 10))
	}
}

func TestRoundRobinCyclesPerTopic(t *testing.T) {
	p := RoundRobin()
	for i := range 25 {
		require.Equal(t, int32(i%7), p.Partition(rec("a", []byte("same-key")), 7), "record %d on a", i)
		if i%2 == 0 {
			// Topic b has its own counter, started at 0 independent of a.
			require.Equal(t, int32((i/2)%3), p.Partition(rec("b", nil), 3), "record %d on b", i/2)
		}
	}
	// A fresh partitioner starts over: state is per instance.
	require.Equal(t, int32(0), RoundRobin().Partition(rec("a", nil), 7))
}

// TestRoundRobinConcurrentExactlyEven: with an atomic counter, G*M records
// over n partitions (n divides G*M) give every partition exactly G*M/n,
// however the goroutines interleave.
func TestRoundRobinConcurrentExactlyEven(t *testing.T) {
	const (
		g = 8
		m = 7000
		n = 7
	)
	p := RoundRobin()
	counts := make([][n]int, g)
	var wg sync.WaitGroup
	for w := range g {
		wg.Go(func() {
			for range m {
				counts[w][p.Partition(rec("t", nil), n)]++
			}
		})
	}
	wg.Wait()
	var total [n]int
	for _, c := range counts {
		for i, v := range c {
			total[i] += v
		}
	}
	for i, v := range total {
		require.Equalf(t, g*m/n, v, "partition %d", i)
	}
}

// TestNoAllocationsPerRecord: the producer calls Partition for every
// record; none of the partitioners may allocate there once a topic is
// known.
func TestNoAllocationsPerRecord(t *testing.T) {
	key := []byte("customer-0000042")
	for name, p := range map[string]Partitioner{
		"Murmur2": Murmur2(), "XXHash": XXHash(), "Sarama": Sarama(),
		"Sticky": Sticky(), "RoundRobin": RoundRobin(), "Manual": Manual(),
	} {
		keyed := rec("orders", key)
		keyless := rec("orders", nil)
		p.Partition(keyless, 12) // first sight of the topic may allocate
		allocs := testing.AllocsPerRun(1000, func() {
			p.Partition(keyed, 12)
			p.Partition(keyless, 12)
			if o, ok := p.(BatchObserver); ok {
				o.OnNewBatch("orders", p.Partition(keyless, 12), 12)
			}
		})
		require.Zerof(t, allocs, "%s allocates per record", name)
	}
}
