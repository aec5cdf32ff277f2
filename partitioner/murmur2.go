package partitioner

// Murmur2 constants from Kafka's Utils.murmur2, which is Austin Appleby's
// MurmurHash2 (32-bit) with a fixed seed. Changing any of them moves every
// keyed record to a different partition than the Java client picks.
const (
	murmurSeed uint32 = 0x9747b28c
	murmurM    uint32 = 0x5bd1e995
	murmurR           = 24
)

// Murmur2Hash returns Kafka's murmur2 hash of key, bit for bit what Java's
// org.apache.kafka.common.utils.Utils.murmur2 returns for the same bytes.
//
// Java computes on signed ints with wrapping multiplication and unsigned
// shifts (>>>); two's-complement wrapping makes that identical to uint32
// arithmetic, so the hash is computed unsigned and reinterpreted as int32
// only at the end. A nil key hashes like an empty one; deciding that nil
// means "no key" is the partitioner's business, not the hash's.
func Murmur2Hash(key []byte) int32 {
	h := murmurSeed ^ uint32(len(key))

	// Body: little-endian 4-byte words, as Java's
	// (b[i]&0xff) + ((b[i+1]&0xff)<<8) + ... builds them.
	for len(key) >= 4 {
		k := uint32(key[0]) | uint32(key[1])<<8 | uint32(key[2])<<16 | uint32(key[3])<<24
		key = key[4:]
		k *= murmurM
		k ^= k >> murmurR
		k *= murmurM
		h *= murmurM
		h ^= k
	}

	// Tail: Java's switch falls through from case 3 to case 1, and only
	// case 1 multiplies, so a 1-3 byte tail is folded in once.
	switch len(key) {
	case 3:
		h ^= uint32(key[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(key[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(key[0])
		h *= murmurM
	}

	h ^= h >> 13
	h *= murmurM
	h ^= h >> 15
	return int32(h)
}

// toPositive is Java's Utils.toPositive. Java masks the sign bit rather than
// taking the absolute value because Math.abs(Integer.MIN_VALUE) is still
// negative; masking also maps x and x|0x80000000 to the same partition,
// which every Java-compatible client must reproduce.
func toPositive(x int32) int32 { return x & 0x7fffffff }

// murmur2Partition is Java's BuiltInPartitioner.partitionForKey.
func murmur2Partition(key []byte, n int32) int32 {
	return toPositive(Murmur2Hash(key)) % n
}
