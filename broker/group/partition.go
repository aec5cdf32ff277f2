package group

import "unicode/utf16"

// Partition returns the __consumer_offsets partition that holds groupID,
// and therefore which broker coordinates it: Kafka's
// Utils.abs(groupId.hashCode()) % offsets.topic.num.partitions.
//
// The hash is Java's String.hashCode, computed over UTF-16 code units (not
// bytes or runes), so a group id with characters outside the BMP lands
// where a Java client or broker expects it. Utils.abs maps
// Integer.MIN_VALUE to 0 rather than leaving it negative.
// numPartitions must be positive.
func Partition(groupID string, numPartitions int32) int32 {
	return javaAbs(javaStringHash(groupID)) % numPartitions
}

// javaStringHash is java.lang.String.hashCode: s[0]*31^(n-1) + ... + s[n-1]
// over UTF-16 code units, with int32 overflow.
func javaStringHash(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 {
			r1, r2 := utf16.EncodeRune(r)
			h = 31*h + r1
			h = 31*h + r2
			continue
		}
		// Invalid UTF-8 decodes to U+FFFD, as Java's decoder replaces it.
		h = 31*h + r
	}
	return h
}

// javaAbs is org.apache.kafka.common.utils.Utils.abs: the absolute value,
// except that Integer.MIN_VALUE (whose negation overflows) becomes 0.
func javaAbs(n int32) int32 {
	if n == -1<<31 {
		return 0
	}
	if n < 0 {
		return -n
	}
	return n
}
