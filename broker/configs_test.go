package broker_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary/broker"
	"github.com/tributary/tributary/broker/brokertest"
)

// describeTopic returns the topic's configs by name, with synonyms.
func describeTopic(t *testing.T, cl *kgo.Client, topic string) map[string]kmsg.DescribeConfigsResponseResourceConfig {
	t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Version = 4
	req.IncludeSynonyms = true
	req.IncludeDocumentation = true
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	req.Resources = append(req.Resources, rr)
	resp, err := req.RequestWith(ctx5(t), cl)
	require.NoError(t, err)
	require.Len(t, resp.Resources, 1)
	require.Zero(t, resp.Resources[0].ErrorCode)
	out := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
	for _, c := range resp.Resources[0].Configs {
		out[c.Name] = c
	}
	return out
}

func TestDescribeTopicConfigsAllWithSources(t *testing.T) {
	b := brokertest.Start(t, func(c *broker.Config) { c.LogRetentionBytes = 1 << 30 })
	adm := newAdmin(t, b.Addr())
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	require.NoError(t, err)
	defer cl.Close()
	_, err = adm.CreateTopic(ctx5(t), 1, 1, map[string]*string{"retention.ms": kadm.StringPtr("60000")}, "cfg")
	require.NoError(t, err)

	cs := describeTopic(t, cl, "cfg")
	for _, name := range []string{"cleanup.policy", "compression.type", "delete.retention.ms", "file.delete.delay.ms",
		"flush.messages", "flush.ms", "index.interval.bytes", "max.message.bytes", "message.timestamp.type",
		"min.compaction.lag.ms", "max.compaction.lag.ms", "min.cleanable.dirty.ratio", "min.insync.replicas",
		"retention.bytes", "retention.ms", "segment.bytes", "segment.index.bytes", "segment.jitter.ms", "segment.ms",
		"unclean.leader.election.enable", "message.timestamp.before.max.ms", "message.timestamp.after.max.ms"} {
		require.Contains(t, cs, name)
		assert.NotNil(t, cs[name].Value, name)
		assert.NotNil(t, cs[name].Documentation, name)
	}
	rm := cs["retention.ms"]
	assert.Equal(t, "60000", *rm.Value)
	assert.Equal(t, kmsg.ConfigSourceDynamicTopicConfig, rm.Source)
	require.GreaterOrEqual(t, len(rm.ConfigSynonyms), 2)
	assert.Equal(t, "retention.ms", rm.ConfigSynonyms[0].Name)
	assert.Equal(t, "log.retention.ms", rm.ConfigSynonyms[len(rm.ConfigSynonyms)-1].Name)
	assert.Equal(t, kmsg.ConfigSourceDefaultConfig, rm.ConfigSynonyms[len(rm.ConfigSynonyms)-1].Source)
	assert.Equal(t, kmsg.ConfigTypeLong, rm.ConfigType)

	assert.Equal(t, "delete", *cs["cleanup.policy"].Value)
	assert.Equal(t, kmsg.ConfigSourceDefaultConfig, cs["cleanup.policy"].Source)
	assert.Equal(t, kmsg.ConfigTypeList, cs["cleanup.policy"].ConfigType)

	rb := cs["retention.bytes"]
	assert.Equal(t, "1073741824", *rb.Value)
	assert.Equal(t, kmsg.ConfigSourceStaticBrokerConfig, rb.Source)
	assert.Equal(t, "log.retention.bytes", rb.ConfigSynonyms[0].Name)

	// Unknown topic.
	rcs, err := adm.DescribeTopicConfigs(ctx5(t), "nope")
	require.NoError(t, err)
	require.ErrorIs(t, rcs[0].Err, kerr.UnknownTopicOrPartition)
}

func TestAlterTopicConfigsPersist(t *testing.T) {
	b := brokertest.Start(t)
	adm := newAdmin(t, b.Addr())
	ctx := ctx5(t)
	_, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": kadm.StringPtr("60000")}, "alt")
	require.NoError(t, err)

	// Incremental: SET, APPEND to a list, validate_only, errors.
	rs, err := adm.ValidateAlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "segment.ms", Value: kadm.StringPtr("3600000")}}, "alt")
	require.NoError(t, err)
	require.NoError(t, rs[0].Err)
	rc, err := adm.DescribeTopicConfigs(ctx, "alt")
	require.NoError(t, err)
	cfg, _ := rc.On("alt", nil)
	for _, c := range cfg.Configs {
		if c.Key == "segment.ms" {
			assert.Equal(t, "604800000", *c.Value, "validate_only changed the config")
		}
	}

	rs, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "segment.ms", Value: kadm.StringPtr("3600000")},
		{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: kadm.StringPtr("compact")},
		{Op: kadm.DeleteConfig, Name: "retention.ms"},
	}, "alt")
	require.NoError(t, err)
	require.NoError(t, rs[0].Err)

	rs, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.AppendConfig, Name: "segment.ms", Value: kadm.StringPtr("1")}}, "alt")
	require.NoError(t, err)
	require.ErrorIs(t, rs[0].Err, kerr.InvalidRequest)
	rs, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "segment.ms", Value: kadm.StringPtr("-5")}}, "alt")
	require.NoError(t, err)
	require.ErrorIs(t, rs[0].Err, kerr.InvalidConfig)
	rs, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "segment.ms", Value: kadm.StringPtr("5")}}, "missing")
	require.NoError(t, err)
	require.ErrorIs(t, rs[0].Err, kerr.UnknownTopicOrPartition)

	check := func(t *testing.T, adm *kadm.Client) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
		require.NoError(t, err)
		defer cl.Close()
		cs := describeTopic(t, cl, "alt")
		assert.Equal(t, "3600000", *cs["segment.ms"].Value)
		assert.Equal(t, kmsg.ConfigSourceDynamicTopicConfig, cs["segment.ms"].Source)
		assert.ElementsMatch(t, []string{"delete", "compact"}, strings.Split(*cs["cleanup.policy"].Value, ","))
		assert.Equal(t, "604800000", *cs["retention.ms"].Value)
		assert.Equal(t, kmsg.ConfigSourceDefaultConfig, cs["retention.ms"].Source)
	}
	check(t, adm)

	// SUBTRACT.
	rs, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: kadm.StringPtr("delete")}}, "alt")
	require.NoError(t, err)
	require.NoError(t, rs[0].Err)
	cl, _ := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	assert.Equal(t, "compact", *describeTopic(t, cl, "alt")["cleanup.policy"].Value)
	cl.Close()
	rs, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: kadm.StringPtr("delete")}}, "alt")
	require.NoError(t, err)
	require.NoError(t, rs[0].Err)

	b.Restart(t)
	adm = newAdmin(t, b.Addr())
	check(t, adm)

	// AlterConfigs (non-incremental) replaces every override.
	ars, err := adm.AlterTopicConfigsState(ctx5(t), []kadm.AlterConfig{{Name: "retention.bytes", Value: kadm.StringPtr("1000")}}, "alt")
	require.NoError(t, err)
	require.NoError(t, ars[0].Err)
	cl, _ = kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	defer cl.Close()
	cs := describeTopic(t, cl, "alt")
	assert.Equal(t, "1000", *cs["retention.bytes"].Value)
	assert.Equal(t, "604800000", *cs["segment.ms"].Value)
	assert.Equal(t, "delete", *cs["cleanup.policy"].Value)
}

func TestBrokerConfigsDynamic(t *testing.T) {
	b := brokertest.Start(t)
	adm := newAdmin(t, b.Addr())
	ctx := ctx5(t)
	_, err := adm.CreateTopic(ctx, 1, 1, nil, "plain")
	require.NoError(t, err)
	_, err = adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": kadm.StringPtr("5000")}, "overridden")
	require.NoError(t, err)

	rc, err := adm.DescribeBrokerConfigs(ctx, 1)
	require.NoError(t, err)
	bc, err := rc.On("1", nil)
	require.NoError(t, err)
	byName := map[string]kadm.Config{}
	for _, c := range bc.Configs {
		byName[c.Key] = c
	}
	require.Contains(t, byName, "log.retention.ms")
	assert.Equal(t, "604800000", *byName["log.retention.ms"].Value)
	{
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
		require.NoError(t, err)
		req := kmsg.NewPtrDescribeConfigsRequest()
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, "1"
		req.Resources = append(req.Resources, rr)
		resp, err := req.RequestWith(ctx, cl)
		cl.Close()
		require.NoError(t, err)
		ro := map[string]bool{}
		for _, c := range resp.Resources[0].Configs {
			ro[c.Name] = c.ReadOnly
		}
		assert.False(t, ro["log.retention.ms"])
		assert.True(t, ro["num.partitions"])
		assert.True(t, ro["node.id"])
	}
	assert.Equal(t, kmsg.ConfigSourceDefaultConfig, byName["log.retention.ms"].Source)

	// Node-level dynamic config, then a cluster-wide one.
	rs, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "log.retention.ms", Value: kadm.StringPtr("7200000")}}, 1)
	require.NoError(t, err)
	require.NoError(t, rs[0].Err)
	rs, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "log.retention.bytes", Value: kadm.StringPtr("123456789")}})
	require.NoError(t, err)
	require.NoError(t, rs[0].Err)
	// Read-only broker config.
	rs, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "num.partitions", Value: kadm.StringPtr("3")}}, 1)
	require.NoError(t, err)
	require.ErrorIs(t, rs[0].Err, kerr.InvalidRequest)
	// Bad value.
	rs, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "log.retention.ms", Value: kadm.StringPtr("x")}}, 1)
	require.NoError(t, err)
	require.ErrorIs(t, rs[0].Err, kerr.InvalidConfig)
	// Another node.
	rs, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "log.retention.ms", Value: kadm.StringPtr("1")}}, 2)
	if err == nil {
		require.Error(t, rs[0].Err)
	}

	check := func(t *testing.T) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
		require.NoError(t, err)
		defer cl.Close()
		cs := describeTopic(t, cl, "plain")
		assert.Equal(t, "7200000", *cs["retention.ms"].Value)
		assert.Equal(t, kmsg.ConfigSourceDynamicBrokerConfig, cs["retention.ms"].Source)
		assert.Equal(t, "123456789", *cs["retention.bytes"].Value)
		assert.Equal(t, kmsg.ConfigSourceDynamicDefaultBrokerConfig, cs["retention.bytes"].Source)
		cs = describeTopic(t, cl, "overridden")
		assert.Equal(t, "5000", *cs["retention.ms"].Value)
		syn := cs["retention.ms"].ConfigSynonyms
		require.GreaterOrEqual(t, len(syn), 3)
		assert.Equal(t, kmsg.ConfigSourceDynamicTopicConfig, syn[0].Source)
		assert.Equal(t, "log.retention.ms", syn[1].Name)
		assert.Equal(t, kmsg.ConfigSourceDynamicBrokerConfig, syn[1].Source)

		adm := kadm.NewClient(cl)
		rc, err := adm.DescribeBrokerConfigs(ctx5(t))
		require.NoError(t, err)
		cc, err := rc.On("", nil)
		require.NoError(t, err)
		require.Len(t, cc.Configs, 1)
		assert.Equal(t, "log.retention.bytes", cc.Configs[0].Key)
	}
	check(t)
	b.Restart(t)
	check(t)

	// Incremental DELETE of the node config falls back to the default.
	adm = newAdmin(t, b.Addr())
	rs, err = adm.AlterBrokerConfigs(ctx5(t), []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "log.retention.ms"}}, 1)
	require.NoError(t, err)
	require.NoError(t, rs[0].Err)
	cl, _ := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	defer cl.Close()
	cs := describeTopic(t, cl, "plain")
	assert.Equal(t, "604800000", *cs["retention.ms"].Value)
}
