package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadBrokerConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server.properties")
	require.NoError(t, os.WriteFile(path, []byte(
		"# Kafka-style file\n"+
			"node.id=2\n"+
			"listeners=PLAINTEXT://0.0.0.0:19092\n"+
			"log.dirs=/var/lib/tributary\n"+
			"num.partitions=4\n"+
			"log.retention.hours=24\n"+
			"zookeeper.connect=ignored:2181\n"), 0o644))
	logger := slog.New(slog.DiscardHandler)

	cfg, err := loadBrokerConfig(path, []string{"num.partitions=8", "log.retention.ms=1000"}, logger)
	require.NoError(t, err)
	assert.EqualValues(t, 2, cfg.NodeID)
	assert.Equal(t, "PLAINTEXT://0.0.0.0:19092", cfg.Listeners)
	assert.Equal(t, []string{"/var/lib/tributary"}, cfg.LogDirs)
	assert.EqualValues(t, 8, cfg.NumPartitions, "overrides win over the file")
	assert.EqualValues(t, 1000, cfg.LogRetentionMs, "ms beats hours")

	cfg, err = loadBrokerConfig("", nil, logger)
	require.NoError(t, err)
	assert.Equal(t, "PLAINTEXT://127.0.0.1:9092", cfg.Listeners)
	assert.Equal(t, []string{"./tributary-data"}, cfg.LogDirs)

	_, err = loadBrokerConfig("", []string{"num.partitions"}, logger)
	assert.Error(t, err)
	_, err = loadBrokerConfig("", []string{"num.partitions=zero"}, logger)
	assert.Error(t, err)
	_, err = loadBrokerConfig(filepath.Join(t.TempDir(), "missing"), nil, logger)
	assert.Error(t, err)
}
