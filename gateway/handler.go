package gateway

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"net"
	"net/netip"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/mogway/mogway/internal/httpconn"
)

// badRequest answers requests fasthttp could not parse.
func (s *Server) badRequest(ctx *fasthttp.RequestCtx, err error) {
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		plainError(ctx, fasthttp.StatusRequestTimeout, "request timeout")
		return
	}
	s.stats.badRequests.Add(1)
	var small *fasthttp.ErrSmallBuffer
	if errors.As(err, &small) {
		plainError(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, "request head over limits.max_header_size")
		return
	}
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
		start:     ctx.Time(), // fasthttp read the clock just before calling the handler
	}
	defer func() {
		if ctx.Request.IsBodyStream() && !rec.bodyRead {
			// fasthttp would read the unread rest of a streamed body as the next request on this
			// connection (a request smuggling hole): close it instead.
			ctx.SetConnectionClose()
		}
		// A whole answer, or one read from the cache's memory or disk, leaves with the read of
		// the next request (httpconn.HoldAnswer); one streamed from upstream as its bytes come.
		httpconn.HoldAnswer(ctx.Conn(), !ctx.Response.IsBodyStream() || storedBody(ctx.Response.BodyStream()))
		rec.status = ctx.Response.StatusCode()
		s.stats.countStatus(rec.status)
		if !rec.streamed {
			if !ctx.Request.Header.IsHead() {
				rec.bytes = int64(len(ctx.Response.Body()))
			}
			s.logAccess(rec)
		}
	}()

	if status := httpconn.CheckRequestLine(&ctx.Request.Header); status != 0 {
		s.stats.badRequests.Add(1)
		plainError(ctx, status, fasthttp.StatusMessage(status))
		ctx.SetConnectionClose()
		return
	}
	raw := ctx.Request.Header.RequestURI()
	if string(raw) == "*" {
		// OPTIONS * (RFC 9110 section 9.3.7) asks about the server as a whole.
		ctx.Response.Header.Set("Allow", "GET, HEAD, PUT, DELETE")
		return
	}
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
	if rt.secure != nil && !s.secureLinkOK(ctx, rt, rp, client) {
		return
	}
	if rt.image != nil && (ctx.IsGet() || ctx.IsHead()) && s.serveImage(ctx, rt, rp, rec) {
		return
	}
	if rt.upstream {
		if rt.cache != nil {
			uri := upstreamURI(rt, rp, rec.uri)
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
