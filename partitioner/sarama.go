package partitioner

// Sarama returns a partitioner that places keyed records where Sarama's
// default partitioner (NewHashPartitioner) does: the 32-bit FNV-1a hash of
// the key, taken as int32, modulo n, negated when negative. Use it to keep
// keys on the partitions an existing Sarama producer chose.
//
// Sarama sends keyless records to a random partition per record; this
// partitioner uses uniform sticky partitioning for them instead, since
// keyless placement carries no compatibility promise and sticky batches
// better.
func Sarama() Partitioner {
	return &hashPartitioner{hash: saramaPartition}
}

// FNV-1a 32-bit parameters (hash/fnv's New32a); inlined so that hashing a
// key allocates no hash.Hash32.
const (
	fnv32Offset uint32 = 2166136261
	fnv32Prime  uint32 = 16777619
)

func fnv1a32(b []byte) uint32 {
	h := fnv32Offset
	for _, c := range b {
		h ^= uint32(c)
		h *= fnv32Prime
	}
	return h
}

// saramaPartition differs from toPositive on purpose: Sarama negates a
// negative remainder where Java masks the sign bit, so the two agree only
// for hashes whose high bit is clear.
func saramaPartition(key []byte, n int32) int32 {
	p := int32(fnv1a32(key)) % n
	if p < 0 {
		p = -p
	}
	return p
}
