package gateway

import (
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
// Content-Type and Content-Disposition, no body) or 412 when they do not hold. It reports whether it
// answered; the caller then drops the answer's body. Content-Range goes too: it belongs to a 206.
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
		out.Header.SetContentType("text/plain; charset=utf-8")
		out.SetBodyString("precondition failed\n")
		return true
	}
	return false
}
