package node

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/testutil"
)

// scriptedNode answers every HEAD it reads with reply, on a loopback listener, and closes each
// connection after one reply when closeAfter is set (without saying so, as a node whose idle
// timeout fired would). It returns the URL of a file on it and the count of accepted connections.
func scriptedNode(t *testing.T, reply string, closeAfter bool) (string, *atomic.Int64) {
	t.Helper()
	return gatedScriptedNode(t, reply, closeAfter, closedGate)
}

// closedGate is an open gate for gatedScriptedNode.
var closedGate = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// gatedScriptedNode is scriptedNode holding each reply until gate is closed (a nil gate: for ever).
func gatedScriptedNode(t *testing.T, reply string, closeAfter bool, gate <-chan struct{}) (string, *atomic.Int64) {
	t.Helper()
	ln := testutil.Listen(t, "127.0.0.1:0")
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	var conns atomic.Int64
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer nc.Close()
				br := bufio.NewReader(nc)
				for {
					req, err := http.ReadRequest(br)
					if err != nil || req.Method != http.MethodHead || req.Header.Get("User-Agent") != userAgent {
						return
					}
					select {
					case <-gate:
					case <-done:
						return
					}
					if _, err := nc.Write([]byte(reply)); err != nil || closeAfter {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/dev1/0/000/000/0000000001.fid", &conns
}

func TestSizeHeadReplies(t *testing.T) {
	for _, tc := range []struct {
		name, reply string
		want        int64
		wantErr     error // nil: no error; errAny: some other error
		conns       int64 // connections used by three calls
	}{
		{"kept alive", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 5, nil, 1},
		{"header case", "HTTP/1.1 200 OK\r\ncontent-length:  7 \r\n\r\n", 7, nil, 1},
		{"connection close", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n", 5, nil, 3},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n", 5, nil, 3},
		{"HTTP/1.0 keep-alive", "HTTP/1.0 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n", 5, nil, 1},
		{"not found", "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 0, ErrNotFound, 1},
		{"server error", "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n", 0, errAny, 1},
		{"lighttpd empty", "HTTP/1.1 200 OK\r\nServer: lighttpd/1.4\r\n\r\n", 0, nil, 1},
		{"no length", "HTTP/1.1 200 OK\r\n\r\n", 0, errAny, 1},
		{"negative length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, errAny, 1},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 0, errAny, 1},
		{"body after head", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 5, nil, 3},
		{"garbage", "SSH-2.0-OpenSSH\r\n\r\n", 0, errAny, 3},
		{"header without colon", "HTTP/1.1 200 OK\r\nContent-Length 5\r\n\r\n", 0, errAny, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, conns := scriptedNode(t, tc.reply, false)
			c := New(Config{})
			t.Cleanup(c.Close)
			for range 3 {
				got, err := c.Size(context.Background(), u)
				switch {
				case tc.wantErr == nil && (err != nil || got != tc.want):
					t.Fatalf("Size = %d, %v; want %d", got, err, tc.want)
				case tc.wantErr == errAny && (err == nil || errors.Is(err, ErrNotFound)):
					t.Fatalf("Size = %d, %v; want an error other than ErrNotFound", got, err)
				case tc.wantErr == ErrNotFound && !errors.Is(err, ErrNotFound):
					t.Fatalf("Size = %d, %v; want ErrNotFound", got, err)
				}
			}
			if got := conns.Load(); got != tc.conns {
				t.Errorf("three Size calls used %d connections, want %d", got, tc.conns)
			}
		})
	}
}

// TestSizeStaleConnection: a kept connection the node closed while it was idle is replaced by a new
// one, and the HEAD still answers.
func TestSizeStaleConnection(t *testing.T) {
	u, conns := scriptedNode(t, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", true)
	c := New(Config{})
	t.Cleanup(c.Close)
	for i := range 3 {
		if got, err := c.Size(context.Background(), u); err != nil || got != 3 {
			t.Fatalf("Size #%d = %d, %v; want 3", i+1, got, err)
		}
	}
	if got := conns.Load(); got != 3 {
		t.Errorf("three Size calls used %d connections, want 3", got)
	}
}

// TestSizeEveryKeptConnectionStale: when the node closed every kept connection while they were idle
// (its idle timeout), a HEAD is not failed by taking one stale connection after another: the first
// that fails drops the others, and the HEAD is sent on a new connection.
func TestSizeEveryKeptConnectionStale(t *testing.T) {
	const kept = 4
	gate := make(chan struct{})
	u, conns := gatedScriptedNode(t, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", true, gate)
	c := New(Config{IdleConns: kept})
	t.Cleanup(c.Close)
	// kept HEADs at once, answered together: kept connections go back to the pool, and the node
	// closes each after its answer.
	errs := make(chan error, kept)
	for range kept {
		go func() {
			got, err := c.Size(context.Background(), u)
			if err == nil && got != 3 {
				err = fmt.Errorf("Size = %d, want 3", got)
			}
			errs <- err
		}()
	}
	testutil.WaitFor(t, 10*time.Second, "every HEAD on its own connection", func() bool { return conns.Load() == kept })
	close(gate)
	for range kept {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 10*time.Second, "the kept connections in the pool", func() bool {
		c.heads.mu.Lock()
		defer c.heads.mu.Unlock()
		addr, _, _ := strings.Cut(strings.TrimPrefix(u, "http://"), "/")
		return len(c.heads.idle[addr]) == kept
	})
	for i := range 3 {
		if got, err := c.Size(context.Background(), u); err != nil || got != 3 {
			t.Fatalf("Size #%d after the node closed every kept connection = %d, %v; want 3", i+1, got, err)
		}
	}
}

func TestSplitHTTPURL(t *testing.T) {
	for _, tc := range []struct{ url, addr, path string }{
		{"http://127.0.0.2:7500/dev1/0/000/000/0000000001.fid", "127.0.0.2:7500", "/dev1/0/000/000/0000000001.fid"},
		{"http://[::1]:7500/dev2/x.fid", "[::1]:7500", "/dev2/x.fid"},
		{"https://127.0.0.2:7500/dev1/x.fid", "", ""},
		{"http://127.0.0.2/dev1/x.fid", "", ""}, // no port: net/http decides
		{"http://127.0.0.2:7500", "", ""},
		{"http://127.0.0.2:7500/dev1/a b.fid", "", ""},
		{"http://127.0.0.2:7500/dev1/x.fid?q", "", ""},
	} {
		addr, path, ok := splitHTTPURL(tc.url)
		if ok != (tc.addr != "") || addr != tc.addr || path != tc.path {
			t.Errorf("splitHTTPURL(%q) = %q, %q, %v; want %q, %q", tc.url, addr, path, ok, tc.addr, tc.path)
		}
	}
}

// FuzzHeadReply feeds arbitrary bytes to the HEAD reply parser: it must never panic, and what it
// accepts has a three-digit status and gives Size a result.
func FuzzHeadReply(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.0 404 Not Found\r\nConnection: keep-alive\r\n\r\n",
		"HTTP/1.1 200 OK\r\nServer: lighttpd\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nbody",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
		"garbage",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := readHeadReply(bufio.NewReaderSize(bytes.NewReader(b), 4096))
		if err != nil {
			return
		}
		if r.code < 100 || r.code > 999 {
			t.Fatalf("accepted status %d from %q", r.code, b)
		}
		if n, err := r.size("http://x:1/f"); err == nil && n < 0 {
			t.Fatalf("size %d from %q", n, b)
		}
	})
}

// gatedNode answers each HEAD with Content-Length 5 once gate is closed, holding the answer until
// then (a node that never answers is testutil.Silent). It returns the URL of a file on it and the count of accepted
// connections.
func gatedNode(t *testing.T, gate <-chan struct{}) (string, *atomic.Int64) {
	t.Helper()
	return gatedScriptedNode(t, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false, gate)
}

// TestSizeWithinLate: a node that has not begun its answer within the patience makes SizeWithin
// return a LateSize, whose Wait gets the answer once it comes; the connection is then kept for the
// next HEAD, with nothing of the late answer left on it.
func TestSizeWithinLate(t *testing.T) {
	gate := make(chan struct{})
	u, conns := gatedNode(t, gate)
	c := New(Config{Timeout: time.Minute})
	t.Cleanup(c.Close)
	ctx := context.Background()
	n, late, err := c.SizeWithin(ctx, u, time.Millisecond)
	if late == nil {
		t.Fatalf("SizeWithin of a node holding its answer = %d, %v, want a LateSize", n, err)
	}
	if n != 0 || err != nil {
		t.Errorf("SizeWithin with a LateSize = %d, %v, want 0, nil", n, err)
	}
	close(gate)
	if n, err := late.Wait(ctx); n != 5 || err != nil {
		t.Fatalf("LateSize.Wait = %d, %v, want 5, nil", n, err)
	}
	if n, late, err := c.SizeWithin(ctx, u, time.Minute); n != 5 || late != nil || err != nil {
		t.Fatalf("SizeWithin after the late answer = %d, %v, %v, want 5, nil, nil", n, late, err)
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("the node accepted %d connections, want 1 (kept after the late answer)", got)
	}
}

// TestSizeWithinLateTimeout: a late HEAD to a node that never answers ends with a timeout
// (IsTimeout) once the Client's Timeout has passed, and with the context's error, which is no
// timeout, when its context ends first. SizeWithin itself never reports the end of its patience
// as an error, which a caller would take for a hung node.
func TestSizeWithinLateTimeout(t *testing.T) {
	u := "http://" + testutil.Silent(t, "127.0.0.1:0").Addr().String() + "/dev1/0/000/000/0000000001.fid"
	c := New(Config{Timeout: 200 * time.Millisecond})
	t.Cleanup(c.Close)
	ctx := context.Background()
	_, late, err := c.SizeWithin(ctx, u, time.Millisecond)
	if late == nil || err != nil {
		t.Fatalf("SizeWithin of a silent node = %v, %v, want a LateSize and no error", late, err)
	}
	if _, err := late.Wait(ctx); !IsTimeout(err) {
		t.Fatalf("LateSize.Wait on a silent node = %v, want a timeout", err)
	}

	c = New(Config{Timeout: time.Minute})
	t.Cleanup(c.Close)
	if _, late, err = c.SizeWithin(ctx, u, time.Millisecond); late == nil || err != nil {
		t.Fatalf("SizeWithin of a silent node = %v, %v, want a LateSize and no error", late, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := late.Wait(wctx); !errors.Is(err, context.Canceled) || IsTimeout(err) {
		t.Fatalf("LateSize.Wait with its context cancelled = %v, want context.Canceled and no timeout", err)
	}
}

// TestSizeWithinPatienceBeforeWrite: a patience over before the request could even be sent (on a
// kept connection, the request is written by the read of its answer, under the read deadline)
// leaves the request to Wait, which sends it and gets the answer instead of waiting for the answer
// to a request never sent.
func TestSizeWithinPatienceBeforeWrite(t *testing.T) {
	u, conns := gatedNode(t, closedGate)
	c := New(Config{Timeout: time.Minute})
	t.Cleanup(c.Close)
	ctx := context.Background()
	if n, err := c.Size(ctx, u); n != 5 || err != nil {
		t.Fatalf("Size = %d, %v, want 5, nil", n, err)
	}
	_, late, err := c.SizeWithin(ctx, u, time.Nanosecond)
	if late == nil || err != nil {
		t.Fatalf("SizeWithin with a patience over at once = %v, %v, want a LateSize and no error", late, err)
	}
	// The test's deadline: without the request, Wait would wait the minute out.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if n, err := late.Wait(wctx); n != 5 || err != nil {
		t.Fatalf("LateSize.Wait = %d, %v, want 5, nil", n, err)
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("the node accepted %d connections, want 1", got)
	}
}

// TestSizeWithinSlowHead: an answer begun within the patience may end after it: the rest of the
// head is awaited until the Timeout, not taken for a late or failed HEAD.
func TestSizeWithinSlowHead(t *testing.T) {
	// Long enough for the dial, the request and the status line on a loaded machine: the test is
	// about what comes after the patience, not a race with it.
	const patience = 250 * time.Millisecond
	ln := testutil.Listen(t, "127.0.0.1:0")
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		if _, err := http.ReadRequest(bufio.NewReader(nc)); err != nil {
			return
		}
		nc.Write([]byte("HTTP/1.1 200 OK\r\n"))
		time.Sleep(2 * patience) // a slow node: the rest comes after the patience
		nc.Write([]byte("Content-Length: 5\r\n\r\n"))
	}()
	c := New(Config{Timeout: time.Minute})
	t.Cleanup(c.Close)
	u := "http://" + ln.Addr().String() + "/dev1/0/000/000/0000000001.fid"
	if n, late, err := c.SizeWithin(context.Background(), u, patience); n != 5 || late != nil || err != nil {
		t.Fatalf("SizeWithin = %d, %v, %v, want 5, nil, nil", n, late, err)
	}
}

// TestSizeContextOnKeptConnection: a kept connection watches the context of its HEADs from one to
// the next. A context that ended after its HEAD does not abort the next HEAD on that connection,
// which comes with another context; the end of that one while its HEAD waits for the node aborts
// the HEAD at once; a context over before its HEAD stops it with the context's error.
func TestSizeContextOnKeptConnection(t *testing.T) {
	// The node answers two HEADs, then says it has read the third (asked) and holds it.
	ln := testutil.Listen(t, "127.0.0.1:0")
	asked, done := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(done) })
	var conns atomic.Int64
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		conns.Add(1)
		br := bufio.NewReader(nc)
		for n := 1; ; n++ {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			if n == 3 {
				close(asked)
				<-done
				return
			}
			nc.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"))
		}
	}()
	u := "http://" + ln.Addr().String() + "/dev1/0/000/000/0000000001.fid"
	c := New(Config{Timeout: time.Minute}) // an abort that did not work would wait it out
	t.Cleanup(c.Close)

	ctx1, cancel1 := context.WithCancel(context.Background())
	if n, err := c.Size(ctx1, u); n != 5 || err != nil {
		t.Fatalf("Size = %d, %v, want 5, nil", n, err)
	}
	cancel1()
	ctx2, cancel2 := context.WithCancel(context.Background())
	if n, err := c.Size(ctx2, u); n != 5 || err != nil {
		t.Fatalf("Size after the first HEAD's context ended = %d, %v, want 5, nil", n, err)
	}
	go func() {
		<-asked
		cancel2()
	}()
	if _, err := c.Size(ctx2, u); !errors.Is(err, context.Canceled) || IsTimeout(err) {
		t.Fatalf("Size whose context ended while the node held its HEAD = %v, want context.Canceled and no timeout", err)
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("the node accepted %d connections, want 1 (kept)", got)
	}
	if _, err := c.Size(ctx1, u); !errors.Is(err, context.Canceled) {
		t.Fatalf("Size with an ended context = %v, want context.Canceled", err)
	}
}
