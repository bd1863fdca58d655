package storaged

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/testutil"
)

// testNode is a running Server on loopback with a docroot holding dev1 and dev2.
type testNode struct {
	srv     *Server
	addr    string // HTTP host:port
	mgmt    string // side channel host:port
	docroot string
	cancel  context.CancelFunc
	done    chan error
}

var hostCounter atomic.Int32

// loopbackHost returns a 127.0.0.x address so nodes of parallel tests look like distinct hosts.
func loopbackHost() string {
	n := hostCounter.Add(1)%200 + 2
	return "127.0.0." + strconv.Itoa(int(n))
}

func startNode(t testing.TB, mutate func(*Config)) *testNode {
	t.Helper()
	return startNodeWith(t, mutate, nil)
}

// startNodeWith is startNode with prep run on the Server before it serves (to swap in a clock).
func startNodeWith(t testing.TB, mutate func(*Config), prep func(*Server)) *testNode {
	t.Helper()
	return startNodeOn(t, mutate, prep, nil)
}

// startNodeOn is startNodeWith serving HTTP on wrap(listener) when wrap is not nil.
func startNodeOn(t testing.TB, mutate func(*Config), prep func(*Server), wrap func(net.Listener) net.Listener) *testNode {
	t.Helper()
	docroot := t.TempDir()
	for _, d := range []string{"dev1", "dev2"} {
		if err := os.Mkdir(filepath.Join(docroot, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{Docroot: docroot}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv.watchInterval = 20 * time.Millisecond
	if prep != nil {
		prep(srv)
	}
	host := loopbackHost()
	hl := testutil.Listen(t, host+":0")
	ml := testutil.Listen(t, host+":0")
	httpLn := hl
	if wrap != nil {
		httpLn = wrap(hl)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &testNode{srv: srv, addr: hl.Addr().String(), mgmt: ml.Addr().String(), docroot: docroot,
		cancel: cancel, done: make(chan error, 1)}
	go func() { n.done <- srv.Serve(ctx, httpLn, ml) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-n.done:
			if err != nil {
				t.Errorf("Serve = %v, want nil", err)
			}
		case <-time.After(time.Minute):
			t.Errorf("Serve did not return after cancel")
		}
		srv.Close()
	})
	return n
}

// waitServe waits up to 30s for Serve to return after the stop that after names (in the failure
// messages), fails the test unless it returned nil, and leaves nil for startNode's cleanup.
func (n *testNode) waitServe(t testing.TB, after string) {
	t.Helper()
	select {
	case err := <-n.done:
		if err != nil {
			t.Errorf("Serve after %s = %v, want nil", after, err)
		}
		n.done <- nil // for the cleanup
	case <-time.After(30 * time.Second):
		t.Fatalf("Serve did not return after %s", after)
	}
}

func (n *testNode) url(p string) string { return "http://" + n.addr + p }

// do sends a request for p with body and the headers hdr and returns the response.
func (n *testNode) do(t testing.TB, method, p string, body io.Reader, hdr map[string]string) *http.Response {
	t.Helper()
	return testutil.Request(t, method, n.url(p), body, hdr)
}

// put stores body at p with net/http and returns the status.
func (n *testNode) put(t testing.TB, p string, body []byte, hdr map[string]string) int {
	t.Helper()
	resp := n.do(t, http.MethodPut, p, strings.NewReader(string(body)), hdr)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// get fetches p and returns the response with its body read.
func (n *testNode) get(t testing.TB, method, p string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	resp := n.do(t, method, p, nil, hdr)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, p, err)
	}
	return resp, string(b)
}

// raw sends a literal request on a new connection and reads one response.
func (n *testNode) raw(t testing.TB, req string) (*http.Response, string) {
	t.Helper()
	c := testutil.Dial(t, n.addr)
	defer c.Close()
	return exchange(t, c, bufio.NewReader(c), req)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\r\n")
	return l
}

// waitFor polls cond until it holds, failing the test after 2 minutes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 2*time.Minute, what, cond)
}

// tempFiles lists leftover *.tmp files anywhere under dir.
func tempFiles(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		// usage.*.tmp belongs to the usage writer, which may be mid-rewrite.
		if err == nil && strings.HasSuffix(p, ".tmp") && !strings.HasPrefix(filepath.Base(p), "usage.") {
			out = append(out, p)
		}
		return nil
	})
	return out
}
