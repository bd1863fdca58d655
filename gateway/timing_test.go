package gateway

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// Micro-benchmarks of the request path. The end-to-end ones run a gateway on an in-memory listener in
// front of a fasthttp origin on loopback, so the numbers include the client and the origin.

// startOrigin serves body on ip with a fixed ETag and Last-Modified for every path, as a storage node
// serves a fid.
func startOrigin(tb testing.TB, ip string, body []byte) string {
	tb.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		tb.Fatalf("listen %s: %v", ip, err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("ETag", `"5f0-1000"`)
		ctx.Response.Header.Set("Last-Modified", "Sat, 21 Nov 2026 10:00:00 GMT")
		ctx.SetContentType("application/octet-stream")
		ctx.SetBody(body)
	}}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	tb.Cleanup(func() {
		srv.Shutdown() //nolint:errcheck // the listener is ours
		<-done
	})
	return ln.Addr().String()
}

// startMemGateway runs a gateway with cfg on an in-memory listener and returns a client for it.
func startMemGateway(tb testing.TB, cfg Config, deps Deps) (*Server, *fasthttp.HostClient) {
	tb.Helper()
	srv, err := New(cfg, deps, nil)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	ln := fasthttputil.NewInmemoryListener()
	cancel, done := serve(srv, ln)
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Serve: %v", err)
		}
	})
	hc := &fasthttp.HostClient{Addr: "gateway", Dial: func(string) (net.Conn, error) { return ln.Dial() },
		MaxIdleConnDuration: time.Minute}
	return srv, hc
}

// benchGet fetches uri b.N times and checks each answer.
func benchGet(b *testing.B, hc *fasthttp.HostClient, uri string, size int) {
	b.Helper()
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(uri)
	req.Header.SetHost("gateway")
	b.ReportAllocs()
	b.SetBytes(int64(size))
	for b.Loop() {
		if err := hc.DoTimeout(req, resp, 10*time.Second); err != nil {
			b.Fatalf("GET %s: %v", uri, err)
		}
		if resp.StatusCode() != fasthttp.StatusOK || len(resp.Body()) != size {
			b.Fatalf("GET %s = %d with %d bytes, want 200 with %d", uri, resp.StatusCode(), len(resp.Body()), size)
		}
	}
}

func benchConfig(routes ...Route) Config {
	cfg := trackerConfig(routes...)
	cfg.AccessLog = "off"
	return cfg
}

// BenchmarkTrackerGet is a small GET on a tracker route whose get_paths answer is cached: the miss
// path of the response cache.
func BenchmarkTrackerGet(b *testing.B) {
	for _, size := range []int{4 << 10, 256 << 10} {
		b.Run(strconv.Itoa(size>>10)+"KiB", func(b *testing.B) {
			addr := startOrigin(b, "127.0.0.2", pattern(size))
			ft := newFakeTracker()
			ft.set("d", "k", "http://"+addr+fidPath(17))
			_, hc := startMemGateway(b, benchConfig(), Deps{Tracker: ft})
			benchGet(b, hc, "/d/k", size)
		})
	}
}

// BenchmarkUpstreamGet is a small GET on an upstream route of two servers.
func BenchmarkUpstreamGet(b *testing.B) {
	for _, size := range []int{4 << 10, 256 << 10} {
		b.Run(strconv.Itoa(size>>10)+"KiB", func(b *testing.B) {
			body := pattern(size)
			a1, a2 := startOrigin(b, "127.0.0.2", body), startOrigin(b, "127.0.0.3", body)
			cfg := benchConfig(Route{Prefix: "/g/", Servers: []UpstreamServer{{Addr: a1}, {Addr: a2}}})
			_, hc := startMemGateway(b, cfg, Deps{})
			benchGet(b, hc, "/g/M00/00/00/abc.jpg", size)
		})
	}
}

// BenchmarkPathCacheHit is a get_paths answer served from the path cache.
func BenchmarkPathCacheHit(b *testing.B) {
	c, ft := hotPathCache()
	b.ReportAllocs()
	for b.Loop() {
		if _, hit, err := c.lookup(ft, pathKey{"photos", "a/b.jpg", false}); !hit || err != nil {
			b.Fatalf("lookup = hit %v, err %v; want a hit", hit, err)
		}
	}
}

func hotPathCache() (*pathCache, *fakeTracker) {
	ft := newFakeTracker()
	ft.set("photos", "a/b.jpg", "http://127.0.0.2:7500/dev1/0/000/000/0000000017.fid")
	c := newPathCache(PathCache{TTL: 5e9, Size: 100}, time.Now)
	c.lookup(ft, pathKey{"photos", "a/b.jpg", false}) //nolint:errcheck // fills the cache
	return c, ft
}

// BenchmarkRoute is the per-request routing work: URI parsing, longest-prefix match and key derivation.
func BenchmarkRoute(b *testing.B) {
	cfg := benchConfig(Route{Prefix: "/d/", Domain: "d"}, Route{Prefix: "/download/", Domain: "photos"},
		Route{Prefix: "/group1/M00/", Servers: []UpstreamServer{{Addr: "127.0.0.2:1"}}})
	tab := newTable(cfg.withDefaults().Routes, newNodes(nodeOptions{}), false)
	raw := []byte("/download/2026/11/a%20b.jpg?size=large")
	b.ReportAllocs()
	for b.Loop() {
		routeKey(b, tab, raw)
	}
}

func routeKey(tb testing.TB, tab *table, raw []byte) string {
	rp, err := parseRequestPath(raw)
	if err != nil {
		tb.Fatalf("parseRequestPath(%q): %v", raw, err)
	}
	rt := tab.match(rp.clean)
	if rt == nil || tab.match(rp.written) != rt {
		tb.Fatalf("match(%q) = %v", rp.clean, rt)
	}
	key, err := deriveKey(rt.Key, rt.Prefix, rp.clean)
	if err != nil || key != "2026/11/a b.jpg" {
		tb.Fatalf("deriveKey(%q) = %q, %v; want %q", rp.clean, key, err, "2026/11/a b.jpg")
	}
	return key
}

// TestProxiedGetAllocs pins the allocations of a warm 4 KiB GET on an upstream route and on a tracker
// route whose get_paths answer is cached, counted over the whole process: gateway, client and origin.
// A new allocation on the proxy path fails it; lower the limits when the path gets cheaper.
func TestProxiedGetAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	body := pattern(4 << 10)
	tests := []struct {
		name  string
		setup func(t *testing.T) (hc *fasthttp.HostClient, uri string)
		max   float64
	}{
		{"upstream route", func(t *testing.T) (*fasthttp.HostClient, string) {
			a1, a2 := startOrigin(t, "127.0.0.2", body), startOrigin(t, "127.0.0.3", body)
			_, hc := startMemGateway(t, benchConfig(Route{Prefix: "/g/", Servers: []UpstreamServer{{Addr: a1}, {Addr: a2}}}), Deps{})
			return hc, "/g/M00/00/00/abc.jpg"
		}, 6},
		{"tracker route, cached paths", func(t *testing.T) (*fasthttp.HostClient, string) {
			addr := startOrigin(t, "127.0.0.2", body)
			ft := newFakeTracker()
			ft.set("d", "k", "http://"+addr+fidPath(17))
			_, hc := startMemGateway(t, benchConfig(), Deps{Tracker: ft})
			return hc, "/d/k"
		}, 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hc, uri := tc.setup(t)
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI(uri)
			req.Header.SetHost("gateway")
			get := func() {
				if err := hc.DoTimeout(req, resp, 10*time.Second); err != nil || resp.StatusCode() != 200 || len(resp.Body()) != len(body) {
					t.Fatalf("GET %s = %d with %d bytes (%v), want 200 with %d", uri, resp.StatusCode(), len(resp.Body()), err, len(body))
				}
			}
			for range 10 { // warm the pools and connections
				get()
			}
			n := testing.AllocsPerRun(200, get)
			t.Logf("GET %s: %v allocations per request", uri, n)
			if n > tc.max {
				t.Errorf("GET %s: %v allocations per request, want at most %v", uri, n, tc.max)
			}
		})
	}
}
