package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/httpsem"
	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/tracker/mogproto"
)

func TestTrackerRouteGetHeadRange(t *testing.T) {
	t.Parallel()
	node, ft, data := storedObject(t, "a/b c.jpg", 17, 100000)
	ft.set("d", "empty", node.put(t, 18, nil))
	g := startGateway(t, trackerConfig(), Deps{Tracker: ft})

	code, hdr, body, err := get(t, "GET", g.base+"/d/a/b%20c.jpg")
	if err != nil || code != 200 || !bytes.Equal(body, data) {
		t.Fatalf("GET = %d, %d bytes, %v; want 200 and %d exact bytes", code, len(body), err, len(data))
	}
	if ct := hdr.Get("Content-Type"); ct != "image/jpeg" {
		t.Errorf("Content-Type = %q, want image/jpeg", ct)
	}
	if et := hdr.Get("ETag"); et != `"fid-17"` {
		t.Errorf("ETag = %q, want %q", et, `"fid-17"`)
	}

	code, hdr, body, err = get(t, "HEAD", g.base+"/d/a/b%20c.jpg")
	if err != nil || code != 200 || len(body) != 0 || hdr.Get("Content-Length") != "100000" {
		t.Errorf("HEAD = %d, CL %q, %d bytes, %v; want 200, CL 100000, no body", code, hdr.Get("Content-Length"), len(body), err)
	}

	code, hdr, body, err = get(t, "GET", g.base+"/d/a/b%20c.jpg", "Range", "bytes=10-19")
	if err != nil || code != 206 || !bytes.Equal(body, data[10:20]) || hdr.Get("Content-Range") != "bytes 10-19/100000" {
		t.Errorf("Range GET = %d, %q, %q, %v; want 206 bytes 10-19/100000", code, hdr.Get("Content-Range"), body, err)
	}
	code, _, _, err = get(t, "GET", g.base+"/d/a/b%20c.jpg", "Range", "bytes=200000-")
	if err != nil || code != 416 {
		t.Errorf("Range past end = %d, %v; want 416", code, err)
	}

	code, hdr, body, err = get(t, "GET", g.base+"/d/empty")
	if err != nil || code != 200 || len(body) != 0 || hdr.Get("Content-Length") != "0" {
		t.Errorf("GET empty = %d, CL %q, %d bytes, %v; want 200 CL 0", code, hdr.Get("Content-Length"), len(body), err)
	}

	code, _, _, err = get(t, "GET", g.base+"/d/a/b%20c.jpg", "If-None-Match", `"fid-17"`)
	if err != nil || code != 304 {
		t.Errorf("If-None-Match = %d, %v; want 304", code, err)
	}
	code, hdr, _, err = get(t, "GET", g.base+"/d/a/b%20c.jpg")
	lm := hdr.Get("Last-Modified")
	if lm != "" {
		code, _, _, err = get(t, "GET", g.base+"/d/a/b%20c.jpg", "If-Modified-Since", lm)
		if err != nil || code != 304 {
			t.Errorf("If-Modified-Since = %d, %v; want 304", code, err)
		}
	}
	code, _, body, err = get(t, "GET", g.base+"/d/a/b%20c.jpg", "Range", "bytes=0-3", "If-Range", `"fid-17"`)
	if err != nil || code != 206 || !bytes.Equal(body, data[:4]) {
		t.Errorf("If-Range matching = %d, %d bytes, %v; want 206 and 4 bytes", code, len(body), err)
	}
	code, _, body, err = get(t, "GET", g.base+"/d/a/b%20c.jpg", "Range", "bytes=0-3", "If-Range", `"other"`)
	if err != nil || code != 200 || len(body) != len(data) {
		t.Errorf("If-Range stale = %d, %d bytes, %v; want 200 and the whole body", code, len(body), err)
	}
}

func TestBodySizes(t *testing.T) {
	t.Parallel()
	node := startStorage(t, "127.0.0.2")
	ft := newFakeTracker()
	sizes := []int{0, 1, 4095, 4096, 65536, 65537, 1 << 20, 5<<20 + 3}
	for i, n := range sizes {
		ft.set("d", fmt.Sprintf("f%d", n), node.put(t, int64(100+i), pattern(n)))
	}
	g := startGateway(t, trackerConfig(), Deps{Tracker: ft})
	for _, n := range sizes {
		code, _, body, err := get(t, "GET", fmt.Sprintf("%s/d/f%d", g.base, n))
		if err != nil || code != 200 || !bytes.Equal(body, pattern(n)) {
			t.Errorf("GET f%d = %d, %d bytes, %v; want 200 and %d exact bytes", n, code, len(body), err, n)
		}
	}
}

func TestTrackerStatusMapping(t *testing.T) {
	t.Parallel()
	ft := newFakeTracker()
	ft.err["d/unreg"] = &mogproto.Error{Code: "unreg_domain", Message: "Domain name invalid/not found"}
	ft.err["d/nodomain"] = &mogproto.Error{Code: "domain_not_found", Message: "Domain not found"}
	ft.err["d/nokey"] = &mogproto.Error{Code: "no_key", Message: "No key provided"}
	ft.err["d/noclass"] = &mogproto.Error{Code: "unreg_class", Message: "Invalid class"}
	ft.err["d/nodev"] = &mogproto.Error{Code: "no_devices", Message: "x"}
	ft.err["d/other"] = &mogproto.Error{Code: "size_mismatch", Message: "x"}
	ft.err["d/down"] = errors.New("client: no tracker available: connection refused")
	ft.err["d/slow"] = fmt.Errorf("client: get_paths: %w", timeoutErr{})
	ft.set("d", "zero")
	g := startGateway(t, trackerConfig(Route{Prefix: "/d/", Domain: "d", Methods: []string{"GET", "DELETE"},
		Allow: []string{"127.0.0.0/8"}}), Deps{Tracker: ft})
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/d/missing", 404},
		{"GET", "/d/unreg", 404},
		{"GET", "/d/nodomain", 404},
		{"GET", "/d/nokey", 400},
		{"GET", "/d/noclass", 400},
		{"GET", "/d/nodev", 503},
		{"GET", "/d/other", 500},
		{"GET", "/d/down", 503},
		{"GET", "/d/slow", 504},
		{"GET", "/d/zero", 503},
		{"GET", "/d/", 400},
		{"POST", "/d/k", 405},
		{"PUT", "/d/k", 405},
		{"DELETE", "/d/missing", 204},
		{"GET", "/nowhere", 404},
	}
	for _, tt := range tests {
		code, hdr, _, err := get(t, tt.method, g.base+tt.path)
		if err != nil || code != tt.want {
			t.Errorf("%s %s = %d, %v; want %d", tt.method, tt.path, code, err, tt.want)
		}
		if tt.want == 405 && hdr.Get("Allow") != "GET, DELETE, HEAD" {
			t.Errorf("%s %s: Allow = %q, want %q", tt.method, tt.path, hdr.Get("Allow"), "GET, DELETE, HEAD")
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

var _ net.Error = timeoutErr{}

func TestHostileURIsNeverReachTracker(t *testing.T) {
	t.Parallel()
	ft := newFakeTracker()
	g := startGateway(t, trackerConfig(
		Route{Prefix: "/d/", Domain: "d"},
		Route{Prefix: "/", Domain: "root"},
	), Deps{Tracker: ft})
	addr := strings.TrimPrefix(g.base, "http://")
	lines := []string{
		"GET /d/../etc/passwd HTTP/1.1",
		"GET /d/%2e%2e/etc/passwd HTTP/1.1",
		"GET /d/a/../../x HTTP/1.1",
		"GET /../d/x HTTP/1.1",
		"GET /d/a%zz HTTP/1.1",
		"GET /d/a%2 HTTP/1.1",
		"GET /d/a%00b HTTP/1.1",
		"GET /d/a%0d%0ab HTTP/1.1",
		"GET /d/ HTTP/1.1",
		"GET d/x HTTP/1.1",
	}
	for _, l := range lines {
		if code := rawGet(t, addr, l, ""); code != 400 {
			t.Errorf("%q = %d, want 400", l, code)
		}
	}
	huge := "X-Big: " + strings.Repeat("a", 64<<10) + "\r\n"
	if code := rawGet(t, addr, "GET /d/x HTTP/1.1", huge); code != 431 {
		t.Errorf("64 KiB header = %d, want 431", code)
	}
	if n := ft.calls.Load(); n != 0 {
		t.Errorf("tracker saw %d calls for hostile URIs, want 0", n)
	}
}

func TestFailoverBeforeFirstByte(t *testing.T) {
	t.Parallel()
	data := pattern(300000)
	good := startStorage(t, "127.0.0.3")
	url := good.put(t, 21, data)
	hang := startFault(t, "127.0.0.4", faultHang, nil)
	f500 := startFault(t, "127.0.0.5", fault500, nil)
	wrong := startFault(t, "127.0.0.6", faultWrongLen, data)
	missing := startStorage(t, "127.0.0.7")
	ft := newFakeTracker()
	ft.set("d", "refused", "http://"+deadAddr(t, "127.0.0.2")+fidPath(21), url)
	ft.set("d", "hang", "http://"+hang.addr+fidPath(21), url)
	ft.set("d", "500", "http://"+f500.addr+fidPath(21), url)
	ft.set("d", "missing", "http://"+missing.addr+fidPath(21), url)
	ft.set("d", "allbad", "http://"+f500.addr+fidPath(21), "http://"+deadAddr(t, "127.0.0.2")+fidPath(21))
	ft.set("d", "allhang", "http://"+hang.addr+fidPath(22))
	ft.set("d", "wrong", "http://"+wrong.addr+fidPath(21), url)
	cfg := trackerConfig()
	cfg.Timeouts.StorageFirstByte = conf.Duration(time.Second)
	cfg.Storage.MaxFails = -1 // every request tries the faulty node first
	g := startGateway(t, cfg, Deps{Tracker: ft})
	for _, key := range []string{"refused", "hang", "500", "missing"} {
		code, _, body, err := get(t, "GET", g.base+"/d/"+key)
		if err != nil || code != 200 || !bytes.Equal(body, data) {
			t.Errorf("GET %s = %d, %d bytes, %v; want 200 and the exact bytes from the second copy", key, code, len(body), err)
		}
	}
	if code, _, _, err := get(t, "GET", g.base+"/d/allbad"); err != nil || code != 502 {
		t.Errorf("GET allbad = %d, %v; want 502", code, err)
	}
	if code, _, _, err := get(t, "GET", g.base+"/d/allhang"); err != nil || code != 504 {
		t.Errorf("GET allhang = %d, %v; want 504", code, err)
	}
	// A first copy announcing one byte too many is cut mid-body; the second copy finishes it.
	code, _, body, err := get(t, "GET", g.base+"/d/wrong")
	if err == nil && (code != 200 || !bytes.Equal(body, data)) {
		t.Errorf("GET wrong = %d, %d bytes; want exact bytes or a broken transfer", code, len(body))
	}
}

func TestResumeAfterMidBodyDeath(t *testing.T) {
	t.Parallel()
	data := pattern(2 << 20)
	good := startStorage(t, "127.0.0.3")
	url := good.put(t, 31, data)
	dying := startFault(t, "127.0.0.4", faultMidBody, data)
	ft := newFakeTracker()
	ft.set("d", "resume", "http://"+dying.addr+fidPath(31), url)
	ft.set("d", "alone", "http://"+dying.addr+fidPath(31))
	cfg := trackerConfig()
	cfg.Storage.MaxFails = -1
	cfg.Hedge.Delay = "off" // the dying copy's headers must win, however slow the machine
	g := startGateway(t, cfg, Deps{Tracker: ft})

	code, _, body, err := get(t, "GET", g.base+"/d/resume")
	if err != nil || code != 200 || !bytes.Equal(body, data) {
		t.Fatalf("GET resume = %d, %d bytes, %v; want 200 and %d exact bytes", code, len(body), err, len(data))
	}
	if st := g.srv.Stats(); st.Resumed != 1 {
		t.Errorf("Stats().Resumed = %d, want 1", st.Resumed)
	}
	// With no other copy the client must see a broken transfer, never a short 200.
	code, _, body, err = get(t, "GET", g.base+"/d/alone")
	if err == nil {
		t.Errorf("GET alone = %d with %d of %d bytes and no error; want a broken transfer", code, len(body), len(data))
	}
	waitFor(t, "an aborted body in the stats", func() bool { return g.srv.Stats().Aborted >= 1 })
}

func TestPathCache(t *testing.T) {
	t.Parallel()
	node := startStorage(t, "127.0.0.2")
	ft := newFakeTracker()
	data := pattern(1000)
	url := node.put(t, 41, data)
	ft.set("d", "k", url)
	now := time.Unix(1_700_000_000, 0)
	var clock = func() time.Time { return now }
	g := startGateway(t, trackerConfig(), Deps{Tracker: ft, Now: func() time.Time { return clock() }})
	for i := 0; i < 3; i++ {
		if code, _, body, err := get(t, "GET", g.base+"/d/k"); err != nil || code != 200 || !bytes.Equal(body, data) {
			t.Fatalf("GET k = %d, %v", code, err)
		}
	}
	if n := ft.calls.Load(); n != 1 {
		t.Errorf("tracker calls after 3 GETs within the TTL = %d, want 1", n)
	}
	// Unknown keys are remembered for the negative TTL.
	for i := 0; i < 3; i++ {
		get(t, "GET", g.base+"/d/nope")
	}
	if n := ft.calls.Load(); n != 2 {
		t.Errorf("tracker calls after 3 GETs of an unknown key = %d, want 2", n)
	}
	// A failing path drops the cached answer: the node's copy vanishes, the next GET asks again.
	ft.set("d", "k", "http://"+deadAddr(t, "127.0.0.9")+fidPath(41))
	st := g.srv.state.Load()
	st.paths.forget("d", "k")
	get(t, "GET", g.base+"/d/k") // caches the dead path, fails, drops it
	before := ft.calls.Load()
	ft.set("d", "k", url)
	if code, _, body, err := get(t, "GET", g.base+"/d/k"); err != nil || code != 200 || !bytes.Equal(body, data) {
		t.Errorf("GET after a failed path = %d, %v; want 200 (fresh tracker answer)", code, err)
	}
	if n := ft.calls.Load(); n != before+1 {
		t.Errorf("tracker calls = %d, want %d: a failed path must drop the cached answer", n, before+1)
	}
}

func TestPathCacheCollapsesConcurrentLookups(t *testing.T) {
	t.Parallel()
	node := startStorage(t, "127.0.0.2")
	ft := newFakeTracker()
	ft.set("d", "hot", node.put(t, 51, []byte("hot")))
	gate := make(chan struct{})
	ft.gate = gate
	g := startGateway(t, trackerConfig(), Deps{Tracker: ft})
	const n = 16
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			code, _, body, err := get(t, "GET", g.base+"/d/hot")
			if err == nil && (code != 200 || string(body) != "hot") {
				err = fmt.Errorf("GET hot = %d %q", code, body)
			}
			errs <- err
		}()
	}
	st := g.srv.state.Load()
	waitFor(t, "every lookup to wait on the tracker", func() bool { return st.paths.waiting.Load() == n })
	close(gate)
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if c := ft.calls.Load(); c != 1 {
		t.Errorf("tracker calls for %d concurrent misses = %d, want 1", n, c)
	}
}

// askedTracker answers a GetPaths with the paths it held when asked, once the test releases that
// call: an answer on its way while the key changes.
type askedTracker struct {
	Tracker
	mu    sync.Mutex
	paths []string
	asked []chan struct{} // one per call, closed to release it
}

func (a *askedTracker) GetPaths(ctx context.Context, domain, key string, noverify bool) ([]string, error) {
	release := make(chan struct{})
	a.mu.Lock()
	paths := a.paths
	a.asked = append(a.asked, release)
	a.mu.Unlock()
	<-release
	return paths, nil
}

func (a *askedTracker) calls() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.asked)
}

// release lets call i answer.
func (a *askedTracker) release(i int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	close(a.asked[i])
}

// TestPathCacheKeepsNoAnswerOlderThanAChange: a get_paths answer that was on its way while the key
// changed (an upload's create_close, then forget; or a purge) is given to the lookup that asked but
// never cached, and a lookup after the change asks the tracker itself. Under load a hedge's refresh
// asked get_paths during a GET, the overwrite's forget came before that answer, and the next GET
// served the old fid.
func TestPathCacheKeepsNoAnswerOlderThanAChange(t *testing.T) {
	t.Parallel()
	oldPath, newPath := "http://127.0.0.2:7500"+fidPath(1), "http://127.0.0.2:7500"+fidPath(2)
	tr := &askedTracker{paths: []string{oldPath}}
	c := newPathCache(PathCache{TTL: conf.Duration(time.Hour), Size: 10}, time.Now)
	lookup := func(k pathKey) <-chan *pathEntry {
		ch := make(chan *pathEntry, 1)
		go func() {
			e, _, err := c.lookup(tr, k)
			if err != nil {
				t.Errorf("lookup(%v): %v", k, err)
			}
			ch <- e
		}()
		return ch
	}
	k := pathKey{"d", "k", false}
	first := lookup(k)
	waitFor(t, "the first lookup to ask", func() bool { return tr.calls() == 1 })
	tr.mu.Lock()
	tr.paths = []string{newPath}
	tr.mu.Unlock()
	c.forget("d", "k")
	second := lookup(k)
	waitFor(t, "the lookup after forget to ask the tracker itself", func() bool { return tr.calls() == 2 })
	tr.release(1)
	if e := <-second; e == nil || e.parsed[0].raw != newPath {
		t.Fatalf("lookup after forget = %+v, want %s", e, newPath)
	}
	tr.release(0)
	if e := <-first; e == nil || e.parsed[0].raw != oldPath {
		t.Fatalf("lookup before forget = %+v, want %s", e, oldPath)
	}
	if e := c.fresh(k); e == nil || e.parsed[0].raw != newPath {
		t.Errorf("cached after forget = %+v, want %s", e, newPath)
	}

	// A purge: a lookup after it may join the flight asked before it, but then asks again.
	k2 := pathKey{"d", "k2", false}
	third := lookup(k2)
	waitFor(t, "the third lookup to ask", func() bool { return tr.calls() == 3 })
	c.purge()
	fourth := lookup(k2)
	waitFor(t, "the fourth lookup to wait", func() bool { return c.waiting.Load() == 2 })
	tr.release(2)
	e3 := <-third
	waitFor(t, "the lookup after purge to ask the tracker itself", func() bool { return tr.calls() == 4 })
	tr.release(3)
	e4 := <-fourth
	if e3 == nil || e4 == nil || e3 == e4 {
		t.Fatalf("lookups before and after purge = %p, %p; want two answers", e3, e4)
	}
	if e := c.fresh(k2); e != e4 {
		t.Errorf("cached after purge = %p, want the answer asked after it (%p), not the one before (%p)", e, e4, e3)
	}
}

func TestFailedStorageNodeTriedLast(t *testing.T) {
	t.Parallel()
	good := startStorage(t, "127.0.0.3")
	data := []byte("healthy copy")
	url := good.put(t, 23, data)
	dead := deadAddr(t, "127.0.0.2")
	ft := newFakeTracker()
	ft.set("d", "k", "http://"+dead+fidPath(23), url)
	clock := testutil.NewClock()
	cfg := trackerConfig()
	cfg.PathCache.Size = -1
	g := startGateway(t, cfg, Deps{Tracker: ft, Now: clock.Now})
	for i := 0; i < 3; i++ {
		if code, _, body, err := get(t, "GET", g.base+"/d/k"); err != nil || code != 200 || !bytes.Equal(body, data) {
			t.Fatalf("GET = %d %q, %v", code, body, err)
		}
	}
	if n := nodeRequests(g, dead); n != 1 {
		t.Errorf("dead node tried %d times in 3 GETs, want 1 (then avoided for fail_timeout)", n)
	}
	clock.Advance(10 * time.Second)
	get(t, "GET", g.base+"/d/k")
	if n := nodeRequests(g, dead); n != 2 {
		t.Errorf("dead node tried %d times after fail_timeout, want 2", n)
	}
}

// TestStorageConnectionsReused: bodies read to their end, HEADs and small error answers give their
// storage connection back; only abandoned bodies close it.
func TestStorageConnectionsReused(t *testing.T) {
	t.Parallel()
	node := startStorage(t, "127.0.0.2")
	ft := newFakeTracker()
	ft.set("d", "big", node.put(t, 24, pattern(200000)))
	ft.set("d", "small", node.put(t, 25, pattern(100)))
	g := startGateway(t, trackerConfig(), Deps{Tracker: ft})
	for i := 0; i < 20; i++ {
		for _, req := range [][]string{{"GET", "/d/big"}, {"GET", "/d/small"}, {"HEAD", "/d/big"}, {"GET", "/d/big", "Range", "bytes=5-9"},
			{"GET", "/d/small", "If-None-Match", `"fid-25"`}} {
			code, _, _, err := get(t, req[0], g.base+req[1], req[2:]...)
			if err != nil || (code/100 != 2 && code != 304) {
				t.Fatalf("%s %s = %d, %v", req[0], req[1], code, err)
			}
		}
	}
	var st NodeStats
	for _, n := range g.srv.Stats().Nodes {
		if n.Addr == node.addr {
			st = n
		}
	}
	if st.Requests != 100 || st.Dials > 2 {
		t.Errorf("node stats = %+v; want 100 requests over at most 2 connections", st)
	}
}

func TestSmallBodyFailsOverBeforeFirstByte(t *testing.T) {
	t.Parallel()
	// Bodies up to maxBufferedBody are read whole before the answer is used and copied into the
	// response: a copy that dies within one is failed over, and with no copy left the answer is a
	// 502, never a short 200.
	data := pattern(10000)
	good := startStorage(t, "127.0.0.3")
	url := good.put(t, 41, data)
	dying := startFault(t, "127.0.0.4", faultMidBody, data)
	wrong := startFault(t, "127.0.0.5", faultWrongLen, data)
	ft := newFakeTracker()
	ft.set("d", "dying", "http://"+dying.addr+fidPath(41), url)
	ft.set("d", "wrong", "http://"+wrong.addr+fidPath(41), url)
	ft.set("d", "alone", "http://"+dying.addr+fidPath(41))
	cfg := trackerConfig()
	cfg.Timeouts.StorageFirstByte = conf.Duration(5 * time.Second)
	cfg.Storage.MaxFails = -1
	g := startGateway(t, cfg, Deps{Tracker: ft})
	for _, key := range []string{"dying", "wrong"} {
		code, _, body, err := get(t, "GET", g.base+"/d/"+key)
		if err != nil || code != 200 || !bytes.Equal(body, data) {
			t.Errorf("GET %s = %d, %d bytes, %v; want 200 and the exact bytes from the second copy", key, code, len(body), err)
		}
	}
	if code, _, body, err := get(t, "GET", g.base+"/d/alone"); err != nil || code != 502 {
		t.Errorf("GET alone = %d, %d bytes, %v; want 502", code, len(body), err)
	}
	if st := g.srv.Stats(); st.Resumed != 0 {
		t.Errorf("Stats().Resumed = %d, want 0 (small bodies fail over before the first byte)", st.Resumed)
	}
}

func TestPathCacheHitAllocs(t *testing.T) {
	c, ft := hotPathCache()
	k := pathKey{"photos", "a/b.jpg", false}
	allocs := testing.AllocsPerRun(100, func() {
		if _, hit, err := c.lookup(ft, k); !hit || err != nil {
			t.Fatalf("lookup(%v) = hit %v, err %v; want a hit", k, hit, err)
		}
	})
	if allocs != 0 {
		t.Errorf("lookup on a hit: %v allocations, want 0", allocs)
	}
}

// TestHopHeader: a storage answer's field is left out of the client's answer by its name, given as
// fasthttp's bytes or as a cached answer's string alike, without copying the name.
func TestHopHeader(t *testing.T) {
	for _, tc := range []struct {
		name string
		hop  bool
	}{
		{"Connection", true},
		{"Transfer-Encoding", true},
		{"Content-Length", true},
		{"Content-Type", true},
		{"Server", true},
		{"Last-Modified", false},
		{"Content-Disposition", false},
		{"connection", false}, // fasthttp normalises names: only its spelling is matched
		{"X-A-Field-Name-Longer-Than-Thirty-Two-Bytes", false},
	} {
		b := []byte(tc.name)
		if got := hopHeader(tc.name); got != tc.hop {
			t.Errorf("hopHeader(%q) = %v, want %v", tc.name, got, tc.hop)
		}
		if got := hopHeader(b); got != tc.hop {
			t.Errorf("hopHeader([]byte(%q)) = %v, want %v", tc.name, got, tc.hop)
		}
		if n := testing.AllocsPerRun(100, func() { hopHeader(tc.name); hopHeader(b) }); n != 0 {
			t.Errorf("hopHeader(%q): %v allocations, want 0", tc.name, n)
		}
	}
}

func TestPathEntryParsesOnce(t *testing.T) {
	e := newPathEntry([]string{"http://127.0.0.2:7500/dev1/0/000/000/0000000017.fid", "ftp://x/y", "http://127.0.0.3:7500/dev2/a?b=c"}, nil, time.Time{})
	want := []pathTarget{
		{raw: "http://127.0.0.2:7500/dev1/0/000/000/0000000017.fid", host: "127.0.0.2:7500", uri: "/dev1/0/000/000/0000000017.fid", etag: `"fid-17"`},
		{raw: "ftp://x/y"},
		{raw: "http://127.0.0.3:7500/dev2/a?b=c", host: "127.0.0.3:7500", uri: "/dev2/a?b=c"},
	}
	for i, w := range want {
		if e.parsed[i] != w {
			t.Errorf("newPathEntry: parsed[%d] = %+v, want %+v", i, e.parsed[i], w)
		}
	}
}

func TestStaleCopyKeepsItsConnection(t *testing.T) {
	t.Parallel()
	// A 404 from a node that lost its copy is read whole; the connection serves the next request.
	stale := startStorage(t, "127.0.0.2")
	good := startStorage(t, "127.0.0.3")
	data := pattern(500)
	ft := newFakeTracker()
	ft.set("d", "k", "http://"+stale.addr+fidPath(26), good.put(t, 26, data))
	g := startGateway(t, trackerConfig(), Deps{Tracker: ft})
	for i := 0; i < 10; i++ {
		if code, _, body, err := get(t, "GET", g.base+"/d/k"); err != nil || code != 200 || !bytes.Equal(body, data) {
			t.Fatalf("GET /d/k = %d, %d bytes, %v; want 200 and the bytes", code, len(body), err)
		}
	}
	for _, n := range g.srv.Stats().Nodes {
		if n.Addr == stale.addr && (n.Requests != 10 || n.Dials != 1) {
			t.Errorf("stale node stats = %+v; want 10 requests over 1 connection", n)
		}
	}
}

// forwardRange sends a node the client's byte ranges, written anew, and nothing for what it must not forward.
func TestForwardRange(t *testing.T) {
	for h, want := range map[string]string{
		"":                                      "",
		"bytes=0-9":                             "bytes=0-9",
		"bytes = 0-9":                           "",
		"BYTES=90-":                             "bytes=90-",
		"bytes=-10":                             "bytes=-10",
		"bytes= 5 - 7 ,":                        "bytes=5-7",
		"bytes=5-1":                             "bytes=5-1",
		"bytes=0-1, 5-6":                        "bytes=0-1,5-6",
		"bytes=" + strings.Repeat("1-1,", 17):   "",
		"items=0-1":                             "",
		"bytes=a-b":                             "",
		"bytes=99999999999999999999-":           "bytes=9223372036854775807-",
		"bytes=0-0" + strings.Repeat(",", 5000): "bytes=0-0",
	} {
		if got := forwardRange([]byte(h)); got != want {
			t.Errorf("forwardRange(%.40q) = %q, want %q", h, got, want)
		}
	}
}

func FuzzForwardRange(f *testing.F) {
	for _, s := range []string{"bytes=0-9", "bytes=-5", "bytes=9-", "bytes=1-2,3-4", "bytes=99999999999999999999-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		out := forwardRange([]byte(h))
		if out == "" {
			return
		}
		if len(out) > 48*httpsem.MaxRanges {
			t.Fatalf("forwardRange(%q) = %q, longer than its ranges", h, out)
		}
		if again := forwardRange([]byte(out)); again != out {
			t.Fatalf("forwardRange(%q) = %q, which forwards as %q", h, out, again)
		}
		a, _ := httpsem.ParseRange(h)
		b, _ := httpsem.ParseRange(out)
		if a != b {
			t.Fatalf("forwardRange(%q) = %q: specs %+v became %+v", h, out, a, b)
		}
	})
}

// splitPath gives what net/url gives for every path, the plain ones it splits itself included.
func FuzzSplitPath(f *testing.F) {
	for _, p := range []string{
		"http://127.0.0.2:7500/dev1/0/000/000/0000000017.fid", "http://storage-1.example:7500/dev12/a/b_c.fid",
		"http://host/dev1/x", "http://h:/dev1/x", "http://h:75x0/d", "http://[::1]:7500/dev1/x", "http://u@h:1/x",
		"http://h:1/a%20b", "http://h:1/a b", "http://h:1/a?b=c", "http://h:1/a#f", "http://h:1", "http:///x",
		"HTTP://h:1/x", "https://h:1/x", "ftp://x/y", "", "http://h:1//x/../y", "http://h.:1/~x",
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		host, uri, ok := splitPath(p)
		u, err := url.Parse(p)
		wantOK := err == nil && u.Scheme == "http" && u.Host != ""
		if ok != wantOK {
			t.Fatalf("splitPath(%q) ok = %v, url.Parse says %v (%v)", p, ok, wantOK, err)
		}
		if ok && (host != u.Host || uri != u.RequestURI()) {
			t.Fatalf("splitPath(%q) = %q, %q; url.Parse gives %q, %q", p, host, uri, u.Host, u.RequestURI())
		}
	})
}
