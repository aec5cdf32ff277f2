package broker

// ListGroups: v0-5, served by the group state machine (v4 state filter,
// v5 type filter). While a __consumer_offsets partition is still loading
// the groups known so far are listed with COORDINATOR_LOAD_IN_PROGRESS,
// as Kafka does; before the topic exists there are no groups.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/group"
)

func init() { register(16, 0, 5, handleListGroups) }

func handleListGroups(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.ListGroupsRequest)
	resp, err := b.callGroups(req, &groupCall{run: func(gc *groupCoordinator, now time.Time, _ group.Ref) kmsg.Response {
		resp := gc.c.ListGroups(now, r)
		if gc.anyLoading() {
			resp.ErrorCode = tributary.ErrCoordinatorLoadInProgress.Code
		}
		return resp
	}})
	if err != nil {
		return nil, err
	}
	return resp, nil
}
