//go:build linux

package gateway

import (
	"errors"
	"net"
	"syscall"
)

// peerClosed reports, without blocking, why an idle connection can no longer carry a request: the
// node closed or reset it, or sent bytes no request asked for. It returns nil for a connection that
// looks usable (nothing to read yet) or that it cannot inspect.
func peerClosed(c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	var probe error
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK) || errors.Is(rerr, syscall.EINTR):
			probe = nil
		case rerr != nil:
			probe = rerr
		case n == 0:
			probe = errPeerEOF
		default:
			probe = errUnsolicited
		}
		return true // never wait for readiness: this is a poll, not a read
	})
	if err != nil {
		return err
	}
	return probe
}

var (
	errPeerEOF     = errors.New("closed by the peer")
	errUnsolicited = errors.New("unsolicited bytes from the peer")
)
