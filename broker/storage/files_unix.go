//go:build unix

package storage

import "syscall"

// defaultOpenFiles is half the soft descriptor limit (at least 8).
func defaultOpenFiles() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 {
		return 4096
	}
	return int(max(min(rl.Cur/2, 1<<20), 8))
}
