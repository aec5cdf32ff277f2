package broker

// Fetch: v4–12 (RecordBatch; v13+ need topic ids).
//
// Sessionless (KIP-227 allows it): every response carries SessionID 0, so
// clients keep sending full fetches. A request that continues a session
// (SessionEpoch > 0) names a session this broker never created and gets
// FETCH_SESSION_ID_NOT_FOUND, after which clients fall back to a full
// fetch, as they do when a Kafka broker evicts their session.
//
// Per partition, in request order: UNKNOWN_TOPIC_OR_PARTITION; v9+
// CurrentLeaderEpoch older than the partition's → FENCED_LEADER_EPOCH,
// newer → UNKNOWN_LEADER_EPOCH; a fetch offset below the log start or
// above the log end → OFFSET_OUT_OF_RANGE. Data is served only below the
// high watermark; read_committed reads to the last stable offset, which
// equals the high watermark while there are no transactions. Each
// partition returns at most PartitionMaxBytes and the response at most
// min(MaxBytes, fetch.max.bytes), except that the first partition with
// data returns its first batch whole however large (KIP-74). A read stops
// at a segment boundary, as in Kafka; the client asks again.
//
// Long poll: with less than MinBytes available and no partition error,
// the request parks until an append to one of its partitions, MaxWaitMs,
// or broker shutdown. Parking costs one waiter registered per partition
// (datapath.go); nothing polls.
//
// Zero copy: the response is a rawResponse. Everything but the record
// bytes is encoded here by hand (fetchResponse.appendBody, checked
// byte for byte against kmsg in fetch_encode_test.go); the record bytes
// go from the segment files to the socket with sendfile(2) at explicit
// offsets (sendfile_linux.go), or by pread into a pooled buffer
// elsewhere. The frame length is computed from the slices' lengths before
// anything is written; if a segment turns out shorter than its slice
// promised (truncated meanwhile), the frame cannot be completed honestly
// and the connection is closed.
//
// Version notes: v4 IsolationLevel, LastStableOffset, AbortedTransactions;
// v5 LogStartOffset; v7 sessions; v9 CurrentLeaderEpoch; v11 Rack and
// PreferredReadReplica (always -1); v12 flexible (compact arrays, tagged
// fields, DivergingEpoch for followers).
//
// Followers (ReplicaID >= 0) fetch from the leader like consumers, on the
// same sendfile path, but read to the log end rather than the high
// watermark; each fetch reports the follower's log end offset to the
// replica manager (broker/replica), which moves the high watermark and
// the ISR. Only the leader serves fetches: anyone else answers
// NOT_LEADER_OR_FOLLOWER.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/replica"
	"github.com/tributary/tributary/broker/storage"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(1, 4, 12, handleFetch) }

func handleFetch(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.FetchRequest)
	resp := &fetchResponse{version: r.Version, readCommitted: r.IsolationLevel == 1}
	// A replica id marks a follower's fetch (consumers send -1).
	follower := r.ReplicaID >= 0
	defer b.observeFetch(resp)
	if r.Version >= 7 && r.SessionEpoch > 0 {
		resp.errCode = tributary.ErrFetchSessionIdNotFound.Code
		return resp, nil
	}

	respMax := int64(b.cfg.FetchMaxBytes)
	if r.MaxBytes >= 0 && int64(r.MaxBytes) < respMax {
		respMax = int64(r.MaxBytes)
	}

	// Resolve the partitions once; a topic created while the request
	// waits is not served by it (as in Kafka, the client asks again).
	resp.topics = make([]fetchTopic, len(r.Topics))
	var (
		parts   []*partition // for the waiter; one per served partition
		anyErr  bool
		request = make([]*kmsg.FetchRequestTopicPartition, 0, 8)
		target  = make([]*partition, 0, 8)
	)
	for i := range r.Topics {
		rt := &r.Topics[i]
		ft := &resp.topics[i]
		ft.topic = rt.Topic
		ft.parts = make([]fetchPartition, len(rt.Partitions))
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			fp := &ft.parts[j]
			fp.partition = rp.Partition
			fp.hw, fp.lso, fp.logStart = -1, -1, -1
			request = append(request, rp)
			p, err := b.leaderPartition(rt.Topic, rp.Partition)
			if err == nil && r.Version >= 9 {
				err = p.rep.ValidateLeaderEpoch(rp.CurrentLeaderEpoch)
			}
			if err == nil && follower {
				// The follower's fetch offset is its log end: record it
				// (the high watermark may move) before reading.
				var div *replica.EpochEndOffset
				div, err = p.rep.FollowerFetch(r.ReplicaID, rp.FetchOffset, rp.CurrentLeaderEpoch, rp.LastFetchedEpoch)
				if err == nil && div != nil {
					fp.diverging = &divergingEpoch{epoch: div.Epoch, end: div.EndOffset}
					fp.hw, fp.lso, fp.logStart = p.rep.HighWatermark(), p.rep.HighWatermark(), p.log.LogStartOffset()
					anyErr = true // answer at once, with no records
					target = append(target, nil)
					continue
				}
			}
			if err != nil {
				fp.errCode = codeOrUnknownTopic(err)
				anyErr = true
				target = append(target, nil)
				continue
			}
			target = append(target, p)
			parts = append(parts, p)
		}
	}

	// gather reads every partition again and reports the record bytes
	// collected and whether some partition failed (which answers at once).
	gather := func() (int64, bool) {
		var total int64
		failed := anyErr
		k := 0
		for i := range resp.topics {
			for j := range resp.topics[i].parts {
				fp := &resp.topics[i].parts[j]
				p, rp := target[k], request[k]
				k++
				if p == nil {
					continue
				}
				fp.errCode = 0
				fp.slice = storage.FileSlice{}
				fp.aborted = nil
				hw := p.rep.HighWatermark()
				lso := min(hw, p.log.LastStableOffset())
				fp.hw, fp.lso, fp.logStart = hw, lso, p.log.LogStartOffset()
				off := rp.FetchOffset
				end := p.log.LogEndOffset()
				if off < fp.logStart || off > end {
					fp.errCode = tributary.ErrOffsetOutOfRange.Code
					failed = true
					continue
				}
				// Consumers read below the high watermark (the last
				// stable offset under read_committed), followers to the
				// log end (what they have not replicated yet).
				upTo := hw
				switch {
				case follower:
					upTo = end
				case resp.readCommitted:
					upTo = lso
				}
				if off >= upTo {
					continue
				}
				limit := min(int64(max(rp.PartitionMaxBytes, 0)), max(respMax-total, 0))
				minOne := total == 0
				if limit == 0 && !minOne {
					continue
				}
				s, err := p.log.Read(off, upTo, int32(limit), minOne)
				if err != nil {
					fp.errCode = tributary.CodeOf(err)
					if fp.errCode == tributary.ErrUnknownServerError.Code {
						b.logger.Error("fetch read failed", "topic", p.topic.name, "partition", p.index, "offset", off, "err", err)
					}
					failed = true
					continue
				}
				fp.slice = s
				total += s.Len
				if resp.readCommitted && s.Len > 0 {
					fp.aborted = p.log.AbortedTransactions(off, upTo)
				}
			}
		}
		return total, failed
	}

	total, failed := gather()
	minBytes := int64(r.MinBytes)
	if failed || total >= minBytes || total >= respMax || r.MaxWaitMillis <= 0 || len(parts) == 0 {
		return resp, nil
	}

	w := b.newWaiter(parts)
	defer b.unwatch(w)
	defer req.parked(time.Now())
	timer := time.NewTimer(time.Duration(r.MaxWaitMillis) * time.Millisecond)
	defer timer.Stop()
	var connDone <-chan struct{} // a dead client stops the wait early
	if req.conn != nil {
		connDone = req.conn.Done()
	}
	for {
		// Re-check after registering: an append between the first
		// gather and newWaiter has already sent its wakeup elsewhere.
		total, failed = gather()
		if failed || total >= minBytes || total >= respMax {
			return resp, nil
		}
		select {
		case <-w.ch:
		case <-timer.C:
			gather()
			return resp, nil
		case <-b.closing:
			return resp, nil
		case <-connDone:
			return resp, nil
		}
	}
}

// checkLeaderEpoch compares a client's current leader epoch with the
// partition's (KIP-320).
func checkLeaderEpoch(client, current int32) int16 {
	switch {
	case client < current:
		return tributary.ErrFencedLeaderEpoch.Code
	case client > current:
		return tributary.ErrUnknownLeaderEpoch.Code
	}
	return 0
}

// fetchResponse is a Fetch response whose record bytes are file slices.
type fetchResponse struct {
	version       int16
	errCode       int16
	readCommitted bool
	topics        []fetchTopic
}

type fetchTopic struct {
	topic string
	parts []fetchPartition
}

type fetchPartition struct {
	partition         int32
	errCode           int16
	hw, lso, logStart int64
	slice             storage.FileSlice
	mem               []byte          // records held in memory instead of a slice (tests)
	diverging         *divergingEpoch // v12+: the follower's log diverged (KIP-595 style)
	// aborted: the aborted transactions of the range read, which a
	// read_committed consumer skips (nil under read_uncommitted).
	aborted []storage.AbortedTxn
}

// divergingEpoch tells a follower the largest epoch the leader and it
// share and where it ends, so it truncates there.
type divergingEpoch struct {
	epoch int32
	end   int64
}

func (p *fetchPartition) recordsLen() int64 {
	if p.mem != nil {
		return int64(len(p.mem))
	}
	return p.slice.Len
}

// appendBody appends the response body with every partition's record
// bytes left out. cuts receives, for each partition with records, the
// position in the body where they belong, in order.
func (r *fetchResponse) appendBody(dst []byte, cuts []int) ([]byte, []int) {
	v := r.version
	flex := v >= 12
	dst = binary.BigEndian.AppendUint32(dst, 0) // ThrottleMillis
	if v >= 7 {
		dst = binary.BigEndian.AppendUint16(dst, uint16(r.errCode))
		dst = binary.BigEndian.AppendUint32(dst, 0) // SessionID: sessionless
	}
	dst = appendArrayLen(dst, len(r.topics), flex)
	for i := range r.topics {
		t := &r.topics[i]
		if flex {
			dst = binary.AppendUvarint(dst, uint64(len(t.topic))+1)
		} else {
			dst = binary.BigEndian.AppendUint16(dst, uint16(len(t.topic)))
		}
		dst = append(dst, t.topic...)
		dst = appendArrayLen(dst, len(t.parts), flex)
		for j := range t.parts {
			p := &t.parts[j]
			dst = binary.BigEndian.AppendUint32(dst, uint32(p.partition))
			dst = binary.BigEndian.AppendUint16(dst, uint16(p.errCode))
			dst = binary.BigEndian.AppendUint64(dst, uint64(p.hw))
			dst = binary.BigEndian.AppendUint64(dst, uint64(p.lso))
			if v >= 5 {
				dst = binary.BigEndian.AppendUint64(dst, uint64(p.logStart))
			}
			// AbortedTransactions: null under read_uncommitted, the
			// aborted transactions of the range read under
			// read_committed, as Kafka.
			switch {
			case !r.readCommitted && flex:
				dst = append(dst, 0)
			case !r.readCommitted:
				dst = binary.BigEndian.AppendUint32(dst, 0xffffffff)
			default:
				dst = appendArrayLen(dst, len(p.aborted), flex)
				for _, a := range p.aborted {
					dst = binary.BigEndian.AppendUint64(dst, uint64(a.ProducerID))
					dst = binary.BigEndian.AppendUint64(dst, uint64(a.FirstOffset))
					if flex {
						dst = append(dst, 0) // tagged fields
					}
				}
			}
			if v >= 11 {
				dst = binary.BigEndian.AppendUint32(dst, 0xffffffff) // PreferredReadReplica -1
			}
			n := p.recordsLen()
			if flex {
				dst = binary.AppendUvarint(dst, uint64(n)+1)
			} else {
				dst = binary.BigEndian.AppendUint32(dst, uint32(n))
			}
			if n > 0 {
				cuts = append(cuts, len(dst))
			}
			if flex {
				if d := p.diverging; d != nil {
					// One tagged field: DivergingEpoch (tag 0), a struct
					// of epoch, end offset and its own empty tags.
					dst = append(dst, 1, 0, 13)
					dst = binary.BigEndian.AppendUint32(dst, uint32(d.epoch))
					dst = binary.BigEndian.AppendUint64(dst, uint64(d.end))
					dst = append(dst, 0)
				} else {
					dst = append(dst, 0) // partition tagged fields
				}
			}
		}
		if flex {
			dst = append(dst, 0) // topic tagged fields
		}
	}
	if flex {
		dst = append(dst, 0) // response tagged fields
	}
	return dst, cuts
}

func appendArrayLen(dst []byte, n int, flex bool) []byte {
	if flex {
		return binary.AppendUvarint(dst, uint64(n)+1)
	}
	return binary.BigEndian.AppendUint32(dst, uint32(n))
}

var (
	fetchBodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}
	copyBufPool   = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

	// errShortSlice means a segment held fewer bytes than the slice read
	// from it promised, after the frame length was already written.
	errShortSlice = errors.New("broker: segment shorter than its fetch slice (truncated while serving)")
)

// maxPooledBody bounds what goes back into fetchBodyPool, so one huge
// response (thousands of partitions) does not pin its buffer forever.
const maxPooledBody = 1 << 20

func (r *fetchResponse) writeFrame(w *bufio.Writer, conn net.Conn, corrID int32, flexibleHeader bool) error {
	bp := fetchBodyPool.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledBody {
			fetchBodyPool.Put(bp)
		}
	}()
	var cutsArr [16]int
	head := (*bp)[:0]
	head = binary.BigEndian.AppendUint32(head, 0) // frame size, set below
	head = binary.BigEndian.AppendUint32(head, uint32(corrID))
	if flexibleHeader {
		head = append(head, 0)
	}
	body, cuts := r.appendBody(head, cutsArr[:0])
	*bp = body

	size := int64(len(body) - 4)
	var recs []*fetchPartition
	for i := range r.topics {
		for j := range r.topics[i].parts {
			if p := &r.topics[i].parts[j]; p.recordsLen() > 0 {
				recs = append(recs, p)
				size += p.recordsLen()
			}
		}
	}
	if size > 1<<31-1 {
		return fmt.Errorf("broker: fetch response of %d bytes does not fit a frame", size)
	}
	binary.BigEndian.PutUint32(body, uint32(size))

	at := 0
	for i, p := range recs {
		if _, err := w.Write(body[at:cuts[i]]); err != nil {
			return err
		}
		at = cuts[i]
		if err := writeRecords(w, conn, p); err != nil {
			return err
		}
	}
	if _, err := w.Write(body[at:]); err != nil {
		return err
	}
	return w.Flush()
}

// writeRecords sends one partition's record bytes: from memory, by
// sendfile, or by pread through a pooled buffer.
func writeRecords(w *bufio.Writer, conn net.Conn, p *fetchPartition) error {
	if p.mem != nil {
		_, err := w.Write(p.mem)
		return err
	}
	s := p.slice
	// Small slices are cheaper copied into the write buffer than sent
	// with a flush plus a sendfile call of their own.
	if s.Len > int64(w.Available()) {
		if err := w.Flush(); err != nil {
			return err
		}
		if done, err := sendFile(conn, s); done || err != nil {
			return err
		}
	}
	return copySlice(w, s)
}

// copySlice writes s through w with positioned reads (pread), which,
// unlike io.Copy from the *os.File, never touches the file's shared
// offset that concurrent fetches of the same segment would race on.
func copySlice(w *bufio.Writer, s storage.FileSlice) error {
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	sr := io.NewSectionReader(s.File, s.Pos, s.Len)
	remain := s.Len
	for remain > 0 {
		n := int(min(remain, int64(len(buf))))
		m, err := io.ReadFull(sr, buf[:n])
		if m > 0 {
			if _, werr := w.Write(buf[:m]); werr != nil {
				return werr
			}
			remain -= int64(m)
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return errShortSlice
			}
			return err
		}
	}
	return nil
}
