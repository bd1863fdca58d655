package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/storaged"
	"github.com/mogway/mogway/tracker/store"
	"github.com/mogway/mogway/tracker/store/sqlite"
)

// harness is a store plus real storage nodes on 127.0.0.2, .3, ...: what the workers need, without a
// tracker server.
type harness struct {
	t     testing.TB
	st    store.Store
	nodes []*testNode
	dmid  int
	// mgmt enables every node's side channel on one port number (each node has its own IP);
	// mgmtPort is that port once the first node has bound it.
	mgmt     bool
	mgmtPort int
	open     func() (store.Store, error) // another handle on the database
}

type testNode struct {
	ip      string
	port    int
	docroot string
	hostID  int
	devIDs  []int

	mu  sync.Mutex // guards srv and run
	srv *storaged.Server
	run *testutil.Serving
}

// testConfig has short intervals so the tests run in well under a second per step.
func testConfig() Config {
	ms := func(n int) conf.Duration { return conf.Duration(time.Duration(n) * time.Millisecond) }
	return Config{
		MonitorInterval:     ms(50),
		WriteProbeInterval:  ms(100),
		UsageUpdateInterval: ms(100),
		PollInterval:        ms(20),
		ReaperInterval:      ms(20),
		ReapDelay:           ms(50),
		TempfileInterval:    ms(20),
		// An hour, not the 1s minimum: h.upload's tempfile must outlive a slow PUT and commit on a
		// loaded machine, or the tempfile reaper takes it first (CommitFile: tempfile not found).
		TempfileMaxAge:  conf.Duration(time.Hour),
		MinFreeSpace:    1,
		SideChannelPort: -1,
	}
}

func newHarness(t testing.TB, nodes, devsPerNode int) *harness {
	t.Helper()
	return newHarnessMgmt(t, nodes, devsPerNode, false)
}

func newHarnessMgmt(t testing.TB, nodes, devsPerNode int, mgmt bool) *harness {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tracker.db")
	return newHarnessOn(t, nodes, devsPerNode, mgmt, func() (store.Store, error) {
		return sqlite.Open(context.Background(), path)
	})
}

// newHarnessOn builds the harness on the stores open returns; each call of open is one more
// connection to the same database, as another tracker would have.
func newHarnessOn(t testing.TB, nodes, devsPerNode int, mgmt bool, open func() (store.Store, error)) *harness {
	t.Helper()
	ctx := context.Background()
	st, err := open()
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	h := &harness{t: t, st: st, mgmt: mgmt, open: open}
	d, err := st.CreateDomain(ctx, "d")
	if err != nil {
		t.Fatalf("CreateDomain: %v", err)
	}
	h.dmid = d.ID
	for _, c := range []store.Class{
		{DomainID: d.ID, Name: "c1", MinDevCount: 1},
		{DomainID: d.ID, Name: "c2", MinDevCount: 2},
		{DomainID: d.ID, Name: "c2md5", MinDevCount: 2, HashType: 1},
	} {
		if _, err := st.CreateClass(ctx, c); err != nil {
			t.Fatalf("CreateClass(%s): %v", c.Name, err)
		}
	}
	for i := range nodes {
		n := &testNode{ip: "127.0.0." + strconv.Itoa(2+i), docroot: t.TempDir()}
		for k := range devsPerNode {
			id := i*devsPerNode + k + 1
			n.devIDs = append(n.devIDs, id)
			if err := os.Mkdir(filepath.Join(n.docroot, "dev"+strconv.Itoa(id)), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		h.nodes = append(h.nodes, n)
		h.startNode(i)
		host, err := st.CreateHost(ctx, store.Host{Name: "h" + strconv.Itoa(i+1), Status: "alive", IP: n.ip, HTTPPort: n.port})
		if err != nil {
			t.Fatalf("CreateHost: %v", err)
		}
		n.hostID = host.ID
		for _, id := range n.devIDs {
			if err := st.CreateDevice(ctx, store.Device{ID: id, HostID: host.ID, Status: "alive", Weight: 100}); err != nil {
				t.Fatalf("CreateDevice(%d): %v", id, err)
			}
		}
	}
	return h
}

// classID returns the id of a class of domain d.
func (h *harness) classID(name string) int {
	h.t.Helper()
	cs, err := h.st.Classes(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	for _, c := range cs {
		if c.DomainID == h.dmid && c.Name == name {
			return c.ID
		}
	}
	h.t.Fatalf("no class %q", name)
	return 0
}

// startNode starts node i, on the same address as before when it ran already.
func (h *harness) startNode(i int) {
	h.t.Helper()
	n := h.nodes[i]
	cfg := storaged.Config{Docroot: n.docroot, UsageInterval: conf.Duration(time.Second)}
	if !h.mgmt {
		cfg.MgmtListen = storaged.MgmtOff
	}
	srv, err := storaged.New(cfg, nil)
	if err != nil {
		h.t.Fatalf("storaged.New: %v", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(n.ip, strconv.Itoa(n.port)))
	if err != nil {
		h.t.Fatalf("listen: %v", err)
	}
	n.port = ln.Addr().(*net.TCPAddr).Port
	var mgmt net.Listener
	if h.mgmt {
		if mgmt, err = net.Listen("tcp", net.JoinHostPort(n.ip, strconv.Itoa(h.mgmtPort))); err != nil {
			ln.Close()
			h.t.Skipf("side channel port %d is taken on %s: %v", h.mgmtPort, n.ip, err)
		}
		h.mgmtPort = mgmt.Addr().(*net.TCPAddr).Port
	}
	run := testutil.Go(srv, func(ctx context.Context) error { return srv.Serve(ctx, ln, mgmt) })
	n.mu.Lock()
	n.srv, n.run = srv, run
	n.mu.Unlock()
	// Abruptly: a graceful stop right after Serve started can hang in storaged (fasthttp Shutdown
	// before Serve registered the listener).
	h.t.Cleanup(func() { h.stopNode(i, true) })
}

// stopNode stops node i: crash closes it abruptly, otherwise it stops gracefully.
func (h *harness) stopNode(i int, crash bool) {
	n := h.nodes[i]
	n.mu.Lock()
	srv, run := n.srv, n.run
	n.srv = nil
	n.mu.Unlock()
	if srv == nil {
		return
	}
	run.Stop(h.t, "storage node "+strconv.Itoa(i), crash, time.Minute)
}

func (h *harness) node(i int) *storaged.Server {
	n := h.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}

// run starts Workers with cfg and obs and stops them at cleanup.
func (h *harness) run(cfg Config, obs Observer) *Workers {
	h.t.Helper()
	return h.runOn(h.st, cfg, obs)
}

// runOwn starts Workers on a store handle of their own, as a second tracker would have.
func (h *harness) runOwn(cfg Config, obs Observer) *Workers {
	h.t.Helper()
	st, err := h.open()
	if err != nil {
		h.t.Fatalf("open store: %v", err)
	}
	// Cleanups run last-in first-out: this one, registered before runOn's, closes the store after
	// the workers have stopped.
	h.t.Cleanup(func() { st.Close() })
	return h.runOn(st, cfg, obs)
}

func (h *harness) runOn(st store.Store, cfg Config, obs Observer) *Workers {
	h.t.Helper()
	return h.runPinned(st, cfg, obs, nil)
}

// runPinned is runOn with pin applied to the Workers before Run starts them: the place to pin
// their clock (now) or randomness (randN, randFloat). pin may be nil.
func (h *harness) runPinned(st store.Store, cfg Config, obs Observer, pin func(*Workers)) *Workers {
	h.t.Helper()
	w := h.start(st, cfg, obs, pin)
	select {
	case <-w.MonitorDone():
	case <-time.After(30 * time.Second):
		h.t.Fatalf("first monitor round did not finish")
	}
	return w
}

// start is runPinned without the wait for the monitor's first round: Run has been called, and
// whether the other workers have started yet is for the test to see.
func (h *harness) start(st store.Store, cfg Config, obs Observer, pin func(*Workers)) *Workers {
	h.t.Helper()
	w, err := New(cfg, st, obs, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		h.t.Fatalf("New: %v", err)
	}
	if pin != nil {
		pin(w)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	h.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				h.t.Errorf("Run = %v, want nil", err)
			}
		case <-time.After(time.Minute):
			h.t.Errorf("Run did not return after cancel")
		}
	})
	return w
}

// devURL is the URL of fid on devID.
func (h *harness) devURL(devID int, fid int64) string {
	for _, n := range h.nodes {
		for _, id := range n.devIDs {
			if id == devID {
				return fmt.Sprintf("http://%s:%d%s", n.ip, n.port, FidPath(devID, fid))
			}
		}
	}
	h.t.Fatalf("no device %d", devID)
	return ""
}

// filePath is where fid on devID lives on disk.
func (h *harness) filePath(devID int, fid int64) string {
	for _, n := range h.nodes {
		for _, id := range n.devIDs {
			if id == devID {
				return filepath.Join(n.docroot, filepath.FromSlash(FidPath(devID, fid)))
			}
		}
	}
	h.t.Fatalf("no device %d", devID)
	return ""
}

// replicated uploads data to dev as key in class, has w replicate it and waits for the second copy.
func (h *harness) replicated(w *Workers, key, class string, data []byte, dev int) store.File {
	h.t.Helper()
	f := h.upload(key, class, data, dev)
	w.Kick(JobReplicate)
	waitFor(h.t, "two copies", func() bool { return len(h.fileOn(f.Fid)) == 2 })
	return f
}

// upload stores data as key in class through devID the way a client would: a tempfile, a PUT to the
// storage node, then CommitFile, which queues replication.
func (h *harness) upload(key, class string, data []byte, devID int) store.File {
	h.t.Helper()
	ctx := context.Background()
	cid := h.classID(class)
	fid, err := h.st.CreateTempfile(ctx, store.Tempfile{DomainID: h.dmid, ClassID: cid, Key: key, DevIDs: []int{devID}})
	if err != nil {
		h.t.Fatalf("CreateTempfile: %v", err)
	}
	h.put(h.devURL(devID, fid), data)
	f := store.File{Fid: fid, DomainID: h.dmid, ClassID: cid, Key: key, Length: int64(len(data))}
	if _, err := h.st.CommitFile(ctx, store.Commit{File: f, DevIDs: []int{devID}, Replicate: true}); err != nil {
		h.t.Fatalf("CommitFile: %v", err)
	}
	return f
}

// addCopies PUTs data as fid on each of devs and records each copy (AddFileOn), as a replication
// would: extra copies of a file stored with upload.
func (h *harness) addCopies(fid int64, data []byte, devs ...int) {
	h.t.Helper()
	for _, dev := range devs {
		h.put(h.devURL(dev, fid), data)
		if err := h.st.AddFileOn(context.Background(), fid, dev); err != nil {
			h.t.Fatal(err)
		}
	}
}

func (h *harness) put(url string, data []byte) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPut, url, bytes.NewReader(data))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("PUT %s: %v", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		h.t.Fatalf("PUT %s = %d, want 2xx", url, resp.StatusCode)
	}
}

// fileOn returns the devices holding fid, sorted.
func (h *harness) fileOn(fid int64) []int {
	h.t.Helper()
	devs, err := h.st.FileOn(context.Background(), fid)
	if err != nil {
		h.t.Fatalf("FileOn(%d): %v", fid, err)
	}
	return sorted(devs)
}

func (h *harness) hostOf(devID int) int {
	for i, n := range h.nodes {
		for _, id := range n.devIDs {
			if id == devID {
				return i
			}
		}
	}
	return -1
}

func (h *harness) setDevice(devID int, status string) {
	h.t.Helper()
	ctx := context.Background()
	devs, err := h.st.Devices(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, d := range devs {
		if d.ID == devID {
			d.Status = status
			if err := h.st.UpdateDevice(ctx, d); err != nil {
				h.t.Fatalf("UpdateDevice: %v", err)
			}
			return
		}
	}
	h.t.Fatalf("no device %d", devID)
}

// setHost sets the status of node i's host.
func (h *harness) setHost(i int, status string) {
	h.t.Helper()
	ctx := context.Background()
	hosts, err := h.st.Hosts(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, host := range hosts {
		if host.ID == h.nodes[i].hostID {
			host.Status = status
			if err := h.st.UpdateHost(ctx, host); err != nil {
				h.t.Fatalf("UpdateHost: %v", err)
			}
			return
		}
	}
	h.t.Fatalf("no host %d", h.nodes[i].hostID)
}

// waitFor polls cond until it holds, failing the test after 30s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 30*time.Second, what, cond)
}

// queueEmpty reports whether queue q has no rows left.
func (h *harness) queueEmpty(q store.Queue) bool {
	n, err := h.st.QueueLen(context.Background(), q)
	return err == nil && n == 0
}

// rowSettled reports whether fid's row on q is done (gone) or has failed at least once: either way
// a worker has taken it to an end.
func (h *harness) rowSettled(q store.Queue, fid int64) bool {
	h.t.Helper()
	j, err := h.st.QueueJobs(context.Background(), q, fid)
	return errors.Is(err, store.ErrNotFound) || err == nil && j.FailCount > 0
}

// everyFidHas reports whether each of fids has exactly n copies.
func (h *harness) everyFidHas(fids []int64, n int) bool {
	for _, fid := range fids {
		if len(h.fileOn(fid)) != n {
			return false
		}
	}
	return true
}

// startFsck marks an fsck run as started on this tracker, as fsck_start does.
func (h *harness) startFsck() {
	h.t.Helper()
	if err := h.st.SetSetting(context.Background(), "fsck_host", "test"); err != nil {
		h.t.Fatal(err)
	}
}

// waitFsck waits until the fsck run has finished (fsck_host is cleared).
func (h *harness) waitFsck() {
	h.t.Helper()
	waitFor(h.t, "fsck finished", func() bool {
		s, err := h.st.Settings(context.Background())
		return err == nil && s["fsck_host"] == ""
	})
}

// fsckEvents returns the first 100 fsck log entries, and each one's code and device as "CODE/devid".
func (h *harness) fsckEvents() (evs []store.FsckEvent, codes []string) {
	h.t.Helper()
	evs, err := h.st.FsckEvents(context.Background(), 0, 100)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, e := range evs {
		codes = append(codes, fmt.Sprintf("%s/%d", e.EvCode, e.DevID))
	}
	return evs, codes
}

// readFile returns the bytes of fid on devID, or nil when there is no such file.
func (h *harness) readFile(devID int, fid int64) []byte {
	b, err := os.ReadFile(h.filePath(devID, fid))
	if err != nil {
		return nil
	}
	return b
}

// get returns the body of a GET of fid on devID from its storage node, failing the test unless
// the node answers 200.
func (h *harness) get(devID int, fid int64) []byte {
	h.t.Helper()
	u := h.devURL(devID, fid)
	resp, err := http.Get(u)
	if err != nil {
		h.t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		h.t.Fatalf("GET %s = %d, %v; want 200 and the body", u, resp.StatusCode, err)
	}
	return b
}

// observations records every Observe call.
type observations struct {
	mu   sync.Mutex
	last map[int]Observation
	n    int
}

func (o *observations) Observe(devID int, ob Observation) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.last == nil {
		o.last = map[int]Observation{}
	}
	o.last[devID] = ob
	o.n++
}

func (o *observations) get(devID int) (Observation, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	ob, ok := o.last[devID]
	return ob, ok
}
