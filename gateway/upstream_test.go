package gateway

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/testutil"
)

func nodeRequests(g *gw, addr string) int64 {
	for _, n := range g.srv.Stats().Nodes {
		if n.Addr == addr {
			return n.Requests
		}
	}
	return 0
}

// nodeStats returns the gateway's stats of the node or server at addr, failing the test when it
// has none.
func nodeStats(t *testing.T, g *gw, addr string) NodeStats {
	t.Helper()
	for _, n := range g.srv.Stats().Nodes {
		if n.Addr == addr {
			return n
		}
	}
	t.Fatalf("no stats for node %s in %+v", addr, g.srv.Stats().Nodes)
	return NodeStats{}
}

// maxFailsGroup is a gateway whose route /dev1/ has two upstream servers, on a settable clock: bad
// answers every request 500 and is marked down by 2 failures within its fail_timeout of 10s
// (next_upstream includes http_500); good holds data as fid.
type maxFailsGroup struct {
	g     *gw
	bad   *faultServer
	good  *storageNode
	clock *testutil.Clock
	fid   int64
	data  []byte
}

// startMaxFailsGroup starts bad on 127.0.0.2, good on 127.0.0.3 and the gateway, with data (5000
// bytes) stored on good as fid.
func startMaxFailsGroup(t *testing.T, fid int64) *maxFailsGroup {
	t.Helper()
	bad := startFault(t, "127.0.0.2", fault500, nil)
	good := startStorage(t, "127.0.0.3")
	data := pattern(5000)
	good.put(t, fid, data)
	clock := testutil.NewClock()
	// Hedging off: the counts the tests make are of the round robin and max_fails alone; a hedge
	// fired under load would add a request to the bad server while it is still available.
	cfg := Config{Routes: []Route{{Prefix: "/dev1/", NextUpstream: []string{"error", "timeout", "http_500"},
		Servers: []UpstreamServer{
			{Addr: bad.addr, MaxFails: 2, FailTimeout: conf.Duration(10 * time.Second)},
			{Addr: good.addr},
		}, Hedge: Hedge{Delay: "off"}}}}
	g := startGateway(t, cfg, Deps{Now: clock.Now})
	return &maxFailsGroup{g: g, bad: bad, good: good, clock: clock, fid: fid, data: data}
}

// fetch GETs the fid through the gateway, failing the test unless the answer is 200 with its bytes.
func (m *maxFailsGroup) fetch(t *testing.T) {
	t.Helper()
	code, _, body, err := get(t, "GET", m.g.base+fidPath(m.fid))
	if err != nil || code != 200 || !bytes.Equal(body, m.data) {
		t.Fatalf("GET = %d, %d bytes, %v; want 200 and the exact bytes", code, len(body), err)
	}
}

func TestUpstreamMaxFailsFailTimeout(t *testing.T) {
	t.Parallel()
	m := startMaxFailsGroup(t, 71)
	// Round robin alternates first picks, so four requests try the bad server twice: two failures
	// within fail_timeout reach max_fails 2.
	for i := 0; i < 4; i++ {
		m.fetch(t)
	}
	if n := m.bad.accepted.Load(); n != 2 {
		t.Fatalf("bad server tried %d times in 4 requests, want 2", n)
	}
	for i := 0; i < 6; i++ {
		m.fetch(t)
	}
	if n := m.bad.accepted.Load(); n != 2 {
		t.Errorf("bad server tried %d times while marked down, want still 2", n)
	}
	m.clock.Advance(10 * time.Second)
	m.fetch(t)
	m.fetch(t)
	if n := m.bad.accepted.Load(); n != 3 {
		t.Errorf("bad server tried %d times after fail_timeout, want 3 (tried once again)", n)
	}
}

func TestUpstreamNextUpstreamRules(t *testing.T) {
	t.Parallel()
	bad := startFault(t, "127.0.0.2", fault500, nil)
	empty := startStorage(t, "127.0.0.4")
	good := startStorage(t, "127.0.0.3")
	data := []byte("fastdfs bytes")
	good.put(t, 72, data)
	dead := deadAddr(t, "127.0.0.5")
	one := func(addr string) UpstreamServer { return UpstreamServer{Addr: addr, MaxFails: -1} }
	// Hedging off: under load the first server's answer can take longer than the hedge delay, and a
	// hedge to the next server would answer instead of the one the rules pass through.
	cfg := Config{Hedge: Hedge{Delay: "off"}, Routes: []Route{
		// Default next_upstream [error, timeout]: a 500 is passed through, a refused connect fails over.
		{Prefix: "/a/", StripPrefix: true, Servers: []UpstreamServer{one(bad.addr), one(good.addr)}},
		{Prefix: "/b/", StripPrefix: true, Servers: []UpstreamServer{one(dead), one(good.addr)}},
		{Prefix: "/c/", StripPrefix: true, NextUpstream: []string{"off"}, Servers: []UpstreamServer{one(dead), one(good.addr)}},
		{Prefix: "/d/", StripPrefix: true, Servers: []UpstreamServer{one(empty.addr), one(good.addr)}},
		{Prefix: "/e/", StripPrefix: true, NextUpstream: []string{"http_404"}, Servers: []UpstreamServer{one(empty.addr), one(good.addr)}},
		{Prefix: "/f/", StripPrefix: true, NextUpstream: []string{"http_500"}, Servers: []UpstreamServer{one(bad.addr)}},
		{Prefix: "/dev1/", Servers: []UpstreamServer{one(good.addr)}},
	}}
	g := startGateway(t, cfg, Deps{})
	tests := []struct {
		path string
		want int
		body []byte
	}{
		{"/a" + fidPath(72), 500, nil},
		{"/b" + fidPath(72), 200, data},
		{"/c" + fidPath(72), 502, nil},
		{"/d" + fidPath(72), 404, nil},
		{"/e" + fidPath(72), 200, data},
		{"/f" + fidPath(72), 500, nil}, // the last server's answer is passed through
		{fidPath(72), 200, data},       // no strip_prefix: the URI as sent
		{fidPath(72) + "?x=1", 200, data},
	}
	for _, tt := range tests {
		code, _, body, err := get(t, "GET", g.base+tt.path)
		if err != nil || code != tt.want || (tt.body != nil && !bytes.Equal(body, tt.body)) {
			t.Errorf("GET %s = %d %q, %v; want %d %q", tt.path, code, body, err, tt.want, tt.body)
		}
	}
}

func TestUpstreamWeights(t *testing.T) {
	t.Parallel()
	a := startStorage(t, "127.0.0.2")
	b := startStorage(t, "127.0.0.3")
	a.put(t, 73, []byte("x"))
	b.put(t, 73, []byte("x"))
	// Hedging off: on a loaded machine a slow first byte would let a hedge add a request to the
	// other server, and the count is of the weighted choice alone.
	cfg := Config{Routes: []Route{{Prefix: "/dev1/", Servers: []UpstreamServer{
		{Addr: a.addr, Weight: 2}, {Addr: b.addr, Weight: 1}}, Hedge: Hedge{Delay: "off"}}}}
	g := startGateway(t, cfg, Deps{})
	for i := 0; i < 9; i++ {
		if code, _, _, err := get(t, "GET", g.base+fidPath(73)); err != nil || code != 200 {
			t.Fatalf("GET = %d, %v", code, err)
		}
	}
	if na, nb := nodeRequests(g, a.addr), nodeRequests(g, b.addr); na != 6 || nb != 3 {
		t.Errorf("requests with weights 2:1 = %d:%d, want 6:3", na, nb)
	}
}

func TestUpstreamResumeAfterMidBodyDeath(t *testing.T) {
	t.Parallel()
	data := pattern(1 << 20)
	good := startStorage(t, "127.0.0.3")
	good.put(t, 74, data)
	dying := startFault(t, "127.0.0.4", faultMidBody, data)
	one := func(addr string) UpstreamServer { return UpstreamServer{Addr: addr, MaxFails: -1} }
	// Hedging off: a slow first byte on a loaded machine must not let the good server answer first.
	cfg := Config{Routes: []Route{{Prefix: "/dev1/", Servers: []UpstreamServer{one(dying.addr), one(good.addr)},
		Hedge: Hedge{Delay: "off"}}}}
	g := startGateway(t, cfg, Deps{})
	// Round robin starts with the dying server on the first request.
	code, _, body, err := get(t, "GET", g.base+fidPath(74))
	if err != nil || code != 200 || !bytes.Equal(body, data) {
		t.Fatalf("GET = %d, %d bytes, %v; want 200 and %d exact bytes", code, len(body), err, len(data))
	}
	if st := g.srv.Stats(); st.Resumed != 1 {
		t.Errorf("Stats().Resumed = %d, want 1", st.Resumed)
	}
	if code, _, body, err := get(t, "GET", g.base+fidPath(74), "Range", "bytes=0-1,5-6"); err != nil || code/100 != 2 || len(body) == 0 {
		t.Errorf("multi-range GET = %d, %d bytes, %v; want a 2xx", code, len(body), err)
	}
}

func TestExtend(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	idle := 80 * time.Second
	at := func(d time.Duration) time.Time { return now.Add(d) }
	tests := []struct {
		name         string
		armed, floor time.Time
		want         time.Time
		keep         bool
	}{
		{"no deadline yet", time.Time{}, time.Time{}, at(idle), false},
		{"fresh deadline kept", at(idle - time.Second), time.Time{}, at(idle), true},
		{"deadline at the slack edge kept", at(70 * time.Second), time.Time{}, at(idle), true},
		{"deadline older than the slack moved", at(69 * time.Second), time.Time{}, at(idle), false},
		{"deadline beyond idle moved back", at(idle + time.Second), time.Time{}, at(idle), false},
		{"later floor wins", at(idle), at(5 * time.Minute), at(5 * time.Minute), false},
		{"later floor already armed", at(5 * time.Minute), at(5 * time.Minute), at(5 * time.Minute), true},
		{"floor within the slack", at(75 * time.Second), at(75 * time.Second), at(idle), true},
		{"armed before a floor within the slack", at(71 * time.Second), at(75 * time.Second), at(idle), false},
	}
	for _, tc := range tests {
		got, keep := extend(tc.armed, tc.floor, now, idle)
		if !got.Equal(tc.want) || keep != tc.keep {
			t.Errorf("%s: extend(%v, %v) = %v, %v; want %v, %v", tc.name, tc.armed.Sub(now), tc.floor.Sub(now),
				got.Sub(now), keep, tc.want.Sub(now), tc.keep)
		}
	}
}

// Picking the targets of a group of up to ownTargets servers allocates nothing: they go into the
// room the fetchRequest has for them.
func TestGroupTargetsAllocs(t *testing.T) {
	g := newGroup([]UpstreamServer{{Addr: "127.0.0.2:1", Weight: 2}, {Addr: "127.0.0.3:1", Weight: 1},
		{Addr: "127.0.0.4:1", Weight: 1}}, newNodes(nodeOptions{}))
	var fr fetchRequest
	now := time.Now()
	allocs := testing.AllocsPerRun(100, func() {
		fr.targets = g.targets(fr.own[:0], now, "/a")
	})
	if allocs != 0 {
		t.Errorf("group.targets allocates %.1f times per request, want 0", allocs)
	}
	if len(fr.targets) != 3 || &fr.targets[0] != &fr.own[0] {
		t.Errorf("targets = %d, in fr.own %v; want 3 in fr.own", len(fr.targets), &fr.targets[0] == &fr.own[0])
	}
}

// TestUpstreamURI: without strip_prefix the URI goes out as the client wrote it, as nginx's
// `proxy_pass http://group;` sends its unparsed request URI (runs of slashes included: merge_slashes
// only changes the path locations match); one with "." or ".." segments goes out resolved. With
// strip_prefix the normalised path goes out with "/" for the prefix, as `proxy_pass http://group/;`.
func TestUpstreamURI(t *testing.T) {
	tests := []struct {
		raw   string
		strip bool
		want  string
	}{
		{"/dev1/x", false, "/dev1/x"},
		{"/dev1//x", false, "/dev1//x"},
		{"//dev1///x?a=%20b&c", false, "//dev1///x?a=%20b&c"},
		{"/dev1/a%2Fb%20c+d", false, "/dev1/a%2Fb%20c+d"},
		{"/dev1/./x", false, "/dev1/x"},
		{"/dev1/a/../x?q", false, "/dev1/x?q"},
		{"/dev1/./%41%2Fb?q=%2F", false, "/dev1/A/b?q=%2F"},
		{"/dev1//a/./b%20c?q=%2F", false, "/dev1/a/b%20c?q=%2F"},
		{"/dev1/a/%2e%2e/x", false, "/dev1/x"},
		{"http://h/dev1//a%2Fb?q", false, "/dev1//a%2Fb?q"},
		{"HTTP://h:80/dev1/x", false, "/dev1/x"},
		{"http://h/dev1/a/../x?q", false, "/dev1/x?q"},
		{"/dev1/x", true, "/x"},
		{"/dev1//a//b", true, "/a/b"},
		{"/dev1//x//y?q=%20", true, "/x/y?q=%20"},
		{"/dev1/a%20b/./c", true, "/a%20b/c"},
		{"/dev1/", true, "/"},
	}
	for _, tt := range tests {
		rp, err := parseRequestPath([]byte(tt.raw))
		if err != nil {
			t.Fatalf("parseRequestPath(%q): %v", tt.raw, err)
		}
		rt := &route{Route: Route{Prefix: "/dev1/", StripPrefix: tt.strip}}
		if got := upstreamURI(rt, rp, tt.raw); got != tt.want {
			t.Errorf("upstreamURI(%q, strip_prefix %v) = %q, want %q", tt.raw, tt.strip, got, tt.want)
		}
	}
}

// TestUpstreamSendsURIAsWritten: the request line an upstream server reads carries the URI the
// client wrote, runs of slashes included (nginx's proxy_pass without a URI part), a URI with dot
// segments resolved, and with strip_prefix the prefix replaced by "/" in the normalised path.
func TestUpstreamSendsURIAsWritten(t *testing.T) {
	t.Parallel()
	up := startHTTP(t, "127.0.0.2", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	one := []UpstreamServer{{Addr: up.addr}}
	cfg := Config{Hedge: Hedge{Delay: "off"}, Routes: []Route{
		{Prefix: "/dev1/", Servers: one},
		{Prefix: "/s/", StripPrefix: true, Servers: one},
	}}
	g := startGateway(t, cfg, Deps{})
	addr := strings.TrimPrefix(g.base, "http://")
	tests := []struct{ sent, want string }{
		{"/dev1//x?a=%20", "/dev1//x?a=%20"},
		{"//dev1/a//b%2Fc?q=%20&r", "//dev1/a//b%2Fc?q=%20&r"},
		{"http://h/dev1//x?q", "/dev1//x?q"},
		{"/dev1/a/../x?q", "/dev1/x?q"},
		{"/s//a//b", "/a/b"},
	}
	for _, tt := range tests {
		resp := rawExchange(t, addr, "GET "+tt.sent+" HTTP/1.1\r\nHost: x\r\n\r\n")
		if code := resp.StatusCode(); code != 200 {
			t.Fatalf("GET %s = %d, want 200", tt.sent, code)
		}
	}
	seen := up.requests()
	if len(seen) != len(tests) {
		t.Fatalf("upstream saw %d requests (%+v), want %d", len(seen), seen, len(tests))
	}
	for i, tt := range tests {
		if seen[i].uri != tt.want {
			t.Errorf("GET %s reached the upstream as %q, want %q", tt.sent, seen[i].uri, tt.want)
		}
	}
}

// TestUpstreamResumeRefusesAnotherWhole: after a server's body breaks mid-way, the next server's
// answer to the Range for the missing bytes is used only when it is part of the same whole: the same
// length, ETag and Last-Modified. Otherwise the client connection is cut (no foreign bytes under the
// 200 already sent), the body counts as aborted and nothing as resumed.
func TestUpstreamResumeRefusesAnotherWhole(t *testing.T) {
	t.Parallel()
	data := pattern(1 << 20)
	const etag = `"a"`
	modified := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	dying := startHTTP(t, "127.0.0.2", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("ETag", etag)
		h.Set("Last-Modified", modified.Format(http.TimeFormat))
		h.Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:len(data)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the connection is cut in the middle of the body
	})
	serve := func(etag string, modified time.Time, body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", etag)
			http.ServeContent(w, r, "", modified, bytes.NewReader(body))
		}
	}
	longer := append(append([]byte(nil), data...), 'x')
	cases := []struct {
		name  string
		other *httpServer
	}{
		{"another ETag", startHTTP(t, "127.0.0.3", serve(`"b"`, modified, data))},
		{"another Last-Modified", startHTTP(t, "127.0.0.4", serve(etag, modified.Add(time.Hour), data))},
		{"another length", startHTTP(t, "127.0.0.5", serve(etag, modified, longer))},
	}
	// Hedging off: the dying server's headers must win however slow the machine. Round robin starts
	// with the first server of each group.
	var cfg Config
	for i, c := range cases {
		cfg.Routes = append(cfg.Routes, Route{Prefix: "/r" + strconv.Itoa(i) + "/", Hedge: Hedge{Delay: "off"},
			Servers: []UpstreamServer{{Addr: dying.addr, MaxFails: -1}, {Addr: c.other.addr, MaxFails: -1}}})
	}
	g := startGateway(t, cfg, Deps{})
	wantRange := "bytes=" + strconv.Itoa(len(data)/2) + "-" + strconv.Itoa(len(data)-1)
	for i, c := range cases {
		path := "/r" + strconv.Itoa(i) + "/x"
		before := g.srv.Stats()
		code, _, body, err := get(t, "GET", g.base+path)
		if reqs := c.other.requests(); len(reqs) != 1 || reqs[0].rangeHdr != wantRange {
			t.Errorf("%s: the next server was asked %+v, want one request with Range %q", c.name, reqs, wantRange)
		}
		if err == nil {
			t.Errorf("%s: GET %s = %d with %d bytes and no error; want a broken transfer", c.name, path, code, len(body))
			continue
		}
		// The body is counted aborted before the client connection is cut.
		if st := g.srv.Stats(); st.Resumed != before.Resumed || st.Aborted != before.Aborted+1 {
			t.Errorf("%s: Stats() Resumed = %d, Aborted = %d; want %d and %d", c.name, st.Resumed, st.Aborted,
				before.Resumed, before.Aborted+1)
		}
	}
	if n := len(dying.requests()); n != len(cases) {
		t.Errorf("the dying server saw %d requests, want %d", n, len(cases))
	}
}

// TestUpstreamStatusesThatDoNotCount: as in nginx, http_403, http_404 and http_429 never count
// against max_fails, even when listed in next_upstream, and a 5xx not listed there does not count
// either: with max_fails 1 the server stays up after answering them.
func TestUpstreamStatusesThatDoNotCount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		next   []string
	}{
		{403, []string{"error", "timeout", "http_403", "http_404", "http_429"}},
		{404, []string{"error", "timeout", "http_403", "http_404", "http_429"}},
		{429, []string{"error", "timeout", "http_403", "http_404", "http_429"}},
		{500, nil}, // next_upstream [error, timeout]
		{503, []string{"error", "timeout", "http_500", "http_502", "http_504"}},
	}
	var cfg Config
	servers := make([]*httpServer, len(tests))
	for i, tt := range tests {
		status := tt.status
		servers[i] = startHTTP(t, "127.0.0.2", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
		})
		cfg.Routes = append(cfg.Routes, Route{Prefix: "/r" + strconv.Itoa(i) + "/", NextUpstream: tt.next,
			Hedge: Hedge{Delay: "off"}, Servers: []UpstreamServer{{Addr: servers[i].addr, MaxFails: 1}}})
	}
	g := startGateway(t, cfg, Deps{})
	for i, tt := range tests {
		path := "/r" + strconv.Itoa(i) + "/x"
		if code, _, _, err := get(t, "GET", g.base+path); err != nil || code != tt.status {
			t.Errorf("GET %s = %d, %v; want %d passed through", path, code, err, tt.status)
		}
	}
	for i, tt := range tests {
		var found bool
		for _, n := range g.srv.Stats().Nodes {
			if n.Addr != servers[i].addr {
				continue
			}
			found = true
			if !n.Up || n.Failures != 0 {
				t.Errorf("server answering %d (next_upstream %v): up %v, failures %d; want up, 0 failures",
					tt.status, tt.next, n.Up, n.Failures)
			}
		}
		if !found {
			t.Errorf("server answering %d is not in Stats().Nodes", tt.status)
		}
	}
}

// TestUpstreamDownServerStillTried: servers marked down by max_fails are still tried when no other
// is left, so a group never refuses outright.
func TestUpstreamDownServerStillTried(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	flaky := startHTTP(t, "127.0.0.2", func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.Write([]byte("back"))
	})
	dead := deadAddr(t, "127.0.0.3")
	clock := testutil.NewClock() // never advanced: fail_timeout does not run out
	cfg := Config{Routes: []Route{{Prefix: "/dev1/", NextUpstream: []string{"error", "timeout", "http_500"},
		Hedge: Hedge{Delay: "off"}, Servers: []UpstreamServer{{Addr: flaky.addr}, {Addr: dead}}}}}
	g := startGateway(t, cfg, Deps{Now: clock.Now})
	// The first request fails on both: the 500 (listed) and the refused connection mark them down.
	if code, _, _, err := get(t, "GET", g.base+"/dev1/x"); err != nil || code != 502 {
		t.Fatalf("first GET = %d, %v; want 502", code, err)
	}
	for _, addr := range []string{flaky.addr, dead} {
		if n := nodeStats(t, g, addr); n.Up {
			t.Fatalf("server %s is up after failing with max_fails 1; want both down", addr)
		}
	}
	code, _, body, err := get(t, "GET", g.base+"/dev1/x")
	if err != nil || code != 200 || string(body) != "back" {
		t.Errorf("GET with every server down = %d %q, %v; want 200 %q from the server marked down", code, body, err, "back")
	}
	if n := len(flaky.requests()); n != 2 {
		t.Errorf("the server marked down saw %d requests, want 2", n)
	}
}
