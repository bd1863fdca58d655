package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/purge"
)

func TestReloadUnderLoad(t *testing.T) {
	t.Parallel()
	node := startStorage(t, "127.0.0.2")
	ft := newFakeTracker()
	data := pattern(200000)
	url := node.put(t, 81, data)
	ft.set("d", "k", url)
	ft.set("e", "k", url)
	cfgA := trackerConfig(Route{Prefix: "/d/", Domain: "d"})
	cfgB := trackerConfig(Route{Prefix: "/d/", Domain: "d", Expires: conf.Duration(time.Hour)},
		Route{Prefix: "/e/", Domain: "e"})
	g := startGateway(t, cfgA, Deps{Tracker: ft})

	const workers, perWorker = 8, 20
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := testClient()
			for i := 0; i < perWorker; i++ {
				resp, err := c.Get(g.base + "/d/k")
				if err == nil {
					var body []byte
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && (resp.StatusCode != 200 || !bytes.Equal(body, data)) {
						err = fmt.Errorf("GET /d/k = %d with %d bytes", resp.StatusCode, len(body))
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	for i := 0; i < 30; i++ {
		cfg := cfgA
		if i%2 == 0 {
			cfg = cfgB
		}
		if err := g.srv.Reload(cfg); err != nil {
			t.Fatalf("Reload: %v", err)
		}
	}
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed during reloads; first: %v", n, workers*perWorker, firstErr.Load())
	}
	// The last reload (i = 29) installed cfgA: /e/ is gone.
	if code, _, _, _ := get(t, "GET", g.base+"/e/k"); code != 404 {
		t.Errorf("GET /e/k after reloading without /e/ = %d, want 404", code)
	}
	if err := g.srv.Reload(cfgB); err != nil {
		t.Fatal(err)
	}
	code, hdr, body, err := get(t, "GET", g.base+"/e/k")
	if err != nil || code != 200 || !bytes.Equal(body, data) {
		t.Errorf("GET /e/k after reload = %d, %v; want 200", code, err)
	}
	if cc := hdr.Get("Cache-Control"); cc != "" {
		t.Errorf("/e/ Cache-Control = %q, want none", cc)
	}
	if _, hdr, _, _ := get(t, "GET", g.base+"/d/k"); hdr.Get("Cache-Control") != "max-age=3600" || hdr.Get("Expires") == "" {
		t.Errorf("/d/ Cache-Control = %q, Expires %q; want max-age=3600 and a date", hdr.Get("Cache-Control"), hdr.Get("Expires"))
	}
	// A bad configuration is refused and the running one keeps serving.
	bad := trackerConfig(Route{Prefix: "no-slash", Domain: "d"})
	if err := g.srv.Reload(bad); err == nil {
		t.Fatal("Reload(bad) succeeded, want an error")
	}
	if code, _, _, _ := get(t, "GET", g.base+"/e/k"); code != 200 {
		t.Errorf("GET /e/k after a refused reload = %d, want 200", code)
	}
}

func TestHealthAndStatus(t *testing.T) {
	t.Parallel()
	node, ft := storedBytes(t, "k", 91, []byte("x"))
	g := startGateway(t, trackerConfig(), Deps{Tracker: ft})
	if code, _, body, err := get(t, "GET", g.base+"/healthz"); err != nil || code != 200 || string(body) != "ok\n" {
		t.Errorf("GET /healthz = %d %q, %v; want 200 ok", code, body, err)
	}
	get(t, "GET", g.base+"/d/k")
	code, hdr, body, err := get(t, "GET", g.base+"/status")
	if err != nil || code != 200 || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /status = %d %q, %v", code, hdr.Get("Content-Type"), err)
	}
	var st Stats
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, body)
	}
	if st.Requests < 2 || st.Status2xx < 1 || len(st.Nodes) != 1 || st.Nodes[0].Addr != node.addr || !st.Nodes[0].Up {
		t.Errorf("status = %+v; want the requests counted and node %s up", st, node.addr)
	}

	// From a non-loopback-allowed address the status is forbidden.
	cfg := trackerConfig()
	cfg.StatusAllow = []string{"10.0.0.0/8"}
	g2 := startGateway(t, cfg, Deps{Tracker: ft})
	if code, _, _, _ := get(t, "GET", g2.base+"/status"); code != 403 {
		t.Errorf("GET /status from outside status_allow = %d, want 403", code)
	}
}

// TestStreamLargeBodyBoundedMemory streams 256 MiB through the gateway and checks that the heap
// stays far below the body size.
func TestStreamLargeBodyBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("256 MiB transfer")
	}
	node := startStorage(t, "127.0.0.2")
	ft := newFakeTracker()
	const size = 256 << 20
	chunk := pattern(1 << 20)
	big := make([]byte, 0, size)
	for len(big) < size {
		big = append(big, chunk...)
	}
	ft.set("d", "big", node.put(t, 99, big))
	big = nil
	runtime.GC()
	g := startGateway(t, trackerConfig(), Deps{Tracker: ft})

	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
		}
	}()
	resp, err := testClient().Get(g.base + "/d/big")
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	buf := make([]byte, 1<<20)
	off := 0
	for {
		k, err := resp.Body.Read(buf)
		for i := 0; i < k; i++ {
			if buf[i] != chunk[(off+i)%len(chunk)] {
				t.Fatalf("byte %d = %#x, want %#x", off+i, buf[i], chunk[(off+i)%len(chunk)])
			}
		}
		off += k
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading the body after %d bytes: %v", n, err)
		}
	}
	resp.Body.Close()
	close(stop)
	<-sampled
	if resp.StatusCode != 200 || n != size {
		t.Fatalf("GET big = %d with %d bytes, want 200 with %d", resp.StatusCode, n, size)
	}
	if grow := int64(peak.Load()) - int64(base.HeapInuse); grow > 64<<20 {
		t.Errorf("heap grew by %d MiB while streaming 256 MiB, want under 64 MiB", grow>>20)
	}
}

func TestGracefulStopFinishesInFlight(t *testing.T) {
	t.Parallel()
	_, ft, data := storedObject(t, "k", 92, 1<<20)
	srv, err := New(trackerConfig(), Deps{Tracker: ft, AccessLog: io.Discard}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr, cancel, done := serveLoopback(t, srv)
	resp, err := http.Get("http://" + addr + "/d/k")
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 10)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}
	cancel()
	rest, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(append(first, rest...), data) {
		t.Errorf("body read across a graceful stop = %d bytes, %v; want all %d", 10+len(rest), err, len(data))
	}
	if err := <-done; err != nil {
		t.Errorf("Serve = %v, want nil after a graceful stop", err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Errorf("the listener still accepts after Serve returned")
	} else if !strings.Contains(err.Error(), "refused") {
		t.Logf("dial after stop: %v", err)
	}
}

// TestGracefulStopCutsAfterShutdownTimeout: a request still running when timeouts.shutdown runs
// out (here, waiting for a tracker that never answers, with tracker_read far longer) has its client
// connection closed when Serve returns, rather than left open until the process exits.
func TestGracefulStopCutsAfterShutdownTimeout(t *testing.T) {
	t.Parallel()
	asked := make(chan struct{}, 1)
	tr := testutil.NewTracker(t, "127.0.0.2", func(string) (string, testutil.Action) { // never answers
		asked <- struct{}{}
		return "", testutil.Hang
	})
	cfg := trackerConfig()
	cfg.Trackers = []string{tr.Addr}
	cfg.Timeouts.TrackerRead = conf.Duration(time.Minute)
	cfg.Timeouts.Shutdown = conf.Duration(300 * time.Millisecond)
	srv, err := New(cfg, Deps{AccessLog: io.Discard}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr, cancel, done := serveLoopback(t, srv)
	c := testutil.Dial(t, addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(hedgeBound))
	fmt.Fprintf(c, "GET /d/k HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case <-asked:
	case <-time.After(hedgeBound):
		t.Fatal("the gateway never asked the tracker")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v, want nil after a graceful stop", err)
		}
	case <-time.After(hedgeBound):
		t.Fatalf("Serve still running %v after the stop with timeouts.shutdown 300ms", hedgeBound)
	}
	n, err := c.Read(make([]byte, 512))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the client connection of a request cut by the stop is still open %v later", hedgeBound)
	}
	if err == nil {
		t.Errorf("read %d bytes after the stop, want the connection closed with no answer", n)
	}
}

// TestUnreadBodyClosesConnection: a streamed request body the gateway does not read (here, a POST
// answered 405) must not be parsed as the next request on the connection.
func TestUnreadBodyClosesConnection(t *testing.T) {
	t.Parallel()
	ft := newFakeTracker()
	g := startGateway(t, trackerConfig(), Deps{Tracker: ft})
	c := testutil.Dial(t, strings.TrimPrefix(g.base, "http://"))
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	body := strings.Repeat("GET /d/smuggled HTTP/1.1\r\nHost: x\r\n\r\n", 4000)
	fmt.Fprintf(c, "POST /d/k HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("first response: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || !resp.Close {
		t.Errorf("POST = %d, close %v; want 405 and Connection: close", resp.StatusCode, resp.Close)
	}
	if resp, err := http.ReadResponse(br, nil); err == nil {
		t.Errorf("a second response (%d) came from the unread body", resp.StatusCode)
	}
	if n := ft.calls.Load(); n != 0 {
		t.Errorf("tracker calls = %d, want 0", n)
	}
}

func TestAccessLogReopenOnReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := dir + "/access.log"
	cfg := trackerConfig()
	cfg.AccessLog = path
	srv, err := New(cfg, Deps{Tracker: newFakeTracker()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr, cancel, done := serveLoopback(t, srv)
	base := "http://" + addr
	get(t, "GET", base+"/healthz?first")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Reload(cfg); err != nil { // what SIGHUP does
		t.Fatal(err)
	}
	get(t, "GET", base+"/healthz?second")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if !strings.Contains(string(old), "?first") || strings.Contains(string(old), "?second") {
		t.Errorf("rotated log = %q, want only the first request", old)
	}
	if !strings.Contains(string(cur), "?second") || strings.Contains(string(cur), "?first") {
		t.Errorf("reopened log = %q, want only the second request", cur)
	}
}

func TestReloadReplacesTrackerPool(t *testing.T) {
	t.Parallel()
	a, b := deadAddr(t, "127.0.0.1"), deadAddr(t, "127.0.0.1")
	cfg := Config{Trackers: []string{a}, Routes: []Route{{Prefix: "/d/", Domain: "d"}}}
	g := startGateway(t, cfg, Deps{})
	if code, _, _, _ := get(t, "GET", g.base+"/d/k"); code != 503 {
		t.Errorf("GET with a dead tracker = %d, want 503", code)
	}
	trackersOf := func() string {
		j, _ := json.Marshal(g.srv.Stats().Tracker)
		return string(j)
	}
	if s := trackersOf(); !strings.Contains(s, a) {
		t.Fatalf("tracker stats = %s, want %s", s, a)
	}
	old := g.srv.state.Load()
	cfg.Trackers = []string{b}
	if err := g.srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if s := trackersOf(); !strings.Contains(s, b) || strings.Contains(s, a) {
		t.Errorf("tracker stats after reload = %s, want only %s", s, b)
	}
	if !old.retired.Load() {
		t.Errorf("the replaced configuration was not retired")
	}
	if code, _, _, _ := get(t, "GET", g.base+"/d/k"); code != 503 {
		t.Errorf("GET after reload = %d, want 503", code)
	}
	// Same trackers: the pool and its path cache are kept.
	cur := g.srv.state.Load()
	if err := g.srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if now := g.srv.state.Load(); now.tracker != cur.tracker || now.paths != cur.paths {
		t.Errorf("a reload with the same trackers replaced the pool or the path cache")
	}
}

// The tracker pool's limits and timeouts are reloaded: a new pool applies them, and no warning says
// they wait for a restart, as the listener's limits do.
func TestReloadTrackerPoolLimits(t *testing.T) {
	t.Parallel()
	logs := &testutil.SyncBuffer{}
	cfg := Config{Trackers: []string{deadAddr(t, "127.0.0.1")}, Routes: []Route{{Prefix: "/d/", Domain: "d"}}}
	srv, err := New(cfg, Deps{AccessLog: io.Discard}, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	const restart = "take effect at the next restart"
	for _, change := range []func(*Config){
		func(c *Config) { c.Limits = Limits{MaxConnsPerTracker: 4} },
		func(c *Config) { c.Limits = Limits{MaxConnsPerTracker: 4, MaxIdlePerTracker: 2} },
		func(c *Config) { c.Limits = Limits{} },
		func(c *Config) { c.Timeouts.TrackerRead = conf.Duration(time.Second) },
		func(c *Config) { c.Timeouts.TrackerConnect = conf.Duration(time.Second) },
	} {
		cur := srv.state.Load()
		change(&cfg)
		if err := srv.Reload(cfg); err != nil {
			t.Fatal(err)
		}
		if srv.state.Load().tracker == cur.tracker {
			t.Errorf("a reload to limits %+v, timeouts %+v kept the tracker pool", cfg.Limits, cfg.Timeouts)
		}
	}
	if strings.Contains(logs.String(), restart) {
		t.Errorf("log = %q, want no warning for the tracker pool's limits", logs.String())
	}
	cfg.Limits.MaxHeaderSize = 8 * conf.KiB
	if err := srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), restart) || !strings.Contains(logs.String(), "limits.max_header_size") {
		t.Errorf("log = %q, want a warning that limits.max_header_size takes effect at the next restart", logs.String())
	}
}

// TestReloadPurgeAccess: a reload applies the purge block's credentials to the next purge (a
// rotated token: the old one refused, the new one accepted) without a restart warning, and names
// the purge settings that do wait for a restart.
func TestReloadPurgeAccess(t *testing.T) {
	t.Parallel()
	const oldToken, newToken = "old-token-0123456789", "new-token-0123456789"
	logs := &testutil.SyncBuffer{}
	cfg := trackerConfig()
	cfg.Purge = &purge.Config{Token: oldToken, Deny: []string{"all"}} // the token is required
	srv, err := New(cfg, Deps{Tracker: newFakeTracker(), AccessLog: io.Discard}, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	addr, cancel, done := serveLoopback(t, srv)
	defer func() { cancel(); <-done }()
	purgeWith := func(tok string) int {
		t.Helper()
		code, _, _, err := get(t, "PURGE", "http://"+addr+"/purge/d/k", "Authorization", "Bearer "+tok)
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	if got := purgeWith(oldToken); got != 404 {
		t.Fatalf("purge with the token = %d, want 404 (accepted, nothing cached)", got)
	}
	cfg.Purge = &purge.Config{Token: newToken, Deny: []string{"all"}}
	if err := srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if got := purgeWith(oldToken); got != 403 {
		t.Errorf("purge with the replaced token after the reload = %d, want 403", got)
	}
	if got := purgeWith(newToken); got != 404 {
		t.Errorf("purge with the new token after the reload = %d, want 404", got)
	}
	if strings.Contains(logs.String(), "next restart") {
		t.Errorf("log = %q, want no restart warning for a new purge token", logs.String())
	}
	cfg.Purge = &purge.Config{Token: newToken, Deny: []string{"all"}, Path: "/invalidate"}
	if err := srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "purge.path") {
		t.Errorf("log = %q, want a warning that purge.path takes effect at the next restart", logs.String())
	}
	if got := purgeWith(newToken); got != 404 {
		t.Errorf("purge on the path in force after a reload to another = %d, want 404", got)
	}
}

// TestStartOnlyChanges: a reload's warning names exactly the settings that wait for a restart, in
// the file's words, and none of those a reload applies.
func TestStartOnlyChanges(t *testing.T) {
	t.Parallel()
	base := Config{Trackers: []string{"127.0.0.1:7001"}, Routes: []Route{{Prefix: "/d/", Domain: "d"}}}.withDefaults()
	for _, tc := range []struct {
		change func(*Config)
		want   []string
	}{
		{func(*Config) {}, nil},
		{func(c *Config) { c.Listen = "127.0.0.1:8081" }, []string{"listen"}},
		{func(c *Config) { c.ServerName = "origin" }, []string{"server_name"}},
		{func(c *Config) { c.Timeouts.ClientRead = conf.Duration(time.Second) }, []string{"timeouts.client_read"}},
		{func(c *Config) {
			c.Timeouts.StorageIdle, c.Timeouts.Shutdown = conf.Duration(time.Second), conf.Duration(time.Second)
		},
			[]string{"timeouts.storage_idle", "timeouts.shutdown"}},
		{func(c *Config) { c.Limits.MaxConnsPerNode, c.Limits.DisableKeepAlive = 3, true },
			[]string{"limits.max_conns_per_node", "limits.disable_keep_alive"}},
		{func(c *Config) {
			c.Timeouts.TrackerConnect, c.Timeouts.TrackerRead = conf.Duration(time.Second), conf.Duration(time.Second)
			c.Timeouts.StorageFirstByte, c.Timeouts.StorageStall = conf.Duration(time.Second), conf.Duration(time.Second)
			c.Limits.MaxIdlePerTracker, c.Limits.MaxConnsPerTracker = 2, 3
			c.Limits.MaxUploadSize, c.Limits.UploadReplayBuffer = conf.KiB, conf.KiB
		}, nil},
	} {
		cfg := base
		tc.change(&cfg)
		if got := startOnlyChanges(cfg, base); !slices.Equal(got, tc.want) {
			t.Errorf("startOnlyChanges = %q, want %q", got, tc.want)
		}
	}
}

// TestReloadAppliesUploadLimit: limits.max_upload_size is read from the configuration in force, so a
// reload applies it to the next request's head.
func TestReloadAppliesUploadLimit(t *testing.T) {
	t.Parallel()
	logs := &testutil.SyncBuffer{}
	cfg := Config{Trackers: []string{deadAddr(t, "127.0.0.1")},
		Routes: []Route{{Prefix: "/d/", Domain: "d", Methods: []string{"GET", "PUT"}, Allow: []string{"127.0.0.0/8"}}}}
	srv, err := New(cfg, Deps{AccessLog: io.Discard}, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var h fasthttp.RequestHeader
	h.SetMethod("PUT")
	h.SetRequestURI("/d/k")
	h.SetContentLength(64 << 10)
	if !srv.allowContinue(&h) {
		t.Fatal("a 64 KiB PUT refused before the reload")
	}
	cfg.Limits.MaxUploadSize = 16 * conf.KiB
	if err := srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if srv.allowContinue(&h) {
		t.Error("a 64 KiB PUT allowed after a reload to limits.max_upload_size 16KiB")
	}
	if strings.Contains(logs.String(), "next restart") {
		t.Errorf("log = %q, want no restart warning for limits.max_upload_size", logs.String())
	}
}

// TestStopRightAfterStart: a stop before fasthttp registered the listener must still end Serve.
func TestStopRightAfterStart(t *testing.T) {
	t.Parallel()
	for i := 0; i < 20; i++ {
		srv, err := New(trackerConfig(), Deps{Tracker: newFakeTracker(), AccessLog: io.Discard}, nil)
		if err != nil {
			t.Fatal(err)
		}
		testutil.ServeCancelled(t, "127.0.0.1", srv.Serve)
	}
}

func TestRealIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}
	peer := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		peer, header, want string
	}{
		{"127.0.0.1", "", "127.0.0.1"},
		{"127.0.0.1", "203.0.113.7", "203.0.113.7"},
		{"127.0.0.1", "198.51.100.1, 203.0.113.7", "203.0.113.7"},
		{"127.0.0.1", "198.51.100.1, 203.0.113.7, 10.1.1.1", "203.0.113.7"},
		{"127.0.0.1", "10.2.2.2, 10.1.1.1", "10.2.2.2"},
		{"127.0.0.1", "garbage, 203.0.113.7", "203.0.113.7"},
		{"127.0.0.1", "203.0.113.7, garbage", "127.0.0.1"},
		{"127.0.0.1", "2001:db8::1", "2001:db8::1"},
		{"192.0.2.9", "203.0.113.7", "192.0.2.9"}, // untrusted peer: header ignored
	}
	for _, tt := range tests {
		peer = netip.MustParseAddr(tt.peer)
		if got := realIP(peer, tt.header, trusted); got.String() != tt.want {
			t.Errorf("realIP(%s, %q) = %s, want %s", tt.peer, tt.header, got, tt.want)
		}
	}
}

func TestRealIPThroughGateway(t *testing.T) {
	t.Parallel()
	node := startStorage(t, "127.0.0.3")
	ft := newFakeTracker()
	ft.opens = []Dest{{DevID: 1, Path: "http://" + node.addr + fidPath(401)}}
	cfg := trackerConfig(Route{Prefix: "/u/", Domain: "d", Methods: []string{"GET", "PUT"}, Allow: []string{"10.0.0.0/8"}})
	cfg.RealIP.TrustedProxies = []string{"127.0.0.0/8"}
	g := startGateway(t, cfg, Deps{Tracker: ft})
	if code, _ := put(t, g.base+"/u/k", bytes.NewReader([]byte("x")), 1); code != 403 {
		t.Errorf("PUT from the proxy itself = %d, want 403", code)
	}
	if code, _ := put(t, g.base+"/u/k", bytes.NewReader([]byte("x")), 1, "X-Forwarded-For", "10.9.8.7"); code != 201 {
		t.Errorf("PUT for an allowed client behind a trusted proxy = %d, want 201", code)
	}
	if code, _, _, _ := get(t, "GET", g.base+"/status", "X-Forwarded-For", "192.0.2.1"); code != 403 {
		t.Errorf("GET /status for a remote client behind the proxy = %d, want 403", code)
	}
	waitFor(t, "access log lines", func() bool { return strings.Count(g.log.String(), "\n") >= 3 })
	if !strings.Contains(g.log.String(), "10.9.8.7 - - [") {
		t.Errorf("access log = %q, want the forwarded client address", g.log.String())
	}
}

// TestReloadAppliesStorageTimeouts: timeouts.storage_first_byte, timeouts.storage_stall and
// limits.upload_replay_buffer are read per request from the configuration in force, so a reload
// applies them to the next request without a restart. Each case starts the gateway with the value
// that would keep the request waiting far past hedgeBound (or fail it), reloads, and expects the
// new value's answer.
func TestReloadAppliesStorageTimeouts(t *testing.T) {
	t.Parallel()
	// reload applies change to a copy of cfg and reloads g with it.
	reload := func(t *testing.T, g *gw, cfg Config, change func(*Config)) {
		t.Helper()
		change(&cfg)
		if err := g.srv.Reload(cfg); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("storage_first_byte", func(t *testing.T) {
		t.Parallel()
		hang := startFault(t, "127.0.0.4", faultHang, nil)
		ft := newFakeTracker()
		ft.set("d", "k", "http://"+hang.addr+fidPath(51)) // one copy: nothing to hedge to
		cfg := trackerConfig()
		cfg.Timeouts.StorageFirstByte = conf.Duration(hungFirstByte)
		cfg.Storage.MaxFails = -1
		g := startGateway(t, cfg, Deps{Tracker: ft})
		reload(t, g, cfg, func(c *Config) { c.Timeouts.StorageFirstByte = conf.Duration(300 * time.Millisecond) })
		start := time.Now()
		code, _, _, err := get(t, "GET", g.base+"/d/k")
		if took := time.Since(start); err != nil || code != 504 || took > hedgeBound {
			t.Errorf("GET of a copy on a hung node after a reload to storage_first_byte 300ms = %d, %v after %v; want 504 within %v (it was %v before)",
				code, err, took, hedgeBound, hungFirstByte)
		}
	})
	t.Run("storage_stall", func(t *testing.T) {
		t.Parallel()
		data := pattern(300000) // streamed: larger than maxBufferedBody
		var cfg Config
		g, _, _ := badFirstCopy(t, faultStall, data, func(c *Config) {
			c.Timeouts.StorageStall = conf.Duration(time.Minute)
			c.Timeouts.StorageIdle = conf.Duration(time.Minute)
			c.Hedge.Delay = "off" // the stalling copy's headers must win, however slow the machine
			cfg = *c
		})
		reload(t, g, cfg, func(c *Config) { c.Timeouts.StorageStall = conf.Duration(200 * time.Millisecond) })
		start := time.Now()
		code, _, body, err := get(t, "GET", g.base+"/d/k")
		if took := time.Since(start); err != nil || code != 200 || !bytes.Equal(body, data) || took > hedgeBound {
			t.Errorf("GET with the first copy stalled mid-body after a reload to storage_stall 200ms = %d, %d bytes, %v after %v; want 200 and the exact bytes within %v",
				code, len(body), err, took, hedgeBound)
		}
		if st := g.srv.Stats(); st.Resumed != 1 {
			t.Errorf("Stats().Resumed = %d, want 1 (continued from the second copy)", st.Resumed)
		}
	})
	t.Run("upload_replay_buffer", func(t *testing.T) {
		t.Parallel()
		// The first destination hangs; a 64 KiB body fits the socket buffers, so the gateway writes it
		// whole and waits for the answer: with 4 KiB kept it cannot send the body again, so it waits
		// storage_first_byte and answers 503; with 1 MiB kept it waits storage_stall (300ms) and
		// sends the body to the second destination.
		var cfg Config
		g, ft, _, good := hungUploadGateway(t, 52, func(c *Config) {
			c.Limits.UploadReplayBuffer = 4 * conf.KiB
			c.Timeouts.StorageFirstByte = conf.Duration(500 * time.Millisecond)
			cfg = *c
		})
		data := pattern(64 << 10)
		if code, body, took := timedPut(t, g.base+"/u/hung/before", data); code != 503 || took > hedgeBound {
			t.Fatalf("PUT past a 4 KiB replay buffer to a hung destination = %d %q after %v, want 503 within %v", code, body, took, hedgeBound)
		}
		wantNoClose(t, ft)
		reload(t, g, cfg, func(c *Config) { c.Limits.UploadReplayBuffer = conf.MiB })
		if code, body, took := timedPut(t, g.base+"/u/hung/after", data); code != 201 || took > hedgeBound {
			t.Fatalf("PUT after a reload to upload_replay_buffer 1MiB = %d %q after %v, want 201 within %v", code, body, took, hedgeBound)
		}
		onDisk, err := os.ReadFile(filepath.Join(good.docroot, filepath.FromSlash(fidPath(52))))
		if err != nil || !bytes.Equal(onDisk, data) {
			t.Errorf("copy on the second destination = %d bytes, %v; want the %d bytes sent", len(onDisk), err, len(data))
		}
	})
}
