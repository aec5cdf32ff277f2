//go:build unix

package pbench

import (
	"syscall"
	"time"
)

// processCPU is the user+system CPU time the process has used: unlike
// wall time, it does not depend on what else the machine is running.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
