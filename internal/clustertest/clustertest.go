// Package clustertest runs a whole MogileFS cluster inside a test: storage nodes on 127.0.0.2,
// 127.0.0.3, ... (each a real storaged.Server over a docroot in t.TempDir()), and one or more
// trackers on one metadata store (SQLite in t.TempDir(), or MySQL/MariaDB through Options.DSN).
// Hosts, devices, domains and classes are registered through the real tracker protocol, and New
// returns once every tracker's monitor has found every device writable. Everything stops at
// t.Cleanup.
//
// It never imports the gateway, so gateway tests can use it.
//
//	c := clustertest.New(t, clustertest.Options{Nodes: 2, Domains: map[string]map[string]int{"d": {"c2": 2}}})
//	fid := c.Upload(t, "d", "key", "c2", []byte("hello"))
//	paths := c.GetPaths(t, "d", "key")
package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/storaged"
	"github.com/mogway/mogway/tracker"
	"github.com/mogway/mogway/tracker/client"
	"github.com/mogway/mogway/tracker/mogproto"
	"github.com/mogway/mogway/tracker/store"
	"github.com/mogway/mogway/tracker/store/mysql"
	"github.com/mogway/mogway/tracker/store/sqlite"
	"github.com/mogway/mogway/tracker/worker"
)

// Timeout bounds every wait of the package (start-up, node restart, helpers).
const Timeout = 30 * time.Second

// Options describe a cluster. The zero value is two storage nodes with one device each and one
// tracker on SQLite, with no domain.
type Options struct {
	// Nodes is the number of storage nodes (hosts h1, h2, ... on 127.0.0.2, .3, ...). Default 2.
	Nodes int
	// DevicesPerNode is the number of devices per node. Devids are numbered from 1 across nodes:
	// node 0 holds 1..DevicesPerNode. Default 1.
	DevicesPerNode int
	// Trackers is the number of trackers, all on the one store. Default 1.
	Trackers int
	// Domains maps domain -> class -> mindevcount; each is created through the protocol.
	Domains map[string]map[string]int
	// DSN, when set, puts the store on MySQL/MariaDB (a go-sql-driver DSN, for example
	// "root@tcp(127.0.0.1:3306)/mogtest") instead of SQLite. The database should be empty.
	DSN string
	// Store, when set, is used by every tracker instead of opening one; the cluster does not close it.
	Store store.Store
	// Workers configures the trackers' background workers. Zero fields get short test intervals
	// (monitor 100ms, polls 20ms, reap delay 200ms), not the production defaults.
	Workers worker.Config
	// TrackerConfig, when set, may change each tracker's configuration before it starts.
	TrackerConfig func(*tracker.Config)
	// StoragedConfig, when set, may change each storage node's configuration before it starts.
	StoragedConfig func(*storaged.Config)
	// Log receives the daemons' logs; nil discards them.
	Log *slog.Logger
}

// Cluster is a running cluster. Its methods may be called from the test goroutine and from
// goroutines the test starts, but StopNode/StartNode/StopTracker of one index must not race.
type Cluster struct {
	opts   Options
	log    *slog.Logger
	stores []store.Store // one per tracker (shared when Options.Store is set)

	client *client.Pool // over every tracker; set by New

	mu       sync.Mutex // guards nodes and trackers
	nodes    []*node
	trackers []*trk
}

type node struct {
	name    string // host name in the tracker
	ip      string
	port    int // HTTP port, fixed after the first start
	docroot string
	devIDs  []int
	srv     *storaged.Server // nil while stopped
	run     *testutil.Serving
	freezer Freezer // stalls the node's listener and connections (FreezeNode)
}

type trk struct {
	srv  *tracker.Server
	addr string
	run  *testutil.Serving
}

// New starts a cluster and registers its teardown with t.Cleanup. It fails the test on any error.
func New(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Nodes == 0 {
		opts.Nodes = 2
	}
	if opts.DevicesPerNode == 0 {
		opts.DevicesPerNode = 1
	}
	if opts.Trackers == 0 {
		opts.Trackers = 1
	}
	opts.Workers = testWorkers(opts.Workers)
	c := &Cluster{opts: opts, log: opts.Log}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()

	dbPath := filepath.Join(t.TempDir(), "tracker.db")
	for range opts.Trackers {
		st := opts.Store
		if st == nil {
			var err error
			if opts.DSN != "" {
				st, err = mysql.Open(ctx, opts.DSN)
			} else {
				st, err = sqlite.Open(ctx, dbPath)
			}
			if err != nil {
				t.Fatalf("clustertest: open store: %v", err)
			}
			t.Cleanup(func() { st.Close() })
		}
		c.stores = append(c.stores, st)
	}

	for i := range opts.Nodes {
		n := &node{name: "h" + strconv.Itoa(i+1), ip: "127.0.0." + strconv.Itoa(2+i), docroot: t.TempDir()}
		for k := range opts.DevicesPerNode {
			id := i*opts.DevicesPerNode + k + 1
			n.devIDs = append(n.devIDs, id)
			if err := os.Mkdir(filepath.Join(n.docroot, "dev"+strconv.Itoa(id)), 0o755); err != nil {
				t.Fatalf("clustertest: %v", err)
			}
		}
		c.nodes = append(c.nodes, n)
		if err := c.startNode(i); err != nil {
			t.Fatalf("clustertest: start node %d: %v", i, err)
		}
	}
	t.Cleanup(func() {
		// Abruptly: a graceful stop would wait for the trackers' idle keep-alive connections.
		for i := range c.nodes {
			c.stopNode(t, i, true)
		}
	})

	for i := range opts.Trackers {
		if err := c.startTracker(i); err != nil {
			t.Fatalf("clustertest: start tracker %d: %v", i, err)
		}
	}
	t.Cleanup(func() {
		for i := range c.trackers {
			c.stopTracker(t, i, false)
		}
	})

	c.client = c.pool(t, c.TrackerAddrs()...)
	p := c.client
	for _, n := range c.nodes {
		if _, err := p.CreateHost(ctx, client.HostSpec{Name: n.name, IP: n.ip, Port: n.port, Status: "alive"}); err != nil {
			t.Fatalf("clustertest: create_host %s: %v", n.name, err)
		}
		for _, id := range n.devIDs {
			if err := p.CreateDevice(ctx, n.name, int64(id), "alive"); err != nil {
				t.Fatalf("clustertest: create_device %d: %v", id, err)
			}
		}
	}
	for _, d := range slices.Sorted(maps.Keys(opts.Domains)) {
		if err := p.CreateDomain(ctx, d); err != nil {
			t.Fatalf("clustertest: create_domain %s: %v", d, err)
		}
		for _, cl := range slices.Sorted(maps.Keys(opts.Domains[d])) {
			spec := client.ClassSpec{Domain: d, Class: cl, MinDevCount: opts.Domains[d][cl]}
			if err := p.CreateClass(ctx, spec); err != nil {
				t.Fatalf("clustertest: create_class %s/%s: %v", d, cl, err)
			}
		}
	}
	// clear_cache makes each tracker reload the namespace at once, so a class just created through
	// one tracker is known to all of them before the test uploads through any.
	for i, addr := range c.TrackerAddrs() {
		if _, err := c.pool(t, addr).Do(ctx, mogproto.CmdClearCache, nil); err != nil {
			t.Fatalf("clustertest: clear_cache on tracker %d: %v", i, err)
		}
		c.WaitWritable(t, i, c.AllDevIDs()...)
	}
	return c
}

// testWorkers fills zero fields of cfg with intervals short enough for tests.
func testWorkers(cfg worker.Config) worker.Config {
	set := func(d *conf.Duration, v time.Duration) {
		if *d == 0 {
			*d = conf.Duration(v)
		}
	}
	set(&cfg.MonitorInterval, 100*time.Millisecond)
	set(&cfg.WriteProbeInterval, 200*time.Millisecond)
	set(&cfg.UsageUpdateInterval, 200*time.Millisecond)
	set(&cfg.PollInterval, 20*time.Millisecond)
	set(&cfg.ReaperInterval, 50*time.Millisecond)
	set(&cfg.ReapDelay, 200*time.Millisecond)
	set(&cfg.TempfileInterval, 100*time.Millisecond)
	if cfg.MinFreeSpace == 0 {
		cfg.MinFreeSpace = 1
	}
	return cfg
}

func (c *Cluster) startNode(i int) error {
	c.mu.Lock()
	n := c.nodes[i]
	running := n.srv != nil
	c.mu.Unlock()
	if running {
		return fmt.Errorf("node %d is running", i)
	}
	cfg := storaged.Config{Docroot: n.docroot, MgmtListen: storaged.MgmtOff}
	if c.opts.StoragedConfig != nil {
		c.opts.StoragedConfig(&cfg)
	}
	srv, err := storaged.New(cfg, c.log.With("node", n.name))
	if err != nil {
		return err
	}
	ln, err := listenRetry(net.JoinHostPort(n.ip, strconv.Itoa(n.port)))
	if err != nil {
		return err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln = n.freezer.Listener(ln)
	run := testutil.Go(srv, func(ctx context.Context) error { return srv.Serve(ctx, ln, nil) })
	c.mu.Lock()
	n.port = port
	n.srv, n.run = srv, run
	c.mu.Unlock()
	return nil
}

// listenRetry binds addr, retrying briefly: a port just released by a crashed node can take a
// moment to be free again.
func listenRetry(addr string) (net.Listener, error) {
	deadline := time.Now().Add(Timeout)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			return ln, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *Cluster) stopNode(t testing.TB, i int, crash bool) {
	c.mu.Lock()
	n := c.nodes[i]
	srv, run := n.srv, n.run
	n.srv = nil
	c.mu.Unlock()
	if srv == nil {
		return
	}
	// A crash that lands before Serve got going makes it return "server is closed".
	if err := run.Stop(t, "clustertest: node "+n.name, crash, Timeout); err != nil && !crash {
		t.Errorf("clustertest: node %s: Serve = %v", n.name, err)
	}
}

func (c *Cluster) startTracker(i int) error {
	cfg := tracker.Config{
		RefreshInterval: conf.Duration(100 * time.Millisecond),
		StartupWait:     conf.Duration(Timeout),
		MinFreeSpace:    1,
		TempfileMaxAge:  conf.Duration(time.Hour),
		Hostname:        "tracker" + strconv.Itoa(i+1),
	}
	cfg.Workers = c.opts.Workers
	if c.opts.TrackerConfig != nil {
		c.opts.TrackerConfig(&cfg)
	}
	srv, err := tracker.New(cfg, c.stores[i], c.log.With("tracker", i))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	run := testutil.Go(srv, func(ctx context.Context) error { return srv.Serve(ctx, ln) })
	c.mu.Lock()
	for len(c.trackers) <= i {
		c.trackers = append(c.trackers, nil)
	}
	c.trackers[i] = &trk{srv: srv, addr: ln.Addr().String(), run: run}
	c.mu.Unlock()
	return nil
}

func (c *Cluster) stopTracker(t testing.TB, i int, crash bool) {
	c.mu.Lock()
	tr := c.trackers[i]
	c.trackers[i] = &trk{addr: tr.addr}
	c.mu.Unlock()
	if tr.srv == nil {
		return
	}
	if err := tr.run.Stop(t, "clustertest: tracker "+strconv.Itoa(i), crash, Timeout); err != nil {
		t.Errorf("clustertest: tracker %d: Serve = %v", i, err)
	}
}

// TrackerAddrs returns the host:port of every tracker, stopped ones included.
func (c *Cluster) TrackerAddrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.trackers))
	for i, tr := range c.trackers {
		out[i] = tr.addr
	}
	return out
}

// Tracker returns tracker i, or nil once it was stopped.
func (c *Cluster) Tracker(i int) *tracker.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.trackers[i].srv
}

// StopTracker crashes tracker i (tracker.Server.Close), as a killed process would stop.
func (c *Cluster) StopTracker(t testing.TB, i int) {
	t.Helper()
	c.stopTracker(t, i, true)
}

// Node returns storage node i's HTTP address (ip:port) and docroot.
func (c *Cluster) Node(i int) (addr, docroot string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[i]
	return net.JoinHostPort(n.ip, strconv.Itoa(n.port)), n.docroot
}

// NodeServer returns storage node i's server (for Stats), or nil while it is stopped.
func (c *Cluster) NodeServer(i int) *storaged.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].srv
}

// HostName returns the tracker's name for node i's host ("h1", "h2", ...).
func (c *Cluster) HostName(i int) string { return c.nodes[i].name }

// DevIDs returns the devids of node i.
func (c *Cluster) DevIDs(i int) []int { return slices.Clone(c.nodes[i].devIDs) }

// AllDevIDs returns every devid of the cluster in order.
func (c *Cluster) AllDevIDs() []int {
	var out []int
	for _, n := range c.nodes {
		out = append(out, n.devIDs...)
	}
	return out
}

// NodeOf returns the index of the node holding devID, or -1.
func (c *Cluster) NodeOf(devID int) int {
	for i, n := range c.nodes {
		if slices.Contains(n.devIDs, devID) {
			return i
		}
	}
	return -1
}

// StopNode crashes storage node i (storaged.Server.Close): connections drop and the port closes.
func (c *Cluster) StopNode(t testing.TB, i int) {
	t.Helper()
	c.stopNode(t, i, true)
}

// StartNode restarts storage node i on its old address and docroot.
func (c *Cluster) StartNode(t testing.TB, i int) {
	t.Helper()
	if err := c.startNode(i); err != nil {
		t.Fatalf("clustertest: restart node %d: %v", i, err)
	}
}

// Store returns the metadata store of tracker 0 (every tracker uses the same database).
func (c *Cluster) Store() store.Store { return c.stores[0] }

// Client returns the cluster's tracker client pool, over every tracker (it fails over from stopped
// ones). It is closed at the cluster's cleanup and safe for concurrent use.
func (c *Cluster) Client() *client.Pool { return c.client }

func (c *Cluster) pool(t testing.TB, addrs ...string) *client.Pool {
	t.Helper()
	// Generous timeouts: under the race detector on a busy machine a loopback dial can take seconds.
	p, err := client.NewPool(client.Config{
		Trackers:    addrs,
		DialTimeout: conf.Duration(Timeout),
		Timeout:     conf.Duration(Timeout),
	}, c.log)
	if err != nil {
		t.Fatalf("clustertest: client pool: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// Upload stores data under domain/key in class through the protocol (create_open, PUT,
// create_close) and returns the fid.
func (c *Cluster) Upload(t testing.TB, domain, key, class string, data []byte) int64 {
	t.Helper()
	return must(t, "Upload", domain, key, func(ctx context.Context) (int64, error) {
		return c.client.Upload(ctx, domain, key, class, bytes.NewReader(data), int64(len(data)))
	})
}

// GetPaths returns the URLs get_paths gives for domain/key.
func (c *Cluster) GetPaths(t testing.TB, domain, key string) []string {
	t.Helper()
	return must(t, "GetPaths", domain, key, func(ctx context.Context) ([]string, error) {
		return c.client.GetPaths(ctx, domain, key, client.GetPathsOptions{NoVerify: true})
	})
}

// Fetch returns the content of domain/key read through get_paths.
func (c *Cluster) Fetch(t testing.TB, domain, key string) []byte {
	t.Helper()
	return must(t, "Fetch", domain, key, func(ctx context.Context) ([]byte, error) {
		var b bytes.Buffer
		_, err := c.client.Fetch(ctx, domain, key, &b)
		return b.Bytes(), err
	})
}

// must runs the call op makes for domain/key with a Timeout context and fails the test if it fails.
func must[T any](t testing.TB, op, domain, key string, call func(context.Context) (T, error)) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	v, err := call(ctx)
	if err != nil {
		t.Fatalf("clustertest: %s(%q, %q): %v", op, domain, key, err)
	}
	return v
}

// SetState changes a device's state through the protocol (set_state).
func (c *Cluster) SetState(t testing.TB, devID int, state string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	n := c.NodeOf(devID)
	if n < 0 {
		t.Fatalf("clustertest: no device %d", devID)
	}
	if err := c.client.SetState(ctx, c.nodes[n].name, int64(devID), state); err != nil {
		t.Fatalf("clustertest: set_state dev%d %s: %v", devID, state, err)
	}
}

// WaitWritable waits until tracker i reports every device of devIDs as observed writeable.
func (c *Cluster) WaitWritable(t testing.TB, i int, devIDs ...int) {
	t.Helper()
	c.WaitObserved(t, i, "writeable", devIDs...)
}

// WaitObserved waits until tracker i's get_devices shows observed_state == state for every
// device of devIDs.
func (c *Cluster) WaitObserved(t testing.TB, i int, state string, devIDs ...int) {
	t.Helper()
	p := c.pool(t, c.TrackerAddrs()[i])
	Eventually(t, fmt.Sprintf("devices %v observed %s by tracker %d", devIDs, state, i), func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		defer cancel()
		devs, err := p.GetDevices(ctx)
		if err != nil {
			return false
		}
		seen := map[int]string{}
		for _, d := range devs {
			seen[int(d.ID)] = d.ObservedState
		}
		for _, id := range devIDs {
			if seen[id] != state {
				return false
			}
		}
		return true
	})
}

// Eventually polls cond until it holds, failing the test after Timeout.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, Timeout, what, cond)
}

// ReadCopy returns the bytes of fid on devID straight from the node's docroot, or nil when the file
// does not exist.
func (c *Cluster) ReadCopy(devID int, fid int64) []byte {
	n := c.NodeOf(devID)
	if n < 0 {
		return nil
	}
	f, err := os.Open(filepath.Join(c.nodes[n].docroot, filepath.FromSlash(worker.FidPath(devID, fid))))
	if err != nil {
		return nil
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil
	}
	return b
}
