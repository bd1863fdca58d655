package purge

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/testutil"
)

// node is a gateway stand-in: a Service behind its net/http handler on one loopback address.
type node struct {
	svc  *Service
	rec  *recorder
	addr string
}

// startNode serves a new Service over cfg and rec on addr ("127.0.0.3:0" or a reserved address).
func startNode(t *testing.T, addr string, cfg Config, rec *recorder) *node {
	t.Helper()
	svc, err := New(cfg, rec, nil)
	if err != nil {
		t.Fatalf("New(%s): %v", cfg.Name, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("Listen(%s): %v", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle(svc.Path()+"/", svc.HTTPHandler())
	serveHTTP(t, ln, mux)
	return &node{svc: svc, rec: rec, addr: ln.Addr().String()}
}

// serveHTTP serves h with net/http on ln until the test ends, then closes the server and waits for
// Serve to return.
func serveHTTP(t *testing.T, ln net.Listener, h http.Handler) {
	t.Helper()
	srv := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
}

// runService runs s.Run until the test ends.
func runService(t *testing.T, s *Service) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v, want nil after cancel", err)
		}
	})
}

// reserveAddr returns an address on ip where nothing listens (a node that is down).
func reserveAddr(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatalf("Listen(%s): %v", ip, err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// waitFor polls cond until it holds, failing the test after 20s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, what, cond)
}

// purgeHTTP sends a purge to a node the way a client does.
func purgeHTTP(t *testing.T, addr, method, key, rawQuery string, header map[string]string) (int, Result) {
	t.Helper()
	u := url.URL{Scheme: "http", Host: addr, Path: DefaultPath + key, RawQuery: rawQuery}
	code, body := testutil.Fetch(t, method, u.String(), nil, header)
	var res Result
	if code == 200 || code == 404 {
		if err := json.Unmarshal(body, &res); err != nil {
			t.Fatalf("%s %s: body %q: %v", method, u.String(), body, err)
		}
	}
	return code, res
}

func peerConfig(name string, journal string, peers ...string) Config {
	return Config{
		Name:        name,
		Token:       testToken,
		Deny:        []string{"all"}, // the token is the only way in
		Peers:       peers,
		JournalDir:  journal,
		PeerTimeout: conf.Duration(5 * time.Second),
		RetryMin:    conf.Duration(5 * time.Millisecond),
		RetryMax:    conf.Duration(20 * time.Millisecond),
	}
}

var bearer = map[string]string{"Authorization": "Bearer " + testToken}

func TestClusterPurge(t *testing.T) {
	t.Parallel()
	paths := []string{"/img/a.jpg", "/img/b.jpg", "/dir/a b?c%.jpg"}
	cAddr := reserveAddr(t, "127.0.0.4")
	bAddr := reserveAddr(t, "127.0.0.3")
	aRec := newRecorder(paths...)
	a := startNode(t, "127.0.0.2:0", peerConfig("gw-a", t.TempDir(), bAddr, cAddr), aRec)
	// b lists a as its peer: a purge forwarded by a must not come back to it.
	b := startNode(t, bAddr, peerConfig("gw-b", t.TempDir(), a.addr), newRecorder(paths...))
	runService(t, a.svc)

	status, res := purgeHTTP(t, a.addr, "PURGE", "/img/a.jpg", "", bearer)
	if status != 200 {
		t.Fatalf("PURGE /img/a.jpg status = %d, want 200", status)
	}
	if len(res.Nodes) != 3 || res.Nodes[2].Error == "" {
		t.Fatalf("PURGE /img/a.jpg nodes = %+v, want 3 with an error for the down peer", res.Nodes)
	}
	res.Nodes[2].Error = ""
	want := Result{Key: "/img/a.jpg", Purged: 2, Bytes: 200, Nodes: []NodeResult{
		{Node: "gw-a", Status: NodeOK, Purged: 1, Bytes: 100},
		{Node: bAddr, Status: NodeOK, Purged: 1, Bytes: 100},
		{Node: cAddr, Status: NodeQueued},
	}}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("PURGE /img/a.jpg reply = %+v, want %+v", res, want)
	}
	if got, want := aRec.Calls(), []call{{"uri", "/img/a.jpg", false}}; !reflect.DeepEqual(got, want) {
		t.Errorf("gw-a target calls = %+v, want %+v (a forwarded purge must not fan out again)", got, want)
	}
	if b.rec.Has("/img/a.jpg") || !b.rec.Has("/img/b.jpg") {
		t.Errorf("gw-b entries after purge: /img/a.jpg kept = %v, /img/b.jpg kept = %v; want false, true",
			b.rec.Has("/img/a.jpg"), b.rec.Has("/img/b.jpg"))
	}

	// Unusual characters survive forwarding; a soft prefix purge is forwarded as one.
	if status, _ := purgeHTTP(t, a.addr, "GET", "/dir/a b?c%.jpg", "", bearer); status != 200 {
		t.Errorf("GET /dir/a b?c%%.jpg status = %d, want 200", status)
	}
	if status, _ := purgeHTTP(t, a.addr, "PURGE", "/img/*", "soft=1", bearer); status != 200 {
		t.Errorf("PURGE /img/* soft status = %d, want 200", status)
	}
	wantB := []call{{"uri", "/img/a.jpg", false}, {"uri", "/dir/a b?c%.jpg", false}, {"prefix", "/img/", true}}
	if got := b.rec.Calls(); !reflect.DeepEqual(got, wantB) {
		t.Errorf("gw-b target calls = %+v, want %+v", got, wantB)
	}
	if st := a.svc.Stats(); st.Pending != 3 || st.Journaled != 3 {
		t.Errorf("gw-a Stats() = %+v, want 3 purges pending and journaled for the down peer", st)
	}

	// The down peer comes back and gets every purge it missed, in order.
	c := startNode(t, cAddr, peerConfig("gw-c", t.TempDir()), newRecorder(paths...))
	waitFor(t, "gw-c to receive the journaled purges", func() bool { return len(c.rec.Calls()) >= len(wantB) })
	if got := c.rec.Calls(); !reflect.DeepEqual(got, wantB) {
		t.Errorf("gw-c target calls = %+v, want %+v", got, wantB)
	}
	waitFor(t, "gw-a journal to drain", func() bool { return a.svc.Stats().Pending == 0 })
	if n := fileLines(t, filepath.Join(a.svc.cfg.JournalDir, JournalFile)); n != 0 {
		t.Errorf("gw-a journal has %d lines after delivery, want 0", n)
	}

	// Nothing matched anywhere: 404, and every node was asked.
	status, res = purgeHTTP(t, a.addr, "PURGE", "/nope", "", bearer)
	if status != 404 || res.Purged != 0 || len(res.Nodes) != 3 {
		t.Errorf("PURGE /nope = %d %+v, want 404 with 3 nodes", status, res)
	}
	for _, n := range res.Nodes {
		if n.Status != NodeOK {
			t.Errorf("PURGE /nope node %+v, want status ok", n)
		}
	}
	// Refused: nothing purged anywhere.
	if status, _ := purgeHTTP(t, a.addr, "PURGE", "/*", "", nil); status != 403 {
		t.Errorf("PURGE /* without token status = %d, want 403", status)
	}
	if !aRec.Has("/img/b.jpg") || !b.rec.Has("/img/b.jpg") || !c.rec.Has("/img/b.jpg") {
		t.Errorf("a refused purge removed entries")
	}
}

func TestJournalSurvivesRestart(t *testing.T) {
	t.Parallel()
	cAddr := reserveAddr(t, "127.0.0.5")
	cfg := peerConfig("gw-a", t.TempDir(), cAddr)
	a1, err := New(cfg, newRecorder("/x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp := a1.Handle(context.Background(), Request{Method: "PURGE", Path: "/x", Soft: true, Authorization: "Bearer " + testToken})
	if res := decodeResult(t, resp); resp.Status != 200 || len(res.Nodes) != 2 || res.Nodes[1].Status != NodeQueued {
		t.Fatalf("Handle(/x) = %d %+v, want 200 with the peer queued", resp.Status, res)
	}

	// The sending node restarts before the peer comes back, and logs how many purges it owes.
	var logBuf testutil.SyncBuffer
	a2, err := New(cfg, newRecorder(), slog.New(slog.NewTextHandler(&logBuf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if st := a2.Stats(); st.Pending != 1 {
		t.Fatalf("restarted Stats().Pending = %d, want 1", st.Pending)
	}
	if log := logBuf.String(); !strings.Contains(log, `msg="purge journal: purges pending for peers" entries=1`) {
		t.Errorf("start-up log = %q, want the number of purges pending", log)
	}
	c := startNode(t, cAddr, peerConfig("gw-c", t.TempDir()), newRecorder("/x"))
	runService(t, a2)
	waitFor(t, "gw-c to receive the journaled purge", func() bool { return len(c.rec.Calls()) > 0 })
	if got, want := c.rec.Calls(), []call{{"uri", "/x", true}}; !reflect.DeepEqual(got, want) {
		t.Errorf("gw-c target calls = %+v, want %+v", got, want)
	}
	waitFor(t, "the journal to drain", func() bool { return a2.Stats().Pending == 0 })
	a3, err := New(cfg, newRecorder(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := a3.Stats(); st.Pending != 0 {
		t.Errorf("Stats().Pending after delivery and restart = %d, want 0", st.Pending)
	}
}

func TestPeerRefusalIsQueued(t *testing.T) {
	t.Parallel()
	other := peerConfig("gw-b", t.TempDir())
	other.Token = strings.Repeat("z", 20)
	b := startNode(t, "127.0.0.6:0", other, newRecorder("/x"))
	cfg := peerConfig("gw-a", t.TempDir(), b.addr)
	a, err := New(cfg, newRecorder("/x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp := a.Handle(context.Background(), Request{Method: "PURGE", Path: "/x", Authorization: "Bearer " + testToken})
	res := decodeResult(t, resp)
	if resp.Status != 200 || len(res.Nodes) != 2 || res.Nodes[1].Status != NodeQueued || !strings.Contains(res.Nodes[1].Error, "403") {
		t.Fatalf("Handle(/x) = %d %+v, want 200 with the refusing peer queued with a 403 error", resp.Status, res)
	}
	if calls := b.rec.Calls(); len(calls) != 0 {
		t.Errorf("refusing peer purged %+v, want nothing", calls)
	}
	// The same purge again while the peer is pending is journaled once.
	a.Handle(context.Background(), Request{Method: "PURGE", Path: "/x", Authorization: "Bearer " + testToken})
	if st := a.Stats(); st.Pending != 1 {
		t.Errorf("Stats().Pending = %d after a repeated purge, want 1", st.Pending)
	}
}

func TestJournalWriteFailure(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := peerConfig("gw-a", dir, reserveAddr(t, "127.0.0.7"))
	a, err := New(cfg, newRecorder("/x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// A directory where the journal file should be makes every append fail, even for root.
	path := filepath.Join(dir, JournalFile)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	resp := a.Handle(context.Background(), Request{Method: "PURGE", Path: "/x", Authorization: "Bearer " + testToken})
	res := decodeResult(t, resp)
	if resp.Status != 500 || len(res.Nodes) != 2 || res.Nodes[1].Status != NodeFailed {
		t.Errorf("Handle with an unwritable journal = %d %+v, want 500 with the peer failed", resp.Status, res)
	}
	if st := a.Stats(); st.JournalErrors != 1 || st.Purged != 1 {
		t.Errorf("Stats() = %+v, want 1 journal error and the local purge done", st)
	}
}

func TestBackoffAndFlush(t *testing.T) {
	t.Parallel()
	cAddr := reserveAddr(t, "127.0.0.9")
	cfg := peerConfig("gw-a", t.TempDir(), cAddr)
	cfg.RetryMin, cfg.RetryMax = conf.Duration(time.Hour), conf.Duration(time.Hour)
	a, err := New(cfg, newRecorder("/x", "/y"), nil)
	if err != nil {
		t.Fatal(err)
	}
	purge := func(key string) NodeResult {
		t.Helper()
		resp := a.Handle(context.Background(), Request{Method: "PURGE", Path: key, Authorization: "Bearer " + testToken})
		res := decodeResult(t, resp)
		if resp.Status != 200 || len(res.Nodes) != 2 {
			t.Fatalf("Handle(%s) = %d %+v, want 200 with 2 nodes", key, resp.Status, res)
		}
		return res.Nodes[1]
	}
	if nr := purge("/x"); nr.Status != NodeQueued || strings.Contains(nr.Error, "not tried") {
		t.Errorf("first purge peer result = %+v, want queued after a failed attempt", nr)
	}
	if nr := purge("/y"); nr.Status != NodeQueued || !strings.Contains(nr.Error, "not tried") {
		t.Errorf("purge during backoff peer result = %+v, want queued without an attempt", nr)
	}
	if st := a.Stats(); st.PeerFail != 1 || st.Pending != 2 {
		t.Errorf("Stats() = %+v, want 1 failed attempt and 2 pending", st)
	}
	c := startNode(t, cAddr, peerConfig("gw-c", t.TempDir()), newRecorder())
	pending, err := a.Flush(context.Background())
	if err != nil || pending != 0 {
		t.Fatalf("Flush() = %d, %v; want 0, nil", pending, err)
	}
	want := []call{{"uri", "/x", false}, {"uri", "/y", false}}
	if got := c.rec.Calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("gw-c target calls = %+v, want %+v", got, want)
	}
}

func TestConcurrentHandle(t *testing.T) {
	t.Parallel()
	b := startNode(t, "127.0.0.10:0", peerConfig("gw-b", t.TempDir()), newRecorder())
	a, err := New(peerConfig("gw-a", t.TempDir(), b.addr), newRecorder(), nil)
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 4, 25
	done := make(chan struct{})
	for w := range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range each {
				key := "/w" + string(rune('a'+w)) + "/" + string(rune('a'+i))
				a.Handle(context.Background(), Request{Method: "PURGE", Path: key, Authorization: "Bearer " + testToken})
			}
		}()
	}
	for range workers {
		<-done
	}
	if got := len(b.rec.Calls()); got != workers*each {
		t.Errorf("peer got %d purges, want %d", got, workers*each)
	}
	if st := a.Stats(); st.Requests != workers*each || st.PeerOK != workers*each || st.Pending != 0 {
		t.Errorf("Stats() = %+v, want %d requests all delivered", st, workers*each)
	}
}

func TestClusterPurgeSigned(t *testing.T) {
	t.Parallel()
	signed := func(name string, peers ...string) Config {
		c := peerConfig(name, t.TempDir(), peers...)
		c.Token, c.HMACSecret = "", testSecret
		return c
	}
	b := startNode(t, "127.0.0.11:0", signed("gw-b"), newRecorder("/img/a b.jpg", "/img/c.jpg", "/css/x"))
	a := startNode(t, "127.0.0.12:0", signed("gw-a", b.addr), newRecorder())
	for _, key := range []string{"/img/a b.jpg", "/img/*", "/*"} {
		sig := Sign(testSecret, "PURGE", key, time.Now().Add(time.Minute))
		status, res := purgeHTTP(t, a.addr, "PURGE", key, "", map[string]string{HeaderSignature: sig})
		if status != 200 || len(res.Nodes) != 2 || res.Nodes[1].Status != NodeOK {
			t.Errorf("PURGE %s = %d %+v, want 200 with the signed peer ok", key, status, res)
		}
	}
	want := []call{{"uri", "/img/a b.jpg", false}, {"prefix", "/img/", false}, {"all", "", false}}
	if got := b.rec.Calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("gw-b target calls = %+v, want %+v", got, want)
	}
}

func TestPeerPathMismatchIsQueued(t *testing.T) {
	t.Parallel()
	cfgB := peerConfig("gw-b", t.TempDir())
	cfgB.Path = "/_purge"
	b := startNode(t, "127.0.0.13:0", cfgB, newRecorder("/x"))
	a, err := New(peerConfig("gw-a", t.TempDir(), b.addr), newRecorder(), nil) // sends to /purge on b
	if err != nil {
		t.Fatal(err)
	}
	resp := a.Handle(context.Background(), Request{Method: "PURGE", Path: "/x", Authorization: "Bearer " + testToken})
	res := decodeResult(t, resp)
	if len(res.Nodes) != 2 || res.Nodes[1].Status != NodeQueued || !strings.Contains(res.Nodes[1].Error, "404") {
		t.Errorf("Handle(/x) nodes = %+v, want the peer queued with its 404", res.Nodes)
	}
	if !b.rec.Has("/x") {
		t.Errorf("peer purged /x through a wrong route")
	}
}

// deadlineRecorder is an http.RoundTripper that notes the deadline of each request it passes on.
type deadlineRecorder struct {
	next http.RoundTripper

	mu        sync.Mutex // guards deadlines and sent
	deadlines []time.Time
	sent      []time.Time // when each request reached the transport
}

func (d *deadlineRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	dl, _ := req.Context().Deadline()
	d.mu.Lock()
	d.deadlines = append(d.deadlines, dl)
	d.sent = append(d.sent, time.Now())
	d.mu.Unlock()
	return d.next.RoundTrip(req)
}

// A peer that accepts the connection and never answers holds a purge up for peer_timeout only:
// the reply comes back with that peer queued for retry, and the other peers are purged meanwhile.
func TestHungPeerIsBoundedByPeerTimeout(t *testing.T) {
	t.Parallel()
	hung := testutil.Silent(t, "127.0.0.14:0").Addr().String()
	b := startNode(t, "127.0.0.15:0", peerConfig("gw-b", t.TempDir()), newRecorder("/x"))
	cfg := peerConfig("gw-a", t.TempDir(), hung, b.addr)
	const peerTimeout = 300 * time.Millisecond // not the 5s default, so the deadline shows which applies
	cfg.PeerTimeout = conf.Duration(peerTimeout)
	rt := &deadlineRecorder{next: http.DefaultTransport.(*http.Transport).Clone()}
	a, err := New(cfg, newRecorder("/x"), nil, WithHTTPClient(&http.Client{Transport: rt}))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	replies := make(chan Response, 1)
	go func() {
		replies <- a.Handle(context.Background(), Request{Method: "PURGE", Path: "/x", Authorization: "Bearer " + testToken})
	}()
	var resp Response
	select {
	case resp = <-replies:
	case <-time.After(20 * time.Second):
		t.Fatalf("Handle with a peer that never answers did not return within 20s (peer_timeout %v)", peerTimeout)
	}
	res := decodeResult(t, resp)
	if resp.Status != 200 || len(res.Nodes) != 3 {
		t.Fatalf("Handle(/x) = %d %+v, want 200 with 3 nodes", resp.Status, res)
	}
	if nr := res.Nodes[1]; nr.Node != hung || nr.Status != NodeQueued || !strings.Contains(nr.Error, "deadline exceeded") {
		t.Errorf("hung peer result = %+v, want %s queued after its deadline", nr, hung)
	}
	if nr := res.Nodes[2]; nr.Node != b.addr || nr.Status != NodeOK || nr.Purged != 1 {
		t.Errorf("healthy peer result = %+v, want %s ok with 1 purged", nr, b.addr)
	}
	if st := a.Stats(); st.Pending != 1 || st.PeerFail != 1 || st.PeerOK != 1 {
		t.Errorf("Stats() = %+v, want 1 pending, 1 failed and 1 accepted delivery", st)
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if len(rt.deadlines) != 2 {
		t.Fatalf("requests sent = %d, want 2", len(rt.deadlines))
	}
	// Each delivery's deadline was set between the call and the request, peer_timeout ahead.
	for i, dl := range rt.deadlines {
		if dl.Before(start.Add(peerTimeout)) || dl.After(rt.sent[i].Add(peerTimeout)) {
			t.Errorf("request %d deadline = %v after the call, want peer_timeout %v after the send (%v)",
				i, dl.Sub(start), peerTimeout, rt.sent[i].Sub(start))
		}
	}
}

// A 200 without a purge result (a static file server where the peer's purge route should be, or a
// result for another key) is not a delivery: the peer is queued for retry.
func TestPeer200WithoutResultIsQueued(t *testing.T) {
	t.Parallel()
	for i, tc := range []struct {
		name    string
		handler http.Handler
	}{
		{"static file", http.FileServer(http.Dir(staticPurgeDir(t)))},
		{"result for another key", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"key":"/other","purged":1,"bytes":1,"nodes":[]}`)
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ln := testutil.Listen(t, fmt.Sprintf("127.0.0.%d:0", 16+i))
			serveHTTP(t, ln, tc.handler)
			// The static server really answers 200 to what the sender asks for.
			if code, _ := testutil.Fetch(t, "PURGE", "http://"+ln.Addr().String()+DefaultPath+"/x", nil, nil); code != 200 {
				t.Fatalf("PURGE on the static peer = %d, want 200", code)
			}
			a, err := New(peerConfig("gw-a", t.TempDir(), ln.Addr().String()), newRecorder("/x"), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp := a.Handle(context.Background(), Request{Method: "PURGE", Path: "/x", Authorization: "Bearer " + testToken})
			res := decodeResult(t, resp)
			if resp.Status != 200 || len(res.Nodes) != 2 || res.Nodes[1].Status != NodeQueued ||
				!strings.Contains(res.Nodes[1].Error, "without a purge result") {
				t.Fatalf("Handle(/x) = %d %+v, want 200 with the peer queued: 200 without a purge result", resp.Status, res)
			}
			if st := a.Stats(); st.Pending != 1 || st.PeerOK != 0 {
				t.Errorf("Stats() = %+v, want 1 pending and no accepted delivery", st)
			}
		})
	}
}

// staticPurgeDir is a document root with a file at <DefaultPath>/x.
func staticPurgeDir(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, filepath.FromSlash(DefaultPath))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "x"), []byte("just a file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// docs/purge.md: once journal_limit purges wait for a peer, the next one is recorded as a purge of
// everything for that peer, which replaces them, and that purge of everything is what the peer
// gets when it answers again.
func TestJournalLimitDeliversPurgeOfEverything(t *testing.T) {
	t.Parallel()
	cAddr := reserveAddr(t, "127.0.0.20")
	cfg := peerConfig("gw-a", t.TempDir(), cAddr)
	cfg.JournalLimit = 2
	a, err := New(cfg, newRecorder(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"/img/a.jpg", "/img/b.jpg", "/css/c.css"} {
		resp := a.Handle(context.Background(), Request{Method: "PURGE", Path: key, Authorization: "Bearer " + testToken})
		if res := decodeResult(t, resp); len(res.Nodes) != 2 || res.Nodes[1].Status != NodeQueued {
			t.Fatalf("Handle(%s) = %d %+v, want the down peer queued", key, resp.Status, res)
		}
	}
	if got, want := pendingOf(a.journal, cAddr), []pend{{"/*", false}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("pending for the down peer past journal_limit 2 = %+v, want %+v", got, want)
	}
	if st := a.Stats(); st.Pending != 1 || st.Journaled != 3 {
		t.Errorf("Stats() = %+v, want 3 journaled and 1 pending", st)
	}

	c := startNode(t, cAddr, peerConfig("gw-c", t.TempDir()), newRecorder("/img/a.jpg", "/img/b.jpg", "/css/c.css", "/other"))
	runService(t, a)
	waitFor(t, "gw-c to receive the purge of everything", func() bool { return len(c.rec.Calls()) > 0 })
	if got, want := c.rec.Calls(), []call{{"all", "", false}}; !reflect.DeepEqual(got, want) {
		t.Errorf("gw-c target calls = %+v, want %+v", got, want)
	}
	for _, p := range []string{"/img/a.jpg", "/css/c.css", "/other"} {
		if c.rec.Has(p) {
			t.Errorf("gw-c still caches %s after the purge of everything", p)
		}
	}
	waitFor(t, "gw-a journal to drain", func() bool { return a.Stats().Pending == 0 })
	if n := fileLines(t, filepath.Join(cfg.JournalDir, JournalFile)); n != 0 {
		t.Errorf("gw-a journal has %d lines after delivery, want 0", n)
	}
}

// docs/purge.md: a journal line that cannot be read (cut short by a crash, or zeroed blocks) is
// skipped at start-up with a warning; the purges on the other lines are kept, in order, and
// delivered, and the file is rewritten without the unreadable lines.
func TestJournalUnreadableLinesKeepTheOthers(t *testing.T) {
	t.Parallel()
	cAddr := reserveAddr(t, "127.0.0.21")
	cfg := peerConfig("gw-a", t.TempDir(), cAddr)
	a1, err := New(cfg, newRecorder(), nil)
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{"/one", "/two", "/three"}
	for _, key := range paths {
		a1.Handle(context.Background(), Request{Method: "PURGE", Path: key, Authorization: "Bearer " + testToken})
	}
	path := filepath.Join(cfg.JournalDir, JournalFile)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	if len(lines) != 4 || lines[3] != "" {
		t.Fatalf("journal before the damage = %q, want 3 lines", data)
	}
	// Zeroed blocks between the first two lines, a line cut short between the last two, and a
	// torn append at the end.
	damaged := lines[0] + "\x00\x00\x00\x00\n" + lines[1] + `{"add":{"id":7,"peer":"` + "\n" + lines[2] + `{"add":{"id":8,"pe`
	if err := os.WriteFile(path, []byte(damaged), 0o600); err != nil {
		t.Fatal(err)
	}

	var logBuf testutil.SyncBuffer
	a2, err := New(cfg, newRecorder(), slog.New(slog.NewTextHandler(&logBuf, nil)))
	if err != nil {
		t.Fatalf("New over a damaged journal: %v", err)
	}
	if st := a2.Stats(); st.Pending != 3 {
		t.Errorf("Stats().Pending over a damaged journal = %d, want 3", st.Pending)
	}
	if log := logBuf.String(); !strings.Contains(log, "level=WARN msg=\"purge journal: skipped unreadable lines\"") ||
		!strings.Contains(log, "lines=3") {
		t.Errorf("log = %q, want a warning that 3 unreadable lines were skipped", log)
	}
	if data, _ := os.ReadFile(path); string(data) != lines[0]+lines[1]+lines[2] {
		t.Errorf("journal after start-up = %q, want the 3 readable lines only", data)
	}
	c := startNode(t, cAddr, peerConfig("gw-c", t.TempDir()), newRecorder(append(paths, "/four")...))
	runService(t, a2)
	waitFor(t, "gw-c to receive the journaled purges", func() bool { return len(c.rec.Calls()) >= len(paths) })
	want := []call{{"uri", "/one", false}, {"uri", "/two", false}, {"uri", "/three", false}}
	if got := c.rec.Calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("gw-c target calls = %+v, want %+v", got, want)
	}
	waitFor(t, "gw-a journal to drain", func() bool { return a2.Stats().Pending == 0 })
}
