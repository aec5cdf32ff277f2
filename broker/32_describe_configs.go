package broker

import (
	"sort"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// DescribeConfigs: v1-4
//
// TOPIC resources list every topic config (not only overrides: clients
// such as librdkafka expect the full set) with its effective value and
// source: the topic's override (DYNAMIC_TOPIC_CONFIG), else the broker
// property it defaults to, set dynamically for this node
// (DYNAMIC_BROKER_CONFIG) or cluster-wide (DYNAMIC_DEFAULT_BROKER_CONFIG),
// or statically (STATIC_BROKER_CONFIG), else Kafka's default
// (DEFAULT_CONFIG). Synonyms (when asked) list every level that has a
// value, most specific first, e.g. retention.ms, log.retention.ms.
// BROKER resources named by this node's id list every broker property,
// read_only for those Kafka cannot change at runtime; the resource named
// "" lists the cluster-wide dynamic configs only. v3+ adds types and
// documentation when asked. Unknown topics give UNKNOWN_TOPIC_OR_PARTITION;
// another node's id gives INVALID_REQUEST.

func init() { register(32, 1, 4, handleDescribeConfigs) }

type configSynonym struct {
	name   string
	value  *string
	source kmsg.ConfigSource
}

type configEntry struct {
	name      string
	value     *string
	source    kmsg.ConfigSource
	readOnly  bool
	sensitive bool
	typ       kmsg.ConfigType
	doc       string
	synonyms  []configSynonym
}

func handleDescribeConfigs(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.DescribeConfigsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range r.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		var entries []configEntry
		var err error
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			t := b.lookupTopic(rr.ResourceName)
			if t == nil {
				err = errorf(tributary.ErrUnknownTopicOrPartition, "topic %s does not exist", rr.ResourceName)
				break
			}
			entries = b.topicConfigEntries(t, r.IncludeSynonyms)
		case kmsg.ConfigResourceTypeBroker:
			var cluster bool
			if cluster, err = b.checkBrokerResource(rr.ResourceName); err == nil {
				entries = b.brokerConfigEntries(cluster, r.IncludeSynonyms)
			}
		case kmsg.ConfigResourceTypeBrokerLogger:
			// No runtime-adjustable loggers: an empty list, not an error.
		default:
			err = errorf(tributary.ErrInvalidRequest, "unsupported resource type %d", rr.ResourceType)
		}
		sr.ErrorCode, sr.ErrorMessage = errCodeMsg(err)
		want := map[string]bool{}
		for _, n := range rr.ConfigNames {
			want[n] = true
		}
		for _, e := range entries {
			if rr.ConfigNames != nil && !want[e.name] {
				continue
			}
			c := kmsg.NewDescribeConfigsResponseResourceConfig()
			c.Name, c.Value, c.ReadOnly, c.Source, c.IsSensitive = e.name, e.value, e.readOnly, e.source, e.sensitive
			c.IsDefault = e.source == kmsg.ConfigSourceDefaultConfig
			if r.IncludeSynonyms {
				for _, s := range e.synonyms {
					cs := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
					cs.Name, cs.Value, cs.Source = s.name, s.value, s.source
					c.ConfigSynonyms = append(c.ConfigSynonyms, cs)
				}
			}
			c.ConfigType = e.typ
			if r.IncludeDocumentation {
				c.Documentation = kmsg.StringPtr(e.doc)
			}
			sr.Configs = append(sr.Configs, c)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

// checkBrokerResource accepts this node's id, or "" for the cluster-wide
// default (cluster=true).
func (b *Broker) checkBrokerResource(name string) (cluster bool, err error) {
	if name == "" {
		return true, nil
	}
	id, perr := strconv.ParseInt(name, 10, 32)
	if perr != nil || int32(id) != b.cfg.NodeID {
		return false, errorf(tributary.ErrInvalidRequest, "unexpected broker id, expected %d but received %s", b.cfg.NodeID, name)
	}
	return false, nil
}

// brokerSynonymsLocked lists the values the broker property name (or a
// spelling of it such as log.retention.hours) has at each level, most
// specific first. b.mu must be held.
func (b *Broker) brokerSynonymsLocked(names []string) []configSynonym {
	var out []configSynonym
	for _, n := range names {
		if v, ok := b.mu.dynNode[n]; ok {
			out = append(out, configSynonym{n, kmsg.StringPtr(v), kmsg.ConfigSourceDynamicBrokerConfig})
		}
	}
	for _, n := range names {
		if v, ok := b.mu.dynCluster[n]; ok {
			out = append(out, configSynonym{n, kmsg.StringPtr(v), kmsg.ConfigSourceDynamicDefaultBrokerConfig})
		}
	}
	def := DefaultConfig()
	primary := names[0]
	if sv, ok := b.cfg.Get(primary); ok {
		if dv, _ := def.Get(primary); sv != dv {
			out = append(out, configSynonym{primary, kmsg.StringPtr(sv), kmsg.ConfigSourceStaticBrokerConfig})
		}
		dv, _ := def.Get(primary)
		out = append(out, configSynonym{primary, kmsg.StringPtr(dv), kmsg.ConfigSourceDefaultConfig})
	}
	return out
}

// topicConfigEntries describes every topic config of t.
func (b *Broker) topicConfigEntries(t *topic, _ bool) []configEntry {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]configEntry, 0, len(topicProps))
	for _, p := range topicProps {
		var syn []configSynonym
		if v, ok := t.configs[p.name]; ok {
			syn = append(syn, configSynonym{p.name, kmsg.StringPtr(v), kmsg.ConfigSourceDynamicTopicConfig})
		}
		if len(p.synonyms) > 0 {
			syn = append(syn, b.brokerSynonymsLocked(p.synonyms)...)
		} else {
			syn = append(syn, configSynonym{p.name, kmsg.StringPtr(p.def), kmsg.ConfigSourceDefaultConfig})
		}
		e := configEntry{name: p.name, typ: p.spec.typ, doc: p.doc, synonyms: syn}
		// The effective value is computed, not taken from the first
		// synonym: a dynamic log.retention.hours is shown converted.
		e.value = kmsg.StringPtr(b.topicValueLocked(t, p))
		e.source = syn[0].source
		out = append(out, e)
	}
	return out
}

// brokerConfigEntries describes the broker properties: all of them for
// this node, or the cluster-wide dynamic ones.
func (b *Broker) brokerConfigEntries(cluster bool, _ bool) []configEntry {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var out []configEntry
	if cluster {
		for _, k := range sortedKeys(b.mu.dynCluster) {
			v := b.mu.dynCluster[k]
			e := configEntry{name: k, value: kmsg.StringPtr(v), source: kmsg.ConfigSourceDynamicDefaultBrokerConfig, typ: kmsg.ConfigTypeString}
			if p, ok := brokerPropsByName[k]; ok {
				e.typ, e.doc = p.spec.typ, p.doc
			}
			e.synonyms = []configSynonym{{k, e.value, e.source}}
			out = append(out, e)
		}
		return out
	}
	for _, p := range brokerProps {
		names := append([]string{p.name}, aliasesOf(p.name)...)
		syn := b.brokerSynonymsLocked(names)
		e := configEntry{
			name:     p.name,
			value:    kmsg.StringPtr(b.brokerValueLocked(p.name)),
			source:   syn[0].source,
			readOnly: !p.dynamic,
			typ:      p.spec.typ,
			doc:      p.doc,
			synonyms: syn,
		}
		out = append(out, e)
	}
	return out
}

// aliasesOf lists the other spellings of a broker property, most precise
// first (log.retention.minutes before log.retention.hours).
func aliasesOf(name string) []string {
	var out []string
	for alias, u := range unitAliases {
		if u.target == name {
			out = append(out, alias)
		}
	}
	sort.Slice(out, func(i, j int) bool { return unitAliases[out[i]].level > unitAliases[out[j]].level })
	return out
}
