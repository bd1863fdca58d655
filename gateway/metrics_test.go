package gateway

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/clustertest"
	"github.com/mogway/mogway/internal/metrics/metricstest"
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
