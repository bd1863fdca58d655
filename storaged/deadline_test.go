package storaged

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/testutil"
)

// Kept-alive GETs reuse the deadlines armed for the first request: fasthttp asks for three per
// request (the keep-alive wait's, the head's and the answer's), each a runtime timer update when
// armed at once. The first request arms its read and its write deadline; the following ones arm
// none while the armed deadlines are within an eighth of the timeouts (7.5 s of the defaults).
func TestGetKeptAliveArmsNoDeadline(t *testing.T) {
	t.Parallel()
	ac := &testutil.ArmCounter{}
	n := startNodeOn(t, nil, nil, func(ln net.Listener) net.Listener { ac.Listener = ln; return ac })
	storeFile(t, n, "a.fid", "hello")
	c, br := dialNode(t, n)
	const req = "GET /dev1/a.fid HTTP/1.1\r\nHost: x\r\n\r\n"
	exchange(t, c, br, req)
	first := ac.Arms()
	const requests = 20
	for range requests {
		if resp, body := exchange(t, c, br, req); resp.StatusCode != 200 || body != "hello" {
			t.Fatalf("GET = %d %q, want 200 hello", resp.StatusCode, body)
		}
	}
	// The server arms the next keep-alive wait's deadline (if at all) before its read, after the
	// answer was written: with the last answer read, its count for the requests is complete.
	if got := ac.Arms() - first; got > 1 {
		t.Errorf("%d kept-alive GETs armed %d deadlines, want at most 1 (the first GET armed %d)",
			requests, got, first)
	}
}

// readUntilClosed reads c until the server closes it and returns how long that took; bound only
// keeps a broken server from hanging the test.
func readUntilClosed(t *testing.T, c net.Conn, bound time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(bound)) //nolint:errcheck // the read below fails instead
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept the connection open for %v", bound)
	}
	return time.Since(start)
}

// Deadlines armed late still cut clients off: an idle keep-alive connection after idle_timeout, a
// client that stops in the middle of a request head after read_timeout (not the longer
// idle_timeout armed for the wait before it), and one that stops in the middle of a PUT body after
// read_timeout. Deadlines never fire early, so each cut comes no sooner than its timeout.
func TestCoarseDeadlinesStillCut(t *testing.T) {
	t.Parallel()
	const short, long = 300 * time.Millisecond, time.Minute
	const req = "GET /dev1/a.fid HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, tc := range []struct {
		name         string
		read, idle   time.Duration
		then         string // sent after a first GET on the connection
		want         time.Duration
		wantNoCreate bool
	}{
		{name: "idle keep-alive", read: long, idle: short, want: short},
		{name: "stopped mid-head", read: short, idle: long, then: "GET /dev1/a.fid HTTP/1.1\r\nHo", want: short},
		{name: "stopped mid-body", read: short, idle: long, want: short, wantNoCreate: true,
			then: "PUT /dev1/b.fid HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := startNode(t, func(c *Config) {
				c.ReadTimeout, c.IdleTimeout = conf.Duration(tc.read), conf.Duration(tc.idle)
			})
			storeFile(t, n, "a.fid", "hello")
			c, br := dialNode(t, n)
			exchange(t, c, br, req)
			if _, err := io.WriteString(c, tc.then); err != nil {
				t.Fatal(err)
			}
			// The bound is far below the longer timeout: a cut by that one fails the test.
			if took := readUntilClosed(t, c, 20*time.Second); took < tc.want {
				t.Errorf("connection closed after %v, before the timeout (%v)", took, tc.want)
			}
			if tc.wantNoCreate {
				if got := n.srv.Stats().Created; got != 0 {
					t.Errorf("a PUT cut off mid-body stored %d files", got)
				}
			}
		})
	}
}

// An upload whose body pauses for less than read_timeout each time streams to the end, however long
// it takes in all: the read deadline follows the body. (fasthttp reads the first 8 KiB of a body
// with the head, under the head's deadline, so the pauses come after them.)
func TestPutPausesWithinReadTimeout(t *testing.T) {
	t.Parallel()
	// Each pause leaves 1.75s of read_timeout for the test's own wake-up under load; together the
	// pauses (2.5s) outlast read_timeout even armed an eighth late (2.25s), so a deadline armed once
	// for the whole body would cut it.
	const timeout, pause, pieces, head = 2 * time.Second, 250 * time.Millisecond, 10, 8 << 10
	n := startNode(t, func(c *Config) { c.ReadTimeout = conf.Duration(timeout) })
	c, br := dialNode(t, n)
	req := fmt.Sprintf("PUT /dev1/p.fid HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s",
		head+pieces, strings.Repeat("x", head))
	for range pieces {
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		time.Sleep(pause)
		req = "x"
	}
	if resp, _ := exchange(t, c, br, "x"); resp.StatusCode != 200 {
		t.Errorf("PUT paused %d times for %v = %d, want 200", pieces, pause, resp.StatusCode)
	}
	if got := n.srv.Stats().Created; got != 1 {
		t.Errorf("stored %d files, want 1", got)
	}
}

// write_timeout cuts a client that does not read its answer: the node closes the connection once
// the timeout has passed (never before), short of the whole file.
func TestWriteTimeoutCutsNonReader(t *testing.T) {
	t.Parallel()
	// The file is far larger than the socket buffers of both ends, so the answer cannot finish
	// while the client reads nothing.
	const timeout, size = 500 * time.Millisecond, 64 << 20
	n := startNode(t, func(c *Config) { c.WriteTimeout = conf.Duration(timeout) })
	f, err := os.Create(filepath.Join(n.docroot, "dev1", "big.fid"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil { // sparse: no 64 MiB written to the disk
		t.Fatal(err)
	}
	f.Close()
	c, _ := dialNode(t, n)
	start := time.Now()
	if _, err := io.WriteString(c, "GET /dev1/big.fid HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// Nothing is read until the node has closed the connection: reading would let the answer finish.
	testutil.WaitFor(t, 20*time.Second, "the GET to start", func() bool { return n.srv.Stats().Gets == 1 })
	testutil.WaitFor(t, 20*time.Second, "the node to close the connection", func() bool { return n.srv.conns.Stats().Open == 0 })
	if took := time.Since(start); took < timeout {
		t.Errorf("connection closed after %v, before write_timeout (%v)", took, timeout)
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck // the read below fails instead
	got, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection was not closed: %d bytes read", got)
	}
	if got >= size {
		t.Errorf("read %d bytes after the cut, want fewer than the %d of the file", got, size)
	}
}
