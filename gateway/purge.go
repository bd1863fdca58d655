package gateway

import (
	"context"
	"net/netip"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/mogway/mogway/cache"
	"github.com/mogway/mogway/purge"
)

// nopTarget stands in for the cache on a gateway with purge but no cache: purges then only travel to
// the peers.
type nopTarget struct{}

func (nopTarget) Purge(string, bool) (int, int64)       { return 0, 0 }
func (nopTarget) PurgePrefix(string, bool) (int, int64) { return 0, 0 }
func (nopTarget) PurgeAll(bool) (int, int64)            { return 0, 0 }

var _ purge.Target = (*cache.Cache)(nil)

// purgeTarget is what the purge service acts on: the cache (or nopTarget), and the tracker path
// cache, so that a purge also makes the next fill ask the tracker again. Without it a peer purged
// after an overwrite elsewhere could refill from the old copy it still had in its path cache.
type purgeTarget struct {
	s     *Server
	cache purge.Target
}

func (p purgeTarget) Purge(group string, soft bool) (int, int64) {
	st := p.s.acquire()
	defer st.release()
	if rt := st.table.match(group); rt != nil && !rt.upstream {
		if key, err := deriveKey(rt.Key, rt.Prefix, group); err == nil {
			st.paths.forget(rt.Domain, key)
		}
	}
	return p.cache.Purge(group, soft)
}

func (p purgeTarget) PurgePrefix(prefix string, soft bool) (int, int64) {
	st := p.s.acquire()
	defer st.release()
	st.paths.purge()
	return p.cache.PurgePrefix(prefix, soft)
}

func (p purgeTarget) PurgeAll(soft bool) (int, int64) {
	st := p.s.acquire()
	defer st.release()
	st.paths.purge()
	return p.cache.PurgeAll(soft)
}

// underPath reports whether path is prefix or below it, and returns the rest ("/a.jpg", or "").
func underPath(path, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(path, prefix)
	if !ok || (rest != "" && rest[0] != '/') {
		return "", false
	}
	return rest, true
}

// servePurge answers a request under the purge path with the purge service. The client address is
// the one real_ip computes, as for allow and the access log.
func (s *Server) servePurge(ctx *fasthttp.RequestCtx, rest string, client netip.Addr) {
	if ctx.Request.IsBodyStream() {
		// A purge has no body worth reading; do not let it be parsed as the next request.
		ctx.SetConnectionClose()
	}
	h := &ctx.Request.Header
	q := ctx.QueryArgs()
	req := purge.NewRequest(string(ctx.Method()), rest, client,
		func(name string) string { return string(h.Peek(name)) },
		func(name string) string { return string(q.Peek(name)) })
	pctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp := s.purger.Handle(pctx, req)
	ctx.Response.Reset()
	ctx.SetStatusCode(resp.Status)
	ctx.SetContentType(resp.ContentType)
	ctx.Response.Header.Set("Cache-Control", "no-store")
	if resp.Allow != "" {
		ctx.Response.Header.Set("Allow", resp.Allow)
	}
	ctx.SetBody(resp.Body)
}

// purgeAfterWrite drops the cached copies of a URI path after a PUT or DELETE through the gateway
// changed what it names, here and, through the purge service, on the peer gateways.
func (s *Server) purgeAfterWrite(ctx *fasthttp.RequestCtx, path string) {
	if code := ctx.Response.StatusCode(); code < 200 || code > 299 {
		return
	}
	if s.purger != nil && !strings.HasSuffix(path, "*") {
		pctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := s.purger.Apply(pctx, path, false); err != nil {
			s.log.Warn("purge after write failed", "path", path, "err", err)
		}
		return
	}
	if s.cache != nil {
		s.cache.Purge(path, false)
	}
}
