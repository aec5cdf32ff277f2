package broker_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/broker"
)

func TestParseProperties(t *testing.T) {
	in := "# comment\n" +
		"! also a comment\n" +
		"   \n" +
		"node.id=3\n" +
		"  log.dirs : /a,/b  \n" +
		"num.partitions 4\n" +
		"listeners=PLAINTEXT://127.0.0.1:9092,\\\n" +
		"    CONTROLLER://127.0.0.1:9093\n" +
		"key\\ with\\ spaces=v\\tx\n" +
		"unicode=caf\\u00e9\n" +
		"empty=\n" +
		"node.id=4\n" +
		"trailing.backslash.pair=a\\\\\n"
	props, err := broker.ParseProperties(strings.NewReader(in))
	require.NoError(t, err)
	assert.Equal(t, map[string]string{
		"node.id":                 "4",
		"log.dirs":                "/a,/b",
		"num.partitions":          "4",
		"listeners":               "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
		"key with spaces":         "v\tx",
		"unicode":                 "café",
		"empty":                   "",
		"trailing.backslash.pair": `a\`,
	}, props)

	_, err = broker.ParseProperties(strings.NewReader("bad=\\u12\n"))
	assert.Error(t, err)
}

func TestConfigSetPrecedenceAndValidation(t *testing.T) {
	c := broker.DefaultConfig()
	// ms beats minutes beats hours, whatever the order.
	require.NoError(t, c.Set("log.retention.ms", "1234"))
	require.NoError(t, c.Set("log.retention.hours", "1"))
	require.NoError(t, c.Set("log.retention.minutes", "1"))
	assert.EqualValues(t, 1234, c.LogRetentionMs)

	c = broker.DefaultConfig()
	require.NoError(t, c.Set("log.retention.hours", "2"))
	assert.EqualValues(t, 2*3600000, c.LogRetentionMs)
	require.NoError(t, c.Set("log.retention.minutes", "3"))
	assert.EqualValues(t, 3*60000, c.LogRetentionMs)
	require.NoError(t, c.Set("log.retention.hours", "5"))
	assert.EqualValues(t, 3*60000, c.LogRetentionMs)
	require.NoError(t, c.Set("log.retention.hours", "-1"))
	require.NoError(t, c.Set("log.roll.hours", "1"))
	assert.EqualValues(t, 3600000, c.LogRollMs)

	require.NoError(t, c.Set("auto.create.topics.enable", "FALSE"))
	assert.False(t, c.AutoCreateTopicsEnable)
	require.NoError(t, c.Set("log.cleanup.policy", "compact, delete"))
	assert.Equal(t, "compact,delete", c.LogCleanupPolicy)
	require.NoError(t, c.Set("log.message.timestamp.type", "logappendtime"))
	assert.Equal(t, "LogAppendTime", c.LogMessageTimestampType)
	require.NoError(t, c.Set("log.dirs", "/x, /y"))
	assert.Equal(t, []string{"/x", "/y"}, c.LogDirs)

	for k, v := range map[string]string{
		"num.partitions":                  "0",
		"node.id":                         "abc",
		"log.retention.ms":                "-2",
		"log.cleanup.policy":              "shred",
		"compression.type":                "brotli",
		"log.cleaner.min.cleanable.ratio": "1.5",
		"message.max.bytes":               "99999999999",
		"auto.create.topics.enable":       "yes",
	} {
		assert.Error(t, c.Set(k, v), k)
	}
	assert.Error(t, c.Set("no.such.property", "1"))

	// Unknown properties in a file are ignored, bad values are not.
	c = broker.DefaultConfig()
	require.NoError(t, c.ApplyProperties(map[string]string{"zookeeper.connect": "x", "num.partitions": "6"}, nil))
	assert.EqualValues(t, 6, c.NumPartitions)
	assert.Error(t, c.ApplyProperties(map[string]string{"num.partitions": "-6"}, nil))
}

func TestNewRejectsBadConfig(t *testing.T) {
	c := broker.DefaultConfig()
	c.LogDirs = []string{t.TempDir()}
	c.Listeners = "SSL://127.0.0.1:9093"
	_, err := broker.New(c)
	assert.Error(t, err)

	c = broker.DefaultConfig()
	c.LogDirs = []string{t.TempDir()}
	c.NumPartitions = 0
	_, err = broker.New(c)
	assert.Error(t, err)
}
