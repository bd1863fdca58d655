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
	wrRdF func(fd uintptr) bool // c.writeRead, likewise
	wdone func(int)             // WriteReadHook's written, until called

	// With rmu held, by WriteReadHook: writing while its write part runs (wmu held too), and wres
	// the write's error once it ended.
	writing bool
	wres    syscall.Errno
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
	r.readF, r.wrF, r.wrRdF = r.read, r.write, r.writeRead
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

// writeRead writes what is left of wbuf and then reads into rbuf. Right after the write it reports
// that it is not done, so that the poller waits for the socket to become readable instead of a read
// that finds nothing. When the socket takes only part of wbuf it stops (WriteReadHook finishes the
// write and the read as Write and Read do).
func (c *RawTCP) writeRead(fd uintptr) bool {
	if c.writing {
		if !c.write(fd) || c.werr != 0 {
			return true
		}
		c.endWrite()
		return false
	}
	return c.read(fd)
}

// endWrite ends the write part of a WriteReadHook, once: it lets other writers go on (the wait for
// the answer holds only the read side) and calls the hook. It returns the write's error.
func (c *RawTCP) endWrite() syscall.Errno {
	if !c.writing {
		return c.wres
	}
	c.writing, c.wres = false, c.werr
	n, hook := c.wn, c.wdone
	c.wbuf, c.wdone = nil, nil
	c.wmu.Unlock()
	if hook != nil {
		hook(n)
	}
	return c.wres
}

// WriteRead writes all of w and then reads into p, as Write followed by Read do, with one system
// call fewer when w is a request whose answer cannot have come yet: after writing w it waits in the
// runtime's poller for the socket to become readable, without first reading it (a Go connection's
// Read tries the read, gets EAGAIN and only then waits). No wake-up is lost: the poller's readiness
// is reset before w is written, and any byte that comes after that wakes the wait. w is written
// under the read deadline; the write deadline bounds it only when the socket cannot take all of it
// at once. A failed write is returned as Write's error, with nothing read. Other goroutines may
// write while it waits for the answer.
func (c *RawTCP) WriteRead(w, p []byte) (int, error) { return c.WriteReadHook(w, p, nil) }

// WriteReadHook is WriteRead calling written (when not nil) once, from the calling goroutine, as
// soon as w is written or its write failed, before the wait for the answer, with the count of
// bytes of w written: 0 when nothing was (the deadline had passed or the connection was closed).
func (c *RawTCP) WriteReadHook(w, p []byte, written func(n int)) (int, error) {
	if len(w) == 0 || len(p) == 0 {
		var n int
		var err error
		if len(w) > 0 {
			n, err = c.Write(w)
		}
		if written != nil {
			written(n)
		}
		if err != nil || len(p) == 0 {
			return 0, err
		}
		return c.Read(p)
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.wmu.Lock()
	c.wbuf, c.wn, c.werr, c.wdone, c.writing = w, 0, 0, written, true
	c.rbuf, c.rn, c.rerr = p, 0, 0
	err := c.rc.Read(c.wrRdF)
	partial := err == nil && c.writing && c.werr == 0
	if partial {
		// The socket's buffer was full: finish the write under the write deadline.
		err = c.rc.Write(c.wrF)
	}
	werr := c.endWrite()
	if partial && err == nil && werr == 0 {
		err = c.rc.Read(c.readF)
	}
	if err == nil && werr != 0 {
		c.rbuf = nil
		return 0, c.opError("write", werr)
	}
	return c.readResult(err)
}

// Read reads into p as (*net.TCPConn).Read does.
func (c *RawTCP) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.rbuf, c.rn, c.rerr = p, 0, 0
	return c.readResult(c.rc.Read(c.readF))
}

// readResult ends a read into rbuf whose poller wait returned err. c.rmu is held.
func (c *RawTCP) readResult(err error) (int, error) {
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
