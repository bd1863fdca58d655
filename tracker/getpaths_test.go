package tracker

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/tracker/mogproto"
)

// pathFid is the fid in a get_paths path (…/0000/000/000/0000000042.fid).
func pathFid(t *testing.T, path string) string {
	t.Helper()
	i := strings.LastIndexByte(path, '/')
	if i < 0 || !strings.HasSuffix(path, ".fid") {
		t.Fatalf("path %q has no fid file name", path)
	}
	return strings.TrimLeft(strings.TrimSuffix(path[i+1:], ".fid"), "0")
}

// TestGetPathsSeesWrites: get_paths answers a key from the store's Locate cache, and every write
// through the tracker shows in the very next get_paths on the same connection: a new upload over
// the key, a rename, a delete. The key is read twice before each write, so it is cached.
func TestGetPathsSeesWrites(t *testing.T) {
	c := startCluster(t)
	lc := c.lc
	fidOf := func(key string) string {
		t.Helper()
		var fid string
		for range 2 {
			gp := lc.ok("get_paths domain=d&key=" + key + "&noverify=1")
			if gp.Get("paths") != "1" {
				t.Fatalf("get_paths %s = %v, want one path", key, gp)
			}
			fid = pathFid(t, gp.Get("path1"))
		}
		return fid
	}
	unknown := func(key string) {
		t.Helper()
		if got := lc.do("get_paths domain=d&key=" + key); got != "ERR unknown_key unknown_key" {
			t.Fatalf("get_paths %s = %q, want ERR unknown_key", key, got)
		}
	}

	unknown("k") // not found is not remembered
	first, _ := c.upload(t, "k", "c1", []byte("one"))
	if got := fidOf("k"); got != first {
		t.Fatalf("get_paths k: fid %s, want %s", got, first)
	}
	second, _ := c.upload(t, "k", "c1", []byte("two"))
	if got := fidOf("k"); got != second {
		t.Fatalf("get_paths k after a new upload: fid %s, want %s", got, second)
	}
	lc.ok("rename domain=d&from_key=k&to_key=k2")
	unknown("k")
	if got := fidOf("k2"); got != second {
		t.Fatalf("get_paths k2 after rename: fid %s, want %s", got, second)
	}
	lc.ok("delete domain=d&key=k2")
	unknown("k2")
}

// TestGetPathsOtherTracker: a second tracker on the same SQLite file caches a key it located; a
// delete or an overwrite through the first tracker is seen by it as soon as the write returned.
func TestGetPathsOtherTracker(t *testing.T) {
	c := startCluster(t)
	c.upload(t, "shared", "c1", []byte("x"))
	other := startTrackerOn(t, c.tt.db, Config{}, func(*Server) {})
	other.observeAll(1, 2, 3)
	olc := other.dial(t)
	if gp := olc.ok("get_paths domain=d&key=shared&noverify=1"); gp.Get("paths") != "1" {
		t.Fatalf("get_paths on the other tracker = %v, want one path", gp)
	}
	c.lc.ok("delete domain=d&key=shared")
	// The delete has returned, so the other tracker, which had the key in its Locate cache, must
	// already answer without it (its cache watches the file's commits).
	if got := olc.do("get_paths domain=d&key=shared&noverify=1"); got != "ERR unknown_key unknown_key" {
		t.Fatalf("get_paths on the other tracker right after the delete = %q, want ERR unknown_key", got)
	}
	// An overwrite through one tracker is read at once through the other.
	c.upload(t, "shared", "c1", []byte("first"))
	first := olc.ok("get_paths domain=d&key=shared&noverify=1").Get("path1")
	c.upload(t, "shared", "c1", []byte("second"))
	gp := olc.ok("get_paths domain=d&key=shared&noverify=1")
	if got := gp.Get("path1"); got == first {
		t.Fatalf("get_paths on the other tracker right after an overwrite = %q, the old fid's path", got)
	}
	// A rename through one tracker is read at once through the other.
	c.lc.ok("rename domain=d&from_key=shared&to_key=moved")
	if got := olc.do("get_paths domain=d&key=shared&noverify=1"); got != "ERR unknown_key unknown_key" {
		t.Fatalf("get_paths of the old key on the other tracker right after a rename = %q, want ERR unknown_key", got)
	}
	if got := pathFid(t, olc.ok("get_paths domain=d&key=moved&noverify=1").Get("path1")); got != pathFid(t, gp.Get("path1")) {
		t.Fatalf("get_paths of the new key on the other tracker right after a rename: fid %s, want %s", got, pathFid(t, gp.Get("path1")))
	}
	// New copies written by the first tracker (as its replication worker does) are read at once.
	fid, err := strconv.ParseInt(pathFid(t, gp.Get("path1")), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	for _, dev := range []int{1, 2, 3} {
		if err := c.tt.st.AddFileOn(context.Background(), fid, dev); err != nil {
			t.Fatalf("AddFileOn(%d, %d): %v", fid, dev, err)
		}
	}
	if got := olc.ok("get_paths domain=d&key=moved&noverify=1").Get("paths"); got != "2" {
		t.Fatalf("get_paths on the other tracker right after replication: paths=%s, want 2", got)
	}
}

// startGetPaths starts a tracker with key "k" of domain d stored on devices 1 and 3 (two hosts,
// every device observed), the get_paths load of the bench's tracker rows.
func startGetPaths(b testing.TB) *testTracker {
	b.Helper()
	tt := startTracker(b, Config{})
	fixture(b, tt.dial(b), "127.0.0.2", "7500", "127.0.0.3", "7500")
	tt.observeAll(1, 2, 3)
	tt.storeKey(b, "k", 4096, 1, 3)
	return tt
}

// TestGetPathsAllocs: get_paths noverify=1 of a located key, answered on a connection, allocates
// only the string of its URLs (the connection's request line is the caller's).
func TestGetPathsAllocs(t *testing.T) {
	dispatchAllocs(t, startGetPaths(t), "get_paths domain=d&key=k&noverify=1", "OK paths=2&path1=http://127.0.0.", 1)
}

// TestGetPathsVerifyAllocs: get_paths with verification, its HEAD answered at once, allocates as
// much as without: only the string of its URLs. The HEAD reuses its request buffer, its
// connection's watch of the query's context and the verifier's call, and checks a URL that is part
// of the reply's string; it made seven allocations of its own before.
func TestGetPathsVerifyAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("counted without the race detector (see raceEnabled)")
	}
	port1, heads := plainNode(t, "127.0.0.2")
	port2, _ := plainNode(t, "127.0.0.3")
	tt := startHedged(t, Config{}, port1, port2)
	runs := dispatchAllocs(t, tt, "get_paths domain=d&key=k", "OK paths=2&path1=http://127.0.0.2:", 1)
	// Each get_paths was verified: a count of get_paths without its HEAD would pass unseen.
	if got := heads.Load(); got != int64(runs) {
		t.Errorf("the node of path1 answered %d HEADs for %d get_paths, want one each", got, runs)
	}
}

// dispatchAllocs checks that line, dispatched on a connection of tt with the context queries get
// (the server's, which a stop cancels), answers with a reply that begins with prefix and allocates
// at most want times. It returns how many times it dispatched line.
func dispatchAllocs(t *testing.T, tt *testTracker, line, prefix string, want float64) (runs int) {
	t.Helper()
	c := &conn{s: tt.s, res: make(mogproto.Args, 0, 1+len(pathNames))}
	var out []byte
	run := func() {
		out = tt.s.dispatch(tt.s.stopCtx, c, line, out[:0])
		runs++
	}
	run()
	if !strings.HasPrefix(string(out), prefix) {
		t.Fatalf("%s = %q, want %s…", line, out, prefix)
	}
	if n := testing.AllocsPerRun(100, run); n > want {
		t.Errorf("dispatch(%q) allocs = %v, want %v", line, n, want)
	}
	return runs
}

// plainNode is a storage node on ip that answers each HEAD with Content-Length 5 without
// allocating, so that an allocation count of the tracker counts the tracker's alone. It returns
// the port and the count of HEADs answered.
func plainNode(t testing.TB, ip string) (port string, heads *atomic.Int64) {
	t.Helper()
	ln := testutil.Listen(t, ip+":0")
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	reply := []byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
	heads = new(atomic.Int64)
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			context.AfterFunc(t.Context(), func() { nc.Close() })
			wg.Go(func() {
				defer nc.Close()
				var buf [4096]byte
				n := 0
				for {
					m, err := nc.Read(buf[n:])
					if err != nil {
						return
					}
					n += m
					// One request at a time: the tracker sends the next once this one is answered.
					if n >= 4 && string(buf[n-4:n]) == "\r\n\r\n" {
						n = 0
						heads.Add(1)
						if _, err := nc.Write(reply); err != nil {
							return
						}
					}
					if n == len(buf) {
						return
					}
				}
			})
		}
	})
	_, port, _ = net.SplitHostPort(ln.Addr().String())
	return port, heads
}
