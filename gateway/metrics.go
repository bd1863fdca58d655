package gateway

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/mogway/mogway/internal/metrics"
	"github.com/mogway/mogway/tracker/client"
)

// The gateway's metrics are served on their own listener (metrics_listen) to clients in
// status_allow: the main listener maps every path to keys. Counters the gateway keeps already
// (Stats, the nodes, the tracker pool, the cache, purge) are read at scrape time; the request path
// adds only the per-route counters and histograms below, resolved once per route and observed
// without allocating when the request's access record is finished.

// Label indexes of the per-route request counters.
const (
	numMethods = 5 // GET, HEAD, PUT, DELETE, other
	numClasses = 5 // 1xx..5xx
	numCache   = 8 // "none" and the cache statuses MISS..BYPASS
)

var (
	metricMethods = [numMethods]string{"GET", "HEAD", "PUT", "DELETE", "other"}
	metricClasses = [numClasses]string{"1xx", "2xx", "3xx", "4xx", "5xx"}
	metricCache   = [numCache]string{"none", "MISS", "HIT", "EXPIRED", "STALE", "UPDATING", "REVALIDATED", "BYPASS"}
)

// noRoute is the route label of requests that matched no route (status, health, purge, 404s).
const noRoute = "none"

// Tracker commands the gateway times.
const (
	tcGetPaths = iota
	tcCreateOpen
	tcCreateClose
	tcDelete
	numTrackerCommands
)

var trackerCommands = [numTrackerCommands]string{"get_paths", "create_open", "create_close", "delete"}

// trackerLatency holds one histogram per tracker command; a nil *trackerLatency observes nothing.
type trackerLatency [numTrackerCommands]prometheus.Observer

func (l *trackerLatency) observe(cmd int, start time.Time) {
	if l != nil && l[cmd] != nil {
		l[cmd].Observe(time.Since(start).Seconds())
	}
}

// routeMetrics are the counters of one route prefix; they outlive reloads.
type routeMetrics struct {
	name     string
	requests [numMethods][numClasses][numCache]atomic.Int64
	latency  prometheus.Observer
}

// gatewayMetrics is a gateway's private registry.
type gatewayMetrics struct {
	reg       *prometheus.Registry
	fast      fasthttp.RequestHandler // reg for the main listener (metrics_path)
	latency   *prometheus.HistogramVec
	firstByte prometheus.Observer
	none      *routeMetrics
	tracker   trackerLatency

	mu     sync.Mutex // guards routes
	routes map[string]*routeMetrics
}

func (s *Server) initMetrics() {
	m := &s.metrics
	m.reg = metrics.NewRegistry()
	m.fast = metrics.FastHandler(m.reg)
	m.routes = map[string]*routeMetrics{}
	m.latency = metrics.LatencyHistogram("gateway", "request_duration_seconds",
		"Time from a request's head to the end of its answer (the last body byte when streamed).", "route")
	fb := prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: metrics.Namespace, Subsystem: "gateway", Name: "upstream_first_byte_seconds",
		Help:    "Time from sending a request to a storage node or upstream server to its response head, per attempt.",
		Buckets: metrics.LatencyBuckets,
	})
	m.firstByte = fb
	m.none = m.route(noRoute)
	tl := metrics.LatencyHistogram("gateway", "tracker_command_duration_seconds",
		"Time of a tracker command through the pool, failovers to other trackers included.", "command")
	for i, name := range trackerCommands {
		m.tracker[i] = tl.WithLabelValues(name)
	}
	m.reg.MustRegister(m.latency, fb, tl, s.collector())
}

// route returns the counters of a route prefix, creating them on first use.
func (m *gatewayMetrics) route(name string) *routeMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	rm := m.routes[name]
	if rm == nil {
		rm = &routeMetrics{name: name, latency: m.latency.WithLabelValues(name)}
		m.routes[name] = rm
	}
	return rm
}

// bind gives every route of t its counters.
func (m *gatewayMetrics) bind(t *table) {
	for _, r := range t.routes {
		r.metrics = m.route(r.Prefix)
	}
}

// observe counts a finished request. It does not allocate.
func (m *gatewayMetrics) observe(rec *accessRecord) {
	rm := rec.metrics
	if rm == nil {
		rm = m.none
	}
	mi := slices.Index(metricMethods[:numMethods-1], rec.method)
	if mi < 0 {
		mi = numMethods - 1 // "other"
	}
	ci := min(max(rec.status/100, 1), 5) - 1
	ki := max(slices.Index(metricCache[:], rec.cache), 0) // "none" when unknown
	rm.requests[mi][ci][ki].Add(1)
	if !rec.start.IsZero() {
		rm.latency.Observe(time.Since(rec.start).Seconds())
	}
	for _, d := range rec.times {
		m.firstByte.Observe(d.Seconds())
	}
}

// collector exports the request counters and the gateway's existing Stats at scrape time.
func (s *Server) collector() prometheus.Collector {
	c := &metrics.Collector{}
	const sub = "gateway"
	requests := c.Desc(sub, "requests_total", "Requests answered, by route prefix, method, status class and cache status.",
		"route", "method", "status", "cache")
	bad := c.Desc(sub, "bad_requests_total", "Requests refused as malformed (400).")
	pathCache := c.Desc(sub, "path_cache_lookups_total", "get_paths answers served from the path cache (hit) or asked of a tracker (miss).", "result")
	pathKeys := c.Desc(sub, "path_cache_keys", "Keys in the path cache.")
	trackerErrs := c.Desc(sub, "tracker_errors_total", "Tracker commands that failed without an ERR reply (down, timeout).")
	failovers := c.Desc(sub, "failovers_total", "Answers served by another copy or server than the first tried.")
	resumed := c.Desc(sub, "resumed_total", "Bodies continued from another copy after a break.")
	aborted := c.Desc(sub, "aborted_total", "Bodies cut after the status line was sent.")
	upFailed := c.Desc(sub, "upstream_failed_total", "Requests for which no copy or server gave a usable answer.")
	hedges := c.Desc(sub, "hedges_total", "Hedged reads: sent, won (answer served), cancelled (dropped, another answered first), refused (by the budget).", "result")
	uploads := c.Desc(sub, "uploads_total", "Files stored through the gateway.")
	uploadBytes := c.Desc(sub, "upload_bytes_total", "Bytes of the files stored through the gateway.")
	deletes := c.Desc(sub, "deletes_total", "Keys deleted through the gateway.")
	reloads := c.Desc(sub, "reloads_total", "Configuration reloads.")
	nodeReq := c.Desc(sub, "node_requests_total", "Requests sent to a storage node or upstream server.", "node")
	nodeFail := c.Desc(sub, "node_failures_total", "Requests to a storage node or upstream server that failed.", "node")
	nodeInflight := c.Desc(sub, "node_in_flight", "Requests to a storage node or upstream server in progress.", "node")
	nodeConns := c.Desc(sub, "node_connections", "Open connections to a storage node or upstream server.", "node")
	nodeUp := c.Desc(sub, "node_up", "0 while the node is avoided after failures (passive health check), 1 otherwise.", "node")
	nodeLatency := c.Desc(sub, "node_first_byte_seconds", "Moving average of a node's first-byte latency (0 before the first answer).", "node")
	nodeSuspect := c.Desc(sub, "node_suspect", "1 while a request to the node is stuck past its hedge delay, 0 otherwise.", "node")
	trReq := c.Desc(sub, "tracker_requests_total", "Commands sent to a tracker of the pool.", "tracker")
	trFail := c.Desc(sub, "tracker_failures_total", "Commands to a tracker of the pool that failed.", "tracker")
	trInflight := c.Desc(sub, "tracker_in_flight", "Commands to a tracker in progress.", "tracker")
	trUp := c.Desc(sub, "tracker_up", "0 while the tracker is skipped after a failure, 1 otherwise.", "tracker")
	trIdle := c.Desc(sub, "tracker_idle_connections", "Idle connections kept open to a tracker.", "tracker")
	trOpened := c.Desc(sub, "tracker_connections_opened_total", "Connections opened to a tracker.", "tracker")
	trWaits := c.Desc(sub, "tracker_connection_waits_total", "Tracker commands that waited for a connection (limits.max_conns_per_tracker).", "tracker")
	trWaitTimeouts := c.Desc(sub, "tracker_connection_wait_timeouts_total", "Waits for a tracker connection that ran out, so the next tracker was tried.", "tracker")
	cacheLookups := c.Desc(sub, "cache_lookups_total", "Cache lookups by tier and result.", "tier", "result")
	cacheBytes := c.Desc(sub, "cache_bytes", "Bytes held by a cache tier.", "tier")
	cacheEntries := c.Desc(sub, "cache_entries", "Entries held by a cache tier.", "tier")
	cacheEvictions := c.Desc(sub, "cache_evictions_total", "Entries evicted from a cache tier to make room.", "tier")
	cacheFills := c.Desc(sub, "cache_fills_total", "Cache fills by result.", "result")
	cacheFilling := c.Desc(sub, "cache_fills_in_progress", "Cache fills in progress.")
	cacheServed := c.Desc(sub, "cache_served_total", "Cache answers that were stale, updating or revalidated.", "status")
	cachePurged := c.Desc(sub, "cache_purged_total", "Cache entries removed or marked by purges.")
	purgeReq := c.Desc(sub, "purge_requests_total", "Purge requests by result: denied (403), refused (400/405), not_found, other (accepted and matched).", "result")
	purgeEntries := c.Desc(sub, "purge_entries_total", "Entries purged locally.")
	purgeBytes := c.Desc(sub, "purge_bytes_total", "Bytes purged locally.")
	purgePeers := c.Desc(sub, "purge_deliveries_total", "Purge deliveries to peers by result.", "result")
	purgePending := c.Desc(sub, "purge_journal_pending", "Purges in the journal waiting for delivery.")
	purgeJournalErrs := c.Desc(sub, "purge_journal_errors_total", "Failed journal writes.")
	c.Func = func(ch chan<- prometheus.Metric) {
		s.metrics.mu.Lock()
		routes := make([]*routeMetrics, 0, len(s.metrics.routes))
		for _, rm := range s.metrics.routes {
			routes = append(routes, rm)
		}
		s.metrics.mu.Unlock()
		for _, rm := range routes {
			for mi := range numMethods {
				for ci := range numClasses {
					for ki := range numCache {
						if n := rm.requests[mi][ci][ki].Load(); n > 0 {
							metrics.Counter(ch, requests, float64(n), rm.name, metricMethods[mi], metricClasses[ci], metricCache[ki])
						}
					}
				}
			}
		}
		st := s.Stats()
		metrics.Counter(ch, bad, float64(st.BadRequests))
		metrics.Counter(ch, pathCache, float64(st.PathCacheHits), "hit")
		metrics.Counter(ch, pathCache, float64(st.PathCacheMisses), "miss")
		metrics.Gauge(ch, pathKeys, float64(st.PathCacheKeys))
		metrics.Counter(ch, trackerErrs, float64(st.TrackerErrors))
		metrics.Counter(ch, failovers, float64(st.Failovers))
		metrics.Counter(ch, resumed, float64(st.Resumed))
		metrics.Counter(ch, aborted, float64(st.Aborted))
		metrics.Counter(ch, upFailed, float64(st.UpstreamFailed))
		metrics.Counter(ch, hedges, float64(st.Hedges), "sent")
		metrics.Counter(ch, hedges, float64(st.HedgesWon), "won")
		metrics.Counter(ch, hedges, float64(st.HedgesCancelled), "cancelled")
		metrics.Counter(ch, hedges, float64(st.HedgeBudgetExhausted), "refused")
		metrics.Counter(ch, uploads, float64(st.Uploads))
		metrics.Counter(ch, uploadBytes, float64(st.UploadBytes))
		metrics.Counter(ch, deletes, float64(st.Deletes))
		metrics.Counter(ch, reloads, float64(st.Reloads))
		for _, n := range s.nodes.all() {
			ns := n.stats(s.now())
			metrics.Counter(ch, nodeReq, float64(ns.Requests), ns.Addr)
			metrics.Counter(ch, nodeFail, float64(ns.Failures), ns.Addr)
			metrics.Gauge(ch, nodeInflight, float64(n.getting.Load()+int64(n.hc.PendingRequests())), ns.Addr)
			metrics.Gauge(ch, nodeConns, float64(ns.Conns), ns.Addr)
			metrics.Gauge(ch, nodeUp, metrics.Bool(ns.Up), ns.Addr)
			metrics.Gauge(ch, nodeLatency, ns.LatencyMs/1000, ns.Addr)
			metrics.Gauge(ch, nodeSuspect, metrics.Bool(ns.Suspect), ns.Addr)
		}
		if ps, ok := st.Tracker.(client.PoolStats); ok {
			for _, t := range ps.Trackers {
				metrics.Counter(ch, trReq, float64(t.Requests), t.Addr)
				metrics.Counter(ch, trFail, float64(t.Failures), t.Addr)
				metrics.Gauge(ch, trInflight, float64(t.InFlight), t.Addr)
				metrics.Gauge(ch, trUp, metrics.Bool(t.Up), t.Addr)
				metrics.Gauge(ch, trIdle, float64(t.Idle), t.Addr)
				metrics.Counter(ch, trOpened, float64(t.Opened), t.Addr)
				metrics.Counter(ch, trWaits, float64(t.Waits), t.Addr)
				metrics.Counter(ch, trWaitTimeouts, float64(t.WaitTimeouts), t.Addr)
			}
		}
		if cs := st.Cache; cs != nil {
			for tier, ts := range map[string]struct{ h, m, b, e, ev int64 }{
				"memory": {cs.Memory.Hits, cs.Memory.Misses, cs.Memory.Bytes, cs.Memory.Entries, cs.Memory.Evictions},
				"disk":   {cs.Disk.Hits, cs.Disk.Misses, cs.Disk.Bytes, cs.Disk.Entries, cs.Disk.Evictions},
			} {
				metrics.Counter(ch, cacheLookups, float64(ts.h), tier, "hit")
				metrics.Counter(ch, cacheLookups, float64(ts.m), tier, "miss")
				metrics.Gauge(ch, cacheBytes, float64(ts.b), tier)
				metrics.Gauge(ch, cacheEntries, float64(ts.e), tier)
				metrics.Counter(ch, cacheEvictions, float64(ts.ev), tier)
			}
			metrics.Counter(ch, cacheFills, float64(cs.Fills), "stored")
			metrics.Counter(ch, cacheFills, float64(cs.FillErrors), "failed")
			metrics.Gauge(ch, cacheFilling, float64(cs.Filling))
			metrics.Counter(ch, cacheServed, float64(cs.Stale), "STALE")
			metrics.Counter(ch, cacheServed, float64(cs.Updating), "UPDATING")
			metrics.Counter(ch, cacheServed, float64(cs.Revalidated), "REVALIDATED")
			metrics.Counter(ch, cachePurged, float64(cs.Purged))
		}
		if p := st.Purge; p != nil {
			other := p.Requests - p.Denied - p.Refused - p.NotFound
			metrics.Counter(ch, purgeReq, float64(p.Denied), "denied")
			metrics.Counter(ch, purgeReq, float64(p.Refused), "refused")
			metrics.Counter(ch, purgeReq, float64(p.NotFound), "not_found")
			metrics.Counter(ch, purgeReq, float64(max(other, 0)), "other")
			metrics.Counter(ch, purgeEntries, float64(p.Purged))
			metrics.Counter(ch, purgeBytes, float64(p.Bytes))
			metrics.Counter(ch, purgePeers, float64(p.PeerOK), "ok")
			metrics.Counter(ch, purgePeers, float64(p.PeerFail), "failed")
			metrics.Gauge(ch, purgePending, float64(p.Pending))
			metrics.Counter(ch, purgeJournalErrs, float64(p.JournalErrors))
		}
	}
	return c
}

// MetricsHandler serves /metrics to clients in status_allow (403 for others). It reads the
// configuration in force at each request, so a reload of status_allow applies at once.
func (s *Server) MetricsHandler() http.Handler {
	h := metrics.Handler(s.metrics.reg)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil || !metrics.Allowed(s.state.Load().statusAllow, ap.Addr()) {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// ServeMetrics serves MetricsHandler on ln (metrics_listen) until ctx ends, then stops gracefully
// (for at most 5 seconds) and returns nil. It closes ln.
func (s *Server) ServeMetrics(ctx context.Context, ln net.Listener) error {
	return metrics.Serve(ctx, ln, s.MetricsHandler())
}
