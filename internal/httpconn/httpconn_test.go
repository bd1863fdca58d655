package httpconn

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/testutil"
	"github.com/valyala/fasthttp"
)

// fixAll runs a headFixer over in, fed in pieces of the given sizes (the rest at once), the way
// Conn.Read feeds it.
func fixAll(in []byte, sizes ...int) []byte {
	var h headFixer
	var out []byte
	for len(in) > 0 {
		n := len(in)
		if len(sizes) > 0 {
			n, sizes = min(sizes[0], n), sizes[1:]
		}
		if h.done {
			out = append(out, in[:n]...)
			in = in[n:]
			continue
		}
		buf := make([]byte, 2*n)
		copy(buf, in[:n])
		out = append(out, buf[:h.fix(buf, n)]...)
		in = in[n:]
	}
	return out
}

// wantFixed is the specification of headFixer: bare LFs of the head become CRLF, the rest stays.
func wantFixed(in []byte) []byte {
	var out []byte
	started, line := false, []byte(nil)
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c != '\n' {
			line = append(line, c)
			out = append(out, c)
			continue
		}
		if len(line) == 0 || line[len(line)-1] != '\r' {
			out = append(out, '\r')
		}
		out = append(out, '\n')
		blank := len(line) == 0 || string(line) == "\r"
		line = line[:0]
		if !blank {
			started = true
		} else if started {
			return append(out, in[i+1:]...)
		}
	}
	return out
}

func TestHeadFixer(t *testing.T) {
	tests := []struct{ in, want string }{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"GET / HTTP/1.1\nHost: a\n\n", "GET / HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"GET / HTTP/1.0\n\n", "GET / HTTP/1.0\r\n\r\n"},
		{"GET / HTTP/1.1\r\nHost: a\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"GET / HTTP/1.1\nHost: a\r\n\n", "GET / HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"\n\r\nGET / HTTP/1.0\n\n", "\r\n\r\nGET / HTTP/1.0\r\n\r\n"}, // empty lines before the request line
		{"PUT /x HTTP/1.1\nContent-Length: 3\n\na\nb", "PUT /x HTTP/1.1\r\nContent-Length: 3\r\n\r\na\nb"},
		{"GET / HTTP/1.1\nHost: a\n", "GET / HTTP/1.1\r\nHost: a\r\n"}, // the head goes on
		{"GET /\ra HTTP/1.1\n\n", "GET /\ra HTTP/1.1\r\n\r\n"},
	}
	for _, tt := range tests {
		for _, sizes := range [][]int{nil, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, {3, 5, 7, 2}} {
			if got := fixAll([]byte(tt.in), sizes...); string(got) != tt.want {
				t.Errorf("fix(%q) in pieces %v = %q, want %q", tt.in, sizes, got, tt.want)
			}
		}
		if got := wantFixed([]byte(tt.in)); string(got) != tt.want {
			t.Errorf("wantFixed(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzHeadFixer(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\nHost: a\n\nbody\n\n"), uint8(3))
	f.Add([]byte("\r\n\n\r\r\n\nx\n\n"), uint8(1))
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		sizes := make([]int, len(in))
		for i := range sizes {
			sizes[i] = int(step%16) + 1
		}
		want := wantFixed(in)
		if got := fixAll(in, sizes...); !bytes.Equal(got, want) {
			t.Fatalf("fix(%q) in pieces of %d = %q, want %q", in, step%16+1, got, want)
		}
	})
}

// serve runs a fasthttp server behind a Tracker on loopback and returns its address.
func serve(t *testing.T, tr *Tracker, h fasthttp.RequestHandler) string {
	t.Helper()
	ln := testutil.Listen(t, "127.0.0.1:0")
	serveOn(t, tr, ln, &fasthttp.Server{Handler: h})
	return ln.Addr().String()
}

// serveOn runs srv behind tr on ln until the test ends.
func serveOn(t *testing.T, tr *Tracker, ln net.Listener, srv *fasthttp.Server) {
	t.Helper()
	srv.ConnState, srv.Concurrency = tr.ConnState, 1000
	done := make(chan error, 1)
	go func() { done <- srv.Serve(tr.Listener(ln)) }()
	t.Cleanup(func() {
		srv.Shutdown() //nolint:errcheck // the test is over
		<-done
	})
}

// roundTrip writes req on c and reads one answer's status line and body.
func roundTrip(t *testing.T, c net.Conn, br *bufio.Reader, req string) (status int, body string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck // a bound on a hung test only
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatalf("write: %v", err)
	}
	var resp fasthttp.Response
	if err := resp.Read(br); err != nil {
		t.Fatalf("reading the answer to %q: %v", req, err)
	}
	return resp.StatusCode(), string(resp.Body())
}

func TestBareLFServed(t *testing.T) {
	tr := NewTracker(Options{})
	addr := serve(t, tr, func(ctx *fasthttp.RequestCtx) {
		ctx.WriteString(string(ctx.Path()) + " " + string(ctx.Request.Header.Peek("X-A")) + " " + string(ctx.PostBody())) //nolint:errcheck // test
	})
	c := testutil.Dial(t, addr)
	defer c.Close()
	br := bufio.NewReader(c)
	for _, tt := range []struct{ req, want string }{
		{"GET /a HTTP/1.1\nHost: x\nX-A: 1\n\n", "/a 1 "},
		{"POST /b HTTP/1.1\nHost: x\nContent-Length: 4\n\na\n\nb", "/b  a\n\nb"},
		{"GET /c HTTP/1.1\r\nHost: x\r\nX-A: 3\r\n\r\n", "/c 3 "},
		{"GET /d HTTP/1.1\nHost: x\n\n", "/d  "},
	} {
		if status, body := roundTrip(t, c, br, tt.req); status != 200 || body != tt.want {
			t.Errorf("%q: %d %q, want 200 %q", tt.req, status, body, tt.want)
		}
	}
}

func TestTrackerClosesOldestIdle(t *testing.T) {
	tr := NewTracker(Options{Max: 2, Key: "limits.max_connections"})
	addr := serve(t, tr, func(ctx *fasthttp.RequestCtx) { ctx.WriteString("ok") }) //nolint:errcheck // test
	dial := func() (net.Conn, *bufio.Reader) {
		c := testutil.Dial(t, addr)
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}
	const get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	idle := func(n int) {
		t.Helper()
		// fasthttp marks a connection idle just after its answer is written.
		for deadline := time.Now().Add(10 * time.Second); tr.Stats().Idle != n; {
			if time.Now().After(deadline) {
				t.Fatalf("never %d idle connections: %+v", n, tr.Stats())
			}
			time.Sleep(time.Millisecond)
		}
	}
	// Each client finds the others idle; the third takes the slot of the first, idle longest.
	var conns []net.Conn
	var readers []*bufio.Reader
	for i := range 3 {
		c, br := dial()
		if status, _ := roundTrip(t, c, br, get); status != 200 {
			t.Fatalf("connection %d: %d, want 200", i, status)
		}
		conns, readers = append(conns, c), append(readers, br)
		idle(min(i+1, 2))
	}
	conns[0].SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck // bound on a hung test
	if n, err := conns[0].Read(make([]byte, 1)); err == nil {
		t.Errorf("the longest idle connection is still open (read %d bytes)", n)
	}
	if status, _ := roundTrip(t, conns[1], readers[1], get); status != 200 {
		t.Errorf("second connection again: %d, want 200", status)
	}
	if st := tr.Stats(); st.Evicted != 1 || st.Refused != 0 {
		t.Errorf("Stats = %+v, want 1 evicted, 0 refused", st)
	}
}

func TestTrackerRefusesWhenAllBusy(t *testing.T) {
	var logs strings.Builder
	release := make(chan struct{})
	tr := NewTracker(Options{Max: 1, Key: "storaged.max_conns", Log: newTextLog(&logs)})
	addr := serve(t, tr, func(ctx *fasthttp.RequestCtx) { <-release })
	busy := testutil.Dial(t, addr)
	defer busy.Close()
	io.WriteString(busy, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") //nolint:errcheck // checked by the answer below
	// Wait until the busy request holds the only slot.
	for deadline := time.Now().Add(10 * time.Second); tr.Stats().Open != 1; {
		if time.Now().After(deadline) {
			t.Fatal("the first connection was never counted")
		}
		time.Sleep(time.Millisecond)
	}
	c := testutil.Dial(t, addr)
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck // bound on a hung test
	got, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(got), "HTTP/1.1 503 ") {
		t.Errorf("over the bound: %q, want a 503", got)
	}
	close(release)
	if !strings.Contains(logs.String(), "storaged.max_conns") || strings.Contains(logs.String(), "Concurrency") {
		t.Errorf("log %q does not name storaged.max_conns", logs.String())
	}
}

// TestTrackerCloseAll: CloseAll closes every open connection, busy in a handler or idle between
// requests, and a connection closed earlier is no longer held by the Tracker.
func TestTrackerCloseAll(t *testing.T) {
	started, release := make(chan struct{}, 1), make(chan struct{})
	defer close(release)
	tr := NewTracker(Options{Key: "limits.max_connections"})
	addr := serve(t, tr, func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/busy" {
			started <- struct{}{}
			<-release
		}
		ctx.WriteString("ok") //nolint:errcheck // test
	})
	const get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	gone := testutil.Dial(t, addr)
	if status, _ := roundTrip(t, gone, bufio.NewReader(gone), get); status != 200 {
		t.Fatalf("first connection: %d, want 200", status)
	}
	gone.Close()
	idle := testutil.Dial(t, addr)
	defer idle.Close()
	if status, _ := roundTrip(t, idle, bufio.NewReader(idle), get); status != 200 {
		t.Fatalf("idle connection: %d, want 200", status)
	}
	busy := testutil.Dial(t, addr)
	defer busy.Close()
	io.WriteString(busy, "GET /busy HTTP/1.1\r\nHost: x\r\n\r\n") //nolint:errcheck // checked by the read below
	held := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			tr.mu.Lock()
			got := len(tr.all)
			tr.mu.Unlock()
			if got == n && tr.Stats().Open == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the tracker holds %d connections (%+v), want %d", got, tr.Stats(), n)
			}
		}
	}
	<-started
	held(2) // the closed one is gone; the idle and the busy one stay
	tr.CloseAll()
	for name, c := range map[string]net.Conn{"idle": idle, "busy": busy} {
		c.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck // bound on a hung test
		if n, err := c.Read(make([]byte, 64)); err == nil || isTimeout(err) {
			t.Errorf("%s connection after CloseAll: read %d bytes, %v; want it closed", name, n, err)
		}
	}
	release <- struct{}{} // the busy handler ends, and fasthttp closes its connection
	held(0)
}

// isTimeout reports whether err is a deadline that ran out.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestCheckRequestLine(t *testing.T) {
	tests := []struct {
		line string
		want int
	}{
		{"GET /a HTTP/1.1", 0},
		{"GET /a HTTP/1.0", 0},
		{"GET http://evil.example/a HTTP/1.1", 0},
		{"GET /a HTTP/2.0", 505},
		{"GET /a HTTP/0.9", 505},
		{"GET * HTTP/1.1", 400},
		{"OPTIONS * HTTP/1.1", 0},
	}
	for _, tt := range tests {
		var h fasthttp.RequestHeader
		if err := h.Read(bufio.NewReader(strings.NewReader(tt.line + "\r\nHost: x\r\n\r\n"))); err != nil {
			t.Fatalf("%q: %v", tt.line, err)
		}
		if got := CheckRequestLine(&h); got != tt.want {
			t.Errorf("CheckRequestLine(%q) = %d, want %d", tt.line, got, tt.want)
		}
	}
}

func newTextLog(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// BenchmarkHeadFixer measures the scan of a typical CRLF request head, done once per request.
func BenchmarkHeadFixer(b *testing.B) {
	head := []byte("GET /dev1/0/000/000/0000000123.fid HTTP/1.1\r\nHost: node1:7500\r\n" +
		"User-Agent: mogway\r\nAccept-Encoding: gzip\r\nRange: bytes=0-1023\r\n\r\n")
	buf := make([]byte, 2*len(head))
	b.SetBytes(int64(len(head)))
	for b.Loop() {
		copy(buf, head)
		var h headFixer
		if n := h.fix(buf, len(head)); n != len(head) || !h.done {
			b.Fatalf("fix = %d (done %v), want %d (done)", n, h.done, len(head))
		}
	}
}

// A connection going idle after an answer and active with the next request costs no allocation, and
// the idle list keeps its order through removals from its middle and ends.
func TestConnStateIdleList(t *testing.T) {
	tr := NewTracker(Options{})
	var conns []*Conn
	for range 3 {
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		conns = append(conns, tr.admit(a))
	}
	for _, c := range conns {
		tr.ConnState(c, fasthttp.StateIdle)
	}
	tr.ConnState(conns[1], fasthttp.StateActive) // the middle one
	if st := tr.Stats(); st.Open != 3 || st.Idle != 2 {
		t.Fatalf("Stats = %+v, want 3 open, 2 idle", st)
	}
	if tr.idle.front != conns[0] || tr.idle.back != conns[2] || conns[0].next != conns[2] || conns[2].prev != conns[0] {
		t.Fatal("idle list after removing its middle: want conns 0 then 2")
	}
	tr.ConnState(conns[0], fasthttp.StateActive)
	tr.ConnState(conns[1], fasthttp.StateIdle)
	if tr.idle.front != conns[2] || tr.idle.back != conns[1] || tr.idle.n != 2 {
		t.Fatal("idle list: want conns 2 then 1")
	}
	if n := testing.AllocsPerRun(100, func() {
		tr.ConnState(conns[0], fasthttp.StateIdle)
		tr.ConnState(conns[0], fasthttp.StateActive)
	}); n != 0 {
		t.Errorf("idle then active: %v allocations, want 0", n)
	}
	for _, c := range conns {
		c.Close()
	}
	if st := tr.Stats(); st.Open != 0 || st.Idle != 0 || tr.idle.front != nil || tr.idle.back != nil {
		t.Errorf("after closing all: Stats = %+v, list ends %p %p; want empty", st, tr.idle.front, tr.idle.back)
	}
}
