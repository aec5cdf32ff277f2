package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/admin"
)

// txnCmd inspects transactions (KIP-664), the way to find a hanging
// transaction: one left open holds back the last stable offset of its
// partitions, and read_committed consumers stop there.
var txnCmd = &branch{
	name:    "txn",
	summary: "list and describe transactions and the producers writing to partitions",
	subs: []*leaf{
		{name: "txn list", args: "[--state STATE]...", summary: "list transactional ids and their state", flags: txnList},
		{name: "txn describe", args: "TRANSACTIONAL-ID...", summary: "show a transactional id's producer, state, timeout and open partitions", flags: txnDescribe},
		{name: "txn producers", args: "TOPIC [PARTITION]", summary: "show the producers with state on a topic's partitions and their open transactions", flags: txnProducers},
	},
}

type txnListJSON struct {
	TransactionalID string `json:"transactional_id"`
	State           string `json:"state"`
	ProducerID      int64  `json:"producer_id"`
	Coordinator     int32  `json:"coordinator"`
}

func txnList(f *flagSet) func(context.Context, *tool, []string) error {
	var states []string
	f.List(&states, "s", "state", "STATE", true, "only ids in this state, e.g. Ongoing (repeatable or comma-separated)")
	return func(ctx context.Context, t *tool, args []string) error {
		if len(args) > 0 {
			return usagef("unexpected arguments %q", args)
		}
		ctx, a, done, err := t.adminCtx(ctx)
		if err != nil {
			return err
		}
		defer done()
		ls, err := a.ListTransactions(ctx, admin.TxnFilter{States: states})
		if err != nil && len(ls) == 0 {
			return err
		}
		out := []txnListJSON{}
		for _, l := range ls {
			out = append(out, txnListJSON{TransactionalID: l.TransactionalID, State: l.State, ProducerID: l.ProducerID, Coordinator: l.Coordinator})
		}
		if t.json() {
			if werr := writeJSON(t.stdout, out); werr != nil {
				return werr
			}
		} else {
			tb := newTable(t.stdout, "TRANSACTIONAL-ID", "STATE", "PRODUCER-ID", "COORDINATOR")
			for _, l := range out {
				tb.row(l.TransactionalID, l.State, l.ProducerID, l.Coordinator)
			}
			tb.flush()
		}
		return err // some brokers did not answer
	}
}

type txnPartitionJSON struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

type txnDescribeJSON struct {
	TransactionalID string             `json:"transactional_id"`
	Coordinator     int32              `json:"coordinator"`
	State           string             `json:"state"`
	ProducerID      int64              `json:"producer_id"`
	ProducerEpoch   int16              `json:"producer_epoch"`
	TimeoutMs       int64              `json:"timeout_ms"`
	StartedMs       int64              `json:"start_timestamp_ms"` // -1 without an open transaction
	Partitions      []txnPartitionJSON `json:"partitions"`
}

func txnDescribe(f *flagSet) func(context.Context, *tool, []string) error {
	return func(ctx context.Context, t *tool, args []string) error {
		if len(args) == 0 {
			return usagef("name at least one transactional id")
		}
		ctx, a, done, err := t.groupAdmin(ctx)
		if err != nil {
			return err
		}
		defer done()
		ds, err := a.DescribeTransactions(ctx, args...)
		if err != nil {
			return err
		}
		out := make([]txnDescribeJSON, 0, len(ds))
		for _, d := range ds {
			if errors.Is(d.Err, tributary.ErrTransactionalIdNotFound) {
				return notFoundError{"transactional id", d.TransactionalID}
			}
			if d.Err != nil {
				return fmt.Errorf("transactional id %q: %w", d.TransactionalID, d.Err)
			}
			j := txnDescribeJSON{TransactionalID: d.TransactionalID, Coordinator: d.Coordinator, State: d.State,
				ProducerID: d.ProducerID, ProducerEpoch: d.ProducerEpoch, TimeoutMs: d.Timeout.Milliseconds(),
				StartedMs: -1, Partitions: []txnPartitionJSON{}}
			if !d.Started.IsZero() {
				j.StartedMs = d.Started.UnixMilli()
			}
			for _, p := range d.Partitions {
				j.Partitions = append(j.Partitions, txnPartitionJSON{Topic: p.Topic, Partition: p.Partition})
			}
			out = append(out, j)
		}
		return writeEach(t, out, printTxn)
	}
}

func printTxn(w io.Writer, d txnDescribeJSON) {
	tb := newTable(w)
	tb.row("TRANSACTIONAL-ID", d.TransactionalID)
	tb.row("COORDINATOR", d.Coordinator)
	tb.row("STATE", d.State)
	tb.row("PRODUCER-ID", d.ProducerID)
	tb.row("PRODUCER-EPOCH", d.ProducerEpoch)
	tb.row("TIMEOUT", time.Duration(d.TimeoutMs)*time.Millisecond)
	if d.StartedMs >= 0 {
		started := time.UnixMilli(d.StartedMs)
		tb.row("STARTED", fmt.Sprintf("%s (%s ago)", started.UTC().Format(time.RFC3339), time.Since(started).Round(time.Second)))
	} else {
		tb.row("STARTED", nil)
	}
	var parts []string
	for _, p := range d.Partitions {
		parts = append(parts, fmt.Sprintf("%s[%d]", p.Topic, p.Partition))
	}
	tb.row("PARTITIONS", strings.Join(parts, " "))
	tb.flush()
}

type producerJSON struct {
	Topic            string `json:"topic"`
	Partition        int32  `json:"partition"`
	ProducerID       int64  `json:"producer_id"`
	ProducerEpoch    int32  `json:"producer_epoch"`
	LastSequence     int32  `json:"last_sequence"`
	LastTimestampMs  int64  `json:"last_timestamp_ms"` // -1 if unknown
	CoordinatorEpoch int32  `json:"coordinator_epoch"`
	TxnStartOffset   int64  `json:"current_txn_start_offset"` // -1 without an open transaction
}

func txnProducers(f *flagSet) func(context.Context, *tool, []string) error {
	return func(ctx context.Context, t *tool, args []string) error {
		if len(args) < 1 || len(args) > 2 {
			return usagef("name a topic and optionally a partition")
		}
		topic := args[0]
		var parts []int32
		if len(args) == 2 {
			p, err := strconv.ParseInt(args[1], 10, 32)
			if err != nil || p < 0 {
				return usagef("partition %q is not a partition number", args[1])
			}
			parts = []int32{int32(p)}
		}
		ctx, a, done, err := t.adminCtx(ctx)
		if err != nil {
			return err
		}
		defer done()
		ds, err := a.DescribeProducers(ctx, map[string][]int32{topic: parts})
		if err != nil {
			return err
		}
		out := []producerJSON{}
		for _, d := range ds {
			if d.Err != nil {
				if len(parts) == 1 && errors.Is(d.Err, tributary.ErrUnknownTopicOrPartition) && d.Partition >= 0 {
					return fmt.Errorf("topic %q has no partition %d", topic, d.Partition)
				}
				return topicErr(topic, d.Err)
			}
			for _, p := range d.Producers {
				ts := int64(-1)
				if !p.LastTimestamp.IsZero() {
					ts = p.LastTimestamp.UnixMilli()
				}
				out = append(out, producerJSON{Topic: d.Topic, Partition: d.Partition, ProducerID: p.ProducerID, ProducerEpoch: p.ProducerEpoch,
					LastSequence: p.LastSequence, LastTimestampMs: ts, CoordinatorEpoch: p.CoordinatorEpoch, TxnStartOffset: p.CurrentTxnStartOffset})
			}
		}
		if t.json() {
			return writeJSON(t.stdout, out)
		}
		tb := newTable(t.stdout, "TOPIC", "PARTITION", "PRODUCER-ID", "PRODUCER-EPOCH", "LAST-SEQUENCE", "LAST-TIMESTAMP", "COORDINATOR-EPOCH", "TXN-START-OFFSET")
		for _, p := range out {
			var ts any
			if p.LastTimestampMs >= 0 {
				ts = time.UnixMilli(p.LastTimestampMs).UTC().Format(time.RFC3339Nano)
			}
			tb.row(p.Topic, p.Partition, p.ProducerID, p.ProducerEpoch, p.LastSequence, ts, p.CoordinatorEpoch, offsetCell(p.TxnStartOffset))
		}
		return tb.flush()
	}
}
