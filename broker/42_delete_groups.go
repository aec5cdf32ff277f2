package broker

// DeleteGroups: v0-2, served by the group state machine: empty groups
// are deleted with their offsets (tombstones in __consumer_offsets, acked
// only once written). Each group is answered in request order; one whose
// partition is not loaded gets that error alone.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary/broker/group"
)

func init() { register(42, 0, 2, handleDeleteGroups) }

func handleDeleteGroups(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.DeleteGroupsRequest)
	resp, err := b.callGroups(req, &groupCall{groups: r.Groups, run: func(gc *groupCoordinator, now time.Time, _ group.Ref) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.DeleteGroupsResponse)
		sub := *r
		sub.Groups = nil
		for _, id := range r.Groups {
			if gc.groupError(id) == nil {
				sub.Groups = append(sub.Groups, id)
			}
		}
		deleted := gc.c.DeleteGroups(now, &sub).Groups
		for _, id := range r.Groups {
			if e := gc.groupError(id); e != nil {
				dg := kmsg.NewDeleteGroupsResponseGroup()
				dg.Group, dg.ErrorCode = id, e.Code
				resp.Groups = append(resp.Groups, dg)
				continue
			}
			resp.Groups = append(resp.Groups, deleted[0])
			deleted = deleted[1:]
		}
		return resp
	}})
	if err != nil {
		return nil, err
	}
	return resp, nil
}
