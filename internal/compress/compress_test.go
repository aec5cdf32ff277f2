package compress

import (
	"bytes"
	"errors"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRoundTripEveryCodec(t *testing.T) {
	src := bytes.Repeat([]byte("tributary kafka record batch "), 2000)
	for _, c := range []Codec{None, Gzip, Snappy, LZ4, ZSTD} {
		t.Run(c.String(), func(t *testing.T) {
			enc, err := Compress(c, []byte("prefix"), src)
			require.NoError(t, err)
			require.Equal(t, "prefix", string(enc[:6]))
			dec, err := Decompress(c, nil, enc[6:], len(src))
			require.NoError(t, err)
			require.Equal(t, src, dec)
			_, err = Decompress(c, nil, enc[6:], len(src)-1)
			require.True(t, errors.Is(err, ErrTooLarge), "codec %v: %v", c, err)
		})
	}
}

func TestXerialSnappy(t *testing.T) {
	src := []byte("hello hello hello xerial")
	block, err := Compress(Snappy, nil, src)
	require.NoError(t, err)
	framed := append([]byte{}, xerialMagic...)
	framed = append(framed, 0, 0, 0, 1, 0, 0, 0, 1)
	framed = append(framed, byte(len(block)>>24), byte(len(block)>>16), byte(len(block)>>8), byte(len(block)))
	framed = append(framed, block...)
	dec, err := Decompress(Snappy, nil, framed, 1<<20)
	require.NoError(t, err)
	require.Equal(t, src, dec)
}

func FuzzDecompress(f *testing.F) {
	for _, c := range []Codec{Gzip, Snappy, LZ4, ZSTD} {
		enc, _ := Compress(c, nil, []byte("seed seed seed seed"))
		f.Add(int8(c), enc)
	}
	f.Fuzz(func(t *testing.T, c int8, data []byte) {
		out, err := Decompress(Codec(c&7), nil, data, 1<<16)
		if err == nil && len(out) > 1<<16 {
			t.Fatalf("limit exceeded: %d", len(out))
		}
	})
}

// A zstd frame header declaring a huge window is refused before the
// decoder allocates it (FuzzDecompress found an 11-byte frame that cost
// 320 MiB per decode).
func TestZstdWindowBomb(t *testing.T) {
	data := []byte("(\xb5/\xfd\x10\x9220\x010")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 5 {
		_, err := Decompress(ZSTD, nil, data, 1<<20)
		require.Error(t, err)
	}
	runtime.ReadMemStats(&after)
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<20))
}
