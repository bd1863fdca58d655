package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/netx"
	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/storaged"
)

// rawExchange writes req as given on a new connection to addr and reads one answer. The deadline
// only bounds a test that would otherwise hang: the answers are expected at once.
func rawExchange(t *testing.T, addr, req string) *fasthttp.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return rawOn(t, c, bufio.NewReader(c), req)
}

// dialKeep opens a connection to addr for several requests; it is closed at cleanup.
func dialKeep(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// rawOn writes req on c and reads one answer from br.
func rawOn(t *testing.T, c net.Conn, br *bufio.Reader, req string) *fasthttp.Response {
	t.Helper()
	c.SetDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck // a bound on a hung test only
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatalf("write %q: %v", req, err)
	}
	resp := &fasthttp.Response{}
	if strings.HasPrefix(req, "HEAD ") {
		resp.SkipBody = true
	}
	if err := resp.Read(br); err != nil {
		t.Fatalf("no answer to %q: %v", req, err)
	}
	return resp
}

// Issue 9, item 1: a Range header larger than a storage node's head limit reached the node, whose
// 431 was relayed on uncached routes. The gateway now sends a node only a range it can serve.
func TestIssue9LargeRangeNotForwarded(t *testing.T) {
	t.Parallel()
	// A node with the smallest head limit: what the gateway sends it stays far below.
	n := startStorageWith(t, "127.0.0.2", func(c *storaged.Config) { c.MaxHeaderSize = conf.KiB })
	ft := newFakeTracker()
	data := pattern(5000)
	ft.set("d", "hello", n.put(t, 90, data))
	g := startGateway(t, trackerConfig(), Deps{Tracker: ft})
	addr := strings.TrimPrefix(g.base, "http://")

	var many strings.Builder
	many.WriteString("bytes=0-0")
	for i := 2; many.Len() < 5400; i += 2 {
		many.WriteString("," + strconv.Itoa(i) + "-" + strconv.Itoa(i))
	}
	resp := rawExchange(t, addr, "GET /d/hello HTTP/1.1\r\nHost: x\r\nRange: "+many.String()+"\r\n\r\n")
	if resp.StatusCode() != 200 || !bytes.Equal(resp.Body(), data) {
		t.Errorf("5.4 KB Range of many ranges: %d with %d bytes, want 200 with the whole %d",
			resp.StatusCode(), len(resp.Body()), len(data))
	}
	padded := "bytes=" + strings.Repeat("0", 5400) + "10-19" // one range, written long (1*DIGIT allows leading zeros)
	resp = rawExchange(t, addr, "GET /d/hello HTTP/1.1\r\nHost: x\r\nRange: "+padded+"\r\n\r\n")
	if resp.StatusCode() != 206 || !bytes.Equal(resp.Body(), data[10:20]) {
		t.Errorf("5.4 KB Range of one range: %d with %d bytes, want 206 with bytes 10-19", resp.StatusCode(), len(resp.Body()))
	}
	inm := strings.Repeat(`"nope", `, 700) + `"fid-90"`
	resp = rawExchange(t, addr, "GET /d/hello HTTP/1.1\r\nHost: x\r\nRange: bytes=10-19\r\nIf-None-Match: x"+inm+"\r\n\r\n")
	if resp.StatusCode() != 206 || !bytes.Equal(resp.Body(), data[10:20]) {
		t.Errorf("Range with a 5.6 KB If-None-Match: %d %q, want 206 %q", resp.StatusCode(), resp.Body(), data[10:20])
	}
}

// helloGateway starts a gateway whose /d/hello is "hello world", stored as fid on a node, and
// returns its address.
func helloGateway(t *testing.T, fid int64) string {
	t.Helper()
	_, ft := storedBytes(t, "hello", fid, []byte("hello world"))
	g := startGateway(t, trackerConfig(), Deps{Tracker: ft})
	return strings.TrimPrefix(g.base, "http://")
}

// Issue 9, item 3: request targets and versions as RFC 9112 has them.
func TestIssue9RequestTargets(t *testing.T) {
	t.Parallel()
	addr := helloGateway(t, 91)
	tests := []struct {
		line   string
		status int
		body   string
	}{
		// The absolute-form is read for its path; its host is ignored, as Host is.
		{"GET http://evil.example/d/hello HTTP/1.1", 200, "hello world"},
		{"GET /d/hello HTTP/1.0", 200, "hello world"},
		{"GET /d/hello HTTP/2.0", 505, ""},
		{"GET /d/hello HTTP/3.0", 505, ""},
		{"GET /d/hello HTTP/0.9", 505, ""},
		{"GET * HTTP/1.1", 400, ""},
		{"DELETE * HTTP/1.1", 400, ""},
		{"OPTIONS * HTTP/1.1", 200, ""},
		{"GET evil.example:80 HTTP/1.1", 400, ""},
	}
	for _, tt := range tests {
		resp := rawExchange(t, addr, tt.line+"\r\nHost: x\r\n\r\n")
		if resp.StatusCode() != tt.status || tt.body != "" && string(resp.Body()) != tt.body {
			t.Errorf("%q: %d %q, want %d %q", tt.line, resp.StatusCode(), resp.Body(), tt.status, tt.body)
		}
		if tt.status == 505 && !resp.ConnectionClose() {
			t.Errorf("%q: 505 without Connection: close", tt.line)
		}
	}
	resp := rawExchange(t, addr, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
	if got := string(resp.Header.Peek("Allow")); got != "GET, HEAD, PUT, DELETE" {
		t.Errorf("OPTIONS * Allow = %q", got)
	}
}

// Issue 9, item 4: a request head with LF line endings waited for the read timeout (60 s) with no
// answer. It is answered at once, and a keep-alive connection goes on serving.
func TestIssue9BareLFHead(t *testing.T) {
	t.Parallel()
	addr := helloGateway(t, 92)
	c, br := dialKeep(t, addr)
	for _, req := range []string{
		"GET /d/hello HTTP/1.1\nHost: x\n\n",
		"GET /d/hello HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /d/hello HTTP/1.1\nHost: x\r\n\n",
	} {
		resp := rawOn(t, c, br, req)
		if resp.StatusCode() != 200 || string(resp.Body()) != "hello world" {
			t.Errorf("%q: %d %q, want 200 hello world", req, resp.StatusCode(), resp.Body())
		}
	}
}

// Issue 9, item 6: with max_connections taken by idle keep-alive connections, a new client got 503
// until they timed out, and the log named fasthttp's Server.Concurrency. The longest idle
// connection is now closed to make room; with every connection busy, the 503 is logged under the
// key that sets the bound.
func TestIssue9ConnectionLimit(t *testing.T) {
	t.Parallel()
	n, ft := storedBytes(t, "hello", 93, []byte("hello world"))
	ft.set("d", "hello2", n.put(t, 94, []byte("hello world")))
	cfg := trackerConfig()
	cfg.Limits.MaxConnections = 2
	cfg.PathCache.Size = -1
	logs := &testutil.SyncBuffer{}
	srv, err := New(cfg, Deps{Tracker: ft, AccessLog: io.Discard}, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	addr, cancel, done := serveLoopback(t, srv)
	t.Cleanup(func() {
		cancel()
		<-done
	})
	const req = "GET /d/hello HTTP/1.1\r\nHost: x\r\n\r\n"
	dial := func() (net.Conn, *bufio.Reader) { return dialKeep(t, addr) }
	idle := func(n int) {
		t.Helper()
		// fasthttp marks a connection idle just after its answer is written.
		waitFor(t, strconv.Itoa(n)+" idle connections", func() bool { return srv.Stats().Connections.Idle == n })
	}
	c1, b1 := dial()
	rawOn(t, c1, b1, req)
	idle(1)
	c2, b2 := dial()
	rawOn(t, c2, b2, req)
	idle(2)
	// Both connections are idle and kept alive; a third client takes the place of c1.
	c3, b3 := dial()
	if resp := rawOn(t, c3, b3, req); resp.StatusCode() != 200 {
		t.Fatalf("third client with two idle connections open: %d, want 200", resp.StatusCode())
	}
	c1.SetReadDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck // bound on a hung test
	if _, err := c1.Read(make([]byte, 1)); err == nil {
		t.Errorf("the longest idle connection was not closed")
	}
	if resp := rawOn(t, c2, b2, req); resp.StatusCode() != 200 {
		t.Errorf("second client again: %d, want 200", resp.StatusCode())
	}
	idle(2)

	// Now both slots are busy (their tracker lookups wait on the gate): a new client gets 503.
	gate := make(chan struct{})
	ft.mu.Lock()
	ft.gate = gate
	ft.mu.Unlock()
	before := ft.calls.Load()
	io.WriteString(c2, req)                                        //nolint:errcheck // answered below
	io.WriteString(c3, strings.Replace(req, "hello", "hello2", 1)) //nolint:errcheck // answered below
	waitFor(t, "two requests in the tracker", func() bool { return ft.calls.Load() >= before+2 })
	c4, b4 := dial()
	if resp := rawOn(t, c4, b4, req); resp.StatusCode() != 503 {
		t.Errorf("a client with every connection busy: %d, want 503", resp.StatusCode())
	}
	close(gate)
	for _, c := range []struct {
		c  net.Conn
		br *bufio.Reader
	}{{c2, b2}, {c3, b3}} {
		var resp fasthttp.Response
		if err := resp.Read(c.br); err != nil || resp.StatusCode() != 200 {
			t.Errorf("busy request after the gate opened: %d, %v", resp.StatusCode(), err)
		}
	}
	if st := srv.Stats().Connections; st.Evicted != 1 || st.Refused != 1 {
		t.Errorf("connections %+v, want 1 evicted and 1 refused", st)
	}
	if l := logs.String(); !strings.Contains(l, "limits.max_connections") || strings.Contains(l, "Concurrency") {
		t.Errorf("log does not name limits.max_connections:\n%s", l)
	}
}

// A pooled connection to a node is checked for a close by the node (a system call) before a request
// only when it has been idle for peekIdle, or when the request is an upload (sent with no deadline);
// otherwise a close shows on the first read and is counted for node.retryStale.
func TestIdleConnLivenessCheck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var dials, stale atomic.Int64
	dial := idleDialer(time.Second, 10*time.Second, &dials, &stale)
	for _, tc := range []struct {
		name      string
		idleFor   time.Duration // how long before the request the last one started
		deadline  bool          // the request has a deadline (a GET; an upload has none)
		wantCheck bool
	}{
		{"GET just after the last", 0, true, false},
		{"GET after peekIdle", peekIdle, true, true},
		{"upload just after the last", 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, peer := dialNode(t, dial, ln)
			// One exchange makes the connection a pooled one, then the node closes it.
			if _, err := peer.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			peer.Close()
			c.lastReq = time.Now().Add(-tc.idleFor)
			var dl time.Time
			if tc.deadline {
				dl = time.Now().Add(10 * time.Second)
			}
			// The close may take a moment to reach this end: a bounded wait, not a threshold.
			var swErr error
			for range 200 {
				c.lastReq = time.Now().Add(-tc.idleFor)
				if swErr = c.SetWriteDeadline(dl); swErr != nil || !tc.wantCheck {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			if got := errors.Is(swErr, errStaleConn); got != tc.wantCheck {
				t.Fatalf("SetWriteDeadline = %v; stale found before writing %v, want %v", swErr, got, tc.wantCheck)
			}
			if tc.wantCheck {
				return
			}
			before := stale.Load()
			// As fasthttp does: write the request, then set the read deadline and read the answer.
			c.Write([]byte("GET / HTTP/1.1\r\n\r\n")) //nolint:errcheck // the node is gone; the read tells
			if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Read(make([]byte, 16)); err == nil {
				t.Fatal("read on a connection the node closed succeeded")
			}
			if got := stale.Load() - before; got != 1 {
				t.Errorf("stale reads counted = %d, want 1", got)
			}
		})
	}
}

// deadlineCounter counts the deadlines armed on the connection it wraps.
type deadlineCounter struct {
	net.Conn
	reads, writes int
}

func (c *deadlineCounter) SetReadDeadline(t time.Time) error {
	c.reads++
	return c.Conn.SetReadDeadline(t)
}

func (c *deadlineCounter) SetWriteDeadline(t time.Time) error {
	c.writes++
	return c.Conn.SetWriteDeadline(t)
}

// Back-to-back small requests on a node connection arm its write deadline once, not twice per
// request (fasthttp's deadline, then the idle bound of the first write), and a client connection
// arms one read deadline per request, not the keep-alive wait's and the request head's: each arming
// is a runtime timer update. The deadlines still bound the waits.
func TestDeadlinesArmedOnce(t *testing.T) {
	t.Run("node connection", func(t *testing.T) {
		nc, peer := testutil.TCPPair(t, "127.0.0.1")
		dc := &deadlineCounter{Conn: nc}
		var stale atomic.Int64
		c := &idleConn{Conn: dc, idle: 30 * time.Second, staleReads: &stale}
		buf := make([]byte, 64)
		const requests = 5
		for range requests {
			// As node.get does: the request sent with its deadlines, then its answer read.
			now := time.Now()
			c.req = append(c.req[:0], "GET / HTTP/1.1\r\n\r\n"...)
			if err := c.send(now, now.Add(10*time.Second), now.Add(10*time.Second)); err != nil {
				t.Fatal(err)
			}
			if _, err := peer.Read(buf); err != nil {
				t.Fatal(err)
			}
			if _, err := peer.Write([]byte("HTTP/1.1 200 OK\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Read(buf); err != nil {
				t.Fatal(err)
			}
		}
		if dc.writes != 1 {
			t.Errorf("%d requests armed the write deadline %d times, want 1", requests, dc.writes)
		}
		if !c.wa.After(time.Now().Add(20 * time.Second)) {
			t.Errorf("write deadline armed %v ahead, want about the idle bound (30s)", time.Until(c.wa))
		}
	})
	t.Run("client connection", func(t *testing.T) {
		cc, peer := testutil.TCPPair(t, "127.0.0.1")
		dc := &deadlineCounter{Conn: cc}
		c := &serverConn{Conn: dc}
		buf := make([]byte, 64)
		const requests = 5
		for range requests {
			// As fasthttp's server does: the keep-alive wait's deadline and a read of the head, then
			// the head's deadline, unused when the whole head came with the first read.
			if err := c.SetReadDeadline(time.Now().Add(75 * time.Second)); err != nil {
				t.Fatal(err)
			}
			if _, err := peer.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Read(buf); err != nil {
				t.Fatal(err)
			}
			if err := c.SetReadDeadline(time.Now().Add(60 * time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		if dc.reads != requests {
			t.Errorf("%d requests armed the read deadline %d times, want %d", requests, dc.reads, requests)
		}
		// A deadline recorded without a read is armed before the next read.
		if err := c.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		var ne net.Error
		if _, err := c.Read(buf); !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("Read with nothing to read after the deadline = %v, want a timeout", err)
		}
	})
}

// A held request whose read found its deadline already passed was not written: it stays held, and
// the next read (a GET resumed after its hedge delay, see slowGet) writes it.
func TestIdleConnKeepsRequestNotWritten(t *testing.T) {
	ln := testutil.Listen(t, "127.0.0.1:0")
	var dials, stale atomic.Int64
	c, peer := dialNode(t, idleDialer(time.Second, 10*time.Second, &dials, &stale), ln)
	const req = "GET /a HTTP/1.1\r\n\r\n"
	c.req = append(c.req[:0], req...)
	now := time.Now()
	if err := c.send(now, now.Add(10*time.Second), now.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if n, err := c.Read(buf); n != 0 || !isTimeout(err) {
		t.Fatalf("Read past its deadline = %d, %v; want a timeout", n, err)
	}
	peer.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := peer.Read(make([]byte, 64)); n != 0 || !isTimeout(err) {
		t.Fatalf("node read %d bytes (%v) of a request whose read timed out before writing; want none yet", n, err)
	}
	go func() {
		peer.SetReadDeadline(time.Now().Add(10 * time.Second))
		got := make([]byte, len(req))
		if _, err := io.ReadFull(peer, got); err == nil && string(got) == req {
			peer.Write([]byte("answer"))
		}
	}()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "answer" {
		t.Fatalf("answer after the request was written by the next read = %q, %v", buf, err)
	}
}

// A request node.get sends (idleConn.send) is held and written by the read of its answer, which then
// waits for the answer without a read that finds nothing (netx.Request); a request written through
// Write (fasthttp's, an upload's head) reaches the node at once, before anything is read.
func TestIdleConnHoldsRequest(t *testing.T) {
	ln := testutil.Listen(t, "127.0.0.1:0")
	var dials, stale atomic.Int64
	c, peer := dialNode(t, idleDialer(time.Second, 10*time.Second, &dials, &stale), ln)
	peerReads := func(want string) {
		t.Helper()
		peer.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, len(want))
		if _, err := io.ReadFull(peer, buf); err != nil || string(buf) != want {
			t.Fatalf("node read %q, %v; want %q", buf, err, want)
		}
	}
	for _, req := range []string{"GET /a HTTP/1.1\r\n\r\n", "GET /b HTTP/1.1\r\nHost: x\r\n\r\n"} {
		c.req = append(c.req[:0], req...)
		now := time.Now()
		if err := c.send(now, now.Add(10*time.Second), now.Add(10*time.Second)); err != nil {
			t.Fatal(err)
		}
		peer.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, err := peer.Read(make([]byte, 64)); n != 0 || !isTimeout(err) {
			t.Fatalf("node read %d bytes (%v) of a held request before its answer was read; want none", n, err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			peerReads(req)
			peer.Write([]byte("answer"))
		}()
		buf := make([]byte, 6)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "answer" {
			t.Fatalf("answer %q, %v", buf, err)
		}
		<-done
	}
	// An upload's head is on the wire before anything is read.
	if err := c.SetWriteDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("PUT /c HTTP/1.1\r\n")); err != nil {
		t.Fatal(err)
	}
	peerReads("PUT /c HTTP/1.1\r\n")
}

// readFromSpy records the readers handed to the wrapped connection's ReadFrom.
type readFromSpy struct {
	net.Conn
	pieces []*io.LimitedReader
}

func (c *readFromSpy) ReadFrom(r io.Reader) (int64, error) {
	if lr, ok := r.(*io.LimitedReader); ok {
		c.pieces = append(c.pieces, &io.LimitedReader{R: lr.R, N: lr.N})
	}
	return c.Conn.(io.ReaderFrom).ReadFrom(r)
}

// A file section written to a client connection (a disk-tier cache hit) goes to the socket's own
// ReadFrom, which sends a file with sendfile(2) (netx.TestRawReadFromFile), in pieces no larger than
// a write of the response buffer; each piece has its write deadline extended, so a client that keeps
// reading is never cut, however long the whole takes.
func TestServerConnReadFromFile(t *testing.T) {
	cc, peer := testutil.TCPPair(t, "127.0.0.1")
	// Small socket buffers, so that the slow reader below holds the writes back: with loopback's
	// defaults the kernel would take most of the body at once.
	if err := cc.(*net.TCPConn).SetWriteBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	if err := peer.(*net.TCPConn).SetReadBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	spy := &readFromSpy{Conn: netx.Raw(cc)}
	c := &serverConn{Conn: spy, write: 2 * time.Second}
	const size = 4 << 20
	body := pattern(size)
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, append([]byte("head"), body...), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(4, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() {
		// Slower than the write timeout allows for the whole: 64 KiB per 50 ms is 3.2 s for 4 MiB.
		var b bytes.Buffer
		buf := make([]byte, 64<<10)
		peer.SetReadDeadline(time.Now().Add(time.Minute))
		for b.Len() < size {
			n, err := io.ReadFull(peer, buf[:min(len(buf), size-b.Len())])
			b.Write(buf[:n])
			if err != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		got <- b.Bytes()
	}()
	n, err := c.ReadFrom(&io.LimitedReader{R: f, N: size})
	if err != nil || n != size {
		t.Fatalf("ReadFrom = %d, %v; want %d", n, err, size)
	}
	if b := <-got; !bytes.Equal(b, body) {
		t.Fatalf("client read %d bytes, not the file's section", len(b))
	}
	if len(spy.pieces) < size/readFromPiece {
		t.Fatalf("%d pieces handed to the socket's ReadFrom, want %d of at most %d bytes", len(spy.pieces), size/readFromPiece, readFromPiece)
	}
	for _, p := range spy.pieces {
		if _, ok := p.R.(*os.File); !ok || p.N > readFromPiece {
			t.Fatalf("piece %T of %d bytes handed on, want a file section of at most %d", p.R, p.N, readFromPiece)
		}
	}
}

// dialNode dials ln with dial and returns the node connection with the node's end of it; both are
// closed when the test ends.
func dialNode(t *testing.T, dial fasthttp.DialFuncWithTimeout, ln net.Listener) (*idleConn, net.Conn) {
	t.Helper()
	nc, err := dial(ln.Addr().String(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	return nc.(*idleConn), peer
}
