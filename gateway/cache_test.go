package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/mogway/mogway/cache"
	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/purge"
)

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

// storedObject starts a storage node on 127.0.0.2 and a fake tracker naming d/key the size bytes of
// pattern(size) stored there as fid, and returns them with the bytes.
func storedObject(t *testing.T, key string, fid int64, size int) (*storageNode, *fakeTracker, []byte) {
	t.Helper()
	data := pattern(size)
	n, ft := storedBytes(t, key, fid, data)
	return n, ft, data
}

// storedBytes is storedObject with the content given.
func storedBytes(t *testing.T, key string, fid int64, data []byte) (*storageNode, *fakeTracker) {
	t.Helper()
	n := startStorage(t, "127.0.0.2")
	ft := newFakeTracker()
	cachedObject(t, n, ft, key, fid, data)
	return n, ft
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
	n, ft, data := storedObject(t, "a.jpg", 17, 200000)
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
			if strings.Contains(line, `"GET /d/a.jpg HTTP/1.1" 200 200000`) && strings.HasSuffix(line, " HIT -") {
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

// TestCacheConcurrentColdKeyOneFetch runs alone, not in parallel: its 50 clients and 150 MB through a
// disk tier keep both cores busy for many seconds under the race detector, long enough to hold up the
// storage nodes of a test running beside it past their 1-2 s budgets.
func TestCacheConcurrentColdKeyOneFetch(t *testing.T) {
	n, ft, data := storedObject(t, "big.bin", 21, 3<<20)
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
	n, ft, data := storedObject(t, "r.bin", 33, 100000)
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
	n, ft, data := storedObject(t, "huge.bin", 44, 4<<20)
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

func TestCacheDiskSurvivesRestart(t *testing.T) {
	t.Parallel()
	n, ft, data := storedObject(t, "keep.bin", 70, 300000)
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
	_, ft, data := storedObject(t, "large.bin", 80, 4<<20)
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

// replaceCached has g cache old from url (a MISS, then a HIT), PUTs a second version to url through
// g and checks that the next GET misses and serves it, then waits for its fill (the second). It
// returns the second version.
func replaceCached(t *testing.T, g *gw, url string, old []byte) []byte {
	t.Helper()
	fetchCached(t, "GET", url, old, "MISS")
	waitFills(t, g, 1)
	fetchCached(t, "GET", url, old, "HIT")

	newer := []byte("the second version")
	if code, body := put(t, url, bytes.NewReader(newer), int64(len(newer))); code != 201 {
		t.Fatalf("PUT = %d %q, want 201", code, body)
	}
	fetchCached(t, "GET", url, newer, "MISS")
	waitFills(t, g, 2)
	return newer
}

func TestCachePutAndDeleteThroughGatewayPurge(t *testing.T) {
	t.Parallel()
	n, ft, old := storedObject(t, "w.bin", 90, 40000)
	ft.opens = []Dest{{DevID: 1, Path: "http://" + n.addr + fidPath(101)}}
	g := startGateway(t, cacheRouteConfig(cache.Config{}), Deps{Tracker: ft})
	replaceCached(t, g, g.base+"/d/w.bin", old)

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

// Without a purge: block there is no purge route, but a PUT or DELETE through a cached route still
// drops the cached copy it replaces.
func TestCacheWriteWithoutPurgeBlockDropsCopy(t *testing.T) {
	t.Parallel()
	n, ft, old := storedObject(t, "w.bin", 150, 40000)
	ft.opens = []Dest{{DevID: 1, Path: "http://" + n.addr + fidPath(151)}}
	cfg := cacheRouteConfig(cache.Config{})
	cfg.Purge = nil
	g := startGateway(t, cfg, Deps{Tracker: ft})
	if g.srv.purger != nil {
		t.Fatalf("gateway without a purge: block has a purge service")
	}
	newer := replaceCached(t, g, g.base+"/d/w.bin", old)
	fetchCached(t, "GET", g.base+"/d/w.bin", newer, "HIT")

	req, _ := http.NewRequest("DELETE", g.base+"/d/w.bin", nil)
	resp, err := testClient().Do(req)
	if err != nil {
		t.Fatalf("DELETE: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("DELETE = %d, want 204", resp.StatusCode)
	}
	if code, h, _, _ := get(t, "GET", g.base+"/d/w.bin"); code != 404 || h.Get("X-Cache-Status") != "MISS" {
		t.Fatalf("GET after DELETE = %d %q, want 404 MISS", code, h.Get("X-Cache-Status"))
	}
}

func TestCacheAuthorizationBypassesAndRouteOff(t *testing.T) {
	t.Parallel()
	n, ft, data := storedObject(t, "p.bin", 95, 1000)
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

func TestCacheBypassAndNegativeAnswers(t *testing.T) {
	t.Parallel()
	n, ft, data := storedObject(t, "b.bin", 130, 3000)
	cfg := cacheRouteConfig(cache.Config{})
	cfg.Routes[0].Cache = RouteCache{Bypass: []string{"arg:nocache", "header:X-Refresh"}}
	ft.opens = []Dest{{DevID: 1, Path: "http://" + n.addr + fidPath(131)}}
	g := startGateway(t, cfg, Deps{Tracker: ft})
	fetchCached(t, "GET", g.base+"/d/b.bin", data, "MISS")
	waitFills(t, g, 1)
	fetchCached(t, "GET", g.base+"/d/b.bin", data, "HIT")
	// Another key (?nocache=1 is in it) with nothing stored yet: BYPASS all the same, every time
	// (issue 9 item 8: the first one said MISS).
	fetchCached(t, "GET", g.base+"/d/b.bin?nocache=1", data, "BYPASS")
	waitFills(t, g, 2)
	fetchCached(t, "GET", g.base+"/d/b.bin?nocache=1", data, "BYPASS")
	waitFills(t, g, 3)
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
	_, ft, data := storedObject(t, "r.bin", 140, 1000)
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
