package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/mogway/mogway/internal/clustertest"
	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/tracker/client"
	"github.com/mogway/mogway/tracker/mogproto"
)

// pool returns a pool over the cluster's trackers, closed at the end of the test.
func pool(t *testing.T, c *clustertest.Cluster) *client.Pool {
	t.Helper()
	p, err := client.NewPool(client.Config{Trackers: c.TrackerAddrs(), Timeout: conf.Duration(clustertest.Timeout)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), clustertest.Timeout)
	t.Cleanup(cancel)
	return ctx
}

func TestClusterFileHelpers(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Nodes: 2, Domains: map[string]map[string]int{"d": {"c1": 1, "c2": 2}}})
	p := pool(t, c)
	ctx := ctxT(t)

	key := "a b+c/été&x=y"
	body := []byte("hello, cluster")
	fid, err := p.Upload(ctx, "d", key, "c1", bytes.NewReader(body), int64(len(body)))
	if err != nil || fid <= 0 {
		t.Fatalf("Upload = %d, %v", fid, err)
	}
	var buf bytes.Buffer
	if n, err := p.Fetch(ctx, "d", key, &buf); err != nil || n != int64(len(body)) || !bytes.Equal(buf.Bytes(), body) {
		t.Fatalf("Fetch = %d, %v, %q, want %q", n, err, buf.Bytes(), body)
	}
	fi, err := p.FileInfo(ctx, "d", key)
	if err != nil || fi.Fid != fid || fi.Key != key || fi.Length != int64(len(body)) || fi.Class != "c1" || fi.Domain != "d" {
		t.Fatalf("FileInfo = %+v, %v", fi, err)
	}
	keys, next, err := p.ListKeys(ctx, "d", "a b+", "", 0)
	if err != nil || !slices.Equal(keys, []string{key}) || next != key {
		t.Errorf("ListKeys = %q, %q, %v", keys, next, err)
	}
	if keys, _, err := p.ListKeys(ctx, "d", "zzz", "", 0); err != nil || len(keys) != 0 {
		t.Errorf("ListKeys(no match) = %q, %v, want empty and nil", keys, err)
	}

	if err := p.Rename(ctx, "d", key, "k2"); err != nil {
		t.Fatalf("Rename = %v", err)
	}
	if _, err := p.GetPaths(ctx, "d", key, client.GetPathsOptions{}); !mogproto.IsCode(err, mogproto.ErrUnknownKey) {
		t.Errorf("GetPaths(old key) = %v, want unknown_key", err)
	}
	if err := p.UpdateClass(ctx, "d", "k2", "c2"); err != nil {
		t.Fatalf("UpdateClass = %v", err)
	}
	clustertest.Eventually(t, "a second copy after updateclass", func() bool {
		paths, err := p.GetPaths(ctx, "d", "k2", client.GetPathsOptions{NoVerify: true})
		return err == nil && len(paths) == 2
	})
	if err := p.Delete(ctx, "d", "k2"); err != nil {
		t.Fatalf("Delete = %v", err)
	}
	if err := p.Delete(ctx, "d", "k2"); !mogproto.IsCode(err, mogproto.ErrUnknownKey) {
		t.Errorf("second Delete = %v, want unknown_key", err)
	}
	if _, err := p.CreateOpen(ctx, "d", "k", "nope"); !mogproto.IsCode(err, mogproto.ErrUnregClass) {
		t.Errorf("CreateOpen(class nope) = %v, want unreg_class", err)
	}
}

func TestClusterAdminHelpers(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Nodes: 2})
	p := pool(t, c)
	ctx := ctxT(t)

	hosts, err := p.GetHosts(ctx)
	if err != nil || len(hosts) != 2 {
		t.Fatalf("GetHosts = %+v, %v, want 2 hosts", hosts, err)
	}
	devs, err := p.GetDevices(ctx)
	if err != nil || len(devs) != 2 {
		t.Fatalf("GetDevices = %+v, %v, want 2 devices", devs, err)
	}
	if err := p.CreateDomain(ctx, "d2"); err != nil {
		t.Fatalf("CreateDomain = %v", err)
	}
	if err := p.CreateDomain(ctx, "d2"); !mogproto.IsCode(err, mogproto.ErrDomainExists) {
		t.Errorf("CreateDomain twice = %v, want domain_exists", err)
	}
	if err := p.CreateClass(ctx, client.ClassSpec{Domain: "d2", Class: "x", MinDevCount: 2, HashType: "MD5"}); err != nil {
		t.Fatalf("CreateClass = %v", err)
	}
	if err := p.ModifyClass(ctx, client.ClassSpec{Domain: "d2", Class: "x", MinDevCount: 1}); err != nil {
		t.Fatalf("ModifyClass = %v", err)
	}
	doms, err := p.GetDomains(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var x *client.Class
	for _, d := range doms {
		if d.Name == "d2" {
			for i := range d.Classes {
				if d.Classes[i].Name == "x" {
					x = &d.Classes[i]
				}
			}
		}
	}
	if x == nil || x.MinDevCount != 1 || x.HashType != "MD5" {
		t.Errorf("class x = %+v, want mindevcount 1 and hashtype MD5", x)
	}
	if err := p.DeleteDomain(ctx, "d2"); !mogproto.IsCode(err, mogproto.ErrDomainHasClasses) {
		t.Errorf("DeleteDomain with a class = %v, want domain_has_classes", err)
	}
	if err := p.DeleteClass(ctx, "d2", "x"); err != nil {
		t.Fatalf("DeleteClass = %v", err)
	}
	if err := p.DeleteDomain(ctx, "d2"); err != nil {
		t.Fatalf("DeleteDomain = %v", err)
	}
	if err := p.SetServerSetting(ctx, "skip_mkcol", "on"); err != nil {
		t.Fatalf("SetServerSetting = %v", err)
	}
	if v, err := p.ServerSetting(ctx, "skip_mkcol"); err != nil || v != "1" {
		t.Errorf("ServerSetting = %q, %v, want 1", v, err)
	}
	if err := p.SetServerSetting(ctx, "foo", "1"); !mogproto.IsCode(err, mogproto.ErrNotWritable) {
		t.Errorf("SetServerSetting(foo) = %v, want not_writable", err)
	}
	if err := p.SetWeight(ctx, c.HostName(0), int64(c.DevIDs(0)[0]), 50); err != nil {
		t.Errorf("SetWeight = %v", err)
	}
	if err := p.SetState(ctx, c.HostName(1), int64(c.DevIDs(0)[0]), "down"); !mogproto.IsCode(err, mogproto.ErrHostMismatch) {
		t.Errorf("SetState on the wrong host = %v, want host_mismatch", err)
	}
	if err := p.DeleteHost(ctx, c.HostName(0)); !mogproto.IsCode(err, mogproto.ErrHostNotEmpty) {
		t.Errorf("DeleteHost with devices = %v, want host_not_empty", err)
	}
}

func TestClusterTrackerFailover(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Nodes: 2, Trackers: 2, Domains: map[string]map[string]int{"d": {"c1": 1}}})
	p, err := client.NewPool(client.Config{Trackers: c.TrackerAddrs(), Timeout: 0, RetryAfter: 0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := ctxT(t)
	c.Upload(t, "d", "k", "c1", []byte("x"))
	c.StopTracker(t, 0)
	for i := range 4 {
		if _, err := p.GetPaths(ctx, "d", "k", client.GetPathsOptions{NoVerify: true}); err != nil {
			t.Fatalf("GetPaths %d with one tracker stopped = %v", i, err)
		}
	}
	st := p.Stats()
	if st.Trackers[0].Up || !st.Trackers[1].Up {
		t.Errorf("Stats = %+v, want the stopped tracker down and the other up", st)
	}
	c.StopTracker(t, 1)
	_, err = p.GetPaths(ctx, "d", "k", client.GetPathsOptions{})
	if !errors.Is(err, client.ErrUnavailable) {
		t.Errorf("GetPaths with every tracker stopped = %v, want ErrUnavailable", err)
	}
}

// A pool with MaxConnsPerTracker never has more connections open to a real tracker: many more
// concurrent lookups than that all get their answers over the same few connections. The tracker
// accepting no more than the bound in all proves it never had more at once.
func TestClusterMaxConnsPerTracker(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Nodes: 1, Domains: map[string]map[string]int{"d": {"c1": 1}}})
	const limit, callers, rounds = 3, 24, 10
	for i := range callers {
		c.Upload(t, "d", fmt.Sprintf("k%d", i), "c1", []byte("x"))
	}
	p, err := client.NewPool(client.Config{Trackers: c.TrackerAddrs(), MaxConnsPerTracker: limit,
		DialTimeout: conf.Duration(clustertest.Timeout), Timeout: conf.Duration(clustertest.Timeout)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := ctxT(t)
	before := c.Tracker(0).Stats().Accepted
	testutil.Concurrently(t, callers, func(i int) error {
		for range rounds {
			paths, err := p.GetPaths(ctx, "d", fmt.Sprintf("k%d", i), client.GetPathsOptions{NoVerify: true})
			if err != nil {
				return err
			}
			if len(paths) != 1 {
				return fmt.Errorf("GetPaths(k%d) = %q, want one path", i, paths)
			}
		}
		return nil
	})
	if n := c.Tracker(0).Stats().Accepted - before; n > limit {
		t.Errorf("the tracker accepted %d connections for %d concurrent callers, want at most %d", n, callers, limit)
	}
	st := p.Stats().Trackers[0]
	if st.Requests != callers*rounds || st.Opened > limit || st.Idle > limit || st.WaitTimeouts != 0 || st.Failures != 0 {
		t.Errorf("Stats = %+v, want %d requests on at most %d connections, no wait run out", st, callers*rounds, limit)
	}
	t.Logf("%d of %d lookups waited for a connection", st.Waits, st.Requests)
}

// AdminCommand speaks the admin lines (spec 2.7) to one real tracker, and refuses what is not one.
func TestClusterAdminCommand(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Nodes: 1})
	addr := c.TrackerAddrs()[0]
	lines, err := client.AdminCommand(ctxT(t), addr, "!stats", clustertest.Timeout)
	if err != nil || !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "uptime ") }) {
		t.Fatalf("!stats = %q, %v; want its lines, uptime among them", lines, err)
	}
	if slices.Contains(lines, ".") {
		t.Errorf("!stats = %q: the closing line is not part of the answer", lines)
	}
	for _, bad := range []string{"stats", "!stats\r\n!version", ""} {
		if _, err := client.AdminCommand(ctxT(t), addr, bad, clustertest.Timeout); err == nil {
			t.Errorf("AdminCommand(%q) = nil error, want a refusal", bad)
		}
	}
	if _, err := client.AdminCommand(ctxT(t), "127.0.0.1:1", "!stats", clustertest.Timeout); err == nil {
		t.Error("AdminCommand to a closed port = nil error")
	}
}
