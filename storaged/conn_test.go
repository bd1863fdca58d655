package storaged

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/testutil"
)

// storeFile writes body as dev1/<name> under n's docroot.
func storeFile(t *testing.T, n *testNode, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(n.docroot, "dev1", name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// exchange writes req on c and reads one answer from br. The deadline only bounds a test that
// would otherwise hang: every answer here is expected at once.
func exchange(t testing.TB, c net.Conn, br *bufio.Reader, req string) (*http.Response, string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck // a bound on a hung test only
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatalf("write %q: %v", req, err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer to %q: %v", req, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func dialNode(t *testing.T, n *testNode) (net.Conn, *bufio.Reader) {
	t.Helper()
	c := testutil.Dial(t, n.addr)
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// Issue 9, item 1: request heads over 4 KiB were refused although the gateway sends up to 16 KiB.
func TestIssue9MaxHeaderSize(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	storeFile(t, n, "a.fid", "hello")
	big := "X-Big: " + strings.Repeat("a", 12<<10) + "\r\n"
	if resp, body := n.raw(t, "GET /dev1/a.fid HTTP/1.0\r\n"+big+"\r\n"); resp.StatusCode != 200 || body != "hello" {
		t.Errorf("12 KiB head with the default limit: %d %q, want 200 hello", resp.StatusCode, body)
	}
	small := startNode(t, func(c *Config) { c.MaxHeaderSize = 2 * conf.KiB })
	if resp, _ := small.raw(t, "GET /dev1/a.fid HTTP/1.0\r\n"+big+"\r\n"); resp.StatusCode != 431 {
		t.Errorf("12 KiB head over max_header_size 2KiB: %d, want 431", resp.StatusCode)
	}
}

// Issue 9, item 3: an HTTP/2.0 request line on HTTP/1 was served.
func TestIssue9RequestLine(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	storeFile(t, n, "a.fid", "hello")
	tests := []struct {
		line   string
		status int
	}{
		{"GET /dev1/a.fid HTTP/1.0", 200},
		{"GET http://evil.example/dev1/a.fid HTTP/1.0", 200},
		{"GET /dev1/a.fid HTTP/2.0", 505},
		{"GET /dev1/a.fid HTTP/0.9", 505},
		{"GET * HTTP/1.0", 400},
	}
	for _, tt := range tests {
		if resp, _ := n.raw(t, tt.line+"\r\n\r\n"); resp.StatusCode != tt.status {
			t.Errorf("%q: %d, want %d", tt.line, resp.StatusCode, tt.status)
		}
	}
}

// Issue 9, item 4: a request head with LF line endings got no answer until the read timeout.
func TestIssue9BareLFHead(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	storeFile(t, n, "a.fid", "hello")
	c, br := dialNode(t, n)
	for _, tt := range []struct{ req, body string }{
		{"GET /dev1/a.fid HTTP/1.1\nHost: x\n\n", "hello"},
		{"PUT /dev1/b.fid HTTP/1.1\nHost: x\nContent-Length: 3\n\na\n\n", ""},
		{"GET /dev1/b.fid HTTP/1.1\nHost: x\n\n", "a\n\n"},
	} {
		resp, body := exchange(t, c, br, tt.req)
		if resp.StatusCode >= 300 || tt.body != "" && body != tt.body {
			t.Errorf("%q: %d %q, want 2xx %q", tt.req, resp.StatusCode, body, tt.body)
		}
	}
	got, err := os.ReadFile(filepath.Join(n.docroot, "dev1", "b.fid"))
	if err != nil || string(got) != "a\n\n" {
		t.Errorf("stored body %q, %v; want %q", got, err, "a\n\n")
	}
}

// Issue 9, item 6: idle keep-alive connections held max_conns and new clients got 503.
func TestIssue9IdleConnectionMakesRoom(t *testing.T) {
	t.Parallel()
	n := startNode(t, func(c *Config) { c.MaxConns = 1 })
	storeFile(t, n, "a.fid", "hello")
	const req = "GET /dev1/a.fid HTTP/1.1\r\nHost: x\r\n\r\n"
	c1, b1 := dialNode(t, n)
	exchange(t, c1, b1, req)
	// fasthttp marks a connection idle just after its answer is written.
	waitFor(t, "an idle connection", func() bool { return n.srv.conns.Stats().Idle == 1 })
	c2, b2 := dialNode(t, n)
	if resp, body := exchange(t, c2, b2, req); resp.StatusCode != 200 || body != "hello" {
		t.Errorf("second client while the first is idle: %d %q, want 200 hello", resp.StatusCode, body)
	}
	c1.SetReadDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck // bound on a hung test
	if _, err := c1.Read(make([]byte, 1)); err == nil {
		t.Errorf("the idle connection was not closed")
	}
}
