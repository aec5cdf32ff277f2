//go:build !unix

package storage

func defaultOpenFiles() int { return 4096 }
