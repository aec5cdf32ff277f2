//go:build !unix

package pbench

import "time"

func processCPU() time.Duration { return 0 }
