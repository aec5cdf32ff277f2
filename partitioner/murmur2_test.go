package partitioner

import (
	"math/rand/v2"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"github.com/tributary/tributary"
	"github.com/twmb/franz-go/pkg/kgo"
)

// murmur2Counts are the partition counts each vector's partitions are given
// for, in the order of murmur2Vector.parts.
var murmur2Counts = [...]int32{1, 3, 10, 12, 100}

// murmur2Vectors hold keys, Java's Utils.murmur2 of their bytes, and
// toPositive(hash) % n for each of murmur2Counts.
//
// Sources of the expected hashes:
//   - Kafka's UtilsTest.testMurmur2: "21", "foobar", the two
//     "a-little-bit-long..." strings, "lkjh...", "abc".
//   - kafkajs's defaultJava murmur2.spec.js, generated with the Java
//     function: "0", "128", "2187", "16384", "1", "100:48069".
//   - Akka's Murmur2Spec (also from the Java function): "1" ... "12345".
//   - librdkafka's rdmurmur2.c unit test, which lists the hashes already
//     passed through toPositive: "kafka" 1348980580, "amqp" 767747138,
//     "giberish123456789" 257239820 (the masks of the values below).
//   - Every hash and partition, including the empty, non-ASCII and raw-byte
//     keys no published table has, was printed by the JVM running
//     testdata/Murmur2Vectors.java, so Java's own int arithmetic produced
//     them.
var murmur2Vectors = []struct {
	key   string
	hash  int32
	parts [len(murmur2Counts)]int32
}{
	// Empty key, then tails of 1, 2, 3 bytes and an exact 4-byte word.
	{"", 275646681, [...]int32{0, 0, 1, 9, 81}},
	{"a", -1563381124, [...]int32{0, 1, 4, 4, 24}},
	{"ab", 316155434, [...]int32{0, 2, 4, 2, 34}},
	{"abc", 479470107, [...]int32{0, 0, 7, 3, 7}},
	{"abcd", -1323649548, [...]int32{0, 2, 0, 8, 0}},
	{"abcde", 461995741, [...]int32{0, 1, 1, 1, 41}},
	{"21", -973932308, [...]int32{0, 0, 0, 0, 40}},
	{"foobar", -790332482, [...]int32{0, 0, 6, 6, 66}},
	{"a-little-bit-long-string", -985981536, [...]int32{0, 2, 2, 8, 12}},
	{"a-little-bit-longer-string", -1486304829, [...]int32{0, 2, 9, 11, 19}},
	{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971, [...]int32{0, 2, 7, 5, 77}},
	{"0", 971027396, [...]int32{0, 2, 6, 8, 96}},
	{"1", -1993445489, [...]int32{0, 0, 9, 3, 59}},
	{"12", 126087238, [...]int32{0, 1, 8, 10, 38}},
	{"123", -267702483, [...]int32{0, 2, 5, 5, 65}},
	{"1234", -1614185708, [...]int32{0, 0, 0, 0, 40}},
	{"12345", -1188365604, [...]int32{0, 2, 4, 8, 44}},
	{"128", -326012175, [...]int32{0, 2, 3, 5, 73}},
	{"2187", -1508407203, [...]int32{0, 2, 5, 5, 45}},
	{"16384", -325739742, [...]int32{0, 2, 6, 2, 6}},
	{"100:48069", 1009543857, [...]int32{0, 0, 7, 9, 57}},
	{"kafka", -798503068, [...]int32{0, 1, 0, 4, 80}},
	{"amqp", 767747138, [...]int32{0, 2, 8, 2, 38}},
	{"giberish123456789", -1890243828, [...]int32{0, 2, 0, 8, 20}},
	{"order-42", 501153024, [...]int32{0, 0, 4, 0, 24}},
	{" ", -987232127, [...]int32{0, 0, 1, 9, 21}},
	// UTF-8 keys: Java's String.getBytes(UTF_8) gives these same bytes.
	{"ключ", 2122343024, [...]int32{0, 2, 4, 8, 24}},
	{"日本語", 1431860170, [...]int32{0, 1, 0, 10, 70}},
	{"🙂", 925250799, [...]int32{0, 0, 9, 3, 99}},
	{"café", -1358007374, [...]int32{0, 0, 4, 6, 74}},
	{"Ωmega-ß", -1509656960, [...]int32{0, 0, 8, 0, 88}},
	// Raw bytes with the high bit set: Java bytes are signed, so a port
	// that forgets Java's & 0xff would sign-extend these.
	{"\xff", -311467685, [...]int32{0, 0, 3, 3, 63}},
	{"\x80\xff\xfe", 810766165, [...]int32{0, 1, 5, 1, 65}},
	{"\xff\xff\xff\xff", 644171429, [...]int32{0, 2, 9, 5, 29}},
	{"\x00", 375494588, [...]int32{0, 2, 8, 8, 88}},
	{"\x00\x00\x00\x00", 850957120, [...]int32{0, 1, 0, 4, 20}},
	{"\x7f\x80\xff\x00\x01", 434112587, [...]int32{0, 2, 7, 11, 87}},
}

func TestMurmur2HashJavaVectors(t *testing.T) {
	for _, v := range murmur2Vectors {
		require.Equalf(t, v.hash, Murmur2Hash([]byte(v.key)), "murmur2(%q)", v.key)
	}
}

func TestMurmur2PartitionJavaVectors(t *testing.T) {
	for name, p := range map[string]Partitioner{"Default": Default(), "Murmur2": Murmur2()} {
		for _, v := range murmur2Vectors {
			for i, n := range murmur2Counts {
				r := &tributary.Record{Topic: "t", Key: []byte(v.key)}
				require.Equalf(t, v.parts[i], p.Partition(r, n), "%s: key %q, %d partitions", name, v.key, n)
			}
		}
	}
}

// kgoMurmur2Partition is franz-go's Java-compatible placement, an
// implementation written independently of ours.
func kgoMurmur2Partition(key []byte, n int) int {
	return kgo.StickyKeyPartitioner(nil).ForTopic("t").Partition(&kgo.Record{Key: key}, n)
}

// TestMurmur2MatchesKgo compares against franz-go over many random keys.
// With n = 2^31 kgo's partition is the whole 31-bit toPositive(hash), so
// this checks every hash bit but the sign, which the Java vectors cover.
func TestMurmur2MatchesKgo(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	keys := [][]byte{{}}
	for range 5000 {
		b := make([]byte, rng.IntN(300))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		keys = append(keys, b)
	}
	// Valid UTF-8 from across the planes, as application keys usually are.
	for range 2000 {
		b := []byte{} // non-nil even when empty: nil would mean "no key"
		for range rng.IntN(40) {
			r := rune(rng.IntN(0x10ffff))
			if !utf8.ValidRune(r) {
				r = 'x'
			}
			b = utf8.AppendRune(b, r)
		}
		keys = append(keys, b)
	}
	p := Murmur2()
	for _, k := range keys {
		require.Equalf(t, kgoMurmur2Partition(k, 1<<31), int(toPositive(Murmur2Hash(k))), "key %x", k)
		for _, n := range []int32{1, 2, 7, 64, 1000, 32749} {
			require.Equalf(t, kgoMurmur2Partition(k, int(n)), int(p.Partition(&tributary.Record{Topic: "t", Key: k}, n)),
				"key %x, %d partitions", k, n)
		}
	}
}

// TestToPositiveMasksRatherThanNegates pins Java's choice: the hash whose
// partition differs between masking and absolute value is one with the
// sign bit set, and Integer.MIN_VALUE must map to 0, not stay negative.
func TestToPositiveMasksRatherThanNegates(t *testing.T) {
	require.Equal(t, int32(0), toPositive(-2147483648))
	require.Equal(t, int32(2147483647), toPositive(-1))
	require.Equal(t, int32(1173551340), toPositive(-973932308)) // "21"
	// "21" % 10: masking gives 0 where -(-973932308 % 10) would give 8.
	require.Equal(t, int32(0), murmur2Partition([]byte("21"), 10))
}

func FuzzMurmur2MatchesKgo(f *testing.F) {
	for _, v := range murmur2Vectors {
		f.Add([]byte(v.key), int32(10))
	}
	f.Fuzz(func(t *testing.T, key []byte, n int32) {
		if n <= 0 {
			n = 1
		}
		got := murmur2Partition(key, n)
		if want := kgoMurmur2Partition(key, int(n)); int(got) != want {
			t.Fatalf("key %x, %d partitions: got %d, kgo %d", key, n, got, want)
		}
	})
}
