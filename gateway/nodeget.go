package gateway

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http/httputil"
	"time"

	"github.com/valyala/fasthttp"
)

// A GET or HEAD to a node is the gateway's hot path, so it is not sent through fasthttp's
// HostClient.Do, which builds and parses a Request (its URI too) for each one and, holding the
// connection until it returns, cannot hand a slow answer to another goroutine. node.get writes the
// request line and headers itself on a connection of the node's HostClient pool (connPool) and reads
// the answer with fasthttp's ResponseHeader. Uploads still go through HostClient.Do.

// connPool is a node's pool of connections: those of its HostClient (see hostConns).
type connPool interface {
	// get returns a connection and its handle for put, dialling one if none is idle, waiting at most
	// wait for one when the node has its most connections (fasthttp.ErrNoFreeConns).
	get(wait time.Duration) (net.Conn, any, error)
	// put gives a connection back to the pool, or closes it when !reuse.
	put(h any, reuse bool)
}

// hostConns is a HostClient's pool through its AcquireConn, ReleaseConn and CloseConn methods, whose
// connection type fasthttp does not export: C is inferred from them (see newHostConns).
type hostConns[C interface{ Conn() net.Conn }] struct {
	acquire        func(time.Duration, bool) (C, error)
	release, close func(C)
}

func newHostConns[C interface{ Conn() net.Conn }](acquire func(time.Duration, bool) (C, error), release, close func(C)) connPool {
	return &hostConns[C]{acquire: acquire, release: release, close: close}
}

func (p *hostConns[C]) get(wait time.Duration) (net.Conn, any, error) {
	cc, err := p.acquire(wait, false)
	if err != nil {
		return nil, nil, err
	}
	return cc.Conn(), cc, nil
}

func (p *hostConns[C]) put(h any, reuse bool) {
	if reuse {
		p.release(h.(C))
	} else {
		p.close(h.(C))
	}
}

// maxGetAttempts is how often get sends a request when connections turn out closed by the node
// (fasthttp's DefaultMaxIdemponentCallAttempts, which HostClient.Do applies).
const maxGetAttempts = 5

// getRequest is a GET or HEAD to send to a node (see node.get).
type getRequest struct {
	uri  string
	head bool
	ph   passHeaders
	// timeout bounds the wait for the first byte of the answer, connecting included.
	timeout time.Duration
	// early, when set and before the timeout, is when get stops waiting for an answer not begun
	// (see node.get).
	early time.Time
	// stall, when set, bounds each wait for more of an answer begun (its head, and a body read
	// whole) instead of the idle time: another copy could serve it.
	stall time.Duration
	// now is the time the request starts, when the caller has it (one clock read fewer).
	now time.Time
}

// get sends rq to n and reads the answer's head into resp; a body of up to maxBufferedBody with a
// Content-Length is read whole into resp (and the connection goes back to the pool at once), a
// longer one streams from resp.BodyStream (a nodeBody). A request found sent on a connection the
// node had closed is sent again (node.retryStale).
//
// When rq.early comes before the timeout, the answer is waited for only until then: if not one byte
// of it came by early, get returns a *slowGet, which waits for the rest of the timeout when resumed
// (see slowGet.resume). The racer runs a hedged read's attempt that way on the request's goroutine,
// and gives it a goroutine of its own only when it is slow.
func (n *node) get(rq *getRequest, resp *fasthttp.Response) error {
	n.getting.Add(1)
	defer n.getting.Add(-1)
	now := rq.now
	if now.IsZero() {
		now = time.Now()
	}
	deadline := now.Add(rq.timeout)
	early := rq.early
	if !early.IsZero() && !early.Before(deadline) {
		early = time.Time{}
	}
	for attempts := 1; ; attempts++ {
		retry, err := n.getOnce(rq, now, deadline, early, resp)
		if err == nil || !retry || attempts >= maxGetAttempts || !n.retryStale(attempts, err) {
			if err == io.EOF {
				err = fasthttp.ErrConnectionClosed
			}
			return err
		}
		if now = time.Now(); !now.Before(deadline) {
			return fasthttp.ErrTimeout
		}
	}
}

// getOnce is one try of get on one connection; retry reports whether the request may be sent again
// (as fasthttp's transport reports it: the connection failed, not the answer's size).
func (n *node) getOnce(rq *getRequest, now, deadline, early time.Time, resp *fasthttp.Response) (retry bool, err error) {
	wait := deadline.Sub(now)
	if !early.IsZero() {
		// Connecting (or waiting for a free connection) ends by early too: the request then
		// starts over in a goroutine of the caller's (errEarlyConnect) while it hedges.
		if wait = early.Sub(now); wait <= 0 {
			return false, errEarlyConnect
		}
	}
	conn, h, err := n.conns.get(wait)
	if err != nil {
		if !early.IsZero() && isTimeout(err) {
			return false, errEarlyConnect
		}
		return false, err
	}
	ic := conn.(*idleConn)
	if err := ic.startRequest(now, deadline); err != nil {
		n.conns.put(h, false)
		return true, err
	}
	ic.req = appendGet(ic.req[:0], rq.uri, n.addr, n.name, rq.head, rq.ph)
	if _, err := ic.Write(ic.req); err != nil {
		n.conns.put(h, false)
		if isTimeout(err) {
			err = fasthttp.ErrTimeout
		}
		return true, err
	}
	rd := deadline
	if !early.IsZero() {
		rd = early
	}
	if err := ic.firstByteDeadline(now, rd); err != nil {
		n.conns.put(h, false)
		return true, err
	}
	br := n.hc.AcquireReader(ic)
	sg := slowGet{n: n, conn: ic, h: h, br: br, head: rq.head, stall: rq.stall, deadline: deadline, resp: resp}
	err = sg.readAnswer(rd != deadline)
	if err == errEarly {
		// Not a byte by early: the caller may hedge, and resume the wait for this answer.
		slow := new(slowGet)
		*slow = sg
		return false, slow
	}
	return err != nil && err != fasthttp.ErrBodyTooLarge, err
}

// errEarly is readAnswer's report that not a byte of the answer came by the early deadline.
var errEarly = errors.New("gateway: no answer by the early deadline")

// errEarlyConnect is get's report that no connection to the node was ready by the early deadline
// (connecting took longer, or the node had its most connections busy): nothing was sent, and the
// request may be sent again without an early deadline. It is no failure of the node.
var errEarlyConnect = errors.New("gateway: no connection to the storage node by the early deadline")

// slowGet is a GET whose answer had not begun by its early deadline (see node.get). Its connection
// is held until resume returns.
type slowGet struct {
	n        *node
	conn     *idleConn
	h        any
	br       *bufio.Reader
	head     bool
	stall    time.Duration
	deadline time.Time
	resp     *fasthttp.Response
}

func (sg *slowGet) Error() string { return "gateway: no answer from the storage node yet" }

// resume waits for the answer until the GET's timeout and reads it into the response get was
// given, as get would have.
func (sg *slowGet) resume() error {
	sg.n.getting.Add(1)
	defer sg.n.getting.Add(-1)
	if err := sg.conn.SetReadDeadline(sg.deadline); err != nil {
		sg.n.hc.ReleaseReader(sg.br)
		sg.n.conns.put(sg.h, false)
		return err
	}
	err := sg.readAnswer(false)
	if err == io.EOF {
		err = fasthttp.ErrConnectionClosed
	}
	return err
}

// readAnswer reads an answer's head and its body (whole, or as a nodeBody to stream), and gives
// the connection back (or closes it) unless the body streams. When the read deadline is an early
// one and it passed before a byte came, it returns errEarly and keeps the connection and reader for
// resume (or drop).
func (sg *slowGet) readAnswer(early bool) error {
	n, resp, br := sg.n, sg.resp, sg.br
	resp.Reset()
	sg.conn.setStall(sg.stall)
	defer sg.conn.setStall(0)
	err := resp.Header.Read(br)
	if err == nil && resp.StatusCode() == fasthttp.StatusContinue {
		err = resp.Header.Read(br)
	}
	if err != nil {
		if early && isTimeout(err) && !sg.conn.gotByte {
			return errEarly
		}
		n.hc.ReleaseReader(br)
		n.conns.put(sg.h, false)
		return err
	}
	status := resp.StatusCode()
	if sg.head || status < 200 || status == fasthttp.StatusNoContent || status == fasthttp.StatusNotModified {
		resp.SkipBody = sg.head
		n.hc.ReleaseReader(br)
		// An informational answer other than 100 (say 103) has its final answer still to come on
		// the connection, which therefore serves no other request.
		n.conns.put(sg.h, status >= 200 && !resp.ConnectionClose())
		return nil
	}
	cl := resp.Header.ContentLength()
	if cl >= 0 && cl <= maxBufferedBody {
		err := resp.ReadBody(br, maxBufferedBody)
		n.hc.ReleaseReader(br)
		n.conns.put(sg.h, err == nil && !resp.ConnectionClose())
		return err
	}
	b := &nodeBody{n: n, conn: sg.conn, h: sg.h, br: br, left: int64(cl), r: br}
	switch {
	case cl >= 0:
		b.reuse = !resp.ConnectionClose()
	case cl == -1:
		// Chunked: decoded here; the connection is not reused (trailers are not read).
		b.r = httputil.NewChunkedReader(br)
	}
	resp.SetBodyStream(b, cl)
	return nil
}

// nodeBody is the body of a node's answer as it streams from the connection. Closing it gives the
// connection back to the pool when the body was read to its end and the answer allowed reuse, and
// closes it otherwise (a connection with unread body bytes would garble the next answer).
type nodeBody struct {
	n     *node
	conn  *idleConn
	h     any
	br    *bufio.Reader
	r     io.Reader
	left  int64 // bytes of a Content-Length body not read yet; negative for other framings
	reuse bool
	done  bool
}

func (b *nodeBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	if b.left >= 0 {
		if b.left == 0 {
			return 0, io.EOF
		}
		if int64(len(p)) > b.left {
			p = p[:b.left]
		}
	}
	n, err := b.r.Read(p)
	if b.left >= 0 {
		b.left -= int64(n)
		if err == io.EOF && b.left > 0 {
			err = io.ErrUnexpectedEOF
		}
		if err == nil && b.left == 0 {
			err = io.EOF
		}
	}
	return n, err
}

// CloseWithError ends the body (fasthttp calls it when the response is released; there is no
// Close, which fasthttp would call as well).
func (b *nodeBody) CloseWithError(err error) error {
	if b.done {
		return nil
	}
	b.done = true
	b.n.hc.ReleaseReader(b.br)
	b.n.conns.put(b.h, b.reuse && b.left == 0 && err == nil)
	return nil
}

// appendGet appends a GET (or HEAD) request for uri to dst, with the headers fasthttp's HostClient
// sent for it (Host, User-Agent) and ph's.
func appendGet(dst []byte, uri, host, agent string, head bool, ph passHeaders) []byte {
	if head {
		dst = append(dst, "HEAD "...)
	} else {
		dst = append(dst, "GET "...)
	}
	dst = append(dst, uri...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	if agent != "" {
		dst = append(dst, "\r\nUser-Agent: "...)
		dst = append(dst, agent...)
	}
	dst = appendHeader(dst, "Range", ph.rangeHdr)
	dst = appendHeader(dst, "If-None-Match", ph.inm)
	dst = appendHeader(dst, "If-Modified-Since", ph.ims)
	return append(dst, "\r\n\r\n"...)
}

func appendHeader(dst []byte, name, value string) []byte {
	if value == "" {
		return dst
	}
	dst = append(dst, "\r\n"...)
	dst = append(dst, name...)
	dst = append(dst, ": "...)
	return append(dst, value...)
}
