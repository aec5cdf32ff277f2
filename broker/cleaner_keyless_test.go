package broker_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A record without a key cannot be compacted: Kafka refuses it with
// INVALID_RECORD and says why (ErrorMessage, Produce v8+, and the record
// in ErrorRecords).
func TestCompactedTopicRefusesKeylessRecord(t *testing.T) {
	b := startCleaning(t)
	compactedTopic(t, b.Addr(), "compact-d", nil)
	cl := newClient(t, b.Addr(), kgo.ProducerLinger(0), kgo.RecordRetries(0))
	err := cl.ProduceSync(ctx5(t), &kgo.Record{Topic: "compact-d", Value: []byte("no key")}).FirstErr()
	require.ErrorIs(t, err, kerr.InvalidRecord)

	for _, v := range []int16{7, 8, 9} {
		resp := produceRaw(t, cl, v, "compact-d", 0, rawBatch(-1, -1, -1, 2, 5))
		require.Equal(t, kerr.InvalidRecord.Code, resp.ErrorCode, "v%d", v)
		if v < 8 {
			continue // no ErrorMessage before v8
		}
		require.NotNil(t, resp.ErrorMessage, "v%d", v)
		require.Contains(t, *resp.ErrorMessage, "Compacted topic cannot accept message without key")
		require.NotEmpty(t, resp.ErrorRecords)
	}
	// A keyed record still goes in.
	require.NoError(t, cl.ProduceSync(ctx5(t), &kgo.Record{Topic: "compact-d", Key: []byte("k"), Value: []byte("v")}).FirstErr())
	// So does a keyless one on a topic that is not compacted.
	createTopic(t, b.Addr(), "plain-d", 1, nil)
	resp := produceRaw(t, cl, 9, "plain-d", 0, rawBatch(-1, -1, -1, 1, 5))
	require.Zero(t, resp.ErrorCode)
}
