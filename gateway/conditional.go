package gateway

import (
	"bytes"

	"github.com/valyala/fasthttp"

	"github.com/mogway/mogway/internal/httpsem"
)

// validators are an answer's ETag and Last-Modified as httpsem compares them; a Last-Modified that is
// not an HTTP-date counts as absent.
func validators(etag, modified string) httpsem.Validators {
	lm, ok := httpsem.ParseDate(modified)
	return httpsem.Validators{ETag: etag, LastModified: lm, HasLastModified: ok}
}

// preconditionsFail evaluates c, a GET or HEAD's preconditions, against the validators of a 200 (or
// 206) answer whose headers are already in ctx.Response, and answers 304 (the headers without
// Content-Type and Content-Disposition, no body) or 412 (without them, nor Cache-Control and
// Expires) when they do not hold. It reports whether it answered; the caller then drops the
// answer's body. Content-Range goes too: it belongs to a 206.
func preconditionsFail(ctx *fasthttp.RequestCtx, c *httpsem.Conditions, val httpsem.Validators) bool {
	out := &ctx.Response
	switch c.Evaluate(true, val) {
	case httpsem.NotModified:
		out.SetStatusCode(fasthttp.StatusNotModified)
		out.Header.Del("Content-Type")
		out.Header.Del("Content-Disposition")
		out.Header.Del("Content-Range")
		out.SkipBody = true
		return true
	case httpsem.PreconditionFailed:
		out.SetStatusCode(fasthttp.StatusPreconditionFailed)
		out.Header.Del("Content-Disposition")
		out.Header.Del("Content-Range")
		// A route's expires and cache_control belong to 200, 206 and 304 answers, as nginx's
		// expires: a 412 with "max-age=3600" could be stored and served by a shared cache.
		out.Header.Del("Cache-Control")
		out.Header.Del("Expires")
		out.Header.SetContentType("text/plain; charset=utf-8")
		out.SetBodyString("precondition failed\n")
		return true
	}
	return false
}

// plainHead reports whether a request head surely has no Range and no If-* field, by a look at its
// fields as received (RequestHeader.RawHeaders): no field name begins with "If-" or is "Range", in
// any case. The answer of such a GET depends on its URI alone, and the lookups of those fields,
// several per request, are skipped. A head with no raw fields (one not read from a client) is not
// plain.
func plainHead(h *fasthttp.RequestHeader) bool {
	raw := h.RawHeaders()
	if len(raw) == 0 {
		return false
	}
	for len(raw) > 0 {
		switch raw[0] {
		case 'i', 'I':
			if len(raw) < 3 || raw[1]|0x20 == 'f' && raw[2] == '-' {
				return false
			}
		case 'r', 'R':
			if len(raw) < 6 || bytes.EqualFold(raw[:6], []byte("range:")) || bytes.EqualFold(raw[:6], []byte("range ")) {
				return false
			}
		case ' ', '\t':
			return false // a folded line: let the full lookups judge
		}
		i := bytes.IndexByte(raw, '\n')
		if i < 0 {
			break
		}
		raw = raw[i+1:]
	}
	return true
}
