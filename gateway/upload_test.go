package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
)

func put(t *testing.T, url string, body io.Reader, size int64, hdr ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("PUT", url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := testClient().Do(req)
	if err != nil {
		t.Fatalf("PUT %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func writeRoute() Route {
	return Route{Prefix: "/u/", Domain: "d", Class: "c1", Methods: []string{"GET", "PUT", "DELETE"},
		Allow: []string{"127.0.0.0/8"}}
}

func TestUploadAndDelete(t *testing.T) {
	t.Parallel()
	node := startStorage(t, "127.0.0.3")
	ft := newFakeTracker()
	ft.opens = []Dest{
		{DevID: 9, Path: "http://" + deadAddr(t, "127.0.0.2") + fidPath(101)},
		{DevID: 1, Path: "http://" + node.addr + fidPath(101)},
	}
	g := startGateway(t, trackerConfig(writeRoute()), Deps{Tracker: ft})
	data := pattern(3<<20 + 7)
	code, body := put(t, g.base+"/u/photos/a.jpg", bytes.NewReader(data), int64(len(data)))
	if code != 201 || len(body) != 0 {
		t.Fatalf("PUT = %d %q, want 201 and an empty body", code, body)
	}
	onDisk, err := os.ReadFile(filepath.Join(node.docroot, filepath.FromSlash(fidPath(101))))
	if err != nil || !bytes.Equal(onDisk, data) {
		t.Fatalf("stored copy = %d bytes, %v; want the %d bytes sent", len(onDisk), err, len(data))
	}
	ft.mu.Lock()
	closes := append([]Close(nil), ft.closes...)
	ft.mu.Unlock()
	want := Close{Domain: "d", Key: "photos/a.jpg", Class: "c1", Fid: 101, DevID: 1,
		Path: "http://" + node.addr + fidPath(101), Size: int64(len(data))}
	if len(closes) != 1 || closes[0] != want {
		t.Fatalf("create_close = %+v, want [%+v]", closes, want)
	}
	code, _, got, err := get(t, "GET", g.base+"/u/photos/a.jpg")
	if err != nil || code != 200 || !bytes.Equal(got, data) {
		t.Fatalf("GET after PUT = %d, %d bytes, %v", code, len(got), err)
	}

	if code, _, _, err := get(t, "DELETE", g.base+"/u/photos/a.jpg"); err != nil || code != 204 {
		t.Errorf("DELETE = %d, %v; want 204", code, err)
	}
	if code, _, _, err := get(t, "GET", g.base+"/u/photos/a.jpg"); err != nil || code != 404 {
		t.Errorf("GET after DELETE = %d, %v; want 404 (the cached paths must go)", code, err)
	}
	if code, _, _, err := get(t, "DELETE", g.base+"/u/photos/a.jpg"); err != nil || code != 204 {
		t.Errorf("DELETE of a missing key = %d, %v; want 204", code, err)
	}

	// Empty body.
	ft.mu.Lock()
	ft.opens = []Dest{{DevID: 1, Path: "http://" + node.addr + fidPath(102)}}
	ft.mu.Unlock()
	if code, body := put(t, g.base+"/u/empty", bytes.NewReader(nil), 0); code != 201 {
		t.Errorf("PUT empty = %d %q, want 201", code, body)
	}
}

func TestUploadRefusals(t *testing.T) {
	t.Parallel()
	node := startStorage(t, "127.0.0.3")
	closing := startFault(t, "127.0.0.4", fault500, nil)
	ft := newFakeTracker()
	ft.opens = []Dest{{DevID: 1, Path: "http://" + node.addr + fidPath(201)}}
	cfg := trackerConfig(
		writeRoute(),
		Route{Prefix: "/far/", Domain: "d", Methods: []string{"PUT"}, Allow: []string{"10.0.0.0/8"}},
		Route{Prefix: "/tok/", Domain: "d", Methods: []string{"PUT", "DELETE"}, Token: "s3cret"},
	)
	cfg.Limits.MaxUploadSize = 1024
	cfg.Limits.UploadReplayBuffer = 4 // smaller than the bodies: no failed destination is replaced
	g := startGateway(t, cfg, Deps{Tracker: ft})
	small := []byte("hello")
	if code, _ := put(t, g.base+"/far/k", bytes.NewReader(small), 5); code != 403 {
		t.Errorf("PUT from outside allow = %d, want 403", code)
	}
	if code, _ := put(t, g.base+"/tok/k", bytes.NewReader(small), 5); code != 401 {
		t.Errorf("PUT without token = %d, want 401", code)
	}
	if code, _ := put(t, g.base+"/tok/k", bytes.NewReader(small), 5, "Authorization", "Bearer nope"); code != 401 {
		t.Errorf("PUT with a wrong token = %d, want 401", code)
	}
	if code, _ := put(t, g.base+"/tok/k", bytes.NewReader(small), 5, "Authorization", "Bearer s3cret"); code != 201 {
		t.Errorf("PUT with the token = %d, want 201", code)
	}
	if code, _ := put(t, g.base+"/u/big", bytes.NewReader(make([]byte, 2048)), 2048); code != 413 {
		t.Errorf("PUT over max_upload_size = %d, want 413", code)
	}
	if code, _ := put(t, g.base+"/u/chunked", io.NopCloser(bytes.NewReader(small)), -1); code != 411 {
		t.Errorf("PUT without Content-Length = %d, want 411", code)
	}
	// The destination answers 500 after the body was sent: nothing is committed.
	ft.mu.Lock()
	ft.opens = []Dest{{DevID: 2, Path: "http://" + closing.addr + fidPath(202)},
		{DevID: 1, Path: "http://" + node.addr + fidPath(202)}}
	nCloses := len(ft.closes)
	ft.mu.Unlock()
	if code, _ := put(t, g.base+"/u/k", bytes.NewReader(small), 5); code != 502 {
		t.Errorf("PUT to a failing destination = %d, want 502", code)
	}
	ft.mu.Lock()
	if len(ft.closes) != nCloses {
		t.Errorf("create_close called after a failed PUT: %+v", ft.closes[nCloses:])
	}
	ft.mu.Unlock()
}

func TestUploadExpectContinue(t *testing.T) {
	t.Parallel()
	node := startStorage(t, "127.0.0.3")
	ft := newFakeTracker()
	ft.opens = []Dest{{DevID: 1, Path: "http://" + node.addr + fidPath(301)}}
	cfg := trackerConfig(writeRoute(), Route{Prefix: "/tok/", Domain: "d", Methods: []string{"PUT"}, Token: "s3cret"})
	cfg.Limits.MaxUploadSize = 1024
	g := startGateway(t, cfg, Deps{Tracker: ft})
	addr := strings.TrimPrefix(g.base, "http://")
	expect := func(line, hdr string) int {
		return rawGet(t, addr, line, "Content-Length: 5\r\nExpect: 100-continue\r\n"+hdr)
	}
	if code := expect("PUT /u/k HTTP/1.1", ""); code != 100 {
		t.Errorf("PUT with Expect = %d, want 100 Continue", code)
	}
	// Issue 9: a PUT too large gets its final answer, 413, from the head, with or without Expect.
	if code := rawGet(t, addr, "PUT /u/k HTTP/1.1", "Content-Length: 5000\r\nExpect: 100-continue\r\n"); code != 413 {
		t.Errorf("PUT over max_upload_size with Expect = %d, want 413", code)
	}
	if code := expect("PUT /tok/k HTTP/1.1", ""); code != 417 {
		t.Errorf("PUT without token with Expect = %d, want 417", code)
	}
	if code := expect("PUT /tok/k HTTP/1.1", "Authorization: Bearer s3cret\r\n"); code != 100 {
		t.Errorf("PUT with token and Expect = %d, want 100", code)
	}
	if n := ft.calls.Load(); n != 0 {
		t.Errorf("tracker calls = %d, want 0 (no body was sent)", n)
	}
}

// Issue 9: a PUT announcing more than max_upload_size is refused from its head, before a byte of
// the body is sent, and the connection is closed (the body is never read).
func TestUploadOversizeRefusedFromHead(t *testing.T) {
	t.Parallel()
	ft := newFakeTracker()
	cfg := trackerConfig(writeRoute())
	cfg.Limits.MaxUploadSize = 1024
	g := startGateway(t, cfg, Deps{Tracker: ft})
	for _, hdr := range []string{
		"Content-Length: 2147483648\r\n",
		"Content-Length: 1025\r\n",
		"Content-Length: 2147483648\r\n" + oversizeHeader + ": 1\r\n",
	} {
		c, err := net.Dial("tcp", strings.TrimPrefix(g.base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		// The client sends the head and waits: the answer must not need a byte of the body (before
		// the fix it waited for 8 KiB of body, until client_read passed).
		c.SetDeadline(time.Now().Add(20 * time.Second))
		fmt.Fprintf(c, "PUT /u/big HTTP/1.1\r\nHost: x\r\n%s\r\n", hdr)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("PUT with %q: reading the answer: %v", hdr, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 413 || !resp.Close {
			t.Errorf("PUT with %q = %d (close %v), want 413 and Connection: close", hdr, resp.StatusCode, resp.Close)
		}
		c.Close()
	}
	// A length within the limit is not marked, even when the client sends the marker itself.
	node := startStorage(t, "127.0.0.3")
	ft.mu.Lock()
	ft.opens = []Dest{{DevID: 1, Path: "http://" + node.addr + fidPath(401)}}
	ft.mu.Unlock()
	if code, body := put(t, g.base+"/u/ok", bytes.NewReader([]byte("hello")), 5, oversizeHeader, "99999"); code != 201 {
		t.Errorf("PUT of 5 bytes with a client-sent %s = %d %q, want 201", oversizeHeader, code, body)
	}
	if n := ft.calls.Load(); n != 2 {
		t.Errorf("tracker calls = %d, want 2 (only the upload within the limit)", n)
	}
}

// Issue 9: a storage node that fails mid-body. While every byte read from the client is still
// kept (a body within limits.upload_replay_buffer) the next destination gets the whole body again;
// past that the upload fails with 502 and nothing is committed.
func TestUploadDestinationFailsMidBody(t *testing.T) {
	t.Parallel()
	node := startStorage(t, "127.0.0.3")
	cut := startFault(t, "127.0.0.4", faultCutBody, make([]byte, 64<<10)) // reads 64 KiB, then closes
	ft := newFakeTracker()
	cfg := trackerConfig(writeRoute())
	cfg.Limits.UploadReplayBuffer = 512 << 10
	g := startGateway(t, cfg, Deps{Tracker: ft})
	dests := func(fid int64) []Dest {
		return []Dest{{DevID: 2, Path: "http://" + cut.addr + fidPath(fid)},
			{DevID: 1, Path: "http://" + node.addr + fidPath(fid)}}
	}

	// Within the replay buffer: stored whole on the second destination.
	ft.mu.Lock()
	ft.opens = dests(501)
	ft.mu.Unlock()
	small := pattern(300 << 10)
	if code, body := put(t, g.base+"/u/small", bytes.NewReader(small), int64(len(small))); code != 201 {
		t.Fatalf("PUT of %d bytes with the first destination failing mid-body = %d %q, want 201", len(small), code, body)
	}
	onDisk, err := os.ReadFile(filepath.Join(node.docroot, filepath.FromSlash(fidPath(501))))
	if err != nil || !bytes.Equal(onDisk, small) {
		t.Fatalf("stored copy = %d bytes, %v; want the %d bytes sent", len(onDisk), err, len(small))
	}
	ft.mu.Lock()
	closes := append([]Close(nil), ft.closes...)
	ft.mu.Unlock()
	if len(closes) != 1 || closes[0].DevID != 1 || closes[0].Size != int64(len(small)) {
		t.Fatalf("create_close = %+v, want one for devid 1 with size %d", closes, len(small))
	}

	// A destination answering an error is replaced the same way.
	failing := startFault(t, "127.0.0.4", fault500, nil)
	ft.mu.Lock()
	ft.opens = []Dest{{DevID: 2, Path: "http://" + failing.addr + fidPath(503)},
		{DevID: 1, Path: "http://" + node.addr + fidPath(503)}}
	ft.mu.Unlock()
	if code, body := put(t, g.base+"/u/answered", bytes.NewReader(small), int64(len(small))); code != 201 {
		t.Fatalf("PUT with the first destination answering 500 = %d %q, want 201", code, body)
	}
	ft.mu.Lock()
	ft.closes = nil
	ft.mu.Unlock()

	// Larger than the replay buffer: 502, no create_close, nothing on the second node. The cut
	// node reads 64 KiB before it closes, so with a 4 KiB buffer the gateway has always dropped
	// bytes it would need (with 512 KiB, loopback socket buffers decide whether the failure is
	// seen before the buffer is exceeded).
	small4k := trackerConfig(writeRoute())
	small4k.Limits.UploadReplayBuffer = 4 << 10
	g2 := startGateway(t, small4k, Deps{Tracker: ft})
	ft.mu.Lock()
	ft.opens = dests(502)
	ft.mu.Unlock()
	big := pattern(4 << 20)
	code, body := put(t, g2.base+"/u/big", bytes.NewReader(big), int64(len(big)))
	if code != 502 {
		t.Errorf("PUT of %d bytes with the destination failing mid-body = %d %q, want 502", len(big), code, body)
	}
	ft.mu.Lock()
	if len(ft.closes) != 0 {
		t.Errorf("create_close after a failed upload: %+v", ft.closes)
	}
	ft.mu.Unlock()
	if _, err := os.Stat(filepath.Join(node.docroot, filepath.FromSlash(fidPath(502)))); !os.IsNotExist(err) {
		t.Errorf("the second destination has a copy of the failed upload (stat: %v)", err)
	}
}

// TestReplayBody pins which failures can be replayed: everything read must still be kept.
func TestReplayBody(t *testing.T) {
	data := pattern(100)
	read := func(b *replayBody, n int) []byte {
		t.Helper()
		p := make([]byte, n)
		got, err := io.ReadFull(b, p)
		if err != nil && err != io.EOF {
			t.Fatalf("Read: %v", err)
		}
		return p[:got]
	}
	b := newReplayBody(&bodyBytes{b: data}, 100, 60)
	if got := read(b, 40); !bytes.Equal(got, data[:40]) || !b.rewind() {
		t.Fatalf("after 40 of 100 bytes with 60 kept: read %d bytes, rewind false", len(got))
	}
	if got := read(b, 50); !bytes.Equal(got, data[:50]) {
		t.Fatalf("replayed read = %q, want %q", got, data[:50])
	}
	if got := read(b, 50); !bytes.Equal(got, data[50:]) || b.rewind() || !b.complete() {
		t.Fatalf("after the whole body past the kept 60 bytes: got %d bytes, rewind true or not complete", len(got))
	}
	short := newReplayBody(&bodyBytes{b: data[:10]}, 100, 60)
	if _, err := io.ReadAll(short); !errors.Is(err, errShortUpload) || !errors.Is(short.err, errShortUpload) {
		t.Errorf("a body shorter than its length: err %v, recorded %v; want errShortUpload", err, short.err)
	}
}

// A client whose body ends early, or stalls for client_read, gets 400 or 408; nothing is committed
// and no storage node is blamed (the next destination is not tried).
func TestUploadClientBodyFails(t *testing.T) {
	t.Parallel()
	node := startStorage(t, "127.0.0.3")
	ft := newFakeTracker()
	cfg := trackerConfig(writeRoute())
	// Long enough that a loaded machine never pauses the sending client for this long (the short
	// body must end in EOF, not a timeout); the stalled case waits for it once.
	cfg.Timeouts.ClientRead = conf.Duration(2 * time.Second)
	g := startGateway(t, cfg, Deps{Tracker: ft})
	ft.mu.Lock()
	ft.opens = []Dest{{DevID: 1, Path: "http://" + node.addr + fidPath(601)},
		{DevID: 1, Path: "http://" + node.addr + fidPath(602)}}
	ft.mu.Unlock()
	for _, tc := range []struct {
		name  string
		close bool // the client closes its sending side after 3 MiB; otherwise it stalls
		want  int
	}{
		{"short body", true, 400},
		{"stalled body", false, 408},
	} {
		c, err := net.Dial("tcp", strings.TrimPrefix(g.base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		fmt.Fprintf(c, "PUT /u/%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", strings.ReplaceAll(tc.name, " ", "-"), 4<<20)
		c.Write(pattern(3 << 20))
		if tc.close {
			c.(*net.TCPConn).CloseWrite()
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: reading the answer: %v", tc.name, err)
		}
		resp.Body.Close()
		c.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: PUT = %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if len(ft.closes) != 0 {
		t.Errorf("create_close after failed bodies: %+v", ft.closes)
	}
	for _, fid := range []int64{601, 602} {
		if _, err := os.Stat(filepath.Join(node.docroot, filepath.FromSlash(fidPath(fid)))); !os.IsNotExist(err) {
			t.Errorf("fid %d stored after a failed body (stat: %v)", fid, err)
		}
	}
}
