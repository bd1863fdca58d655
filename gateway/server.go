// Package gateway is the HTTP front of a MogileFS cluster: it replaces nginx with the
// nginx_mogilefs_module (tracker routes) and nginx proxy_pass to upstream groups (upstream routes,
// such as a FastDFS layout) with one fasthttp server.
//
// A tracker route asks the tracker pool for a key's paths (cached briefly, concurrent lookups
// collapsed), then reads the first copy that answers, failing over before the first byte and
// continuing a broken body from another copy with a Range request. An upstream route does the same
// across a group of servers with nginx's max_fails/fail_timeout and proxy_next_upstream rules.
// Tracker routes may also accept PUT (create_open, stream, create_close) and DELETE.
//
// With a cache (package cache), GET and HEAD on routes are answered from it (cache.go): one fill per
// key runs the same failover fetch and feeds every client at once. With purge (package purge), requests
// under the purge path go to the purge service, and PUT and DELETE through a route purge what they
// replaced.
//
// The gateway's configuration section:
//
//	gateway:
//	  listen: ":80"
//	  trackers: ["10.0.0.1:7001", "10.0.0.2:7001"]
//	  cache:
//	    memory: 256MiB
//	    disk: {path: /var/cache/mogway, max_size: 10GiB}
//	  purge:
//	    allow: [127.0.0.1/32]
//	  routes:
//	    - prefix: /download/
//	      domain: photos
//	    - prefix: /group1/M00/
//	      servers: [{addr: "10.0.0.5:8888"}, {addr: "10.0.0.6:8888"}]
//
// docs/gateway.md documents every key.
package gateway

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/mogway/mogway/cache"
	"github.com/mogway/mogway/purge"
)

// Deps are the gateway's dependencies besides its configuration.
type Deps struct {
	// Tracker answers tracker routes. Nil: the gateway builds a tracker pool from Config.Trackers and
	// rebuilds it when a reload changes them; a Tracker passed here is kept across reloads and never
	// closed by the gateway.
	Tracker Tracker
	// AccessLog, when set, receives the access log instead of Config.AccessLog.
	AccessLog io.Writer
	// Now is the clock of passive health checks, the path cache and the access log. Nil: time.Now.
	Now func() time.Time
}

// Server is a gateway. Its methods are safe for concurrent use. Create it with New, run it with
// Serve, and change its routes with Reload.
type Server struct {
	log   *slog.Logger
	deps  Deps
	now   func() time.Time
	nodes *nodes
	stats counters

	state atomic.Pointer[state]
	alog  atomic.Pointer[accessLog]

	reloadMu sync.Mutex // serialises Reload
	started  time.Time

	metrics   gatewayMetrics
	cache     *cache.Cache   // nil without Config.Cache
	purger    *purge.Service // nil without Config.Purge
	closeOnce sync.Once
}

// state is one configuration in force. Requests hold a reference while they use its tracker, so a
// reload can close a tracker pool it replaced once the last request using it is done.
type state struct {
	cfg         Config // with defaults
	table       *table
	tracker     Tracker
	ownTracker  io.Closer // a pool the gateway built, closed when the state retires
	paths       *pathCache
	statusAllow []netip.Prefix
	trusted     []netip.Prefix // real_ip.trusted_proxies
	budget      time.Duration  // bound of one tracker command across every tracker

	refs      atomic.Int64
	retired   atomic.Bool
	closeOnce sync.Once
}

func (st *state) release() {
	if st.refs.Add(-1) == 0 && st.retired.Load() {
		st.close()
	}
}

func (st *state) retire() {
	st.retired.Store(true)
	if st.refs.Load() == 0 {
		st.close()
	}
}

func (st *state) close() {
	st.closeOnce.Do(func() {
		if st.ownTracker != nil {
			st.ownTracker.Close() //nolint:errcheck // only idle connections are closed
		}
	})
}

// New validates cfg and builds a gateway. It binds nothing: Serve takes a listener.
func New(cfg Config, deps Deps, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{log: log, deps: deps, now: deps.Now}
	if s.now == nil {
		s.now = time.Now
	}
	s.initMetrics()
	d := cfg.withDefaults()
	s.nodes = newNodes(nodeOptions{connect: d.Timeouts.StorageConnect.D(), idle: d.Timeouts.StorageIdle.D(),
		maxConns: d.Limits.MaxConnsPerNode, serverHdr: d.ServerName})
	if err := s.openCache(d, deps); err != nil {
		return nil, err
	}
	st, err := s.build(d, nil)
	if err != nil {
		s.Close() //nolint:errcheck // the build error is the one to report
		return nil, err
	}
	al, err := openAccessLog(d.AccessLog, deps.AccessLog, s.now)
	if err != nil {
		st.close()
		s.Close() //nolint:errcheck // the access log error is the one to report
		return nil, fmt.Errorf("gateway: access_log: %w", err)
	}
	s.alog.Store(al)
	s.state.Store(st)
	s.started = s.now()
	return s, nil
}

// build compiles a configuration (with defaults). prev, when given, lends its tracker pool and path
// cache if the trackers did not change.
func (s *Server) build(cfg Config, prev *state) (*state, error) {
	st := &state{cfg: cfg, table: newTable(cfg.Routes, s.nodes, s.cache != nil),
		statusAllow: parseNets(cfg.StatusAllow), trusted: parseNets(cfg.RealIP.TrustedProxies)}
	s.metrics.bind(st.table)
	n := max(len(cfg.Trackers), 1)
	st.budget = time.Duration(n) * (cfg.Timeouts.TrackerConnect.D() + cfg.Timeouts.TrackerRead.D())
	sameTrackers := prev != nil && slices.Equal(prev.cfg.Trackers, cfg.Trackers) &&
		prev.cfg.Timeouts.TrackerConnect == cfg.Timeouts.TrackerConnect &&
		prev.cfg.Timeouts.TrackerRead == cfg.Timeouts.TrackerRead
	switch {
	case s.deps.Tracker != nil:
		st.tracker = s.deps.Tracker
	case sameTrackers:
		st.tracker, st.ownTracker = prev.tracker, prev.ownTracker
	case len(cfg.Trackers) > 0:
		pt, err := newPoolTracker(cfg, s.log, &s.metrics.tracker)
		if err != nil {
			return nil, fmt.Errorf("gateway: tracker pool: %w", err)
		}
		st.tracker, st.ownTracker = pt, pt
	}
	if prev != nil && sameTrackers && prev.cfg.PathCache == cfg.PathCache {
		st.paths = prev.paths
	} else {
		st.paths = newPathCache(cfg.PathCache, s.now)
	}
	return st, nil
}

// acquire returns the state in force with a reference held; release it when done. A state retired
// by a reload is skipped for its successor; the last state, retired when Serve returns, is still
// handed out (its closed pool answers 503) to a request that slipped past the shutdown.
func (s *Server) acquire() *state {
	for {
		st := s.state.Load()
		st.refs.Add(1)
		if !st.retired.Load() || s.state.Load() == st {
			return st
		}
		st.release()
	}
}

// cfgNow is the configuration in force, for settings read outside a request's state.
func (s *Server) cfgNow() *Config { return &s.state.Load().cfg }

// Reload validates cfg and swaps the routing table in atomically: requests in flight finish with the
// configuration they started with, and new requests see the new one. On error the old configuration
// keeps serving. It also reopens a file access log (for logrotate). Settings of the listener itself
// (listen, timeouts, limits, server_name) take effect at the next start; Reload logs when they differ.
func (s *Server) Reload(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	old := s.state.Load()
	d := cfg.withDefaults()
	st, err := s.build(d, old)
	if err != nil {
		return err
	}
	oldLog := s.alog.Load()
	if s.deps.AccessLog == nil && d.AccessLog != old.cfg.AccessLog {
		al, err := openAccessLog(d.AccessLog, nil, s.now)
		if err != nil {
			if st.ownTracker != old.ownTracker {
				st.close()
			}
			return fmt.Errorf("gateway: access_log: %w", err)
		}
		s.alog.Store(al)
		oldLog.close() //nolint:errcheck // lines already written stay; a failing disk is logged by flush
	} else if err := oldLog.reopen(); err != nil {
		s.log.Error("cannot reopen the access log", "path", d.AccessLog, "err", err)
	}
	if d.Listen != old.cfg.Listen || d.Timeouts != old.cfg.Timeouts || d.Limits != old.cfg.Limits ||
		d.ServerName != old.cfg.ServerName {
		s.log.Warn("listen, timeouts, limits and server_name changes take effect at the next restart")
	}
	if !reflect.DeepEqual(d.Cache, old.cfg.Cache) || !reflect.DeepEqual(d.Purge, old.cfg.Purge) {
		s.log.Warn("cache and purge changes take effect at the next restart; routes' cache settings apply now")
		// The table was compiled for the cache the gateway runs with, not the one in the new file.
	}
	s.state.Store(st)
	if old.ownTracker != st.ownTracker {
		old.retire()
	}
	s.stats.reloads.Add(1)
	return nil
}

// writeBufferSize is the per-connection response buffer, held only while a response is written.
const writeBufferSize = 64 << 10

// Serve answers HTTP on ln until ctx ends, then stops gracefully: it stops accepting, lets requests in
// flight finish within the shutdown timeout, flushes the access log and closes the tracker pool it
// built. It closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	cfg := s.state.Load().cfg
	srv := &fasthttp.Server{
		Handler:         s.handle,
		ErrorHandler:    s.badRequest,
		ContinueHandler: s.allowContinue,
		HeaderReceived:  s.refuseOversized,
		Name:            cfg.ServerName,
		Concurrency:     cfg.Limits.MaxConnections,
		ReadBufferSize:  int(cfg.Limits.MaxHeaderSize),
		// Bodies are copied to the client through this buffer: fasthttp's 4 KiB default costs a
		// write system call per 4 KiB (a 1 MiB cache hit measured 7× slower than nginx in bench/).
		WriteBufferSize:               writeBufferSize,
		ReadTimeout:                   cfg.Timeouts.ClientRead.D(),
		IdleTimeout:                   cfg.Timeouts.KeepAlive.D(),
		MaxRequestBodySize:            64 << 10, // larger bodies stream (StreamRequestBody)
		StreamRequestBody:             true,
		DisableKeepalive:              cfg.Limits.DisableKeepAlive,
		DisablePreParseMultipartForm:  true,
		NoDefaultContentType:          true,
		CloseOnShutdown:               true,
		DisableHeaderNamesNormalizing: false,
		Logger:                        fasthttpLogger{s.log},
	}
	flushDone := make(chan struct{})
	flushStop := make(chan struct{})
	go func() {
		defer close(flushDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-flushStop:
				return
			case <-t.C:
				if err := s.alog.Load().flush(); err != nil {
					s.log.Error("access log write failed", "err", err)
				}
			}
		}
	}()
	purgeDone := make(chan struct{})
	purgeCtx, purgeStop := context.WithCancel(context.Background())
	go func() {
		defer close(purgeDone)
		if s.purger != nil {
			// Delivers journaled purges to peers that missed them; returns when purgeCtx ends.
			if err := s.purger.Run(purgeCtx); err != nil && !errors.Is(err, context.Canceled) {
				s.log.Error("purge delivery stopped", "err", err)
			}
		}
	}()
	errc := make(chan error, 1)
	go func() {
		errc <- srv.Serve(&idleListener{Listener: ln, read: cfg.Timeouts.ClientRead.D(), write: cfg.Timeouts.ClientWrite.D()})
	}()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), cfg.Timeouts.Shutdown.D())
		if serr := srv.ShutdownWithContext(sctx); serr != nil && !errors.Is(serr, context.DeadlineExceeded) &&
			!errors.Is(serr, net.ErrClosed) {
			err = serr
		}
		cancel()
		// ShutdownWithContext does nothing when fasthttp's Serve has not registered the listener
		// yet (a stop right after the start); Serve would then run forever. Closing the listener
		// ends it in every case.
		ln.Close() //nolint:errcheck // already closed by the shutdown in the usual case
		if serr := <-errc; err == nil && serr != nil && !errors.Is(serr, net.ErrClosed) {
			err = serr
		}
	}
	purgeStop()
	<-purgeDone
	close(flushStop)
	<-flushDone
	if cerr := s.alog.Load().close(); cerr != nil {
		s.log.Error("access log close failed", "err", cerr)
	}
	s.state.Load().retire()
	s.nodes.closeIdle()
	if cerr := s.Close(); cerr != nil {
		s.log.Error("cache close failed", "err", cerr)
	}
	return err
}

// fasthttpLogger sends fasthttp's own messages to slog.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Warn(fmt.Sprintf(format, args...), "component", "fasthttp")
}

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

func (c *serverConn) SetReadDeadline(t time.Time) error {
	c.rd, c.ra = t, t
	return c.Conn.SetReadDeadline(t)
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
	}
	return c.Conn.Read(p)
}

// Write bounds each write by the idle time. Responses on a kept-alive connection mostly reuse the
// deadline of the one before (see idleSlack), so a small answer costs no timer update.
func (c *serverConn) Write(p []byte) (int, error) {
	if c.write > 0 {
		if d, ok := extend(c.wa, c.wd, time.Now(), c.write); !ok {
			if err := c.Conn.SetWriteDeadline(d); err != nil {
				return 0, err
			}
			c.wa = d
		}
	}
	return c.Conn.Write(p)
}

// badRequest answers requests fasthttp could not parse.
func (s *Server) badRequest(ctx *fasthttp.RequestCtx, err error) {
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		plainError(ctx, fasthttp.StatusRequestTimeout, "request timeout")
		return
	}
	s.stats.badRequests.Add(1)
	plainError(ctx, fasthttp.StatusBadRequest, "bad request")
}

// allowContinue decides "Expect: 100-continue" from the request head alone, so a client does not send
// a body that would be refused: too large, a method the route does not allow, or a wrong token
// (network checks need the connection and run in the handler). A refusal is answered 417.
func (s *Server) allowContinue(h *fasthttp.RequestHeader) bool {
	st := s.state.Load()
	if int64(h.ContentLength()) > int64(st.cfg.Limits.MaxUploadSize) {
		return false
	}
	rp, err := parseRequestPath(h.RequestURI())
	if err != nil {
		return false
	}
	rt := st.table.match(rp.clean)
	if rt == nil || !rt.allows(string(h.Method())) {
		return false
	}
	return rt.tokenOK(h.Peek("Authorization"))
}

// tokenOK reports whether an Authorization header value carries the route's token (always true for a
// route without one).
func (rt *route) tokenOK(auth []byte) bool {
	if rt.Token == "" {
		return true
	}
	tok, ok := bytes.CutPrefix(auth, []byte("Bearer "))
	return ok && subtle.ConstantTimeCompare(tok, []byte(rt.Token)) == 1
}

// plainError sets a short text/plain error answer.
func plainError(ctx *fasthttp.RequestCtx, status int, msg string) {
	ctx.Response.Reset()
	ctx.SetStatusCode(status)
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString(msg + "\n")
}

// handle is the request path: status endpoints, URI checks, routing, then the route's method.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	st := s.acquire()
	defer st.release()
	s.stats.requests.Add(1)
	client := st.clientIP(ctx)
	rec := &accessRecord{
		remote:    client,
		method:    methodString(ctx.Method()),
		uri:       string(ctx.Request.Header.RequestURI()),
		proto:     protoString(ctx.Request.Header.Protocol()),
		referer:   string(ctx.Request.Header.Referer()),
		userAgent: string(ctx.Request.Header.UserAgent()),
		cache:     "-",
		start:     time.Now(),
	}
	defer func() {
		if ctx.Request.IsBodyStream() && !rec.bodyRead {
			// fasthttp would read the unread rest of a streamed body as the next request on this
			// connection (a request smuggling hole): close it instead.
			ctx.SetConnectionClose()
		}
		rec.status = ctx.Response.StatusCode()
		s.stats.countStatus(rec.status)
		if !rec.streamed {
			if !ctx.Request.Header.IsHead() {
				rec.bytes = int64(len(ctx.Response.Body()))
			}
			s.logAccess(rec)
		}
	}()

	raw := ctx.Request.Header.RequestURI()
	rp, err := parseRequestPath(raw)
	if err != nil {
		s.stats.badRequests.Add(1)
		plainError(ctx, fasthttp.StatusBadRequest, "bad request URI")
		return
	}
	if s.builtin(ctx, st, rp.clean, client) {
		return
	}
	if s.purger != nil {
		if rest, ok := underPath(rp.clean, s.purger.Path()); ok {
			s.servePurge(ctx, rest, client)
			return
		}
	}
	rt := st.table.match(rp.clean)
	if rt == nil {
		plainError(ctx, fasthttp.StatusNotFound, "not found")
		return
	}
	rec.metrics = rt.metrics
	if st.table.match(rp.written) != rt {
		// A ".." carried the path out of the route it was written under.
		s.stats.badRequests.Add(1)
		plainError(ctx, fasthttp.StatusBadRequest, "bad request URI")
		return
	}
	method := rec.method
	if !rt.allows(method) {
		plainError(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed")
		ctx.Response.Header.Set("Allow", rt.allowed)
		return
	}
	if rt.upstream {
		if rt.cache != nil {
			uri := upstreamURI(ctx, rt, rp)
			s.serveCached(ctx, rt, rp, rec, func(head bool, rec *accessRecord) (*fetchRequest, int, string) {
				return s.upstreamRequest(rt, rp, uri, head, rec), 0, ""
			})
			return
		}
		s.serveUpstream(ctx, rt, rp, rec)
		return
	}
	key, err := deriveKey(rt.Key, rt.Prefix, rp.clean)
	if err != nil {
		s.stats.badRequests.Add(1)
		plainError(ctx, fasthttp.StatusBadRequest, "empty key")
		return
	}
	if st.tracker == nil {
		plainError(ctx, fasthttp.StatusServiceUnavailable, "no tracker configured")
		return
	}
	switch method {
	case fasthttp.MethodGet, fasthttp.MethodHead:
		if rt.cache != nil {
			s.serveCached(ctx, rt, rp, rec, func(head bool, rec *accessRecord) (*fetchRequest, int, string) {
				// The fill may run after this request's state was replaced by a reload: it takes
				// the tracker in force when it runs.
				cur := s.acquire()
				defer cur.release()
				return s.trackerRequest(cur, rt, key, head, rec)
			})
			return
		}
		s.serveTracker(ctx, st, rt, key, rec)
	case fasthttp.MethodPut:
		if s.authorized(ctx, rt, client) {
			s.upload(ctx, st, rt, key, rec)
			s.purgeAfterWrite(ctx, rp.clean)
		}
	case fasthttp.MethodDelete:
		if s.authorized(ctx, rt, client) {
			s.remove(ctx, st, rt, key)
			s.purgeAfterWrite(ctx, rp.clean)
		}
	}
}

func (s *Server) logAccess(rec *accessRecord) {
	s.metrics.observe(rec)
	s.alog.Load().write(rec)
}

// methodString is string(m) without an allocation for the usual methods.
func methodString(m []byte) string {
	switch string(m) {
	case fasthttp.MethodGet:
		return fasthttp.MethodGet
	case fasthttp.MethodHead:
		return fasthttp.MethodHead
	case fasthttp.MethodPut:
		return fasthttp.MethodPut
	case fasthttp.MethodDelete:
		return fasthttp.MethodDelete
	}
	return string(m)
}

// protoString is string(p) without an allocation for HTTP/1.1 and HTTP/1.0.
func protoString(p []byte) string {
	switch string(p) {
	case "HTTP/1.1":
		return "HTTP/1.1"
	case "HTTP/1.0":
		return "HTTP/1.0"
	}
	return string(p)
}

// clientIP is the client's address: the connection's peer, or, when the peer is a trusted proxy, the
// address its real_ip header names (see realIP).
func (st *state) clientIP(ctx *fasthttp.RequestCtx) netip.Addr {
	peer := remoteIP(ctx)
	if len(st.trusted) == 0 {
		return peer
	}
	return realIP(peer, string(ctx.Request.Header.Peek(st.cfg.RealIP.Header)), st.trusted)
}

// realIP is nginx's realip with real_ip_recursive on: when peer is trusted, the header's addresses
// are walked from the right, skipping trusted ones, and the first untrusted one is the client. A
// header naming only trusted addresses gives its leftmost; a malformed entry stops the walk at the
// last good address.
func realIP(peer netip.Addr, header string, trusted []netip.Prefix) netip.Addr {
	if !inNets(trusted, peer) || header == "" {
		return peer
	}
	client := peer
	parts := strings.Split(header, ",")
	for i := len(parts) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(parts[i]))
		if err != nil {
			return client
		}
		client = a.Unmap()
		if !inNets(trusted, client) {
			return client
		}
	}
	return client
}

// remoteIP is the connection's peer address.
func remoteIP(ctx *fasthttp.RequestCtx) netip.Addr {
	if ta, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(ta.IP); ok {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}

// authorized checks a write from client against the route's networks and token, answering 403 or
// 401 itself.
func (s *Server) authorized(ctx *fasthttp.RequestCtx, rt *route, client netip.Addr) bool {
	if !rt.allowedFrom(client) {
		plainError(ctx, fasthttp.StatusForbidden, "forbidden")
		return false
	}
	if !rt.tokenOK(ctx.Request.Header.Peek("Authorization")) {
		plainError(ctx, fasthttp.StatusUnauthorized, "unauthorized")
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="mogway"`)
		return false
	}
	return true
}

// serveTracker answers GET and HEAD on a tracker route.
func (s *Server) serveTracker(ctx *fasthttp.RequestCtx, st *state, rt *route, key string, rec *accessRecord) {
	fr, status, msg := s.trackerRequest(st, rt, key, ctx.IsHead(), rec)
	if fr == nil {
		plainError(ctx, status, msg)
		return
	}
	s.fetch(ctx, fr)
}

// trackerRequest asks the tracker (or the path cache) for key's copies and returns the fetch over
// them, or the status and message to answer instead.
func (s *Server) trackerRequest(st *state, rt *route, key string, head bool, rec *accessRecord) (*fetchRequest, int, string) {
	pk := pathKey{rt.Domain, key, rt.NoVerify}
	e, hit, err := st.paths.lookup(st.tracker, st.budget, pk)
	if hit {
		s.stats.pathHits.Add(1)
	} else {
		s.stats.pathMisses.Add(1)
	}
	if err != nil {
		if trackerCode(err) == "" {
			s.stats.trackerErrors.Add(1)
			// The pool logs each tracker it marks down; one line per request would flood the log.
			s.log.Debug("tracker get_paths failed", "domain", rt.Domain, "key", key, "err", err)
		}
		status, msg := trackerAnswer(err)
		return nil, status, msg
	}
	if len(e.parsed) == 0 {
		return nil, fasthttp.StatusServiceUnavailable, "no copy available"
	}
	targets := s.pathTargets(st, e)
	if len(targets) == 0 {
		st.paths.drop(pk, e)
		return nil, fasthttp.StatusBadGateway, "no copy could be read"
	}
	tf := &trackerFetch{fetchRequest: fetchRequest{route: rt, head: head, name: key, targets: targets,
		refresh: hit, rec: rec}, s: s, st: st, key: pk}
	tf.cur.Store(e)
	tf.source = tf
	return &tf.fetchRequest, 0, ""
}

// trackerFetch is the fetch of a tracker route's key, with the path cache answer its targets came
// from. One allocation holds the request and its target source.
type trackerFetch struct {
	fetchRequest
	s   *Server
	st  *state // its paths are the path cache the answer came from
	key pathKey
	cur atomic.Pointer[pathEntry] // the answer the targets came from, dropped when one fails
}

var _ targetSource = (*trackerFetch)(nil)

// failed drops the cached answer whose copy failed.
func (tf *trackerFetch) failed(target) { tf.st.paths.drop(tf.key, tf.cur.Load()) }

// again asks the tracker for the key's paths after every cached copy failed.
func (tf *trackerFetch) again() ([]target, int, string) {
	tf.st.paths.drop(tf.key, tf.cur.Load())
	e, _, err := tf.st.paths.lookup(tf.st.tracker, tf.st.budget, tf.key)
	if err != nil {
		status, msg := trackerAnswer(err)
		return nil, status, msg
	}
	if len(e.parsed) == 0 {
		return nil, fasthttp.StatusServiceUnavailable, "no copy available"
	}
	tf.cur.Store(e)
	return tf.s.pathTargets(tf.st, e), 0, ""
}

// pathTargets turns a get_paths answer into fetch targets: nodes in good health first, in the
// tracker's order, then the ones passive health marks down.
func (s *Server) pathTargets(st *state, e *pathEntry) []target {
	now := s.now()
	h := st.cfg.Storage
	good := make([]target, 0, len(e.parsed))
	var down []target
	for _, p := range e.parsed {
		if p.host == "" {
			s.log.Warn("tracker returned a bad path", "path", p.raw)
			continue
		}
		t := target{node: s.nodes.get(p.host), health: h, uri: p.uri, etag: p.etag}
		if t.node.available(now, h) {
			good = append(good, t)
		} else {
			down = append(down, t)
		}
	}
	return append(good, down...)
}

// serveUpstream answers GET and HEAD on an upstream route.
func (s *Server) serveUpstream(ctx *fasthttp.RequestCtx, rt *route, rp requestPath, rec *accessRecord) {
	s.fetch(ctx, s.upstreamRequest(rt, rp, upstreamURI(ctx, rt, rp), ctx.IsHead(), rec))
}

// upstreamURI is the URI an upstream route sends for a request.
func upstreamURI(ctx *fasthttp.RequestCtx, rt *route, rp requestPath) string {
	var uri string
	switch {
	case rt.StripPrefix:
		uri = "/" + escapePath(strings.TrimLeft(strings.TrimPrefix(rp.clean, rt.Prefix), "/"))
		if len(rp.query) > 0 {
			uri += "?" + string(rp.query)
		}
	case rp.written == rp.clean:
		// The URI as the client wrote it, like `proxy_pass http://group;`.
		uri = string(ctx.Request.Header.RequestURI())
		if !strings.HasPrefix(uri, "/") {
			uri = string(ctx.URI().RequestURI())
		}
	default:
		uri = escapePath(rp.clean)
		if len(rp.query) > 0 {
			uri += "?" + string(rp.query)
		}
	}
	return uri
}

// upstreamRequest is the fetch of uri across an upstream route's group, in its current order.
func (s *Server) upstreamRequest(rt *route, rp requestPath, uri string, head bool, rec *accessRecord) *fetchRequest {
	return &fetchRequest{route: rt, head: head, name: rp.clean, targets: rt.group.targets(s.now(), uri), rec: rec}
}

// escapePath percent-encodes a decoded path for a request line, keeping slashes.
func escapePath(p string) string {
	return (&url.URL{Path: p}).EscapedPath()
}
