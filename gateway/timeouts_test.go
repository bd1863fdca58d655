package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
)

// cutBound is how long the tests below wait for a cut that a short timeout (1s) owes them. The
// timeout a broken setting would fall back to is its default or a minute, both far beyond it.
const cutBound = 20 * time.Second

// timeouts.storage_idle bounds every wait for body bytes from a storage node. A body whose only copy
// stalls mid-way (storage_stall is off: it is not below storage_idle, and no copy could continue
// anyway) is cut after storage_idle: the client's connection closes short of Content-Length, never a
// short 200, and Stats counts the body aborted.
func TestStorageIdleCutsLoneStalledCopy(t *testing.T) {
	t.Parallel()
	data := pattern(300000) // streamed: larger than maxBufferedBody
	stall := startFault(t, "127.0.0.4", faultStall, data)
	ft := newFakeTracker()
	ft.set("d", "k", "http://"+stall.addr+fidPath(41))
	cfg := trackerConfig()
	cfg.Timeouts.StorageIdle = conf.Duration(time.Second)
	cfg.Timeouts.StorageStall = conf.Duration(5 * time.Second) // >= storage_idle: off
	// Any bound but storage_idle would cut the body much later than cutBound.
	cfg.Timeouts.StorageFirstByte = conf.Duration(time.Minute)
	g := startGateway(t, cfg, Deps{Tracker: ft})

	c := testClient()
	c.Timeout = cutBound
	resp, err := c.Get(g.base + "/d/k")
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(data)) {
		t.Fatalf("GET = %d with Content-Length %d; want 200 announcing %d bytes", resp.StatusCode, resp.ContentLength, len(data))
	}
	body, err := io.ReadAll(resp.Body)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatalf("the stalled body was not cut within %v (storage_idle 1s): %v", cutBound, err)
	case err == nil:
		t.Fatalf("body read to its end with %d of %d bytes; want the connection cut", len(body), len(data))
	}
	if len(body) >= len(data) || !bytes.Equal(body, data[:len(body)]) {
		t.Errorf("got %d bytes before the cut; want a prefix of the %d-byte body", len(body), len(data))
	}
	if st := g.srv.Stats(); st.Aborted != 1 || st.Resumed != 0 {
		t.Errorf("Stats aborted %d, resumed %d; want 1, 0", st.Aborted, st.Resumed)
	}
}

// timeouts.client_write bounds every wait to write response bytes: a client that reads the head of
// a large answer and then nothing has its connection closed.
func TestClientWriteClosesStalledReader(t *testing.T) {
	t.Parallel()
	data := pattern(32 << 20) // far more than the socket buffers of both ends hold
	up := startHTTP(t, "127.0.0.2", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Write(data) //nolint:errcheck // the gateway cuts it
	})
	cfg := Config{Routes: []Route{{Prefix: "/g/", Servers: []UpstreamServer{{Addr: up.addr}}}}}
	cfg.Timeouts.ClientWrite = conf.Duration(time.Second)
	cfg.Timeouts.StorageIdle = conf.Duration(time.Minute)
	g := startGateway(t, cfg, Deps{})

	c, err := net.Dial("tcp", strings.TrimPrefix(g.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * cutBound))
	if _, err := io.WriteString(c, "GET /g/big HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReaderSize(c, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 || resp.ContentLength != int64(len(data)) {
		t.Fatalf("GET /g/big = %v, %v; want 200 with Content-Length %d", resp, err, len(data))
	}
	// The client reads nothing more: the gateway's writes stop, and client_write closes the
	// connection.
	waitFor(t, "the gateway to close the connection of a client that stopped reading", func() bool {
		return g.srv.Stats().Connections.Open == 0
	})
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil || n >= int64(len(data)) {
		t.Errorf("after the close the client read %d of %d bytes, %v; want the body cut short", n, len(data), err)
	}
}

// timeouts.client_read bounds reading a request head, on a new connection and on a kept-alive one:
// a client that sends half a head and waits gets 408 and the connection is closed.
func TestClientReadBoundsRequestHead(t *testing.T) {
	t.Parallel()
	_, ft := storedBytes(t, "k", 42, []byte("hello"))
	cfg := trackerConfig()
	cfg.Timeouts.ClientRead = conf.Duration(time.Second)
	cfg.Timeouts.KeepAlive = conf.Duration(time.Minute)
	g := startGateway(t, cfg, Deps{Tracker: ft})
	addr := strings.TrimPrefix(g.base, "http://")

	halfHead := func(name string, c net.Conn, br *bufio.Reader) {
		t.Helper()
		c.SetDeadline(time.Now().Add(cutBound)) // a slower 408 fails the read below
		if _, err := io.WriteString(c, "GET /d/k HTTP/1.1\r\nHost: x\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: half a head: %v; want a 408 within %v (client_read 1s)", name, err, cutBound)
		}
		io.Copy(io.Discard, resp.Body) //nolint:errcheck // the status is what counts
		if resp.StatusCode != 408 {
			t.Errorf("%s: half a head = %d; want 408 (client_read 1s)", name, resp.StatusCode)
		}
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("%s: after the 408 the connection reads %v; want it closed (EOF)", name, err)
		}
	}
	c1, b1 := dialKeep(t, addr)
	halfHead("new connection", c1, b1)

	c2, b2 := dialKeep(t, addr)
	if resp := rawOn(t, c2, b2, "GET /d/k HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode() != 200 {
		t.Fatalf("first request on the connection = %d, want 200", resp.StatusCode())
	}
	halfHead("kept-alive connection", c2, b2)
}

// countingNode is an HTTP server on a loopback address that answers every GET with body after
// delay, keeping connections alive, and records how many connections it had open at once.
type countingNode struct {
	addr                 string
	accepted, open, most atomic.Int64
	requests             atomic.Int64
	mu                   sync.Mutex    // serialises the close of release (answer)
	release              chan struct{} // closed when answers may go
}

// startCountingNode starts a countingNode on ip. With gated set, answers wait, with no delay after,
// until the test calls answer.
func startCountingNode(t *testing.T, ip string, body []byte, delay time.Duration, gated bool) *countingNode {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	n := &countingNode{addr: ln.Addr().String(), release: make(chan struct{})}
	if !gated {
		close(n.release)
	}
	stop := make(chan struct{})
	acceptLoop(t, ln, &n.accepted, func(c net.Conn) {
		defer c.Close()
		cur := n.open.Add(1)
		defer n.open.Add(-1)
		for {
			most := n.most.Load()
			if cur <= most || n.most.CompareAndSwap(most, cur) {
				break
			}
		}
		br := bufio.NewReader(c)
		for readHead(br) {
			n.requests.Add(1)
			select {
			case <-n.release:
				if !gated {
					select {
					case <-time.After(delay):
					case <-stop:
						return
					}
				}
			case <-stop:
				return
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(body))
			c.Write(body) //nolint:errcheck // the gateway reports a short answer
		}
	})
	t.Cleanup(func() { close(stop) }) // runs before acceptLoop's cleanup
	return n
}

// answer lets a gated node answer.
func (n *countingNode) answer() {
	n.mu.Lock()
	defer n.mu.Unlock()
	select {
	case <-n.release:
	default:
		close(n.release)
	}
}

// limits.max_conns_per_node bounds the connections to one node: 8 concurrent GETs of a slow node
// through a gateway allowed 2 connections per node all succeed, over at most 2 connections at once.
func TestMaxConnsPerNodeReachesNodes(t *testing.T) {
	t.Parallel()
	data := pattern(1000)
	node := startCountingNode(t, "127.0.0.2", data, slowDelay, false)
	ft := newFakeTracker()
	ft.set("d", "k", "http://"+node.addr+fidPath(43))
	cfg := trackerConfig()
	cfg.Limits.MaxConnsPerNode = 2
	// The waits for a free connection take several slowDelays; none may run out here.
	cfg.Timeouts.StorageConnect = conf.Duration(time.Minute)
	g := startGateway(t, cfg, Deps{Tracker: ft})

	res := hammer(t, 8, 1, "GET", g.base+"/d/k", data)
	if res.failed != 0 {
		t.Errorf("%d of 8 GETs failed: %v", res.failed, res.errs)
	}
	if most, reqs := node.most.Load(), node.requests.Load(); most != 2 || reqs != 8 {
		t.Errorf("the node had at most %d connections open at once for %d requests; want 2 for 8", most, reqs)
	}
}

// A request that finds every connection to a node busy waits for one for at most
// timeouts.storage_connect; then the next copy is tried, as after a connect error, and with none
// left the answer is 502. The node is not counted as failed: the gateway ran out of connections.
func TestMaxConnsPerNodeWaitBoundedByStorageConnect(t *testing.T) {
	t.Parallel()
	data := pattern(1000)
	busy := startCountingNode(t, "127.0.0.2", data, 0, true)
	good := startStorage(t, "127.0.0.3")
	ft := newFakeTracker()
	ft.set("d", "lone", "http://"+busy.addr+fidPath(44))
	ft.set("d", "two", "http://"+busy.addr+fidPath(45), good.put(t, 45, data))
	cfg := trackerConfig()
	cfg.Limits.MaxConnsPerNode = 1
	cfg.Timeouts.StorageConnect = conf.Duration(300 * time.Millisecond)
	cfg.Timeouts.StorageFirstByte = conf.Duration(time.Minute) // the held request waits for the gate
	cfg.Hedge.Delay = "off"                                    // the busy node must stay first for "two"
	g := startGateway(t, cfg, Deps{Tracker: ft})
	t.Cleanup(busy.answer) // before the gateway stops: the held request then ends

	held := make(chan int, 1)
	go func() {
		code, _, _, _ := get(t, "GET", g.base+"/d/lone")
		held <- code
	}()
	waitFor(t, "the first request to hold the busy node's only connection", func() bool { return busy.requests.Load() == 1 })

	code, _, body, err := getWithin(t, cutBound, g.base+"/d/lone") // a slower answer is an error
	if err != nil || code != 502 {
		t.Errorf("GET of a lone copy whose node has no free connection = %d %q, %v; want 502 within %v (storage_connect 300ms)",
			code, body, err, cutBound)
	}
	code, _, body, err = get(t, "GET", g.base+"/d/two")
	if err != nil || code != 200 || !bytes.Equal(body, data) {
		t.Errorf("GET with the first copy's node out of connections = %d, %d bytes, %v; want 200 from the second copy", code, len(body), err)
	}
	if a := busy.accepted.Load(); a != 1 {
		t.Errorf("the busy node accepted %d connections; want 1 (max_conns_per_node)", a)
	}
	if n := nodeStats(t, g, busy.addr); !n.Up || n.Failures != 0 {
		t.Errorf("busy node: up %v, failures %d; want up with no failure counted", n.Up, n.Failures)
	}
	busy.answer()
	if code := <-held; code != 200 {
		t.Errorf("the request holding the connection = %d once the node answered, want 200", code)
	}
}

// getWithin GETs url with a client that gives up after within, and returns what get returns.
func getWithin(t *testing.T, within time.Duration, url string) (int, http.Header, []byte, error) {
	t.Helper()
	c := testClient()
	c.Timeout = within
	resp, err := c.Get(url)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body, err
}
