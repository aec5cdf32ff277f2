package admin

import (
	"context"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// coordinatorCache remembers each group's coordinator until a request to
// it fails with a coordinator error or a connection failure.
type coordinatorCache struct {
	mu sync.Mutex
	m  map[string]int32 // group → node id
}

func (c *coordinatorCache) get(group string) (int32, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.m[group]
	return n, ok
}

func (c *coordinatorCache) set(group string, node int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[group] = node
}

func (c *coordinatorCache) forget(group string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, group)
}

// coordinatorMoved reports whether a group error means "find the
// coordinator again and retry".
func coordinatorMoved(code int16) bool {
	switch code {
	case tributary.ErrNotCoordinator.Code, tributary.ErrCoordinatorNotAvailable.Code,
		tributary.ErrCoordinatorLoadInProgress.Code:
		return true
	}
	return false
}

// findCoordinators returns each group's coordinator, from the cache or
// with FindCoordinator: one batched request (v4+, KIP-699) when the broker
// supports it, else one request per group. A group whose lookup failed is
// in errs, with a retriable error if a retry may help.
func (a *Client) findCoordinators(ctx context.Context, typ int8, groups []string) (nodes map[string]int32, errs map[string]error, err error) {
	nodes = make(map[string]int32, len(groups))
	errs = make(map[string]error)
	var missing []string
	for _, g := range groups {
		if n, ok := a.coords.get(cacheKey(typ, g)); ok {
			nodes[g] = n
		} else {
			missing = append(missing, g)
		}
	}
	for len(missing) > 0 {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorType = typ       // 0 group, 1 transactional id
		req.CoordinatorKey = missing[0] // v0-v3 ask for one group
		req.CoordinatorKeys = missing   // v4+ ask for all
		raw, rerr := a.cl.Request(ctx, req)
		if rerr != nil {
			return nil, nil, rerr
		}
		resp := raw.(*kmsg.FindCoordinatorResponse)
		if resp.Version < 4 {
			g := missing[0]
			if resp.ErrorCode != 0 {
				errs[g] = kafkaErr(resp.ErrorCode, resp.ErrorMessage)
			} else {
				nodes[g] = resp.NodeID
				a.coords.set(cacheKey(typ, g), resp.NodeID)
			}
			missing = missing[1:]
			continue
		}
		for _, g := range missing {
			errs[g] = ErrNoResponse
			for _, c := range resp.Coordinators {
				if c.Key != g {
					continue
				}
				delete(errs, g)
				if c.ErrorCode != 0 {
					errs[g] = kafkaErr(c.ErrorCode, c.ErrorMessage)
				} else {
					nodes[g] = c.NodeID
					a.coords.set(cacheKey(typ, g), c.NodeID)
				}
				break
			}
		}
		missing = nil
	}
	return nodes, errs, nil
}

// groupSend issues one request for gs to their coordinator node and
// records the answers itself. It returns the groups to retry elsewhere
// (their answer was a coordinator error), or a transport error, after
// which all of gs are retried.
type groupSend func(ctx context.Context, node int32, gs []string) (retry []string, err error)

// forGroups runs send for groups, batched by coordinator, and retries
// groups whose coordinator moved, is loading or is unreachable, up to
// RequestRetries with backoff. It returns the groups that could not be
// handled with the reason; err is set only if no FindCoordinator request
// could be made at all.
func (a *Client) forGroups(ctx context.Context, groups []string, send groupSend) (failed map[string]error, err error) {
	return a.forCoordinators(ctx, 0, groups, send)
}

// cacheKey keeps groups and transactional ids of the same name apart in
// the coordinator cache.
func cacheKey(typ int8, key string) string {
	if typ == 0 {
		return key
	}
	return fmt.Sprintf("%d\x00%s", typ, key)
}

// forCoordinators is forGroups for coordinators of type typ: 0 groups,
// 1 transactional ids.
func (a *Client) forCoordinators(ctx context.Context, typ int8, groups []string, send groupSend) (failed map[string]error, err error) {
	failed = make(map[string]error)
	pending := groups
	for attempt := 1; len(pending) > 0; attempt++ {
		last := attempt > a.cfg.retries
		nodes, errs, ferr := a.findCoordinators(ctx, typ, pending)
		if ferr != nil {
			if attempt == 1 && !retriableTransport(ferr) {
				return nil, ferr
			}
			if last || !retriableTransport(ferr) || ctx.Err() != nil {
				for _, g := range pending {
					failed[g] = ferr
				}
				return failed, nil
			}
			if err := a.sleep(ctx, attempt); err != nil {
				for _, g := range pending {
					failed[g] = err
				}
				return failed, nil
			}
			continue
		}
		var retry []string
		for g, err := range errs {
			if tributary.IsRetriable(err) && !last {
				retry = append(retry, g)
			} else {
				failed[g] = err
			}
		}
		shards := make(map[int32][]string)
		for _, g := range pending {
			if n, ok := nodes[g]; ok {
				shards[n] = append(shards[n], g)
			}
		}
		a.knowBrokers(ctx, sortedKeys(shards))
		var mu sync.Mutex
		var wg sync.WaitGroup
		for node, gs := range shards {
			wg.Go(func() {
				again, err := send(ctx, node, gs)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					for _, g := range gs {
						a.coords.forget(cacheKey(typ, g))
					}
					if !retriableTransport(err) || last || ctx.Err() != nil {
						for _, g := range gs {
							failed[g] = err
						}
						return
					}
					again = gs
				}
				for _, g := range again {
					a.coords.forget(cacheKey(typ, g))
					if last {
						failed[g] = tributary.ErrNotCoordinator
					} else {
						retry = append(retry, g)
					}
				}
			})
		}
		wg.Wait()
		pending = retry
		if len(pending) > 0 {
			if err := a.sleep(ctx, attempt); err != nil {
				for _, g := range pending {
					failed[g] = err
				}
				return failed, nil
			}
		}
	}
	return failed, nil
}

// forGroup runs send for one group; the error is the group's failure.
func (a *Client) forGroup(ctx context.Context, group string, send groupSend) error {
	failed, err := a.forGroups(ctx, []string{group}, send)
	if err != nil {
		return err
	}
	if err := failed[group]; err != nil {
		return err
	}
	return nil
}
