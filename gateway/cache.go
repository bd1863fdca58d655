package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/mogway/mogway/cache"
	"github.com/mogway/mogway/internal/httpsem"
	"github.com/mogway/mogway/purge"
)

// A cached route answers GET and HEAD through the cache: a lookup by key (serveCached), and on a miss
// one fill per key that runs open and newBody, the same failover fetch an uncached route uses, and
// writes the answer into the cache while every client of the key reads it (cache.Reader). The client
// is always answered from the cache Reader, so a fill that breaks cuts every client's connection
// instead of sending a short body.

// resolver builds the fetch of a cached request: the tracker lookup or the upstream group's order.
// It runs inside cache fills, which may outlive the request that started them, so it must not touch
// the RequestCtx. status and msg are the answer when no fetch is possible.
type resolver func(head bool, rec *accessRecord) (fr *fetchRequest, status int, msg string)

// fillError is an upstream failure of a fill. The clients waiting for the fill get status and msg,
// unless the cache serves a stale entry instead (stale_if_error).
type fillError struct {
	status int
	msg    string
}

func (e *fillError) Error() string {
	return "gateway: upstream failed (" + strconv.Itoa(e.status) + " " + e.msg + ")"
}

// bypass reports whether the request asks to skip the stored entry (RouteCache.Bypass).
func (cr *cacheRoute) bypass(ctx *fasthttp.RequestCtx) bool {
	q := ctx.QueryArgs()
	for _, a := range cr.bypassArgs {
		if q.Has(a) && string(q.Peek(a)) != "0" {
			return true
		}
	}
	for _, h := range cr.bypassHeaders {
		if v := ctx.Request.Header.Peek(h); len(v) > 0 && string(v) != "0" {
			return true
		}
	}
	return false
}

// lockWait bounds how long a request waits for a fill to produce its headers: the tracker budget and
// a few storage connects and first bytes. The fill itself goes on for the other clients.
func (s *Server) lockWait() time.Duration {
	st := s.state.Load()
	t := st.cfg.Timeouts
	return st.budget + 4*(t.StorageConnect.D()+t.StorageFirstByte.D())
}

// serveCached answers GET or HEAD on a cached route.
func (s *Server) serveCached(ctx *fasthttp.RequestCtx, rt *route, rp requestPath, rec *accessRecord, resolve resolver) {
	h := &ctx.Request.Header
	if len(h.Peek("Authorization")) > 0 {
		// Answers to requests with credentials are not shared (RFC 9111 section 3.5): fetch directly.
		fr, status, msg := resolve(ctx.IsHead(), rec)
		if fr == nil {
			plainError(ctx, status, msg)
		} else {
			s.fetch(ctx, fr)
		}
		rec.cache = cache.Bypass.String()
		ctx.Response.Header.Set("X-Cache-Status", rec.cache)
		ctx.Response.Header.Set("Cache-Status", "mogway; fwd=bypass; detail=authorization")
		return
	}
	cr := rt.cache
	req := cache.Request{Key: cr.cacheKey(rp.clean, rp.query), Group: rp.clean, Bypass: cr.bypass(ctx)}
	var rng httpsem.Ranges
	hasRange := false
	if v := h.Peek("Range"); len(v) > 0 && ctx.IsGet() {
		rng, hasRange = httpsem.ParseRange(v)
	}
	if one, ok := sliceRange(&rng); ok && hasRange && len(h.Peek("If-Range")) == 0 && s.cache.SliceSize() > 0 &&
		s.serveSlices(ctx, rt, rp, rec, req, one, resolve) {
		return
	}
	gctx, cancel := context.WithTimeout(context.Background(), s.lockWait())
	r, status, err := s.cache.Get(gctx, req, s.fillFunc(rt, resolve))
	cancel()
	if err != nil {
		s.cacheFailed(ctx, rec, err)
		return
	}
	meta := r.Meta()
	s.cachedHead(ctx, rt, rp.clean, rec, status, meta)
	if s.answeredWithoutBody(ctx, r, meta, nil) {
		return
	}
	size := r.Size()
	var body io.Reader = r
	if hasRange && meta.Status == fasthttp.StatusOK && size >= 0 {
		cond := httpsem.ConditionsOf(h)
		if cond.RangeApplies(validators(meta.ETag, meta.LastModified)) {
			switch off, n, st := rng.Resolve(size); st {
			case httpsem.RangeUnsatisfiable:
				r.Close()
				unsatisfiable(ctx, size)
				return
			case httpsem.RangeOK:
				ctx.Response.SetStatusCode(fasthttp.StatusPartialContent)
				setContentRange(ctx, off, n, size)
				body, size = io.NewSectionReader(r, off, n), n
			}
		}
	}
	s.streamCached(ctx, rec, r, body, size, nil)
}

// sliceRange is the one range of r that serveSlices can answer: a single "first-last" or "first-"
// spec. A suffix needs the size first; several ranges, an invalid one, or one starting past 1<<62
// (beyond any object, and where slice arithmetic nears int64 overflow) take the whole-entry path.
func sliceRange(r *httpsem.Ranges) (httpsem.Spec, bool) {
	if r.Len() != 1 {
		return httpsem.Spec{}, false
	}
	one := r.At(0)
	return one, !one.Suffix() && one.First <= 1<<62 && (one.Last < 0 || one.Last >= one.First)
}

// serveSlices answers a Range request from slices of the object (cache slice_size), so that the first
// range of a huge object fetches only the slices it covers. It returns false, having answered
// nothing, when the key holds a whole entry that is not a 200 (a cached 404): the caller serves that.
func (s *Server) serveSlices(ctx *fasthttp.RequestCtx, rt *route, rp requestPath, rec *accessRecord,
	req cache.Request, rng httpsem.Spec, resolve resolver) bool {
	n := int64(math.MaxInt64) - rng.First
	if rng.Last >= 0 {
		n = min(rng.Last-rng.First, math.MaxInt64-1) + 1
	}
	// The context governs the fetch of every slice the body needs, so it lives until the body is
	// closed; the wait for the first slice is bounded like any fill wait.
	sctx, scancel := context.WithCancel(context.Background())
	timer := time.AfterFunc(s.lockWait(), scancel)
	r, status, err := s.cache.GetRange(sctx, req, rng.First, n, s.rangeFill(rt, resolve))
	if !timer.Stop() {
		if r != nil {
			r.Close()
		}
		err = context.DeadlineExceeded
	}
	if err != nil {
		scancel()
		s.cacheFailed(ctx, rec, err)
		return true
	}
	meta := r.Meta()
	if meta.Status != fasthttp.StatusOK {
		r.Close()
		scancel()
		return false
	}
	s.cachedHead(ctx, rt, rp.clean, rec, status, meta)
	if rng.First >= meta.Size {
		r.Close()
		scancel()
		unsatisfiable(ctx, meta.Size)
		return true
	}
	if s.answeredWithoutBody(ctx, r, meta, scancel) {
		return true
	}
	size := r.Size()
	ctx.Response.SetStatusCode(fasthttp.StatusPartialContent)
	setContentRange(ctx, rng.First, size, meta.Size)
	s.streamCached(ctx, rec, r, r, size, scancel)
	return true
}

// setContentRange sets the Content-Range of a 206 carrying the n bytes at off of size.
func setContentRange(ctx *fasthttp.RequestCtx, off, n, size int64) {
	var buf [64]byte
	ctx.Response.Header.SetBytesV("Content-Range", httpsem.AppendContentRange(buf[:0], off, n, size))
}

// unsatisfiable answers 416 for a range past the end of a body of size bytes.
func unsatisfiable(ctx *fasthttp.RequestCtx, size int64) {
	out := &ctx.Response
	out.SetStatusCode(fasthttp.StatusRequestedRangeNotSatisfiable)
	var buf [32]byte
	out.Header.SetBytesV("Content-Range", httpsem.AppendUnsatisfiedRange(buf[:0], size))
	out.Header.Del("Content-Disposition")
	// The route's expires and cache_control, set for the cached 200, are not a 416's (nginx's
	// expires: 200, 206, 304): a shared cache could keep this answer for max-age.
	out.Header.Del("Cache-Control")
	out.Header.Del("Expires")
	out.Header.SetContentType("text/plain; charset=utf-8")
	out.SetBodyString("range not satisfiable\n")
}

// cachedHead sets the status and header fields of a cached answer, and the cache status headers.
func (s *Server) cachedHead(ctx *fasthttp.RequestCtx, rt *route, name string, rec *accessRecord, status cache.Status, meta cache.Meta) {
	out := &ctx.Response
	var ct []byte
	for _, f := range meta.Header {
		if f.Name == "Content-Type" {
			ct = []byte(f.Value)
			continue
		}
		if !hopHeader(f.Name) {
			out.Header.Add(f.Name, f.Value)
		}
	}
	switch meta.Status {
	case fasthttp.StatusOK, fasthttp.StatusPartialContent, fasthttp.StatusNotModified:
		s.decorate(ctx, rt, name, ct)
	default:
		if len(ct) > 0 {
			out.Header.SetContentTypeBytes(ct)
		}
	}
	out.SetStatusCode(meta.Status)
	rec.cache = status.String()
	out.Header.Set("X-Cache-Status", rec.cache)
	out.Header.Set("Cache-Status", cacheStatus(status, meta, s.now()))
}

// cacheStatus is the Cache-Status field (RFC 9211) of an answer.
func cacheStatus(st cache.Status, meta cache.Meta, now time.Time) string {
	v := "mogway"
	ttl := ""
	if !meta.ExpiresAt.IsZero() {
		ttl = "; ttl=" + strconv.FormatInt(int64(meta.ExpiresAt.Sub(now)/time.Second), 10)
	}
	stored := ""
	if meta.ExpiresAt.After(meta.StoredAt) {
		stored = "; stored"
	}
	switch st {
	case cache.Hit:
		return v + "; hit" + ttl
	case cache.Updating:
		return v + "; hit" + ttl + "; detail=updating"
	case cache.Stale:
		return v + "; hit" + ttl + "; detail=stale-if-error"
	case cache.Revalidated:
		return v + "; fwd=stale; fwd-status=304" + ttl
	case cache.Expired:
		return v + "; fwd=stale; fwd-status=" + strconv.Itoa(meta.Status) + stored
	case cache.Bypass:
		return v + "; fwd=bypass; fwd-status=" + strconv.Itoa(meta.Status) + stored
	}
	return v + "; fwd=miss; fwd-status=" + strconv.Itoa(meta.Status) + stored
}

// answeredWithoutBody finishes HEAD requests and conditional requests the cached validators satisfy
// (304). It closes r (and calls done) when it answered.
func (s *Server) answeredWithoutBody(ctx *fasthttp.RequestCtx, r *cache.Reader, meta cache.Meta, done func()) bool {
	out := &ctx.Response
	finish := func() {
		out.SkipBody = true
		r.Close()
		if done != nil {
			done()
		}
	}
	cond := httpsem.ConditionsOf(&ctx.Request.Header)
	if meta.Status == fasthttp.StatusOK && preconditionsFail(ctx, &cond, validators(meta.ETag, meta.LastModified)) {
		r.Close()
		if done != nil {
			done()
		}
		return true
	}
	if ctx.IsHead() {
		if size := r.Size(); size >= 0 {
			out.Header.SetContentLength(int(size))
		}
		finish()
		return true
	}
	return false
}

// streamCached sends body (r, or a section of it) as the answer's body; size -1 is sent chunked.
func (s *Server) streamCached(ctx *fasthttp.RequestCtx, rec *accessRecord, r *cache.Reader, body io.Reader, size int64, done func()) {
	rec.streamed = true
	ctx.SetBodyStream(&cacheBody{s: s, r: r, src: body, rec: rec, done: done}, int(size))
}

// cacheFailed answers a request the cache could not serve.
func (s *Server) cacheFailed(ctx *fasthttp.RequestCtx, rec *accessRecord, err error) {
	var fe *fillError
	switch {
	case errors.As(err, &fe):
		plainError(ctx, fe.status, fe.msg)
	case errors.Is(err, cache.ErrLockTimeout), errors.Is(err, context.DeadlineExceeded):
		plainError(ctx, fasthttp.StatusGatewayTimeout, "upstream timed out")
	default:
		// A fill that failed at once (a body that broke with no copy to continue it).
		s.log.Debug("cache fill failed", "uri", rec.uri, "err", err)
		plainError(ctx, fasthttp.StatusBadGateway, "bad gateway")
	}
	rec.cache = cache.Miss.String()
	ctx.Response.Header.Set("X-Cache-Status", rec.cache)
	ctx.Response.Header.Set("Cache-Status", "mogway; fwd=miss; detail=error")
}

// cacheBody streams a cache Reader to a client. fasthttp reads it from one goroutine and closes it
// through CloseWithError. A read error (a fill that failed) ends the body short of its
// Content-Length, so fasthttp cuts the connection.
type cacheBody struct {
	s    *Server
	r    *cache.Reader
	src  io.Reader // r, or a section of it
	rec  *accessRecord
	done func() // cancels the slice fetches of a GetRange body
	sent int64

	once sync.Once
}

func (b *cacheBody) Read(p []byte) (int, error) {
	n, err := b.src.Read(p)
	b.sent += int64(n)
	if err != nil && err != io.EOF {
		b.s.stats.aborted.Add(1)
	}
	return n, err
}

// WriteTo sends a whole stored body through the Reader's WriteTo (one write from the memory tier,
// sendfile(2) from the disk tier) rather than through fasthttp's copy buffer; a section of it
// (a Range answer) is copied through Read.
func (b *cacheBody) WriteTo(w io.Writer) (int64, error) {
	if b.src != io.Reader(b.r) {
		return io.Copy(w, struct{ io.Reader }{b})
	}
	n, err := b.r.WriteTo(w)
	b.sent += n
	if err != nil {
		b.s.stats.aborted.Add(1)
	}
	return n, err
}

// storedBody reports whether body is a cached answer read from memory or disk, whose reads wait
// for nothing but the disk.
func storedBody(body io.Reader) bool {
	b, ok := body.(*cacheBody)
	return ok && b.r.Stored()
}

// CloseWithError releases the Reader and writes the access log line.
func (b *cacheBody) CloseWithError(err error) error {
	b.once.Do(func() {
		b.r.Close()
		if b.done != nil {
			b.done()
		}
		b.rec.bytes = b.sent
		if err != nil && b.s.log.Enabled(context.Background(), slog.LevelDebug) {
			b.s.log.Debug("cached response body cut", "uri", b.rec.uri, "sent", b.sent, "err", err)
		}
		b.s.logAccess(b.rec)
	})
	return nil
}

// fillFunc is the cache fill of a cached route: one upstream GET (never the client's Range or
// validators), revalidated against the expired entry when there is one.
func (s *Server) fillFunc(rt *route, resolve resolver) cache.FillFunc {
	cr := rt.cache
	return func(_ context.Context, prev *cache.Meta, w *cache.Writer) error {
		// Upstream waits are bounded by the storage timeouts (fasthttp clients take no context);
		// an abandoned fill stops at its next Write, which returns the cancellation.
		fr, status, msg := resolve(false, &accessRecord{})
		if fr == nil {
			if status == fasthttp.StatusNotFound {
				return s.fillPlain(w, cr, status, msg)
			}
			return &fillError{status, msg}
		}
		var ph passHeaders
		if prev != nil && prev.Status == fasthttp.StatusOK {
			if !rt.upstream {
				// A tracker route's validator is the fid: the same fid is the same bytes.
				if tag := fidETag(fr.targets[0].uri); tag != "" && tag == prev.ETag {
					now := s.now()
					return w.NotModified(cache.Meta{StoredAt: now, ExpiresAt: s.expiry(now, cr, fasthttp.StatusOK, nil)})
				}
			} else {
				ph.inm, ph.ims = prev.ETag, prev.LastModified
			}
		}
		a, status, msg := s.open(fr, ph)
		if a == nil {
			return &fillError{status, msg}
		}
		code := a.resp.StatusCode()
		if code == fasthttp.StatusNotModified && prev != nil {
			now := s.now()
			exp := s.expiry(now, cr, fasthttp.StatusOK, &a.resp.Header)
			a.release()
			return w.NotModified(cache.Meta{StoredAt: now, ExpiresAt: exp})
		}
		if code >= 500 || code == fasthttp.StatusPartialContent || code == fasthttp.StatusNotModified {
			a.release()
			return &fillError{fasthttp.StatusBadGateway, "upstream answered " + strconv.Itoa(code)}
		}
		if err := w.Start(s.metaOf(cr, a)); err != nil {
			a.release()
			return err
		}
		body := s.newBody(fr, a, nil)
		_, err := io.Copy(w, body)
		body.CloseWithError(err) //nolint:errcheck // always nil
		return err
	}
}

// rangeFill is the slice fill of a cached route: a Range GET for one slice.
func (s *Server) rangeFill(rt *route, resolve resolver) cache.RangeFillFunc {
	cr := rt.cache
	return func(_ context.Context, off, n int64, w *cache.Writer) error {
		fr, status, msg := resolve(false, &accessRecord{})
		if fr == nil {
			return &fillError{status, msg}
		}
		ph := passHeaders{rangeHdr: "bytes=" + strconv.FormatInt(off, 10) + "-" + strconv.FormatInt(off+n-1, 10)}
		a, status, msg := s.open(fr, ph)
		if a == nil {
			return &fillError{status, msg}
		}
		var err error
		switch code := a.resp.StatusCode(); {
		case code == fasthttp.StatusPartialContent && a.ent.total >= 0:
			meta := s.metaOf(cr, a)
			meta.Status, meta.Size = fasthttp.StatusOK, a.ent.total
			if err = w.Start(meta); err != nil {
				a.release()
				return err
			}
			body := s.newBody(fr, a, nil)
			_, err = io.Copy(w, body)
			body.CloseWithError(err) //nolint:errcheck // always nil
		case code == fasthttp.StatusOK && a.ent.length >= 0:
			// A server that ignores Range: skip to the slice.
			size := a.ent.length
			if err = w.Start(s.metaOf(cr, a)); err != nil {
				a.release()
				return err
			}
			body := s.newBody(fr, a, nil)
			if _, err = io.CopyN(io.Discard, body, min(off, size)); err == nil && off < size {
				_, err = io.CopyN(w, body, min(n, size-off))
			}
			body.CloseWithError(err) //nolint:errcheck // always nil
		case code == fasthttp.StatusRequestedRangeNotSatisfiable:
			total, ok := httpsem.ParseUnsatisfiedRange(a.resp.Header.Peek("Content-Range"))
			a.release()
			if !ok {
				return &fillError{fasthttp.StatusBadGateway, "upstream answered 416 without a size"}
			}
			now := s.now()
			return w.Start(cache.Meta{Status: fasthttp.StatusOK, Size: total, StoredAt: now,
				ExpiresAt: s.expiry(now, cr, fasthttp.StatusOK, nil), Tags: cr.tags})
		default:
			a.release()
			if code >= 500 || code < 400 {
				code = fasthttp.StatusBadGateway
			}
			return &fillError{code, "upstream answered " + strconv.Itoa(a.resp.StatusCode())}
		}
		return err
	}
}

// fillPlain stores a short text answer (the tracker's "unknown key" as 404), when the route or
// cache keeps that status.
func (s *Server) fillPlain(w *cache.Writer, cr *cacheRoute, status int, msg string) error {
	body := []byte(msg + "\n")
	now := s.now()
	err := w.Start(cache.Meta{Status: status, Size: int64(len(body)), StoredAt: now,
		ExpiresAt: s.expiry(now, cr, status, nil), Tags: cr.tags,
		Header: []cache.HeaderField{{Name: "Content-Type", Value: "text/plain; charset=utf-8"}}})
	if err != nil {
		return err
	}
	_, err = w.Write(body)
	return err
}

// metaOf is what the cache stores of an upstream answer: its status, header fields (without the
// hop-by-hop ones, Content-Range and Set-Cookie), validators, length and lifetime.
func (s *Server) metaOf(cr *cacheRoute, a *answer) cache.Meta {
	resp := a.resp
	var hdr []cache.HeaderField
	if ct := resp.Header.ContentType(); len(ct) > 0 {
		hdr = append(hdr, cache.HeaderField{Name: "Content-Type", Value: string(ct)})
	}
	resp.Header.VisitAll(func(k, v []byte) {
		if hopHeader(k) {
			return
		}
		name := string(k)
		if name == "Content-Range" || name == "Set-Cookie" || name == "Etag" || name == "ETag" ||
			cr.isTagHeader(name) {
			return
		}
		hdr = append(hdr, cache.HeaderField{Name: name, Value: string(v)})
	})
	if a.ent.etag != "" {
		hdr = append(hdr, cache.HeaderField{Name: "ETag", Value: a.ent.etag})
	}
	now := s.now()
	return cache.Meta{Status: resp.StatusCode(), Header: hdr, Size: a.ent.length, StoredAt: now,
		ExpiresAt: s.expiry(now, cr, resp.StatusCode(), &resp.Header), ETag: a.ent.etag, LastModified: a.ent.modified,
		Tags: cr.entryTags(&resp.Header)}
}

// expiry is when an answer stops being fresh: upstream's Cache-Control (unless the route ignores it),
// then the route's valid, then (zero time) the cache's valid. A time equal to now means "do not
// store".
func (s *Server) expiry(now time.Time, cr *cacheRoute, status int, h *fasthttp.ResponseHeader) time.Time {
	if !cr.ignoreUpCC && h != nil {
		store, maxAge := upstreamCacheControl(string(h.Peek("Cache-Control")), len(h.Peek("Set-Cookie")) > 0)
		if !store {
			return now
		}
		if maxAge > 0 {
			return now.Add(maxAge)
		}
	}
	if d, ok := cr.lifetime(status); ok {
		if d <= 0 {
			return now
		}
		return now.Add(d)
	}
	return time.Time{}
}

// openCache creates the cache and the purge service of a configuration with defaults. It runs before
// any listener binds, so a disk tier's index is rebuilt before the first request.
func (s *Server) openCache(cfg Config, deps Deps) error {
	if cfg.Cache != nil {
		var opts []cache.Option
		if deps.Now != nil {
			opts = append(opts, cache.WithClock(deps.Now))
		}
		c, err := cache.New(*cfg.Cache, s.log.With("component", "cache"), opts...)
		if err != nil {
			return err
		}
		s.cache = c
	}
	if cfg.Purge != nil {
		var target purge.Target = nopTarget{}
		if s.cache != nil {
			target = s.cache
		}
		var opts []purge.Option
		if deps.Now != nil {
			opts = append(opts, purge.WithClock(deps.Now))
		}
		svc, err := purge.New(*cfg.Purge, purgeTarget{s: s, cache: target}, s.log.With("component", "purge"), opts...)
		if err != nil {
			if s.cache != nil {
				s.cache.Close() //nolint:errcheck // the purge error is the one to report
			}
			return err
		}
		s.purger = svc
	}
	return nil
}
