//go:build unix

package broker

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDir takes an exclusive flock on <dir>/.lock, as Kafka does, so a
// second broker on the same directory fails to start instead of
// corrupting the logs. The lock dies with the process, so kill -9 leaves
// nothing to clean.
func lockDir(b *Broker) error {
	f, err := os.OpenFile(filepath.Join(b.dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("broker: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("broker: log dir %s is in use by another broker: %w", b.dir, err)
	}
	b.lockFile = f
	return nil
}

func unlockDir(b *Broker) {
	if b.lockFile != nil {
		b.lockFile.Close() // closing releases the flock
		b.lockFile = nil
	}
}
