package tracker

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"html/template"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/mogway/mogway/internal/metrics"
	"github.com/mogway/mogway/internal/web"
)

// The HTTP listener (http_listen) serves:
//
//	/             the cluster status page (HTML, refreshes itself)
//	/status.json  the same view as JSON
//	/metrics      metrics in the Prometheus text format (docs/monitoring.md)
//
// It binds to loopback by default: the page names every host and domain.

//go:embed web/status.html
var statusHTML string

// statusRefresh is how often the status page reloads itself, in seconds.
const statusRefresh = 5

var statusPage = web.StatusPage("status", template.FuncMap{
	"statusClass": func(s string) string {
		switch s {
		case "alive":
			return "st-ok"
		case "readonly", "drain":
			return "st-warn"
		}
		return "st-bad"
	},
	"observedClass": func(s string) string {
		switch s {
		case observedWriteable:
			return "st-ok"
		case observedReadable:
			return "st-warn"
		}
		return "st-bad"
	},
	"mib": func(mb int64) string {
		switch {
		case mb >= 1<<20:
			return strconv.FormatFloat(float64(mb)/(1<<20), 'f', 1, 64) + " TiB"
		case mb >= 1<<10:
			return strconv.FormatFloat(float64(mb)/(1<<10), 'f', 1, 64) + " GiB"
		}
		return strconv.FormatInt(mb, 10) + " MiB"
	},
	"count": func(n int64) string {
		if n < 0 {
			return "?"
		}
		return strconv.FormatInt(n, 10)
	},
	"ago": func(t time.Time) string { return time.Since(t).Truncate(time.Second).String() + " ago" },
}, statusHTML)

// HTTPHandler returns the handler of the HTTP listener: the status page, its JSON and /metrics.
// It is safe for concurrent use and may serve after Close (it then shows the last known state).
func (s *Server) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(s.metrics.reg))
	mux.HandleFunc("GET /status.json", func(w http.ResponseWriter, r *http.Request) {
		body, err := json.MarshalIndent(s.View(r.Context()), "", "  ")
		if err != nil {
			http.Error(w, "cannot encode the status", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(append(body, '\n')) //nolint:errcheck // the client went away
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		if err := statusPage.Execute(&b, struct {
			V       ClusterView
			Refresh int
		}{s.View(r.Context()), statusRefresh}); err != nil {
			s.log.Error("status page failed", "err", err)
			http.Error(w, "cannot render the status page", http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
		h.Set("X-Content-Type-Options", "nosniff")
		w.Write(b.Bytes()) //nolint:errcheck // the client went away
	})
	return mux
}

// ServeHTTPListener serves HTTPHandler on ln until ctx ends, then stops gracefully (for at most
// 5 seconds) and returns nil. It closes ln.
func (s *Server) ServeHTTPListener(ctx context.Context, ln net.Listener) error {
	return metrics.Serve(ctx, ln, s.HTTPHandler())
}
