package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/clustertest"
	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/storaged"
	"github.com/mogway/mogway/tracker/mogproto"
)

// storageNode is a real storaged on a loopback address.
type storageNode struct {
	addr    string
	docroot string
	srv     *storaged.Server
}

// startStorage starts a storage node with device dev1 on ip (e.g. "127.0.0.2").
func startStorage(t *testing.T, ip string) *storageNode {
	t.Helper()
	return startStorageWith(t, ip, nil)
}

// startStorageWith is startStorage with mutate applied to the node's configuration.
func startStorageWith(t *testing.T, ip string, mutate func(*storaged.Config)) *storageNode {
	t.Helper()
	return startStorageOn(t, ip, mutate, nil)
}

// startFrozenStorage is startStorage behind f (clustertest.Freezer): f.Freeze makes the node hang.
func startFrozenStorage(t *testing.T, ip string, f *clustertest.Freezer) *storageNode {
	t.Helper()
	return startStorageOn(t, ip, nil, f.Listener)
}

// startStorageOn is startStorageWith serving on wrap(listener) when wrap is not nil.
func startStorageOn(t *testing.T, ip string, mutate func(*storaged.Config), wrap func(net.Listener) net.Listener) *storageNode {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "dev1"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := storaged.Config{Docroot: root, Listen: ip + ":0", MgmtListen: "off", UsageInterval: conf.Duration(time.Hour)}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := storaged.New(cfg, nil)
	if err != nil {
		t.Fatalf("storaged.New: %v", err)
	}
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatalf("listen %s: %v", ip, err)
	}
	addr := ln.Addr().String()
	if wrap != nil {
		ln = wrap(ln)
	}
	testutil.Run(t, "storage node "+addr, func(ctx context.Context) error { return srv.Serve(ctx, ln, nil) })
	t.Cleanup(func() {
		if t.Failed() {
			st, _ := json.Marshal(srv.Stats())
			t.Logf("storage node %s: %s", addr, st)
		}
	})
	// Serve writes each device's usage file, with an fsync, before it reads a request; the kernel
	// meanwhile accepts connections, and a request waits in the queue. Under load the fsync took
	// seconds, and a test's first request through the gateway ran past storage_first_byte (504) or
	// its resume past storage_stall, with the node's Gets at 0. The file appears (renamed into
	// place) once written: wait for it, so a test starts with a node that answers.
	usage := filepath.Join(root, "dev1", "usage")
	testutil.WaitFor(t, clustertest.Timeout, "the storage node's first usage file", func() bool {
		_, err := os.Stat(usage)
		return err == nil
	})
	return &storageNode{addr: addr, docroot: root, srv: srv}
}

// fidPath is the device path of a fid on dev1.
func fidPath(fid int64) string {
	s := fmt.Sprintf("%010d", fid)
	return fmt.Sprintf("/dev1/%s/%s/%s/%s.fid", s[0:1], s[1:4], s[4:7], s)
}

// put stores data as fid on the node's disk and returns its URL.
func (n *storageNode) put(t *testing.T, fid int64, data []byte) string {
	t.Helper()
	p := filepath.Join(n.docroot, filepath.FromSlash(fidPath(fid)))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return "http://" + n.addr + fidPath(fid)
}

// fakeTracker is an in-memory Tracker: keys map to path lists; calls are counted.
type fakeTracker struct {
	mu      sync.Mutex
	paths   map[string][]string // domain/key -> paths
	err     map[string]error    // domain/key -> error to return from GetPaths
	all     error               // returned by every call when set
	opens   []Dest              // destinations offered by CreateOpen
	closes  []Close
	deletes []string
	nextFid int64
	calls   atomic.Int64
	gate    chan struct{} // when set, GetPaths waits for it
}

func newFakeTracker() *fakeTracker {
	return &fakeTracker{paths: map[string][]string{}, err: map[string]error{}, nextFid: 100}
}

func (f *fakeTracker) set(domain, key string, paths ...string) {
	f.mu.Lock()
	f.paths[domain+"/"+key] = paths
	f.mu.Unlock()
}

func (f *fakeTracker) GetPaths(ctx context.Context, domain, key string, noverify bool) ([]string, error) {
	f.calls.Add(1)
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.all != nil {
		return nil, f.all
	}
	if err := f.err[domain+"/"+key]; err != nil {
		return nil, err
	}
	p, ok := f.paths[domain+"/"+key]
	if !ok {
		return nil, &mogproto.Error{Code: "unknown_key", Message: "unknown_key"}
	}
	return append([]string(nil), p...), nil
}

func (f *fakeTracker) CreateOpen(ctx context.Context, domain, key, class string) (Open, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.all != nil {
		return Open{}, f.all
	}
	f.nextFid++
	return Open{Fid: f.nextFid, Dests: append([]Dest(nil), f.opens...)}, nil
}

func (f *fakeTracker) CreateClose(ctx context.Context, c Close) error {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.all != nil {
		return f.all
	}
	f.closes = append(f.closes, c)
	f.paths[c.Domain+"/"+c.Key] = []string{c.Path}
	return nil
}

func (f *fakeTracker) Delete(ctx context.Context, domain, key string) error {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.all != nil {
		return f.all
	}
	f.deletes = append(f.deletes, domain+"/"+key)
	if _, ok := f.paths[domain+"/"+key]; !ok {
		return &mogproto.Error{Code: "unknown_key", Message: "unknown_key"}
	}
	delete(f.paths, domain+"/"+key)
	return nil
}

// gw is a running gateway under test.
type gw struct {
	srv  *Server
	base string
	log  *testutil.SyncBuffer
}

// startGateway runs a gateway with cfg on 127.0.0.1 and stops it at cleanup.
func startGateway(t *testing.T, cfg Config, deps Deps) *gw {
	t.Helper()
	g, _ := startGatewayAt(t, cfg, deps, "127.0.0.1:0")
	return g
}

// startGatewayAt runs a gateway on addr ("127.0.0.1:0" for any port) and returns it with a stop
// function; the stop also runs at cleanup.
func startGatewayAt(t *testing.T, cfg Config, deps Deps, addr string) (*gw, func()) {
	t.Helper()
	alog := &testutil.SyncBuffer{}
	if deps.AccessLog == nil {
		deps.AccessLog = alog
	}
	srv, err := New(cfg, deps, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	cancel, done := serve(srv, ln)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	if deps.AccessLog == alog {
		// A failed test shows what the gateway did: the attempts, their upstreams and timings, and
		// its counters (per node: requests, failures, dials).
		t.Cleanup(func() {
			if t.Failed() {
				st, _ := json.Marshal(srv.Stats())
				t.Logf("access log of the gateway on %s:\n%s\nstatus: %s", ln.Addr(), alog.String(), st)
			}
		})
	}
	return &gw{srv: srv, base: "http://" + ln.Addr().String(), log: alog}, stop
}

// serve runs srv on ln until cancel is called; done then yields what Serve returned.
func serve(srv *Server, ln net.Listener) (cancel context.CancelFunc, done <-chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- srv.Serve(ctx, ln) }()
	return cancel, ch
}

// serveLoopback runs srv on a fresh port of 127.0.0.1 and returns its address, as serve does.
func serveLoopback(t *testing.T, srv *Server) (addr string, cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cancel, done = serve(srv, ln)
	return ln.Addr().String(), cancel, done
}

// trackerConfig is a gateway config with one tracker route on /d/ for domain d.
func trackerConfig(routes ...Route) Config {
	if len(routes) == 0 {
		routes = []Route{{Prefix: "/d/", Domain: "d"}}
	}
	return Config{Trackers: []string{"127.0.0.1:1"}, Routes: routes}
}

// client is an HTTP client with no connection reuse surprises and no automatic decompression.
func testClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64},
		Timeout: 2 * time.Minute}
}

// get fetches url with optional header pairs and returns status, headers and body (or the body error).
func get(t *testing.T, method, url string, hdr ...string) (int, http.Header, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := testClient().Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body, err
}

// rawGet sends a request line as written (no client normalisation) and returns the status.
func rawGet(t *testing.T, addr, requestLine string, extra string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c, "%s\r\nHost: x\r\n%sConnection: close\r\n\r\n", requestLine, extra)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("%s: reading status: %v", requestLine, err)
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		t.Fatalf("%s: bad status line %q", requestLine, line)
	}
	code, _ := strconv.Atoi(f[1])
	return code
}

// faultServer is a raw TCP server on ip that misbehaves in one chosen way.
type faultServer struct {
	addr     string
	accepted atomic.Int64
	requests atomic.Int64 // request heads read
	// closedByPeer counts connections the gateway closed (faultSlow only).
	closedByPeer atomic.Int64
}

type fault int

const (
	faultHang     fault = iota // accept, read the request, never answer
	fault500                   // answer 500
	faultMidBody               // send headers for len(body) bytes, then half of them, then close
	faultWrongLen              // answer 200 with a different Content-Length
	faultCutBody               // read len(body) bytes of the request body, then close without answering
	faultSlow                  // answer 200 with body after slowDelay, keeping the connection alive
	faultStall                 // send headers for len(body) bytes, then half of them, then nothing
)

// slowDelay is how long faultSlow waits before each answer.
const slowDelay = 300 * time.Millisecond

func startFault(t *testing.T, ip string, f fault, body []byte) *faultServer {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	fs := &faultServer{addr: ln.Addr().String()}
	stop := make(chan struct{})
	acceptLoop(t, ln, &fs.accepted, func(c net.Conn) { fs.serve(c, f, body, stop) })
	t.Cleanup(func() { close(stop) }) // runs before acceptLoop's cleanup
	return fs
}

// acceptLoop accepts connections on ln, counting them in accepted, and serves each in its own
// goroutine until the test ends: then ln and every connection are closed and the goroutines waited for.
func acceptLoop(t *testing.T, ln net.Listener, accepted *atomic.Int64, serve func(net.Conn)) {
	var wg sync.WaitGroup
	var mu sync.Mutex // guards conns and closed
	var conns []net.Conn
	closed := false
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			mu.Lock()
			if closed {
				// Accepted while the cleanup ran: nobody would close it later.
				mu.Unlock()
				c.Close()
				continue
			}
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

func (fs *faultServer) serve(c net.Conn, f fault, body []byte, stop chan struct{}) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		if !readHead(br) {
			if f == faultSlow {
				select {
				case <-stop:
				default:
					fs.closedByPeer.Add(1)
				}
			}
			return
		}
		fs.requests.Add(1)
		if f != faultSlow {
			break
		}
		select {
		case <-time.After(slowDelay):
		case <-stop:
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(body))
		c.Write(body)
	}
	switch f {
	case faultHang:
		<-stop
	case fault500:
		io.WriteString(c, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\nConnection: close\r\n\r\nboom")
	case faultMidBody:
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n", len(body))
		c.Write(body[:len(body)/2])
	case faultStall:
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n", len(body))
		c.Write(body[:len(body)/2])
		<-stop
	case faultCutBody:
		io.ReadFull(br, make([]byte, len(body)))
	case faultWrongLen:
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", len(body)+1)
		c.Write(body)
	}
}

// readHead reads one request head; false at EOF or on an error.
func readHead(br *bufio.Reader) bool {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return false
		}
		if line == "\r\n" {
			return true
		}
	}
}

// deadAddr returns an address on ip where nothing listens.
func deadAddr(t *testing.T, ip string) string {
	t.Helper()
	return testutil.FreeAddr(t, ip)
}

// pattern returns n deterministic bytes.
func pattern(n int) []byte {
	b := make([]byte, n)
	var x uint32 = 2463534242
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// waitFor polls cond until it holds, failing the test after 20s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, what, cond)
}

// httpServer is a net/http server on a loopback address that records the requests it is sent,
// for tests that need an upstream answering in a chosen way.
type httpServer struct {
	addr string

	mu   sync.Mutex // guards reqs
	reqs []seenRequest
}

// seenRequest is what an httpServer recorded of one request.
type seenRequest struct {
	uri      string // the request target as sent (RequestURI)
	rangeHdr string
}

// startHTTP serves h on ip, recording each request before h answers it. The server, its
// connections and its handlers are stopped and waited for at cleanup.
func startHTTP(t *testing.T, ip string, h http.HandlerFunc) *httpServer {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	s := &httpServer{addr: ln.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, seenRequest{uri: r.RequestURI, rangeHdr: r.Header.Get("Range")})
		s.mu.Unlock()
		h(w, r)
	})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		// Shutdown waits for running handlers (Close would not); none of the tests' handlers blocks.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
		<-done
	})
	return s
}

// requests returns the requests recorded so far.
func (s *httpServer) requests() []seenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seenRequest(nil), s.reqs...)
}
