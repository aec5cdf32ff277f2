package consumer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/client"
	"github.com/tributary/tributary/internal/clientx"
)

// Offsets: a committed offset is the offset of the next record to
// consume, the position, as in every Kafka client. Commits go to the group
// coordinator with OffsetCommit, carrying the member id and generation
// when the consumer is a group member, so the coordinator refuses commits
// from a member that no longer owns the partitions
// (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS).

var errNothingToCommit = errors.New("consumer: nothing to commit")

// CommitError is a commit that failed for some partitions: Errs holds each
// failed partition's error. errors.Is matches any of them, so
// errors.Is(err, tributary.ErrRebalanceInProgress) works on it.
type CommitError struct {
	Errs map[tributary.TopicPartition]error
}

func (e *CommitError) Error() string {
	tps := sortedTPs(slices.Collect(maps.Keys(e.Errs)))
	s := fmt.Sprintf("consumer: commit failed for %d partition(s)", len(tps))
	for i, tp := range tps {
		if i == 3 {
			s += ", ..."
			break
		}
		s += fmt.Sprintf("; %s[%d]: %v", tp.Topic, tp.Partition, e.Errs[tp])
	}
	return s
}

// Unwrap returns the partitions' errors.
func (e *CommitError) Unwrap() []error {
	out := make([]error, 0, len(e.Errs))
	for _, tp := range sortedTPs(slices.Collect(maps.Keys(e.Errs))) {
		out = append(out, e.Errs[tp])
	}
	return out
}

// coordState caches the group coordinator. Guarded by its own mutex,
// never held with Consumer.mu or across I/O.
type coordState struct {
	mu sync.Mutex
	id int32 // -1 unknown
	ok bool
}

// coordinator returns the group coordinator's node id, looking it up with
// FindCoordinator (retrying while it is not available) when not cached.
func (c *Consumer) coordinator(ctx context.Context) (int32, error) {
	c.coord.mu.Lock()
	if c.coord.ok {
		id := c.coord.id
		c.coord.mu.Unlock()
		return id, nil
	}
	c.coord.mu.Unlock()
	for attempt := 1; ; attempt++ {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorKey = c.cfg.group
		req.CoordinatorKeys = []string{c.cfg.group}
		req.CoordinatorType = 0
		r, err := c.cl.Request(ctx, req)
		if err == nil {
			resp := r.(*kmsg.FindCoordinatorResponse)
			code, id := resp.ErrorCode, resp.NodeID
			if len(resp.Coordinators) > 0 {
				code, id = resp.Coordinators[0].ErrorCode, resp.Coordinators[0].NodeID
			}
			if err = tributary.ErrorForCode(code); err == nil {
				c.coord.mu.Lock()
				c.coord.id, c.coord.ok = id, true
				c.coord.mu.Unlock()
				return id, nil
			}
		}
		if ctx.Err() != nil || !(tributary.IsRetriable(err) || errors.Is(err, client.ErrConnection)) {
			return -1, fmt.Errorf("consumer: finding the coordinator of group %q: %w", c.cfg.group, err)
		}
		select {
		case <-time.After(clientx.Of(c.cl).Backoff(attempt)):
		case <-ctx.Done():
			return -1, fmt.Errorf("consumer: finding the coordinator of group %q: %w (last error: %w)", c.cfg.group, ctx.Err(), err)
		}
	}
}

// forgetCoordinator drops the cached coordinator after NOT_COORDINATOR,
// COORDINATOR_NOT_AVAILABLE or a connection failure.
func (c *Consumer) forgetCoordinator() {
	c.coord.mu.Lock()
	c.coord.ok = false
	c.coord.mu.Unlock()
}

// coordinatorMoved reports whether err means the coordinator must be
// looked up again, and forgets it if so.
func (c *Consumer) coordinatorMoved(err error) bool {
	if errors.Is(err, tributary.ErrNotCoordinator) || errors.Is(err, tributary.ErrCoordinatorNotAvailable) ||
		errors.Is(err, client.ErrConnection) || errors.Is(err, client.ErrUnknownBroker) {
		c.forgetCoordinator()
		return true
	}
	return false
}

// coordRequest sends req to the group coordinator.
func (c *Consumer) coordRequest(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	id, err := c.coordinator(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := c.cl.RequestBroker(ctx, id, req)
	if err != nil {
		c.coordinatorMoved(err)
	}
	return resp, err
}

// retryCoord reports whether a coordinator error is worth retrying.
func retryCoord(err error) bool {
	return tributary.IsRetriable(err) || errors.Is(err, client.ErrConnection) || errors.Is(err, client.ErrUnknownBroker)
}

// CommittedOffsets returns the group's committed offsets for tps (all
// assigned partitions if none are given); partitions without a committed
// offset are left out.
func (c *Consumer) CommittedOffsets(ctx context.Context, tps ...tributary.TopicPartition) (map[tributary.TopicPartition]int64, error) {
	if c.cfg.group == "" {
		return nil, ErrNoGroup
	}
	if len(tps) == 0 {
		tps = c.Assignment()
	}
	offs, err := c.fetchCommitted(ctx, tps)
	if err != nil {
		return nil, err
	}
	for tp, o := range offs {
		if o < 0 {
			delete(offs, tp)
		}
	}
	return offs, nil
}

// fetchCommitted sends OffsetFetch for tps, retrying retriable errors
// (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, UNSTABLE_OFFSET_COMMIT)
// while ctx allows. Partitions without a committed offset map to -1.
func (c *Consumer) fetchCommitted(ctx context.Context, tps []tributary.TopicPartition) (map[tributary.TopicPartition]int64, error) {
	byTopic := make(map[string][]int32)
	for _, tp := range tps {
		byTopic[tp.Topic] = append(byTopic[tp.Topic], tp.Partition)
	}
	for attempt := 1; ; attempt++ {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Group = c.cfg.group
		req.RequireStable = true // KIP-447: wait out pending transactional commits
		for _, topic := range sortedKeys(byTopic) {
			t := kmsg.NewOffsetFetchRequestTopic()
			t.Topic = topic
			t.Partitions = byTopic[topic]
			req.Topics = append(req.Topics, t)
		}
		// v8+ batches groups and v10 names topics by id; v7 has
		// everything a single group needs.
		r, err := c.coordRequest(ctx, client.Limit(req, 1, 7))
		var out map[tributary.TopicPartition]int64
		if err == nil {
			resp := r.(*kmsg.OffsetFetchResponse)
			err = tributary.ErrorForCode(resp.ErrorCode)
			out = make(map[tributary.TopicPartition]int64, len(tps))
			if errors.Is(err, tributary.ErrGroupIdNotFound) {
				// A group that never committed has no offsets. Kafka
				// answers that with -1 offsets; kfake (and KIP-848
				// coordinators for an unknown group) with this code.
				for _, tp := range tps {
					out[tp] = -1
				}
				return out, nil
			}
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if perr := tributary.ErrorForCode(p.ErrorCode); perr != nil && err == nil {
						err = perr
					}
					out[tributary.TopicPartition{Topic: t.Topic, Partition: p.Partition}] = p.Offset
				}
			}
		}
		if err == nil {
			return out, nil
		}
		c.coordinatorMoved(err)
		if ctx.Err() != nil || !retryCoord(err) {
			return nil, err
		}
		select {
		case <-time.After(clientx.Of(c.cl).Backoff(attempt)):
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		}
	}
}

// Commit commits, for each partition in recs, the offset after its
// highest record, and waits for the answer. With no records it commits
// the position of every assigned partition: everything Poll has returned
// (Java: commitSync()). As a group member it fails with an error wrapping
// tributary.ErrRebalanceInProgress, ErrIllegalGeneration or
// ErrUnknownMemberId when the member no longer owns the partitions. After
// Close it returns ErrClosed.
func (c *Consumer) Commit(ctx context.Context, recs ...*tributary.Record) error {
	if err := c.checkCommit(); err != nil {
		return err
	}
	if len(recs) == 0 {
		err := c.commitPositions(ctx, nil)
		if errors.Is(err, errNothingToCommit) {
			return nil
		}
		return err
	}
	return c.commitOffsets(ctx, offsetsAfter(recs))
}

// CommitOffsets commits the given offsets (each the offset of the next
// record to consume) and waits for the answer. After Close it returns
// ErrClosed.
func (c *Consumer) CommitOffsets(ctx context.Context, offsets map[tributary.TopicPartition]int64) error {
	if err := c.checkCommit(); err != nil {
		return err
	}
	return c.commitOffsets(ctx, offsets)
}

// checkCommit refuses commits after Close and without a group.
func (c *Consumer) checkCommit() error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if c.cfg.group == "" {
		return ErrNoGroup
	}
	return nil
}

// commitOffsets is CommitOffsets without the Close check, for the
// consumer's own commits (auto-commit, before a revoke, in Close).
func (c *Consumer) commitOffsets(ctx context.Context, offsets map[tributary.TopicPartition]int64) error {
	if c.cfg.group == "" {
		return ErrNoGroup
	}
	if len(offsets) == 0 {
		return nil
	}
	return c.commit(ctx, offsets)
}

// ErrTooManyAsyncCommits is passed to a CommitAsync callback when
// maxAsyncCallbacks earlier callbacks still wait for the coordinator: the
// commit was not made. A later commit carries its offsets anyway (it
// commits positions, which only move on).
var ErrTooManyAsyncCommits = errors.New("consumer: too many asynchronous commits waiting for the coordinator")

// maxAsyncCallbacks bounds the callbacks of asynchronous commits waiting
// for one that is in flight.
const maxAsyncCallbacks = 1024

// asyncCommits is the queue of CommitAsync. Guarded by Consumer.mu.
//
// One goroutine at a time sends asynchronous commits, one after the other.
// Commits made while one is in flight wait in pending, merged: a later
// offset for a partition replaces an earlier one, as the coordinator
// would once both were applied in order. So a tight loop of CommitAsync
// against a coordinator that does not answer costs one goroutine and
// one map, not a goroutine per call.
type asyncCommits struct {
	running bool                               // the sender goroutine runs
	pending map[tributary.TopicPartition]int64 // merged offsets not sent yet
	cbs     []asyncCallback                    // callbacks of the pending commits
	idle    chan struct{}                      // closed when the sender exits
}

type asyncCallback struct {
	offsets map[tributary.TopicPartition]int64
	fn      func(map[tributary.TopicPartition]int64, error)
}

// CommitAsync commits like Commit without waiting; cb, if not nil, is
// called with the offsets and the result from a consumer goroutine (or at
// once, on the caller's goroutine, with ErrClosed after Close or
// ErrTooManyAsyncCommits). Asynchronous commits are sent in the order they
// are made, one at a time; those made while one is in flight are merged
// into the next request, and each callback gets that request's result.
// Close sends the commits already made before it returns.
func (c *Consumer) CommitAsync(recs []*tributary.Record, cb func(map[tributary.TopicPartition]int64, error)) {
	var offsets map[tributary.TopicPartition]int64
	if len(recs) > 0 {
		offsets = offsetsAfter(recs)
	}
	done := func(err error) {
		if cb != nil {
			cb(offsets, err)
		}
	}
	if err := c.checkCommit(); err != nil {
		done(err)
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		done(ErrClosed)
		return
	}
	if offsets == nil {
		offsets = c.positionsLocked()
	}
	a := &c.async
	if cb != nil {
		if len(a.cbs) >= maxAsyncCallbacks {
			c.mu.Unlock()
			done(ErrTooManyAsyncCommits)
			return
		}
		a.cbs = append(a.cbs, asyncCallback{offsets, cb})
	}
	if a.pending == nil {
		a.pending = make(map[tributary.TopicPartition]int64, len(offsets))
	}
	maps.Copy(a.pending, offsets)
	if !a.running {
		a.running = true
		a.idle = make(chan struct{})
		c.wg.Add(1) // under mu with closed false: Close has not reached wg.Wait
		go func() {
			defer c.wg.Done()
			c.sendAsyncCommits()
		}()
	}
	c.mu.Unlock()
}

// sendAsyncCommits sends the pending asynchronous commits until none are
// left. After Close's final commit it fails what remains with ErrClosed.
func (c *Consumer) sendAsyncCommits() {
	for {
		c.mu.Lock()
		a := &c.async
		offsets, cbs, closed := a.pending, a.cbs, c.closed
		a.pending, a.cbs = nil, nil
		if offsets == nil && len(cbs) == 0 {
			a.running = false
			close(a.idle)
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		err := ErrClosed
		if !closed {
			ctx, cancel := context.WithTimeout(c.ctx, 2*clientx.Of(c.cl).RequestTimeout())
			err = c.commitOffsets(ctx, offsets)
			cancel()
		}
		for _, cb := range cbs {
			cb.fn(cb.offsets, err)
		}
	}
}

// waitAsyncCommits waits, within ctx, until the asynchronous commits made
// so far are answered.
func (c *Consumer) waitAsyncCommits(ctx context.Context) error {
	c.mu.Lock()
	running, idle := c.async.running, c.async.idle
	c.mu.Unlock()
	if !running {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("consumer: waiting for asynchronous commits: %w", ctx.Err())
	}
}

// offsetsAfter maps each partition in recs to its highest offset + 1.
func offsetsAfter(recs []*tributary.Record) map[tributary.TopicPartition]int64 {
	out := make(map[tributary.TopicPartition]int64)
	for _, r := range recs {
		tp := tributary.TopicPartition{Topic: r.Topic, Partition: r.Partition}
		if o, ok := out[tp]; !ok || r.Offset+1 > o {
			out[tp] = r.Offset + 1
		}
	}
	return out
}

// commitPositions commits the positions of tps (all assigned partitions
// when nil) that moved since their last commit.
func (c *Consumer) commitPositions(ctx context.Context, tps []tributary.TopicPartition) error {
	c.mu.Lock()
	offsets := make(map[tributary.TopicPartition]int64)
	add := func(p *partState) {
		if p.position >= 0 && p.position != p.committed {
			offsets[p.tp] = p.position
		}
	}
	if tps == nil {
		for _, p := range c.order {
			add(p)
		}
	} else {
		for _, tp := range tps {
			if p := c.parts[tp]; p != nil {
				add(p)
			}
		}
	}
	c.mu.Unlock()
	if len(offsets) == 0 {
		return errNothingToCommit
	}
	return c.commitOffsets(ctx, offsets)
}

// commit sends OffsetCommit, retrying while the coordinator moves or
// loads, and records what was committed.
func (c *Consumer) commit(ctx context.Context, offsets map[tributary.TopicPartition]int64) error {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	for attempt := 1; ; attempt++ {
		c.mu.Lock()
		gen, member, inGroup := c.generation, c.memberID, c.groupOn
		c.mu.Unlock()
		if inGroup && gen < 0 {
			// Between generations: the coordinator would refuse it.
			return fmt.Errorf("consumer: commit during a rebalance: %w", tributary.ErrRebalanceInProgress)
		}
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group = c.cfg.group
		req.Generation = gen
		req.MemberID = member
		if c.cfg.instanceID != "" && inGroup {
			req.InstanceID = kmsg.StringPtr(c.cfg.instanceID)
		}
		byTopic := make(map[string][]kmsg.OffsetCommitRequestTopicPartition)
		for tp, off := range offsets {
			p := kmsg.NewOffsetCommitRequestTopicPartition()
			p.Partition = tp.Partition
			p.Offset = off
			p.LeaderEpoch = -1
			byTopic[tp.Topic] = append(byTopic[tp.Topic], p)
		}
		for _, topic := range sortedKeys(byTopic) {
			t := kmsg.NewOffsetCommitRequestTopic()
			t.Topic = topic
			t.Partitions = byTopic[topic]
			req.Topics = append(req.Topics, t)
		}
		// v10 names topics by id; v9 has everything else.
		r, err := c.coordRequest(ctx, client.Limit(req, 2, 9))
		if err == nil {
			resp := r.(*kmsg.OffsetCommitResponse)
			failed := make(map[tributary.TopicPartition]error)
			var retry error
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					perr := tributary.ErrorForCode(p.ErrorCode)
					if perr == nil {
						continue
					}
					tp := tributary.TopicPartition{Topic: t.Topic, Partition: p.Partition}
					failed[tp] = perr
					if c.coordinatorMoved(perr) || errors.Is(perr, tributary.ErrCoordinatorLoadInProgress) || errors.Is(perr, tributary.ErrRequestTimedOut) {
						retry = perr
					}
				}
			}
			c.mu.Lock()
			for tp, off := range offsets {
				if p := c.parts[tp]; p != nil && failed[tp] == nil {
					p.committed = off
				}
			}
			c.mu.Unlock()
			if len(failed) == 0 {
				return nil
			}
			if retry == nil {
				return &CommitError{Errs: failed}
			}
			err = retry
		}
		if ctx.Err() != nil || !retryCoord(err) {
			return fmt.Errorf("consumer: commit: %w", err)
		}
		select {
		case <-time.After(clientx.Of(c.cl).Backoff(attempt)):
		case <-ctx.Done():
			return fmt.Errorf("consumer: commit: %w (last error: %w)", ctx.Err(), err)
		}
	}
}

// autoCommitLoop commits positions every AutoCommitInterval.
func (c *Consumer) autoCommitLoop() {
	t := time.NewTicker(c.cfg.autoCommitInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-c.ctx.Done():
			return
		}
		c.mu.Lock()
		skip := c.groupOn && c.generation < 0
		c.mu.Unlock()
		if skip {
			continue
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.autoCommitInterval+clientx.Of(c.cl).RequestTimeout())
		err := c.commitPositions(ctx, nil)
		cancel()
		switch {
		case err == nil:
			c.mu.Lock()
			c.autoCommits++
			c.mu.Unlock()
		case errors.Is(err, errNothingToCommit), c.ctx.Err() != nil:
		default:
			clientx.Of(c.cl).Logger().Warn("consumer: auto-commit failed", "group", c.cfg.group, "err", err)
		}
	}
}
