package gateway

import (
	"bytes"
	_ "embed"
	"html/template"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/mogway/mogway/internal/web"
	"github.com/mogway/mogway/tracker/client"
)

//go:embed web/status.html
var statusHTML string

// statusRefresh is how often the status page reloads itself, in seconds.
const statusRefresh = 5

var statusPage = web.StatusPage("status", template.FuncMap{
	"ratio": func(hits, misses int64) string {
		if hits+misses == 0 {
			return "-"
		}
		return strconv.FormatFloat(100*float64(hits)/float64(hits+misses), 'f', 1, 64) + "%"
	},
}, statusHTML)

// wantsHTML reports whether the client asked for HTML (a browser): Accept names text/html.
func wantsHTML(ctx *fasthttp.RequestCtx) bool {
	return strings.Contains(string(ctx.Request.Header.Peek("Accept")), "text/html")
}

// serveStatusHTML answers the status path with the HTML page.
func (s *Server) serveStatusHTML(ctx *fasthttp.RequestCtx) {
	st := s.Stats()
	data := struct {
		S        Stats
		Rate     float64
		Trackers []client.TrackerStats
		Refresh  int
	}{S: st, Refresh: statusRefresh}
	if up := s.now().Sub(s.started).Seconds(); up > 0 {
		data.Rate = float64(st.Requests) / up
	}
	if ps, ok := st.Tracker.(client.PoolStats); ok {
		data.Trackers = ps.Trackers
	}
	var b bytes.Buffer
	if err := statusPage.Execute(&b, data); err != nil {
		s.log.Error("status page failed", "err", err)
		plainError(ctx, fasthttp.StatusInternalServerError, "cannot render the status page")
		return
	}
	ctx.SetContentType("text/html; charset=utf-8")
	h := &ctx.Response.Header
	h.Set("Cache-Control", "no-store")
	h.Set("Vary", "Accept")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
	h.Set("X-Content-Type-Options", "nosniff")
	ctx.SetBody(b.Bytes())
}
