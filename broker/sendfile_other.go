//go:build !linux

package broker

import (
	"net"

	"github.com/tributary/tributary/broker/storage"
)

// sendFile is the zero-copy path; off Linux the caller copies with pread.
func sendFile(net.Conn, storage.FileSlice) (bool, error) { return false, nil }
