package gateway

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/clustertest"
	"github.com/mogway/mogway/internal/conf"
)

// loadResult is what hammer saw: failed requests and the slowest answer.
type loadResult struct {
	failed  int
	slowest time.Duration
	errs    []string
}

// hammer runs clients concurrent clients, each sending n requests of method to url, and checks every
// answer is 200 with want (GET) or with no body (HEAD).
func hammer(t *testing.T, clients, n int, method, url string, want []byte) loadResult {
	t.Helper()
	var mu sync.Mutex
	var res loadResult
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				start := time.Now()
				code, _, body, err := get(t, method, url)
				took := time.Since(start)
				mu.Lock()
				res.slowest = max(res.slowest, took)
				if err != nil || code != 200 || (method == "GET" && !bytes.Equal(body, want)) {
					res.failed++
					if len(res.errs) < 5 {
						res.errs = append(res.errs, fmt.Sprintf("%s = %d, %d bytes, %v", method, code, len(body), err))
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d × %d %s %s: %d failed, slowest %v", clients, n, method, url, res.failed, res.slowest)
	return res
}

// hedgeBound is the most a request may take while one copy hangs: a third of hungFirstByte, which a
// request waits on the hung copy without hedging, and far above the hedge delay (at most hedgeMax),
// so that a loaded machine does not fail the test (a request once took 6s under make test's load,
// when the bound was 5s against a storage_first_byte of 10s).
const hedgeBound = 20 * time.Second

// hungFirstByte is the storage_first_byte of the hedging tests with a hung copy.
const hungFirstByte = time.Minute

// hungCopy runs a gateway whose tracker names two copies of data for key d/k: first on a node that
// hangs, then on a real storage node. mutate adjusts the configuration.
func hungCopy(t *testing.T, data []byte, mutate func(*Config)) (g *gw, good *storageNode, hang *faultServer) {
	return badFirstCopy(t, faultHang, data, mutate)
}

// badFirstCopy runs a gateway whose tracker names two copies of data for key d/k: first on a node
// misbehaving as f, then on a real storage node. Nodes are never marked down, so every request
// meets the bad copy unless the gateway avoids it. storage_first_byte is hungFirstByte; mutate
// adjusts the configuration.
func badFirstCopy(t *testing.T, f fault, data []byte, mutate func(*Config)) (g *gw, good *storageNode, bad *faultServer) {
	t.Helper()
	good = startStorage(t, "127.0.0.3")
	url := good.put(t, 31, data)
	bad = startFault(t, "127.0.0.4", f, data)
	ft := newFakeTracker()
	ft.set("d", "k", "http://"+bad.addr+fidPath(31), url)
	cfg := trackerConfig()
	cfg.Storage.MaxFails = -1
	cfg.Timeouts.StorageFirstByte = conf.Duration(hungFirstByte)
	mutate(&cfg)
	return startGateway(t, cfg, Deps{Tracker: ft}), good, bad
}

func TestHedgedReadsAroundHungCopy(t *testing.T) {
	t.Parallel()
	data := pattern(100000)
	g, good, hang := hungCopy(t, data, func(cfg *Config) { cfg.Hedge.Budget = "100%" })

	res := hammer(t, 20, 5, "GET", g.base+"/d/k", data)
	if res.failed != 0 || res.slowest > hedgeBound {
		t.Errorf("20 clients × 5 GETs with one copy hung: %d failed (%v), slowest %v; want 0 failed, each under %v",
			res.failed, res.errs, res.slowest, hedgeBound)
	}
	res = hammer(t, 4, 3, "HEAD", g.base+"/d/k", nil)
	if res.failed != 0 || res.slowest > hedgeBound {
		t.Errorf("HEADs with one copy hung: %d failed (%v), slowest %v; want 0 failed, each under %v",
			res.failed, res.errs, res.slowest, hedgeBound)
	}
	st := g.srv.Stats()
	if st.Hedges == 0 || st.HedgesWon == 0 || st.HedgesCancelled == 0 {
		t.Errorf("Stats hedges %d, won %d, cancelled %d; want each > 0", st.Hedges, st.HedgesWon, st.HedgesCancelled)
	}
	if code, _, body, _ := get(t, "GET", g.base+"/status", "Accept", "text/html"); code != 200 ||
		!strings.Contains(string(body), "Hedges sent") || !strings.Contains(string(body), "st-warn\">suspect") {
		t.Errorf("GET /status as a browser = %d; want the hedge counters and the hung node suspect:\n%s", code, body)
	}
	// The hung node holds requests past their hedge delay (until storage_first_byte): suspect.
	for _, n := range st.Nodes {
		switch n.Addr {
		case hang.addr:
			if !n.Suspect || n.InFlight == 0 {
				t.Errorf("hung node %+v; want suspect with requests in flight", n)
			}
		case good.addr:
			if n.Suspect || n.LatencyMs <= 0 || n.HedgeDelayMs < durationMs(hedgeMin) || n.HedgeDelayMs > durationMs(hedgeMax) {
				t.Errorf("good node %+v; want not suspect, a latency, a hedge delay within [%v, %v]", n, hedgeMin, hedgeMax)
			}
		}
	}
}

// TestHedgeRefreshesCachedPaths (issue 11): the path cache holds an answer naming one copy, taken
// while the other copy's node hung; then that copy's node hangs instead. A request stuck on it past
// the hedge delay asks the tracker again and is answered from the copy the tracker names now. Before,
// with no other target to hedge to, every request waited storage_first_byte: in the acceptance run
// all 20 clients failed at their 3 s timeout.
func TestHedgeRefreshesCachedPaths(t *testing.T) {
	t.Parallel()
	data := pattern(70000)
	var f clustertest.Freezer
	a := startFrozenStorage(t, "127.0.0.3", &f)
	b := startStorage(t, "127.0.0.4")
	ft := newFakeTracker()
	ft.set("d", "k", a.put(t, 31, data))
	cfg := trackerConfig()
	cfg.PathCache.TTL = conf.Duration(time.Hour)
	cfg.Timeouts.StorageFirstByte = conf.Duration(hungFirstByte)
	cfg.Hedge.Budget = "100%" // a few requests only: the floor of the default budget would delay some
	g := startGateway(t, cfg, Deps{Tracker: ft})
	if code, _, body, err := get(t, "GET", g.base+"/d/k"); code != 200 || !bytes.Equal(body, data) {
		t.Fatalf("GET /d/k = %d with %d bytes (%v), want 200 with %d", code, len(body), err, len(data))
	}
	ft.set("d", "k", a.put(t, 31, data), b.put(t, 31, data))
	f.Freeze()
	t.Cleanup(f.Thaw)
	before := ft.calls.Load()

	res := hammer(t, 5, 4, "GET", g.base+"/d/k", data)
	if res.failed != 0 || res.slowest > hedgeBound {
		t.Errorf("5 clients × 4 GETs with the one cached copy hung: %d failed (%v), slowest %v; want 0 failed, each under %v",
			res.failed, res.errs, res.slowest, hedgeBound)
	}
	if n := ft.calls.Load() - before; n == 0 {
		t.Errorf("get_paths asked %d times while the cached copy hung, want at least once", n)
	}
}

func TestHeadHedged(t *testing.T) {
	t.Parallel()
	data := pattern(1000)
	g, _, _ := hungCopy(t, data, func(*Config) {})
	start := time.Now()
	code, hdr, _, err := get(t, "HEAD", g.base+"/d/k")
	if err != nil || code != 200 || hdr.Get("Content-Length") != "1000" {
		t.Fatalf("HEAD = %d, %v, %v; want 200 with Content-Length 1000", code, hdr, err)
	}
	if took := time.Since(start); took > hedgeBound {
		t.Errorf("HEAD with the first copy hung took %v; want under %v", took, hedgeBound)
	}
	if st := g.srv.Stats(); st.Hedges != 1 || st.HedgesWon != 1 {
		t.Errorf("Stats hedges %d, won %d; want 1, 1", st.Hedges, st.HedgesWon)
	}
}

func TestHedgeOffWaitsForFirstByte(t *testing.T) {
	t.Parallel()
	data := pattern(1000)
	g, _, _ := hungCopy(t, data, func(cfg *Config) {
		cfg.Routes[0].Hedge.Delay = "off"
		cfg.Timeouts.StorageFirstByte = conf.Duration(time.Second)
	})
	start := time.Now()
	code, _, body, err := get(t, "GET", g.base+"/d/k")
	if err != nil || code != 200 || !bytes.Equal(body, data) {
		t.Fatalf("GET = %d, %d bytes, %v; want 200 from the second copy", code, len(body), err)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("GET with hedge off took %v; want the whole storage_first_byte (1s) on the hung copy", took)
	}
	if st := g.srv.Stats(); st.Hedges != 0 {
		t.Errorf("Stats().Hedges = %d with hedge off, want 0", st.Hedges)
	}
}

func TestHedgeBudgetCapsExtraRequests(t *testing.T) {
	t.Parallel()
	data := pattern(2000)
	a := startFault(t, "127.0.0.3", faultSlow, data)
	b := startFault(t, "127.0.0.4", faultSlow, data)
	ft := newFakeTracker()
	ft.set("d", "k", "http://"+a.addr+fidPath(33), "http://"+b.addr+fidPath(33))
	cfg := trackerConfig()
	cfg.Storage.MaxFails = -1
	cfg.Hedge = Hedge{Delay: "20ms", Budget: "10%"}
	g := startGateway(t, cfg, Deps{Tracker: ft})
	const clients, n = 10, 6
	res := hammer(t, clients, n, "GET", g.base+"/d/k", data)
	if res.failed != 0 {
		t.Errorf("%d failed (%v); want 0", res.failed, res.errs)
	}
	// Every request is slower than the hedge delay on both copies, so without a budget each would
	// reach both nodes.
	total := a.requests.Load() + b.requests.Load()
	limit := int64(clients*n + clients*n/10 + hedgeFloor)
	if total > limit {
		t.Errorf("%d requests reached the nodes for %d GETs; want at most %d (10%% budget plus %d)", total, clients*n, limit, hedgeFloor)
	}
	st := g.srv.Stats()
	if st.HedgeBudgetExhausted == 0 || st.Hedges == 0 {
		t.Errorf("Stats hedges %d, budget exhausted %d; want both > 0", st.Hedges, st.HedgeBudgetExhausted)
	}
}

func TestHedgeLoserConnectionClosed(t *testing.T) {
	t.Parallel()
	data := pattern(200000) // streamed: larger than maxBufferedBody
	g, _, slow := badFirstCopy(t, faultSlow, data, func(cfg *Config) { cfg.Hedge.Delay = "20ms" })
	code, _, body, err := get(t, "GET", g.base+"/d/k")
	if err != nil || code != 200 || !bytes.Equal(body, data) {
		t.Fatalf("GET = %d, %d bytes, %v; want 200 and the exact bytes", code, len(body), err)
	}
	// The slow copy answers after the hedge won: its answer is dropped and its connection closed,
	// not pooled with its body unread.
	waitFor(t, "the loser's connection to be closed", func() bool { return slow.closedByPeer.Load() == 1 })
	if st := g.srv.Stats(); st.Hedges != 1 || st.HedgesWon != 1 || st.HedgesCancelled != 1 {
		t.Errorf("Stats hedges %d, won %d, cancelled %d; want 1, 1, 1", st.Hedges, st.HedgesWon, st.HedgesCancelled)
	}
}

// hungServer runs a gateway with an upstream route on /dev1/ whose group is a server that hangs, then
// a real storage node holding data as fid; servers are never marked down. storage_first_byte is
// hungFirstByte.
func hungServer(t *testing.T, fid int64, data []byte, h Hedge) (*gw, *faultServer) {
	t.Helper()
	up := startStorage(t, "127.0.0.3")
	up.put(t, fid, data)
	hang := startFault(t, "127.0.0.4", faultHang, nil)
	cfg := Config{Routes: []Route{{Prefix: "/dev1/", Servers: []UpstreamServer{
		{Addr: hang.addr, MaxFails: -1}, {Addr: up.addr, MaxFails: -1}}, Hedge: h}}}
	cfg.Timeouts.StorageFirstByte = conf.Duration(hungFirstByte)
	return startGateway(t, cfg, Deps{}), hang
}

func TestHedgedUpstreamRoute(t *testing.T) {
	t.Parallel()
	data := pattern(50000)
	g, _ := hungServer(t, 35, data, Hedge{Budget: "100%"})
	res := hammer(t, 20, 4, "GET", g.base+fidPath(35), data)
	if res.failed != 0 || res.slowest > hedgeBound {
		t.Errorf("upstream route with one server hung: %d failed (%v), slowest %v; want 0 failed, each under %v",
			res.failed, res.errs, res.slowest, hedgeBound)
	}
	if st := g.srv.Stats(); st.Hedges == 0 {
		t.Errorf("Stats().Hedges = 0; want hedges around the hung server")
	}
}

func TestUploadsAndDeletesNotHedged(t *testing.T) {
	t.Parallel()
	hang := startFault(t, "127.0.0.4", faultHang, nil)
	good := startStorage(t, "127.0.0.3")
	ft := newFakeTracker()
	ft.opens = []Dest{{DevID: 1, Path: "http://" + hang.addr + fidPath(36)}, {DevID: 2, Path: "http://" + good.addr + fidPath(36)}}
	ft.set("d", "k", "http://"+good.addr+fidPath(36))
	cfg := trackerConfig(Route{Prefix: "/d/", Domain: "d", Methods: []string{"GET", "PUT", "DELETE"}, Allow: []string{"127.0.0.0/8"}})
	cfg.Storage.MaxFails = -1
	cfg.Timeouts.StorageFirstByte = conf.Duration(time.Second)
	cfg.Timeouts.StorageIdle = conf.Duration(time.Second)
	cfg.Hedge.Delay = "20ms"
	g := startGateway(t, cfg, Deps{Tracker: ft})
	req, err := http.NewRequest("PUT", g.base+"/d/k", strings.NewReader(strings.Repeat("x", 100)))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := testClient().Do(req); err == nil {
		resp.Body.Close()
	}
	get(t, "DELETE", g.base+"/d/k")
	if st := g.srv.Stats(); st.Hedges != 0 {
		t.Errorf("Stats().Hedges = %d after a PUT to a hung node and a DELETE; want 0", st.Hedges)
	}
	if n := hang.requests.Load(); n > 1 {
		t.Errorf("the hung destination saw %d requests; want at most 1 (PUT never sent twice to it)", n)
	}
}

func TestSuspectNodeAvoided(t *testing.T) {
	t.Parallel()
	data := pattern(20000)
	g, good, hang := hungCopy(t, data, func(*Config) {}) // the default budget, 10%
	// Steady traffic before the node hangs, as in production: the budget's window holds it.
	url2 := "http://" + good.addr + fidPath(31)
	g.srv.state.Load().tracker.(*fakeTracker).set("d", "warm", url2, url2)
	if res := hammer(t, 20, 10, "GET", g.base+"/d/warm", data); res.failed != 0 {
		t.Fatalf("warm-up: %d failed (%v)", res.failed, res.errs)
	}
	const clients, n = 20, 10
	res := hammer(t, clients, n, "GET", g.base+"/d/k", data)
	if res.failed != 0 || res.slowest > hedgeBound {
		t.Errorf("%d clients × %d GETs, first copy hung, 10%% budget: %d failed (%v), slowest %v; want 0 failed, each under %v",
			clients, n, res.failed, res.errs, res.slowest, hedgeBound)
	}
	// Once a request is stuck on it, the hung node is suspect and new requests go to the good copy
	// first: it sees about one wave of concurrent requests, not every request.
	if got := hang.requests.Load(); got > 2*clients {
		t.Errorf("the hung node got %d of %d requests; want at most %d (suspect nodes are tried last)", got, clients*n, 2*clients)
	}
}

func TestSuspectServerAvoided(t *testing.T) {
	t.Parallel()
	data := pattern(20000)
	g, hang := hungServer(t, 37, data, Hedge{})
	const clients, n = 4, 20
	res := hammer(t, clients, n, "GET", g.base+fidPath(37), data)
	if res.failed != 0 || res.slowest > hedgeBound {
		t.Errorf("upstream route, one server hung: %d failed (%v), slowest %v; want 0 failed, each under %v",
			res.failed, res.errs, res.slowest, hedgeBound)
	}
	if got := hang.requests.Load(); got > 2*clients {
		t.Errorf("the hung server got %d of %d requests; want at most %d (suspect servers are tried last)", got, clients*n, 2*clients)
	}
}

func TestStalledBodyContinuesFromNextCopy(t *testing.T) {
	t.Parallel()
	data := pattern(300000) // streamed: larger than maxBufferedBody
	g, _, _ := badFirstCopy(t, faultStall, data, func(cfg *Config) {
		cfg.Timeouts.StorageStall = conf.Duration(200 * time.Millisecond)
		cfg.Timeouts.StorageIdle = conf.Duration(60 * time.Second)
		cfg.Hedge.Delay = "off" // the stalling copy's headers must win, however slow the machine
	})
	start := time.Now()
	code, _, body, err := get(t, "GET", g.base+"/d/k")
	if err != nil || code != 200 || !bytes.Equal(body, data) {
		t.Fatalf("GET = %d, %d bytes, %v; want 200 and the exact bytes", code, len(body), err)
	}
	// Without the stall bound the body would wait storage_idle (60s) before the next copy.
	if took := time.Since(start); took > hedgeBound {
		t.Errorf("GET with the first copy stalled mid-body took %v; want well under storage_idle", took)
	}
	if st := g.srv.Stats(); st.Resumed != 1 {
		t.Errorf("Stats().Resumed = %d, want 1", st.Resumed)
	}
}

// A copy whose answer begins within the hedge delay and then stalls before its small body (read
// whole before it is used) is whole is hedged around like one that does not answer: the hedge delay
// bounds the whole answer, not only its first byte.
func TestStalledSmallAnswerHedged(t *testing.T) {
	t.Parallel()
	data := pattern(1000)
	g, _, _ := badFirstCopy(t, faultStall, data, func(cfg *Config) {
		cfg.Timeouts.StorageStall = conf.Duration(time.Minute)
		cfg.Timeouts.StorageIdle = conf.Duration(time.Minute)
		cfg.Hedge.Delay = "20ms"
	})
	getHedgedOnce(t, g, data, "the first copy stalled in its answer", "storage_idle (1m)")
}

// getHedgedOnce GETs d/k from g, whose first copy is bad as what says, and fails the test unless the
// answer is 200 with data, comes within hedgeBound (well under limit, which the bad copy would
// take), and took one hedge, which won.
func getHedgedOnce(t *testing.T, g *gw, data []byte, what, limit string) {
	t.Helper()
	start := time.Now()
	code, _, body, err := get(t, "GET", g.base+"/d/k")
	if err != nil || code != 200 || !bytes.Equal(body, data) {
		t.Fatalf("GET = %d, %d bytes, %v; want 200 and the exact bytes from the good copy", code, len(body), err)
	}
	if took := time.Since(start); took > hedgeBound {
		t.Errorf("GET with %s took %v; want well under %s", what, took, limit)
	}
	if st := g.srv.Stats(); st.Hedges != 1 || st.HedgesWon != 1 {
		t.Errorf("Stats hedges %d, won %d; want 1, 1", st.Hedges, st.HedgesWon)
	}
}

func TestHedgeBudgetWindow(t *testing.T) {
	b := &hedgeBudget{pct: 10}
	now := time.Unix(1000, 0)
	taken := 0
	for b.take(now) {
		taken++
	}
	if taken != hedgeFloor {
		t.Errorf("hedges allowed with no request = %d, want the floor %d", taken, hedgeFloor)
	}
	for range 100 {
		b.request(now.Add(time.Second))
	}
	for b.take(now.Add(time.Second)) {
		taken++
	}
	if taken != 10 {
		t.Errorf("hedges allowed after 100 requests at 10%% = %d, want 10", taken)
	}
	// Ten seconds later the window has moved past every request and hedge counted.
	later := now.Add(hedgeSlots * time.Second)
	n := 0
	for b.take(later.Add(time.Second)) {
		n++
	}
	if n != hedgeFloor {
		t.Errorf("hedges allowed once the window moved on = %d, want %d", n, hedgeFloor)
	}
	if z := (&hedgeBudget{pct: 0}); z.take(now) {
		t.Error("a 0% budget allowed a hedge")
	}
}

func TestHedgeDelayAuto(t *testing.T) {
	n := &node{}
	if d := n.hedgeDelay(); d != hedgeInitial {
		t.Errorf("delay with no sample = %v, want %v", d, hedgeInitial)
	}
	for range 50 {
		n.observe(time.Millisecond)
	}
	if d := n.hedgeDelay(); d != hedgeMin {
		t.Errorf("delay after 1ms answers = %v, want the floor %v", d, hedgeMin)
	}
	for range 50 {
		n.observe(100 * time.Millisecond)
	}
	if d := n.hedgeDelay(); d < 200*time.Millisecond || d > hedgeMax {
		t.Errorf("delay after 100ms answers = %v, want at least twice 100ms and at most %v", d, hedgeMax)
	}
	for range 50 {
		n.observe(10 * time.Second)
	}
	if d := n.hedgeDelay(); d != hedgeMax {
		t.Errorf("delay after 10s answers = %v, want the ceiling %v", d, hedgeMax)
	}
}

// TestSortSuspects: suspect targets go fewest stuck requests first, ties in their given order (a
// node slow once comes before a hung one that piles up stuck requests).
func TestSortSuspects(t *testing.T) {
	mk := func(uri string, stuck int64) target {
		n := &node{}
		n.stuck.Store(stuck)
		return target{node: n, uri: uri}
	}
	ts := []target{mk("a", 3), mk("b", 1), mk("c", 2), mk("d", 1)}
	sortSuspects(ts)
	var got []string
	for _, t := range ts {
		got = append(got, t.uri)
	}
	if want := []string{"b", "d", "c", "a"}; !slices.Equal(got, want) {
		t.Errorf("sortSuspects = %q, want %q", got, want)
	}
}

// A finished racer is reused with its results channel and timer: setting up the hedging of a GET
// allocates nothing once warm.
func TestRacerAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	s := &Server{now: time.Now}
	rt := &route{hedge: compileHedge(Hedge{Delay: "auto", Budget: "10%"})}
	n1, n2 := &node{addr: "127.0.0.2:7500"}, &node{addr: "127.0.0.3:7500"}
	fr := &fetchRequest{route: rt, targets: []target{{node: n1, uri: "/a"}, {node: n2, uri: "/a"}}}
	var r *racer
	cycle := func() {
		r = s.newRacer(fr, passHeaders{})
		if !r.hedging || cap(r.results) < 2 {
			t.Fatalf("racer hedging %v with results for %d, want hedging with room for 2", r.hedging, cap(r.results))
		}
		r.arm(0) // the hedge timer of the first attempt, as result does
		r.finish()
	}
	cycle()
	if n := testing.AllocsPerRun(100, cycle); n != 0 {
		t.Errorf("a hedged racer set up and finished: %v allocations, want 0", n)
	}
}

// TestAccessLogHedge: the access log's last field tells whether a hedge was sent ("sent": the first
// attempt answered anyway) or won ("won"); the address that answered is the last of the upstream
// addresses.
func TestAccessLogHedge(t *testing.T) {
	t.Parallel()
	data := pattern(5000)
	cfg := trackerConfig()
	cfg.Storage.MaxFails = -1
	cfg.Hedge = Hedge{Delay: "20ms", Budget: "100%"}
	slow := startFault(t, "127.0.0.3", faultSlow, data)
	hang := startFault(t, "127.0.0.4", faultHang, data)
	good := startStorage(t, "127.0.0.5")
	ft := newFakeTracker()
	ft.set("d", "won", "http://"+hang.addr+fidPath(51), good.put(t, 51, data))
	ft.set("d", "sent", "http://"+slow.addr+fidPath(52), "http://"+hang.addr+fidPath(52))
	g := startGateway(t, cfg, Deps{Tracker: ft})

	for _, tt := range []struct{ key, addr, hedge string }{{"won", good.addr, "won"}, {"sent", slow.addr, "sent"}} {
		if code, _, body, err := get(t, "GET", g.base+"/d/"+tt.key); code != 200 || !bytes.Equal(body, data) {
			t.Fatalf("GET /d/%s = %d with %d bytes (%v), want 200 with %d", tt.key, code, len(body), err, len(data))
		}
		var line string
		waitFor(t, "the access log line of /d/"+tt.key, func() bool {
			for _, l := range strings.Split(g.log.String(), "\n") {
				if strings.Contains(l, "GET /d/"+tt.key+" ") {
					line = l
					return true
				}
			}
			return false
		})
		f := strings.Fields(line)
		if got := f[len(f)-1]; got != tt.hedge || !strings.HasSuffix(f[len(f)-4], tt.addr) {
			t.Errorf("access line %q: hedge %q, upstreams %q; want %q with %s last", line, got, f[len(f)-4], tt.hedge, tt.addr)
		}
	}
}

// TestPathCacheRemembersCopies (issue 11): the tracker names both copies of a fid, then, while it
// holds node A for unreachable, only the copy on B; then B hangs. The answer naming B alone keeps A's
// copy of the same fid from the answer before it, so requests hedge to A instead of waiting
// storage_first_byte on B (in the bench's hung row the tracker's window lasts a monitor round).
func TestPathCacheRemembersCopies(t *testing.T) {
	t.Parallel()
	data := pattern(70000)
	var f clustertest.Freezer
	a := startStorage(t, "127.0.0.3")
	b := startFrozenStorage(t, "127.0.0.4", &f)
	ft := newFakeTracker()
	ft.set("d", "k", b.put(t, 31, data), a.put(t, 31, data))
	var offset atomic.Int64 // the gateway's clock runs ahead by offset
	cfg := trackerConfig()
	cfg.Timeouts.StorageFirstByte = conf.Duration(hungFirstByte)
	cfg.Hedge.Budget = "100%"
	g := startGateway(t, cfg, Deps{Tracker: ft, Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
	if code, _, body, err := get(t, "GET", g.base+"/d/k"); code != 200 || !bytes.Equal(body, data) {
		t.Fatalf("GET /d/k = %d with %d bytes (%v), want 200 with %d", code, len(body), err, len(data))
	}
	ft.set("d", "k", "http://"+b.addr+fidPath(31))
	offset.Add(int64(time.Minute)) // past the path cache's TTL: the next request asks the tracker
	f.Freeze()
	t.Cleanup(f.Thaw)

	// Without the remembered copy every request waits storage_first_byte on B.
	res := hammer(t, 5, 4, "GET", g.base+"/d/k", data)
	if res.failed != 0 || res.slowest > hedgeBound {
		t.Errorf("5 clients × 4 GETs with the one copy the tracker names hung: %d failed (%v), slowest %v; want 0 failed, each under %v",
			res.failed, res.errs, res.slowest, hedgeBound)
	}
}

// A hedge is never sent to a target marked down by max_fails: it stays a last resort for failover.
func TestNoHedgeToMarkedDown(t *testing.T) {
	now := time.Now()
	s := &Server{now: func() time.Time { return now }}
	rt := &route{hedge: compileHedge(Hedge{Delay: "auto", Budget: "100%"})}
	up, down := &node{addr: "127.0.0.2:7500"}, &node{addr: "127.0.0.3:7500"}
	h := Health{MaxFails: 1, FailTimeout: conf.Duration(10 * time.Second)}
	down.downUntil = now.Add(10 * time.Second)
	fr := &fetchRequest{route: rt, targets: []target{{node: up, health: h, uri: "/a"}, {node: down, health: h, uri: "/a"}}}
	r := s.newRacer(fr, passHeaders{})
	r.next = 1 // the first attempt is out and stuck
	r.hedge(0)
	if r.next != 1 || r.hedged || s.stats.hedges.Load() != 0 {
		t.Errorf("hedge with the next target marked down: next %d, hedged %v, hedges %d; want none sent",
			r.next, r.hedged, s.stats.hedges.Load())
	}
}

// unacceptingAddr returns the address of a listener on ip whose accept queue is full and never
// drained: the kernel drops further SYNs, so connecting to it hangs (a powered-off host or a
// black-holing firewall looks the same).
func unacceptingAddr(t *testing.T, ip string) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	sa := &syscall.SockaddrInet4{}
	copy(sa.Addr[:], net.ParseIP(ip).To4())
	if err := syscall.Bind(fd, sa); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	got, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(ip, strconv.Itoa(got.(*syscall.SockaddrInet4).Port))
	for range 16 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr // the queue is full
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatalf("%s still accepts connections after 16", addr)
	return ""
}

// A copy whose node cannot be connected to (SYNs unanswered) is hedged around after the hedge
// delay, as one that does not answer is: connecting is bounded by the delay too.
func TestHedgeAroundUnreachableNode(t *testing.T) {
	t.Parallel()
	data := pattern(1000)
	good := startStorage(t, "127.0.0.3")
	url := good.put(t, 31, data)
	ft := newFakeTracker()
	ft.set("d", "k", "http://"+unacceptingAddr(t, "127.0.0.6")+fidPath(31), url)
	cfg := trackerConfig()
	cfg.Storage.MaxFails = -1
	cfg.Timeouts.StorageConnect = conf.Duration(time.Minute)
	cfg.Timeouts.StorageFirstByte = conf.Duration(hungFirstByte)
	cfg.Hedge.Delay = "20ms"
	g := startGateway(t, cfg, Deps{Tracker: ft})
	getHedgedOnce(t, g, data, "the first copy's node unreachable", "storage_connect (1m)")
}
