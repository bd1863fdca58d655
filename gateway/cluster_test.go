package gateway

import (
	"bytes"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/clustertest"
	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/tracker/client"
)

// clusterGateway starts a gateway in front of c with the real tracker pool (Deps.Tracker nil).
func clusterGateway(t *testing.T, trackers []string, routes ...Route) *gw {
	t.Helper()
	if len(routes) == 0 {
		routes = []Route{{Prefix: "/d/", Domain: "d", Class: "c2", Methods: []string{"GET", "PUT", "DELETE"},
			Allow: []string{"127.0.0.0/8"}}}
	}
	cfg := Config{Trackers: trackers, Routes: routes}
	cfg.Timeouts.TrackerConnect = conf.Duration(500 * time.Millisecond)
	cfg.Timeouts.TrackerRead = conf.Duration(2 * time.Second)
	return startGateway(t, cfg, Deps{})
}

func TestClusterUploadGetDeleteThroughGateway(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, clustertest.Options{Nodes: 2, Trackers: 2,
		Domains: map[string]map[string]int{"d": {"c2": 2}}})
	// A dead tracker first in the list: the pool fails over to the live ones.
	trackers := append([]string{deadAddr(t, "127.0.0.1")}, c.TrackerAddrs()...)
	g := clusterGateway(t, trackers, Route{Prefix: "/d/", Domain: "d", Class: "c2",
		Methods: []string{"GET", "PUT", "DELETE"}, Allow: []string{"127.0.0.0/8"}},
		Route{Prefix: "/nodomain/", Domain: "nope"})
	data := pattern(700000)
	if code, body := put(t, g.base+"/d/photos/a+b.jpg", bytes.NewReader(data), int64(len(data))); code != 201 {
		t.Fatalf("PUT = %d %q, want 201", code, body)
	}
	// The key reached the tracker fully escaped: '+' stays '+'.
	if got := c.Fetch(t, "d", "photos/a+b.jpg"); !bytes.Equal(got, data) {
		t.Fatalf("tracker-side fetch = %d bytes, want the %d uploaded", len(got), len(data))
	}
	code, hdr, body, err := get(t, "GET", g.base+"/d/photos/a+b.jpg")
	if err != nil || code != 200 || !bytes.Equal(body, data) || hdr.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("GET = %d %q, %d bytes, %v; want 200 image/jpeg and the bytes", code, hdr.Get("Content-Type"), len(body), err)
	}
	// Overwrite: the path cache must not serve the old fid.
	data2 := []byte("second version")
	if code, _ := put(t, g.base+"/d/photos/a+b.jpg", bytes.NewReader(data2), int64(len(data2))); code != 201 {
		t.Fatalf("second PUT = %d", code)
	}
	if code, _, body, err := get(t, "GET", g.base+"/d/photos/a+b.jpg"); err != nil || code != 200 || !bytes.Equal(body, data2) {
		t.Fatalf("GET after overwrite = %d %q, %v; want 200 %q", code, body, err, data2)
	}
	if code, _, _, _ := get(t, "GET", g.base+"/d/missing"); code != 404 {
		t.Errorf("GET unknown key = %d, want 404", code)
	}
	if code, _, _, _ := get(t, "GET", g.base+"/nodomain/x"); code != 404 {
		t.Errorf("GET in an unknown domain = %d, want 404", code)
	}
	if code, _, _, _ := get(t, "DELETE", g.base+"/d/photos/a+b.jpg"); code != 204 {
		t.Errorf("DELETE = %d, want 204", code)
	}
	if code, _, _, _ := get(t, "GET", g.base+"/d/photos/a+b.jpg"); code != 404 {
		t.Errorf("GET after DELETE = %d, want 404", code)
	}
	if code, _, _, _ := get(t, "DELETE", g.base+"/d/photos/a+b.jpg"); code != 204 {
		t.Errorf("second DELETE = %d, want 204 (unknown key)", code)
	}
	// One tracker down: requests still succeed through the other.
	c.StopTracker(t, 0)
	if code, _ := put(t, g.base+"/d/after", bytes.NewReader(data2), int64(len(data2))); code != 201 {
		t.Errorf("PUT with one tracker stopped = %d, want 201", code)
	}
	if code, _, body, _ := get(t, "GET", g.base+"/d/after"); code != 200 || !bytes.Equal(body, data2) {
		t.Errorf("GET with one tracker stopped = %d %q", code, body)
	}
}

func TestClusterNodeDownFailsOverAndDropsCachedPaths(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, clustertest.Options{Nodes: 2, Domains: map[string]map[string]int{"d": {"c2": 2}}})
	data := pattern(300000)
	c.Upload(t, "d", "k", "c2", data)
	clustertest.Eventually(t, "two copies", func() bool { return len(c.GetPaths(t, "d", "k")) == 2 })
	// Hedging off: under load a first GET stuck past its hedge delay on both copies asks the tracker
	// again in its own goroutine, which drops the cached answer and may do so after the GET, when
	// the test looks for that answer in the cache.
	g := clusterGateway(t, c.TrackerAddrs(), Route{Prefix: "/d/", Domain: "d", Class: "c2",
		Methods: []string{"GET", "PUT", "DELETE"}, Allow: []string{"127.0.0.0/8"}, Hedge: Hedge{Delay: "off"}})
	if code, _, body, err := get(t, "GET", g.base+"/d/k"); err != nil || code != 200 || !bytes.Equal(body, data) {
		t.Fatalf("GET = %d, %v", code, err)
	}
	// Stop the node of the first path the gateway cached; the next GET fails over to the other copy.
	st := g.srv.state.Load()
	e, hit, err := st.paths.lookup(st.tracker, pathKey{"d", "k", false})
	if err != nil || !hit || len(e.parsed) != 2 {
		t.Fatalf("cached paths = %v, hit %v, %v; want 2 cached paths", e, hit, err)
	}
	u, _ := url.Parse(e.parsed[0].raw)
	for i := 0; i < 2; i++ {
		if addr, _ := c.Node(i); addr == u.Host {
			c.StopNode(t, i)
		}
	}
	code, _, body, err := get(t, "GET", g.base+"/d/k")
	if err != nil || code != 200 || !bytes.Equal(body, data) {
		t.Fatalf("GET with the first copy's node down = %d, %d bytes, %v; want 200 and the bytes", code, len(body), err)
	}
	if st.paths.fresh(pathKey{"d", "k", false}) == e {
		t.Errorf("the cached answer with the dead path is still cached")
	}
}

func TestClusterTrackerFailures(t *testing.T) {
	t.Parallel()
	// Every tracker refuses: 503 without trying storage.
	g := clusterGateway(t, []string{deadAddr(t, "127.0.0.1"), deadAddr(t, "127.0.0.1")})
	if code, _, _, _ := get(t, "GET", g.base+"/d/k"); code != 503 {
		t.Errorf("GET with every tracker down = %d, want 503", code)
	}
	// A tracker that accepts and never answers: 504 after the read timeout.
	ln := testutil.Silent(t, "127.0.0.1:0")
	cfg := Config{Trackers: []string{ln.Addr().String()}, Routes: []Route{{Prefix: "/d/", Domain: "d"}}}
	cfg.Timeouts.TrackerRead = conf.Duration(300 * time.Millisecond)
	g2 := startGateway(t, cfg, Deps{})
	if code, _, _, _ := get(t, "GET", g2.base+"/d/k"); code != 504 {
		t.Errorf("GET with a silent tracker = %d, want 504", code)
	}
}

// Lookups running at once keep their tracker connections: with the path cache off, rounds of
// concurrent GETs of distinct keys reuse the connections the first round opened, where a pool that
// kept 8 idle connections opened and closed one for most lookups of every round.
func TestClusterTrackerConnectionsKept(t *testing.T) {
	t.Parallel()
	const clients = 24
	accepted, st := getDistinctKeys(t, clients, 8, Limits{})
	if accepted > clients {
		t.Errorf("the tracker accepted %d connections for the lookups of %d clients; want at most %d (one per lookup running at once)",
			accepted, clients, clients)
	}
	// The gateway counts them too (/status, mogway_gateway_tracker_connections_opened_total).
	if st.Opened < 1 || st.Opened > clients || st.Idle < 1 {
		t.Errorf("tracker pool stats %+v: want between 1 and %d connections opened, and some kept idle", st, clients)
	}
}

// limits.max_conns_per_tracker bounds the connections to a tracker however many lookups run at
// once: every GET of many clients gets its 200 while the tracker accepts no more connections than
// the bound in all, so it never had more open at once.
func TestClusterMaxConnsPerTracker(t *testing.T) {
	t.Parallel()
	const clients, limit = 24, 3
	accepted, st := getDistinctKeys(t, clients, 4, Limits{MaxConnsPerTracker: limit})
	if accepted > limit {
		t.Errorf("the tracker accepted %d connections for the lookups of %d clients; want at most %d (limits.max_conns_per_tracker)",
			accepted, clients, limit)
	}
	if st.Opened > limit || st.Idle > limit || st.WaitTimeouts != 0 {
		t.Errorf("tracker pool stats %+v: want at most %d connections opened and idle, no wait run out", st, limit)
	}
	t.Logf("%d of %d lookups waited for a connection", st.Waits, st.Requests)
}

// getDistinctKeys starts a cluster holding keys k0 to k<clients-1> ("value i") and a gateway in
// front of it with limits and the path cache off. Clients 0 to clients-1 then GET their key k<i>
// rounds times each, all at once. It checks every answer and that each GET asked the tracker, and
// returns the connections the tracker accepted for them and the gateway's stats of its pool.
func getDistinctKeys(t *testing.T, clients, rounds int, limits Limits) (accepted int64, st client.TrackerStats) {
	t.Helper()
	c := clustertest.New(t, clustertest.Options{Nodes: 1, Domains: map[string]map[string]int{"d": {"c1": 1}}})
	for i := range clients {
		c.Upload(t, "d", fmt.Sprintf("k%d", i), "c1", []byte(fmt.Sprintf("value %d", i)))
	}
	cfg := Config{Trackers: c.TrackerAddrs(), PathCache: PathCache{Size: -1}, Limits: limits,
		Routes: []Route{{Prefix: "/d/", Domain: "d"}}}
	// A lookup waiting for a connection gives up after tracker_connect; the bound, not the
	// machine's speed, is under test.
	cfg.Timeouts.TrackerConnect = conf.Duration(clustertest.Timeout)
	g := startGateway(t, cfg, Deps{})
	before := c.Tracker(0).Stats().Accepted
	testutil.Concurrently(t, clients, func(i int) error {
		for range rounds {
			code, _, body, err := get(t, "GET", fmt.Sprintf("%s/d/k%d", g.base, i))
			if err != nil {
				return err
			}
			if code != 200 || string(body) != fmt.Sprintf("value %d", i) {
				return fmt.Errorf("GET k%d = %d %q, want 200 %q", i, code, body, fmt.Sprintf("value %d", i))
			}
		}
		return nil
	})
	gs := g.srv.Stats()
	if gs.PathCacheMisses != int64(clients*rounds) {
		t.Fatalf("%d path cache misses, want every one of the %d GETs to ask the tracker", gs.PathCacheMisses, clients*rounds)
	}
	ps, _ := gs.Tracker.(client.PoolStats)
	if len(ps.Trackers) != 1 {
		t.Fatalf("tracker pool stats %+v, want one tracker", ps)
	}
	return c.Tracker(0).Stats().Accepted - before, ps.Trackers[0]
}
