package broker

import (
	"net"
	"syscall"

	"github.com/tributary/tributary/broker/storage"
)

// maxSendfileChunk bounds one sendfile(2) call; Linux moves at most
// 0x7ffff000 bytes per call anyway.
const maxSendfileChunk = 1 << 30

// sendFile writes s to conn with sendfile(2). It reports false, and
// writes nothing, when conn has no file descriptor to send to (TLS, an
// in-memory pipe); the caller then copies.
//
// The file offset is passed explicitly, so concurrent fetches of one
// segment never share the *os.File's seek position. The file is held
// through its RawConn for the duration, so a concurrent Close cannot
// recycle the descriptor under us. EAGAIN hands control back to the
// runtime poller, which waits for the socket (and honours its write
// deadline) before calling again.
func sendFile(conn net.Conn, s storage.FileSlice) (bool, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false, nil
	}
	out, err := sc.SyscallConn()
	if err != nil {
		return false, nil
	}
	in, err := s.File.SyscallConn()
	if err != nil {
		return false, nil
	}
	off, remain := s.Pos, s.Len
	var serr error
	cerr := in.Control(func(infd uintptr) {
		werr := out.Write(func(outfd uintptr) bool {
			for remain > 0 {
				n, err := syscall.Sendfile(int(outfd), int(infd), &off, int(min(remain, maxSendfileChunk)))
				if n > 0 {
					remain -= int64(n)
				}
				switch {
				case err == syscall.EAGAIN:
					return false
				case err == syscall.EINTR:
				case err != nil:
					serr = err
					return true
				case n == 0:
					serr = errShortSlice
					return true
				}
			}
			return true
		})
		if serr == nil {
			serr = werr
		}
	})
	if serr == nil {
		serr = cerr
	}
	if (serr == syscall.EINVAL || serr == syscall.ENOSYS) && remain == s.Len {
		return false, nil // this pair of descriptors cannot sendfile; copy instead
	}
	return true, serr
}
