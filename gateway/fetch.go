package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/mogway/mogway/internal/httpsem"
)

// target is one place an entity can be read from: a storage node path from get_paths, or a server of
// an upstream group with the request's URI.
type target struct {
	node   *node
	health Health
	uri    string // path and query sent to the node
	etag   string // tracker routes: the fid's validator (fidETag), "" when the path names no fid
}

// failed counts a failed attempt on t against its node's max_fails, unless the gateway itself ran
// out of connections to the node (fasthttp.ErrNoFreeConns), which says nothing of the node.
func (t target) failed(now time.Time, err error) {
	if !errors.Is(err, fasthttp.ErrNoFreeConns) {
		t.node.fail(now, t.health)
	}
}

// fetchRequest is what a fetch needs from the client request. It is a copy, so the body stream that
// outlives the handler never touches the RequestCtx.
type fetchRequest struct {
	route   *route
	head    bool
	name    string // the entity's name (key or path) for Content-Type and downloads
	targets []target
	// source, on tracker routes, is told when a target fails (connect error, timeout, bad answer,
	// broken body) and drops the cached paths. Nil on upstream routes.
	source targetSource
	// refresh, when set, has source asked once for new targets after every target failed: tracker
	// routes whose paths came from the path cache ask the tracker again (the cached copies may be gone).
	refresh bool
	rec     *accessRecord
	// now is the gateway's clock when the targets were picked, reused for the hedge budget's count.
	now time.Time
	// own holds the targets of an upstream route of up to ownTargets servers, so a request allocates them
	// with the fetchRequest.
	own [ownTargets]target
	// ans is the answer open returns, kept here so a request allocates it with the fetchRequest.
	ans answer
}

// ownTargets is the room for targets inside a fetchRequest.
const ownTargets = 4

// targetSource is where a fetch's targets came from.
type targetSource interface {
	// failed is called when target t fails.
	failed(t target)
	// again returns new targets, or a non-zero status to answer instead (e.g. 404 after the key
	// was deleted).
	again() (targets []target, status int, msg string)
}

// Failure kinds, as nginx proxy_next_upstream names them.
type failKind int

const (
	failError failKind = iota
	failTimeout
	failInvalid
	failStatus
)

func classify(err error) failKind {
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout),
		errors.As(err, &ne) && ne.Timeout():
		return failTimeout
	}
	return failError
}

// fetch reads the entity from the first target that answers well and streams it to the client.
//
// A target is abandoned, before any byte reaches the client, when it refuses, times out, sends a
// status the route fails over on, or sends headers that cannot be served (no Content-Length where
// one is needed, a Content-Range that does not match the length). Once headers are sent, a body that
// breaks is continued from the next target with a Range request (see bodyReader); if no target can
// continue it, the client connection is cut, so a client never sees a short body under a 2xx.
//
// fetch is open followed by commit. A cache wraps the upstream read at that joint: its fill calls
// open (without the client's Range and validators), stores the answer's status and headers, and copies
// newBody into the cache; the client is then answered from the cache reader.
func (s *Server) fetch(ctx *fasthttp.RequestCtx, fr *fetchRequest) {
	h := &ctx.Request.Header
	var ph passHeaders
	var ifRange string
	plain := plainHead(h)
	if !plain {
		ph = passHeaders{
			rangeHdr: forwardRange(h.Peek("Range")),
			inm:      forwardValidator(h.Peek("If-None-Match")),
			ims:      forwardValidator(h.Peek("If-Modified-Since")),
		}
		ifRange = string(h.Peek("If-Range"))
	}
	wantRange := ph.rangeHdr
	if ifRange != "" {
		// If-Range is checked against the first answer in commit; the storage node never sees
		// validators it did not make (tracker routes invent ETags).
		ph.rangeHdr = ""
	}
	a, status, msg := s.open(fr, ph)
	if a == nil {
		plainError(ctx, status, msg)
		return
	}
	s.commit(ctx, fr, a, plain, ifRange, wantRange)
}

// passHeaders are the client request headers sent upstream.
type passHeaders struct {
	rangeHdr, inm, ims string
}

// maxValidator is the longest If-None-Match or If-Modified-Since value sent upstream. A longer one
// stays with the gateway, which answers the condition itself in commit.
const maxValidator = 1 << 10

// forwardValidator is a client's validator as sent upstream: itself, or "" when over maxValidator.
func forwardValidator(v []byte) string {
	if len(v) > maxValidator {
		return ""
	}
	return string(v)
}

// forwardRange is the Range header sent upstream for a client's: its byte ranges written out anew
// (at most httpsem.MaxRanges of them, so a few hundred bytes), or "" for anything to be ignored
// (another unit, a syntax error, too many ranges), which is then answered with the whole body as
// RFC 9110 allows. A client's Range of any size thus reaches a node within its head limit (a 5 KB
// Range used to be refused by a node whose head limit was smaller than the gateway's).
func forwardRange(h []byte) string {
	if len(h) == 0 {
		return ""
	}
	r, ok := httpsem.ParseRange(h)
	if !ok {
		return ""
	}
	b := make([]byte, 0, 48*r.Len())
	b = append(b, "bytes="...)
	for i := range r.Len() {
		if i > 0 {
			b = append(b, ',')
		}
		sp := r.At(i)
		if sp.Suffix() {
			b = append(b, '-')
			b = strconv.AppendInt(b, sp.Last, 10)
			continue
		}
		b = strconv.AppendInt(b, sp.First, 10)
		b = append(b, '-')
		if sp.Last >= 0 {
			b = strconv.AppendInt(b, sp.Last, 10)
		}
	}
	return string(b)
}

// answer is a usable upstream answer: its headers are read, its body is still on the connection.
type answer struct {
	t    target
	resp *fasthttp.Response // owned by the answer until newBody or release
	ent  entity
	rest []target // targets not tried yet, for continuing a broken body
}

// release drops an answer whose body is not wanted. A body read whole already (see buffered) leaves
// the connection clean for the next request; a streaming one is cut with its connection.
func (a *answer) release() { discard(a.resp) }

// discard releases a response whose body is not wanted: its connection goes back to the pool when the
// body was read whole (buffered), and is closed otherwise (abandon).
func discard(resp *fasthttp.Response) {
	if buffered(resp) {
		fasthttp.ReleaseResponse(resp)
		return
	}
	abandon(resp)
}

// buffered reports whether a storage answer's body was read whole before the round trip returned:
// it has a Content-Length of at most maxBufferedBody (the node's MaxResponseBodySize), or no body.
func buffered(resp *fasthttp.Response) bool {
	cl := resp.Header.ContentLength()
	return cl >= 0 && cl <= maxBufferedBody
}

// open tries fr's targets in order and returns the first usable answer. With none, it returns the
// status and message to answer instead (502 or 504, or what fr.source.again says).
func (s *Server) open(fr *fetchRequest, ph passHeaders) (*answer, int, string) {
	a, status, msg := s.openTargets(fr, ph)
	if a != nil || !fr.refresh || status == fasthttp.StatusGatewayTimeout {
		return a, status, msg
	}
	// Every copy named by a cached get_paths answer failed before the first byte: the tracker may
	// know other copies (a node died, the file was replaced or deleted), so ask it once more rather
	// than answer 502 until the cached answer expires.
	fr.refresh = false
	targets, rstatus, rmsg := fr.source.again()
	if rstatus != 0 {
		return nil, rstatus, rmsg
	}
	if len(targets) == 0 {
		return nil, status, msg
	}
	fr.targets = targets
	return s.openTargets(fr, ph)
}

// openTargets is one pass of open over fr.targets (see racer for hedged reads).
func (s *Server) openTargets(fr *fetchRequest, ph passHeaders) (*answer, int, string) {
	last := failError
	lastStatus := 0
	r := s.newRacer(fr, ph)
	defer r.finish()
	for {
		at, ok := r.result()
		if !ok {
			break
		}
		t, resp, err := at.t, at.resp, at.err
		fr.rec.addUpstream(t.node.addr, at.took)
		if err != nil {
			kind := classify(err)
			t.failed(s.now(), err)
			s.failTarget(fr, t, err)
			last = kind
			if !(kind == failTimeout && fr.route.next.timeout) && !(kind == failError && fr.route.next.error) {
				r.stop()
			}
			continue
		}
		status := resp.StatusCode()
		if fr.route.next.status[status] {
			if status >= 500 {
				t.node.fail(s.now(), t.health)
			}
			if status >= 500 || !fr.route.upstream {
				// On tracker routes a 404 is a copy the tracker should no longer name.
				s.failTarget(fr, t, fmt.Errorf("status %d", status))
			}
			if r.more() || !fr.route.upstream {
				last, lastStatus = failStatus, status
				discard(resp)
				continue
			}
			// nginx passes the last server's answer through when no server is left.
		}
		// On tracker routes copies of one fid on different nodes carry different node ETags
		// (mtime-based); the fid names the bytes, so clients get one validator (t.etag) whichever
		// copy answers.
		ent, ok := entityOf(resp, fr.head, t.etag)
		if !ok {
			t.node.fail(s.now(), t.health)
			s.failTarget(fr, t, errors.New("invalid response headers"))
			abandon(resp)
			last = failInvalid
			if !fr.route.next.invalidHeader {
				r.stop()
			}
			continue
		}
		if status < 500 {
			t.node.succeed()
		}
		if at.i > 0 {
			s.stats.failovers.Add(1)
		}
		if at.hedge {
			s.stats.hedgesWon.Add(1)
		}
		r.logHedge(fr.rec, &at)
		fr.ans = answer{t: t, resp: resp, ent: ent, rest: r.rest()}
		return &fr.ans, 0, ""
	}
	r.logHedge(fr.rec, nil)
	s.stats.upstreamFailed.Add(1)
	switch {
	case last == failTimeout:
		return nil, fasthttp.StatusGatewayTimeout, "upstream timed out"
	case last == failStatus && fr.route.upstream:
		return nil, fasthttp.StatusBadGateway, "upstream answered " + strconv.Itoa(lastStatus)
	}
	return nil, fasthttp.StatusBadGateway, "no copy could be read"
}

func (s *Server) failTarget(fr *fetchRequest, t target, err error) {
	if fr.source != nil {
		fr.source.failed(t)
	}
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("upstream failed", "addr", t.node.addr, "uri", t.uri, "err", err)
	}
}

// roundTrip sends one GET or HEAD to t and reads the response headers into resp; a body too long to
// be read whole stays on the connection (resp.BodyStream) for the caller to stream or close.
func (s *Server) roundTrip(t target, head bool, ph passHeaders, resp *fasthttp.Response) error {
	return t.node.get(&getRequest{uri: t.uri, head: head, ph: ph, timeout: s.cfgNow().Timeouts.StorageFirstByte.D()}, resp)
}

// entity describes the bytes of an answer: which part of which whole.
type entity struct {
	length   int64 // Content-Length, -1 when unknown (chunked or close-delimited)
	first    int64 // offset of the first byte within the whole
	total    int64 // size of the whole, -1 when unknown
	etag     string
	modified string
}

// entityOf checks an answer's framing: a 200 or 206 with a body must say how long it is, and a 206's
// Content-Range must agree with its Content-Length. etag, when not empty, replaces the answer's ETag.
func entityOf(resp *fasthttp.Response, head bool, etag string) (entity, bool) {
	e := entity{length: int64(resp.Header.ContentLength()), total: -1}
	// The validators as one string (one allocation), then split.
	lm := resp.Header.Peek("Last-Modified")
	if etag == "" {
		tag := resp.Header.Peek("ETag")
		both := string(tag) + string(lm)
		e.etag, e.modified = both[:len(tag)], both[len(tag):]
	} else {
		e.etag, e.modified = etag, string(lm)
	}
	if e.length < 0 {
		e.length = -1
	}
	switch resp.StatusCode() {
	case fasthttp.StatusOK:
		if e.length >= 0 {
			e.total = e.length
		}
	case fasthttp.StatusPartialContent:
		first, last, total, ok := httpsem.ParseContentRange(resp.Header.Peek("Content-Range"))
		if !ok || (e.length >= 0 && !head && last-first+1 != e.length) {
			return e, false
		}
		e.first, e.total = first, total
		if e.length < 0 {
			e.length = last - first + 1
		}
	}
	return e, true
}

// hopHeader reports whether a field of a storage answer (its name k as fasthttp normalises it) is not
// copied to the client: hop-by-hop (RFC 9110 section 7.6.1), or one the gateway sets itself. k is the
// name as fasthttp's bytes or as a cached answer's string, compared without a copy either way.
func hopHeader[K string | []byte](k K) bool {
	switch string(k) {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Te", "Trailer", "Upgrade",
		"Proxy-Authenticate", "Content-Length", "Server", "Date", "Content-Type":
		return true
	}
	return false
}

// commit sends an answer's status and headers to the client and streams its body. It owns a. plain
// is the client request's plainHead: it has no preconditions to evaluate.
func (s *Server) commit(ctx *fasthttp.RequestCtx, fr *fetchRequest, a *answer, plain bool, ifRange, wantRange string) {
	resp, ent := a.resp, a.ent
	status := resp.StatusCode()
	out := &ctx.Response
	resp.Header.VisitAll(func(k, v []byte) {
		if !hopHeader(k) {
			out.Header.AddBytesKV(k, v)
		}
	})
	if ent.etag != "" {
		out.Header.Set("ETag", ent.etag)
	}
	ok := status == fasthttp.StatusOK || status == fasthttp.StatusPartialContent || status == fasthttp.StatusNotModified
	if ok {
		s.decorate(ctx, fr.route, fr.name, resp.Header.ContentType())
		if status == fasthttp.StatusNotModified {
			// The node's 304 reads like the gateway's own (preconditionsFail): the route's caching
			// headers and validators, no representation metadata.
			out.Header.Del("Content-Type")
			out.Header.Del("Content-Disposition")
		}
	} else if ct := resp.Header.ContentType(); len(ct) > 0 {
		out.Header.SetContentTypeBytes(ct)
	}
	out.SetStatusCode(status)

	// Preconditions are evaluated before any Range (RFC 9110 section 13.2.2), so on a 206 too.
	if !plain {
		val := validators(ent.etag, ent.modified)
		cond := httpsem.ConditionsOf(&ctx.Request.Header)
		if (status == fasthttp.StatusOK || status == fasthttp.StatusPartialContent) && preconditionsFail(ctx, &cond, val) {
			a.release()
			return
		}
		// A Range whose If-Range still matches is asked again now that the validators are known.
		if status == fasthttp.StatusOK && wantRange != "" && ifRange != "" && !fr.head &&
			cond.RangeApplies(val) && ent.total >= 0 {
			a.release()
			out.Reset()
			s.refetchRange(ctx, fr, a.t, a.rest)
			return
		}
	}

	if fr.head || status == fasthttp.StatusNotModified || status == fasthttp.StatusNoContent || status < 200 {
		if ent.length >= 0 {
			out.Header.SetContentLength(int(ent.length))
		}
		out.SkipBody = true
		a.release()
		return
	}
	if cl := resp.Header.ContentLength(); buffered(resp) && int64(cl) == ent.length {
		// A body this small was read whole before the round trip returned (see node.get), so a
		// copy that broke within it was already failed over. Copying it into the answer costs
		// less than streaming it. (Swapping the two responses' body buffers instead would skew
		// fasthttp's buffer pool, which sizes its buffers by their length when put back.) The
		// length is checked again: never a short body under a 2xx.
		out.ResetBody()
		err := resp.BodyWriteTo(out.BodyWriter())
		if err != nil || len(out.Body()) != cl {
			abandon(resp)
			s.stats.aborted.Add(1)
			plainError(ctx, fasthttp.StatusBadGateway, "no copy could be read")
			return
		}
		fasthttp.ReleaseResponse(resp)
		return
	}
	rec := fr.rec
	rec.streamed = true
	br := s.newBody(fr, a, func(sent int64, err error) {
		rec.bytes = sent
		if err != nil && s.log.Enabled(context.Background(), slog.LevelDebug) {
			s.log.Debug("response body cut", "uri", rec.uri, "sent", sent, "err", err)
		}
		s.logAccess(rec)
	})
	ctx.SetBodyStream(br, int(ent.length))
}

// newBody returns the body of a as a reader that continues from a's remaining targets when the
// current one breaks (see bodyReader). It takes over a.resp. onClose, when set, runs once when the
// reader is closed, with the bytes read and the error that ended the transfer (nil when complete).
func (s *Server) newBody(fr *fetchRequest, a *answer, onClose func(sent int64, err error)) *bodyReader {
	status := a.resp.StatusCode()
	br := &bodyReader{
		s:       s,
		fr:      fr,
		cur:     a.t,
		resp:    a.resp,
		r:       bodyOf(a.resp),
		pos:     a.ent.first,
		end:     a.ent.first + a.ent.length - 1,
		ent:     a.ent,
		rest:    a.rest,
		resume:  a.ent.length >= 0 && (status == fasthttp.StatusOK || status == fasthttp.StatusPartialContent),
		stall:   s.cfgNow().Timeouts.StorageStall.D(),
		onClose: onClose,
	}
	a.resp = nil
	br.boundStall()
	return br
}

// bodyOf is the body of an upstream answer: its stream, or the body fasthttp read whole (buffered).
func bodyOf(resp *fasthttp.Response) io.Reader {
	if bs := resp.BodyStream(); bs != nil {
		return bs
	}
	return bytes.NewReader(resp.Body())
}

// refetchRange repeats a request with its Range once If-Range matched the current validators.
func (s *Server) refetchRange(ctx *fasthttp.RequestCtx, fr *fetchRequest, t target, rest []target) {
	targets := append([]target{t}, rest...)
	cp := *fr
	cp.targets = targets
	ctx.Request.Header.Del("If-Range")
	s.fetch(ctx, &cp)
}

// decorate sets the headers a route adds to a successful answer.
// upstreamCT is the Content-Type the upstream answer carried.
func (s *Server) decorate(ctx *fasthttp.RequestCtx, rt *route, name string, upstreamCT []byte) {
	out := &ctx.Response.Header
	if rt.ContentType == "upstream" {
		if len(upstreamCT) > 0 {
			out.SetContentTypeBytes(upstreamCT)
		}
	} else {
		out.SetContentType(httpsem.ContentType(name))
	}
	switch {
	case rt.CacheControl != "":
		out.Set("Cache-Control", rt.CacheControl)
	case rt.expires > 0:
		out.Set("Cache-Control", "max-age="+strconv.FormatInt(int64(rt.expires/time.Second), 10))
		var buf [32]byte
		out.SetBytesV("Expires", httpsem.AppendDate(buf[:0], s.now().Add(rt.expires)))
	}
	if cd := disposition(rt.Download, ctx.QueryArgs(), name); cd != "" {
		out.Set("Content-Disposition", cd)
	}
}

// errBodyBroken ends a body that no target could continue; fasthttp then closes the client
// connection short of Content-Length, so the client sees a failed transfer, never a short success.
var errBodyBroken = errors.New("gateway: body broken and no copy could continue it")

// bodyReader streams an upstream body to the client. When the current upstream breaks, it continues
// from the next target with "Range: bytes=<pos>-<end>", accepting only a 206 for exactly that range of
// the same whole: the same total size, and on upstream routes (whose servers are not known to hold one
// immutable fid) the same ETag and Last-Modified when both answers carry them. fasthttp reads it from one
// goroutine and closes it through CloseWithError.
type bodyReader struct {
	s        *Server
	fr       *fetchRequest
	cur      target
	resp     *fasthttp.Response
	r        io.Reader
	pos, end int64 // next byte and last byte wanted, offsets within the whole
	ent      entity
	rest     []target
	resume   bool
	stall    time.Duration // bound of a wait for body bytes while another target could continue
	sent     int64
	onClose  func(sent int64, err error)

	closeOnce sync.Once
}

func (b *bodyReader) Read(p []byte) (int, error) {
	for {
		if b.ent.length >= 0 && b.pos > b.end {
			return 0, io.EOF
		}
		if b.r == nil {
			if err := b.continueFromNext(); err != nil {
				return 0, err
			}
		}
		if b.ent.length >= 0 && int64(len(p)) > b.end-b.pos+1 {
			p = p[:b.end-b.pos+1]
		}
		n, err := b.r.Read(p)
		b.pos += int64(n)
		b.sent += int64(n)
		if err == nil || (err == io.EOF && (b.ent.length < 0 || b.pos > b.end)) {
			if n == 0 && err == io.EOF {
				return 0, io.EOF
			}
			return n, nil
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if !b.resume {
			b.s.stats.aborted.Add(1)
			return n, err
		}
		b.cur.node.fail(b.s.now(), b.cur.health)
		b.s.failTarget(b.fr, b.cur, err)
		b.release()
		if n > 0 {
			return n, nil
		}
	}
}

// continueFromNext finds a target that serves the rest of the body.
func (b *bodyReader) continueFromNext() error {
	for len(b.rest) > 0 {
		t := b.rest[0]
		b.rest = b.rest[1:]
		resp := fasthttp.AcquireResponse()
		start := time.Now()
		err := b.s.roundTrip(t, false, passHeaders{rangeHdr: "bytes=" + strconv.FormatInt(b.pos, 10) + "-" + strconv.FormatInt(b.end, 10)}, resp)
		b.fr.rec.addUpstream(t.node.addr, time.Since(start))
		t.node.requests.Add(1)
		if err != nil {
			fasthttp.ReleaseResponse(resp)
			t.node.fail(b.s.now(), t.health)
			b.s.failTarget(b.fr, t, err)
			continue
		}
		if !b.sameWhole(resp) {
			if resp.StatusCode() >= 500 {
				t.node.fail(b.s.now(), t.health)
			}
			abandon(resp)
			b.s.failTarget(b.fr, t, fmt.Errorf("cannot continue the body at byte %d", b.pos))
			continue
		}
		b.s.stats.resumed.Add(1)
		b.cur, b.resp, b.r = t, resp, bodyOf(resp)
		b.boundStall()
		return nil
	}
	b.s.stats.aborted.Add(1)
	return errBodyBroken
}

// boundStall makes a stalled body give way to the next target: while one could continue the body,
// each wait for bytes from the current upstream is bounded by the stall timeout rather than
// storage_idle, and a stall counts as a break (continued with Range, see Read).
func (b *bodyReader) boundStall() {
	if c := streamingConn(b.resp); c != nil && b.resume && len(b.rest) > 0 && b.stall > 0 {
		c.setStall(b.stall)
	}
}

// sameWhole reports whether resp is exactly bytes pos-end of the entity being sent.
func (b *bodyReader) sameWhole(resp *fasthttp.Response) bool {
	if resp.StatusCode() != fasthttp.StatusPartialContent {
		return false
	}
	first, last, total, ok := httpsem.ParseContentRange(resp.Header.Peek("Content-Range"))
	if !ok || first != b.pos || last != b.end || total != b.ent.total {
		return false
	}
	if cl := resp.Header.ContentLength(); cl >= 0 && int64(cl) != last-first+1 {
		return false
	}
	if b.fr.route.upstream {
		// Upstream routes: servers of a group are not known to hold one immutable fid, so their
		// validators must agree. Tracker routes read the same fid on every node.
		if etag := string(resp.Header.Peek("ETag")); etag != "" && b.ent.etag != "" && etag != b.ent.etag {
			return false
		}
		if lm := string(resp.Header.Peek("Last-Modified")); lm != "" && b.ent.modified != "" && lm != b.ent.modified {
			return false
		}
	}
	return true
}

// release gives the current upstream response back. A body that was not read to its end closes the
// connection instead of returning it to the pool.
func (b *bodyReader) release() {
	if b.resp != nil {
		if c := streamingConn(b.resp); c != nil {
			c.setStall(0)
		}
		if b.ent.length >= 0 && b.pos > b.end {
			fasthttp.ReleaseResponse(b.resp)
		} else {
			abandon(b.resp)
		}
		b.resp = nil
	}
	b.r = nil
}

// abandon releases a response whose body may not have been read to its end. fasthttp returns the
// connection of a closed body stream to its pool unless the response says "Connection: close", and a
// pooled connection with unread body bytes would garble the next response read on it.
func abandon(resp *fasthttp.Response) {
	resp.SetConnectionClose()
	fasthttp.ReleaseResponse(resp)
}

// CloseWithError is called by fasthttp once the body is sent or the client went away; other readers
// (a cache fill) call it when done. (No Close method: fasthttp would call both, losing err.)
func (b *bodyReader) CloseWithError(err error) error {
	b.closeOnce.Do(func() {
		b.release()
		if b.onClose != nil {
			b.onClose(b.sent, err)
		}
	})
	return nil
}
