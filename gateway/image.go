package gateway

import (
	"context"
	"errors"
	"io"
	"net/url"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/mogway/mogway/cache"
	"github.com/mogway/mogway/imaging"
	"github.com/mogway/mogway/internal/httpsem"
)

// Image variants: a GET that asks for one (RouteImage) fetches the original through the route (the
// tracker lookup or the upstream group, with the usual failover), reads it into memory up to the
// route's max_source_size, and transforms it in the route's imaging.Processor. On a cached route the
// variant is built by one cache fill per variant key, which every concurrent request of the same
// variant waits for and then streams from the cache.

// variantKeySep separates a variant's parameters from the original's cache key. It cannot occur in
// a decoded path or a query string the gateway accepts.
const variantKeySep = "\x00img:"

// serveImage answers a GET or HEAD that asks for an image variant and returns true; it returns false,
// having done nothing, for a request that asks for none.
func (s *Server) serveImage(ctx *fasthttp.RequestCtx, rt *route, rp requestPath, rec *accessRecord) bool {
	ir := rt.image
	var q url.Values
	if ir.query && len(rp.query) > 0 {
		q, _ = url.ParseQuery(string(rp.query))
	}
	req, ok, err := ir.variant(rt.Prefix, rp.clean, q, ctx.Request.Header.Peek("Accept"))
	if err != nil {
		s.stats.badRequests.Add(1)
		plainError(ctx, fasthttp.StatusBadRequest, err.Error())
		return true
	}
	if !ok {
		return false
	}
	orig := requestPath{written: req.orig, clean: req.orig, query: dropQueryArgs(rp.query, ir.params.names())}
	resolve, status, msg := s.imageResolver(ctx, rt, orig)
	if resolve == nil {
		plainError(ctx, status, msg)
		return true
	}
	if rt.cache == nil || len(ctx.Request.Header.Peek("Authorization")) > 0 {
		v, err := s.buildVariant(rt, resolve, req.o)
		if err != nil {
			var fe *fillError
			if !errors.As(err, &fe) {
				fe = &fillError{fasthttp.StatusBadGateway, "bad gateway"}
			}
			plainError(ctx, fe.status, fe.msg)
			return true
		}
		s.decorate(ctx, rt, req.orig, nil)
		ctx.Response.Header.SetContentType(v.ctype)
		if req.vary {
			ctx.Response.Header.Add("Vary", "Accept")
		}
		ctx.Response.SetBody(v.body)
		return true
	}
	creq := cache.Request{Key: rt.cache.cacheKey(orig.clean, orig.query) + variantKeySep + req.o.Key(), Group: orig.clean,
		Bypass: rt.cache.bypass(ctx)}
	gctx, cancel := context.WithTimeout(context.Background(), s.lockWait())
	r, cst, err := s.cache.Get(gctx, creq, s.variantFill(rt, resolve, req.o))
	cancel()
	if err != nil {
		s.cacheFailed(ctx, rec, err)
		return true
	}
	meta := r.Meta()
	s.cachedHead(ctx, rt, req.orig, rec, cst, meta)
	for _, f := range meta.Header {
		if f.Name == "Content-Type" {
			ctx.Response.Header.SetContentType(f.Value)
		}
	}
	if req.vary {
		ctx.Response.Header.Add("Vary", "Accept")
	}
	if s.answeredWithoutBody(ctx, r, meta, nil) {
		return true
	}
	s.streamCached(ctx, rec, r, r, r.Size(), nil)
	return true
}

// imageResolver is the fetch of a variant's original: the tracker lookup of its key or the upstream
// group's order. A nil resolver comes with the status and message to answer.
func (s *Server) imageResolver(ctx *fasthttp.RequestCtx, rt *route, orig requestPath) (resolver, int, string) {
	if rt.upstream {
		uri := escapePath(orig.clean)
		if rt.StripPrefix {
			uri = upstreamURI(rt, orig, "") // a stripped prefix: the written URI is not used
		} else if len(orig.query) > 0 {
			uri += "?" + string(orig.query)
		}
		return func(head bool, rec *accessRecord) (*fetchRequest, int, string) {
			return s.upstreamRequest(rt, orig, uri, head, rec), 0, ""
		}, 0, ""
	}
	key, err := deriveKey(rt.Key, rt.Prefix, orig.clean)
	if err != nil {
		s.stats.badRequests.Add(1)
		return nil, fasthttp.StatusBadRequest, "empty key"
	}
	return func(head bool, rec *accessRecord) (*fetchRequest, int, string) {
		cur := s.acquire()
		defer cur.release()
		if cur.tracker == nil {
			return nil, fasthttp.StatusServiceUnavailable, "no tracker configured"
		}
		return s.trackerRequest(cur, rt, key, head, rec)
	}, 0, ""
}

// variant is a built image variant.
type variant struct {
	body  []byte
	ctype string
	// head is the original's response header: a cached variant stays fresh as long as a 200 of the
	// route would, so its lifetime follows the original's Cache-Control and Set-Cookie. Nil when the
	// route has no cache.
	head *fasthttp.ResponseHeader
}

// buildVariant fetches the original and transforms it. Failures are fillErrors carrying the answer:
// the original's own 4xx, 502/504 for upstream failures, 415 for a source that is not a readable
// image or is over the limits (unless the route answers the original for a non-image), 400 for
// options the image cannot take (a crop outside it), 503 when no transform slot freed up in time.
func (s *Server) buildVariant(rt *route, resolve resolver, o imaging.Options) (variant, error) {
	ir := rt.image
	fr, status, msg := resolve(false, &accessRecord{})
	if fr == nil {
		return variant{}, &fillError{status, msg}
	}
	a, status, msg := s.open(fr, passHeaders{})
	if a == nil {
		return variant{}, &fillError{status, msg}
	}
	code := a.resp.StatusCode()
	if code != fasthttp.StatusOK {
		a.release()
		if code < 400 || code >= 500 {
			code = fasthttp.StatusBadGateway
		}
		return variant{}, &fillError{code, "upstream answered " + strconv.Itoa(a.resp.StatusCode())}
	}
	limit := ir.proc.Limits().MaxSourceBytes
	if a.ent.length > limit {
		a.release()
		return variant{}, &fillError{fasthttp.StatusUnsupportedMediaType, "source is over max_source_size"}
	}
	ctype := string(a.resp.Header.ContentType())
	var head *fasthttp.ResponseHeader
	if rt.cache != nil {
		head = &fasthttp.ResponseHeader{}
		a.resp.Header.CopyTo(head)
	}
	body := s.newBody(fr, a, nil)
	src, err := io.ReadAll(io.LimitReader(body, limit+1))
	body.CloseWithError(err) //nolint:errcheck // always nil
	if err != nil {
		return variant{}, err
	}
	if int64(len(src)) > limit {
		return variant{}, &fillError{fasthttp.StatusUnsupportedMediaType, "source is over max_source_size"}
	}
	pctx, cancel := context.WithTimeout(context.Background(), s.lockWait())
	out, f, err := ir.proc.Process(pctx, src, o)
	cancel()
	switch {
	case err == nil:
		return variant{out, f.ContentType(), head}, nil
	case errors.Is(err, imaging.ErrNotImage) && ir.original:
		if rt.ContentType != "upstream" || ctype == "" {
			ctype = httpsem.ContentType(fr.name)
		}
		return variant{src, ctype, head}, nil
	case errors.Is(err, imaging.ErrNotImage), errors.Is(err, imaging.ErrSourceTooLarge):
		return variant{}, &fillError{fasthttp.StatusUnsupportedMediaType, err.Error()}
	case errors.Is(err, imaging.ErrBadOptions):
		return variant{}, &fillError{fasthttp.StatusBadRequest, err.Error()}
	case errors.Is(err, context.DeadlineExceeded):
		return variant{}, &fillError{fasthttp.StatusServiceUnavailable, "image transforms busy"}
	}
	return variant{}, err
}

// variantFill is the cache fill of a variant.
func (s *Server) variantFill(rt *route, resolve resolver, o imaging.Options) cache.FillFunc {
	cr := rt.cache
	return func(_ context.Context, _ *cache.Meta, w *cache.Writer) error {
		v, err := s.buildVariant(rt, resolve, o)
		if err != nil {
			return err
		}
		now := s.now()
		if err := w.Start(cache.Meta{Status: fasthttp.StatusOK, Size: int64(len(v.body)), StoredAt: now,
			ExpiresAt: s.expiry(now, cr, fasthttp.StatusOK, v.head), Tags: cr.tags,
			Header: []cache.HeaderField{{Name: "Content-Type", Value: v.ctype}}}); err != nil {
			return err
		}
		_, err = w.Write(v.body)
		return err
	}
}
