package clustertest

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mogway/mogway/tracker/store"
	"github.com/mogway/mogway/tracker/worker"
)

// hostsOf returns the distinct host:port of the URLs.
func hostsOf(t *testing.T, paths []string) map[string]bool {
	t.Helper()
	hosts := map[string]bool{}
	for _, p := range paths {
		u, err := url.Parse(p)
		if err != nil {
			t.Fatalf("path %q: %v", p, err)
		}
		hosts[u.Host] = true
	}
	return hosts
}

// devOf returns the devid in a path URL (http://ip:port/dev<N>/...).
func devOf(t *testing.T, path string) int {
	t.Helper()
	u, err := url.Parse(path)
	if err != nil {
		t.Fatal(err)
	}
	seg, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/dev"), "/")
	n, err := strconv.Atoi(seg)
	if err != nil {
		t.Fatalf("path %q has no /dev<N>", path)
	}
	return n
}

func TestUploadReplicatesToDistinctHosts(t *testing.T) {
	t.Parallel()
	c := New(t, Options{Nodes: 3, Domains: map[string]map[string]int{"d": {"c2": 2}}})
	data := bytes.Repeat([]byte("clustertest "), 1000)
	fid := c.Upload(t, "d", "k", "c2", data)
	Eventually(t, "two paths on distinct hosts", func() bool {
		return len(hostsOf(t, c.GetPaths(t, "d", "k"))) == 2
	})
	if got := c.Fetch(t, "d", "k"); !bytes.Equal(got, data) {
		t.Fatalf("Fetch = %d bytes, want the %d uploaded", len(got), len(data))
	}
	for _, p := range c.GetPaths(t, "d", "k") {
		if got := c.ReadCopy(devOf(t, p), fid); !bytes.Equal(got, data) {
			t.Fatalf("copy behind %s holds %d bytes, want %d", p, len(got), len(data))
		}
	}
	Eventually(t, "replication queue empty", func() bool {
		n, err := c.Store().QueueLen(context.Background(), store.QueueReplicate)
		return err == nil && n == 0
	})
}

func TestDeadNodeReaperRestoresCopies(t *testing.T) {
	t.Parallel()
	c := New(t, Options{Nodes: 3, Domains: map[string]map[string]int{"d": {"c2": 2}}})
	data := []byte("survives a dead node")
	fid := c.Upload(t, "d", "k", "c2", data)
	Eventually(t, "two copies", func() bool { return len(c.GetPaths(t, "d", "k")) == 2 })
	victim := devOf(t, c.GetPaths(t, "d", "k")[0])
	node := c.NodeOf(victim)
	c.StopNode(t, node)
	c.WaitObserved(t, 0, "unreachable", victim)
	Eventually(t, "get_paths without the dead node", func() bool {
		for _, p := range c.GetPaths(t, "d", "k") {
			if devOf(t, p) == victim {
				return false
			}
		}
		return true
	})
	c.SetState(t, victim, "dead")
	Eventually(t, "copy count restored on live hosts", func() bool {
		paths := c.GetPaths(t, "d", "k")
		if len(paths) != 2 || len(hostsOf(t, paths)) != 2 {
			return false
		}
		for _, p := range paths {
			if devOf(t, p) == victim {
				return false
			}
		}
		return true
	})
	for _, p := range c.GetPaths(t, "d", "k") {
		if got := c.ReadCopy(devOf(t, p), fid); !bytes.Equal(got, data) {
			t.Fatalf("copy behind %s = %q, want %q", p, got, data)
		}
	}
}

func TestNodeRestart(t *testing.T) {
	t.Parallel()
	c := New(t, Options{Nodes: 2, Domains: map[string]map[string]int{"d": {"c1": 1}}})
	addr, _ := c.Node(1)
	c.StopNode(t, 1)
	c.WaitObserved(t, 0, "unreachable", c.DevIDs(1)...)
	c.StartNode(t, 1)
	if again, _ := c.Node(1); again != addr {
		t.Fatalf("Node(1) after restart = %s, want %s", again, addr)
	}
	c.WaitWritable(t, 0, c.DevIDs(1)...)
}

func TestTwoTrackersOneStore(t *testing.T) {
	t.Parallel()
	c := New(t, Options{Nodes: 2, Trackers: 2, Domains: map[string]map[string]int{"d": {"c2": 2}}})
	if len(c.TrackerAddrs()) != 2 {
		t.Fatalf("TrackerAddrs() = %v, want two", c.TrackerAddrs())
	}
	const files = 10
	for i := range files {
		c.Upload(t, "d", "k"+strconv.Itoa(i), "c2", []byte("payload "+strconv.Itoa(i)))
	}
	Eventually(t, "every key on two hosts", func() bool {
		for i := range files {
			if len(hostsOf(t, c.GetPaths(t, "d", "k"+strconv.Itoa(i)))) != 2 {
				return false
			}
		}
		return true
	})
	c.StopTracker(t, 0)
	if c.Tracker(0) != nil || c.Tracker(1) == nil {
		t.Fatalf("Tracker(0), Tracker(1) = %v, %v; want nil and a running tracker", c.Tracker(0), c.Tracker(1))
	}
	if got := c.Fetch(t, "d", "k3"); string(got) != "payload 3" {
		t.Fatalf("Fetch(k3) through the surviving tracker = %q, want %q", got, "payload 3")
	}
}

func TestFsckThroughProtocol(t *testing.T) {
	t.Parallel()
	c := New(t, Options{Nodes: 2, Domains: map[string]map[string]int{"d": {"c2": 2}}})
	data := bytes.Repeat([]byte("fsck me "), 100)
	fid := c.Upload(t, "d", "k", "c2", data)
	Eventually(t, "two copies", func() bool { return len(c.GetPaths(t, "d", "k")) == 2 })
	dev := devOf(t, c.GetPaths(t, "d", "k")[1])
	_, docroot := c.Node(c.NodeOf(dev))
	if err := os.WriteFile(filepath.Join(docroot, filepath.FromSlash(worker.FidPath(dev, fid))), data[:7], 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p := c.Client()
	if err := p.FsckStart(ctx); err != nil {
		t.Fatalf("FsckStart: %v", err)
	}
	Eventually(t, "fsck done", func() bool {
		st, err := p.FsckStatus(ctx)
		return err == nil && st.Get("running") == "0" && st.Get("num_BLEN") == "1"
	})
	Eventually(t, "truncated copy repaired", func() bool { return bytes.Equal(c.ReadCopy(dev, fid), data) })
}

// Two trackers on MariaDB: replication and a reaper run cooperate through GET_LOCK and leases.
func TestTwoTrackersOnMySQL(t *testing.T) {
	t.Parallel()
	c := New(t, Options{Nodes: 3, Trackers: 2, DSN: MySQLDSN(t), Domains: map[string]map[string]int{"d": {"c2": 2}}})
	const files = 6
	for i := range files {
		c.Upload(t, "d", "k"+strconv.Itoa(i), "c2", []byte("on mysql "+strconv.Itoa(i)))
	}
	Eventually(t, "every key on two hosts", func() bool {
		for i := range files {
			if len(hostsOf(t, c.GetPaths(t, "d", "k"+strconv.Itoa(i)))) != 2 {
				return false
			}
		}
		return true
	})
	c.StopNode(t, 0)
	for _, dev := range c.DevIDs(0) {
		c.SetState(t, dev, "dead")
	}
	Eventually(t, "copies restored on the two live nodes", func() bool {
		for i := range files {
			paths := c.GetPaths(t, "d", "k"+strconv.Itoa(i))
			if len(hostsOf(t, paths)) != 2 {
				return false
			}
			for _, p := range paths {
				if c.NodeOf(devOf(t, p)) == 0 {
					return false
				}
			}
		}
		return true
	})
}

// Spec 8.3 #44 (b): when every device holding a file is dead, reaping leaves no copy; get_paths
// answers paths=0 and the replication row is parked until an operator acts.
func TestAllCopiesDeadParksReplication(t *testing.T) {
	t.Parallel()
	c := New(t, Options{Nodes: 3, Domains: map[string]map[string]int{"d": {"c2": 2}}})
	fid := c.Upload(t, "d", "k", "c2", []byte("lost for good"))
	ctx := context.Background()
	var on []int
	Eventually(t, "two copies", func() bool {
		var err error
		on, err = c.Store().FileOn(ctx, fid)
		return err == nil && len(on) == 2
	})
	for _, dev := range on {
		c.SetState(t, dev, "dead")
	}
	Eventually(t, "replication parked", func() bool {
		j, err := c.Store().QueueJobs(ctx, store.QueueReplicate, fid)
		return err == nil && j.NextTry == store.NeverRetry
	})
	if paths := c.GetPaths(t, "d", "k"); len(paths) != 0 {
		t.Fatalf("GetPaths = %v, want none", paths)
	}
}
