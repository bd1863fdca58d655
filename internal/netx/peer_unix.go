//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package netx

import (
	"errors"
	"net"
	"syscall"
)

// PeerClosed reports, without blocking and without consuming a byte, why an idle connection can no
// longer carry a request: ErrPeerEOF when the peer closed it, ErrUnsolicited when it sent bytes
// nobody asked for, or the socket's error (a reset). It returns nil for a connection that looks
// usable (nothing to read yet) and for one it cannot inspect (not backed by a socket). Call it only
// on a connection no other goroutine is reading.
func PeerClosed(c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
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
			probe = ErrPeerEOF
		default:
			probe = ErrUnsolicited
		}
		return true // never wait for readiness: this is a poll, not a read
	})
	if err != nil {
		return err
	}
	return probe
}
