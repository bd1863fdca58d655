package tracker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/mogway/mogway/internal/netx"
	"github.com/mogway/mogway/tracker/mogproto"
)

// conn is one client connection. Its goroutine reads a line, answers it and only then reads the
// next, so replies leave strictly in request order (spec 2.5) however many lines a client pipelines.
type conn struct {
	s  *Server
	nc net.Conn
	ip net.IP
	br *bufio.Reader
	// ipText is ip as !recent prints it, formatted once per connection rather than per query.
	ipText string

	// held keeps a reply for the next read of the connection, which writes it and then waits for
	// the next query without a read that finds nothing: a system call fewer per query. Its mutex
	// serialises every write (replies and !watch lines) and guards wdl.
	held netx.Held
	wdl  time.Time // the write deadline last set
	buf  []byte    // reply buffer, owned by the connection goroutine

	// req, q and res are the decoded request, the query and room for the reply's arguments of
	// the line being answered, reused from line to line by the connection goroutine.
	req mogproto.Request
	q   query
	res mogproto.Args
}

func (s *Server) newConn(nc net.Conn) *conn {
	c := &conn{s: s, nc: nc, res: make(mogproto.Args, 0, 1+len(pathNames))}
	c.held.Init(nc)
	c.br = bufio.NewReaderSize(&c.held, 4096) // writes a held reply first (see netx.Held.Read)
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		c.ip = a.IP
	}
	c.ipText = ipString(c.ip)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isStopped() {
		return nil
	}
	s.conns[c] = struct{}{}
	s.stats.conns.Add(1)
	return c
}

func (s *Server) dropConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	delete(s.watchers, c)
	delete(s.pending, c)
	s.mu.Unlock()
	s.stats.conns.Add(-1)
	c.held.Flush() //nolint:errcheck // closing anyway
	c.nc.Close()
}

// maxKeptReplyBuffer is the largest reply buffer a connection keeps for reuse.
const maxKeptReplyBuffer = 64 << 10

// errLineTooLong reports a request line longer than max_line; the rest of it was discarded.
var errLineTooLong = errors.New("tracker: request line too long")

// readLine returns the next line without its LF (a CR before it is kept for the parser to drop).
// A line longer than max bytes is consumed up to its LF and reported as errLineTooLong. The
// returned slice is valid until the next call.
func (c *conn) readLine(max int) ([]byte, error) {
	var line []byte
	tooLong := false
	for {
		frag, err := c.br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(frag) > max+2 { // +2: the CRLF is not part of the limit
				tooLong, line = true, nil
			} else if err == nil && line == nil {
				line = frag // common case: the whole line is in the buffer
			} else {
				line = append(line, frag...)
			}
		}
		switch {
		case err == nil:
			if !tooLong {
				content := len(line) - 1
				if content > 0 && line[content-1] == '\r' {
					content--
				}
				tooLong = content > max
			}
			if tooLong {
				return nil, errLineTooLong
			}
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return nil, err // EOF mid-line: the client vanished; the partial line is dropped
		}
	}
}

// serveConn runs the connection until the client leaves, the server stops or ctx ends.
func (s *Server) serveConn(ctx context.Context, c *conn) {
	defer s.dropConn(c)
	for {
		if ctx.Err() != nil || s.isStopped() {
			return
		}
		line, err := c.readLine(int(s.cfg.MaxLine))
		if errors.Is(err, errLineTooLong) {
			s.stats.tooLong.Add(1)
			e := &mogproto.Error{Code: mogproto.ErrBadParams, Message: "Request line too long (limit " + strconv.FormatInt(int64(s.cfg.MaxLine), 10) + " bytes)"}
			if !c.reply(mogproto.AppendErr(c.buf[:0], e, ""), time.Now()) {
				return
			}
			continue
		}
		if err != nil {
			return
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			continue // empty lines get no reply (spec 2.1)
		}
		if line[0] == '!' {
			if !c.reply(s.admin(c, string(line)), time.Now()) {
				return
			}
			continue
		}
		out, now, ok := s.query(ctx, c, string(line))
		if !ok || !c.reply(out, now) {
			return
		}
	}
}

// reply writes one reply; false means the connection is unusable. now is the current time, as
// far as the write deadline is concerned.
func (c *conn) reply(b []byte, now time.Time) bool {
	c.held.Mu.Lock()
	defer c.held.Mu.Unlock()
	c.armWrite(now)
	var err error
	if c.held.Enabled() && c.br.Buffered() == 0 && len(b) <= maxKeptReplyBuffer {
		// Nothing pipelined: the next read comes at once and writes the reply (see conn.held).
		// The reply buffer is not written to again before then.
		c.held.Hold(b)
		c.held.SetOn(true) //nolint:errcheck // turning on writes nothing
	} else {
		err = c.held.FlushLocked()
		if err == nil {
			_, err = c.nc.Write(b)
		}
	}
	c.buf = b[:0]
	if cap(c.buf) > maxKeptReplyBuffer {
		c.buf = nil // a huge reply (list_keys, list_fids) must not pin its buffer to an idle connection
	}
	return err == nil
}

// writeDeadlineSlack is how far a connection's write deadline may lag behind defaultWriteTimeout:
// it is moved only once it is that much nearer, so a busy connection does not re-arm its timer for
// every reply. A write still fails after between 119 and 120 seconds without progress.
const writeDeadlineSlack = time.Second

// armWrite makes sure the next write has about defaultWriteTimeout to finish. c.held.Mu is held.
func (c *conn) armWrite(now time.Time) {
	if c.wdl.Sub(now) < defaultWriteTimeout-writeDeadlineSlack {
		c.wdl = now.Add(defaultWriteTimeout)
		c.nc.SetWriteDeadline(c.wdl)
	}
}

// writeAsync writes an unsolicited line (!watch) between replies.
func (c *conn) writeAsync(s string) {
	c.held.Mu.Lock()
	defer c.held.Mu.Unlock()
	c.armWrite(time.Now())
	if err := c.held.FlushLocked(); err != nil {
		c.nc.Close()
		return
	}
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.nc.Close()
	}
}

// query runs one query line: it waits for the start-up gate and a free query slot, then dispatches.
// ok is false when the connection should be closed without a reply (server stopping). end is when
// the reply was ready: the clock is read twice for a query that did not wait, once on either side.
func (s *Server) query(ctx context.Context, c *conn, line string) (out []byte, end time.Time, ok bool) {
	start := time.Now()
	waited, ok := s.takeSlot(ctx, c, line)
	if !ok {
		return nil, start, false
	}
	s.stats.processing.Add(1)
	defer func() {
		<-s.slots
		s.stats.processing.Add(-1)
	}()

	// A query runs to completion even when a graceful stop begins; only Close abandons it.
	began := start
	if waited {
		began = time.Now()
	}
	out = s.dispatch(s.stopCtx, c, line, c.buf[:0])
	end = time.Now()
	s.countCommand(line, out, end.Sub(began))
	s.stats.queries.Add(1)
	s.recordRecent(recentQuery{ip: c.ipText, line: line, dur: end.Sub(start), at: start})
	return out, end, true
}

// takeSlot waits for the start-up gate and a free query slot; ok false means the server is
// stopping. A query that finds a slot free at once is never listed as pending (`!queue`), and
// did not wait.
func (s *Server) takeSlot(ctx context.Context, c *conn, line string) (waited, ok bool) {
	if s.gateOpen() && !s.isStopped() {
		select {
		case s.slots <- struct{}{}:
			return false, true
		default:
		}
	}
	s.mu.Lock()
	s.pending[c] = line
	s.mu.Unlock()
	s.stats.pending.Add(1)
	defer func() {
		s.stats.pending.Add(-1)
		s.mu.Lock()
		delete(s.pending, c)
		s.mu.Unlock()
	}()
	if !s.gateOpen() {
		select {
		case <-s.gate:
		case <-s.stopped:
		case <-ctx.Done():
		}
	}
	if !s.gateOpen() || s.isStopped() {
		return true, false
	}
	select {
	case s.slots <- struct{}{}:
		return true, true
	default:
	}
	s.stats.outOfWorkers.Add(1)
	select {
	case s.slots <- struct{}{}:
		return true, true
	case <-s.stopped:
		return true, false
	}
}

func (s *Server) gateOpen() bool {
	select {
	case <-s.gate:
		return true
	default:
		return false
	}
}

func ipString(ip net.IP) string {
	if ip == nil {
		return "-"
	}
	return ip.String()
}

// dispatch decodes a query line, runs its command and appends the reply line to dst. It never
// panics: a panic in a command is logged and answered `ERR failure`. With c, it decodes into the
// connection's request and query, which the connection goroutine alone uses.
func (s *Server) dispatch(ctx context.Context, c *conn, line string, dst []byte) (out []byte) {
	var req *mogproto.Request
	var q *query
	if c != nil {
		req, q = &c.req, &c.q
	} else {
		req, q = new(mogproto.Request), new(query)
	}
	if err := req.Parse(line); err != nil {
		s.stats.errors.Add(1)
		return mogproto.AppendErr(dst, mogproto.NewError(mogproto.ErrUnknownCommand), "")
	}
	callid, hasCallid := req.Args.Lookup("callid")
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("query panicked", "cmd", req.Cmd, "panic", r, "stack", string(debug.Stack()))
			s.broadcast(fmt.Sprintf("Error running command '%s': %v", req.Cmd, r))
			s.stats.errors.Add(1)
			out = mogproto.AppendErr(dst, mogproto.NewError(mogproto.ErrFailure), callid)
		}
	}()
	h, ok := commands[req.Cmd]
	if !ok {
		s.stats.errors.Add(1)
		return mogproto.AppendErr(dst, mogproto.NewError(mogproto.ErrUnknownCommand), callid)
	}
	*q = query{
		s:    s,
		ctx:  ctx,
		args: req.Args,
		cl:   client{altZone: req.Args.Get("zone") == "alt"},
	}
	if c != nil {
		q.cl.ip, q.res = c.ip, c.res[:0]
	}
	res, err := h(q)
	if err != nil {
		var pe *mogproto.Error
		if !errors.As(err, &pe) {
			s.log.Error("query failed", "cmd", req.Cmd, "err", err)
			s.broadcast(fmt.Sprintf("Error running command '%s': %v", req.Cmd, err))
			pe = mogproto.NewError(mogproto.ErrFailure)
		}
		s.stats.errors.Add(1)
		return mogproto.AppendErr(dst, pe, callid)
	}
	if hasCallid {
		res.Set("callid", callid)
	}
	return mogproto.AppendOK(dst, res)
}
