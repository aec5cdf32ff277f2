package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// DeleteTopics: v1-6
//
// Deletes topics by name (v1-5) or by name or id (v6, KIP-516), in
// request order: the topic disappears from the registry, the metadata
// file is rewritten, then the partition directories are deleted. An
// unknown name gives UNKNOWN_TOPIC_OR_PARTITION, an unknown id
// UNKNOWN_TOPIC_ID, an entry with both name and id INVALID_REQUEST, an
// internal topic INVALID_REQUEST.

func init() { register(20, 1, 6, handleDeleteTopics) }

func handleDeleteTopics(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.DeleteTopicsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteTopicsResponse)

	type entry struct {
		name *string
		id   [16]byte
	}
	var entries []entry
	if r.Version >= 6 {
		for _, t := range r.Topics {
			entries = append(entries, entry{t.Topic, t.TopicID})
		}
	} else {
		for _, n := range r.TopicNames {
			entries = append(entries, entry{name: kmsg.StringPtr(n)})
		}
	}
	for _, e := range entries {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = e.name, e.id
		var err error
		var t *topic
		switch {
		case e.name != nil && e.id != [16]byte{}:
			err = errorf(tributary.ErrInvalidRequest, "topic name and id are both set")
		case e.name != nil:
			if t = b.lookupTopic(*e.name); t == nil {
				err = errorf(tributary.ErrUnknownTopicOrPartition, "topic %s does not exist", *e.name)
			}
		default:
			if t = b.lookupTopicID(e.id); t == nil {
				err = errorf(tributary.ErrUnknownTopicId, "topic id %s does not exist", uuidString(e.id))
			}
		}
		if t != nil {
			st.Topic, st.TopicID = kmsg.StringPtr(t.name), t.id
			err = b.deleteTopic(t)
		}
		st.ErrorCode, st.ErrorMessage = errCodeMsg(err)
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
