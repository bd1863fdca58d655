package storaged

import (
	"net/netip"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/mogway/mogway/internal/metrics"
)

// MetricsPath serves the node's metrics in the Prometheus text format to clients in metrics_allow.
// No file lives there: files are under /dev<N>/.
const MetricsPath = "/metrics"

// method indexes of the latency histogram.
const (
	mGet = iota
	mHead
	mPut
	mDelete
	mOther
	numMethods
)

var methodNames = [numMethods]string{"GET", "HEAD", "PUT", "DELETE", "other"}

// nodeMetrics is the node's registry. The counters it shows are the Server's own Stats, read at
// scrape time; the hot path only observes one latency per request.
type nodeMetrics struct {
	reg     *prometheus.Registry
	serve   fasthttp.RequestHandler
	allow   []netip.Prefix
	latency [numMethods]prometheus.Observer
}

func (s *Server) initMetrics() {
	m := &s.metrics
	m.reg = metrics.NewRegistry()
	m.serve = metrics.FastHandler(m.reg)
	m.allow, _, _ = metrics.ParseNets(s.cfg.MetricsAllow) // checked by Validate
	hist := metrics.LatencyHistogram("storaged", "request_duration_seconds",
		"Time from a request's head to its handler's return (a streamed GET body is still being sent).", "method")
	for i, name := range methodNames {
		m.latency[i] = hist.WithLabelValues(name)
	}
	m.reg.MustRegister(hist, s.collector())
}

// serveMetrics answers MetricsPath; it reports whether the request was for it.
func (s *Server) serveMetrics(ctx *fasthttp.RequestCtx) bool {
	if string(ctx.Path()) != MetricsPath || !(ctx.IsGet() || ctx.IsHead()) {
		return false
	}
	addr, _ := netip.AddrFromSlice(ctx.RemoteIP())
	if !metrics.Allowed(s.metrics.allow, addr) {
		s.reply(ctx, fasthttp.StatusForbidden, "")
		return true
	}
	s.metrics.serve(ctx)
	return true
}

// method returns the index of ctx's method in methodNames.
func method(ctx *fasthttp.RequestCtx) int {
	switch {
	case ctx.IsGet():
		return mGet
	case ctx.IsHead():
		return mHead
	case ctx.IsPut():
		return mPut
	case ctx.IsDelete():
		return mDelete
	}
	return mOther
}

// observe records the latency of one request with method m that started at start, and that it is
// no longer open.
func (s *Server) observe(m int, start time.Time) {
	s.metrics.latency[m].Observe(time.Since(start).Seconds())
	s.stats.open.Add(-1)
}

// collector exports Stats and the devices' usage and health at scrape time.
func (s *Server) collector() prometheus.Collector {
	c := &metrics.Collector{}
	const sub = "storaged"
	requests := c.Desc(sub, "requests_total", "HTTP requests by method.", "method")
	errs := c.Desc(sub, "errors_total", "Error replies: not_found (404), client (other 4xx), server (5xx).", "kind")
	puts := c.Desc(sub, "puts_total", "PUTs by result: created (stored) or aborted (refused or failed).", "result")
	in := c.Desc(sub, "received_bytes_total", "Body bytes stored by PUT.")
	out := c.Desc(sub, "sent_bytes_total", "Body bytes of GET replies.")
	mgmt := c.Desc(sub, "mgmt_commands_total", "Side-channel lines answered.")
	open := c.Desc(sub, "open_requests", "HTTP requests being handled now.")
	total := c.Desc(sub, "device_total_bytes", "Size of the filesystem holding the device.", "device")
	used := c.Desc(sub, "device_used_bytes", "Bytes used on the filesystem holding the device.", "device")
	avail := c.Desc(sub, "device_available_bytes", "Bytes available on the filesystem holding the device.", "device")
	writable := c.Desc(sub, "device_writable", "1 if a probe file could be written on the device, 0 if not.", "device")
	c.Func = func(ch chan<- prometheus.Metric) {
		st := s.Stats()
		for i, v := range [...]int64{st.Gets, st.Heads, st.Puts, st.Deletes} {
			metrics.Counter(ch, requests, float64(v), methodNames[i])
		}
		metrics.Counter(ch, errs, float64(st.NotFound), "not_found")
		metrics.Counter(ch, errs, float64(st.BadRequests), "client")
		metrics.Counter(ch, errs, float64(st.ServerErrors), "server")
		metrics.Counter(ch, puts, float64(st.Created), "created")
		metrics.Counter(ch, puts, float64(st.Aborted), "aborted")
		metrics.Counter(ch, in, float64(st.BytesIn))
		metrics.Counter(ch, out, float64(st.BytesOut))
		metrics.Counter(ch, mgmt, float64(st.MgmtCommands))
		metrics.Gauge(ch, open, float64(s.stats.open.Load()))
		devs, err := s.devices()
		if err != nil {
			return
		}
		now := time.Now()
		for _, d := range devs {
			metrics.Gauge(ch, writable, metrics.Bool(s.probeWritable(d) == nil), d)
			u, err := measure(filepath.Join(s.cfg.Docroot, d), now)
			if err != nil {
				continue
			}
			metrics.Gauge(ch, total, float64(u.Total*1024), d)
			metrics.Gauge(ch, used, float64(u.Used*1024), d)
			metrics.Gauge(ch, avail, float64(u.Available*1024), d)
		}
	}
	return c
}
