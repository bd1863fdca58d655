//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package client

import (
	"net"
	"syscall"
)

// connAlive reports whether an idle connection is still open and has nothing unread, by peeking
// without blocking: EOF means the tracker closed it, data means an unsolicited line arrived.
func connAlive(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK
		return true
	})
	return err == nil && alive
}
