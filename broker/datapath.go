package broker

// dataPath holds the state of the produce/fetch path (producer id
// allocation, fetch waiters). Owned by the data-path files.
type dataPath struct{}

// initDataPath is called by New after the topics are loaded.
func (b *Broker) initDataPath() error { return nil }

// closeDataPath is called by Close after the listener stops and before
// the logs are closed.
func (b *Broker) closeDataPath() {}
