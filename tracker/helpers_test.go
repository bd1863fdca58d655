package tracker

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/storaged"
	"github.com/mogway/mogway/tracker/mogproto"
	"github.com/mogway/mogway/tracker/store"
	"github.com/mogway/mogway/tracker/store/sqlite"
)

// testTracker is a tracker on a real loopback listener and a real SQLite file.
type testTracker struct {
	s    *Server
	st   store.Store
	db   string // the SQLite file
	addr string
	// stop ends Serve gracefully and returns its error; later calls return nil.
	stop func() error
}

// startTracker starts a tracker with the background workers off: tests feed the device
// observations themselves with s.Observe.
func startTracker(t testing.TB, cfg Config) *testTracker {
	t.Helper()
	return startTrackerWith(t, cfg, func(s *Server) { s.noWorkers = true })
}

// startTrackerWith is startTracker with a hook that adjusts the server before Serve.
func startTrackerWith(t testing.TB, cfg Config, hook func(*Server)) *testTracker {
	t.Helper()
	return startTrackerOn(t, filepath.Join(t.TempDir(), "tracker.db"), cfg, hook)
}

// startTrackerOn starts a tracker on its own Store of the SQLite file db, which may be shared with
// other trackers of the test, as trackers on several machines share one database.
func startTrackerOn(t testing.TB, db string, cfg Config, hook func(*Server)) *testTracker {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "tracker-test"
	}
	s, err := New(cfg, st, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	hook(s)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Serve(sctx, ln) }()
	var once sync.Once
	stop := func() (err error) {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
		st.Close()
	})
	return &testTracker{s: s, st: st, db: db, addr: ln.Addr().String(), stop: stop}
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("TRACKER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// lineConn is a raw client connection.
type lineConn struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func (tt *testTracker) dial(t testing.TB) *lineConn {
	t.Helper()
	c, err := net.Dial("tcp", tt.addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return &lineConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (lc *lineConn) write(s string) {
	lc.t.Helper()
	lc.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(lc.c, s); err != nil {
		lc.t.Fatalf("write: %v", err)
	}
}

// replyWait bounds how long readLine waits for a reply line: a generous bound for a slow, shared
// machine, never a measure of speed.
const replyWait = 20 * time.Second

// readLine reads one reply line, checks its CRLF and returns it without.
func (lc *lineConn) readLine() string {
	lc.t.Helper()
	return lc.readLineWithin(replyWait)
}

// readLineWithin is readLine failing the test when no reply line comes within d.
func (lc *lineConn) readLineWithin(d time.Duration) string {
	lc.t.Helper()
	lc.c.SetReadDeadline(time.Now().Add(d))
	l, err := lc.br.ReadString('\n')
	if err != nil {
		lc.t.Fatalf("no reply within %s: %v (got %q)", d, err, l)
	}
	if !strings.HasSuffix(l, "\r\n") {
		lc.t.Fatalf("reply %q does not end in CRLF", l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// do sends one request line and returns the reply line.
func (lc *lineConn) do(req string) string {
	lc.t.Helper()
	lc.write(req + "\r\n")
	return lc.readLine()
}

// ok sends a request and returns the reply's arguments, failing the test on ERR.
func (lc *lineConn) ok(req string) mogproto.Args {
	lc.t.Helper()
	lc.write(req + "\r\n")
	return lc.readOKWithin(req, replyWait)
}

// readOKWithin reads the reply to req, sent before, and returns its arguments, failing the test on
// ERR or when no reply line comes within d.
func (lc *lineConn) readOKWithin(req string, d time.Duration) mogproto.Args {
	lc.t.Helper()
	got := lc.readLineWithin(d)
	a, err := mogproto.ParseReply([]byte(got))
	if err != nil {
		lc.t.Fatalf("%s = %q, want OK", req, got)
	}
	return a
}

// adminLines sends a ! command and returns the lines before the "." line.
func (lc *lineConn) admin(cmd string) []string {
	lc.t.Helper()
	lc.write(cmd + "\r\n")
	var out []string
	for range 10000 {
		l := lc.readLine()
		if l == "." {
			return out
		}
		out = append(out, l)
	}
	lc.t.Fatalf("%s: no end line", cmd)
	return nil
}

// fixture builds spec section 8's cluster through the protocol: domain d, classes c1
// (mindevcount 1) and c2 (2), host h1 at ip1:port1 with dev1 and dev2, host h2 at ip2:port2 with
// dev3, all alive.
func fixture(t testing.TB, lc *lineConn, ip1, port1, ip2, port2 string) {
	t.Helper()
	for _, req := range []string{
		"create_domain domain=d",
		"create_class domain=d&class=c1&mindevcount=1",
		"create_class domain=d&class=c2&mindevcount=2",
		"create_host host=h1&ip=" + ip1 + "&port=" + port1 + "&status=alive",
		"create_host host=h2&ip=" + ip2 + "&port=" + port2 + "&status=alive",
		"create_device hostname=h1&devid=1",
		"create_device hostname=h1&devid=2",
		"create_device hostname=h2&devid=3",
	} {
		lc.ok(req)
	}
}

// observeAll marks every device reachable and writable with usage known, as a monitor round would.
func (tt *testTracker) observeAll(devids ...int) {
	for _, id := range devids {
		tt.s.Observe(id, Observation{Reachable: true, Writable: true, MBTotal: 10000, MBUsed: 1000, At: time.Now()})
	}
}

// storeKey stores key in domain 1 (fixture's d), length bytes long, with copies on devids, straight
// into the store, and returns its fid.
func (tt *testTracker) storeKey(t testing.TB, key string, length int64, devids ...int) int64 {
	t.Helper()
	ctx := context.Background()
	fid, err := tt.st.CreateTempfile(ctx, store.Tempfile{DomainID: 1, Key: key, DevIDs: devids})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tt.st.CommitFile(ctx, store.Commit{File: store.File{Fid: fid, DomainID: 1, Key: key, Length: length}, DevIDs: devids}); err != nil {
		t.Fatal(err)
	}
	return fid
}

// testNode is a real storage node on a loopback address.
type testNode struct {
	ip       string
	httpPort string
	docroot  string
	mgmtAddr string
}

// startNode starts a storaged node on ip (e.g. 127.0.0.2) with the given device directories. mgmtPort
// "" picks any port; "-" disables the side channel.
func startNode(t testing.TB, ip string, mgmtPort string, devids ...int) *testNode {
	t.Helper()
	docroot := t.TempDir()
	for _, id := range devids {
		if err := os.MkdirAll(filepath.Join(docroot, "dev"+itoa(id)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s, err := storaged.New(storaged.Config{Docroot: docroot}, testLogger(t))
	if err != nil {
		t.Fatalf("storaged.New: %v", err)
	}
	httpLn, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	var mgmtLn net.Listener
	n := &testNode{ip: ip, docroot: docroot}
	if mgmtPort != "-" {
		if mgmtPort == "" {
			mgmtPort = "0"
		}
		mgmtLn, err = net.Listen("tcp", ip+":"+mgmtPort)
		if err != nil {
			httpLn.Close()
			t.Fatalf("listen mgmt: %v", err)
		}
		n.mgmtAddr = mgmtLn.Addr().String()
	}
	_, n.httpPort, _ = net.SplitHostPort(httpLn.Addr().String())
	testutil.Run(t, "storaged", func(ctx context.Context) error { return s.Serve(ctx, httpLn, mgmtLn) })
	return n
}

// waitFor polls cond until it holds, failing the test after 15s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 15*time.Second, what, cond)
}
