package broker_test

import (
	"os"
	"path/filepath"
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

func TestMetadataAutoCreate(t *testing.T) {
	t.Run("enabled", func(t *testing.T) {
		b := brokertest.Start(t, func(c *broker.Config) { c.NumPartitions = 3 })
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
		require.NoError(t, err)
		defer cl.Close()
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 12
		req.AllowAutoTopicCreation = true
		for _, n := range []string{"auto-b", "auto-a", "auto-b", "bad name"} {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(n)
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctx5(t), cl)
		require.NoError(t, err)
		require.Len(t, resp.Topics, 3) // the duplicate answered once
		assert.Equal(t, "auto-b", *resp.Topics[0].Topic)
		assert.Equal(t, "auto-a", *resp.Topics[1].Topic)
		for _, rt := range resp.Topics[:2] {
			assert.Zero(t, rt.ErrorCode)
			assert.Len(t, rt.Partitions, 3)
			assert.NotEqual(t, [16]byte{}, rt.TopicID)
			for _, p := range rt.Partitions {
				assert.EqualValues(t, 1, p.Leader)
				assert.Equal(t, []int32{1}, p.Replicas)
				assert.Equal(t, []int32{1}, p.ISR)
			}
		}
		assert.Equal(t, kerr.InvalidTopicException.Code, resp.Topics[2].ErrorCode)
		assert.NotNil(t, resp.ClusterID)
		assert.EqualValues(t, 1, resp.ControllerID)

		// All topics: a null list.
		req.Topics = nil
		resp, err = req.RequestWith(ctx5(t), cl)
		require.NoError(t, err)
		require.Len(t, resp.Topics, 2)
		assert.Equal(t, "auto-a", *resp.Topics[0].Topic)

		// An empty list means none (v1+).
		req.Topics = []kmsg.MetadataRequestTopic{}
		resp, err = req.RequestWith(ctx5(t), cl)
		require.NoError(t, err)
		assert.Empty(t, resp.Topics)
	})
	t.Run("disabled", func(t *testing.T) {
		b := brokertest.Start(t, func(c *broker.Config) { c.AutoCreateTopicsEnable = false })
		adm := newAdmin(t, b.Addr())
		md, err := adm.Metadata(ctx5(t), "nope")
		require.NoError(t, err)
		require.ErrorIs(t, md.Topics["nope"].Err, kerr.UnknownTopicOrPartition)
	})
	t.Run("not allowed by request", func(t *testing.T) {
		b := brokertest.Start(t)
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
		require.NoError(t, err)
		defer cl.Close()
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 12
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr("x")
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx5(t), cl)
		require.NoError(t, err)
		assert.Equal(t, kerr.UnknownTopicOrPartition.Code, resp.Topics[0].ErrorCode)
	})
}

func TestCreateDeleteTopics(t *testing.T) {
	b := brokertest.Start(t)
	adm := newAdmin(t, b.Addr())
	ctx := ctx5(t)

	// validate_only creates nothing.
	resp, err := adm.ValidateCreateTopics(ctx, 4, 1, nil, "v-only")
	require.NoError(t, err)
	require.NoError(t, resp["v-only"].Err)
	assert.EqualValues(t, 4, resp["v-only"].NumPartitions)
	md, err := adm.Metadata(ctx, "v-only")
	require.NoError(t, err)
	assert.ErrorIs(t, md.Topics["v-only"].Err, kerr.UnknownTopicOrPartition)

	ct, err := adm.CreateTopic(ctx, -1, -1, map[string]*string{"retention.ms": kadm.StringPtr("1000")}, "orders")
	require.NoError(t, err)
	require.NoError(t, ct.Err)
	assert.EqualValues(t, 1, ct.NumPartitions)
	assert.EqualValues(t, 1, ct.ReplicationFactor)
	assert.NotEqual(t, kadm.TopicID{}, ct.ID)
	assert.Equal(t, "1000", *ct.Configs["retention.ms"].Value)
	assert.Equal(t, kmsg.ConfigSourceDynamicTopicConfig, ct.Configs["retention.ms"].Source)
	_, err = os.Stat(filepath.Join(b.Dir, "orders-0"))
	require.NoError(t, err)

	for name, want := range map[string]error{
		"orders":                 kerr.TopicAlreadyExists,
		"orders.":                nil,
		"bad/name":               kerr.InvalidTopicException,
		".":                      kerr.InvalidTopicException,
		"..":                     kerr.InvalidTopicException,
		strings.Repeat("x", 250): kerr.InvalidTopicException,
		"__consumer_offsets":     kerr.InvalidRequest,
	} {
		r, err := adm.CreateTopic(ctx, 1, 1, nil, name)
		if want == nil {
			require.NoError(t, err, name)
			continue
		}
		require.ErrorIs(t, r.Err, want, name)
	}
	// orders_ collides with orders.
	r, _ := adm.CreateTopic(ctx, 1, 1, nil, "orders_")
	require.ErrorIs(t, r.Err, kerr.InvalidTopicException)

	r, _ = adm.CreateTopic(ctx, 1, 3, nil, "rf3")
	require.ErrorIs(t, r.Err, kerr.InvalidReplicationFactor)
	r, _ = adm.CreateTopic(ctx, 0, 1, nil, "p0")
	require.ErrorIs(t, r.Err, kerr.InvalidPartitions)
	r, _ = adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": kadm.StringPtr("soon")}, "badcfg")
	require.ErrorIs(t, r.Err, kerr.InvalidConfig)
	r, _ = adm.CreateTopic(ctx, 1, 1, map[string]*string{"no.such.config": kadm.StringPtr("1")}, "badcfg")
	require.ErrorIs(t, r.Err, kerr.InvalidConfig)
	r, _ = adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact,delete")}, "compacted")
	require.NoError(t, r.Err)

	// Manual assignment.
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	require.NoError(t, err)
	defer cl.Close()
	creq := kmsg.NewPtrCreateTopicsRequest()
	creq.Version = 7
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "manual", -1, -1
	for i := range int32(2) {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = i, []int32{1}
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
	}
	bad := rt
	bad.Topic = "manual-bad"
	bad.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{7}}}
	dup := kmsg.NewCreateTopicsRequestTopic()
	dup.Topic, dup.NumPartitions, dup.ReplicationFactor = "twice", 1, 1
	creq.Topics = append(creq.Topics, rt, bad, dup, dup)
	cresp, err := creq.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.Len(t, cresp.Topics, 4)
	assert.Zero(t, cresp.Topics[0].ErrorCode)
	assert.EqualValues(t, 2, cresp.Topics[0].NumPartitions)
	assert.Equal(t, kerr.InvalidReplicaAssignment.Code, cresp.Topics[1].ErrorCode)
	assert.Equal(t, kerr.InvalidRequest.Code, cresp.Topics[2].ErrorCode)
	assert.Equal(t, kerr.InvalidRequest.Code, cresp.Topics[3].ErrorCode)

	// Delete by name, then again.
	dr, err := adm.DeleteTopics(ctx, "orders")
	require.NoError(t, err)
	require.NoError(t, dr["orders"].Err)
	_, err = os.Stat(filepath.Join(b.Dir, "orders-0"))
	assert.True(t, os.IsNotExist(err), "partition dir still there: %v", err)
	dr, err = adm.DeleteTopics(ctx, "orders")
	require.NoError(t, err)
	require.ErrorIs(t, dr["orders"].Err, kerr.UnknownTopicOrPartition)

	// Delete by id (v6).
	md, err = adm.Metadata(ctx, "manual")
	require.NoError(t, err)
	dreq := kmsg.NewPtrDeleteTopicsRequest()
	dreq.Version = 6
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.TopicID = md.Topics["manual"].ID
	unknown := kmsg.NewDeleteTopicsRequestTopic()
	unknown.TopicID = [16]byte{1, 2, 3}
	dreq.Topics = append(dreq.Topics, dt, unknown)
	dresp, err := dreq.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.Len(t, dresp.Topics, 2)
	assert.Zero(t, dresp.Topics[0].ErrorCode)
	assert.Equal(t, "manual", *dresp.Topics[0].Topic)
	assert.Equal(t, kerr.UnknownTopicID.Code, dresp.Topics[1].ErrorCode)

	// A new topic of a deleted name starts empty and gets a new id.
	ct2, err := adm.CreateTopic(ctx, 1, 1, nil, "orders")
	require.NoError(t, err)
	assert.NotEqual(t, ct.ID, ct2.ID)

	// Topics and ids survive a restart.
	b.Restart(t)
	adm = newAdmin(t, b.Addr())
	md, err = adm.Metadata(ctx5(t))
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"orders", "orders.", "compacted"}, md.Topics.Names())
	assert.Equal(t, ct2.ID, md.Topics["orders"].ID)
}

func TestCreatePartitions(t *testing.T) {
	b := brokertest.Start(t)
	adm := newAdmin(t, b.Addr())
	ctx := ctx5(t)
	_, err := adm.CreateTopic(ctx, 2, 1, nil, "grow")
	require.NoError(t, err)

	r, err := adm.ValidateCreatePartitions(ctx, 3, "grow")
	require.NoError(t, err)
	require.NoError(t, r["grow"].Err)
	md, _ := adm.Metadata(ctx, "grow")
	assert.Len(t, md.Topics["grow"].Partitions, 2)

	r, err = adm.UpdatePartitions(ctx, 5, "grow")
	require.NoError(t, err)
	require.NoError(t, r["grow"].Err)
	md, _ = adm.Metadata(ctx, "grow")
	assert.Len(t, md.Topics["grow"].Partitions, 5)
	_, err = os.Stat(filepath.Join(b.Dir, "grow-4"))
	require.NoError(t, err)

	r, _ = adm.UpdatePartitions(ctx, 5, "grow")
	require.ErrorIs(t, r["grow"].Err, kerr.InvalidPartitions)
	r, _ = adm.UpdatePartitions(ctx, 3, "grow")
	require.ErrorIs(t, r["grow"].Err, kerr.InvalidPartitions)
	r, _ = adm.UpdatePartitions(ctx, 3, "missing")
	require.ErrorIs(t, r["missing"].Err, kerr.UnknownTopicOrPartition)

	b.Restart(t)
	adm = newAdmin(t, b.Addr())
	md, err = adm.Metadata(ctx5(t), "grow")
	require.NoError(t, err)
	assert.Len(t, md.Topics["grow"].Partitions, 5)
}

func TestAdvertisedListenersAndConfigNamesFilter(t *testing.T) {
	b := brokertest.Start(t, func(c *broker.Config) {
		c.AdvertisedListeners = "PLAINTEXT://broker.example:19092"
	})
	// Raw: a client would follow the advertised (unresolvable) address.
	c := dialRaw(t, b.Addr())
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	c.write(frame(req, 1, "raw"))
	_, body, err := c.read()
	require.NoError(t, err)
	resp := kmsg.NewPtrMetadataResponse()
	resp.Version = 12
	require.NoError(t, resp.ReadFrom(body[1:]))
	require.Len(t, resp.Brokers, 1)
	assert.Equal(t, "broker.example", resp.Brokers[0].Host)
	assert.EqualValues(t, 19092, resp.Brokers[0].Port)

	dreq := kmsg.NewPtrDescribeConfigsRequest()
	dreq.Version = 4
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, "1"
	rr.ConfigNames = []string{"advertised.listeners", "log.retention.ms", "no.such"}
	dreq.Resources = append(dreq.Resources, rr)
	c.write(frame(dreq, 2, "raw"))
	_, body, err = c.read()
	require.NoError(t, err)
	dresp := kmsg.NewPtrDescribeConfigsResponse()
	dresp.Version = 4
	require.NoError(t, dresp.ReadFrom(body[1:]))
	require.Len(t, dresp.Resources, 1)
	var names []string
	for _, c := range dresp.Resources[0].Configs {
		names = append(names, c.Name)
		if c.Name == "advertised.listeners" {
			assert.Equal(t, "PLAINTEXT://broker.example:19092", *c.Value)
			assert.Equal(t, kmsg.ConfigSourceStaticBrokerConfig, c.Source)
			assert.True(t, c.ReadOnly)
		}
	}
	assert.ElementsMatch(t, []string{"advertised.listeners", "log.retention.ms"}, names)
}
