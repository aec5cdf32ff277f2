//go:build !unix

package broker

func lockDir(b *Broker) error { return nil }

func unlockDir(b *Broker) {}
