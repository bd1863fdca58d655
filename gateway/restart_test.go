package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/clustertest"
	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/storaged"
	"github.com/valyala/fasthttp"
)

// restartable is a storaged that can be stopped and started again on the same address and docroot.
type restartable struct {
	addr, docroot string
	cancel        context.CancelFunc
	done          chan error
}

func startRestartable(t *testing.T, ip string) *restartable {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "dev1"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := &restartable{addr: ip + ":0", docroot: root}
	r.start(t)
	t.Cleanup(r.stop)
	return r
}

func (r *restartable) start(t *testing.T) {
	t.Helper()
	srv, err := storaged.New(storaged.Config{Docroot: r.docroot, Listen: r.addr, MgmtListen: "off",
		UsageInterval: conf.Duration(time.Hour)}, nil)
	if err != nil {
		t.Fatalf("storaged.New: %v", err)
	}
	var ln net.Listener
	waitFor(t, "the node's port to be free", func() bool {
		ln, err = net.Listen("tcp", r.addr)
		return err == nil
	})
	r.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- srv.Serve(ctx, ln, nil) }()
}

func (r *restartable) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	r.cancel = nil
}

// A PUT right after the storage node restarted must not be sent on a keep-alive connection the old
// process closed: the body is a stream that cannot be sent again once read.
func TestRequestAfterStorageRestart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		method string // what the client sends after the restart
		size   int
		pooled int // keep-alive connections to the node before it restarts
	}{
		{"PUT", 1000, 1},
		{"PUT", 1 << 20, 1},
		{"PUT", 1000, 2},
		{"PUT", 1000, 5}, // more stale connections than maxStaleAttempts
		{"GET", 1000, 1},
		{"GET", 1000, 6}, // more stale connections than fasthttp's attempts
	} {
		t.Run(fmt.Sprintf("%s/%d/%d", tc.method, tc.size, tc.pooled), func(t *testing.T) {
			t.Parallel()
			size := tc.size
			node := startRestartable(t, "127.0.0.4")
			ft := newFakeTracker()
			ft.opens = []Dest{{DevID: 1, Path: "http://" + node.addr + fidPath(int64(size))}}
			g := startGateway(t, trackerConfig(writeRoute()), Deps{Tracker: ft})
			data := pattern(size)
			if code, body := put(t, g.base+"/u/a", bytes.NewReader(data), int64(len(data))); code != 201 {
				t.Fatalf("first PUT = %d %q, want 201", code, body)
			}
			n := g.srv.nodes.get(node.addr)
			poolConns(t, n, "http://"+node.addr+fidPath(int64(size)), tc.pooled)
			if c := n.hc.ConnsCount(); c != tc.pooled {
				t.Fatalf("pooled connections = %d, want %d", c, tc.pooled)
			}
			dials := n.dials.Load()
			node.stop()
			node.start(t)
			if tc.method == "GET" {
				code, _, body, err := get(t, "GET", g.base+"/u/a")
				if err != nil || code != 200 || !bytes.Equal(body, data) {
					t.Fatalf("GET after the node restarted = %d, %d bytes, %v; want 200 and the %d bytes", code, len(body), err, len(data))
				}
			} else {
				data[0]++
				if code, body := put(t, g.base+"/u/a", bytes.NewReader(data), int64(len(data))); code != 201 {
					t.Fatalf("PUT after the node restarted = %d %q, want 201", code, body)
				}
			}
			got, err := os.ReadFile(filepath.Join(node.docroot, filepath.FromSlash(fidPath(int64(size)))))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("stored copy = %d bytes, %v; want the %d bytes of the last PUT", len(got), err, len(data))
			}
			if d := n.dials.Load() - dials; d != 1 {
				t.Errorf("dials after the restart = %d, want 1", d)
			}
			if f := n.failures.Load(); f != 0 {
				t.Errorf("node failures = %d, want 0 (a stale connection is not the node's fault)", f)
			}
		})
	}
}

// poolConns leaves want idle keep-alive connections in n's pool: it holds that many GETs of url open
// at once (the node client streams answers, so each keeps its connection until its body is read).
func poolConns(t *testing.T, n *node, url string, want int) {
	t.Helper()
	var resps []*fasthttp.Response
	for n.hc.ConnsCount() < want {
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		req.SetRequestURI(url)
		err := n.hc.Do(req, resp)
		fasthttp.ReleaseRequest(req)
		if err != nil || resp.StatusCode() != 200 || resp.BodyStream() == nil {
			t.Fatalf("GET %s = %d, %v, streamed %v; want 200 streamed", url, resp.StatusCode(), err, resp.BodyStream() != nil)
		}
		resps = append(resps, resp)
		if len(resps) > want {
			t.Fatalf("%d open GETs hold %d connections, want %d", len(resps), n.hc.ConnsCount(), want)
		}
	}
	for _, resp := range resps {
		if _, err := io.Copy(io.Discard, resp.BodyStream()); err != nil {
			t.Fatal(err)
		}
		fasthttp.ReleaseResponse(resp)
	}
}

// The case as first seen: a cluster's storage node crashes and comes back on its address; once its
// device is writable again, a PUT through the gateway stores the file.
func TestClusterUploadAfterNodeRestart(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, clustertest.Options{Nodes: 1, Domains: map[string]map[string]int{"d": {"c1": 1}}})
	g := clusterGateway(t, c.TrackerAddrs(), Route{Prefix: "/d/", Domain: "d", Class: "c1",
		Methods: []string{"PUT"}, Allow: []string{"127.0.0.0/8"}})
	data := pattern(200000)
	if code, body := put(t, g.base+"/d/before", bytes.NewReader(data), int64(len(data))); code != 201 {
		t.Fatalf("PUT = %d %q, want 201", code, body)
	}
	c.StopNode(t, 0)
	// The tracker sees the node gone first: "writeable" from before the crash would let the PUT go
	// to create_open between the restart and the monitor round that notices it (no_devices, 503).
	c.WaitObserved(t, 0, "unreachable", c.DevIDs(0)...)
	c.StartNode(t, 0)
	c.WaitWritable(t, 0, c.DevIDs(0)...)
	data[0]++
	if code, body := put(t, g.base+"/d/after", bytes.NewReader(data), int64(len(data))); code != 201 {
		t.Fatalf("PUT after the node restarted = %d %q, want 201", code, body)
	}
	if got := c.Fetch(t, "d", "after"); !bytes.Equal(got, data) {
		t.Fatalf("tracker-side fetch = %d bytes, want the %d uploaded", len(got), len(data))
	}
}
