package tracker

import (
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/tracker/mogproto"
)

// TestGetPathsShareVerification: a get_paths that checks a path while another query's HEAD of the
// same path is in flight waits for that HEAD instead of sending its own, and both answer with the
// verified path.
func TestGetPathsShareVerification(t *testing.T) {
	release := make(chan struct{})
	port, heads := gatedNode(t, "127.0.0.2", release)
	joined := make(chan string, 4)
	tt := startTrackerWith(t, Config{}, func(s *Server) {
		s.noWorkers = true
		s.verify.joined = func(url string) { joined <- url }
	})
	lc := tt.dial(t)
	fixture(t, lc, "127.0.0.2", port, "127.0.0.3", "1")
	tt.observeAll(1)
	tt.storeKey(t, "hot", 5, 1)

	first, second := tt.dial(t), tt.dial(t)
	first.write("get_paths domain=d&key=hot\r\n")
	waitFor(t, "the first HEAD", func() bool { return heads.Load() == 1 })
	second.write("get_paths domain=d&key=hot\r\n")
	var url string
	select {
	case url = <-joined: // the second query waits for the first one's HEAD
	case <-time.After(15 * time.Second):
		t.Fatalf("the second get_paths did not wait for the first one's HEAD (the node saw %d HEADs)", heads.Load())
	}
	close(release)
	want := "OK paths=1&path1=" + escape(url)
	for i, lc := range []*lineConn{first, second} {
		if got := lc.readLine(); got != want {
			t.Errorf("get_paths #%d = %q, want %q", i+1, got, want)
		}
	}
	if n := heads.Load(); n != 1 {
		t.Errorf("the node saw %d HEADs, want 1", n)
	}
	// Once answered, the HEAD is no longer shared: the next query sends its own.
	if got := lc.do("get_paths domain=d&key=hot"); got != want {
		t.Errorf("get_paths = %q, want %q", got, want)
	}
	if n := heads.Load(); n != 2 {
		t.Errorf("the node saw %d HEADs after a later get_paths, want 2", n)
	}
}

// Hedged verification: get_paths checks the first usable copy of a key with a HEAD; a
// node that has not begun to answer within verify_hedge_delay no longer holds the query (and every
// query sharing that HEAD) for node_timeout.

// silentNode is a frozen storage node on ip (testutil.Silent): it accepts connections and never
// answers. It returns the port.
func silentNode(t *testing.T, ip string) string {
	t.Helper()
	_, port, _ := net.SplitHostPort(testutil.Silent(t, ip+":0").Addr().String())
	return port
}

// gatedNode is a storage node on ip that answers every HEAD with Content-Length 5 once gate is
// closed, holding each answer until then (a slow but live node). It returns the port and the count
// of HEADs received.
func gatedNode(t *testing.T, ip string, gate <-chan struct{}) (string, *atomic.Int64) {
	t.Helper()
	return gatedNodeSized(t, ip, gate, "5")
}

// gatedNodeSized is gatedNode answering Content-Length length.
func gatedNodeSized(t *testing.T, ip string, gate <-chan struct{}, length string) (string, *atomic.Int64) {
	t.Helper()
	var heads atomic.Int64
	stop := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			heads.Add(1)
			select {
			case <-gate:
			case <-stop:
			}
		}
		w.Header().Set("Content-Length", length)
	}))
	srv.Listener = testutil.Listen(t, ip+":0")
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) }) // runs first: a failed test must not leave a handler blocked
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return port, &heads
}

// closedGate is a gate that is open.
func closedGate() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// firstSource makes weighted orders take the devices in the order of the key's copies (a draw of
// 0 picks the first remaining one), so a test decides which copy get_paths checks first.
type firstSource struct{}

func (firstSource) Uint64() uint64 { return 0 }

// startHedged starts a tracker with key "k" of domain d (5 bytes) on dev1 of host h1 at
// 127.0.0.2:port1 and dev3 of host h2 at 127.0.0.3:port2, every device observed, and get_paths
// checking dev1 first.
func startHedged(t testing.TB, cfg Config, port1, port2 string) *testTracker {
	t.Helper()
	tt := startTrackerWith(t, cfg, func(s *Server) {
		s.noWorkers = true
		s.rand = &lockedRand{r: rand.New(firstSource{})}
	})
	fixture(t, tt.dial(t), "127.0.0.2", port1, "127.0.0.3", port2)
	tt.observeAll(1, 2, 3)
	tt.storeKey(t, "k", 5, 1, 3)
	return tt
}

// onHost checks that a is a get_paths answer with wantPaths paths, the first one on ip.
func onHost(t *testing.T, a mogproto.Args, ip string, wantPaths string) {
	t.Helper()
	if got := a.Get("paths"); got != wantPaths {
		t.Fatalf("get_paths = %q, want paths=%s", mogproto.AppendArgs(nil, a), wantPaths)
	}
	if p := a.Get("path1"); !strings.HasPrefix(p, "http://"+ip+":") {
		t.Fatalf("get_paths = %q: path1 %q is not on %s", mogproto.AppendArgs(nil, a), p, ip)
	}
}

// lateHEADsEnded reports whether no verification HEAD of s is in flight.
func lateHEADsEnded(s *Server) bool {
	s.verify.mu.Lock()
	defer s.verify.mu.Unlock()
	return len(s.verify.calls) == 0
}

// lateChecks returns how many verification HEADs of s went late: those still in flight whose
// queries have moved on.
func lateChecks(s *Server) int {
	s.verify.mu.Lock()
	defer s.verify.mu.Unlock()
	n := 0
	for _, c := range s.verify.calls {
		if c.late != nil {
			n++
		}
	}
	return n
}

// TestGetPathsHedgesHungNode: with the first copy's node frozen and node_timeout far
// longer than the client waits, get_paths (many at once, sharing the first copy's HEAD) answers
// with the live copy well within the client's deadline. Before, every one of them waited out
// node_timeout on the frozen node. A later query, while that HEAD is still late, checks the live
// copy at once: the hedge delay is seconds long, so a query that waited it again (for the late
// HEAD, or for a HEAD of its own to the frozen node) would miss laterDeadline, which is far below
// the hedge delay and far above a query that does not wait.
func TestGetPathsHedgesHungNode(t *testing.T) {
	const (
		nodeTimeout    = time.Minute
		hedgeDelay     = 5 * time.Second
		clientDeadline = 30 * time.Second // far above hedgeDelay, far below nodeTimeout
		laterDeadline  = time.Second      // far below hedgeDelay
		queries        = 8
	)
	livePort, _ := gatedNode(t, "127.0.0.3", closedGate())
	cfg := Config{NodeTimeout: conf.Duration(nodeTimeout), VerifyHedgeDelay: conf.Duration(hedgeDelay)}
	tt := startHedged(t, cfg, silentNode(t, "127.0.0.2"), livePort)
	lcs := make([]*lineConn, queries)
	for i := range lcs {
		lcs[i] = tt.dial(t)
	}
	for _, lc := range lcs {
		lc.write("get_paths domain=d&key=k\r\n")
	}
	for _, lc := range lcs {
		onHost(t, lc.readOKWithin("get_paths", clientDeadline), "127.0.0.3", "1")
	}
	// The frozen node's HEAD goes on, late, until node_timeout.
	if lateChecks(tt.s) != 1 {
		t.Fatalf("%d late checks after the queries hedged, want the frozen node's one", lateChecks(tt.s))
	}
	// A later query finds the first copy's HEAD still late and checks the live copy at once.
	lc := lcs[0]
	lc.write("get_paths domain=d&key=k\r\n")
	onHost(t, lc.readOKWithin("get_paths", laterDeadline), "127.0.0.3", "1")
}

// TestGetPathsHedgeMarksHungNode: the HEAD the query left behind still marks its host hung once it
// runs out of node_timeout, so later get_paths neither check nor prefer the frozen node's copy.
func TestGetPathsHedgeMarksHungNode(t *testing.T) {
	livePort, liveHeads := gatedNode(t, "127.0.0.3", closedGate())
	tt := startHedged(t, Config{NodeTimeout: conf.Duration(time.Second)}, silentNode(t, "127.0.0.2"), livePort)
	lc := tt.dial(t)
	onHost(t, lc.ok("get_paths domain=d&key=k"), "127.0.0.3", "1")
	waitFor(t, "the frozen node's host marked hung", func() bool {
		o, ok := tt.s.state.observation(1)
		return observedState(o, ok) == observedUnreachable && strings.HasPrefix(o.Err, "query: ")
	})
	if !lateHEADsEnded(tt.s) {
		t.Fatal("the late HEAD is still in flight after marking its host")
	}
	// dev1 is now only a backup: the live copy is checked first and answered alone.
	before := liveHeads.Load()
	onHost(t, lc.ok("get_paths domain=d&key=k"), "127.0.0.3", "1")
	if got := liveHeads.Load() - before; got != 1 {
		t.Errorf("the live node saw %d HEADs for one get_paths, want 1", got)
	}
}

// TestGetPathsHedgeSlowNode: a first copy on a node that answers, but only after the hedge delay,
// gives the query the live copy, and its host is not marked hung when the late HEAD's answer
// comes: the next get_paths checks and answers that copy first again.
func TestGetPathsHedgeSlowNode(t *testing.T) {
	gate := make(chan struct{})
	slowPort, slowHeads := gatedNode(t, "127.0.0.2", gate)
	livePort, _ := gatedNode(t, "127.0.0.3", closedGate())
	tt := startHedged(t, Config{NodeTimeout: conf.Duration(time.Minute)}, slowPort, livePort)
	lc := tt.dial(t)
	onHost(t, lc.ok("get_paths domain=d&key=k"), "127.0.0.3", "1")
	if got := slowHeads.Load(); got != 1 {
		t.Fatalf("the slow node saw %d HEADs, want 1", got)
	}
	close(gate)
	waitFor(t, "the late HEAD answered", func() bool { return lateHEADsEnded(tt.s) })
	if o, ok := tt.s.state.observation(1); observedState(o, ok) != observedWriteable {
		t.Fatalf("dev1 observed %+v after its node answered late, want writeable (not marked hung)", o)
	}
	onHost(t, lc.ok("get_paths domain=d&key=k"), "127.0.0.2", "2")
}

// TestGetPathsHedgeEveryCopyLate: when every copy's check outlives the hedge delay, the query waits
// for them and answers with the first copy whose check passes, instead of answering no path: here
// the second copy drawn, while the first one's node still holds its answer (as a frozen node would
// until node_timeout).
func TestGetPathsHedgeEveryCopyLate(t *testing.T) {
	gate1, gate2 := make(chan struct{}), make(chan struct{})
	port1, heads1 := gatedNode(t, "127.0.0.2", gate1)
	port2, heads2 := gatedNode(t, "127.0.0.3", gate2)
	tt := startHedged(t, Config{NodeTimeout: conf.Duration(time.Minute)}, port1, port2)
	lc := tt.dial(t)
	lc.write("get_paths domain=d&key=k\r\n")
	waitFor(t, "both checks late", func() bool { return lateChecks(tt.s) == 2 })
	if heads1.Load() != 1 || heads2.Load() != 1 {
		t.Fatalf("the nodes saw %d and %d HEADs, want 1 each", heads1.Load(), heads2.Load())
	}
	close(gate2)
	onHost(t, lc.readOKWithin("get_paths", replyWait), "127.0.0.3", "1")
	close(gate1)
	waitFor(t, "the late HEADs answered", func() bool { return lateHEADsEnded(tt.s) })
}

// TestGetPathsHedgeEveryCopyLateFirstFails: when every copy's check outlives the hedge delay and
// the first of them to end fails (its node gives the wrong size), the query goes on waiting and
// answers with the copy whose check passes after it; with every check failed, it answers no path.
func TestGetPathsHedgeEveryCopyLateFirstFails(t *testing.T) {
	for _, tc := range []struct {
		name      string
		length2   string // the size the second copy's node gives
		wantPaths string
	}{
		{"second passes", "5", "1"},
		{"both fail", "4", "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gate1, gate2 := make(chan struct{}), make(chan struct{})
			port1, _ := gatedNodeSized(t, "127.0.0.2", gate1, "4")
			port2, _ := gatedNodeSized(t, "127.0.0.3", gate2, tc.length2)
			tt := startHedged(t, Config{NodeTimeout: conf.Duration(time.Minute)}, port1, port2)
			lc := tt.dial(t)
			lc.write("get_paths domain=d&key=k\r\n")
			waitFor(t, "both checks late", func() bool { return lateChecks(tt.s) == 2 })
			close(gate1)
			waitFor(t, "the first check failed", func() bool { return lateChecks(tt.s) == 1 })
			close(gate2)
			a := lc.readOKWithin("get_paths", replyWait)
			if tc.wantPaths == "0" {
				if got := a.Get("paths"); got != "0" {
					t.Fatalf("get_paths = %q, want paths=0", mogproto.AppendArgs(nil, a))
				}
				return
			}
			onHost(t, a, "127.0.0.3", tc.wantPaths)
		})
	}
}

// TestGetPathsHedgeDelayAtNodeTimeoutNeverHedges: a verify_hedge_delay of node_timeout or more
// never hedges (tracker.md, Configuration). With the first copy's node frozen, get_paths waits out
// node_timeout on it, as without the hedge: when it answers with the live copy, no check of the
// frozen node is still in flight and the query itself has already marked that host unreachable.
// A hedged query would answer while the frozen node's HEAD still ran, and leave the mark to it.
func TestGetPathsHedgeDelayAtNodeTimeoutNeverHedges(t *testing.T) {
	const nodeTimeout = time.Second
	for _, hedge := range []time.Duration{nodeTimeout, 3 * nodeTimeout} {
		t.Run(hedge.String(), func(t *testing.T) {
			livePort, _ := gatedNode(t, "127.0.0.3", closedGate())
			cfg := Config{NodeTimeout: conf.Duration(nodeTimeout), VerifyHedgeDelay: conf.Duration(hedge)}
			tt := startHedged(t, cfg, silentNode(t, "127.0.0.2"), livePort)
			lc := tt.dial(t)
			onHost(t, lc.ok("get_paths domain=d&key=k"), "127.0.0.3", "1")
			if n := lateChecks(tt.s); n != 0 || !lateHEADsEnded(tt.s) {
				t.Errorf("%d late checks (in flight: %v) when get_paths answered, want none: it hedged", n, !lateHEADsEnded(tt.s))
			}
			if o, ok := tt.s.state.observation(1); observedState(o, ok) != observedUnreachable || !strings.HasPrefix(o.Err, "query: ") {
				t.Errorf("dev1 observed %+v when get_paths answered, want unreachable, marked by the query", o)
			}
		})
	}
}
