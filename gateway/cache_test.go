package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mogway/mogway/cache"
	"github.com/mogway/mogway/internal/clustertest"
	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/purge"
)

// fakeClock is an injected clock for freshness tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// startGatewayAt runs a gateway on addr ("127.0.0.1:0" for any port) and returns it with a stop
// function; the stop also runs at cleanup.
func startGatewayAt(t *testing.T, cfg Config, deps Deps, addr string) (*gw, func()) {
	t.Helper()
	alog := &syncBuffer{}
	if deps.AccessLog == nil {
		deps.AccessLog = alog
	}
	srv, err := New(cfg, deps, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &gw{srv: srv, base: "http://" + ln.Addr().String(), log: alog}, stop
}

// cacheRouteConfig is a tracker route /d/ on domain d that accepts writes from loopback, with a cache
// and the purge route.
func cacheRouteConfig(cc cache.Config) Config {
	cfg := trackerConfig(Route{Prefix: "/d/", Domain: "d", Methods: []string{"GET", "PUT", "DELETE"},
		Allow: []string{"127.0.0.0/8"}})
	cfg.Cache = &cc
	cfg.Purge = &purge.Config{}
	return cfg
}

// cachedObject puts data on a storage node as fid and names it key in the fake tracker.
func cachedObject(t *testing.T, n *storageNode, ft *fakeTracker, key string, fid int64, data []byte) {
	t.Helper()
	ft.set("d", key, n.put(t, fid, data))
}

// fetch GETs url and fails the test unless the answer is 200 with want and the cache status wantCS.
func fetchCached(t *testing.T, method, url string, want []byte, wantCS string, hdr ...string) http.Header {
	t.Helper()
	code, h, body, err := get(t, method, url, hdr...)
	if err != nil || code != 200 {
		t.Fatalf("%s %s = %d, %v; want 200", method, url, code, err)
	}
	if method == "GET" && !bytes.Equal(body, want) {
		t.Fatalf("%s %s = %d bytes, want the %d stored", method, url, len(body), len(want))
	}
	if got := h.Get("X-Cache-Status"); got != wantCS {
		t.Fatalf("%s %s: X-Cache-Status = %q, want %q (Cache-Status %q)", method, url, got, wantCS, h.Get("Cache-Status"))
	}
	return h
}

func waitFills(t *testing.T, g *gw, n int64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d cache fills", n), func() bool { return g.srv.cache.Stats().Fills >= n })
}

func doPurge(t *testing.T, client *http.Client, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("PURGE", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("PURGE %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestCacheMissHitPurgeMiss(t *testing.T) {
	t.Parallel()
	n := startStorage(t, "127.0.0.2")
	ft := newFakeTracker()
	data := pattern(200000)
	cachedObject(t, n, ft, "a.jpg", 17, data)
	g := startGateway(t, cacheRouteConfig(cache.Config{}), Deps{Tracker: ft})

	h := fetchCached(t, "GET", g.base+"/d/a.jpg", data, "MISS")
	if cs := h.Get("Cache-Status"); !strings.HasPrefix(cs, "mogway; fwd=miss") {
		t.Errorf("Cache-Status = %q, want mogway; fwd=miss...", cs)
	}
	waitFills(t, g, 1)
	h = fetchCached(t, "GET", g.base+"/d/a.jpg", data, "HIT")
	if cs := h.Get("Cache-Status"); !strings.HasPrefix(cs, "mogway; hit; ttl=") {
		t.Errorf("Cache-Status = %q, want mogway; hit; ttl=...", cs)
	}
	if ct := h.Get("Content-Type"); ct != "image/jpeg" {
		t.Errorf("cached Content-Type = %q, want image/jpeg", ct)
	}
	// Another query string is another key of the same group.
	fetchCached(t, "GET", g.base+"/d/a.jpg?v=2", data, "MISS")
	waitFills(t, g, 2)
	if got := n.srv.Stats().Gets; got != 2 {
		t.Fatalf("storage GETs = %d, want 2", got)
	}
	code, body := doPurge(t, testClient(), g.base+"/purge/d/a.jpg")
	if code != 200 || !strings.Contains(body, `"purged":2`) {
		t.Fatalf("PURGE = %d %s, want 200 and 2 entries purged", code, body)
	}
	fetchCached(t, "GET", g.base+"/d/a.jpg", data, "MISS")
	if got := n.srv.Stats().Gets; got != 3 {
		t.Fatalf("storage GETs after purge = %d, want 3", got)
	}
	if code, body := doPurge(t, testClient(), g.base+"/purge/d/nothing.jpg"); code != 404 {
		t.Errorf("PURGE of an uncached path = %d %s, want 404", code, body)
	}
	waitFor(t, "access log cache field", func() bool {
		for _, line := range strings.Split(g.log.String(), "\n") {
			if strings.Contains(line, `"GET /d/a.jpg HTTP/1.1" 200 200000`) && strings.HasSuffix(line, " HIT") {
				return true
			}
		}
		return false
	})
	code, _, status, err := get(t, "GET", g.base+"/status")
	if err != nil || code != 200 || !strings.Contains(string(status), `"cache": {`) || !strings.Contains(string(status), `"purge": {`) {
		t.Errorf("GET /status = %d %s, %v; want cache and purge counters", code, status, err)
	}
	st := g.srv.Stats()
	if st.Cache == nil || st.Cache.Memory.Hits < 1 || st.Purge == nil || st.Purge.Purged != 2 {
		t.Errorf("Stats cache %+v purge %+v; want memory hits and 2 purged", st.Cache, st.Purge)
	}
}

func TestCacheConcurrentColdKeyOneFetch(t *testing.T) {
	t.Parallel()
	n := startStorage(t, "127.0.0.2")
	ft := newFakeTracker()
	data := pattern(3 << 20)
	cachedObject(t, n, ft, "big.bin", 21, data)
	g := startGateway(t, cacheRouteConfig(cache.Config{Disk: cache.DiskConfig{Path: t.TempDir()}}), Deps{Tracker: ft})
	const clients = 50
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := testClient().Get(g.base + "/d/big.bin")
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, data) {
				errs <- fmt.Errorf("GET = %d, %d bytes, %v; want 200 and the %d bytes", resp.StatusCode, len(body), err, len(data))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := n.srv.Stats().Gets; got != 1 {
		t.Fatalf("storage GETs for %d concurrent clients = %d, want 1", clients, got)
	}
}

func TestCacheHeadRangeConditional(t *testing.T) {
	t.Parallel()
	n := startStorage(t, "127.0.0.2")
	ft := newFakeTracker()
	data := pattern(100000)
	cachedObject(t, n, ft, "r.bin", 33, data)
	g := startGateway(t, cacheRouteConfig(cache.Config{}), Deps{Tracker: ft})

	// HEAD on a cold key fills the GET entry.
	h := fetchCached(t, "HEAD", g.base+"/d/r.bin", nil, "MISS")
	if h.Get("Content-Length") != strconv.Itoa(len(data)) {
		t.Errorf("HEAD Content-Length = %q, want %d", h.Get("Content-Length"), len(data))
	}
	waitFills(t, g, 1)
	h = fetchCached(t, "HEAD", g.base+"/d/r.bin", nil, "HIT")
	if h.Get("Content-Length") != strconv.Itoa(len(data)) {
		t.Errorf("HEAD (HIT) Content-Length = %q, want %d", h.Get("Content-Length"), len(data))
	}
	etag := h.Get("ETag")
	if etag != `"fid-33"` {
		t.Errorf("ETag = %q, want \"fid-33\"", etag)
	}
	st := n.srv.Stats()
	if st.Gets != 1 || st.Heads != 0 {
		t.Fatalf("storage GETs, HEADs = %d, %d; want 1, 0", st.Gets, st.Heads)
	}

	for _, tc := range []struct {
		rng, wantCR string
		from, to    int
	}{
		{"bytes=10-19", "bytes 10-19/100000", 10, 20},
		{"bytes=99990-", "bytes 99990-99999/100000", 99990, 100000},
		{"bytes=-5", "bytes 99995-99999/100000", 99995, 100000},
		{"bytes=99000-200000", "bytes 99000-99999/100000", 99000, 100000},
	} {
		code, h, body, err := get(t, "GET", g.base+"/d/r.bin", "Range", tc.rng)
		if err != nil || code != 206 || h.Get("Content-Range") != tc.wantCR || !bytes.Equal(body, data[tc.from:tc.to]) {
			t.Errorf("GET Range %s = %d %q, %d bytes, %v; want 206 %q and bytes %d-%d",
				tc.rng, code, h.Get("Content-Range"), len(body), err, tc.wantCR, tc.from, tc.to)
		}
		if h.Get("X-Cache-Status") != "HIT" {
			t.Errorf("GET Range %s: X-Cache-Status = %q, want HIT", tc.rng, h.Get("X-Cache-Status"))
		}
	}
	if code, h, _, _ := get(t, "GET", g.base+"/d/r.bin", "Range", "bytes=100000-"); code != 416 || h.Get("Content-Range") != "bytes */100000" {
		t.Errorf("GET Range past the end = %d %q, want 416 bytes */100000", code, h.Get("Content-Range"))
	}
	// If-Range with another validator: the whole body.
	if code, _, body, _ := get(t, "GET", g.base+"/d/r.bin", "Range", "bytes=0-9", "If-Range", `"fid-1"`); code != 200 || len(body) != len(data) {
		t.Errorf("GET with a stale If-Range = %d, %d bytes; want 200 and the whole body", code, len(body))
	}
	if code, _, body, _ := get(t, "GET", g.base+"/d/r.bin", "If-None-Match", etag); code != 304 || len(body) != 0 {
		t.Errorf("GET If-None-Match = %d, %d bytes; want 304 and no body", code, len(body))
	}
	if code, _, _, _ := get(t, "GET", g.base+"/d/r.bin", "If-None-Match", `"other"`); code != 200 {
		t.Errorf("GET If-None-Match other = %d, want 200", code)
	}
	if got := n.srv.Stats().Gets; got != 1 {
		t.Fatalf("storage GETs = %d, want 1: every answer comes from the cache", got)
	}
}

func TestCacheSlicesFetchOnlyTheRange(t *testing.T) {
	t.Parallel()
	n := startStorage(t, "127.0.0.2")
	ft := newFakeTracker()
	data := pattern(4 << 20)
	cachedObject(t, n, ft, "huge.bin", 44, data)
	g := startGateway(t, cacheRouteConfig(cache.Config{SliceSize: 64 * conf.KiB, MemoryMaxObject: 128 * conf.KiB}),
		Deps{Tracker: ft})
	off := 3<<20 + 1000
	code, h, body, err := get(t, "GET", g.base+"/d/huge.bin", "Range", fmt.Sprintf("bytes=%d-%d", off, off+99))
	wantCR := fmt.Sprintf("bytes %d-%d/%d", off, off+99, len(data))
	if err != nil || code != 206 || h.Get("Content-Range") != wantCR || !bytes.Equal(body, data[off:off+100]) {
		t.Fatalf("GET Range = %d %q, %d bytes, %v; want 206 %q and the bytes", code, h.Get("Content-Range"), len(body), err, wantCR)
	}
	waitFills(t, g, 1)
	st := g.srv.cache.Stats()
	if held := st.Memory.Bytes + st.Disk.Bytes; held > 256<<10 {
		t.Fatalf("cache holds %d bytes after one 100-byte range, want one 64KiB slice", held)
	}
	// The same range again is served from the slice; a range across two slices fetches the second.
	code, h, body, _ = get(t, "GET", g.base+"/d/huge.bin", "Range", fmt.Sprintf("bytes=%d-%d", off, off+99))
	if code != 206 || h.Get("X-Cache-Status") != "HIT" || !bytes.Equal(body, data[off:off+100]) {
		t.Fatalf("second GET Range = %d %q; want 206 HIT", code, h.Get("X-Cache-Status"))
	}
	start := 64<<10 - 10
	code, _, body, _ = get(t, "GET", g.base+"/d/huge.bin", "Range", fmt.Sprintf("bytes=%d-%d", start, start+19))
	if code != 206 || !bytes.Equal(body, data[start:start+20]) {
		t.Fatalf("GET across slices = %d, %d bytes; want 206 and the 20 bytes", code, len(body))
	}
	if code, _, _, _ := get(t, "GET", g.base+"/d/huge.bin", "Range", fmt.Sprintf("bytes=%d-", len(data))); code != 416 {
		t.Errorf("GET Range past the end = %d, want 416", code)
	}
	if got := n.srv.Stats().Gets; got > 4 {
		t.Errorf("storage GETs = %d, want one per slice touched (at most 4)", got)
	}
	// A cached 404 answers Range requests with 404, not 416.
	for _, tc := range []struct{ rng, want string }{{"", "MISS"}, {"bytes=0-9", "HIT"}} {
		var hdr []string
		if tc.rng != "" {
			hdr = []string{"Range", tc.rng}
		}
		code, h, _, _ := get(t, "GET", g.base+"/d/none.bin", hdr...)
		if code != 404 || h.Get("X-Cache-Status") != tc.want {
			t.Errorf("GET unknown key, Range %q = %d %q, want 404 %s", tc.rng, code, h.Get("X-Cache-Status"), tc.want)
		}
		waitFor(t, "404 stored", func() bool { return g.srv.cache.Stats().Filling == 0 })
	}
}

func TestCacheStaleWhileStorageDownThenRefreshed(t *testing.T) {
	t.Parallel()
	n := startStorage(t, "127.0.0.2")
	ft := newFakeTracker()
	clk := newFakeClock()
	data := pattern(50000)
	cachedObject(t, n, ft, "s.bin", 55, data)
	g := startGateway(t, cacheRouteConfig(cache.Config{StaleIfError: conf.Duration(time.Hour)}),
		Deps{Tracker: ft, Now: clk.now})
	fetchCached(t, "GET", g.base+"/d/s.bin", data, "MISS")
	waitFills(t, g, 1)

	// Expired, and the only copy is now on a node that is down.
	clk.advance(11 * time.Minute)
	ft.set("d", "s.bin", "http://"+deadAddr(t, "127.0.0.3")+fidPath(56))
	fetchCached(t, "GET", g.base+"/d/s.bin", data, "STALE")
	// The tracker down too.
	clk.advance(time.Minute)
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
	clk.advance(time.Minute)
	fetchCached(t, "GET", g.base+"/d/s.bin", newData, "EXPIRED")
	waitFills(t, g, 2)
	fetchCached(t, "GET", g.base+"/d/s.bin", newData, "HIT")

	// Expired again with the same fid: revalidated without reading storage.
	gets := n.srv.Stats().Gets
	clk.advance(11 * time.Minute)
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
	n := startStorage(t, "127.0.0.2")
	ft := newFakeTracker()
	clk := newFakeClock()
	data := pattern(5000)
	cachedObject(t, n, ft, "x.bin", 60, data)
	g := startGateway(t, cacheRouteConfig(cache.Config{}), Deps{Tracker: ft, Now: clk.now})
	fetchCached(t, "GET", g.base+"/d/x.bin", data, "MISS")
	waitFills(t, g, 1)
	clk.advance(11 * time.Minute)
	ft.set("d", "x.bin", "http://"+deadAddr(t, "127.0.0.3")+fidPath(61))
	if code, h, _, _ := get(t, "GET", g.base+"/d/x.bin"); code != 502 {
		t.Fatalf("GET of an expired entry with storage down = %d %q, want 502 (no stale_if_error)", code, h.Get("X-Cache-Status"))
	}
}

func TestCacheDiskSurvivesRestart(t *testing.T) {
	t.Parallel()
	n := startStorage(t, "127.0.0.2")
	ft := newFakeTracker()
	data := pattern(300000)
	cachedObject(t, n, ft, "keep.bin", 70, data)
	cfg := cacheRouteConfig(cache.Config{Disk: cache.DiskConfig{Path: t.TempDir()}})
	g1, stop1 := startGatewayAt(t, cfg, Deps{Tracker: ft}, "127.0.0.1:0")
	fetchCached(t, "GET", g1.base+"/d/keep.bin", data, "MISS")
	waitFor(t, "the entry on disk", func() bool { return g1.srv.cache.Stats().Disk.Entries == 1 })
	stop1()

	// A new gateway on the same directory, with the tracker down: served from disk.
	down := newFakeTracker()
	down.all = errors.New("tracker down")
	g2, _ := startGatewayAt(t, cfg, Deps{Tracker: down}, "127.0.0.1:0")
	fetchCached(t, "GET", g2.base+"/d/keep.bin", data, "HIT")
	if got := n.srv.Stats().Gets; got != 1 {
		t.Errorf("storage GETs = %d, want 1", got)
	}
	if got := down.calls.Load(); got != 0 {
		t.Errorf("tracker calls = %d, want 0", got)
	}
}

func TestCacheMemoryBoundWhileFillingLargeObject(t *testing.T) {
	t.Parallel()
	n := startStorage(t, "127.0.0.2")
	ft := newFakeTracker()
	data := pattern(4 << 20)
	cachedObject(t, n, ft, "large.bin", 80, data)
	const budget = 256 << 10
	g := startGateway(t, cacheRouteConfig(cache.Config{Memory: budget, MemoryMaxObject: 64 * conf.KiB}), Deps{Tracker: ft})
	resp, err := testClient().Get(g.base + "/d/large.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got bytes.Buffer
	buf := make([]byte, 32<<10)
	maxMem := int64(0)
	for {
		k, err := resp.Body.Read(buf)
		got.Write(buf[:k])
		maxMem = max(maxMem, g.srv.cache.Stats().Memory.Bytes)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading body: %v", err)
		}
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("GET = %d bytes, want the %d stored", got.Len(), len(data))
	}
	if maxMem > budget {
		t.Fatalf("memory tier held %d bytes during the fill, over its %d budget", maxMem, budget)
	}
}

func TestCacheDiskHonoursMaxSize(t *testing.T) {
	t.Parallel()
	n := startStorage(t, "127.0.0.2")
	ft := newFakeTracker()
	dir := t.TempDir()
	const maxSize = 1 << 20
	g := startGateway(t, cacheRouteConfig(cache.Config{MemoryMaxObject: 4 * conf.KiB,
		Disk: cache.DiskConfig{Path: dir, MaxSize: maxSize}}), Deps{Tracker: ft})
	for i := range 8 {
		data := pattern(300000 + i)
		key := fmt.Sprintf("f%d.bin", i)
		cachedObject(t, n, ft, key, int64(100+i), data)
		fetchCached(t, "GET", g.base+"/d/"+key, data, "MISS")
		waitFills(t, g, int64(i+1))
		if b := g.srv.cache.Stats().Disk.Bytes; b > maxSize {
			t.Fatalf("after %d objects the disk tier holds %d bytes, over max_size %d", i+1, b, maxSize)
		}
	}
	var onDisk int64
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			onDisk += fi.Size()
		}
		return nil
	})
	if onDisk > maxSize {
		t.Fatalf("cache directory holds %d bytes, over max_size %d", onDisk, maxSize)
	}
}

func TestCachePutAndDeleteThroughGatewayPurge(t *testing.T) {
	t.Parallel()
	n := startStorage(t, "127.0.0.2")
	ft := newFakeTracker()
	old := pattern(40000)
	cachedObject(t, n, ft, "w.bin", 90, old)
	ft.opens = []Dest{{DevID: 1, Path: "http://" + n.addr + fidPath(101)}}
	g := startGateway(t, cacheRouteConfig(cache.Config{}), Deps{Tracker: ft})
	fetchCached(t, "GET", g.base+"/d/w.bin", old, "MISS")
	waitFills(t, g, 1)
	fetchCached(t, "GET", g.base+"/d/w.bin", old, "HIT")

	newer := []byte("the second version")
	if code, body := put(t, g.base+"/d/w.bin", bytes.NewReader(newer), int64(len(newer))); code != 201 {
		t.Fatalf("PUT = %d %q, want 201", code, body)
	}
	fetchCached(t, "GET", g.base+"/d/w.bin", newer, "MISS")
	waitFills(t, g, 2)

	req, _ := http.NewRequest("DELETE", g.base+"/d/w.bin", nil)
	resp, err := testClient().Do(req)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("DELETE = %v, %v; want 204", resp, err)
	}
	resp.Body.Close()
	code, h, _, _ := get(t, "GET", g.base+"/d/w.bin")
	if code != 404 || h.Get("X-Cache-Status") != "MISS" {
		t.Fatalf("GET after DELETE = %d %q, want 404 MISS", code, h.Get("X-Cache-Status"))
	}
}

func TestCacheAuthorizationBypassesAndRouteOff(t *testing.T) {
	t.Parallel()
	n := startStorage(t, "127.0.0.2")
	ft := newFakeTracker()
	data := pattern(1000)
	cachedObject(t, n, ft, "p.bin", 95, data)
	ft.set("n", "p.bin", n.put(t, 95, data))
	cfg := cacheRouteConfig(cache.Config{})
	cfg.Routes = append(cfg.Routes, Route{Prefix: "/n/", Domain: "n", Cache: RouteCache{Enabled: "off"}})
	g := startGateway(t, cfg, Deps{Tracker: ft})
	for range 2 {
		fetchCached(t, "GET", g.base+"/d/p.bin", data, "BYPASS", "Authorization", "Bearer x")
		fetchCached(t, "GET", g.base+"/n/p.bin", data, "")
	}
	if got := n.srv.Stats().Gets; got != 4 {
		t.Errorf("storage GETs = %d, want 4 (nothing cached)", got)
	}
	if got := g.srv.cache.Stats().Fills; got != 0 {
		t.Errorf("cache fills = %d, want 0", got)
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

func TestRouteCacheYAML(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    RouteCache
		wantErr string
	}{
		{"cache: off", RouteCache{Enabled: "off"}, ""},
		{"cache: on", RouteCache{Enabled: "on"}, ""},
		{"cache: false", RouteCache{Enabled: "off"}, ""},
		{"cache: {key: path}", RouteCache{Enabled: "on", Key: "path"}, ""},
		{"cache: {enabled: off, key: path}", RouteCache{Enabled: "off", Key: "path"}, ""},
		{"cache: maybe", RouteCache{}, "not on, off"},
		{"cache: {keys: path}", RouteCache{}, "unknown field"},
	} {
		var r struct {
			Cache RouteCache `yaml:"cache"`
		}
		err := conf.Decode("t.yaml", []byte(tc.in), &r)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Decode(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || r.Cache.Enabled != tc.want.Enabled || r.Cache.Key != tc.want.Key {
			t.Errorf("Decode(%q) = %+v, %v; want %+v", tc.in, r.Cache, err, tc.want)
		}
	}
}

func TestRouteCacheValidate(t *testing.T) {
	for _, tc := range []struct {
		rc      RouteCache
		wantErr string
	}{
		{RouteCache{Key: "args"}, "query_args"},
		{RouteCache{Key: "path", QueryArgs: []string{"a"}}, "query_args"},
		{RouteCache{Key: "host"}, "key"},
		{RouteCache{Valid: map[string]conf.Duration{"2xx": 1}}, "valid.2xx"},
		{RouteCache{UpstreamCacheControl: "obey"}, "upstream_cache_control"},
		{RouteCache{Bypass: []string{"cookie:x"}}, "bypass[0]"},
		{RouteCache{Key: "args", QueryArgs: []string{"w"}, Bypass: []string{"arg:nocache", "header:X-Refresh"}}, ""},
	} {
		err := tc.rc.Validate()
		if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("Validate(%+v) = %v, want an error naming %q", tc.rc, err, tc.wantErr)
		}
	}
	cfg := trackerConfig(Route{Prefix: "/d/", Domain: "d", Cache: RouteCache{Enabled: "on"}})
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "routes[0].cache") {
		t.Errorf("Validate of a cached route without a cache = %v, want an error naming routes[0].cache", err)
	}
	cfg.Purge = &purge.Config{}
	cfg.Cache = &cache.Config{}
	cfg.Routes = append(cfg.Routes, Route{Prefix: "/purge/x/", Domain: "d"})
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "routes[1].prefix") {
		t.Errorf("Validate of a route under the purge path = %v, want an error naming routes[1].prefix", err)
	}
}

func TestCacheKey(t *testing.T) {
	for _, tc := range []struct {
		key   string
		args  []string
		path  string
		query string
		want  string
	}{
		{"uri", nil, "/a.jpg", "", "/a.jpg"},
		{"uri", nil, "/a.jpg", "b=1&a=2", "/a.jpg?b=1&a=2"},
		{"path", nil, "/a.jpg", "b=1", "/a.jpg"},
		{"args", []string{"w", "h"}, "/a.jpg", "x=1&h=20&w=10", "/a.jpg?w=10&h=20"},
		{"args", []string{"w"}, "/a.jpg", "x=1", "/a.jpg"},
	} {
		cr := &cacheRoute{key: tc.key, args: tc.args}
		if got := cr.cacheKey(tc.path, []byte(tc.query)); got != tc.want {
			t.Errorf("cacheKey(%q, %q) with key %s = %q, want %q", tc.path, tc.query, tc.key, got, tc.want)
		}
	}
}

func TestUpstreamCacheControl(t *testing.T) {
	for _, tc := range []struct {
		cc        string
		cookie    bool
		wantStore bool
		wantAge   time.Duration
	}{
		{"", false, true, -1},
		{"max-age=60", false, true, time.Minute},
		{"public, max-age=60, s-maxage=120", false, true, 2 * time.Minute},
		{"no-store", false, false, -1},
		{"private, max-age=60", false, false, time.Minute},
		{"no-cache", false, false, -1},
		{"max-age=0", false, false, 0},
		{"", true, false, -1},
		{"max-age=abc", false, true, -1},
	} {
		store, age := upstreamCacheControl(tc.cc, tc.cookie)
		if store != tc.wantStore || age != tc.wantAge {
			t.Errorf("upstreamCacheControl(%q, %v) = %v, %v; want %v, %v", tc.cc, tc.cookie, store, age, tc.wantStore, tc.wantAge)
		}
	}
}

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		h           string
		ok          bool
		size        int64
		off, n      int64
		satisfiable bool
	}{
		{"bytes=0-9", true, 100, 0, 10, true},
		{"bytes=90-", true, 100, 90, 10, true},
		{"bytes=-10", true, 100, 90, 10, true},
		{"bytes=-200", true, 100, 0, 100, true},
		{"bytes=50-500", true, 100, 50, 50, true},
		{"bytes=100-", true, 100, 0, 0, false},
		{"bytes=-0", true, 100, 0, 0, false},
		{"bytes=0-1,5-6", false, 0, 0, 0, false},
		{"bytes=5-1", false, 0, 0, 0, false},
		{"items=0-1", false, 0, 0, 0, false},
		{"bytes=a-b", false, 0, 0, 0, false},
		{"bytes=-", false, 0, 0, 0, false},
		{"bytes=+1-2", false, 0, 0, 0, false},
	} {
		r, ok := parseRange(tc.h)
		if ok != tc.ok {
			t.Errorf("parseRange(%q) ok = %v, want %v", tc.h, ok, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		off, n, sat := r.resolve(tc.size)
		if sat != tc.satisfiable || (sat && (off != tc.off || n != tc.n)) {
			t.Errorf("parseRange(%q).resolve(%d) = %d, %d, %v; want %d, %d, %v", tc.h, tc.size, off, n, sat, tc.off, tc.n, tc.satisfiable)
		}
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-9", "bytes=-5", "bytes=9-", "bytes=1-2,3-4", "bytes=99999999999999999999-"} {
		f.Add(s, int64(100))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			size = -size
		}
		if size < 0 {
			return
		}
		r, ok := parseRange(h)
		if !ok {
			return
		}
		if again, ok := parseRange(r.String()); !ok || again != r {
			t.Fatalf("parseRange(%q) = %+v, written %q, read back %+v, %v", h, r, r.String(), again, ok)
		}
		off, n, sat := r.resolve(size)
		if sat && (off < 0 || n <= 0 || off+n > size) {
			t.Fatalf("parseRange(%q).resolve(%d) = %d, %d outside the body", h, size, off, n)
		}
	})
}

func TestCacheStaleWhileRevalidateAndSoftPurge(t *testing.T) {
	t.Parallel()
	n := startStorage(t, "127.0.0.2")
	ft := newFakeTracker()
	clk := newFakeClock()
	data := pattern(20000)
	cachedObject(t, n, ft, "u.bin", 120, data)
	g := startGateway(t, cacheRouteConfig(cache.Config{StaleWhileRevalidate: conf.Duration(time.Hour)}),
		Deps{Tracker: ft, Now: clk.now})
	fetchCached(t, "GET", g.base+"/d/u.bin", data, "MISS")
	waitFills(t, g, 1)

	// Expired, and a new copy exists: the old one is served at once while one refresh runs.
	newData := pattern(20001)
	cachedObject(t, n, ft, "u.bin", 121, newData)
	clk.advance(11 * time.Minute)
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

func TestCacheBypassAndNegativeAnswers(t *testing.T) {
	t.Parallel()
	n := startStorage(t, "127.0.0.2")
	ft := newFakeTracker()
	data := pattern(3000)
	cachedObject(t, n, ft, "b.bin", 130, data)
	cfg := cacheRouteConfig(cache.Config{})
	cfg.Routes[0].Cache = RouteCache{Bypass: []string{"arg:nocache", "header:X-Refresh"}}
	ft.opens = []Dest{{DevID: 1, Path: "http://" + n.addr + fidPath(131)}}
	g := startGateway(t, cfg, Deps{Tracker: ft})
	fetchCached(t, "GET", g.base+"/d/b.bin", data, "MISS")
	waitFills(t, g, 1)
	fetchCached(t, "GET", g.base+"/d/b.bin", data, "HIT")
	fetchCached(t, "GET", g.base+"/d/b.bin?nocache=1", data, "MISS") // another key: ?nocache=1 is in it
	waitFills(t, g, 2)
	fetchCached(t, "GET", g.base+"/d/b.bin", data, "BYPASS", "X-Refresh", "1")
	fetchCached(t, "GET", g.base+"/d/b.bin", data, "HIT", "X-Refresh", "0")

	// Unknown keys are cached as 404 (cache.valid 404: 1m) until a PUT through the gateway.
	for _, want := range []string{"MISS", "HIT"} {
		code, h, _, _ := get(t, "GET", g.base+"/d/new.bin")
		if code != 404 || h.Get("X-Cache-Status") != want {
			t.Fatalf("GET unknown key = %d %q, want 404 %s", code, h.Get("X-Cache-Status"), want)
		}
		waitFor(t, "404 fill", func() bool { return g.srv.cache.Stats().Filling == 0 })
	}
	body := []byte("now it exists")
	if code, _ := put(t, g.base+"/d/new.bin", bytes.NewReader(body), int64(len(body))); code != 201 {
		t.Fatalf("PUT = %d, want 201", code)
	}
	fetchCached(t, "GET", g.base+"/d/new.bin", body, "MISS")
}

func TestCacheBrokenFillCutsTheClient(t *testing.T) {
	t.Parallel()
	data := pattern(200000)
	fs := startFault(t, "127.0.0.2", faultMidBody, data)
	cfg := Config{Cache: &cache.Config{}, Routes: []Route{{Prefix: "/up/", Servers: []UpstreamServer{{Addr: fs.addr}}}}}
	g := startGateway(t, cfg, Deps{})
	for range 2 {
		resp, err := testClient().Get(g.base + "/up/x")
		if err != nil {
			continue // cut before the headers: also not a short success
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode == 200 {
			t.Fatalf("GET of a body that broke = %d with %d bytes and no error, want a cut connection", resp.StatusCode, len(got))
		}
	}
	waitFor(t, "failed fills counted", func() bool { return g.srv.cache.Stats().FillErrors >= 1 })
	if st := g.srv.cache.Stats(); st.Memory.Entries != 0 || st.Fills != 0 {
		t.Fatalf("cache after broken fills: %d entries, %d fills stored; want none", st.Memory.Entries, st.Fills)
	}
}

func TestCacheReloadTurnsRouteCacheOff(t *testing.T) {
	t.Parallel()
	n := startStorage(t, "127.0.0.2")
	ft := newFakeTracker()
	data := pattern(1000)
	cachedObject(t, n, ft, "r.bin", 140, data)
	cfg := cacheRouteConfig(cache.Config{})
	g := startGateway(t, cfg, Deps{Tracker: ft})
	fetchCached(t, "GET", g.base+"/d/r.bin", data, "MISS")
	cfg.Routes[0].Cache = RouteCache{Enabled: "off"}
	if err := g.srv.Reload(cfg); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	fetchCached(t, "GET", g.base+"/d/r.bin", data, "")
	cfg.Routes[0].Cache = RouteCache{}
	if err := g.srv.Reload(cfg); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	waitFills(t, g, 1)
	fetchCached(t, "GET", g.base+"/d/r.bin", data, "HIT")
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
	clk := newFakeClock()
	cfg := Config{Trackers: c.TrackerAddrs(), Routes: []Route{{Prefix: "/d/", Domain: "d", Class: "c2",
		Methods: []string{"GET", "PUT", "DELETE"}, Allow: []string{"127.0.0.0/8"}}},
		Cache: &cache.Config{StaleIfError: conf.Duration(time.Hour)}, Purge: &purge.Config{}}
	cfg.Timeouts.TrackerConnect = conf.Duration(500 * time.Millisecond)
	cfg.Timeouts.TrackerRead = conf.Duration(2 * time.Second)
	cfg.Timeouts.StorageConnect = conf.Duration(500 * time.Millisecond)
	g := startGateway(t, cfg, Deps{Now: clk.now})
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
	clk.advance(11 * time.Minute) // past the entry's 10m and the path cache's 5s
	fetchCached(t, "GET", g.base+"/d/k.bin", data, "STALE")

	c.StartNode(t, 0)
	c.StartNode(t, 1)
	deadline := time.Now().Add(30 * time.Second)
	for {
		clk.advance(11 * time.Second) // past the nodes' fail_timeout and the path cache
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
	clk := newFakeClock()
	cfg := Config{Cache: &cache.Config{}, Routes: []Route{{Prefix: "/up/", Servers: []UpstreamServer{{Addr: ln.Addr().String()}}}}}
	g := startGateway(t, cfg, Deps{Now: clk.now})

	fetchCached(t, "GET", g.base+"/up/x.bin", data, "MISS")
	waitFills(t, g, 1)
	clk.advance(11 * time.Minute)
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
