package admin

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary"
)

// kadmTopicConfig returns a topic config's value and source as kadm
// describes it.
func (e *env) kadmTopicConfig(t *testing.T, topic, name string) (string, int8, bool) {
	t.Helper()
	rcs, err := e.kadm.DescribeTopicConfigs(testCtx(t), topic)
	require.NoError(t, err)
	rc, err := rcs.On(topic, nil)
	require.NoError(t, err)
	require.NoError(t, rc.Err)
	for _, c := range rc.Configs {
		if c.Key == name {
			return c.MaybeValue(), int8(c.Source), true
		}
	}
	return "", 0, false
}

func TestDescribeTopicConfigs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := testCtx(t)
		v := "compact"
		topic := e.mkTopic(t, 1, map[string]*string{"cleanup.policy": &v})
		missing := topicName("missing")

		got, err := e.a.DescribeTopicConfigs(ctx, topic, missing)
		require.NoError(t, err)
		require.Len(t, got, 2)
		assert.ErrorIs(t, got[1].Err, tributary.ErrUnknownTopicOrPartition)
		require.NoError(t, got[0].Err)

		ref, err := e.kadm.DescribeTopicConfigs(ctx, topic)
		require.NoError(t, err)
		rc, err := ref.On(topic, nil)
		require.NoError(t, err)
		require.Len(t, got[0].Configs, len(rc.Configs), "every config described")
		for _, rcfg := range rc.Configs {
			c, ok := got[0].Lookup(rcfg.Key)
			require.True(t, ok, rcfg.Key)
			assert.Equal(t, rcfg.MaybeValue(), c.ValueOr(""), rcfg.Key)
			assert.Equal(t, int8(rcfg.Source), int8(c.Source), rcfg.Key)
			assert.Equal(t, rcfg.Sensitive, c.Sensitive, rcfg.Key)
			assert.Equal(t, rcfg.Source == 5, c.Default, rcfg.Key)
			assert.Len(t, c.Synonyms, len(rcfg.Synonyms), rcfg.Key)
		}
		c, _ := got[0].Lookup("cleanup.policy")
		assert.Equal(t, SourceDynamicTopic, c.Source)
		assert.Equal(t, "compact", c.ValueOr(""))
		if assert.NotEmpty(t, c.Synonyms, "synonyms were asked for") && e.kfake == nil {
			// kfake lists synonyms lowest precedence first; Kafka (and
			// our broker) the one in effect first.
			assert.Equal(t, SourceDynamicTopic, c.Synonyms[0].Source, "highest precedence first")
		}
		if e.kfake == nil { // kfake lists only the default as a synonym
			assert.Contains(t, c.Synonyms, ConfigSynonym{Name: "cleanup.policy", Value: &v, Source: SourceDynamicTopic})
		}
	})
}

func TestAlterTopicConfigs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := testCtx(t)
		compact, retention := "compact", "1000"
		t1 := e.mkTopic(t, 1, map[string]*string{"cleanup.policy": &compact, "retention.ms": &retention})
		t2 := e.mkTopic(t, 1, nil)
		missing := topicName("missing")

		changes := []AlterConfig{SetConfig("retention.ms", "7777"), DeleteConfig("cleanup.policy")}

		// ValidateOnly changes nothing.
		res, err := e.a.AlterTopicConfigs(ctx, changes, []string{t1}, ValidateOnly())
		require.NoError(t, err)
		require.NoError(t, res.FirstErr())
		v, src, _ := e.kadmTopicConfig(t, t1, "retention.ms")
		assert.Equal(t, "1000", v)
		assert.EqualValues(t, 1, src)

		res, err = e.a.AlterTopicConfigs(ctx, changes, []string{t1, missing, t2})
		require.NoError(t, err)
		require.Len(t, res, 3)
		assert.NoError(t, res[0].Err)
		assert.ErrorIs(t, res[1].Err, tributary.ErrUnknownTopicOrPartition, "a missing topic fails alone")
		assert.NoError(t, res[2].Err)

		for _, topic := range []string{t1, t2} {
			v, src, ok := e.kadmTopicConfig(t, topic, "retention.ms")
			require.True(t, ok)
			assert.Equal(t, "7777", v, topic)
			assert.EqualValues(t, 1, src, "a topic override")
			v, src, _ = e.kadmTopicConfig(t, topic, "cleanup.policy")
			assert.Equal(t, "delete", v, "override deleted, default back")
			assert.NotEqualValues(t, 1, src)
		}

		// APPEND and SUBTRACT on a list config. (Set it first: kfake
		// appends to the override only, Kafka to the value in effect.)
		res, err = e.a.AlterTopicConfigs(ctx, []AlterConfig{SetConfig("cleanup.policy", "delete")}, []string{t2})
		require.NoError(t, err)
		require.NoError(t, res.FirstErr())
		res, err = e.a.AlterTopicConfigs(ctx, []AlterConfig{{Op: OpAppend, Name: "cleanup.policy", Value: "compact"}}, []string{t2})
		require.NoError(t, err)
		require.NoError(t, res.FirstErr())
		v, _, _ = e.kadmTopicConfig(t, t2, "cleanup.policy")
		assert.Equal(t, "delete,compact", v)
		res, err = e.a.AlterTopicConfigs(ctx, []AlterConfig{{Op: OpSubtract, Name: "cleanup.policy", Value: "delete"}}, []string{t2})
		require.NoError(t, err)
		require.NoError(t, res.FirstErr())
		v, _, _ = e.kadmTopicConfig(t, t2, "cleanup.policy")
		assert.Equal(t, "compact", v)

		// An unknown config fails with INVALID_CONFIG (or INVALID_REQUEST).
		// kfake accepts any name.
		if e.kfake != nil {
			return
		}
		res, err = e.a.AlterTopicConfigs(ctx, []AlterConfig{SetConfig("no.such.config", "1")}, []string{t2})
		require.NoError(t, err)
		require.Error(t, res[0].Err)
		assert.True(t, tributary.CodeOf(res[0].Err) == tributary.ErrInvalidConfig.Code || tributary.CodeOf(res[0].Err) == tributary.ErrInvalidRequest.Code, res[0].Err)
	})
}

func TestBrokerConfigs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := testCtx(t)
		meta, err := e.kadm.BrokerMetadata(ctx)
		require.NoError(t, err)
		ids := meta.Brokers.NodeIDs()
		require.Len(t, ids, e.brokers)

		got, err := e.a.DescribeBrokerConfigs(ctx, ids...)
		require.NoError(t, err)
		require.NoError(t, got.FirstErr())
		ref, err := e.kadm.DescribeBrokerConfigs(ctx, ids...)
		require.NoError(t, err)
		for i, id := range ids {
			name := strconv.Itoa(int(id))
			assert.Equal(t, name, got[i].Name)
			rc, err := ref.On(name, nil)
			require.NoError(t, err)
			assert.Len(t, got[i].Configs, len(rc.Configs), "broker %d", id)
			for _, rcfg := range rc.Configs {
				c, ok := got[i].Lookup(rcfg.Key)
				if assert.True(t, ok, rcfg.Key) {
					assert.Equal(t, rcfg.MaybeValue(), c.ValueOr(""), rcfg.Key)
					assert.Equal(t, int8(rcfg.Source), int8(c.Source), rcfg.Key)
					assert.Equal(t, rcfg.Sensitive, c.Sensitive, rcfg.Key)
				}
			}
		}

		// Alter one broker's dynamic config; the others keep theirs.
		target := ids[len(ids)-1]
		res, err := e.a.AlterBrokerConfigs(ctx, []AlterConfig{SetConfig("log.retention.ms", "424242")}, []int32{target})
		require.NoError(t, err)
		require.NoError(t, res.FirstErr())
		after, err := e.kadm.DescribeBrokerConfigs(ctx, ids...)
		require.NoError(t, err)
		for _, id := range ids {
			rc, err := after.On(strconv.Itoa(int(id)), nil)
			require.NoError(t, err)
			var val string
			var src int8
			for _, c := range rc.Configs {
				if c.Key == "log.retention.ms" {
					val, src = c.MaybeValue(), int8(c.Source)
				}
			}
			if id == target {
				assert.Equal(t, "424242", val)
				assert.EqualValues(t, SourceDynamicBroker, src)
			} else if e.kfake == nil { // kfake shares dynamic broker configs across brokers
				assert.NotEqual(t, "424242", val, "broker %d untouched", id)
			}
		}

		// No ids: the cluster-wide default (resource name "").
		res, err = e.a.AlterBrokerConfigs(ctx, []AlterConfig{SetConfig("log.retention.bytes", "5555555")}, nil)
		require.NoError(t, err)
		require.NoError(t, res.FirstErr())
		assert.Equal(t, "", res[0].Name)
		def, err := e.a.DescribeBrokerConfigs(ctx)
		require.NoError(t, err)
		require.NoError(t, def.FirstErr())
		c, ok := def[0].Lookup("log.retention.bytes")
		require.True(t, ok, "the cluster default is described")
		assert.Equal(t, "5555555", c.ValueOr(""))
		refDef, err := e.kadm.DescribeBrokerConfigs(ctx)
		require.NoError(t, err)
		rc, err := refDef.On("", nil)
		require.NoError(t, err)
		var refVal string
		for _, c := range rc.Configs {
			if c.Key == "log.retention.bytes" {
				refVal = c.MaybeValue()
			}
		}
		assert.Equal(t, "5555555", refVal, "kadm reads the new default")

		// A broker id that does not exist fails alone.
		res, err = e.a.AlterBrokerConfigs(ctx, []AlterConfig{SetConfig("log.retention.ms", "1")}, []int32{target, 999})
		require.NoError(t, err)
		assert.NoError(t, res[0].Err)
		assert.Error(t, res[1].Err)
	})
}
