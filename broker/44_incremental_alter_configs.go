package broker

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// IncrementalAlterConfigs: v0-1
//
// Changes single configs of a resource, keeping the others: SET (value
// required), DELETE (back to the default), APPEND and SUBTRACT (list
// configs only, e.g. cleanup.policy: add missing items to / remove items
// from the current effective value). A config named twice in one resource,
// a resource named twice, or APPEND/SUBTRACT on a non-list config give
// INVALID_REQUEST; a bad name or value gives INVALID_CONFIG. Errors are
// per resource; the rest of the request still applies. Resources as in
// AlterConfigs; ValidateOnly checks and changes nothing.

func init() { register(44, 0, 1, handleIncrementalAlterConfigs) }

func handleIncrementalAlterConfigs(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.IncrementalAlterConfigsRequest)
	resp := r.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	repeated := repeatedResources(r.Resources, func(rr kmsg.IncrementalAlterConfigsRequestResource) (kmsg.ConfigResourceType, string) {
		return rr.ResourceType, rr.ResourceName
	})
	for i, rr := range r.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		err := repeated[i]
		if err == nil {
			err = b.alterResource(rr.ResourceType, rr.ResourceName, r.ValidateOnly, func(cur map[string]string) (map[string]string, error) {
				return b.applyIncremental(rr.ResourceType, cur, rr.Configs)
			})
		}
		sr.ErrorCode, sr.ErrorMessage = errCodeMsg(err)
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

func (b *Broker) applyIncremental(typ kmsg.ConfigResourceType, cur map[string]string, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig) (map[string]string, error) {
	seen := map[string]bool{}
	for _, op := range ops {
		if seen[op.Name] {
			return nil, errorf(tributary.ErrInvalidRequest, "config %s given more than once", op.Name)
		}
		seen[op.Name] = true
	}
	next := cloneMap(cur)
	if next == nil {
		next = map[string]string{}
	}
	for _, op := range ops {
		spec, def, known := b.alterableSpec(typ, op.Name)
		switch op.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if op.Value == nil {
				return nil, errorf(tributary.ErrInvalidRequest, "null value not supported for %s", op.Name)
			}
			next[op.Name] = *op.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(next, op.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if !known {
				return nil, errorf(tributary.ErrInvalidConfig, "unknown config %s", op.Name)
			}
			if spec.typ != kmsg.ConfigTypeList {
				return nil, errorf(tributary.ErrInvalidRequest, "config value append or subtract is not allowed for config key %s", op.Name)
			}
			if op.Value == nil {
				return nil, errorf(tributary.ErrInvalidRequest, "null value not supported for %s", op.Name)
			}
			curVal, ok := next[op.Name]
			if !ok {
				curVal = def
			}
			items := splitList(curVal)
			for _, it := range splitList(*op.Value) {
				idx := -1
				for i, have := range items {
					if strings.EqualFold(have, it) {
						idx = i
						break
					}
				}
				if op.Op == kmsg.IncrementalAlterConfigOpAppend && idx < 0 {
					items = append(items, it)
				} else if op.Op == kmsg.IncrementalAlterConfigOpSubtract && idx >= 0 {
					items = append(items[:idx], items[idx+1:]...)
				}
			}
			next[op.Name] = strings.Join(items, ",")
		default:
			return nil, errorf(tributary.ErrInvalidRequest, "unknown operation %d for config %s", op.Op, op.Name)
		}
	}
	return next, nil
}

// alterableSpec returns the value spec of a config of the resource type
// and its current effective default (for APPEND/SUBTRACT).
func (b *Broker) alterableSpec(typ kmsg.ConfigResourceType, name string) (valueSpec, string, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		p, ok := topicPropsByName[name]
		if !ok {
			return valueSpec{}, "", false
		}
		return p.spec, b.topicValueLocked(nil, p), true
	case kmsg.ConfigResourceTypeBroker:
		p, ok := brokerPropsByName[name]
		if !ok {
			return valueSpec{}, "", false
		}
		return p.spec, b.brokerValueLocked(name), true
	}
	return valueSpec{}, "", false
}
