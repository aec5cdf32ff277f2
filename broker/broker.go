package broker

import (
	"sync"
)

// Broker is a single-node Kafka-compatible broker. New validates the
// configuration without starting anything; Run serves until its context
// ends or Close is called.
type Broker struct {
	cfg  Config
	data dataPath // produce/fetch state, see datapath.go

	mu struct {
		sync.RWMutex
		topics map[string]*topic
	}
}

// clientConn is one client connection.
type clientConn struct{}
