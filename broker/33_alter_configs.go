package broker

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/broker/controller"
)

// AlterConfigs: v0-2
//
// Replaces every override of a resource with the given set (configs not
// named return to their defaults). TOPIC resources take topic configs,
// validated by name and value (INVALID_CONFIG); BROKER resources (this
// node's id, or "" for the cluster-wide default) take the broker
// properties Kafka can change at runtime — a read-only one gives
// INVALID_REQUEST. Changes are persisted in the metadata file and apply at
// once to the open logs (storage SetConfig). A resource named twice gives
// INVALID_REQUEST. ValidateOnly checks everything and changes nothing.

func init() { register(33, 0, 2, handleAlterConfigs) }

func handleAlterConfigs(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.AlterConfigsRequest)
	resp := r.ResponseKind().(*kmsg.AlterConfigsResponse)
	repeated := repeatedResources(r.Resources, func(rr kmsg.AlterConfigsRequestResource) (kmsg.ConfigResourceType, string) {
		return rr.ResourceType, rr.ResourceName
	})
	for i, rr := range r.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		err := repeated[i]
		if err == nil {
			configs := map[string]string{}
			for _, c := range rr.Configs {
				if _, dup := configs[c.Name]; dup {
					err = errorf(tributary.ErrInvalidRequest, "config %s given more than once", c.Name)
					break
				}
				if c.Value == nil {
					err = errorf(tributary.ErrInvalidRequest, "null value not supported for %s", c.Name)
					break
				}
				configs[c.Name] = *c.Value
			}
			if err == nil {
				err = b.alterResource(rr.ResourceType, rr.ResourceName, r.ValidateOnly, func(map[string]string) (map[string]string, error) {
					return configs, nil
				})
			}
		}
		sr.ErrorCode, sr.ErrorMessage = errCodeMsg(err)
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

// repeatedResources gives, for each resource of an AlterConfigs or
// IncrementalAlterConfigs request, INVALID_REQUEST if the request names
// that resource (type and name) more than once, else nil.
func repeatedResources[R any](rs []R, id func(R) (kmsg.ConfigResourceType, string)) []error {
	type key struct {
		typ  kmsg.ConfigResourceType
		name string
	}
	count := map[key]int{}
	for _, r := range rs {
		typ, name := id(r)
		count[key{typ, name}]++
	}
	errs := make([]error, len(rs))
	for i, r := range rs {
		if typ, name := id(r); count[key{typ, name}] > 1 {
			errs[i] = errorf(tributary.ErrInvalidRequest, "resource %s is named more than once", name)
		}
	}
	return errs
}

// alterResource computes a resource's new overrides with change (given
// the current ones), validates them, and unless validateOnly persists
// and applies them.
func (b *Broker) alterResource(typ kmsg.ConfigResourceType, name string, validateOnly bool, change func(cur map[string]string) (map[string]string, error)) error {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		t := b.lookupTopic(name)
		if t == nil {
			return errorf(tributary.ErrUnknownTopicOrPartition, "topic %s does not exist", name)
		}
		b.mu.RLock()
		cur := cloneMap(t.configs)
		b.mu.RUnlock()
		next, err := change(nonNilMap(cur))
		if err != nil {
			return err
		}
		for _, k := range sortedKeys(next) {
			v := next[k]
			if err := validateTopicConfig(k, &v); err != nil {
				return errorf(tributary.ErrInvalidConfig, "%v", err)
			}
			next[k] = topicPropsByName[k].spec.canonical(v)
		}
		if validateOnly {
			return nil
		}
		if err := b.commitConfigs(controller.ResourceTopic, name, cur, next); err != nil {
			return err
		}
		b.logger.Info("altered topic configs", "topic", name, "configs", next)
		return nil

	case kmsg.ConfigResourceTypeBroker:
		cluster, err := b.checkBrokerResource(name)
		if err != nil {
			return err
		}
		b.mu.RLock()
		cur := cloneMap(b.mu.dynNode)
		if cluster {
			cur = cloneMap(b.mu.dynCluster)
		}
		b.mu.RUnlock()
		next, err := change(nonNilMap(cur))
		if err != nil {
			return err
		}
		for _, k := range sortedKeys(next) {
			if err := checkDynamicBrokerConfig(k, next[k]); err != nil {
				return err
			}
		}
		b.mu.RLock()
		dynCluster, dynNode := b.mu.dynCluster, b.mu.dynNode
		b.mu.RUnlock()
		if cluster {
			dynCluster = next
		} else {
			dynNode = next
		}
		if _, err := b.effectiveConfig(dynCluster, dynNode); err != nil {
			return errorf(tributary.ErrInvalidConfig, "%v", err)
		}
		if validateOnly {
			return nil
		}
		if err := b.commitConfigs(controller.ResourceBroker, name, cur, next); err != nil {
			return err
		}
		b.logger.Info("altered broker configs", "cluster_default", cluster, "configs", next)
		return nil
	}
	return errorf(tributary.ErrInvalidRequest, "unsupported resource type %d", typ)
}

// commitConfigs hands the difference between a resource's current
// overrides and next to the controller and waits until this broker
// applied it (the reconcile loop updates the registry and the open logs).
func (b *Broker) commitConfigs(res int8, name string, cur, next map[string]string) error {
	var changes []controller.ConfigChange
	for _, k := range sortedKeys(next) {
		if v, ok := cur[k]; !ok || v != next[k] {
			changes = append(changes, controller.ConfigChange{Resource: res, Name: name, Key: k, Value: next[k]})
		}
	}
	for _, k := range sortedKeys(cur) {
		if _, ok := next[k]; !ok {
			changes = append(changes, controller.ConfigChange{Resource: res, Name: name, Key: k, Delete: true})
		}
	}
	if len(changes) == 0 {
		return nil
	}
	ctx, cancel := b.adminCtx(0)
	defer cancel()
	if err := b.ctrl.AlterConfigs(ctx, changes); err != nil {
		return err
	}
	return b.afterChange(ctx)
}

// checkDynamicBrokerConfig accepts the broker properties Kafka lets
// AlterConfigs change, with a valid value.
func checkDynamicBrokerConfig(name, value string) error {
	target := name
	if u, ok := unitAliases[name]; ok {
		target = u.target
	}
	p, ok := brokerPropsByName[target]
	if !ok {
		return errorf(tributary.ErrInvalidConfig, "unknown broker config %s", name)
	}
	if !p.dynamic {
		return errorf(tributary.ErrInvalidRequest, "cannot update these configs dynamically: %s", name)
	}
	var c Config
	if err := c.Set(name, value); err != nil {
		if errors.Is(err, errUnknownConfig) {
			return errorf(tributary.ErrInvalidConfig, "unknown broker config %s", name)
		}
		return errorf(tributary.ErrInvalidConfig, "%v", err)
	}
	return nil
}
