// Murmur2Vectors prints Kafka murmur2 hashes and partitions computed on the
// JVM, for murmur2_test.go. It restates Kafka's Utils.murmur2 (clients,
// org.apache.kafka.common.utils) in Java so that the JVM's own signed int
// arithmetic, >>> shifts and switch fall-through produce the expected values,
// independently of the Go code under test. Keys are given in hex so that
// arbitrary bytes (invalid UTF-8 too) can be hashed.
//
//   java testdata/Murmur2Vectors.java 6162 e697a5e69cace8aa9e ...
public class Murmur2Vectors {
    static int murmur2(final byte[] data) {
        int length = data.length;
        int seed = 0x9747b28c;
        final int m = 0x5bd1e995;
        final int r = 24;
        int h = seed ^ length;
        int length4 = length / 4;
        for (int i = 0; i < length4; i++) {
            final int i4 = i * 4;
            int k = (data[i4] & 0xff) + ((data[i4 + 1] & 0xff) << 8)
                    + ((data[i4 + 2] & 0xff) << 16) + ((data[i4 + 3] & 0xff) << 24);
            k *= m;
            k ^= k >>> r;
            k *= m;
            h *= m;
            h ^= k;
        }
        switch (length % 4) {
            case 3:
                h ^= (data[(length & ~3) + 2] & 0xff) << 16;
            case 2:
                h ^= (data[(length & ~3) + 1] & 0xff) << 8;
            case 1:
                h ^= data[length & ~3] & 0xff;
                h *= m;
        }
        h ^= h >>> 13;
        h *= m;
        h ^= h >>> 15;
        return h;
    }

    public static void main(String[] args) {
        int[] counts = {1, 3, 10, 12, 100};
        for (String hex : args) {
            byte[] b = new byte[hex.length() / 2];
            for (int i = 0; i < b.length; i++) {
                b[i] = (byte) Integer.parseInt(hex.substring(2 * i, 2 * i + 2), 16);
            }
            int h = murmur2(b);
            StringBuilder sb = new StringBuilder(hex + " " + h);
            for (int n : counts) {
                sb.append(" ").append((h & 0x7fffffff) % n);
            }
            System.out.println(sb);
        }
    }
}
