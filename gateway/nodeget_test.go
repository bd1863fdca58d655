package gateway

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestAppendGet(t *testing.T) {
	for _, tc := range []struct {
		name  string
		head  bool
		agent string
		ph    passHeaders
		want  string
	}{
		{"plain GET", false, "mogway", passHeaders{},
			"GET /dev1/0/000/000/0000000031.fid HTTP/1.1\r\nHost: 127.0.0.3:7500\r\nUser-Agent: mogway\r\n\r\n"},
		{"HEAD without agent", true, "", passHeaders{},
			"HEAD /dev1/0/000/000/0000000031.fid HTTP/1.1\r\nHost: 127.0.0.3:7500\r\n\r\n"},
		{"range and validators", false, "gw", passHeaders{rangeHdr: "bytes=0-9", inm: `"abc"`, ims: "Sat, 01 Jan 2000 00:00:00 GMT"},
			"GET /dev1/0/000/000/0000000031.fid HTTP/1.1\r\nHost: 127.0.0.3:7500\r\nUser-Agent: gw\r\nRange: bytes=0-9\r\n" +
				"If-None-Match: \"abc\"\r\nIf-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(appendGet(nil, "/dev1/0/000/000/0000000031.fid", "127.0.0.3:7500", tc.agent, tc.head, tc.ph))
			if got != tc.want {
				t.Errorf("appendGet = %q, want %q", got, tc.want)
			}
			// What fasthttp's server reads back from it.
			var req fasthttp.Request
			if err := req.Read(bufio.NewReader(strings.NewReader(got))); err != nil {
				t.Fatalf("request does not parse: %v", err)
			}
			if string(req.Header.Peek("Range")) != tc.ph.rangeHdr || string(req.Header.Peek("If-None-Match")) != tc.ph.inm {
				t.Errorf("parsed Range %q, If-None-Match %q; want %q, %q", req.Header.Peek("Range"),
					req.Header.Peek("If-None-Match"), tc.ph.rangeHdr, tc.ph.inm)
			}
		})
	}
}

// scriptNode is a raw TCP server on 127.0.0.5 that answers each request head it reads with the next
// of its answers, after delay. An answer ending in "\x00close" is sent without it and the connection
// is closed after it; at each "\x00pause" in an answer the node waits delay again.
type scriptNode struct {
	addr     string
	accepted atomic.Int64
	mu       sync.Mutex
	answers  []string
	delay    time.Duration
}

func startScriptNode(t *testing.T, delay time.Duration, answers ...string) *scriptNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.5:0")
	if err != nil {
		t.Fatal(err)
	}
	sn := &scriptNode{addr: ln.Addr().String(), answers: answers, delay: delay}
	acceptLoop(t, ln, &sn.accepted, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		for readHead(br) {
			time.Sleep(sn.delay)
			sn.mu.Lock()
			if len(sn.answers) == 0 {
				sn.mu.Unlock()
				return
			}
			a := sn.answers[0]
			sn.answers = sn.answers[1:]
			sn.mu.Unlock()
			a, closeAfter := strings.CutSuffix(a, "\x00close")
			for i, part := range strings.Split(a, "\x00pause") {
				if i > 0 {
					time.Sleep(sn.delay)
				}
				if _, err := io.WriteString(c, part); err != nil {
					return
				}
			}
			if closeAfter {
				return
			}
		}
	})
	return sn
}

func testNode(addr string) *node {
	return newNodes(nodeOptions{connect: 5 * time.Second, idle: 30 * time.Second, maxConns: 8, serverHdr: "mogway"}).get(addr)
}

func answer200(body string) string {
	return "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// readAll reads resp's body, streamed or whole.
func readAll(t *testing.T, resp *fasthttp.Response) []byte {
	t.Helper()
	if bs := resp.BodyStream(); bs != nil {
		b, err := io.ReadAll(bs)
		if err != nil {
			t.Fatalf("reading the streamed body: %v", err)
		}
		return b
	}
	return append([]byte(nil), resp.Body()...)
}

// scriptedNode starts a scriptNode with delay and answers, and returns it with a node for it made by
// testNode and a response released when the test ends.
func scriptedNode(t *testing.T, delay time.Duration, answers ...string) (*scriptNode, *node, *fasthttp.Response) {
	t.Helper()
	sn := startScriptNode(t, delay, answers...)
	resp := fasthttp.AcquireResponse()
	t.Cleanup(func() { fasthttp.ReleaseResponse(resp) })
	return sn, testNode(sn.addr), resp
}

// wantGet GETs uri from n into resp and fails the test unless it answers with the body want.
func wantGet(t *testing.T, n *node, resp *fasthttp.Response, uri, want string) {
	t.Helper()
	if err := n.get(&getRequest{uri: uri, timeout: 10 * time.Second}, resp); err != nil {
		t.Fatalf("GET %s = %v, want %.40q", uri, err, want)
	}
	if got := readAll(t, resp); string(got) != want {
		t.Fatalf("GET %s = %d bytes %.40q, want %d bytes %.40q", uri, len(got), got, len(want), want)
	}
}

// getResumed GETs /a from n into resp with an early deadline early from now, fails the test unless
// the answer is late for it (a *slowGet), and resumes the GET: resp then holds the answer.
func getResumed(t *testing.T, n *node, resp *fasthttp.Response, early time.Duration) {
	t.Helper()
	err := n.get(&getRequest{uri: "/a", timeout: 10 * time.Second, early: time.Now().Add(early)}, resp)
	var slow *slowGet
	if !errors.As(err, &slow) {
		t.Fatalf("get with an early deadline before the whole answer = %v, want a *slowGet", err)
	}
	if err := slow.resume(); err != nil {
		t.Fatalf("resume = %v, want the answer", err)
	}
}

func TestNodeGetEarlyThenResume(t *testing.T) {
	t.Parallel()
	sn, n, resp := scriptedNode(t, 300*time.Millisecond, answer200("slow answer"), answer200("next"))
	getResumed(t, n, resp, 20*time.Millisecond)
	if resp.StatusCode() != 200 || string(readAll(t, resp)) != "slow answer" {
		t.Fatalf("resumed answer = %d %q, want 200 \"slow answer\"", resp.StatusCode(), resp.Body())
	}
	// The connection went back to the pool clean: the next GET uses it.
	wantGet(t, n, resp, "/b", "next")
	if a := sn.accepted.Load(); a != 1 {
		t.Errorf("connections accepted = %d, want 1 (the resumed one reused)", a)
	}
}

// An answer whose head and the first part of its body came by the early deadline, the rest later, is
// read whole when resumed, from where the first read stopped.
func TestNodeGetEarlyMidAnswer(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("0123456789", 2000)
	for _, tc := range []struct{ name, answer string }{
		{"in the body", "HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n" + body[:7000] + "\x00pause" + body[7000:]},
		{"in the head", "HTTP/1.1 200 OK\r\nContent-Le\x00pause" + "ngth: 20000\r\n\r\n" + body},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sn, n, resp := scriptedNode(t, 300*time.Millisecond, tc.answer, answer200("next"))
			getResumed(t, n, resp, 450*time.Millisecond)
			if got := readAll(t, resp); resp.StatusCode() != 200 || string(got) != body {
				t.Fatalf("resumed answer = %d with %d bytes, want 200 with the %d bytes", resp.StatusCode(), len(got), len(body))
			}
			wantGet(t, n, resp, "/b", "next")
			if a := sn.accepted.Load(); a != 1 {
				t.Errorf("connections accepted = %d, want 1", a)
			}
		})
	}
}

// A GET that waits for a free connection (the node has its most, busy) waits only until its early
// deadline, not the pool's wait of storage_connect, and sends nothing (errEarlyConnect).
func TestNodeGetEarlyWaitingForConnection(t *testing.T) {
	t.Parallel()
	sn := startScriptNode(t, 300*time.Millisecond, answer200("first"), answer200("second"))
	n := newNodes(nodeOptions{connect: time.Minute, idle: 30 * time.Second, maxConns: 1, serverHdr: "mogway"}).get(sn.addr)
	first := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(first)
	err := n.get(&getRequest{uri: "/a", timeout: 10 * time.Second, early: time.Now().Add(20 * time.Millisecond)}, first)
	var slow *slowGet
	if !errors.As(err, &slow) {
		t.Fatalf("first GET = %v, want a *slowGet holding the node's one connection", err)
	}
	second := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(second)
	if err := n.get(&getRequest{uri: "/b", timeout: 10 * time.Second, early: time.Now().Add(50 * time.Millisecond)}, second); err != errEarlyConnect {
		t.Fatalf("GET while the one connection is busy = %v, want errEarlyConnect by its early deadline", err)
	}
	if err := slow.resume(); err != nil || string(readAll(t, first)) != "first" {
		t.Fatalf("first GET resumed = %v %q, want \"first\"", err, first.Body())
	}
	wantGet(t, n, second, "/b", "second") // started over: the first try sent nothing
}

// A GET whose early deadline passes before it has a connection sends nothing and says so
// (errEarlyConnect): its caller starts it over without the early deadline.
func TestNodeGetEarlyBeforeConnected(t *testing.T) {
	t.Parallel()
	_, n, resp := scriptedNode(t, 0, answer200("answer"))
	if err := n.get(&getRequest{uri: "/a", timeout: 10 * time.Second, early: time.Now().Add(-time.Millisecond)}, resp); err != errEarlyConnect {
		t.Fatalf("get whose early deadline passed = %v, want errEarlyConnect", err)
	}
	wantGet(t, n, resp, "/a", "answer") // started over: the first try sent nothing
}

func TestNodeGetBodies(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("0123456789abcdef", (maxBufferedBody+1000)/16)
	for _, tc := range []struct {
		name   string
		answer string
		want   string
		reused bool // the connection serves the next request
	}{
		{"small, read whole", answer200("hello"), "hello", true},
		{"long, streamed", answer200(big), big, true},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world", false},
		{"until close", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto the end\x00close", "to the end", false},
		{"connection: close", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok\x00close", "ok", false},
		{"304, no body", "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n", "", true},
		{"103, the final answer still to come", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sn, n, resp := scriptedNode(t, 0, tc.answer, answer200("next"))
			wantGet(t, n, resp, "/a", tc.want)
			resp.Reset() // closes a streamed body: its connection goes back or is closed
			wantGet(t, n, resp, "/b", "next")
			want := int64(2)
			if tc.reused {
				want = 1
			}
			if a := sn.accepted.Load(); a != want {
				t.Errorf("connections accepted = %d, want %d", a, want)
			}
		})
	}
}

// A streamed body released before its end closes its connection: the next answer on it would
// begin with the rest of this one.
func TestNodeGetUnreadBodyClosesConnection(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 2*maxBufferedBody)
	sn, n, resp := scriptedNode(t, 0, answer200(big), answer200("next"))
	if err := n.get(&getRequest{uri: "/a", timeout: 10 * time.Second}, resp); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.BodyStream(), make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	resp.Reset()
	wantGet(t, n, resp, "/b", "next")
	if a := sn.accepted.Load(); a != 2 {
		t.Errorf("connections accepted = %d, want 2", a)
	}
}
