// Package httpconn is what mogway's HTTP servers (the gateway and the storage node) do below
// fasthttp, at the level of connections and request lines:
//
//   - Tracker bounds the connections open at once. At the bound it closes the connection that has
//     been idle between keep-alive requests the longest, as nginx reuses idle connections under
//     worker_connections pressure, and refuses a new connection with 503 only when none is idle.
//   - Its connections accept request heads whose lines end in a bare LF (RFC 9112 section 2.2),
//     which fasthttp would otherwise wait on until the read timeout (see headFixer).
//   - With Options.CoarseDeadlines, its connections arm the deadlines fasthttp sets per request
//     lazily and a little late, so that a kept-alive request costs no runtime timer update (see
//     deadlines.go).
//   - Its connections read and write the socket with raw system calls (netx.Raw).
//   - CheckRequestLine applies the request-line rules of RFC 9112 that fasthttp leaves out.
//
// It imports no mogway package but internal/netx.
package httpconn

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/mogway/mogway/internal/netx"
)

// Options configure a Tracker.
type Options struct {
	// Max is the most connections open at once; 0 means no bound.
	Max int
	// Key is the configuration key that sets Max (such as "limits.max_connections"), named in the
	// log when a connection is refused.
	Key string
	// Log receives a warning when connections are refused (at most one a minute). Nil: no log.
	Log *slog.Logger
	// CoarseDeadlines arms a connection's read and write deadlines only before a read or a write,
	// and late by up to an eighth of the time left until them when asked for, so that back-to-back
	// requests reuse the deadline armed for an earlier one (see Conn.SetReadDeadline). Deadlines
	// must then be set from the goroutine that reads and writes, as fasthttp does.
	CoarseDeadlines bool
}

// Tracker keeps the open connections of one server. Wrap the server's listener with Listener and
// give ConnState to fasthttp.Server.ConnState. Its methods are safe for concurrent use.
type Tracker struct {
	opt Options

	mu       sync.Mutex         // guards open, all, idle and lastWarn
	open     int                // connections holding a slot (Conn.counted)
	all      map[*Conn]struct{} // connections accepted and not yet closed, for CloseAll
	idle     idleList           // connections idle between requests, longest idle at the front
	lastWarn time.Time          // when a refusal was last logged

	evicted, refused atomic.Int64
}

// NewTracker returns a Tracker with no connection yet.
func NewTracker(opt Options) *Tracker {
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	return &Tracker{opt: opt, all: make(map[*Conn]struct{})}
}

// CloseAll closes every connection accepted and not yet closed, busy or idle, writing a held
// answer first (see HoldAnswer). A server calls it when its graceful stop runs out of time, so that
// no client connection outlives the server: the requests still running on them fail their next
// write.
func (t *Tracker) CloseAll() {
	t.mu.Lock()
	open := make([]*Conn, 0, len(t.all))
	for c := range t.all {
		open = append(open, c)
	}
	t.mu.Unlock()
	for _, c := range open {
		c.closeSocket() //nolint:errcheck // closing anyway; fasthttp closes the Conn in turn
	}
}

// Stats are a Tracker's counters since NewTracker.
type Stats struct {
	Open    int   `json:"open"`    // connections open now
	Idle    int   `json:"idle"`    // of which idle between requests
	Evicted int64 `json:"evicted"` // idle connections closed to make room for a new one
	Refused int64 `json:"refused"` // new connections answered 503 because every open one was busy
}

// Stats returns a snapshot of the counters.
func (t *Tracker) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return Stats{Open: t.open, Idle: t.idle.n, Evicted: t.evicted.Load(), Refused: t.refused.Load()}
}

// Listener wraps ln: the connections it accepts are *Conn, counted against Options.Max.
func (t *Tracker) Listener(ln net.Listener) net.Listener { return &listener{Listener: ln, t: t} }

type listener struct {
	net.Listener
	t *Tracker
}

// Accept returns the next connection that may be served. A connection over the bound is answered
// 503 and closed here, and Accept waits for the next one.
func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if hc := l.t.admit(c); hc != nil {
			return hc, nil
		}
	}
}

// admit gives c a slot, closing the longest idle connection when every slot is taken; with no idle
// connection it refuses c and returns nil.
func (t *Tracker) admit(c net.Conn) *Conn {
	hc := &Conn{Conn: netx.Raw(c), t: t, counted: true, coarse: t.opt.CoarseDeadlines}
	hc.held.Init(hc.Conn)
	t.mu.Lock()
	if t.opt.Max <= 0 || t.open < t.opt.Max {
		t.open++
		t.all[hc] = struct{}{}
		t.mu.Unlock()
		return hc
	}
	victim := t.idle.front
	if victim == nil {
		warn := time.Since(t.lastWarn) >= time.Minute
		if warn {
			t.lastWarn = time.Now()
		}
		t.mu.Unlock()
		t.refuse(c, warn)
		return nil
	}
	t.idle.remove(victim)
	victim.counted = false // its slot passes to hc
	t.all[hc] = struct{}{}
	t.mu.Unlock()
	t.evicted.Add(1)
	// The victim's goroutine is waiting for the first byte of a next request, or is about to, its
	// answer maybe still held (see HoldAnswer): closing the socket after that answer ends the
	// wait, and fasthttp then closes the Conn (which no longer holds a slot).
	victim.closeSocket()
	return hc
}

// refuseAnswer is the whole answer to a connection over the bound.
const refuseAnswer = "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 20\r\n\r\ntoo many connections"

func (t *Tracker) refuse(c net.Conn, warn bool) {
	t.refused.Add(1)
	if warn {
		t.opt.Log.Warn("connection refused: every connection is busy; raise "+t.opt.Key+" to serve more at once",
			t.opt.Key, t.opt.Max)
	}
	// A new socket's send buffer takes these bytes at once; the deadline only bounds a broken peer.
	c.SetWriteDeadline(time.Now().Add(time.Second)) //nolint:errcheck // the write below fails instead
	c.Write([]byte(refuseAnswer))                   //nolint:errcheck // the client may be gone already
	c.Close()                                       //nolint:errcheck // nothing more to do for it
}

// ConnState follows fasthttp's connection states (fasthttp.Server.ConnState): a connection is idle
// from StateIdle, after an answer, until StateActive, when the next request starts. c may be a
// *Conn or wrap one (found through a NetConn method, as crypto/tls.Conn has); others are ignored.
func (t *Tracker) ConnState(c net.Conn, st fasthttp.ConnState) {
	hc := unwrap(c)
	if hc == nil || hc.t != t {
		return
	}
	switch st {
	case fasthttp.StateIdle:
		// The next bytes are a new request head. fasthttp calls this from the goroutine that
		// reads the connection, so the head state needs no lock.
		hc.head = headFixer{}
		t.mu.Lock()
		if hc.counted && !hc.idle {
			t.idle.pushBack(hc)
		}
		t.mu.Unlock()
	case fasthttp.StateActive, fasthttp.StateHijacked, fasthttp.StateClosed:
		t.mu.Lock()
		t.unidle(hc)
		t.mu.Unlock()
	}
}

// unidle takes c off the idle list. t.mu must be held.
func (t *Tracker) unidle(c *Conn) {
	if c.idle {
		t.idle.remove(c)
	}
}

// idleList is a doubly linked list of connections through their own prev and next fields, so that
// a connection going idle after each answer costs no allocation (container/list allocates an element).
type idleList struct {
	front, back *Conn
	n           int
}

func (l *idleList) pushBack(c *Conn) {
	c.prev, c.next, c.idle = l.back, nil, true
	if l.back != nil {
		l.back.next = c
	} else {
		l.front = c
	}
	l.back = c
	l.n++
}

func (l *idleList) remove(c *Conn) {
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		l.front = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		l.back = c.prev
	}
	c.prev, c.next, c.idle = nil, nil, false
	l.n--
}

func unwrap(c net.Conn) *Conn {
	for range 8 {
		switch v := c.(type) {
		case *Conn:
			return v
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// Conn is a connection accepted by a Tracker's listener. Like any net.Conn given to fasthttp, it
// is read by one goroutine at a time.
type Conn struct {
	net.Conn
	t *Tracker

	idle       bool  // on t.idle; guarded by t.mu, as are prev and next
	prev, next *Conn // neighbours on t.idle
	counted    bool  // holds one of t's slots; guarded by t.mu

	head       headFixer // the request head being read
	pendingLF  bool      // an LF owed to the reader after a one-byte read that had to grow
	closedOnce sync.Once

	coarse bool     // Options.CoarseDeadlines
	rd, wd deadline // with coarse: the deadlines asked for and armed (see deadlines.go)

	held netx.Held // an answer held for the next read (see HoldAnswer)
}

// HoldAnswer tells the Conn that c is, or wraps, whether the answer about to be written is
// complete: no write of it waits for anything but the socket. When it is, the Conn holds what is
// written until the next read, which writes it and waits for the next request in the runtime's
// poller without first reading a socket the request cannot have reached (netx.WriteReader): a
// system call fewer per kept-alive request. Close, CloseWrite, ReadFrom and an eviction by the
// Tracker write a held answer first, and so does HoldAnswer(c, false). It is a no-op on other
// connections. Call it from the goroutine serving c, before the answer is written.
func HoldAnswer(c net.Conn, complete bool) {
	if hc := unwrap(c); hc != nil && hc.held.Enabled() {
		hc.held.SetOn(complete) //nolint:errcheck // a broken connection fails the answer's own write
	}
}

// readConn reads the wrapped connection, first writing a held answer (see HoldAnswer).
func (c *Conn) readConn(p []byte) (int, error) {
	if c.held.On() {
		return c.held.Read(p)
	}
	return c.Conn.Read(p)
}

// maxHeld is the largest write a Conn holds (see HoldAnswer); a larger one is sent at once.
const maxHeld = 64 << 10

// writeHeld is Write while an answer is held: the bytes held so far go first, and p is held in
// turn when it fits.
func (c *Conn) writeHeld(p []byte) (int, error) {
	c.held.Mu.Lock()
	defer c.held.Mu.Unlock()
	if err := c.held.FlushLocked(); err != nil {
		return 0, err
	}
	if len(p) <= maxHeld {
		c.held.Append(p)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// closeSocket closes the wrapped connection after writing a held answer (see HoldAnswer); from any
// goroutine. The answer's write is bounded by heldCloseWrite: a client that reads nothing loses it.
func (c *Conn) closeSocket() error {
	c.held.Mu.Lock()
	if c.held.Len() > 0 {
		c.Conn.SetWriteDeadline(time.Now().Add(heldCloseWrite)) //nolint:errcheck // the write fails instead
		c.held.FlushLocked()                                    //nolint:errcheck // closing anyway
	}
	c.held.Mu.Unlock()
	return c.Conn.Close()
}

// heldCloseWrite bounds the write of a held answer when its connection is closed.
const heldCloseWrite = time.Second

// Close writes a held answer (see HoldAnswer), closes the connection and frees its slot.
func (c *Conn) Close() error {
	c.closedOnce.Do(func() {
		c.t.mu.Lock()
		c.t.unidle(c)
		delete(c.t.all, c)
		if c.counted {
			c.counted = false
			c.t.open--
		}
		c.t.mu.Unlock()
	})
	return c.closeSocket()
}

// Read reads the connection. While a request head is read, every line ending in a bare LF is given
// to the reader as ending in CRLF (see headFixer); every byte after the head passes unchanged.
func (c *Conn) Read(p []byte) (int, error) {
	if c.coarse {
		if err := c.rd.arm(c.Conn.SetReadDeadline); err != nil {
			return 0, err
		}
	}
	if c.head.done || len(p) == 0 {
		return c.readConn(p)
	}
	if c.pendingLF {
		c.pendingLF = false
		p[0] = '\n'
		return 1, nil
	}
	if len(p) == 1 {
		n, err := c.readConn(p)
		return c.readOne(p, n, err)
	}
	// A bare LF grows to two bytes, so read at most half of p.
	n, err := c.readConn(p[:len(p)/2])
	if n > 0 {
		n = c.head.fix(p, n)
	}
	return n, err
}

// readOne finishes a read into a one-byte buffer: a bare LF in the head is given as CR now and LF
// on the next read.
func (c *Conn) readOne(p []byte, n int, err error) (int, error) {
	if n == 0 {
		return n, err
	}
	var two [2]byte
	two[0] = p[0]
	if c.head.fix(two[:], 1) == 2 {
		p[0] = '\r'
		c.pendingLF = true
	}
	return 1, err
}

// ReadFrom lets a body be copied by the wrapped connection's own ReadFrom, so a *net.TCPConn still
// sends a file with sendfile(2).
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if c.coarse {
		if err := c.wd.arm(c.Conn.SetWriteDeadline); err != nil {
			return 0, err
		}
	}
	if err := c.held.Flush(); err != nil {
		return 0, err
	}
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// NetConn returns the connection c wraps.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// CloseWrite shuts down the sending side of the wrapped connection (a *net.TCPConn's half-close), so
// a server can still read and discard what a client sends before it closes (lingering close).
func (c *Conn) CloseWrite() error {
	if err := c.held.Flush(); err != nil {
		return err
	}
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// headFixer rewrites a request head so that every line ends in CRLF. fasthttp reads a line ending in
// a bare LF, except the empty line that ends the head: it looks for CRLF CRLF and, not finding it,
// waits for more bytes until the read timeout. RFC 9112 section 2.2 lets a server take a bare LF as
// a line terminator, as nginx does, so a bare LF becomes CRLF, which is the same head to every
// reader that allows bare LF. The head ends, as for fasthttp, at the first empty line after a
// non-empty one; the bytes after it (a body) are never changed.
//
// Only a head that starts a read is seen: a request pipelined behind another in the bytes of one
// read passes unchanged, so it must end its head in CRLF CRLF.
type headFixer struct {
	started bool // a non-empty line (the request line) was read
	lineLen int  // bytes of the current line so far
	prevCR  bool // the last byte read was CR
	done    bool // the head ended; pass everything through
}

// fix rewrites p[:n], the next bytes read, in place and returns their new length. len(p) must be at
// least 2n.
func (h *headFixer) fix(p []byte, n int) int {
	startCR := h.prevCR
	end, bare := n, 0
	for i := 0; i < n; i++ {
		// Skip to the next LF with IndexByte: a head is scanned on every request of a connection.
		k := bytes.IndexByte(p[i:n], '\n')
		if k < 0 {
			h.lineLen += n - i
			h.prevCR = p[n-1] == '\r'
			break
		}
		if k > 0 {
			h.lineLen += k
			h.prevCR = p[i+k-1] == '\r'
			i += k
		}
		blank := h.lineLen == 0 || h.lineLen == 1 && h.prevCR
		if !h.prevCR {
			bare++
		}
		h.lineLen, h.prevCR = 0, false
		if !blank {
			h.started = true
		} else if h.started {
			h.done = true
			end = i + 1
			break
		}
	}
	if bare == 0 {
		return n
	}
	copy(p[end+bare:], p[end:n])
	j := end + bare
	for i := end - 1; i >= 0; i-- {
		c := p[i]
		if c == '\n' && (i == 0 && !startCR || i > 0 && p[i-1] != '\r') {
			p[j-1], p[j-2] = '\n', '\r'
			j -= 2
			continue
		}
		p[j-1] = c
		j--
	}
	return n + bare
}

// CheckRequestLine applies the rules of RFC 9112 for the request line that fasthttp leaves out. It
// returns 505 for a version other than HTTP/1.x (fasthttp reads any "HTTP/d.d"), 400 for the
// asterisk-form target ("*") with a method other than OPTIONS (section 3.2.4), and 0 when the request
// may be served. The absolute-form ("http://host/path", section 3.2.2) passes: each server reads
// the path from it.
func CheckRequestLine(h *fasthttp.RequestHeader) int {
	if p := h.Protocol(); len(p) < 6 || p[5] != '1' {
		return fasthttp.StatusHTTPVersionNotSupported
	}
	if u := h.RequestURI(); len(u) == 1 && u[0] == '*' && !h.IsOptions() {
		return fasthttp.StatusBadRequest
	}
	return 0
}
