//go:build race

package main

// raceBuild makes TestMain build the binary under test with -race too,
// so `go test -race` checks the commands' own goroutines.
func init() { buildFlags = append(buildFlags, "-race") }
