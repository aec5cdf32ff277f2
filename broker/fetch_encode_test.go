package broker

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tributary/tributary/broker/storage"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kmsgFetchResponse builds the kmsg equivalent of r with recs as each
// partition's record bytes.
func kmsgFetchResponse(r *fetchResponse, recs func(*fetchPartition) []byte) *kmsg.FetchResponse {
	k := kmsg.NewPtrFetchResponse()
	k.Version = r.version
	k.ErrorCode = r.errCode
	for _, t := range r.topics {
		kt := kmsg.NewFetchResponseTopic()
		kt.Topic = t.topic
		for i := range t.parts {
			p := &t.parts[i]
			kp := kmsg.NewFetchResponseTopicPartition()
			kp.Partition = p.partition
			kp.ErrorCode = p.errCode
			kp.HighWatermark = p.hw
			kp.LastStableOffset = p.lso
			kp.LogStartOffset = p.logStart
			if r.readCommitted {
				kp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
			}
			kp.RecordBatches = recs(p)
			if kp.RecordBatches == nil {
				kp.RecordBatches = []byte{}
			}
			kt.Partitions = append(kt.Partitions, kp)
		}
		k.Topics = append(k.Topics, kt)
	}
	return k
}

func sampleFetchResponse(version int16, readCommitted bool, rng *rand.Rand) *fetchResponse {
	mk := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return b
	}
	return &fetchResponse{
		version:       version,
		readCommitted: readCommitted,
		topics: []fetchTopic{
			{topic: "orders", parts: []fetchPartition{
				{partition: 0, hw: 10, lso: 10, logStart: 0, mem: mk(300)},
				{partition: 3, errCode: 1, hw: 5, lso: 5, logStart: 2},
				{partition: 1, hw: 1 << 40, lso: 1 << 40, logStart: 7, mem: mk(1)},
			}},
			{topic: "", parts: nil},
			{topic: "a-much-longer-topic-name-" + string(mk(0)), parts: []fetchPartition{
				{partition: 7, errCode: 3, hw: -1, lso: -1, logStart: -1},
				{partition: 2, hw: 3, lso: 3, logStart: 3, mem: mk(200)}, // > 127+1: two-byte uvarint length
			}},
		},
	}
}

// readFrame reads one size-prefixed frame and checks the response header.
func readFrame(t *testing.T, r io.Reader, corrID int32, flexible bool) []byte {
	t.Helper()
	var size [4]byte
	_, err := io.ReadFull(r, size[:])
	require.NoError(t, err)
	frame := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err = io.ReadFull(r, frame)
	require.NoError(t, err)
	require.Equal(t, corrID, int32(binary.BigEndian.Uint32(frame)))
	frame = frame[4:]
	if flexible {
		require.Equal(t, byte(0), frame[0], "response header tagged fields")
		frame = frame[1:]
	}
	return frame
}

// TestFetchEncodeMatchesKmsg pins the hand-written Fetch encoder to kmsg,
// byte for byte, at every version served, and checks kmsg decodes it.
func TestFetchEncodeMatchesKmsg(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for v := int16(4); v <= 12; v++ {
		for _, rc := range []bool{false, true} {
			for _, sessErr := range []int16{0, 70} {
				r := sampleFetchResponse(v, rc, rng)
				r.errCode = sessErr
				want := kmsgFetchResponse(r, func(p *fetchPartition) []byte { return p.mem }).AppendTo(nil)

				var out bytes.Buffer
				w := bufio.NewWriterSize(&out, 64)
				require.NoError(t, r.writeFrame(w, nil, 77, v >= 12))
				body := readFrame(t, &out, 77, v >= 12)
				require.Equal(t, want, body, "version %d readCommitted %v", v, rc)
				require.Zero(t, out.Len(), "trailing bytes")

				got := kmsg.NewPtrFetchResponse()
				got.Version = v
				require.NoError(t, got.ReadFrom(body))
				require.Len(t, got.Topics, 3)
				require.Equal(t, r.topics[0].parts[0].mem, got.Topics[0].Partitions[0].RecordBatches)
				require.Equal(t, int64(1<<40), got.Topics[0].Partitions[2].HighWatermark)
				require.Equal(t, int16(3), got.Topics[2].Partitions[0].ErrorCode)
				if v >= 7 {
					require.Equal(t, sessErr, got.ErrorCode)
					require.Zero(t, got.SessionID)
				}
				if v >= 11 {
					require.Equal(t, int32(-1), got.Topics[0].Partitions[0].PreferredReadReplica)
				}
			}
		}
	}
}

// sliceFile writes data to a segment-like file, with junk around it so a
// wrong offset shows.
func sliceFile(t *testing.T, data []byte) storage.FileSlice {
	t.Helper()
	path := filepath.Join(t.TempDir(), "00000000000000000000.log")
	junk := bytes.Repeat([]byte{0xee}, 777)
	require.NoError(t, os.WriteFile(path, append(append(append([]byte{}, junk...), data...), junk...), 0o644))
	f, err := os.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return storage.FileSlice{File: f, Pos: int64(len(junk)), Len: int64(len(data))}
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	done := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		done <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	server = <-done
	require.NotNil(t, server)
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// TestFetchWriteFrameFromFiles sends records from files over TCP (the
// sendfile path), over a pipe (the pread fallback), and small slices
// copied into the buffer, and checks the frames against kmsg.
func TestFetchWriteFrameFromFiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name string
		pipe bool
		size int
	}{
		{"tcp-sendfile", false, 3 << 20},
		{"tcp-small", false, 100},
		{"pipe-pread", true, 300 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range []int16{4, 11, 12} {
				r := sampleFetchResponse(v, false, rng)
				// Move the first and last records onto files.
				for _, p := range []*fetchPartition{&r.topics[0].parts[0], &r.topics[2].parts[1]} {
					data := make([]byte, tc.size)
					for i := range data {
						data[i] = byte(rng.IntN(256))
					}
					p.mem = nil
					p.slice = sliceFile(t, data)
				}
				want := kmsgFetchResponse(r, func(p *fetchPartition) []byte {
					if p.mem != nil {
						return p.mem
					}
					if p.slice.Len == 0 {
						return nil
					}
					b := make([]byte, p.slice.Len)
					_, err := p.slice.File.ReadAt(b, p.slice.Pos)
					require.NoError(t, err)
					return b
				}).AppendTo(nil)

				var server, client net.Conn
				if tc.pipe {
					server, client = net.Pipe()
					t.Cleanup(func() { server.Close(); client.Close() })
				} else {
					server, client = tcpPair(t)
				}
				errc := make(chan error, 1)
				go func() {
					errc <- r.writeFrame(bufio.NewWriter(server), server, 5, v >= 12)
				}()
				client.SetReadDeadline(time.Now().Add(10 * time.Second))
				body := readFrame(t, client, 5, v >= 12)
				require.NoError(t, <-errc)
				require.True(t, bytes.Equal(want, body), "version %d: frame differs from kmsg", v)
			}
		})
	}
}

// TestFetchShortSliceFailsFrame pins the truncated-segment case: when a
// file holds fewer bytes than its slice promised, writeFrame must fail
// (the connection is then closed) rather than send a frame whose length
// disagrees with its bytes.
func TestFetchShortSliceFailsFrame(t *testing.T) {
	for _, pipe := range []bool{false, true} {
		s := sliceFile(t, make([]byte, 200<<10))
		s.Len += 1000 // the segment "was truncated" after the read
		r := &fetchResponse{version: 12, topics: []fetchTopic{{topic: "t", parts: []fetchPartition{{slice: s}}}}}
		var server, client net.Conn
		if pipe {
			server, client = net.Pipe()
			defer server.Close()
			defer client.Close()
		} else {
			server, client = tcpPair(t)
		}
		go io.Copy(io.Discard, client)
		err := r.writeFrame(bufio.NewWriter(server), server, 1, true)
		require.True(t, errors.Is(err, errShortSlice), "pipe=%v: got %v", pipe, err)
	}
}

// TestSendFileUsesOwnOffset checks that on Linux a TCP connection takes
// the sendfile path, and that it leaves the file's shared offset alone
// (concurrent fetches of one segment rely on that).
func TestSendFileUsesOwnOffset(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("sendfile path is Linux-only")
	}
	data := bytes.Repeat([]byte("0123456789"), 100_000)
	s := sliceFile(t, data)
	server, client := tcpPair(t)
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, len(data))
		io.ReadFull(client, b)
		got <- b
	}()
	done, err := sendFile(server, s)
	require.NoError(t, err)
	require.True(t, done, "TCP connection should use sendfile")
	require.Equal(t, data, <-got)
	pos, err := s.File.(io.Seeker).Seek(0, io.SeekCurrent)
	require.NoError(t, err)
	require.Zero(t, pos, "sendfile moved the file's shared offset")
}
