package gateway

import (
	"encoding/json"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/mogway/mogway/cache"
	"github.com/mogway/mogway/internal/httpconn"
	"github.com/mogway/mogway/purge"
)

// counters are the gateway's atomic counters.
type counters struct {
	requests, badRequests                       atomic.Int64
	status2xx, status3xx, status4xx, status5xx  atomic.Int64
	pathHits, pathMisses, trackerErrors         atomic.Int64
	failovers, resumed, aborted, upstreamFailed atomic.Int64
	uploads, uploadBytes, deletes, reloads      atomic.Int64
	hedges, hedgesWon, hedgesCancelled          atomic.Int64
	hedgeBudgetExhausted                        atomic.Int64
}

func (c *counters) countStatus(code int) {
	switch {
	case code >= 500:
		c.status5xx.Add(1)
	case code >= 400:
		c.status4xx.Add(1)
	case code >= 300:
		c.status3xx.Add(1)
	default:
		c.status2xx.Add(1)
	}
}

// Stats is a snapshot of the gateway's counters and upstream health, as /status shows it.
type Stats struct {
	Uptime      string `json:"uptime"`
	Requests    int64  `json:"requests"`
	BadRequests int64  `json:"bad_requests"`
	Status2xx   int64  `json:"status_2xx"`
	Status3xx   int64  `json:"status_3xx"`
	Status4xx   int64  `json:"status_4xx"`
	Status5xx   int64  `json:"status_5xx"`
	// PathCacheHits and PathCacheMisses count get_paths answers served from the cache or asked for.
	PathCacheHits   int64 `json:"path_cache_hits"`
	PathCacheMisses int64 `json:"path_cache_misses"`
	PathCacheKeys   int   `json:"path_cache_keys"`
	// TrackerErrors counts tracker commands that failed without an ERR reply (down, timeout).
	TrackerErrors int64 `json:"tracker_errors"`
	// Failovers counts answers served by another copy or server than the first tried.
	Failovers int64 `json:"failovers"`
	// Resumed counts bodies continued from another copy after a break; Aborted counts bodies cut.
	Resumed int64 `json:"resumed"`
	Aborted int64 `json:"aborted"`
	// UpstreamFailed counts requests for which no copy or server gave a usable answer.
	UpstreamFailed int64 `json:"upstream_failed"`
	// Hedges counts hedged reads sent (a second copy or server asked while the first was slow),
	// HedgesWon those whose answer was served, HedgesCancelled the attempts dropped because another
	// answered first, HedgeBudgetExhausted the times the budget refused a hedge.
	Hedges               int64 `json:"hedges"`
	HedgesWon            int64 `json:"hedges_won"`
	HedgesCancelled      int64 `json:"hedges_cancelled"`
	HedgeBudgetExhausted int64 `json:"hedge_budget_exhausted"`
	Uploads              int64 `json:"uploads"`
	UploadBytes          int64 `json:"upload_bytes"`
	Deletes              int64 `json:"deletes"`
	Reloads              int64 `json:"reloads"`
	// Connections are the client connections of the running listener; nil before Serve.
	Connections *httpconn.Stats `json:"connections,omitempty"`
	// Nodes are the storage nodes and upstream servers the gateway has talked to.
	Nodes []NodeStats `json:"nodes"`
	// Tracker is the tracker pool's own state, when the pool offers one (a Stats() method).
	Tracker any `json:"tracker,omitempty"`
	// Cache is the response cache's counters; nil without a cache.
	Cache *cache.Stats `json:"cache,omitempty"`
	// Purge is the purge service's counters; nil without purge.
	Purge *purge.Stats `json:"purge,omitempty"`
}

// Stats returns a snapshot of the counters and node health.
func (s *Server) Stats() Stats {
	now := s.now()
	st := s.state.Load()
	c := &s.stats
	out := Stats{
		Uptime:               now.Sub(s.started).Truncate(time.Second).String(),
		Requests:             c.requests.Load(),
		BadRequests:          c.badRequests.Load(),
		Status2xx:            c.status2xx.Load(),
		Status3xx:            c.status3xx.Load(),
		Status4xx:            c.status4xx.Load(),
		Status5xx:            c.status5xx.Load(),
		PathCacheHits:        c.pathHits.Load(),
		PathCacheMisses:      c.pathMisses.Load(),
		PathCacheKeys:        st.paths.len(),
		TrackerErrors:        c.trackerErrors.Load(),
		Failovers:            c.failovers.Load(),
		Resumed:              c.resumed.Load(),
		Aborted:              c.aborted.Load(),
		UpstreamFailed:       c.upstreamFailed.Load(),
		Hedges:               c.hedges.Load(),
		HedgesWon:            c.hedgesWon.Load(),
		HedgesCancelled:      c.hedgesCancelled.Load(),
		HedgeBudgetExhausted: c.hedgeBudgetExhausted.Load(),
		Uploads:              c.uploads.Load(),
		UploadBytes:          c.uploadBytes.Load(),
		Deletes:              c.deletes.Load(),
		Reloads:              c.reloads.Load(),
		Nodes:                []NodeStats{},
	}
	if t := s.conns.Load(); t != nil {
		cs := t.Stats()
		out.Connections = &cs
	}
	for _, n := range s.nodes.all() {
		out.Nodes = append(out.Nodes, n.stats(now))
	}
	if sp, ok := st.tracker.(interface{ Stats() any }); ok {
		out.Tracker = sp.Stats()
	}
	if s.cache != nil {
		cs := s.cache.Stats()
		out.Cache = &cs
	}
	if s.purger != nil {
		ps := s.purger.Stats()
		out.Purge = &ps
	}
	return out
}

// builtin answers the health and status paths; it reports whether it did.
func (s *Server) builtin(ctx *fasthttp.RequestCtx, st *state, path string, client netip.Addr) bool {
	switch path {
	case st.cfg.HealthPath:
		if !ctx.IsGet() && !ctx.IsHead() {
			return false
		}
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("ok\n")
		return true
	case st.cfg.StatusPath, st.cfg.MetricsPath:
		if !ctx.IsGet() && !ctx.IsHead() {
			return false
		}
		if !inNets(st.statusAllow, client) {
			plainError(ctx, fasthttp.StatusForbidden, "forbidden")
			return true
		}
		if path != st.cfg.StatusPath { // MetricsPath; the status page wins where the two are the same
			s.metrics.fast(ctx)
			return true
		}
		if wantsHTML(ctx) {
			s.serveStatusHTML(ctx)
			return true
		}
		body, err := json.MarshalIndent(s.Stats(), "", "  ")
		if err != nil {
			plainError(ctx, fasthttp.StatusInternalServerError, "cannot encode status")
			return true
		}
		ctx.SetContentType("application/json")
		ctx.Response.Header.Set("Cache-Control", "no-store")
		ctx.Response.Header.Set("Vary", "Accept")
		ctx.SetBody(append(body, '\n'))
		return true
	}
	return false
}
