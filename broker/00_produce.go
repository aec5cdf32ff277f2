package broker

// Produce: advertised v0–11, served v3–11 (RecordBatch, magic 2).
//
// Produce is advertised from v0 because librdkafka stops compressing when
// the minimum it sees is above 0 (KAFKA-18659); v0–2 carry the old
// message-set formats, which this broker does not store, so every
// partition of such a request is answered UNSUPPORTED_FOR_MESSAGE_FORMAT.
// v12 needs transaction version 2, v13 topic ids.
//
// Per partition, in request order: an unknown topic or partition is
// UNKNOWN_TOPIC_OR_PARTITION (produce never auto-creates); the batches go
// to storage.Log.Append, which validates them (CRC, sizes,
// max.message.bytes, producer id/epoch/sequence) and maps failures to
// Kafka errors. A duplicate of a batch already stored (same producer,
// epoch and sequence) is answered with the original base offset and no
// error: Kafka treats a duplicate as a success (KIP-192).
//
// acks=0 gets no response, and a failed partition closes the connection
// (the only signal left, as in Kafka); acks=1 is answered after the local
// append; acks=-1 waits until the high watermark covers the batch or the
// request's timeout passes (REQUEST_TIMED_OUT). On a single replica the
// watermark moves with the append, so the wait ends at once; otherwise the
// handler returns a deferred: the append happened in request order, and
// the wait runs off the connection's handler goroutine so later requests
// are not held up, while the response is still written in order.
//
// A transactional produce carries transactional batches; the partition
// log tracks the open transaction of their producer (its first offset
// holds back the last stable offset) until the coordinator's marker ends
// it. A batch that would open a transaction in the partition is first
// verified with the coordinator (txnverify.go, KIP-890 part 1).
//
// Version notes: v2 LogAppendTime; v5 LogStartOffset; v7 zstd; v8
// ErrorRecords/ErrorMessage; v9 flexible; v10 CurrentLeader tag (only on
// NOT_LEADER, never here).

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/tributary/tributary"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(0, 0, 11, handleProduce) }

// adminClientID is the client id allowed to write internal topics
// (Kafka's AdminUtils.AdminClientId).
const adminClientID = "__admin_client"

func handleProduce(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.ProduceRequest)
	resp := r.ResponseKind().(*kmsg.ProduceResponse)
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(r.Topics))

	// Every partition gets an answer in request order; fail fills one
	// in with an error.
	var reqErrCode int16
	var reqErrMsg string
	switch {
	case r.Version < 3:
		reqErrCode = tributary.ErrUnsupportedForMessageFormat.Code
		reqErrMsg = "Produce v0-2 (message format v0/v1) is not supported; use v3 or later"
	case r.Acks != 0 && r.Acks != 1 && r.Acks != -1:
		reqErrCode = tributary.ErrInvalidRequiredAcks.Code
		reqErrMsg = "acks must be -1, 0 or 1"
	}

	type appended struct {
		rp     *kmsg.ProduceResponseTopicPartition
		p      *partition
		last   int64
		minISR int
	}
	var waits []appended

	for i := range r.Topics {
		rt := &r.Topics[i]
		st := &resp.Topics[i]
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := &st.Partitions[j]
			sp.Default()
			sp.Partition = rp.Partition
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
			fail := func(code int16, msg string) {
				sp.ErrorCode = code
				if r.Version >= 8 && msg != "" {
					sp.ErrorMessage = kmsg.StringPtr(msg)
				}
			}
			if reqErrCode != 0 {
				fail(reqErrCode, reqErrMsg)
				continue
			}
			p, err := b.leaderPartition(rt.Topic, rp.Partition)
			if err != nil {
				code, msg := errCodeMsg(err)
				fail(code, derefString(msg))
				continue
			}
			if p.topic.internal && req.clientID != adminClientID {
				fail(tributary.ErrInvalidTopicException.Code, "cannot produce to an internal topic")
				continue
			}
			if len(rp.Records) == 0 {
				fail(tributary.ErrInvalidRecord.Code, "produce request partition has no record batches")
				continue
			}

			var unlock func()
			if r.TransactionID != nil {
				var e *tributary.Error
				if unlock, e = b.verifyTxnProduce(req, *r.TransactionID, rt.Topic, p, rp.Records); e != nil {
					fail(e.Code, "the transaction coordinator did not confirm this partition in the producer's transaction")
					b.observeProduceFailed(rt.Topic)
					continue
				}
			}
			minISR := b.minInsyncReplicas(p.topic)
			res, err := p.rep.AppendAsLeader(rp.Records, r.Acks, minISR)
			if unlock != nil {
				unlock()
			}
			if err != nil {
				code := tributary.CodeOf(err)
				if code == tributary.ErrUnknownServerError.Code {
					b.logger.Error("append failed", "topic", rt.Topic, "partition", rp.Partition, "err", err)
				}
				fail(code, err.Error())
				b.observeProduceFailed(rt.Topic)
				if code == tributary.ErrInvalidRecord.Code && r.Version >= 8 {
					// Storage does not say which record was bad; Kafka
					// lists at least one, so point at the batch start.
					sp.ErrorRecords = []kmsg.ProduceResponseTopicPartitionErrorRecord{{RelativeOffset: 0, ErrorMessage: kmsg.StringPtr(err.Error())}}
				}
				continue
			}
			if !res.Duplicate {
				b.notifyPartition(p)
			}
			b.observeProduce(rt.Topic, rp.Records, res)
			sp.BaseOffset = res.BaseOffset
			sp.LogAppendTime = res.LogAppendTime
			sp.LogStartOffset = res.LogStartOffset
			if r.Acks == -1 {
				waits = append(waits, appended{sp, p, res.LastOffset, minISR})
			}
		}
	}

	if r.Acks == 0 {
		// No response to carry an error: like Kafka, close the
		// connection so the producer notices and refreshes metadata.
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				if p := &resp.Topics[i].Partitions[j]; p.ErrorCode != 0 {
					return nil, fmt.Errorf("acks=0 produce to %s/%d failed with %v; closing the connection as Kafka does",
						resp.Topics[i].Topic, p.Partition, tributary.ErrorForCode(p.ErrorCode))
				}
			}
		}
		return nil, nil
	}
	if len(waits) == 0 {
		return resp, nil
	}
	deadline := time.Now().Add(time.Duration(max(r.TimeoutMillis, 0)) * time.Millisecond)
	wait := func() (any, error) {
		// Time spent waiting for the ISR is Kafka's RemoteTime.
		defer req.parked(time.Now())
		for _, w := range waits {
			if err := b.waitAcked(w.p, w.last+1, w.minISR, time.Until(deadline)); err != nil {
				w.rp.ErrorCode = tributary.CodeOf(err)
				if r.Version >= 8 {
					w.rp.ErrorMessage = kmsg.StringPtr(err.Error())
				}
			}
		}
		return resp, nil
	}
	covered := true
	for _, w := range waits {
		done, err := w.p.rep.AckedAfterAppend(w.last+1, w.minISR)
		covered = covered && (done || err != nil)
	}
	if covered {
		// One replica, or followers already caught up: answer in line
		// and spare the goroutine.
		return wait()
	}
	return deferred(wait), nil
}

// codeOrUnknownTopic maps a lookupPartition error to its wire code; an
// error without a Kafka code means the partition is not here.
func codeOrUnknownTopic(err error) int16 {
	var ke *tributary.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return tributary.ErrUnknownTopicOrPartition.Code
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// minInsyncReplicas is the topic's min.insync.replicas.
func (b *Broker) minInsyncReplicas(t *topic) int {
	v, _ := b.topicConfigValue(t, "min.insync.replicas")
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 1
	}
	return n
}
