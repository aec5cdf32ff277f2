package admin

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/tributary/tributary"
)

func TestNewValidates(t *testing.T) {
	_, err := New()
	require.Error(t, err, "no seeds")
	_, err = New(SeedBrokers("127.0.0.1:9092"), Timeout(0))
	require.Error(t, err)
	_, err = New(SeedBrokers("127.0.0.1:9092"), RequestRetries(-1))
	require.Error(t, err)
	_, err = New(SeedBrokers("no-port"))
	require.Error(t, err, "client options are validated too")
	a, err := New(SeedBrokers("127.0.0.1:9092"))
	require.NoError(t, err)
	a.Close()
}

func TestTopicIDString(t *testing.T) {
	// Kafka prints UUIDs as URL-safe base64 without padding (Uuid.toString).
	var id TopicID
	for i := range id {
		id[i] = 0xff
	}
	assert.Equal(t, "_____________________w", id.String())
	assert.True(t, TopicID{}.IsZero())
	assert.False(t, id.IsZero())
}

func TestCreateTopic(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := testCtx(t)
		name := topicName("create")
		require.NoError(t, e.a.CreateTopic(ctx, name, 3, int16(e.brokers), map[string]string{
			"cleanup.policy": "compact",
			"retention.ms":   "123456",
		}))
		e.waitTopic(t, name, 3)

		// Read back with the reference.
		md, err := e.kadm.Metadata(ctx, name)
		require.NoError(t, err)
		td := md.Topics[name]
		require.NoError(t, td.Err)
		assert.Len(t, td.Partitions, 3)
		for _, p := range td.Partitions {
			assert.Len(t, p.Replicas, e.brokers, "replication factor")
		}
		rcs, err := e.kadm.DescribeTopicConfigs(ctx, name)
		require.NoError(t, err)
		rc, err := rcs.On(name, nil)
		require.NoError(t, err)
		require.NoError(t, rc.Err)
		got := map[string]string{}
		for _, c := range rc.Configs {
			if c.Source == 1 { // DYNAMIC_TOPIC_CONFIG
				got[c.Key] = c.MaybeValue()
			}
		}
		assert.Equal(t, map[string]string{"cleanup.policy": "compact", "retention.ms": "123456"}, got)

		// Creating it again fails with a typed, errors.Is-able error.
		err = e.a.CreateTopic(ctx, name, 3, 1, nil)
		require.ErrorIs(t, err, tributary.ErrTopicAlreadyExists)
	})
}

func TestCreateTopicsPartialFailure(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := testCtx(t)
		existing := e.mkTopic(t, 1, nil)
		good := topicName("good")
		res, err := e.a.CreateTopics(ctx, []NewTopic{
			{Name: good, Partitions: 2, ReplicationFactor: 1},
			{Name: "bad name!", Partitions: 1, ReplicationFactor: 1},
			{Name: existing, Partitions: 1, ReplicationFactor: 1},
			{Name: topicName("zero"), Partitions: 0, ReplicationFactor: 1},
		})
		require.NoError(t, err)
		require.Len(t, res, 4)
		assert.Equal(t, good, res[0].Topic, "results in request order")
		assert.NoError(t, res[0].Err)
		if e.kfake == nil {
			assert.ErrorIs(t, res[1].Err, tributary.ErrInvalidTopicException)
		} // else kfake's gap: it creates topics with any name
		assert.ErrorIs(t, res[2].Err, tributary.ErrTopicAlreadyExists)
		assert.ErrorIs(t, res[3].Err, tributary.ErrInvalidPartitions)
		if res[0].Partitions != -1 { // CreateTopics v5+ reports what it made
			assert.EqualValues(t, 2, res[0].Partitions)
			assert.EqualValues(t, 1, res[0].ReplicationFactor)
		}
		ferr := res.FirstErr()
		require.Error(t, ferr)
		if e.kfake == nil {
			assert.Contains(t, ferr.Error(), "bad name!", "FirstErr names the topic")
		}

		e.waitTopic(t, good, 2)
		topics, err := e.kadm.ListTopics(ctx)
		require.NoError(t, err)
		assert.True(t, topics.Has(good), "the good topic exists despite the bad ones")
		assert.Len(t, topics[existing].Partitions, 1, "the existing topic is untouched")
	})
}

func TestCreateTopicsValidateOnly(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := testCtx(t)
		name := topicName("validate")
		res, err := e.a.CreateTopics(ctx, []NewTopic{{Name: name, Partitions: 4, ReplicationFactor: 1}}, ValidateOnly())
		require.NoError(t, err)
		require.NoError(t, res.FirstErr())
		md, err := e.kadm.Metadata(ctx, name)
		require.NoError(t, err)
		assert.ErrorIs(t, md.Topics[name].Err, kerr.UnknownTopicOrPartition, "validate-only must not create")
	})
}

func TestDeleteTopics(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := testCtx(t)
		t1, t2 := e.mkTopic(t, 1, nil), e.mkTopic(t, 2, nil)
		missing := topicName("missing")
		res, err := e.a.DeleteTopics(ctx, t1, missing, t2)
		require.NoError(t, err)
		require.Len(t, res, 3)
		assert.NoError(t, res[0].Err)
		assert.ErrorIs(t, res[1].Err, tributary.ErrUnknownTopicOrPartition)
		assert.NoError(t, res[2].Err)
		assert.ErrorIs(t, res.FirstErr(), tributary.ErrUnknownTopicOrPartition)

		require.Eventually(t, func() bool {
			topics, err := e.kadm.ListTopics(ctx)
			return err == nil && !topics.Has(t1) && !topics.Has(t2)
		}, 10*time.Second, 20*time.Millisecond)
	})
}

func TestListAndDescribeTopics(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := testCtx(t)
		retention := "99999"
		t1 := e.mkTopic(t, 3, map[string]*string{"retention.ms": &retention})
		t2 := e.mkTopic(t, 1, nil)

		ls, err := e.a.ListTopics(ctx)
		require.NoError(t, err)
		ref, err := e.kadm.ListTopicsWithInternal(ctx)
		require.NoError(t, err)
		assert.Equal(t, ref.Names(), ls.Names(), "same topics, sorted")
		for _, l := range ls {
			r := ref[l.Topic]
			assert.Equal(t, len(r.Partitions), l.Partitions, l.Topic)
			assert.Equal(t, r.IsInternal, l.Internal, l.Topic)
			assert.Equal(t, [16]byte(r.ID), [16]byte(l.ID), l.Topic)
			assert.NoError(t, l.Err)
		}

		missing := topicName("missing")
		ds, err := e.a.DescribeTopics(ctx, t1, missing, t2)
		require.NoError(t, err)
		require.Len(t, ds, 3)
		assert.ErrorIs(t, ds[1].Err, tributary.ErrUnknownTopicOrPartition, "a missing topic fails alone")
		for _, d := range []TopicDetail{ds[0], ds[2]} {
			require.NoError(t, d.Err, d.Topic)
			r := ref[d.Topic]
			assert.Equal(t, [16]byte(r.ID), [16]byte(d.ID))
			assert.False(t, d.ID.IsZero(), "topic id")
			require.Len(t, d.Partitions, len(r.Partitions))
			for _, p := range d.Partitions {
				rp := r.Partitions[p.Partition]
				assert.Equal(t, rp.Leader, p.Leader)
				assert.Equal(t, rp.LeaderEpoch, p.LeaderEpoch)
				assert.Equal(t, rp.Replicas, p.Replicas)
				assert.Equal(t, rp.ISR, p.ISR)
				assert.ElementsMatch(t, rp.OfflineReplicas, p.Offline)
			}
			assert.NotEmpty(t, d.Configs, "configs come along")
		}
		var found bool
		for _, c := range ds[0].Configs {
			if c.Name == "retention.ms" {
				found = true
				assert.Equal(t, "99999", c.ValueOr(""))
				assert.Equal(t, SourceDynamicTopic, c.Source)
				assert.False(t, c.Default)
			}
		}
		assert.True(t, found, "retention.ms override described")

		// No names: every topic.
		all, err := e.a.DescribeTopics(ctx)
		require.NoError(t, err)
		names := map[string]bool{}
		for _, d := range all {
			names[d.Topic] = true
		}
		assert.True(t, names[t1] && names[t2])
	})
}

func TestCreatePartitions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := testCtx(t)
		t1, t2 := e.mkTopic(t, 2, nil), e.mkTopic(t, 4, nil)
		missing := topicName("missing")

		// Validate only: nothing changes.
		res, err := e.a.CreatePartitions(ctx, 5, []string{t1}, ValidateOnly())
		require.NoError(t, err)
		require.NoError(t, res.FirstErr())
		md, err := e.kadm.Metadata(ctx, t1)
		require.NoError(t, err)
		assert.Len(t, md.Topics[t1].Partitions, 2)

		// t1 grows to 3; t2 already has 4 (partitions only grow); missing fails.
		res, err = e.a.CreatePartitions(ctx, 3, []string{t1, t2, missing})
		require.NoError(t, err)
		require.Len(t, res, 3)
		assert.NoError(t, res[0].Err)
		assert.ErrorIs(t, res[1].Err, tributary.ErrInvalidPartitions)
		assert.ErrorIs(t, res[2].Err, tributary.ErrUnknownTopicOrPartition)
		e.waitTopic(t, t1, 3)
		md, err = e.kadm.Metadata(ctx, t2)
		require.NoError(t, err)
		assert.Len(t, md.Topics[t2].Partitions, 4, "failed topic untouched")
	})
}
