//go:build linux

package netx

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// RawTCP is a TCP connection whose Read and Write issue read(2) and write(2) as raw system calls.
// The socket is non-blocking (the net package made it so), so neither call can block: when it would,
// the connection waits in the runtime's poller as a *net.TCPConn does. What a raw call saves is the
// scheduler's bookkeeping around a system call that may block (entersyscall/exitsyscall) and, on a
// busy core, sysmon handing the goroutine's P to another thread while a loopback write delivers its
// bytes. Everything else (deadlines, Close, ReadFrom with sendfile, CloseWrite, SyscallConn) is the
// wrapped *net.TCPConn's. Concurrent Reads (and Writes) wait for each other, as on a *net.TCPConn.
type RawTCP struct {
	*net.TCPConn
	rc syscall.RawConn

	rmu   sync.Mutex // held by a Read: guards rbuf, rn and rerr
	wmu   sync.Mutex // held by a Write: guards wbuf, wn and werr
	rbuf  []byte
	rn    int
	rerr  syscall.Errno
	wbuf  []byte
	wn    int
	werr  syscall.Errno
	readF func(fd uintptr) bool // c.read, bound once so that a Read allocates nothing
	wrF   func(fd uintptr) bool // c.write, likewise
}

// Raw returns c with raw-call Read and Write when c is a *net.TCPConn, and c itself otherwise.
func Raw(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	r := &RawTCP{TCPConn: tc, rc: rc}
	r.readF, r.wrF = r.read, r.write
	return r
}

func (c *RawTCP) read(fd uintptr) bool {
	for {
		n, e := sysRead(fd, c.rbuf)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		c.rn, c.rerr = n, e
		return true
	}
}

func (c *RawTCP) write(fd uintptr) bool {
	for c.wn < len(c.wbuf) {
		n, e := sysWrite(fd, c.wbuf[c.wn:])
		switch e {
		case 0:
			c.wn += n
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			c.werr = e
			return true
		}
	}
	return true
}

// Read reads into p as (*net.TCPConn).Read does.
func (c *RawTCP) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.rbuf, c.rn, c.rerr = p, 0, 0
	err := c.rc.Read(c.readF)
	c.rbuf = nil
	switch {
	case err != nil:
		return 0, err
	case c.rerr != 0:
		return 0, c.opError("read", c.rerr)
	case c.rn == 0:
		return 0, io.EOF
	}
	return c.rn, nil
}

// Write writes all of p as (*net.TCPConn).Write does.
func (c *RawTCP) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf, c.wn, c.werr = p, 0, 0
	err := c.rc.Write(c.wrF)
	n := c.wn
	c.wbuf = nil
	switch {
	case err != nil:
		return n, err
	case c.werr != 0:
		return n, c.opError("write", c.werr)
	}
	return n, nil
}

func (c *RawTCP) opError(op string, e syscall.Errno) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError(op, e)}
}

// NetConn returns the wrapped *net.TCPConn.
func (c *RawTCP) NetConn() net.Conn { return c.TCPConn }
