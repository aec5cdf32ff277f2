//go:build !unix

package consumer

import "time"

// processCPU is not measured here; the benchmark's cpu-ns/record is 0.
func processCPU() time.Duration { return 0 }
