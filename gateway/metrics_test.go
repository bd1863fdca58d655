package gateway

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/cache"
	"github.com/mogway/mogway/internal/clustertest"
	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/metrics/metricstest"
	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/purge"
)

// serveMetrics runs g's metrics listener on loopback and returns its /metrics URL.
func serveMetrics(t *testing.T, g *gw) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.srv.ServeMetrics(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeMetrics: %v", err)
		}
	})
	return "http://" + ln.Addr().String() + "/metrics"
}

// TestMetricsCountRequests drives uploads and downloads through a gateway in front of a real
// cluster and checks that /metrics moved by exactly what was done.
func TestMetricsCountRequests(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, clustertest.Options{Domains: map[string]map[string]int{"d": {"c2": 2}}})
	c.WaitWritable(t, 0, c.AllDevIDs()...)
	// Hedging off: under load a GET can outlast its hedge delay, and a hedge that finds every copy
	// stuck asks the tracker again, a sixth path-cache lookup the counts below do not expect.
	g := clusterGateway(t, c.TrackerAddrs(), Route{Prefix: "/d/", Domain: "d", Class: "c2",
		Methods: []string{"GET", "PUT", "DELETE"}, Allow: []string{"127.0.0.0/8"}, Hedge: Hedge{Delay: "off"}})
	url := serveMetrics(t, g)
	before := metricstest.Scrape(t, url)

	data := pattern(5000)
	if code, body := put(t, g.base+"/d/a.bin", bytes.NewReader(data), int64(len(data))); code != 201 {
		t.Fatalf("PUT = %d %q, want 201", code, body)
	}
	for range 3 {
		if code, _, body, err := get(t, "GET", g.base+"/d/a.bin"); code != 200 || !bytes.Equal(body, data) || err != nil {
			t.Fatalf("GET = %d, %d bytes, %v", code, len(body), err)
		}
	}
	if code, _, _, _ := get(t, "GET", g.base+"/d/missing"); code != 404 {
		t.Fatalf("GET missing = %d, want 404", code)
	}
	if code, _, _, _ := get(t, "HEAD", g.base+"/d/a.bin"); code != 200 {
		t.Fatalf("HEAD = %d, want 200", code)
	}

	raw := metricstest.Get(t, url)
	after := metricstest.Parse(t, raw)
	delta := metricstest.Deltas(before, after)
	metricstest.CheckMoves(t, before, after, []metricstest.Move{
		{Name: "mogway_gateway_requests_total", Labels: []string{"route", "/d/", "method", "PUT", "status", "2xx", "cache", "none"}, Want: 1},
		{Name: "mogway_gateway_requests_total", Labels: []string{"route", "/d/", "method", "GET", "status", "2xx"}, Want: 3},
		{Name: "mogway_gateway_requests_total", Labels: []string{"route", "/d/", "method", "GET", "status", "4xx"}, Want: 1},
		{Name: "mogway_gateway_requests_total", Labels: []string{"route", "/d/", "method", "HEAD", "status", "2xx"}, Want: 1},
		{Name: "mogway_gateway_requests_total", Labels: []string{"route", "/d/", "status", "5xx"}, Want: 0},
		{Name: "mogway_gateway_request_duration_seconds", Labels: []string{"route", "/d/"}, Want: 6},
		{Name: "mogway_gateway_uploads_total", Want: 1},
		{Name: "mogway_gateway_upload_bytes_total", Want: 5000},
		{Name: "mogway_gateway_path_cache_lookups_total", Want: 5},
		{Name: "mogway_gateway_tracker_command_duration_seconds", Labels: []string{"command", "create_open"}, Want: 1},
		{Name: "mogway_gateway_tracker_command_duration_seconds", Labels: []string{"command", "create_close"}, Want: 1},
		{Name: "mogway_gateway_tracker_command_duration_seconds", Labels: []string{"command", "delete"}, Want: 0},
	})
	// Every get_paths asked of a tracker is timed.
	if got, want := delta("mogway_gateway_tracker_command_duration_seconds", "command", "get_paths"),
		delta("mogway_gateway_path_cache_lookups_total", "result", "miss"); got != want || got == 0 {
		t.Errorf("get_paths timed %v times, path cache missed %v times; want equal, not 0", got, want)
	}
	// Every attempt at a node is one first-byte observation.
	if fb, nr := delta("mogway_gateway_upstream_first_byte_seconds"), delta("mogway_gateway_node_requests_total"); fb < 4 || fb != nr {
		t.Errorf("upstream_first_byte_seconds moved by %v and node_requests_total by %v; want equal and at least 4", fb, nr)
	}
	if got := delta("mogway_gateway_tracker_requests_total"); got < 2 {
		t.Errorf("tracker_requests_total moved by %v, want at least 2 (create_open, create_close)", got)
	}
	for _, n := range after.LabelValues("mogway_gateway_node_up", "node") {
		if after.Value("mogway_gateway_node_up", "node", n) != 1 {
			t.Errorf("node_up{%s} = 0, want 1", n)
		}
	}
	if bytes.Contains(raw, []byte("a.bin")) || bytes.Contains(raw, []byte("missing")) {
		t.Errorf("metrics mention a key:\n%s", raw)
	}
	metricstest.Promtool(t, raw)
}

// TestMetricsStatusAllow: the metrics listener answers 403 outside status_allow.
func TestMetricsStatusAllow(t *testing.T) {
	t.Parallel()
	cfg := trackerConfig()
	cfg.StatusAllow = []string{"10.0.0.0/8"}
	g := startGateway(t, cfg, Deps{Tracker: newFakeTracker()})
	url := serveMetrics(t, g)
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET /metrics from outside status_allow = %d, want 403", resp.StatusCode)
	}
}

// TestMetricsObserveAllocs: counting a finished request allocates nothing.
func TestMetricsObserveAllocs(t *testing.T) {
	g := startGateway(t, trackerConfig(), Deps{Tracker: newFakeTracker()})
	rt := g.srv.state.Load().table.routes[0]
	rec := &accessRecord{method: "GET", status: 200, cache: "HIT", start: time.Now(), metrics: rt.metrics}
	rec.addUpstream("127.0.0.2:7500", time.Millisecond)
	if n := testing.AllocsPerRun(100, func() { g.srv.metrics.observe(rec) }); n != 0 {
		t.Errorf("observe allocates %v times per request, want 0", n)
	}
}

// servedGateway starts a gateway on a tracker route whose file d/k ("abc") is on a storage node at
// 127.0.0.1, and GETs it once so that the status page has a node and a request to show. It returns
// the gateway and the node.
func servedGateway(t *testing.T) (*gw, *storageNode) {
	t.Helper()
	n := startStorage(t, "127.0.0.1")
	f := newFakeTracker()
	f.set("d", "k", n.put(t, 1, []byte("abc")))
	g := startGateway(t, trackerConfig(), Deps{Tracker: f})
	if code, _, _, _ := get(t, "GET", g.base+"/d/k"); code != 200 {
		t.Fatalf("GET /d/k = %d, want 200", code)
	}
	return g, n
}

// TestStatusPageHTML: /status answers HTML to a browser and JSON otherwise.
func TestStatusPageHTML(t *testing.T) {
	t.Parallel()
	g, n := servedGateway(t)
	code, hdr, body, _ := get(t, "GET", g.base+"/status", "Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /status as a browser = %d %q, want 200 text/html", code, hdr.Get("Content-Type"))
	}
	for _, want := range []string{"mogway gateway", `id="nodes"`, n.addr, "st-ok"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("status page lacks %q:\n%s", want, body)
		}
	}
	code, hdr, body, _ = get(t, "GET", g.base+"/status")
	if code != 200 || hdr.Get("Content-Type") != "application/json" || !strings.HasPrefix(string(body), "{") {
		t.Errorf("GET /status = %d %q %.40q, want 200 JSON", code, hdr.Get("Content-Type"), body)
	}
}

func TestConfigMetricsListen(t *testing.T) {
	for _, tc := range []struct {
		listen, metrics string
		ok              bool
	}{
		{"", "127.0.0.1:9180", true},
		{"127.0.0.1:0", "127.0.0.1:0", true}, // two free ports
		{":8080", ":8080", false},
		{"", ":8080", false}, // the default listen
		{"", "9180", false},
	} {
		cfg := trackerConfig()
		cfg.Listen, cfg.MetricsListen = tc.listen, tc.metrics
		err := cfg.Validate()
		if (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Error(), "metrics_listen")) {
			t.Errorf("Validate(listen %q, metrics_listen %q) = %v, want ok %v", tc.listen, tc.metrics, err, tc.ok)
		}
	}
}

// TestMetricsOnMainListener: metrics_path serves the same registry on the gateway's own port, to
// status_allow only, and "off" leaves the path to the routes.
func TestMetricsOnMainListener(t *testing.T) {
	t.Parallel()
	g := startGateway(t, trackerConfig(), Deps{Tracker: newFakeTracker()})
	code, hdr, body, _ := get(t, "GET", g.base+"/metrics")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") ||
		!strings.Contains(string(body), "mogway_gateway_request_duration_seconds") {
		t.Fatalf("GET /metrics on the main listener = %d %q, %.200s; want the Prometheus text", code, hdr.Get("Content-Type"), body)
	}
	if code, _, _, _ := get(t, "POST", g.base+"/metrics"); code == 200 {
		t.Errorf("POST /metrics = 200, want it refused")
	}

	closed := trackerConfig()
	closed.StatusAllow = []string{"10.0.0.0/8"}
	if code, _, _, _ := get(t, "GET", startGateway(t, closed, Deps{Tracker: newFakeTracker()}).base+"/metrics"); code != 403 {
		t.Errorf("GET /metrics from outside status_allow = %d, want 403", code)
	}

	off := trackerConfig()
	off.MetricsPath = "off"
	if code, _, body, _ := get(t, "GET", startGateway(t, off, Deps{Tracker: newFakeTracker()}).base+"/metrics"); code == 200 && strings.Contains(string(body), "mogway_") {
		t.Errorf("metrics_path off: GET /metrics still answers the metrics")
	}
}

// TestMetricsObserveLabels: observe counts a request under its method (anything but GET, HEAD, PUT
// and DELETE as "other"), its status class and its cache status ("none" when it has none or an
// unknown one).
func TestMetricsObserveLabels(t *testing.T) {
	g := startGateway(t, trackerConfig(), Deps{Tracker: newFakeTracker()})
	rm := g.srv.state.Load().table.routes[0].metrics
	tests := []struct {
		method, cache string
		status        int
		mi, ci, ki    int
	}{
		{"GET", "HIT", 200, 0, 1, 2},
		{"HEAD", "", 304, 1, 2, 0},
		{"PUT", "none", 201, 2, 1, 0},
		{"DELETE", "BYPASS", 404, 3, 3, 7},
		{"OPTIONS", "MISS", 502, 4, 4, 1},
		{"GET", "SOMETHING", 99, 0, 0, 0},
		{"get", "REVALIDATED", 600, 4, 4, 6},
	}
	for _, tt := range tests {
		c := &rm.requests[tt.mi][tt.ci][tt.ki]
		before := c.Load()
		g.srv.metrics.observe(&accessRecord{method: tt.method, status: tt.status, cache: tt.cache, metrics: rm})
		if got := c.Load() - before; got != 1 {
			t.Errorf("observe(%s %d cache %q) counted %d under %s/%s/%s, want 1", tt.method, tt.status, tt.cache,
				got, metricMethods[tt.mi], metricClasses[tt.ci], metricCache[tt.ki])
		}
	}
}

// TestMetricsNodeUp: node_up is 0 for an upstream server marked down after max_fails failures, 1
// for the others, and 1 again once its fail_timeout has passed.
func TestMetricsNodeUp(t *testing.T) {
	t.Parallel()
	grp := startMaxFailsGroup(t, 73)
	url := serveMetrics(t, grp.g)
	nodeUp := func(when string, wantBad float64) {
		t.Helper()
		m := metricstest.Scrape(t, url)
		for addr, want := range map[string]float64{grp.bad.addr: wantBad, grp.good.addr: 1} {
			if !m.Has("mogway_gateway_node_up", "node", addr) {
				t.Errorf("%s: node_up{node=%q} missing", when, addr)
			} else if got := m.Value("mogway_gateway_node_up", "node", addr); got != want {
				t.Errorf("%s: node_up{node=%q} = %v, want %v", when, addr, got, want)
			}
		}
	}
	// Round robin alternates first picks: the first request fails once on the bad server (not yet
	// max_fails), and the third fails there again within fail_timeout, which marks it down.
	grp.fetch(t)
	if n := grp.bad.accepted.Load(); n != 1 {
		t.Fatalf("bad server tried %d times in 1 request, want 1", n)
	}
	nodeUp("after one failure", 1)
	for range 3 {
		grp.fetch(t)
	}
	if n := grp.bad.accepted.Load(); n != 2 {
		t.Fatalf("bad server tried %d times in 4 requests, want 2", n)
	}
	nodeUp("after max_fails failures", 0)
	grp.clock.Advance(10 * time.Second)
	nodeUp("after fail_timeout", 1)
}

// cacheMetricsOrigin serves /m/small (100 bytes), /m/big (4000 bytes) and /m/boom (a 500).
func cacheMetricsOrigin(t *testing.T, ip string) *httpServer {
	t.Helper()
	files := map[string][]byte{"/m/small": pattern(100), "/m/big": pattern(4000)}
	return startHTTP(t, ip, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/m/boom" {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		testutil.ServeBytes(w, r, files)
	})
}

// TestMetricsCacheAndPurgeLabels drives lookups in both cache tiers, stored and failed fills, purges
// of every result and deliveries to a live and a dead peer, and checks that each labelled sample
// moved by exactly that.
func TestMetricsCacheAndPurgeLabels(t *testing.T) {
	t.Parallel()
	const token = "purge-token-0123456789"
	up := cacheMetricsOrigin(t, "127.0.0.18")
	peer := startGateway(t, Config{Purge: &purge.Config{Token: token, Deny: []string{"all"}},
		Routes: []Route{{Prefix: "/m/", Servers: []UpstreamServer{{Addr: up.addr}}}}}, Deps{})
	dead := deadAddr(t, "127.0.0.19")
	// A failed peer is retried from the journal after retry_min: far beyond the test.
	g := startGateway(t, Config{
		Cache: &cache.Config{MemoryMaxObject: conf.KiB, Disk: cache.DiskConfig{Path: t.TempDir()}},
		Purge: &purge.Config{Token: token, Deny: []string{"all"}, Peers: []string{strings.TrimPrefix(peer.base, "http://"), dead},
			JournalDir: t.TempDir(), RetryMin: conf.Duration(time.Hour), RetryMax: conf.Duration(time.Hour)},
		Routes: []Route{{Prefix: "/m/", Servers: []UpstreamServer{{Addr: up.addr}}, Hedge: Hedge{Delay: "off"}}},
	}, Deps{})
	url := serveMetrics(t, g)
	before := metricstest.Scrape(t, url)

	fetch := func(p string, wantCode int, wantCS string) {
		t.Helper()
		code, h, _, err := get(t, "GET", g.base+p)
		if err != nil || code != wantCode || h.Get("X-Cache-Status") != wantCS {
			t.Fatalf("GET %s = %d %q, %v; want %d %s", p, code, h.Get("X-Cache-Status"), err, wantCode, wantCS)
		}
	}
	fetch("/m/small", 200, "MISS") // memory and disk miss, fill stored in both tiers
	waitFills(t, g, 1)
	fetch("/m/small", 200, "HIT") // memory hit
	fetch("/m/small", 200, "HIT") // memory hit
	fetch("/m/big", 200, "MISS")  // memory and disk miss, stored on disk only (over memory_max_object)
	waitFills(t, g, 2)
	fetch("/m/big", 200, "HIT")   // memory miss, disk hit
	fetch("/m/boom", 502, "MISS") // memory and disk miss, fill failed
	waitFor(t, "the failed fill counted", func() bool { return g.srv.cache.Stats().FillErrors == 1 })

	purgeReq := func(method, p string, want int, hdr ...string) {
		t.Helper()
		if code, _, body, err := get(t, method, g.base+p, hdr...); err != nil || code != want {
			t.Fatalf("%s %s = %d %q, %v; want %d", method, p, code, body, err, want)
		}
	}
	// Each result a different number of times, so that no two labels can be mixed up unnoticed.
	auth := []string{"Authorization", "Bearer " + token}
	for range 4 {
		purgeReq("PURGE", "/purge/m/small", 403) // denied: no token
	}
	purgeReq("POST", "/purge/m/small", 405, auth...)        // refused: method
	purgeReq("PURGE", "/purge/m/small?tag=t", 400, auth...) // refused: a tag purge with a path
	// not_found; each is delivered to the live peer, and the first fails on the dead one, which
	// then backs off: the later purges are journaled for it without an attempt.
	for _, k := range []string{"a", "b", "c"} {
		purgeReq("PURGE", "/purge/m/nothing/"+k, 404, auth...)
	}
	purgeReq("PURGE", "/purge/m/small", 200, auth...) // other: accepted and matched

	after := metricstest.Scrape(t, url)
	metricstest.CheckMoves(t, before, after, []metricstest.Move{
		{Name: "mogway_gateway_cache_lookups_total", Labels: []string{"tier", "memory", "result", "hit"}, Want: 2},
		{Name: "mogway_gateway_cache_lookups_total", Labels: []string{"tier", "memory", "result", "miss"}, Want: 4},
		{Name: "mogway_gateway_cache_lookups_total", Labels: []string{"tier", "disk", "result", "hit"}, Want: 1},
		{Name: "mogway_gateway_cache_lookups_total", Labels: []string{"tier", "disk", "result", "miss"}, Want: 3},
		{Name: "mogway_gateway_cache_fills_total", Labels: []string{"result", "stored"}, Want: 2},
		{Name: "mogway_gateway_cache_fills_total", Labels: []string{"result", "failed"}, Want: 1},
		{Name: "mogway_gateway_purge_requests_total", Labels: []string{"result", "denied"}, Want: 4},
		{Name: "mogway_gateway_purge_requests_total", Labels: []string{"result", "refused"}, Want: 2},
		{Name: "mogway_gateway_purge_requests_total", Labels: []string{"result", "not_found"}, Want: 3},
		{Name: "mogway_gateway_purge_requests_total", Labels: []string{"result", "other"}, Want: 1},
		{Name: "mogway_gateway_purge_entries_total", Want: 1},
		{Name: "mogway_gateway_purge_deliveries_total", Labels: []string{"result", "ok"}, Want: 4},
		{Name: "mogway_gateway_purge_deliveries_total", Labels: []string{"result", "failed"}, Want: 1},
		{Name: "mogway_gateway_purge_journal_pending", Want: 4},
	})
}

// TestMetricsCacheAndPurgeOnlyWhenConfigured: the cache metrics exist only on a gateway with a cache
// section, the purge metrics only on one with a purge section, and the per-tracker metrics only on
// one that talks to trackers itself.
func TestMetricsCacheAndPurgeOnlyWhenConfigured(t *testing.T) {
	t.Parallel()
	cacheNames := []string{"mogway_gateway_cache_bytes", "mogway_gateway_cache_entries", "mogway_gateway_cache_evictions_total",
		"mogway_gateway_cache_fills_in_progress", "mogway_gateway_cache_fills_total", "mogway_gateway_cache_lookups_total",
		"mogway_gateway_cache_purged_total", "mogway_gateway_cache_served_total"}
	purgeNames := []string{"mogway_gateway_purge_bytes_total", "mogway_gateway_purge_deliveries_total",
		"mogway_gateway_purge_entries_total", "mogway_gateway_purge_journal_errors_total",
		"mogway_gateway_purge_journal_pending", "mogway_gateway_purge_requests_total"}
	trackerNames := []string{"mogway_gateway_tracker_connection_wait_timeouts_total", "mogway_gateway_tracker_connection_waits_total",
		"mogway_gateway_tracker_connections_opened_total", "mogway_gateway_tracker_failures_total",
		"mogway_gateway_tracker_idle_connections", "mogway_gateway_tracker_in_flight", "mogway_gateway_tracker_requests_total",
		"mogway_gateway_tracker_up"}
	upstream := []Route{{Prefix: "/u/", Servers: []UpstreamServer{{Addr: "127.0.0.1:1"}}}}
	for _, tc := range []struct {
		name                  string
		cfg                   Config
		cache, purge, tracker bool
	}{
		{"neither", Config{Routes: upstream}, false, false, false},
		{"cache", Config{Cache: &cache.Config{}, Routes: upstream}, true, false, false},
		{"purge", Config{Purge: &purge.Config{}, Routes: upstream}, false, true, false},
		{"both", Config{Cache: &cache.Config{}, Purge: &purge.Config{}, Routes: upstream}, true, true, false},
		{"trackers", trackerConfig(), false, false, true},
	} {
		g := startGateway(t, tc.cfg, Deps{})
		m := metricstest.Scrape(t, g.base+"/metrics")
		var got []string
		for name := range m {
			if strings.HasPrefix(name, "mogway_gateway_cache_") || strings.HasPrefix(name, "mogway_gateway_purge_") ||
				(strings.HasPrefix(name, "mogway_gateway_tracker_") && name != "mogway_gateway_tracker_command_duration_seconds" &&
					name != "mogway_gateway_tracker_errors_total") {
				got = append(got, name)
			}
		}
		slices.Sort(got)
		var want []string
		for _, f := range []struct {
			on    bool
			names []string
		}{{tc.cache, cacheNames}, {tc.purge, purgeNames}, {tc.tracker, trackerNames}} {
			if f.on {
				want = append(want, f.names...)
			}
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: cache, purge and per-tracker metrics served:\n%q\nwant:\n%q", tc.name, got, want)
		}
	}
}
