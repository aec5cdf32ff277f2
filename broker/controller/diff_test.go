package controller

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDiff(t *testing.T) {
	h := newHarness(t)
	h.brokers("", "", "")
	d := Diff(nil, h.img)
	require.Equal(t, []int32{1, 2, 3}, d.Brokers)
	require.Empty(t, d.CreatedTopics)

	before := h.img
	h.create("a", 3, 2, 0, nil)
	h.create("b", 1, 1, 0, nil)
	d = Diff(before, h.img)
	require.Len(t, d.CreatedTopics, 2)
	require.Equal(t, "a", d.CreatedTopics[0].Name)
	require.Empty(t, d.Partitions, "partitions of a created topic are not repeated")
	require.Empty(t, d.Brokers)

	before = h.img
	h.fence(1)
	r, err := CreatePartitionsRecord(h.img, "b", 2, nil)
	require.NoError(t, err)
	h.apply([]Record{r})
	recs, err := ConfigChangeRecords(h.img, []ConfigChange{
		{Resource: ResourceTopic, Name: "a", Key: "retention.ms", Value: "1"},
		{Resource: ResourceBroker, Key: "x", Value: "y"},
		{Resource: ResourceBroker, Name: "2", Key: "x", Value: "y"},
	})
	require.NoError(t, err)
	h.apply(recs)
	d = Diff(before, h.img)
	require.Equal(t, []int32{1}, d.Brokers)
	require.Equal(t, []string{"a"}, d.TopicConfigs)
	require.True(t, d.ClusterConfigs)
	require.Equal(t, []int32{2}, d.NodeConfigs)
	var moved int
	for _, pd := range d.Partitions {
		if pd.Topic.Name == "b" && pd.Index == 1 {
			require.Nil(t, pd.Old)
			continue
		}
		require.NotNil(t, pd.Old)
		require.True(t, pd.Old.IsReplica(1), "only partitions broker 1 was part of changed")
		moved++
	}
	require.Positive(t, moved)

	before = h.img
	del, err := DeleteTopicRecord(h.img, h.img.TopicByName("a").ID)
	require.NoError(t, err)
	h.apply([]Record{del})
	d = Diff(before, h.img)
	require.Len(t, d.DeletedTopics, 1)
	require.Equal(t, "a", d.DeletedTopics[0].Name)
	require.Empty(t, Diff(h.img, h.img).Partitions)
}

func TestParseVoters(t *testing.T) {
	v, err := ParseVoters("1@127.0.0.1:9093, 2@localhost:9095,3@[::1]:9097")
	require.NoError(t, err)
	require.Equal(t, map[int32]string{1: "127.0.0.1:9093", 2: "localhost:9095", 3: "[::1]:9097"}, v)
	for _, bad := range []string{"", "1", "x@h:1", "1@", "1@a:1,1@b:2", "-1@a:1"} {
		_, err := ParseVoters(bad)
		require.Error(t, err, bad)
	}
}
