// Package client is a connection pool over several MogileFS trackers, with typed helpers for the
// tracker commands and for whole uploads and fetches. The gateway and the command-line tools use it.
//
// Failover rules (Pool.Do):
//   - An ERR reply is an answer: it is returned as a *mogproto.Error, the connection stays in use and
//     no other tracker is asked.
//   - A failure to connect, or to send the request, moves on to the next tracker. Every tracker is
//     tried at most once per call; trackers that failed recently are tried last.
//   - A failure after the request was sent (timeout, connection closed, garbled reply) moves on only
//     for commands that just read (mogproto.Idempotent). For create_close, delete, rename and the
//     admin mutations the command may have run, so the error is returned instead.
//   - A read whose pooled connection turns out closed by the tracker (nothing came back) is first
//     sent again on a new connection to the same tracker; that is not a tracker failure.
//   - With Config.MaxConnsPerTracker set, a call that finds no idle connection to a tracker that
//     already has that many open waits for one to come back or close, for at most DialTimeout
//     (waiting and connecting together). A wait that runs out is that tracker's failure, as a
//     connect that timed out is: the call moves on to the next tracker (ErrMaxConns).
//
// Every method of Pool is safe for concurrent use.
package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mogway/mogway/internal/netx"
	"github.com/mogway/mogway/tracker/mogproto"
)

// ErrUnavailable is wrapped by errors of calls that got no reply from any tracker, or lost the reply
// of a command that is not retried. The cause (a dial error, a timeout) is wrapped too, so
// errors.Is(err, os.ErrDeadlineExceeded) tells a timeout apart.
var ErrUnavailable = errors.New("client: no tracker answered")

// ErrClosed is returned by calls on a closed Pool.
var ErrClosed = errors.New("client: pool closed")

// ErrMaxConns is wrapped, with os.ErrDeadlineExceeded, by the error of an attempt that waited as
// long as a connect may take (DialTimeout, within Timeout) for a connection to a tracker at
// Config.MaxConnsPerTracker, as the other trackers are then tried.
var ErrMaxConns = errors.New("client: tracker at max_conns_per_tracker")

// maxLine bounds one reply line; a list_keys reply of 1000 long keys stays far below it.
const maxLine = 64 << 20

// Pool sends tracker commands over persistent connections, failing over between trackers. Create
// it with NewPool and release its connections with Close.
type Pool struct {
	cfg      Config
	log      *slog.Logger
	trackers []*tracker
	next     atomic.Uint64 // rotates the first tracker tried
	closed   atomic.Bool
	http     *http.Client // storage nodes, for Upload and Fetch
	now      func() time.Time
}

// tracker is one tracker address with its idle connections and health.
type tracker struct {
	addr     string
	requests atomic.Int64
	failures atomic.Int64
	inflight atomic.Int64
	opened   atomic.Int64 // connections dialled
	waits    atomic.Int64 // attempts that waited for a connection (MaxConnsPerTracker)
	timeouts atomic.Int64 // of those, the waits that ran out

	mu        sync.Mutex // guards idle, open, waiters, fails and downUntil
	idle      []*conn
	open      int       // connections open, idle or in use; counted only with MaxConnsPerTracker
	waiters   []waiter  // attempts waiting for a connection, first come first served
	fails     int       // consecutive failures
	downUntil time.Time // skipped (tried last) until then
}

// waiter is where an attempt waiting for a connection to a tracker at MaxConnsPerTracker gets one:
// a connection another call returned, or nil for the place of one that closed, to dial. It is
// buffered so that handing over never blocks under tracker.mu.
type waiter chan *conn

// conn is one connection to a tracker, used by one call at a time.
type conn struct {
	nc   net.Conn
	req  *netx.Request // writes a command with the first read of its reply (a system call fewer)
	br   *bufio.Reader // reads through req
	wbuf []byte
	long []byte // assembles reply lines longer than br's buffer
}

// sendFailed reports whether err is a failure to write a request: nothing of it reached the tracker.
func sendFailed(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "write"
}

// NewPool validates cfg and returns a Pool. It does not connect: connections are made on demand.
// log receives tracker up/down transitions; nil discards them.
func NewPool(cfg Config, log *slog.Logger) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	p := &Pool{cfg: cfg, log: log, now: time.Now}
	for _, a := range cfg.Trackers {
		p.trackers = append(p.trackers, &tracker{addr: a})
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: time.Minute,
	}
	p.http = &http.Client{Transport: tr}
	return p, nil
}

// Close closes idle connections and makes later calls fail with ErrClosed. Calls in progress finish
// and close their connections.
func (p *Pool) Close() error {
	p.closed.Store(true)
	for _, t := range p.trackers {
		t.mu.Lock()
		idle := t.idle
		t.idle = nil
		t.mu.Unlock()
		for _, c := range idle {
			p.closeConn(t, c)
		}
	}
	p.http.CloseIdleConnections()
	return nil
}

// Do sends one command and returns the arguments of its OK reply. An ERR reply is returned as a
// *mogproto.Error. Other errors wrap ErrUnavailable, or the context's error when ctx ended first.
// The package documentation gives the failover rules.
func (p *Pool) Do(ctx context.Context, cmd string, args mogproto.Args) (mogproto.Args, error) {
	if p.closed.Load() {
		return nil, ErrClosed
	}
	if !validCmd(cmd) {
		return nil, fmt.Errorf("client: invalid command %q", cmd)
	}
	retry := mogproto.Idempotent(cmd)
	var lastErr error
	var buf [4]*tracker
	for _, t := range p.order(buf[:0]) {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("client: %s: %w", cmd, err)
		}
		reply, sent, err := p.try(ctx, t, cmd, args)
		if err == nil {
			return reply, nil
		}
		var perr *mogproto.Error
		if errors.As(err, &perr) {
			return nil, perr
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("client: %s: %w", cmd, ctxErr)
		}
		if sent && !retry {
			return nil, fmt.Errorf("%w: %s: reply lost, the command may have run: %w", ErrUnavailable, cmd, err)
		}
		lastErr = err
	}
	return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, cmd, lastErr)
}

func validCmd(cmd string) bool {
	if cmd == "" {
		return false
	}
	for i := 0; i < len(cmd); i++ {
		c := cmd[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// order appends every tracker once to out: those in good health first, rotating the starting point
// so load spreads, then those that failed recently, soonest retry first.
func (p *Pool) order(out []*tracker) []*tracker {
	n := len(p.trackers)
	start := int(p.next.Add(1)-1) % n
	now := p.now()
	var down []*tracker
	for i := range n {
		t := p.trackers[(start+i)%n]
		t.mu.Lock()
		isDown := now.Before(t.downUntil)
		t.mu.Unlock()
		if isDown {
			down = append(down, t)
		} else {
			out = append(out, t)
		}
	}
	slices.SortStableFunc(down, func(a, b *tracker) int {
		a.mu.Lock()
		da := a.downUntil
		a.mu.Unlock()
		b.mu.Lock()
		db := b.downUntil
		b.mu.Unlock()
		return da.Compare(db)
	})
	return append(out, down...)
}

// aLongTimeAgo is a deadline in the past, used to abort I/O when the caller's context ends.
var aLongTimeAgo = time.Unix(1, 0)

// try runs one attempt on t. sent reports whether the whole request was written, after which the
// command may have run even when err is not nil.
//
// An idle connection is probed for a close by the tracker (a restart, an idle timeout) before a
// command that must not run twice is sent on it: sending on a closed one would fail only at read
// time, too late to fail over safely. A read (mogproto.Idempotent) skips the probe, a system call
// per request: when nothing at all comes back on a pooled connection, it is sent once more on a new
// connection to the same tracker.
func (p *Pool) try(ctx context.Context, t *tracker, cmd string, args mogproto.Args) (reply mogproto.Args, sent bool, err error) {
	t.requests.Add(1)
	t.inflight.Add(1)
	defer t.inflight.Add(-1)

	deadline := time.Now().Add(p.cfg.Timeout.D())
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	read := mogproto.Idempotent(cmd)
	c, pooled, err := p.getConn(ctx, t, deadline, !read)
	if err == nil {
		var stale bool
		reply, sent, stale, err = p.roundTrip(ctx, t, c, cmd, args)
		if stale && pooled && read {
			// With MaxConnsPerTracker, connect may take another idle connection: probed, as it
			// may be as stale as this one (a tracker restart closes them all).
			if c, _, err = p.connect(ctx, t, deadline, true); err == nil {
				reply, sent, _, err = p.roundTrip(ctx, t, c, cmd, args)
			}
		}
	}
	var perr *mogproto.Error
	if err != nil && !errors.As(err, &perr) {
		p.fail(ctx, t, err)
		return nil, sent, err
	}
	p.up(t)
	return reply, true, err
}

// roundTrip sends one command on c, whose deadline is set, and reads its reply. c goes back to the
// idle list after a whole reply and is closed otherwise. stale reports that the connection was
// found closed by the tracker before any byte of a reply came back.
func (p *Pool) roundTrip(ctx context.Context, t *tracker, c *conn, cmd string, args mogproto.Args) (reply mogproto.Args, sent, stale bool, err error) {
	stop := func() bool { return true }
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { c.nc.SetDeadline(aLongTimeAgo) })
	}
	c.wbuf = mogproto.AppendRequest(c.wbuf[:0], cmd, args)
	if !c.req.Hold(c.wbuf) {
		if _, err := c.nc.Write(c.wbuf); err != nil {
			stop()
			p.closeConn(t, c)
			return nil, false, closedByPeer(err), fmt.Errorf("client: %s: send %s: %w", t.addr, cmd, err)
		}
	}
	line, err := c.readLine()
	if err == nil {
		reply, err = mogproto.ParseReply(line) // copies what it keeps
	}
	if cap(c.long) > 1<<20 {
		c.long = nil // do not pin a huge buffer to an idle connection
	}
	var perr *mogproto.Error
	if err != nil && !errors.As(err, &perr) {
		stop()
		p.closeConn(t, c)
		if sendFailed(err) {
			return nil, false, closedByPeer(err), fmt.Errorf("client: %s: send %s: %w", t.addr, cmd, err)
		}
		return nil, true, line == nil && closedByPeer(err), fmt.Errorf("client: %s: reply to %s: %w", t.addr, cmd, err)
	}
	// The reply is complete: keep the connection unless the context fired and poisoned its
	// deadline. The deadline stays: the next call sets its own before any I/O.
	if stop() {
		p.putIdle(t, c)
	} else {
		p.closeConn(t, c)
	}
	return reply, true, false, err
}

// closedByPeer reports whether err is what a connection the peer had closed gives: end of file,
// a reset, or a broken pipe. A timeout is not.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// readLine reads one reply line, however long, up to maxLine bytes. On error the line is nil.
func (c *conn) readLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if err == nil {
		return line, nil
	}
	if !errors.Is(err, bufio.ErrBufferFull) {
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	c.long = append(c.long[:0], line...)
	for {
		line, err = c.br.ReadSlice('\n')
		c.long = append(c.long, line...)
		if len(c.long) > maxLine {
			return nil, fmt.Errorf("reply line longer than %d bytes", maxLine)
		}
		switch {
		case err == nil:
			return c.long, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// getConn returns an idle connection, or a new one, with its deadline set. With probe, an idle
// connection is used only when the tracker has not closed it. pooled reports an idle one.
func (p *Pool) getConn(ctx context.Context, t *tracker, deadline time.Time, probe bool) (c *conn, pooled bool, err error) {
	for {
		t.mu.Lock()
		c = t.popIdle()
		t.mu.Unlock()
		if c == nil {
			return p.connect(ctx, t, deadline, probe)
		}
		if p.reusable(c, deadline, probe) {
			return c, true, nil
		}
		p.closeConn(t, c)
	}
}

// popIdle takes the most recently used idle connection, or returns nil. t.mu is held.
func (t *tracker) popIdle() *conn {
	n := len(t.idle)
	if n == 0 {
		return nil
	}
	c := t.idle[n-1]
	t.idle = t.idle[:n-1]
	return c
}

// reusable sets a pooled connection's deadline and reports whether it can carry a command: no
// stray bytes wait in it and, with probe, the tracker has not closed it.
func (p *Pool) reusable(c *conn, deadline time.Time, probe bool) bool {
	// The probe reads through the deadline, so it is set first.
	return c.br.Buffered() == 0 && c.nc.SetDeadline(deadline) == nil && (!probe || netx.PeerClosed(c.nc) == nil)
}

// connect dials a new connection to t. With MaxConnsPerTracker, a tracker that has that many open
// first waits for one: an idle connection (pooled), a connection another call hands back, or the
// place of one that closed. Waiting and connecting together take at most DialTimeout.
func (p *Pool) connect(ctx context.Context, t *tracker, deadline time.Time, probe bool) (c *conn, pooled bool, err error) {
	limit := p.cfg.MaxConnsPerTracker
	if limit == 0 {
		c, err = p.dial(ctx, t, deadline, time.Time{})
		return c, false, err
	}
	var connectBy time.Time // set by the first wait
	for {
		var w waiter
		t.mu.Lock()
		c = t.popIdle()
		switch {
		case c != nil:
		case t.open < limit:
			t.open++
		default:
			w = make(waiter, 1)
			t.waiters = append(t.waiters, w)
		}
		t.mu.Unlock()
		if w != nil {
			if connectBy.IsZero() {
				connectBy = time.Now().Add(p.cfg.DialTimeout.D())
				if deadline.Before(connectBy) {
					connectBy = deadline
				}
			}
			if c, err = p.wait(ctx, t, w, connectBy); err != nil {
				return nil, false, err
			}
		}
		if c == nil { // a place of our own: dial
			if c, err = p.dial(ctx, t, deadline, connectBy); err != nil {
				p.release(t)
			}
			return c, false, err
		}
		if p.reusable(c, deadline, probe) {
			return c, true, nil
		}
		p.closeConn(t, c)
	}
}

// wait waits on w, queued on t, until it is handed a connection or a place (nil), ctx ends or
// by passes.
func (p *Pool) wait(ctx context.Context, t *tracker, w waiter, by time.Time) (*conn, error) {
	t.waits.Add(1)
	timer := time.NewTimer(time.Until(by))
	defer timer.Stop()
	var err error
	select {
	case c := <-w:
		return c, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		t.timeouts.Add(1)
		err = fmt.Errorf("%w: %s: all %d connections stayed busy: %w",
			ErrMaxConns, t.addr, p.cfg.MaxConnsPerTracker, os.ErrDeadlineExceeded)
	}
	t.mu.Lock()
	i := slices.Index(t.waiters, w)
	if i >= 0 {
		t.waiters = slices.Delete(t.waiters, i, i+1)
	}
	t.mu.Unlock()
	if i < 0 {
		// Handed something between the end of the wait and the lock: pass it on.
		if c := <-w; c != nil {
			p.putIdle(t, c)
		} else {
			p.release(t)
		}
	}
	return nil, err
}

// dial opens a new connection to t with its deadline set; a non-zero connectBy ends the connect
// earlier than DialTimeout.
func (p *Pool) dial(ctx context.Context, t *tracker, deadline, connectBy time.Time) (*conn, error) {
	d := net.Dialer{Timeout: p.cfg.DialTimeout.D(), Deadline: connectBy}
	nc, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	t.opened.Add(1)
	nc = netx.Raw(nc)
	nc.SetDeadline(deadline)
	c := &conn{nc: nc, req: netx.NewRequest(nc)}
	c.br = bufio.NewReaderSize(c.req, 4096)
	return c, nil
}

// putIdle keeps c, after a whole reply, for the next call: the first waiting one if any, else the
// idle list while it has room. Otherwise c is closed.
func (p *Pool) putIdle(t *tracker, c *conn) {
	t.mu.Lock()
	if !p.closed.Load() {
		if p.handOff(t, c) {
			c = nil
		} else if len(t.idle) < p.cfg.MaxIdlePerTracker {
			t.idle = append(t.idle, c)
			c = nil
		}
	}
	t.mu.Unlock()
	if c != nil {
		p.closeConn(t, c)
	}
}

// closeConn closes c, which counts against t's connections, and frees its place.
func (p *Pool) closeConn(t *tracker, c *conn) {
	c.nc.Close()
	p.release(t)
}

// release frees a place among t's MaxConnsPerTracker connections, giving it to the first waiting
// call if any. Without a bound it does nothing.
func (p *Pool) release(t *tracker) {
	if p.cfg.MaxConnsPerTracker == 0 {
		return
	}
	t.mu.Lock()
	if !p.handOff(t, nil) {
		t.open--
	}
	t.mu.Unlock()
}

// handOff gives c, or the place of a closed connection (nil), to the first call waiting on t, and
// reports whether one was waiting. t.mu is held.
func (p *Pool) handOff(t *tracker, c *conn) bool {
	if len(t.waiters) == 0 {
		return false
	}
	w := t.waiters[0]
	t.waiters = slices.Delete(t.waiters, 0, 1)
	w <- c
	return true
}

// fail records a failed attempt on t and pushes its next try back. A failure caused by the caller's
// context ending says nothing about the tracker and is not counted.
func (p *Pool) fail(ctx context.Context, t *tracker, err error) {
	if ctx.Err() != nil {
		return
	}
	t.failures.Add(1)
	t.mu.Lock()
	t.fails++
	backoff := p.cfg.RetryAfter.D() << min(t.fails-1, maxBackoffShift)
	t.downUntil = p.now().Add(backoff)
	first := t.fails == 1
	t.mu.Unlock()
	if first {
		p.log.Warn("tracker failed; trying others first", "tracker", t.addr, "retry_after", backoff, "err", err)
	}
}

// up records a reply from t.
func (p *Pool) up(t *tracker) {
	t.mu.Lock()
	was := t.fails
	t.fails = 0
	t.downUntil = time.Time{}
	t.mu.Unlock()
	if was > 0 {
		p.log.Info("tracker answers again", "tracker", t.addr)
	}
}

// PoolStats is a snapshot of a Pool, one entry per configured tracker, in configuration order.
type PoolStats struct {
	Trackers []TrackerStats `json:"trackers"`
}

// TrackerStats is the state of one tracker in a Pool.
type TrackerStats struct {
	Addr string `json:"addr"`
	// Up is false while the tracker is skipped after a failure.
	Up bool `json:"up"`
	// DownUntil is when a tracker that is not Up is tried first again.
	DownUntil time.Time `json:"down_until,omitzero"`
	// ConsecutiveFailures counts failures since the last reply.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// Requests and Failures count attempts and failed attempts since the Pool was created.
	Requests int64 `json:"requests"`
	Failures int64 `json:"failures"`
	// InFlight is the number of attempts in progress; Idle the number of pooled connections.
	InFlight int64 `json:"in_flight"`
	Idle     int   `json:"idle"`
	// Opened counts the connections dialled since the Pool was created: close to the most attempts
	// ever in progress at once when connections are kept, growing with Requests when they are not
	// (more attempts at once than Config.MaxIdlePerTracker).
	Opened int64 `json:"connections_opened"`
	// Waits counts attempts that found every connection busy with Config.MaxConnsPerTracker open
	// and waited for one; WaitTimeouts those whose wait ran out, so the call moved on.
	Waits        int64 `json:"connection_waits"`
	WaitTimeouts int64 `json:"connection_wait_timeouts"`
}

// Stats returns a snapshot of every tracker's health and counters.
func (p *Pool) Stats() PoolStats {
	now := p.now()
	s := PoolStats{Trackers: make([]TrackerStats, 0, len(p.trackers))}
	for _, t := range p.trackers {
		t.mu.Lock()
		ts := TrackerStats{
			Addr:                t.addr,
			Up:                  !now.Before(t.downUntil),
			ConsecutiveFailures: t.fails,
			Idle:                len(t.idle),
		}
		if !ts.Up {
			ts.DownUntil = t.downUntil
		}
		t.mu.Unlock()
		ts.Requests = t.requests.Load()
		ts.Failures = t.failures.Load()
		ts.InFlight = t.inflight.Load()
		ts.Opened = t.opened.Load()
		ts.Waits = t.waits.Load()
		ts.WaitTimeouts = t.timeouts.Load()
		s.Trackers = append(s.Trackers, ts)
	}
	return s
}
