package broker_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary/broker/brokertest"
)

// TestEveryAdvertisedVersion sends each admin API at every version the
// broker advertises over a raw connection and parses the answer at that
// version: old non-flexible clients (kafkajs) and new flexible ones must
// both get well-formed responses with the right header.
func TestEveryAdvertisedVersion(t *testing.T) {
	b := brokertest.Start(t)
	c := dialRaw(t, b.Addr())
	corr := int32(0)
	roundTrip := func(req kmsg.Request) kmsg.Response {
		t.Helper()
		corr++
		c.write(frame(req, corr, "versions"))
		got, body, err := c.read()
		require.NoError(t, err)
		require.Equal(t, corr, got)
		resp := req.ResponseKind()
		resp.SetVersion(req.GetVersion())
		if resp.IsFlexible() && req.Key() != 18 {
			require.NotEmpty(t, body)
			require.Zero(t, body[0], "response header tags")
			body = body[1:]
		}
		require.NoError(t, resp.ReadFrom(body), "%s v%d", kmsg.NameForKey(req.Key()), req.GetVersion())
		return resp
	}

	for v := int16(2); v <= 7; v++ {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.Version = v
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = fmt.Sprintf("v%d", v), 2, 1
		req.Topics = append(req.Topics, rt)
		resp := roundTrip(req).(*kmsg.CreateTopicsResponse)
		require.Len(t, resp.Topics, 1)
		assert.Zero(t, resp.Topics[0].ErrorCode, "CreateTopics v%d", v)
		if v >= 5 {
			assert.EqualValues(t, 2, resp.Topics[0].NumPartitions)
			assert.NotEmpty(t, resp.Topics[0].Configs)
		}
		if v >= 7 {
			assert.NotEqual(t, [16]byte{}, resp.Topics[0].TopicID)
		}
	}
	for v := int16(0); v <= 13; v++ {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = v
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr("v2")
		req.Topics = append(req.Topics, rt)
		resp := roundTrip(req).(*kmsg.MetadataResponse)
		require.Len(t, resp.Topics, 1, "Metadata v%d", v)
		assert.Zero(t, resp.Topics[0].ErrorCode)
		assert.Len(t, resp.Topics[0].Partitions, 2)
		require.Len(t, resp.Brokers, 1)
		assert.NotZero(t, resp.Brokers[0].Port)
		if v >= 10 {
			assert.NotEqual(t, [16]byte{}, resp.Topics[0].TopicID)
		}
	}
	for v := int16(0); v <= 4; v++ {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		req.ClientSoftwareName, req.ClientSoftwareVersion = "versions", "1"
		resp := roundTrip(req).(*kmsg.ApiVersionsResponse)
		assert.Zero(t, resp.ErrorCode)
		assert.NotEmpty(t, resp.ApiKeys)
	}
	for v := int16(1); v <= 4; v++ {
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.Version = v
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "v2"
		br := kmsg.NewDescribeConfigsRequestResource()
		br.ResourceType, br.ResourceName = kmsg.ConfigResourceTypeBroker, "1"
		req.Resources = append(req.Resources, rr, br)
		resp := roundTrip(req).(*kmsg.DescribeConfigsResponse)
		require.Len(t, resp.Resources, 2)
		for _, r := range resp.Resources {
			assert.Zero(t, r.ErrorCode)
			assert.NotEmpty(t, r.Configs)
		}
	}
	for v := int16(0); v <= 2; v++ {
		req := kmsg.NewPtrAlterConfigsRequest()
		req.Version = v
		rr := kmsg.NewAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "v2"
		rr.Configs = []kmsg.AlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: kmsg.StringPtr("1000")}}
		req.Resources = append(req.Resources, rr)
		resp := roundTrip(req).(*kmsg.AlterConfigsResponse)
		require.Len(t, resp.Resources, 1)
		assert.Zero(t, resp.Resources[0].ErrorCode)
	}
	for v := int16(0); v <= 1; v++ {
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		req.Version = v
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "v2"
		rr.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "cleanup.policy", Op: kmsg.IncrementalAlterConfigOpAppend, Value: kmsg.StringPtr("compact")}}
		req.Resources = append(req.Resources, rr)
		resp := roundTrip(req).(*kmsg.IncrementalAlterConfigsResponse)
		require.Len(t, resp.Resources, 1)
		assert.Zero(t, resp.Resources[0].ErrorCode)
	}
	for v := int16(0); v <= 3; v++ {
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.Version = v
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = "v2", int32(3+v)
		req.Topics = append(req.Topics, rt)
		resp := roundTrip(req).(*kmsg.CreatePartitionsResponse)
		require.Len(t, resp.Topics, 1)
		assert.Zero(t, resp.Topics[0].ErrorCode, "CreatePartitions v%d", v)
	}
	for v := int16(0); v <= 2; v++ {
		req := kmsg.NewPtrDescribeClusterRequest()
		req.Version = v
		req.EndpointType = 1
		resp := roundTrip(req).(*kmsg.DescribeClusterResponse)
		assert.Zero(t, resp.ErrorCode)
		assert.Len(t, resp.Brokers, 1)
	}
	for v := int16(1); v <= 6; v++ {
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.Version = v
		name := fmt.Sprintf("v%d", v+1)
		if v >= 6 {
			dt := kmsg.NewDeleteTopicsRequestTopic()
			dt.Topic = kmsg.StringPtr(name)
			req.Topics = append(req.Topics, dt)
		} else {
			req.TopicNames = append(req.TopicNames, name)
		}
		resp := roundTrip(req).(*kmsg.DeleteTopicsResponse)
		require.Len(t, resp.Topics, 1)
		assert.Zero(t, resp.Topics[0].ErrorCode, "DeleteTopics v%d", v)
	}
}
