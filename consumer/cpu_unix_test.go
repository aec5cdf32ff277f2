//go:build unix

package consumer

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user and system) the test process has used
// so far. The consume benchmark reports CPU per record besides records/s
// because wall time on a shared machine is too noisy to compare runs.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
