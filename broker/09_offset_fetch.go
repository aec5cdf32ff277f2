package broker

// OffsetFetch: v0-9 (v10 names topics by id: not until topic ids are used
// everywhere), served by the group state machine. v8+ ask for several
// groups, each answered in request order with its own error.
//
// A group whose __consumer_offsets partition is not loaded (or does not
// exist yet) gets COORDINATOR_LOAD_IN_PROGRESS (or
// COORDINATOR_NOT_AVAILABLE): v2+ as the top-level (v8+: group) error
// code; v0-1 have none, so every requested partition carries it.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/group"
)

func init() { register(9, 0, 9, handleOffsetFetch) }

func handleOffsetFetch(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.OffsetFetchRequest)
	if r.Version < 8 {
		fail := func(err *tributary.Error) kmsg.Response {
			resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
			if r.Version >= 2 {
				resp.ErrorCode = err.Code
				return resp
			}
			for _, t := range r.Topics {
				rt := kmsg.NewOffsetFetchResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetFetchResponseTopicPartition()
					rp.Partition, rp.Offset, rp.ErrorCode = p, -1, err.Code
					rt.Partitions = append(rt.Partitions, rp)
				}
				resp.Topics = append(resp.Topics, rt)
			}
			return resp
		}
		return b.groupRequest(req, r.Group, fail, func(c *group.Coordinator, now time.Time, _ group.Ref) kmsg.Response {
			return c.OffsetFetch(now, r)
		})
	}

	resp, err := b.callGroups(req, &groupCall{run: func(gc *groupCoordinator, now time.Time, _ group.Ref) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
		sub := *r
		sub.Groups = nil
		for _, g := range r.Groups {
			if gc.groupError(g.Group) == nil {
				sub.Groups = append(sub.Groups, g)
			}
		}
		fetched := gc.c.OffsetFetch(now, &sub).Groups
		for _, g := range r.Groups {
			if e := gc.groupError(g.Group); e != nil {
				sg := kmsg.NewOffsetFetchResponseGroup()
				sg.Group, sg.ErrorCode = g.Group, e.Code
				resp.Groups = append(resp.Groups, sg)
				continue
			}
			resp.Groups = append(resp.Groups, fetched[0])
			fetched = fetched[1:]
		}
		return resp
	}})
	if err != nil {
		return nil, err
	}
	return resp, nil
}
