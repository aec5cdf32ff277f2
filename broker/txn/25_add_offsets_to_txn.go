package txn

// AddOffsetsToTxn: v0–4.
//
// Adds the group's __consumer_offsets partition (Config.GroupPartition)
// to the transaction, so the commit or abort marker also lands there and
// the group coordinator applies or discards the transaction's offsets
// (TxnOffsetCommit, handled by the group coordinator). Same checks and
// errors as AddPartitionsToTxn; PRODUCER_FENCED is answered
// INVALID_PRODUCER_EPOCH below v2.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetsTopic is the internal topic AddOffsetsToTxn adds a partition of.
const OffsetsTopic = "__consumer_offsets"

// AddOffsetsToTxn answers AddOffsetsToTxn. Any record it produces must be
// durable before the response is sent.
func (c *Coordinator) AddOffsetsToTxn(now time.Time, req *kmsg.AddOffsetsToTxnRequest) *kmsg.AddOffsetsToTxnResponse {
	ms := now.UnixMilli()
	c.observe(ms)
	resp := kmsg.NewPtrAddOffsetsToTxnResponse()
	resp.Version = req.Version
	tp := TopicPartition{OffsetsTopic, c.cfg.GroupPartition(req.Group)}
	// The offsets partition always exists: Kafka does not check it.
	codes := c.addPartitions(ms, req.TransactionalID, req.ProducerID, req.ProducerEpoch, []TopicPartition{tp}, false, false, req.Version)
	resp.ErrorCode = codes[tp]
	return resp
}
