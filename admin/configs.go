package admin

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ConfigSource says where a config value comes from (Kafka's
// DescribeConfigsResponse ConfigSource).
type ConfigSource int8

// The config sources Kafka defines.
const (
	SourceUnknown              ConfigSource = 0
	SourceDynamicTopic         ConfigSource = 1 // a topic override
	SourceDynamicBroker        ConfigSource = 2 // set for this broker at runtime
	SourceDynamicDefaultBroker ConfigSource = 3 // set for all brokers at runtime
	SourceStaticBroker         ConfigSource = 4 // the broker's properties file
	SourceDefault              ConfigSource = 5 // Kafka's default
	SourceDynamicBrokerLogger  ConfigSource = 6
	SourceClientMetrics        ConfigSource = 7
	SourceGroup                ConfigSource = 8
)

func (s ConfigSource) String() string { return kmsg.ConfigSource(s).String() }

// ConfigSynonym is one of the values a config could take, in the order of
// precedence the broker applies (the first is the one in effect).
type ConfigSynonym struct {
	Name   string
	Value  *string
	Source ConfigSource
}

// Config is one described config.
type Config struct {
	Name string
	// Value is nil for sensitive configs and for configs without a value.
	Value     *string
	Source    ConfigSource
	Default   bool // the value is Kafka's default (Source == SourceDefault)
	Sensitive bool
	ReadOnly  bool
	// Synonyms lists the value at each level, highest precedence first.
	Synonyms []ConfigSynonym
	// Type is the config's type, e.g. "LONG" (DescribeConfigs v3+; "" before).
	Type string
}

// ValueOr returns the value, or def when it is nil.
func (c Config) ValueOr(def string) string {
	if c.Value == nil {
		return def
	}
	return *c.Value
}

// ResourceConfigs are one resource's (topic's or broker's) configs.
type ResourceConfigs struct {
	// Name is the topic name, or the broker id in decimal ("" for the
	// cluster-wide broker defaults).
	Name    string
	Configs []Config
	Err     error
}

// Lookup returns the named config.
func (rc ResourceConfigs) Lookup(name string) (Config, bool) {
	for _, c := range rc.Configs {
		if c.Name == name {
			return c, true
		}
	}
	return Config{}, false
}

// ResourceConfigsList are DescribeConfigs results in request order.
type ResourceConfigsList []ResourceConfigs

// FirstErr returns the first failed resource's error, naming it, or nil.
func (ls ResourceConfigsList) FirstErr() error {
	return firstErr(ls, func(r ResourceConfigs) (string, error) { return r.Name, r.Err })
}

// On returns the configs of the named resource.
func (ls ResourceConfigsList) On(name string) (ResourceConfigs, bool) {
	return lookup(ls, name, func(r ResourceConfigs) string { return r.Name })
}

// DescribeTopicConfigs describes every config of each topic, with
// synonyms. A topic that does not exist fails alone.
func (a *Client) DescribeTopicConfigs(ctx context.Context, topics ...string) (ResourceConfigsList, error) {
	if len(topics) == 0 {
		return nil, nil
	}
	out, err := a.describeConfigs(ctx, -1, kmsg.ConfigResourceTypeTopic, topics)
	if err != nil {
		return nil, fmt.Errorf("admin: describe topic configs: %w", err)
	}
	return out, nil
}

// DescribeBrokerConfigs describes every config of each broker. Each
// broker is asked about itself, since only it knows its static configs.
// With no ids it describes the cluster-wide dynamic broker defaults
// (resource name ""). A broker that cannot be reached fails alone.
func (a *Client) DescribeBrokerConfigs(ctx context.Context, brokers ...int32) (ResourceConfigsList, error) {
	if len(brokers) == 0 {
		out, err := a.describeConfigs(ctx, -1, kmsg.ConfigResourceTypeBroker, []string{""})
		if err != nil {
			return nil, fmt.Errorf("admin: describe broker configs: %w", err)
		}
		return out, nil
	}
	a.knowBrokers(ctx, brokers)
	out := make(ResourceConfigsList, len(brokers))
	var wg sync.WaitGroup
	for i, id := range brokers {
		wg.Go(func() {
			name := strconv.Itoa(int(id))
			rs, err := a.describeConfigs(ctx, id, kmsg.ConfigResourceTypeBroker, []string{name})
			if err != nil {
				out[i] = ResourceConfigs{Name: name, Err: err}
				return
			}
			out[i] = rs[0]
		})
	}
	wg.Wait()
	return out, nil
}

// describeConfigs sends one DescribeConfigs to node (any broker if -1).
// requestNode sends req to broker node, or to any broker if node < 0.
func (a *Client) requestNode(ctx context.Context, node int32, req kmsg.Request) (kmsg.Response, error) {
	if node < 0 {
		return a.cl.Request(ctx, req)
	}
	return a.cl.RequestBroker(ctx, node, req)
}

func (a *Client) describeConfigs(ctx context.Context, node int32, typ kmsg.ConfigResourceType, names []string) (ResourceConfigsList, error) {
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.IncludeSynonyms = true
	// Documentation is left out, as Java's admin does by default: it
	// would multiply the answer's size for text that never changes.
	for _, n := range names {
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType = typ
		r.ResourceName = n
		req.Resources = append(req.Resources, r)
	}
	raw, err := a.requestNode(ctx, node, req)
	if err != nil {
		return nil, err
	}
	resp := raw.(*kmsg.DescribeConfigsResponse)
	out := make(ResourceConfigsList, len(names))
	for i, n := range names {
		out[i] = ResourceConfigs{Name: n, Err: ErrNoResponse}
		for _, r := range resp.Resources {
			if r.ResourceName != n || r.ResourceType != typ {
				continue
			}
			out[i].Err = kafkaErr(r.ErrorCode, r.ErrorMessage)
			for _, c := range r.Configs {
				cfg := Config{
					Name: c.Name, Value: c.Value, Source: ConfigSource(c.Source),
					Sensitive: c.IsSensitive, ReadOnly: c.ReadOnly,
				}
				if resp.Version == 0 {
					cfg.Default = c.IsDefault
					if c.IsDefault {
						cfg.Source = SourceDefault
					}
				} else {
					cfg.Default = c.Source == kmsg.ConfigSourceDefaultConfig
				}
				if resp.Version >= 3 {
					cfg.Type = c.ConfigType.String()
				}
				for _, s := range c.ConfigSynonyms {
					cfg.Synonyms = append(cfg.Synonyms, ConfigSynonym{Name: s.Name, Value: s.Value, Source: ConfigSource(s.Source)})
				}
				out[i].Configs = append(out[i].Configs, cfg)
			}
			sortConfigs(out[i].Configs)
			break
		}
	}
	return out, nil
}

func sortConfigs(cs []Config) {
	slices.SortFunc(cs, func(a, b Config) int { return strings.Compare(a.Name, b.Name) })
}

// AlterOp is an IncrementalAlterConfigs operation.
type AlterOp int8

// The operations of IncrementalAlterConfigs (KIP-339).
const (
	// OpSet sets the value.
	OpSet AlterOp = 0
	// OpDelete removes the override, reverting to the next synonym.
	OpDelete AlterOp = 1
	// OpAppend adds values to a list config (e.g. cleanup.policy).
	OpAppend AlterOp = 2
	// OpSubtract removes values from a list config.
	OpSubtract AlterOp = 3
)

func (o AlterOp) String() string { return kmsg.IncrementalAlterConfigOp(o).String() }

// AlterConfig is one incremental change. Value is ignored for OpDelete.
type AlterConfig struct {
	Op    AlterOp
	Name  string
	Value string
}

// SetConfig returns an OpSet change.
func SetConfig(name, value string) AlterConfig {
	return AlterConfig{Op: OpSet, Name: name, Value: value}
}

// DeleteConfig returns an OpDelete change.
func DeleteConfig(name string) AlterConfig { return AlterConfig{Op: OpDelete, Name: name} }

// AlterConfigResult is the outcome for one resource of an Alter*Configs
// call; the broker applies a resource's changes all or nothing.
type AlterConfigResult struct {
	// Name is the topic, or the broker id in decimal ("" for the
	// cluster-wide broker defaults).
	Name string
	Err  error
}

// AlterConfigResults are results in request order.
type AlterConfigResults []AlterConfigResult

// FirstErr returns the first failed resource's error, naming it, or nil.
func (rs AlterConfigResults) FirstErr() error {
	return firstErr(rs, func(r AlterConfigResult) (string, error) { return r.Name, r.Err })
}

// AlterTopicConfigs applies changes to each topic with
// IncrementalAlterConfigs, leaving configs not named alone. A topic that
// does not exist, or whose change is invalid, fails alone. Honours
// ValidateOnly.
func (a *Client) AlterTopicConfigs(ctx context.Context, changes []AlterConfig, topics []string, opts ...CallOpt) (AlterConfigResults, error) {
	if len(topics) == 0 {
		return nil, nil
	}
	out, err := a.alterConfigs(ctx, -1, kmsg.ConfigResourceTypeTopic, topics, changes, callOpts(opts))
	if err != nil {
		return nil, fmt.Errorf("admin: alter topic configs: %w", err)
	}
	return out, nil
}

// AlterBrokerConfigs applies changes to each broker's dynamic configs,
// each broker asked directly. With no ids it alters the cluster-wide
// dynamic broker defaults. Honours ValidateOnly.
func (a *Client) AlterBrokerConfigs(ctx context.Context, changes []AlterConfig, brokers []int32, opts ...CallOpt) (AlterConfigResults, error) {
	co := callOpts(opts)
	if len(brokers) == 0 {
		out, err := a.alterConfigs(ctx, -1, kmsg.ConfigResourceTypeBroker, []string{""}, changes, co)
		if err != nil {
			return nil, fmt.Errorf("admin: alter broker configs: %w", err)
		}
		return out, nil
	}
	a.knowBrokers(ctx, brokers)
	out := make(AlterConfigResults, len(brokers))
	var wg sync.WaitGroup
	for i, id := range brokers {
		wg.Go(func() {
			name := strconv.Itoa(int(id))
			rs, err := a.alterConfigs(ctx, id, kmsg.ConfigResourceTypeBroker, []string{name}, changes, co)
			if err != nil {
				out[i] = AlterConfigResult{Name: name, Err: err}
				return
			}
			out[i] = rs[0]
		})
	}
	wg.Wait()
	return out, nil
}

func (a *Client) alterConfigs(ctx context.Context, node int32, typ kmsg.ConfigResourceType, names []string, changes []AlterConfig, co callCfg) (AlterConfigResults, error) {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.ValidateOnly = co.validateOnly
	for _, n := range names {
		r := kmsg.NewIncrementalAlterConfigsRequestResource()
		r.ResourceType = typ
		r.ResourceName = n
		for _, ch := range changes {
			c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			c.Name = ch.Name
			c.Op = kmsg.IncrementalAlterConfigOp(ch.Op)
			if ch.Op != OpDelete {
				c.Value = kmsg.StringPtr(ch.Value)
			}
			r.Configs = append(r.Configs, c)
		}
		req.Resources = append(req.Resources, r)
	}
	raw, err := a.requestNode(ctx, node, req)
	if err != nil {
		return nil, err
	}
	resp := raw.(*kmsg.IncrementalAlterConfigsResponse)
	out := make(AlterConfigResults, len(names))
	for i, n := range names {
		out[i] = AlterConfigResult{Name: n, Err: ErrNoResponse}
		for _, r := range resp.Resources {
			if r.ResourceName == n && r.ResourceType == typ {
				out[i].Err = kafkaErr(r.ErrorCode, r.ErrorMessage)
				break
			}
		}
	}
	return out, nil
}
