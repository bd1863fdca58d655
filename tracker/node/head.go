package node

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mogway/mogway/internal/netx"
)

// Size's HEAD requests skip net/http: get_paths verifies a path with one HEAD per query, and the
// Transport hands every request to a connection's reader and writer goroutines. A HEAD reply has
// no body (RFC 9110 9.3.2), so a kept connection is a request written and a header block read by
// the caller's goroutine.

// maxHeadLines bounds the header lines read from a HEAD reply.
const maxHeadLines = 64

// headConn is a kept-alive connection to one node for HEAD requests. A request is written by the
// first read of its reply, which then waits for the reply without first reading a socket the reply
// cannot have reached (netx.Request): a system call fewer per HEAD.
type headConn struct {
	nc   net.Conn
	req  *netx.Request
	br   *bufio.Reader // reads through req
	wbuf []byte        // the request being sent, reused from one HEAD to the next

	// The context whose end aborts hc's I/O (watch) stays registered from one HEAD to the next
	// while they come with the same context, as get_paths' all do (the server's), rather than
	// being registered and removed again around each HEAD: that cost a lock of the server's
	// context and three allocations per get_paths check.
	abortMu   sync.Mutex      // guards abortDone
	abortDone <-chan struct{} // Done of the context watched; nil when none is
	stopAbort func() bool     // ends the watch of abortDone's context
}

func newHeadConn(nc net.Conn) *headConn {
	nc = netx.Raw(nc)
	hc := &headConn{nc: nc, req: netx.NewRequest(nc)}
	hc.br = bufio.NewReaderSize(hc.req, 4096)
	return hc
}

// abortedDeadline is a deadline long past: set on a connection, it ends its I/O at once.
var abortedDeadline = time.Unix(1, 0)

// watch makes the end of ctx abort hc's I/O at once (by a deadline in the past) from now until hc
// watches another context or is closed. The context watched before, if any, no longer aborts
// anything, even when its end is being handled at that moment. After watch, the caller sets its
// deadlines and then checks ctx.Err(): a context that ended before the deadlines were set (its
// abort undone by them) is seen there.
func (hc *headConn) watch(ctx context.Context) {
	done := ctx.Done()
	if done == hc.abortDone {
		return
	}
	hc.abortMu.Lock()
	hc.abortDone = done
	hc.abortMu.Unlock()
	if hc.stopAbort != nil {
		hc.stopAbort()
		hc.stopAbort = nil
	}
	if done != nil {
		hc.stopAbort = context.AfterFunc(ctx, func() {
			hc.abortMu.Lock()
			defer hc.abortMu.Unlock()
			if hc.abortDone == done {
				hc.nc.SetDeadline(abortedDeadline)
			}
		})
	}
}

// close closes the connection and ends its context watch, which would otherwise keep it
// referenced from a long-lived context.
func (hc *headConn) close() {
	if hc.stopAbort != nil {
		hc.stopAbort()
		hc.stopAbort = nil
	}
	hc.nc.Close()
}

// headPool keeps idle HEAD connections per node address ("ip:port").
type headPool struct {
	max int // idle connections kept per address

	mu   sync.Mutex // guards idle
	idle map[string][]*headConn
}

func (p *headPool) get(addr string) *headConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	cs := p.idle[addr]
	if len(cs) == 0 {
		return nil
	}
	hc := cs[len(cs)-1]
	p.idle[addr] = cs[:len(cs)-1]
	return hc
}

func (p *headPool) put(addr string, hc *headConn) {
	p.mu.Lock()
	if len(p.idle[addr]) < p.max {
		if p.idle == nil {
			p.idle = map[string][]*headConn{}
		}
		p.idle[addr] = append(p.idle[addr], hc)
		hc = nil
	}
	p.mu.Unlock()
	if hc != nil {
		hc.close()
	}
}

// closeAddr closes the idle connections to addr.
func (p *headPool) closeAddr(addr string) {
	p.mu.Lock()
	idle := p.idle[addr]
	delete(p.idle, addr)
	p.mu.Unlock()
	for _, hc := range idle {
		hc.close()
	}
}

// closeIdle closes every idle connection.
func (p *headPool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, cs := range idle {
		for _, hc := range cs {
			hc.close()
		}
	}
}

// splitHTTPURL splits "http://host:port/path" into its address and path; ok is false for any
// other form, which Size hands to net/http.
func splitHTTPURL(url string) (addr, path string, ok bool) {
	rest, found := strings.CutPrefix(url, "http://")
	if !found {
		return "", "", false
	}
	i := strings.IndexByte(rest, '/')
	if i <= 0 {
		return "", "", false
	}
	addr, path = rest[:i], rest[i:]
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", "", false
	}
	for j := 0; j < len(path); j++ {
		if c := path[j]; c <= ' ' || c == 0x7f || c == '#' || c == '?' {
			return "", "", false // leave anything unusual to net/http's checks
		}
	}
	return addr, path, true
}

// head sends one HEAD for the file at url over a kept connection to addr, or a new one, and
// returns the Content-Length as Size does. It waits at most patience (when above 0) for the node to
// begin its answer, and returns a *LateSize when it has not by then (SizeWithin).
func (c *Client) head(ctx context.Context, url, addr, path string, patience time.Duration) (int64, *LateSize, error) {
	now := time.Now()
	h := headCall{c: c, url: url, addr: addr, path: path, deadline: now.Add(c.cfg.Timeout)}
	if d, ok := ctx.Deadline(); ok && d.Before(h.deadline) {
		h.deadline = d
	}
	until := h.deadline
	if patience > 0 && now.Add(patience).Before(until) {
		until = now.Add(patience)
	}
	n, late, err := h.run(ctx, until)
	if late {
		return 0, &LateSize{h: h}, nil
	}
	return n, nil, err
}

// LateSize is a HEAD that SizeWithin stopped waiting for: its request is on a connection to the
// node, which has not begun its answer. Call Wait once; until then it holds that connection.
type LateSize struct {
	h headCall
}

// Wait waits for the rest of the HEAD and returns what Size would have: the answer, or an error
// once the Client's Timeout, counted from the SizeWithin call, has passed (IsTimeout reports it)
// or ctx has ended. ctx need not be SizeWithin's: a caller that went on without the answer passes
// one that outlives its own work.
func (l *LateSize) Wait(ctx context.Context) (int64, error) {
	n, _, err := l.h.run(ctx, l.h.deadline)
	return n, err
}

// headCall is one HEAD in progress.
type headCall struct {
	c               *Client
	url, addr, path string
	deadline        time.Time // the Client's Timeout from the start, or ctx's deadline when sooner
	hc              *headConn // the connection the request is on; nil before one is taken
	reused          bool      // hc came from the pool
	sent            bool      // the request is on hc (held or written) and its answer not yet read
	retried         bool      // a new connection replaced a kept one that failed
}

// run goes on with the HEAD until its answer or failure, or until until when the node has sent
// nothing by then: run then reports late, with the request left on h.hc for a later run. A kept
// connection that fails before any reply byte (the node closed it while idle) is replaced by a new
// one, once; the other kept connections to the node are dropped with it.
func (h *headCall) run(ctx context.Context, until time.Time) (n int64, late bool, err error) {
	for {
		if h.hc == nil {
			h.hc, h.reused, h.sent = h.c.heads.get(h.addr), true, false
			if h.hc == nil {
				d := net.Dialer{Deadline: until, KeepAlive: 30 * time.Second}
				nc, err := d.DialContext(ctx, "tcp", h.addr)
				if err != nil {
					if h.early(ctx, until, err) {
						return 0, true, nil
					}
					return 0, false, fmt.Errorf("HEAD %s: %w", h.url, err)
				}
				h.hc, h.reused = newHeadConn(nc), false
			}
		}
		send := !h.sent
		h.sent = true
		res, err := h.hc.roundTrip(ctx, h.addr, h.path, send, until, h.deadline)
		if err != nil {
			if !res.replied && h.early(ctx, until, err) {
				return 0, true, nil
			}
			h.hc.close()
			h.hc = nil
			if ctx.Err() != nil {
				return 0, false, fmt.Errorf("HEAD %s: %w", h.url, ctx.Err())
			}
			if h.reused && !res.replied && !h.retried {
				// The node closed the connection while it was idle, and likely the others kept
				// since then (its idle timeout): they are dropped, and the HEAD goes on a new one.
				h.retried = true
				h.c.heads.closeAddr(h.addr)
				continue
			}
			return 0, false, fmt.Errorf("HEAD %s: %w", h.url, err)
		}
		if res.keep {
			h.c.heads.put(h.addr, h.hc)
		} else {
			h.hc.close()
		}
		h.hc = nil
		n, err := res.size(h.url)
		return n, false, err
	}
}

// early reports whether err is only the end of run's patience: a timeout at until, before the
// HEAD's own deadline, with ctx still live. Such a timeout is never returned as an error, so no
// caller takes the node for hung before its Timeout.
func (h *headCall) early(ctx context.Context, until time.Time, err error) bool {
	return until.Before(h.deadline) && ctx.Err() == nil && IsTimeout(err)
}

// headReply is what a HEAD reply said.
type headReply struct {
	replied    bool // a byte of the reply arrived
	keep       bool // the connection may carry another request
	code       int
	length     string // the Content-Length value; "" when absent
	lighttpd   bool   // Server: lighttpd…
	hasLength  bool
	conflicted bool // several different Content-Length values
}

// size turns the reply into Size's result.
func (r headReply) size(url string) (int64, error) {
	switch {
	case r.code == 404:
		return 0, fmt.Errorf("HEAD %s: %w", url, ErrNotFound)
	case r.code/100 != 2:
		return 0, &StatusError{"HEAD", url, r.code}
	case r.conflicted:
		return 0, fmt.Errorf("HEAD %s: conflicting Content-Length values", url)
	case !r.hasLength:
		if r.lighttpd {
			return 0, nil
		}
		return 0, fmt.Errorf("HEAD %s: no Content-Length", url)
	}
	v, err := strconv.ParseInt(r.length, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("HEAD %s: bad Content-Length %q", url, r.length)
	}
	return v, nil
}

// roundTrip sends the request when send (otherwise it is on hc already) and reads the reply head:
// its first byte until until, the rest until deadline. ctx ending aborts the I/O at once. A request
// held by hc.req is written by the first read, under the read deadline; when that has passed before
// the write, the request stays held (netx.Request) and the next roundTrip writes it.
func (hc *headConn) roundTrip(ctx context.Context, addr, path string, send bool, until, deadline time.Time) (headReply, error) {
	hc.watch(ctx)
	if err := hc.nc.SetDeadline(until); err != nil {
		return headReply{}, err
	}
	if err := ctx.Err(); err != nil {
		return headReply{}, err
	}
	if send {
		// hc.wbuf is not written to again before this request is sent and answered: a request
		// still held (its patience over before the write) is sent by the next roundTrip's read.
		req := append(hc.wbuf[:0], "HEAD "...)
		req = append(req, path...)
		req = append(req, " HTTP/1.1\r\nHost: "...)
		req = append(req, addr...)
		req = append(req, "\r\nUser-Agent: "+userAgent+"\r\n\r\n"...)
		hc.wbuf = req
		if !hc.req.Hold(req) {
			// Written here, so under the write deadline: the whole one, as a request that the
			// patience interrupted halfway could not be waited on.
			if err := hc.nc.SetWriteDeadline(deadline); err != nil {
				return headReply{}, err
			}
			if _, err := hc.nc.Write(req); err != nil {
				return headReply{}, err
			}
		}
	}
	if until.Before(deadline) {
		if _, err := hc.br.Peek(1); err != nil {
			return headReply{}, err
		}
		// The answer has begun: the rest of it may take until deadline, unless it is all here
		// already (as a HEAD answer usually is: one segment), when no read is left to bound.
		// Setting the deadline again would undo ctx's abort if ctx ended in between, hence the
		// check after it.
		if b, _ := hc.br.Peek(hc.br.Buffered()); !bytes.Contains(b, []byte("\r\n\r\n")) {
			if err := hc.nc.SetReadDeadline(deadline); err != nil {
				return headReply{}, err
			}
			if err := ctx.Err(); err != nil {
				return headReply{}, err
			}
		}
	}
	return readHeadReply(hc.br)
}

// readHeadReply reads the status line and header block of a HEAD reply.
func readHeadReply(br *bufio.Reader) (headReply, error) {
	var r headReply
	line, err := br.ReadSlice('\n')
	if len(line) > 0 {
		r.replied = true
	}
	if err != nil {
		return r, err
	}
	proto, rest, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(" "))
	codeText, _, _ := bytes.Cut(rest, []byte(" "))
	code, err := strconv.Atoi(string(codeText))
	if err != nil || len(codeText) != 3 || code < 100 || (string(proto) != "HTTP/1.1" && string(proto) != "HTTP/1.0") {
		return r, fmt.Errorf("malformed status line %q", line)
	}
	r.code = code
	r.keep = string(proto) == "HTTP/1.1"
	for n := 0; ; n++ {
		if n == maxHeadLines {
			return r, errors.New("too many header lines")
		}
		line, err := br.ReadSlice('\n')
		if err != nil {
			return r, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return r, fmt.Errorf("malformed header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if r.hasLength && r.length != string(value) {
				r.conflicted = true
			}
			r.length, r.hasLength = string(value), true
		case bytes.EqualFold(name, []byte("Server")):
			r.lighttpd = bytes.HasPrefix(value, []byte("lighttpd"))
		case bytes.EqualFold(name, []byte("Connection")):
			switch {
			case bytes.EqualFold(value, []byte("close")):
				r.keep = false
			case bytes.EqualFold(value, []byte("keep-alive")):
				r.keep = true
			}
		}
	}
	// 1xx replies are followed by another head; nodes do not send them to a HEAD, so the
	// connection is simply not reused.
	// Bytes after the head (a node that sent a body anyway) would be read as the next reply.
	if r.code < 200 || br.Buffered() > 0 {
		r.keep = false
	}
	return r, nil
}
