package group

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// The expected values were computed independently, with Java's
// String.hashCode definition applied to the UTF-16BE encoding of each id.
func TestPartitionMatchesJava(t *testing.T) {
	for _, tc := range []struct {
		id   string
		hash int32
		p50  int32
		p7   int32
	}{
		{"", 0, 0, 0},
		{"a", 97, 47, 6},
		{"hello", 99162322, 22, 0},
		{"my-group", -1906497762, 12, 1},       // negative hash: abs before mod
		{"billing", -109829509, 9, 6},          // negative hash
		{"polygenelubricants", -1 << 31, 0, 0}, // Integer.MIN_VALUE: Utils.abs gives 0
		{"größe", 98762257, 7, 6},              // Latin-1 outside ASCII: one unit each, not UTF-8 bytes
		{"グループ", 383750870, 20, 6},             // BMP
		{"😀", 1772899, 49, 2},                  // outside the BMP: a surrogate pair, not one rune
		{"group-😀-x", -1358452452, 2, 0},       // surrogates inside, negative
		{"consumer-group-1", 147483020, 20, 6},
	} {
		assert.Equal(t, tc.hash, javaStringHash(tc.id), "hash of %q", tc.id)
		assert.Equal(t, tc.p50, Partition(tc.id, 50), "partition of %q in 50", tc.id)
		assert.Equal(t, tc.p7, Partition(tc.id, 7), "partition of %q in 7", tc.id)
	}
}

func TestPartitionAlwaysInRange(t *testing.T) {
	for _, id := range []string{"polygenelubricants", "my-group", "\xff\xfe", "x"} {
		for _, n := range []int32{1, 3, 50, 1 << 30} {
			p := Partition(id, n)
			assert.True(t, p >= 0 && p < n, "Partition(%q, %d) = %d", id, n, p)
		}
	}
}
