package gateway

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/mogway/mogway/internal/netx"
)

// idleListener wraps accepted connections so that reads and writes wait at most an idle time for
// progress (see idleConn): a response body of any size may take as long as it needs while the client
// keeps reading, and an upload as long as the client keeps sending.
type idleListener struct {
	net.Listener
	read, write time.Duration
}

func (l *idleListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &serverConn{Conn: c, read: l.read, write: l.write}, nil
}

// serverConn extends the deadlines fasthttp sets by an idle time on each write, and on each read
// while an upload body streams (streaming set by the handler). Request heads and keep-alive waits keep
// fasthttp's own ReadTimeout and IdleTimeout. fasthttp uses a connection from one goroutine at a time.
type serverConn struct {
	net.Conn
	read, write time.Duration
	rd, wd      time.Time // deadlines fasthttp asked for
	ra, wa      time.Time // deadlines set on the connection now
	streaming   bool
	linger      int64 // request body bytes left unread, discarded before closing (see Close)
}

func (c *serverConn) SetDeadline(t time.Time) error {
	c.rd, c.wd, c.ra, c.wa = t, t, t, t
	return c.Conn.SetDeadline(t)
}

// SetReadDeadline records t; Read arms it before the next read. fasthttp sets two read deadlines
// per request, the keep-alive wait's and then the request head's, and the second is never armed when
// the whole head came with the first read: one runtime timer update per request instead of two.
func (c *serverConn) SetReadDeadline(t time.Time) error {
	c.rd = t
	return nil
}

func (c *serverConn) SetWriteDeadline(t time.Time) error {
	c.wd, c.wa = t, t
	return c.Conn.SetWriteDeadline(t)
}

func (c *serverConn) Read(p []byte) (int, error) {
	if c.streaming && c.read > 0 {
		if d, ok := extend(c.ra, c.rd, time.Now(), c.read); !ok {
			if err := c.Conn.SetReadDeadline(d); err != nil {
				return 0, err
			}
			c.ra = d
		}
	} else if !c.ra.Equal(c.rd) {
		if err := c.Conn.SetReadDeadline(c.rd); err != nil {
			return 0, err
		}
		c.ra = c.rd
	}
	return c.Conn.Read(p)
}

// Write bounds each write by the idle time. Responses on a kept-alive connection mostly reuse the
// deadline of the one before (see idleSlack), so a small answer costs no timer update.
func (c *serverConn) Write(p []byte) (int, error) {
	if err := c.armWrite(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// armWrite arms the write deadline the next write needs: the idle time from now, or fasthttp's
// deadline when that is later, unless the one armed still serves (see extend).
func (c *serverConn) armWrite() error {
	if c.write <= 0 {
		return nil
	}
	if d, ok := extend(c.wa, c.wd, time.Now(), c.write); !ok {
		if err := c.Conn.SetWriteDeadline(d); err != nil {
			return err
		}
		c.wa = d
	}
	return nil
}

// ReadFrom sends a section of a file (an *io.LimitedReader, as the cache's disk tier hands it)
// through the wrapped connection's ReadFrom, which a TCP connection serves with sendfile(2), in
// pieces of at most readFromPiece, each with its write deadline extended as Write extends it; any
// other reader is copied through Write.
func (c *serverConn) ReadFrom(r io.Reader) (int64, error) {
	rf, ok := c.Conn.(io.ReaderFrom)
	lr, isSection := r.(*io.LimitedReader)
	if !ok || !isSection {
		return io.Copy(struct{ io.Writer }{c}, r)
	}
	var sent int64
	for lr.N > 0 {
		if err := c.armWrite(); err != nil {
			return sent, err
		}
		piece := io.LimitedReader{R: lr.R, N: min(lr.N, readFromPiece)}
		want := piece.N
		n, err := rf.ReadFrom(&piece)
		sent += n
		lr.N -= n
		if err != nil || n < want {
			return sent, err
		}
	}
	return sent, nil
}

// readFromPiece is the most bytes one ReadFrom of serverConn hands on at once. The write deadline
// bounds each piece, and a piece is what one Write of fasthttp's buffer sends: a slow client is
// cut no sooner than by writes.
const readFromPiece = writeBufferSize

// NetConn returns the connection c wraps (for httpconn.Tracker.ConnState).
func (c *serverConn) NetConn() net.Conn { return c.Conn }

// lingerTime bounds how long a connection closed after a refused or failed upload keeps
// discarding the body the client still sends (nginx's lingering_close, lingering_time 30s, bounded
// here much tighter so that a graceful stop is not held up).
const lingerTime = 5 * time.Second

// Close closes the connection. After an upload whose body was left unread (see lingerBody) it first
// stops sending and discards what the client still sends, until the rest of the body, the client's
// close, or lingerTime: closing a socket with unread data would send a reset, and the client, still
// writing, could lose the answer already sent.
func (c *serverConn) Close() error {
	if c.linger > 0 {
		if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil &&
			c.Conn.SetReadDeadline(time.Now().Add(lingerTime)) == nil {
			io.CopyN(io.Discard, c.Conn, c.linger)
		}
		c.linger = 0
	}
	return c.Conn.Close()
}

// idleDialer connects within connect (or within the timeout fasthttp passes, when shorter: a hedged
// read's early deadline, see node.get) and wraps the connection so that every read and write may wait
// at most idle for progress (see idleConn). It counts dials, and connections found stale on their
// first read (see idleConn.staleReads).
func idleDialer(connect, idle time.Duration, dials, staleReads *atomic.Int64) fasthttp.DialFuncWithTimeout {
	return func(addr string, timeout time.Duration) (net.Conn, error) {
		dials.Add(1)
		if timeout <= 0 || timeout > connect {
			timeout = connect
		}
		c, err := net.DialTimeout("tcp", addr, timeout)
		if err != nil {
			return nil, &dialError{err}
		}
		c = netx.Raw(c)
		ic := &idleConn{Conn: c, idle: idle, staleReads: staleReads, rq: netx.NewRequest(c)}
		ic.local = connAddr{Addr: c.LocalAddr(), c: ic} // boxed once: fasthttp asks for it per request
		return ic, nil
	}
}

// connAddr is an idleConn's local address. fasthttp hands a response the local address of the
// connection it is sent on (Response.LocalAddr); through it an upload finds the connection to bound
// its waits (see uploadStream).
type connAddr struct {
	net.Addr
	c *idleConn
}

// LocalAddr returns the local address, which also leads back to c (see connAddr).
func (c *idleConn) LocalAddr() net.Addr { return c.local }

// streamingConn returns the connection whose body resp streams, or nil when its body was read whole
// (the connection may then serve another request already) or came from elsewhere.
func streamingConn(resp *fasthttp.Response) *idleConn {
	if b, ok := resp.BodyStream().(*nodeBody); ok {
		return b.conn
	}
	return nil
}

// setStall bounds each wait for more bytes by d instead of the idle time, until set back to 0. Only
// the goroutine reading the connection's body may call it.
func (c *idleConn) setStall(d time.Duration) { c.stall = d }

// boundUpload bounds the waits of the upload being written on c: each wait for the node to take
// more of the body by stall (when shorter than the idle time), and the wait for the first byte of
// its answer by answer. They hold until fasthttp starts the next request on c (SetWriteDeadline).
// Only the goroutine writing the request may call it (see uploadStream).
func (c *idleConn) boundUpload(stall, answer time.Duration) { c.putStall, c.putAnswer = stall, answer }

// dialError marks a failure to connect: the request never reached the node.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// idleConn turns fasthttp's per-request deadlines into "first byte, then idle". fasthttp sets one
// read deadline before it reads a response and keeps it while a streamed body is read, which would cut
// any body that takes longer than the header timeout. Here the deadline fasthttp set bounds the wait
// for the first byte of the response; once a byte came, every later wait (the rest of the headers and
// the body) is bounded by idle instead. Writes wait at most idle for progress, or fasthttp's deadline
// when that is later. With no deadline from fasthttp (uploads), idle bounds every wait. fasthttp uses a
// connection from one goroutine at a time.
type idleConn struct {
	net.Conn
	idle    time.Duration
	rd, wd  time.Time     // deadlines fasthttp asked for
	ra, wa  time.Time     // deadlines set on the connection now
	gotByte bool          // a byte was read since fasthttp last set the read deadline
	used    bool          // a byte was ever read: the connection has been idle in the pool
	stall   time.Duration // when set, bounds waits for body bytes instead of idle (setStall)
	local   net.Addr      // a connAddr
	// capped keeps every wait within the read deadline set (rd), after the first byte too: a hedged
	// read's early deadline bounds the whole answer it waits for (see node.get).
	capped bool

	// lastReq is when the last request on the connection started; unchecked is set when the
	// request being sent skipped the liveness check (see SetWriteDeadline).
	lastReq   time.Time
	unchecked bool
	// staleReads counts, for the node, requests whose unchecked connection was found closed by
	// the node on the first read of the answer (see node.retryStale).
	staleReads *atomic.Int64
	// When set, for the request being written (boundUpload): putStall bounds each wait for the
	// node to take more of an upload body, putAnswer the wait for the first byte of its answer.
	putStall, putAnswer time.Duration

	// rq, when the connection offers it (netx.WriteReader), writes a request node.get holds with
	// the first read of its answer, with one system call fewer; nil on connections not dialled by
	// idleDialer. req is where node.get builds that request (see appendGet).
	rq  *netx.Request
	req []byte
}

// errStaleConn is a pooled keep-alive connection found closed by the node before a request was
// written on it (typically the node restarted). Nothing of the request, body included, was sent or
// read, so it may be sent again on another connection.
var errStaleConn = errors.New("gateway: storage node closed the idle connection")

func (c *idleConn) SetDeadline(t time.Time) error {
	c.rd, c.wd, c.ra, c.wa, c.gotByte, c.capped = t, t, t, t, false, false
	return c.Conn.SetDeadline(t)
}

func (c *idleConn) SetReadDeadline(t time.Time) error {
	c.rd, c.ra, c.gotByte, c.capped = t, t, false, false
	return c.Conn.SetReadDeadline(t)
}

// firstByteDeadline is SetReadDeadline(t) for the wait for an answer to a request sent at now, armed
// late by up to 1/idleSlack of that wait: the deadline armed for an earlier request still serves
// when it lies between t and that, and a new one is armed as late as allowed, so that the requests
// that follow soon keep it. Arming a deadline is a runtime timer update per request otherwise.
func (c *idleConn) firstByteDeadline(now, t time.Time) error {
	c.gotByte, c.capped = false, false
	latest := t.Add(t.Sub(now) / idleSlack)
	if !c.ra.Before(t) && !c.ra.After(latest) {
		c.rd = c.ra
		return nil
	}
	c.rd, c.ra = latest, latest
	return c.Conn.SetReadDeadline(latest)
}

// SetWriteDeadline is the first thing fasthttp does with a connection for each request, before it
// writes the request or reads a byte of its body. On a connection that was idle in the pool it checks,
// without blocking, that the node has not closed it: a streamed body cannot be sent again once read, so
// an upload (the one request fasthttp sends with no deadline) must not start on a dead connection. The
// error (errStaleConn) makes fasthttp close the connection and return it before the request was
// written. A request without a body on a connection used less than peekIdle ago skips the check,
// which costs a system call and finds a live connection nearly always: if the node did close it (it
// restarted), the first read of the answer finds that out (see Read), and the request, which nothing
// of the node has seen, is sent again on another connection (node.retryStale).
func (c *idleConn) SetWriteDeadline(t time.Time) error { return c.startRequest(time.Now(), t) }

// startRequest is SetWriteDeadline(t) at now.
func (c *idleConn) startRequest(now, t time.Time) error {
	c.unchecked = false
	if c.used {
		if t.IsZero() || now.Sub(c.lastReq) >= peekIdle {
			if err := netx.PeerClosed(c.Conn); err != nil {
				return fmt.Errorf("%w: %w", errStaleConn, err)
			}
		} else {
			c.unchecked = true
		}
	}
	c.lastReq = now
	c.wd = t
	c.putStall, c.putAnswer = 0, 0
	if c.idle > 0 {
		// Write arms the deadline each write needs (the later of t and the idle bound), and keeps
		// the one armed for the last request when it still does the job: arming t here would cost
		// a runtime timer update that the request's first write replaced at once.
		return nil
	}
	c.wa = t
	return c.Conn.SetWriteDeadline(t)
}

// peekIdle is how long a pooled connection may have been idle and still be used without a liveness
// check for a request without a body. Nodes close idle keep-alive connections after many seconds;
// a connection closed sooner belongs to a node that stopped, which the first read tells.
const peekIdle = time.Second

// idleSlack is how much of an idle time a deadline may have used up and still be kept. Moving a
// deadline costs a timer update; a busy connection would pay one per read and write. A kept deadline
// still bounds the wait by the idle time and allows at least idle - idle/idleSlack.
const idleSlack = 8

// extend returns the deadline that bounds the next wait by idle after now, or after floor when that
// is later, and whether the deadline armed already does the job: it lies between that deadline less
// the slack and the deadline itself.
func extend(armed, floor, now time.Time, idle time.Duration) (time.Time, bool) {
	want := now.Add(idle)
	lo := want.Add(-idle / idleSlack)
	if floor.After(want) {
		want = floor
	}
	if floor.After(lo) {
		lo = floor
	}
	return want, !armed.Before(lo) && !armed.After(want)
}

func (c *idleConn) Read(p []byte) (int, error) {
	if c.idle > 0 && (c.gotByte || c.rd.IsZero()) {
		idle := c.idle
		switch {
		case c.stall > 0 && c.gotByte:
			idle = min(idle, c.stall)
		case c.putAnswer > 0 && !c.gotByte:
			idle = c.putAnswer
		}
		if d, ok := extend(c.ra, time.Time{}, time.Now(), idle); !ok && !(c.capped && c.ra.Equal(c.rd)) {
			if c.capped && d.After(c.rd) {
				d = c.rd
			}
			if err := c.Conn.SetReadDeadline(d); err != nil {
				return 0, err
			}
			c.ra = d
		}
	}
	var n int
	var err error
	if c.rq != nil {
		n, err = c.rq.Read(p) // writes a held request first (see node.get)
	} else {
		n, err = c.Conn.Read(p)
	}
	if n > 0 {
		c.gotByte, c.used, c.unchecked = true, true, false
	} else if err != nil && c.unchecked && !c.gotByte {
		// The node closed the connection before this request came (EOF, or a reset or a broken
		// pipe for the request written after its close): nothing was answered. A timeout is no
		// such sign. The close is reported as the end of the stream it is, which node.retryStale
		// retries on another connection.
		c.unchecked = false
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			c.staleReads.Add(1)
			return 0, io.EOF
		}
	}
	return n, err
}

func (c *idleConn) Write(p []byte) (int, error) {
	if err := c.armWrite(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// armWrite arms the write deadline the next write needs: the later of fasthttp's and the idle bound.
func (c *idleConn) armWrite() error { return c.armWriteAt(time.Now()) }

// armWriteAt is armWrite at now.
func (c *idleConn) armWriteAt(now time.Time) error {
	if c.idle > 0 {
		idle := c.idle
		if c.putStall > 0 {
			idle = min(idle, c.putStall)
		}
		if d, ok := extend(c.wa, c.wd, now, idle); !ok {
			if err := c.Conn.SetWriteDeadline(d); err != nil {
				return err
			}
			c.wa = d
		}
	}
	return nil
}
