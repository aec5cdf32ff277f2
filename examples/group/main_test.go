package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestHonoursTributaryBrokers: -brokers defaults to TRIBUTARY_BROKERS, as
// in the tributary CLI.
func TestHonoursTributaryBrokers(t *testing.T) {
	t.Setenv("TRIBUTARY_BROKERS", "")
	assert.Equal(t, "127.0.0.1:9092", defaultBrokers())
	t.Setenv("TRIBUTARY_BROKERS", "10.0.0.1:9092,10.0.0.2:9092")
	assert.Equal(t, "10.0.0.1:9092,10.0.0.2:9092", defaultBrokers())
}
