package gateway

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http/httputil"
	"slices"
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
	// early, when set and before the timeout, is when get stops waiting for an answer not yet
	// whole (see node.get).
	early time.Time
	// now is the time the request starts, when the caller has it (one clock read fewer).
	now time.Time
}

// get sends rq to n and reads the answer's head into resp; a body of up to maxBufferedBody with a
// Content-Length is read whole into resp (and the connection goes back to the pool at once), a
// longer one streams from resp.BodyStream (a nodeBody). A request found sent on a connection the
// node had closed is sent again (node.retryStale).
//
// When rq.early comes before the timeout, the answer (its head, and a body read whole) is waited for
// only until then: when it is not whole by early, get returns a *slowGet, which goes on from where
// the read stopped when resumed (see slowGet.resume). The racer runs a hedged read's attempt that way
// on the request's goroutine, and gives it a goroutine of its own only when it is slow. Connecting,
// or waiting for a free connection, ends by early too (errEarlyConnect).
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
	ic.req = appendGet(ic.req[:0], rq.uri, n.addr, n.name, rq.head, rq.ph)
	rd := deadline
	if !early.IsZero() {
		rd = early
	}
	if err := ic.send(now, deadline, rd); err != nil {
		n.conns.put(h, false)
		return true, err
	}
	sg := slowGet{n: n, conn: ic, h: h, br: n.hc.AcquireReader(ic), head: rq.head, deadline: deadline, resp: resp}
	if !early.IsZero() {
		// The early deadline (as armed, see firstByteDeadline) bounds the whole answer read.
		sg.early, ic.capped = ic.rd, true
	}
	resp.Reset()
	err = sg.readAnswer()
	if err == errEarly {
		// Not whole by early: the caller may hedge, and resume the read of this answer.
		slow := new(slowGet)
		*slow = sg
		return false, slow
	}
	return err != nil && err != fasthttp.ErrBodyTooLarge, err
}

// send starts the request in c.req at now, due to be answered by deadline: the liveness check of a
// pooled connection (startRequest), the request held for the first read of its answer (written at
// once when c cannot hold it) under a write deadline armed now, and rd as the read deadline of the
// answer's first byte. An error leaves c unusable.
func (c *idleConn) send(now, deadline, rd time.Time) error {
	if err := c.startRequest(now, deadline); err != nil {
		return err
	}
	if err := c.armWriteAt(now); err != nil {
		return err
	}
	if c.rq == nil || !c.rq.Hold(c.req) {
		if _, err := c.Conn.Write(c.req); err != nil {
			if isTimeout(err) {
				err = fasthttp.ErrTimeout
			}
			return err
		}
	}
	return c.firstByteDeadline(now, rd)
}

// errEarly is readAnswer's report that the answer was not whole by the early deadline.
var errEarly = errors.New("gateway: answer not whole by the early deadline")

// errEarlyConnect is get's report that no connection to the node was ready by the early deadline
// (connecting took longer, or the node had its most connections busy): nothing was sent, and the
// request may be sent again without an early deadline. It is no failure of the node.
var errEarlyConnect = errors.New("gateway: no connection to the storage node by the early deadline")

// slowGet is a GET whose answer was not whole by its early deadline (see node.get), or the state of
// the answer read of any GET. Its connection is held until the answer is read.
type slowGet struct {
	n        *node
	conn     *idleConn
	h        any
	br       *bufio.Reader
	head     bool
	early    time.Time // the early deadline, zero when none or once passed
	deadline time.Time // for the first byte
	resp     *fasthttp.Response
	gotHead  bool // resp has the answer's head; a body read whole is read into resp
}

func (sg *slowGet) Error() string { return "gateway: no whole answer from the storage node yet" }

// resume reads the rest of the answer into the response get was given, as get would have: the
// first byte by the GET's timeout, every later wait bounded by the idle time.
func (sg *slowGet) resume() error {
	sg.n.getting.Add(1)
	defer sg.n.getting.Add(-1)
	sg.early = time.Time{}
	sg.conn.capped = false
	if !sg.conn.gotByte {
		if err := sg.conn.SetReadDeadline(sg.deadline); err != nil {
			sg.release(false)
			return err
		}
	}
	err := sg.readAnswer()
	if err == io.EOF {
		err = fasthttp.ErrConnectionClosed
	}
	return err
}

// readAnswer reads an answer's head and its body (whole, or as a nodeBody to stream), and gives the
// connection back (or closes it) unless the body streams. When the early deadline passes first, it
// returns errEarly and keeps the connection, the reader and what was read for resume.
func (sg *slowGet) readAnswer() error {
	n, resp, br := sg.n, sg.resp, sg.br
	if !sg.gotHead {
		// The node's Content-Type as it was sent: without this, fasthttp reports
		// "text/plain; charset=utf-8" for an answer that has none, and content_type: upstream
		// passed that on to clients as if the node had said it (nginx sends none then).
		resp.Header.SetNoDefaultContentType(true)
		err := resp.Header.Read(br) // reads nothing from br until the head is whole
		if err == nil && resp.StatusCode() == fasthttp.StatusContinue {
			resp.Reset()
			resp.Header.SetNoDefaultContentType(true)
			err = resp.Header.Read(br)
		}
		if err != nil {
			return sg.failed(err)
		}
		sg.gotHead = true
	}
	status := resp.StatusCode()
	if sg.head || status < 200 || status == fasthttp.StatusNoContent || status == fasthttp.StatusNotModified {
		resp.SkipBody = sg.head
		// An informational answer other than 100 (say 103) has its final answer still to come on
		// the connection, which therefore serves no other request.
		sg.release(status >= 200 && !resp.ConnectionClose())
		return nil
	}
	cl := resp.Header.ContentLength()
	if cl >= 0 && cl <= maxBufferedBody {
		if err := readBodyInto(resp, br, cl); err != nil {
			return sg.failed(err)
		}
		sg.release(!resp.ConnectionClose())
		return nil
	}
	sg.conn.capped = false
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

// failed ends a read that failed with err: errEarly when it was the early deadline, which leaves
// everything as it is for resume; otherwise the connection is closed and err returned.
func (sg *slowGet) failed(err error) error {
	if !sg.early.IsZero() && isTimeout(err) && !time.Now().Before(sg.early) {
		return errEarly
	}
	sg.release(false)
	return err
}

// release ends the read of a whole answer (or a failed one): the reader goes back, and the
// connection to the pool when reuse, closed otherwise.
func (sg *slowGet) release(reuse bool) {
	sg.conn.capped = false
	sg.n.hc.ReleaseReader(sg.br)
	sg.n.conns.put(sg.h, reuse)
}

// readBodyInto reads a body of cl bytes from br into resp's body, which holds what a read before
// this one (stopped by an early deadline) took of it already.
func readBodyInto(resp *fasthttp.Response, br *bufio.Reader, cl int) error {
	buf := resp.SwapBody(nil)
	defer func() { resp.SwapBody(buf) }()
	buf = slices.Grow(buf, cl-len(buf))
	for len(buf) < cl {
		n, err := br.Read(buf[len(buf):cl])
		buf = buf[:len(buf)+n]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
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
