package clustertest

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/tracker"
	"github.com/mogway/mogway/tracker/client"
	"github.com/mogway/mogway/tracker/mogproto"
	"github.com/mogway/mogway/tracker/worker"
)

// Hung storage nodes (issue 11 item 5): a node that accepts connections and never answers must cost
// the tracker at most one node_timeout, never delay answers about keys on other nodes, and leave
// selection within one monitor round.

// hungNodeTimeout is the node_timeout of these tests. hungMargin is the slack allowed on top of it
// for a loaded machine; the waits the tests guard against are several node_timeouts or unbounded.
// node_timeout also bounds every request to the live nodes (a dial, a size check, a DELETE): at
// 300ms a loaded race build missed it on a live node (an upload's size check could not dial it,
// and deletes on node 0 waited for a monitor round an hour away).
const (
	hungNodeTimeout = time.Second
	hungMargin      = 3 * time.Second
)

// hungCluster is two nodes with two devices each, classes with one and two copies, and the
// trackers' node_timeout nodeTimeout (hungNodeTimeout but in the hedging tests).
func hungCluster(t *testing.T, nodeTimeout time.Duration, queryWorkers int, w worker.Config) *Cluster {
	t.Helper()
	return New(t, Options{
		Nodes:          2,
		DevicesPerNode: 2,
		Domains:        map[string]map[string]int{"d": {"one": 1, "two": 2}},
		Workers:        w,
		TrackerConfig: func(cfg *tracker.Config) {
			cfg.NodeTimeout = conf.Duration(nodeTimeout)
			cfg.QueryWorkers = queryWorkers
		},
	})
}

// keysOn uploads keys in class "one" until each node holds one, and returns the key on each node.
func keysOn(t *testing.T, c *Cluster) []string {
	t.Helper()
	keys := make([]string, 2)
	for i := 0; keys[0] == "" || keys[1] == ""; i++ {
		if i == 200 {
			t.Fatalf("200 uploads did not land on both nodes: %q", keys)
		}
		key := "k" + strconv.Itoa(i)
		c.Upload(t, "d", key, "one", []byte("data of "+key))
		paths := c.GetPaths(t, "d", key)
		if len(paths) != 1 {
			t.Fatalf("GetPaths(%q) = %q, want one path", key, paths)
		}
		if n := c.NodeOf(devOf(t, paths[0])); keys[n] == "" {
			keys[n] = key
		}
	}
	return keys
}

// timed runs f and fails the test when it takes longer than node_timeout plus the margin.
func timed(t *testing.T, what string, f func(ctx context.Context) error) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	start := time.Now()
	err := f(ctx)
	if d := time.Since(start); d > hungNodeTimeout+hungMargin {
		t.Errorf("%s took %s with a node hung, want at most node_timeout %s + %s", what, d, hungNodeTimeout, hungMargin)
	}
	return err
}

// onePathOn checks, timed as what, that get_paths of d/key answers one path, on node.
func onePathOn(t *testing.T, c *Cluster, what, key string, node int) {
	t.Helper()
	err := timed(t, what, func(ctx context.Context) error {
		paths, err := c.Client().GetPaths(ctx, "d", key, client.GetPathsOptions{})
		if err == nil && (len(paths) != 1 || c.NodeOf(devOf(t, paths[0])) != node) {
			t.Errorf("GetPaths(%q) = %q, want its one path on node %d", key, paths, node)
		}
		return err
	})
	if err != nil {
		t.Fatalf("GetPaths(%q): %v", key, err)
	}
}

// destNodes returns the nodes create_open offers for a new file, over n calls.
func destNodes(t *testing.T, c *Cluster, n int) map[int]bool {
	t.Helper()
	nodes := map[int]bool{}
	for i := range n {
		var o *client.Open
		err := timed(t, "create_open", func(ctx context.Context) (err error) {
			o, err = c.Client().CreateOpen(ctx, "d", "new"+strconv.Itoa(i), "one")
			return err
		})
		if err != nil {
			t.Fatalf("CreateOpen: %v", err)
		}
		for _, dst := range o.Dests {
			nodes[c.NodeOf(int(dst.DevID))] = true
		}
	}
	return nodes
}

// TestHungNodeDoesNotDelayOtherKeys: with node 1 hung and the monitor not yet aware of it (its
// interval is long), many get_paths for a key on node 1 arrive at once, more than there are query
// workers. Only the first ones wait out node_timeout; the rest, and get_paths for the key on node 0
// queued behind them, answer at once, and create_open stops offering node 1. Before, every
// get_paths of the hung key held a query worker for node_timeout, so the queue drained by two per
// node_timeout and the other key waited many of them, and create_open kept choosing node 1. After
// the node thaws, the next monitor round brings it back.
func TestHungNodeDoesNotDelayOtherKeys(t *testing.T) {
	const workers, hungQueries = 2, 40
	c := hungCluster(t, hungNodeTimeout, workers, worker.Config{MonitorInterval: conf.Duration(time.Hour)})
	keys := keysOn(t, c)
	srv := c.Tracker(0)
	before := srv.Stats().Queries
	c.FreezeNode(t, 1)

	var wg sync.WaitGroup
	for range hungQueries {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), Timeout)
			defer cancel()
			if _, err := c.Client().GetPaths(ctx, "d", keys[1], client.GetPathsOptions{}); err != nil {
				t.Errorf("GetPaths(%q) with its node hung: %v", keys[1], err)
			}
		})
	}
	Eventually(t, "the get_paths of the hung key queued", func() bool {
		st := srv.Stats()
		return st.Pending+st.Processing+st.Queries-before >= hungQueries
	})
	onePathOn(t, c, "get_paths of a key on the live node", keys[0], 0)
	wg.Wait()
	// The first get_paths, one per query worker, wait out node_timeout; the monitor round they ask
	// for probes the node once more. The rest never ask it.
	if n := c.NodeStalled(1); n > 2*workers+2 {
		t.Errorf("%d requests went to the hung node for %d get_paths, want at most %d", n, hungQueries, 2*workers+2)
	}
	if got := destNodes(t, c, 20); got[1] || !got[0] {
		t.Errorf("create_open offered nodes %v with node 1 hung, want node 0 only", got)
	}
	// A key with no other copy still gets the one on the hung node, unchecked.
	onePathOn(t, c, "get_paths of the key on the hung node", keys[1], 1)

	// Once the node answers a monitor probe again, the query's mark no longer counts.
	c.ThawNode(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if _, err := c.Client().Do(ctx, mogproto.CmdDoMonitorRound, nil); err != nil {
		t.Fatalf("do_monitor_round: %v", err)
	}
	c.WaitWritable(t, 0, c.DevIDs(1)...)
	Eventually(t, "create_open offering node 1 again", func() bool { return destNodes(t, c, 1)[1] })
	paths, err := c.Client().GetPaths(ctx, "d", keys[1], client.GetPathsOptions{})
	if err != nil || len(paths) != 1 || c.NodeOf(devOf(t, paths[0])) != 1 {
		t.Errorf("GetPaths(%q) after thaw = %q, %v; want its path on node 1", keys[1], paths, err)
	}
}

// TestHungDestinationCreateClose: create_close of an upload whose destination hung after the PUT
// answers ERR size_verify_error within node_timeout instead of waiting for the node.
func TestHungDestinationCreateClose(t *testing.T) {
	c := hungCluster(t, hungNodeTimeout, 0, worker.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	data := []byte("bytes on a node about to hang")
	var (
		o   *client.Open
		dst client.Dest
	)
	for i := 0; ; i++ {
		var err error
		if o, err = c.Client().CreateOpen(ctx, "d", "up", "one"); err != nil {
			t.Fatalf("CreateOpen: %v", err)
		}
		if j := slices.IndexFunc(o.Dests, func(d client.Dest) bool { return c.NodeOf(int(d.DevID)) == 1 }); j >= 0 {
			dst = o.Dests[j]
			break
		}
		if i == 100 {
			t.Fatal("create_open never offered node 1")
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, dst.Path, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PUT %s: %v", dst.Path, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("PUT %s: HTTP %d", dst.Path, resp.StatusCode)
	}
	c.FreezeNode(t, 1)
	err = timed(t, "create_close on the hung node", func(ctx context.Context) error {
		return c.Client().CreateClose(ctx, client.CloseRequest{Domain: "d", Key: "up", Class: "one",
			Fid: o.Fid, DevID: dst.DevID, Path: dst.Path, Size: int64(len(data))})
	})
	if !mogproto.IsCode(err, mogproto.ErrSizeVerifyError) {
		t.Fatalf("CreateClose on the hung node = %v, want ERR %s", err, mogproto.ErrSizeVerifyError)
	}
}

// TestHungNodeMonitor: the first monitor round that starts after node 1 hangs marks both of its
// devices unreachable, create_open stops offering them, and after the node thaws they come back.
func TestHungNodeMonitor(t *testing.T) {
	c := hungCluster(t, hungNodeTimeout, 0, worker.Config{NodeTimeout: conf.Duration(hungNodeTimeout)})
	c.FreezeNode(t, 1)
	err := timed(t, "do_monitor_round", func(ctx context.Context) error {
		_, err := c.Client().Do(ctx, mogproto.CmdDoMonitorRound, nil)
		return err
	})
	if err != nil {
		t.Fatalf("do_monitor_round: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	devs, err := c.Client().GetDevices(ctx)
	if err != nil {
		t.Fatalf("GetDevices: %v", err)
	}
	for _, d := range devs {
		want := "writeable"
		if c.NodeOf(int(d.ID)) == 1 {
			want = "unreachable"
		}
		if d.ObservedState != want {
			t.Errorf("after one monitor round with node 1 hung, dev%d observed %q, want %q", d.ID, d.ObservedState, want)
		}
	}
	if got := destNodes(t, c, 20); got[1] || !got[0] {
		t.Errorf("create_open offered nodes %v with node 1 hung, want node 0 only", got)
	}

	c.ThawNode(t, 1)
	c.WaitWritable(t, 0, c.DevIDs(1)...)
	Eventually(t, "create_open offering node 1 again", func() bool { return destNodes(t, c, 1)[1] })
}

// TestHungNodeDoesNotStallDeletes: with node 1 hung and the monitor not yet aware of it, many keys
// with a copy on each node are deleted. The delete worker waits out node_timeout on node 1 a few
// times at most (the deletes in flight when it hung, and the monitor rounds that confirm it), not
// once per file, and the copies on node 0 all go. Before, every file sent node 1 a DELETE and held
// a delete worker for node_timeout.
func TestHungNodeDoesNotStallDeletes(t *testing.T) {
	const keys = 60
	// At most: one DELETE per delete worker before the first times out, plus a usage probe by each
	// monitor round the timeouts ask for, with room to spare; far below one per key.
	const maxStalls = 10
	c := hungCluster(t, hungNodeTimeout, 0, worker.Config{MonitorInterval: conf.Duration(time.Hour), NodeTimeout: conf.Duration(hungNodeTimeout)})
	fids := make([]int64, keys)
	for i := range keys {
		key := "k" + strconv.Itoa(i)
		fids[i] = c.Upload(t, "d", key, "two", []byte("data of "+key))
	}
	for i := range keys {
		key := "k" + strconv.Itoa(i)
		Eventually(t, key+" on both nodes", func() bool { return len(c.GetPaths(t, "d", key)) == 2 })
	}
	c.FreezeNode(t, 1)
	onNode0 := func() int {
		n := 0
		for _, fid := range fids {
			for _, dev := range c.DevIDs(0) {
				if c.ReadCopy(dev, fid) != nil {
					n++
				}
			}
		}
		return n
	}
	if n := onNode0(); n != keys {
		t.Fatalf("%d copies on node 0 before the deletes, want %d", n, keys)
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	for i := range keys {
		if err := c.Client().Delete(ctx, "d", "k"+strconv.Itoa(i)); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	Eventually(t, "the copies on node 0 deleted", func() bool { return onNode0() == 0 })
	if n := c.NodeStalled(1); n > maxStalls {
		t.Errorf("%d requests went to the hung node while %d keys were deleted, want at most %d", n, keys, maxStalls)
	}
}

// TestHungSourceDoesNotStallReplication: files with copies on nodes 0 and 1 are moved to a class
// that wants a third copy while node 1 is hung and the monitor does not know it yet. A copy whose
// source is node 1 gives up on it after node_timeout (the reply headers of its GET) and copies from
// node 0 instead, and later copies skip node 1. Before, each such copy waited for the whole
// copy_timeout.
func TestHungSourceDoesNotStallReplication(t *testing.T) {
	const files = 8
	// A copy from the hung node waited this long before; now it waits node_timeout.
	const copyTimeout = 15 * time.Second
	c := New(t, Options{
		Nodes:   3,
		Domains: map[string]map[string]int{"d": {"two": 2, "three": 3}},
		Workers: worker.Config{
			MonitorInterval: conf.Duration(time.Hour),
			NodeTimeout:     conf.Duration(hungNodeTimeout),
			CopyTimeout:     conf.Duration(copyTimeout),
		},
		TrackerConfig: func(cfg *tracker.Config) { cfg.NodeTimeout = conf.Duration(hungNodeTimeout) },
	})
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	nodesOf := func(fid int64) []int {
		devs, err := c.Store().FileOn(ctx, fid)
		if err != nil {
			t.Fatalf("FileOn(%d): %v", fid, err)
		}
		var nodes []int
		for _, d := range devs {
			nodes = append(nodes, c.NodeOf(d))
		}
		slices.Sort(nodes)
		return nodes
	}
	var keys []string
	var fids []int64
	for i := 0; len(keys) < files; i++ {
		if i == 100 {
			t.Fatalf("100 uploads gave %d files on nodes 0 and 1, want %d", len(keys), files)
		}
		key := "k" + strconv.Itoa(i)
		fid := c.Upload(t, "d", key, "two", []byte("data of "+key))
		Eventually(t, key+" on two nodes", func() bool { return len(nodesOf(fid)) == 2 })
		if slices.Equal(nodesOf(fid), []int{0, 1}) {
			keys, fids = append(keys, key), append(fids, fid)
		}
	}
	c.FreezeNode(t, 1)
	start := time.Now()
	for _, key := range keys {
		if err := c.Client().UpdateClass(ctx, "d", key, "three"); err != nil {
			t.Fatalf("UpdateClass(%q): %v", key, err)
		}
	}
	for i, fid := range fids {
		Eventually(t, keys[i]+" on three nodes", func() bool { return len(nodesOf(fid)) == 3 })
	}
	if d := time.Since(start); d >= copyTimeout {
		t.Errorf("the third copies took %s with a source hung, want less than copy_timeout %s", d, copyTimeout)
	}
}
