package gateway

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mogway/mogway/cache"
	"github.com/mogway/mogway/internal/clustertest"
	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/purge"
)

// warmCache starts a gateway with the cache cc on the tracker route /d/ and a settable clock, and
// fills the cache with d/key, whose content is data.
func warmCache(t *testing.T, cc cache.Config, ft *fakeTracker, key string, data []byte) (*gw, *testutil.Clock) {
	t.Helper()
	clk := testutil.NewClock()
	g := startGateway(t, cacheRouteConfig(cc), Deps{Tracker: ft, Now: clk.Now})
	fetchCached(t, "GET", g.base+"/d/"+key, data, "MISS")
	waitFills(t, g, 1)
	return g, clk
}

func TestCacheStaleWhileStorageDownThenRefreshed(t *testing.T) {
	t.Parallel()
	n, ft, data := storedObject(t, "s.bin", 55, 50000)
	g, clk := warmCache(t, cache.Config{StaleIfError: conf.Duration(time.Hour)}, ft, "s.bin", data)

	// Expired, and the only copy is now on a node that is down.
	clk.Advance(11 * time.Minute)
	ft.set("d", "s.bin", "http://"+deadAddr(t, "127.0.0.3")+fidPath(56))
	fetchCached(t, "GET", g.base+"/d/s.bin", data, "STALE")
	// The tracker down too.
	clk.Advance(time.Minute)
	ft.mu.Lock()
	ft.all = errors.New("tracker down")
	ft.mu.Unlock()
	fetchCached(t, "GET", g.base+"/d/s.bin", data, "STALE")

	// Back: a new copy (another fid) replaces the entry.
	newData := pattern(60000)
	ft.mu.Lock()
	ft.all = nil
	ft.mu.Unlock()
	cachedObject(t, n, ft, "s.bin", 57, newData)
	clk.Advance(time.Minute)
	fetchCached(t, "GET", g.base+"/d/s.bin", newData, "EXPIRED")
	waitFills(t, g, 2)
	fetchCached(t, "GET", g.base+"/d/s.bin", newData, "HIT")

	// Expired again with the same fid: revalidated without reading storage.
	gets := n.srv.Stats().Gets
	clk.Advance(11 * time.Minute)
	fetchCached(t, "GET", g.base+"/d/s.bin", newData, "REVALIDATED")
	if got := n.srv.Stats().Gets; got != gets {
		t.Errorf("storage GETs = %d after a revalidation, want %d", got, gets)
	}
	if got := g.srv.cache.Stats().Stale; got != 2 {
		t.Errorf("cache Stats().Stale = %d, want 2", got)
	}
}

func TestCacheStaleWithoutStaleIfErrorFails(t *testing.T) {
	t.Parallel()
	_, ft, data := storedObject(t, "x.bin", 60, 5000)
	g, clk := warmCache(t, cache.Config{}, ft, "x.bin", data)
	clk.Advance(11 * time.Minute)
	ft.set("d", "x.bin", "http://"+deadAddr(t, "127.0.0.3")+fidPath(61))
	if code, h, _, _ := get(t, "GET", g.base+"/d/x.bin"); code != 502 {
		t.Fatalf("GET of an expired entry with storage down = %d %q, want 502 (no stale_if_error)", code, h.Get("X-Cache-Status"))
	}
}

func TestCacheUpstreamRouteCacheControl(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	hits := map[string]int{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		mu.Unlock()
		switch r.URL.Path {
		case "/up/nostore":
			w.Header().Set("Cache-Control", "no-store")
		case "/up/private":
			w.Header().Set("Cache-Control", "private, max-age=60")
		case "/up/cookie":
			w.Header().Set("Set-Cookie", "a=b")
		}
		w.Header().Set("ETag", `"e1"`)
		io.WriteString(w, "body of "+r.URL.Path)
	})}
	ln, err := net.Listen("tcp", "127.0.0.4:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	cfg := Config{Cache: &cache.Config{}, Routes: []Route{
		{Prefix: "/up/", Servers: []UpstreamServer{{Addr: ln.Addr().String()}}},
		{Prefix: "/ig/", Servers: []UpstreamServer{{Addr: ln.Addr().String()}},
			Cache: RouteCache{Enabled: "on", UpstreamCacheControl: "ignore", Key: "path"}},
	}}
	g := startGateway(t, cfg, Deps{})
	for _, tc := range []struct {
		path   string
		second string
	}{
		{"/up/plain", "HIT"}, {"/up/nostore", "MISS"}, {"/up/private", "MISS"}, {"/up/cookie", "MISS"},
	} {
		want := []byte("body of " + tc.path)
		fetchCached(t, "GET", g.base+tc.path, want, "MISS")
		waitFor(t, "fill of "+tc.path, func() bool { return g.srv.cache.Stats().Filling == 0 })
		fetchCached(t, "GET", g.base+tc.path, want, tc.second)
	}
	// Route ignoring upstream Cache-Control, keyed by path only.
	want := []byte("body of /ig/x")
	fetchCached(t, "GET", g.base+"/ig/x?a=1", want, "MISS")
	waitFor(t, "fill of /ig/x", func() bool { return g.srv.cache.Stats().Filling == 0 })
	fetchCached(t, "GET", g.base+"/ig/x?a=2", want, "HIT")
}

// An upstream 5xx on a cached route is never stored, even with valid "any": the client gets 502.
// With stale_if_error an expired copy is served instead (STALE) within the window, and 502 after it.
func TestCacheUpstream5xxNotStoredAndStaleIfError(t *testing.T) {
	t.Parallel()
	var status atomic.Int64 // what the upstream answers
	var hits atomic.Int64
	status.Store(503)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=600") // no reason to refuse it but its status
		w.WriteHeader(int(status.Load()))
		io.WriteString(w, "body of "+r.URL.Path)
	})}
	ln := testutil.Listen(t, "127.0.0.4:0")
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	clk := testutil.NewClock()
	cfg := Config{Cache: &cache.Config{StaleIfError: conf.Duration(time.Hour),
		Valid: map[string]conf.Duration{"200": conf.Duration(10 * time.Minute), "any": conf.Duration(10 * time.Minute)}},
		Routes: []Route{{Prefix: "/up/", Servers: []UpstreamServer{{Addr: ln.Addr().String(), MaxFails: -1}}}}}
	g := startGateway(t, cfg, Deps{Now: clk.Now})

	// Nothing stored: each request goes upstream and gets 502.
	for i := range 2 {
		code, h, _, err := get(t, "GET", g.base+"/up/cold")
		if err != nil || code != 502 || h.Get("X-Cache-Status") != "MISS" {
			t.Fatalf("GET %d of a key upstream answers 503 = %d %q, %v; want 502 MISS", i, code, h.Get("X-Cache-Status"), err)
		}
		if got := hits.Load(); got != int64(i+1) {
			t.Fatalf("upstream requests after GET %d = %d, want %d (a 5xx must not be stored)", i, got, i+1)
		}
	}
	if st := g.srv.cache.Stats(); st.Fills != 0 || st.Memory.Entries != 0 {
		t.Fatalf("cache after upstream 503s: %d fills, %d entries; want none", st.Fills, st.Memory.Entries)
	}

	// A stored copy, expired, while upstream answers 500: served STALE within stale_if_error.
	status.Store(200)
	want := []byte("body of /up/warm")
	fetchCached(t, "GET", g.base+"/up/warm", want, "MISS")
	waitFills(t, g, 1)
	status.Store(500)
	clk.Advance(11 * time.Minute)
	h := fetchCached(t, "GET", g.base+"/up/warm", want, "STALE")
	if cs := h.Get("Cache-Status"); !strings.Contains(cs, "detail=stale-if-error") {
		t.Errorf("Cache-Status = %q, want detail=stale-if-error", cs)
	}
	if got := g.srv.cache.Stats().Stale; got != 1 {
		t.Errorf("cache Stats().Stale = %d, want 1", got)
	}
	// Past the window: the error.
	clk.Advance(time.Hour)
	if code, h, _, err := get(t, "GET", g.base+"/up/warm"); err != nil || code != 502 {
		t.Errorf("GET past stale_if_error with upstream answering 500 = %d %q, %v; want 502", code, h.Get("X-Cache-Status"), err)
	}
}

func TestCacheStaleWhileRevalidateAndSoftPurge(t *testing.T) {
	t.Parallel()
	n, ft, data := storedObject(t, "u.bin", 120, 20000)
	g, clk := warmCache(t, cache.Config{StaleWhileRevalidate: conf.Duration(time.Hour)}, ft, "u.bin", data)

	// Expired, and a new copy exists: the old one is served at once while one refresh runs.
	newData := pattern(20001)
	cachedObject(t, n, ft, "u.bin", 121, newData)
	clk.Advance(11 * time.Minute)
	h := fetchCached(t, "GET", g.base+"/d/u.bin", data, "UPDATING")
	if cs := h.Get("Cache-Status"); !strings.Contains(cs, "detail=updating") {
		t.Errorf("Cache-Status = %q, want detail=updating", cs)
	}
	waitFills(t, g, 2)
	fetchCached(t, "GET", g.base+"/d/u.bin", newData, "HIT")

	// A soft purge: the next request gets the old copy while it is refreshed.
	if code, body := doPurge(t, testClient(), g.base+"/purge/d/u.bin?soft=1"); code != 200 || !strings.Contains(body, `"soft":true`) {
		t.Fatalf("soft PURGE = %d %s, want 200 soft", code, body)
	}
	fetchCached(t, "GET", g.base+"/d/u.bin", newData, "UPDATING")
	// The copy did not change (same fid): the refresh revalidates it without reading storage.
	waitFor(t, "the refresh", func() bool { return g.srv.cache.Stats().Filling == 0 })
	fetchCached(t, "GET", g.base+"/d/u.bin", newData, "HIT")
}

// TestClusterCacheStaleWhileNodesDown runs the cache against a real tracker and storage nodes: a
// tracker-side upload is cached, a PUT through the gateway replaces the cached copy, and after a
// tracker-side overwrite the old copy is served stale while both nodes are down and refreshed once
// they are back.
func TestClusterCacheStaleWhileNodesDown(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, clustertest.Options{Nodes: 2, Domains: map[string]map[string]int{"d": {"c2": 2}}})
	data := pattern(150000)
	c.Upload(t, "d", "k.bin", "c2", data)
	clustertest.Eventually(t, "two copies", func() bool { return len(c.GetPaths(t, "d", "k.bin")) == 2 })
	clk := testutil.NewClock()
	// Hedging off: the test counts the gateway's requests to storage, and under load a copy can
	// take longer than the hedge delay to answer, which would send a second request.
	cfg := Config{Trackers: c.TrackerAddrs(), Hedge: Hedge{Delay: "off"}, Routes: []Route{{Prefix: "/d/", Domain: "d", Class: "c2",
		Methods: []string{"GET", "PUT", "DELETE"}, Allow: []string{"127.0.0.0/8"}}},
		Cache: &cache.Config{StaleIfError: conf.Duration(time.Hour)}, Purge: &purge.Config{}}
	cfg.Timeouts.TrackerConnect = conf.Duration(500 * time.Millisecond)
	cfg.Timeouts.TrackerRead = conf.Duration(2 * time.Second)
	cfg.Timeouts.StorageConnect = conf.Duration(500 * time.Millisecond)
	g := startGateway(t, cfg, Deps{Now: clk.Now})
	// Storage nodes also serve the tracker's monitor; count the gateway's own requests to them.
	gets := func() (n int64) {
		for _, ns := range g.srv.Stats().Nodes {
			n += ns.Requests
		}
		return n
	}

	fetchCached(t, "GET", g.base+"/d/k.bin", data, "MISS")
	waitFills(t, g, 1)
	fetchCached(t, "GET", g.base+"/d/k.bin", data, "HIT")
	if got := gets(); got != 1 {
		t.Fatalf("gateway requests to storage = %d, want 1", got)
	}

	// A PUT through the gateway replaces the cached copy.
	newer := pattern(1234)
	if code, body := put(t, g.base+"/d/k.bin", bytes.NewReader(newer), int64(len(newer))); code != 201 {
		t.Fatalf("PUT = %d %q, want 201", code, body)
	}
	fetchCached(t, "GET", g.base+"/d/k.bin", newer, "MISS")
	waitFills(t, g, 2)
	data = newer

	// The key is overwritten tracker-side (a new fid), then every storage node goes down: the old
	// bytes are served stale until the new ones can be read.
	second := pattern(160000)
	c.Upload(t, "d", "k.bin", "c2", second)
	c.StopNode(t, 0)
	c.StopNode(t, 1)
	clk.Advance(11 * time.Minute) // past the entry's 10m and the path cache's 5s
	fetchCached(t, "GET", g.base+"/d/k.bin", data, "STALE")

	c.StartNode(t, 0)
	c.StartNode(t, 1)
	deadline := time.Now().Add(30 * time.Second)
	for {
		clk.Advance(11 * time.Second) // past the nodes' fail_timeout and the path cache
		code, h, body, err := get(t, "GET", g.base+"/d/k.bin")
		st := h.Get("X-Cache-Status")
		if err == nil && code == 200 && st == "EXPIRED" && bytes.Equal(body, second) {
			break
		}
		if err != nil || code != 200 || st != "STALE" || !bytes.Equal(body, data) {
			t.Fatalf("GET with the nodes back = %d %q, %d bytes, %v; want the old bytes STALE until the new ones are read",
				code, st, len(body), err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the entry was not refreshed after the nodes came back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitFor(t, "refresh stored", func() bool { return g.srv.cache.Stats().Fills == 3 })
	fetchCached(t, "GET", g.base+"/d/k.bin", second, "HIT")
}

func TestCacheUpstreamRevalidationAndChunkedBodies(t *testing.T) {
	t.Parallel()
	data := pattern(70000)
	modified := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	full, notMod := 0, 0
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/up/chunked" {
			for i := 0; i < len(data); i += 10000 {
				w.Write(data[i:min(i+10000, len(data))])
				w.(http.Flusher).Flush()
			}
			return
		}
		mu.Lock()
		if r.Header.Get("If-None-Match") == `"v1"` {
			notMod++
		} else {
			full++
		}
		mu.Unlock()
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, "x.bin", modified, bytes.NewReader(data))
	})}
	ln, err := net.Listen("tcp", "127.0.0.4:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	clk := testutil.NewClock()
	cfg := Config{Cache: &cache.Config{}, Routes: []Route{{Prefix: "/up/", Servers: []UpstreamServer{{Addr: ln.Addr().String()}}}}}
	g := startGateway(t, cfg, Deps{Now: clk.Now})

	fetchCached(t, "GET", g.base+"/up/x.bin", data, "MISS")
	waitFills(t, g, 1)
	clk.Advance(11 * time.Minute)
	fetchCached(t, "GET", g.base+"/up/x.bin", data, "REVALIDATED")
	fetchCached(t, "GET", g.base+"/up/x.bin", data, "HIT")
	mu.Lock()
	if full != 1 || notMod != 1 {
		t.Errorf("upstream full answers, 304s = %d, %d; want 1, 1", full, notMod)
	}
	mu.Unlock()

	// A body of unknown length is streamed chunked, stored, then served with its length and ranges.
	fetchCached(t, "GET", g.base+"/up/chunked", data, "MISS")
	waitFills(t, g, 2)
	h := fetchCached(t, "GET", g.base+"/up/chunked", data, "HIT")
	if h.Get("Content-Length") != strconv.Itoa(len(data)) {
		t.Errorf("cached chunked body: Content-Length = %q, want %d", h.Get("Content-Length"), len(data))
	}
	code, h, body, _ := get(t, "GET", g.base+"/up/chunked", "Range", "bytes=5-9")
	if code != 206 || !bytes.Equal(body, data[5:10]) || h.Get("Content-Range") != "bytes 5-9/70000" {
		t.Errorf("Range on a cached chunked body = %d %q %d bytes, want 206 bytes 5-9/70000", code, h.Get("Content-Range"), len(body))
	}
}
