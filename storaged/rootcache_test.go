package storaged

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// startClockNode starts a node whose device roots and open files (open_file_valid 1s, as rootRecheck)
// age by clk only. With beneath false, reads go through os.Root even where openat2 works.
func startClockNode(t *testing.T, beneath ...bool) (*testNode, *fakeClock) {
	t.Helper()
	clk := &fakeClock{}
	clk.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	n := startNodeWith(t, openFileValid(rootRecheck), func(s *Server) {
		s.root.reads.now = clk.now
		if s.root.files != nil {
			s.root.files.now = clk.now
		}
		if len(beneath) > 0 && !beneath[0] {
			s.root.reads.beneath = false
		}
	})
	return n, clk
}

func TestOpenBeneathAvailable(t *testing.T) {
	// Linux 5.6 and later have openat2; without it every read still works, through os.Root.
	if !haveOpenBeneath(t.TempDir()) {
		t.Skip("openat2 with RESOLVE_BENEATH is not available here")
	}
	if c := newRootCache(t.TempDir()); !c.beneath {
		t.Errorf("newRootCache: beneath = false, want true where openat2 works")
	}
}

// writeFile writes body at rel below dir, creating directories.
func writeFile(t *testing.T, dir, rel string, body []byte) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, body, 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustRename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

func wantGet(t *testing.T, n *testNode, p string, code int, body string) {
	t.Helper()
	resp, got := n.get(t, http.MethodGet, p, nil)
	if resp.StatusCode != code || (code == http.StatusOK && got != body) {
		t.Fatalf("GET %s = %d %q, want %d %q", p, resp.StatusCode, got, code, body)
	}
}

func TestRootCacheReplacedDevice(t *testing.T) {
	t.Parallel()
	n, clk := startClockNode(t)
	const fid = "/dev1/0/000/000/0000000001.fid"
	writeFile(t, n.docroot, fid, []byte("old"))
	wantGet(t, n, fid, http.StatusOK, "old")

	// dev1 renamed away and recreated, as when a disk is swapped: both hold the file.
	mustRename(t, filepath.Join(n.docroot, "dev1"), filepath.Join(n.docroot, "retired1"))
	writeFile(t, n.docroot, fid, []byte("new"))
	wantGet(t, n, fid, http.StatusOK, "old") // the cached root is trusted for a second
	clk.advance(rootRecheck)
	wantGet(t, n, fid, http.StatusOK, "new")

	// Swapped again: a file only the new directory holds is found at once, without waiting.
	mustRename(t, filepath.Join(n.docroot, "dev1"), filepath.Join(n.docroot, "retired2"))
	writeFile(t, n.docroot, fid, []byte("newer"))
	const only = "/dev1/0/000/000/0000000002.fid"
	writeFile(t, n.docroot, only, []byte("only in the new one"))
	wantGet(t, n, only, http.StatusOK, "only in the new one")
	wantGet(t, n, fid, http.StatusOK, "newer")
	if got := n.srv.sizeOf(only); got != int64(len("only in the new one")) {
		t.Errorf("sizeOf(%q) = %d, want %d", only, got, len("only in the new one"))
	}
}

func TestRootCacheDirectoryMountedOver(t *testing.T) {
	t.Parallel()
	// A mount over dev1 looks, to the node, like dev1 naming another directory; a symlinked
	// device repointed by the administrator is the same event.
	n, clk := startClockNode(t)
	disks := t.TempDir()
	const fid = "/dev1/0/000/000/0000000003.fid"
	writeFile(t, filepath.Join(disks, "sdb"), fid, []byte("sdb"))
	writeFile(t, filepath.Join(disks, "sdc"), fid, []byte("sdc"))
	dev1 := filepath.Join(n.docroot, "dev1")
	mustRename(t, dev1, filepath.Join(n.docroot, "orig1")) // it holds the usage file
	if err := os.Symlink(filepath.Join(disks, "sdb", "dev1"), dev1); err != nil {
		t.Fatal(err)
	}
	wantGet(t, n, fid, http.StatusOK, "sdb")
	tmp := filepath.Join(n.docroot, "dev1.new")
	if err := os.Symlink(filepath.Join(disks, "sdc", "dev1"), tmp); err != nil {
		t.Fatal(err)
	}
	mustRename(t, tmp, dev1)
	clk.advance(rootRecheck)
	wantGet(t, n, fid, http.StatusOK, "sdc")
}

func TestRootCacheNewAndRemovedDevice(t *testing.T) {
	t.Parallel()
	n, clk := startClockNode(t)
	const fid = "/dev3/0/000/000/0000000004.fid"
	wantGet(t, n, fid, http.StatusNotFound, "")
	writeFile(t, n.docroot, fid, []byte("on dev3"))
	wantGet(t, n, fid, http.StatusOK, "on dev3")

	// dev3 removed (renamed out of the docroot's device names): gone once rechecked.
	mustRename(t, filepath.Join(n.docroot, "dev3"), filepath.Join(n.docroot, "gone3"))
	clk.advance(rootRecheck)
	wantGet(t, n, fid, http.StatusNotFound, "")
	if got := n.srv.sizeOf(fid); got != -1 {
		t.Errorf("sizeOf(%q) = %d, want -1", fid, got)
	}
	// And back.
	mustRename(t, filepath.Join(n.docroot, "gone3"), filepath.Join(n.docroot, "dev3"))
	wantGet(t, n, fid, http.StatusOK, "on dev3")
}

func TestRootCacheNeverLeavesDevice(t *testing.T) {
	t.Parallel()
	for _, beneath := range []bool{true, false} {
		t.Run(map[bool]string{true: "openat2", false: "os.Root"}[beneath], func(t *testing.T) {
			t.Parallel()
			testNeverLeavesDevice(t, beneath)
		})
	}
}

func testNeverLeavesDevice(t *testing.T, beneath bool) {
	n, clk := startClockNode(t, beneath)
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeFile(t, n.docroot, "/dev2/0/000/000/0000000005.fid", []byte("dev2's file"))
	writeFile(t, n.docroot, "/dev1/0/000/000/0000000006.fid", []byte("dev1's file"))
	wantGet(t, n, "/dev1/0/000/000/0000000006.fid", http.StatusOK, "dev1's file") // dev1 cached

	// Links planted in the cached device and in a device that replaces it.
	links := func(dev string) {
		for name, target := range map[string]string{
			"abs.fid":   secret,
			"up.fid":    "../../../../dev2/0/000/000/0000000005.fid",
			"docroot":   "..",
			"1/000/000": "../../../dev2/0/000",
		} {
			p := filepath.Join(n.docroot, dev, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	probe := func() {
		t.Helper()
		for _, p := range []string{
			"/dev1/abs.fid",
			"/dev1/0/000/000/up.fid",
			"/dev1/docroot/dev2/0/000/000/0000000005.fid",
			"/dev1/1/000/000/000/0000000005.fid",
		} {
			resp, body := n.get(t, http.MethodGet, p, nil)
			if resp.StatusCode == http.StatusOK || bytes.Contains([]byte(body), []byte("secret")) || bytes.Contains([]byte(body), []byte("dev2's")) {
				t.Errorf("GET %s = %d %q, want 403 or 404", p, resp.StatusCode, body)
			}
			if got := n.srv.sizeOf(p); got != -1 {
				t.Errorf("sizeOf(%q) = %d, want -1", p, got)
			}
		}
	}
	writeFile(t, n.docroot, "/dev1/0/000/000/up.fid.keep", nil)
	links("dev1")
	probe()

	mustRename(t, filepath.Join(n.docroot, "dev1"), filepath.Join(n.docroot, "old1"))
	if err := os.Mkdir(filepath.Join(n.docroot, "dev1"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, n.docroot, "/dev1/0/000/000/up.fid.keep", nil)
	links("dev1")
	clk.advance(rootRecheck)
	probe()
}

// TestRootCacheConcurrentSwap swaps dev1 between two directories while GETs run: every answer
// is one directory's file, whole, or a 404 while no dev1 exists; never an error or a mix.
func TestRootCacheConcurrentSwap(t *testing.T) {
	t.Parallel()
	// Every read rechecks the device path, so swaps race with reopens and closes of roots.
	n := startNodeWith(t, nil, func(s *Server) { s.root.reads.recheck = 0 })
	const fid = "/dev1/0/000/000/0000000007.fid"
	bodyA := bytes.Repeat([]byte{'a'}, 5000)  // read into the reply
	bodyB := bytes.Repeat([]byte{'b'}, 70000) // sent with sendfile
	sideA, sideB := filepath.Join(n.docroot, "side-a"), filepath.Join(n.docroot, "side-b")
	dev1 := filepath.Join(n.docroot, "dev1")
	mustRename(t, dev1, filepath.Join(n.docroot, "orig1")) // it holds the usage file
	writeFile(t, sideA, "/dev1"+fid[len("/dev1"):], bodyA)
	writeFile(t, sideB, "/dev1"+fid[len("/dev1"):], bodyB)
	mustRename(t, filepath.Join(sideA, "dev1"), dev1)

	var done atomic.Bool
	var wg sync.WaitGroup
	var seenA, seenB, seen404, seen503 atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer client.CloseIdleConnections()
			for i := 0; i < 20000 && !done.Load(); i++ {
				resp, err := client.Get(n.url(fid))
				if err != nil {
					t.Errorf("GET %s: %v", fid, err)
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case err != nil:
					t.Errorf("GET %s: reading body: %v", fid, err)
					return
				case resp.StatusCode == http.StatusNotFound:
					seen404.Add(1)
				case resp.StatusCode == http.StatusServiceUnavailable:
					// Lost the race with maxRootAttempts swaps in a row (every read rechecks here,
					// and swaps come every few answers): "try again", never a wrong or short body.
					seen503.Add(1)
				case resp.StatusCode == http.StatusOK && bytes.Equal(b, bodyA):
					seenA.Add(1)
				case resp.StatusCode == http.StatusOK && bytes.Equal(b, bodyB):
					seenB.Add(1)
				default:
					t.Errorf("GET %s = %d, %d bytes %q, want 200 with one side's %d or %d bytes, 404 or 503",
						fid, resp.StatusCode, len(b), b[:min(len(b), 200)], len(bodyA), len(bodyB))
					return
				}
			}
		}()
	}
	// Swap dev1 between the two sides, waiting for a few answers between swaps.
	cur, other := sideA, sideB
	for range 100 {
		before := seenA.Load() + seenB.Load() + seen404.Load() + seen503.Load()
		mustRename(t, dev1, filepath.Join(cur, "dev1"))
		mustRename(t, filepath.Join(other, "dev1"), dev1)
		cur, other = other, cur
		waitFor(t, "answers after a swap", func() bool {
			return seenA.Load()+seenB.Load()+seen404.Load()+seen503.Load() >= before+4 || t.Failed()
		})
		if t.Failed() {
			break
		}
	}
	done.Store(true)
	wg.Wait()
	t.Logf("answers: %d from side A, %d from side B, %d 404, %d 503", seenA.Load(), seenB.Load(), seen404.Load(), seen503.Load())
	want := bodyA
	if cur == sideB {
		want = bodyB
	}
	wantGet(t, n, fid, http.StatusOK, string(want))
}

// TestRootCacheClosedRoot: a read that picks a root just as it is replaced and closed is retried
// through the new root.
func TestRootCacheClosedRoot(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "/dev1/f", []byte("one"))
	c := newRootCache(dir)
	defer c.Close()
	e, err := c.get("dev1")
	if err != nil {
		t.Fatal(err)
	}
	// Closed while still cached, and dev1 unchanged: the retry must reopen it all the same.
	e.close()
	got, err := withRoot(c, "dev1", "f", func(e *devRoot, name string) ([]byte, error) { return e.root.ReadFile(name) })
	if err != nil || string(got) != "one" {
		t.Fatalf("ReadFile(dev1/f) = %q, %v, want %q", got, err, "one")
	}
	if c.beneath {
		e, err := c.get("dev1")
		if err != nil {
			t.Fatal(err)
		}
		e.close()
		f, err := c.open("dev1", "f")
		if err != nil {
			t.Fatalf("open(dev1/f) after close: %v", err)
		}
		got, err := io.ReadAll(f)
		f.Close()
		if err != nil || string(got) != "one" {
			t.Fatalf("read dev1/f = %q, %v, want %q", got, err, "one")
		}
	}
}

func TestRootCacheClosedWithServer(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	writeFile(t, n.docroot, "/dev1/0/000/000/0000000008.fid", []byte("x"))
	writeFile(t, n.docroot, "/dev2/0/000/000/0000000008.fid", []byte("y"))
	wantGet(t, n, "/dev1/0/000/000/0000000008.fid", http.StatusOK, "x")
	wantGet(t, n, "/dev2/0/000/000/0000000008.fid", http.StatusOK, "y")
	c := n.srv.root.reads
	c.mu.Lock()
	open := len(c.devs)
	c.mu.Unlock()
	if open != 2 {
		t.Fatalf("cached roots while serving = %d, want 2", open)
	}
	n.cancel()
	err := <-n.done
	n.done <- err // for startNode's cleanup
	c.mu.Lock()
	open = len(c.devs)
	c.mu.Unlock()
	if open != 0 {
		t.Errorf("cached roots after Serve returned = %d, want 0", open)
	}
}

// TestGetThroughRoot serves files of every size class, whole, by range and by HEAD, with reads
// going through os.Root as on kernels without openat2.
func TestGetThroughRoot(t *testing.T) {
	t.Parallel()
	n, _ := startClockNode(t, false)
	if n.srv.root.reads.beneath {
		t.Fatal("beneath = true, want false")
	}
	for i, size := range []int{0, 1, smallFileSize, smallFileSize + 1, 1 << 20} {
		body := bytes.Repeat([]byte{byte('a' + i)}, size)
		body = append(body[:0:0], body...)
		if size > 0 {
			body[size-1] = 'z'
		}
		p := "/dev2/0/000/000/00000001" + strconv.Itoa(10+i) + ".fid"
		writeFile(t, n.docroot, p, body)
		wantGet(t, n, p, http.StatusOK, string(body))
		resp, got := n.get(t, http.MethodHead, p, nil)
		if resp.StatusCode != http.StatusOK || got != "" || resp.ContentLength != int64(size) {
			t.Errorf("HEAD %s = %d, length %d, %d bytes; want 200, %d, none", p, resp.StatusCode, resp.ContentLength, len(got), size)
		}
		if size > 1 {
			resp, got := n.get(t, http.MethodGet, p, map[string]string{"Range": "bytes=-2"})
			if resp.StatusCode != http.StatusPartialContent || got != string(body[size-2:]) {
				t.Errorf("GET %s bytes=-2 = %d %q, want 206 %q", p, resp.StatusCode, got, body[size-2:])
			}
		}
	}
}

// FuzzOpenGetConfined: whatever path a read is asked for, it never opens a file outside its
// device, through openat2 or through os.Root.
func FuzzOpenGetConfined(f *testing.F) {
	for _, s := range []string{"f", "../secret", "up/secret", "abs", "loop", "../dev2/f", "./f", "a/../f", "..", "/", "up/../../secret"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	outside := f.TempDir()
	secret := filepath.Join(outside, "secret")
	os.WriteFile(secret, []byte("secret"), 0o644)
	top := filepath.Join(outside, "docroot")
	for _, d := range []string{"dev1", "dev2"} {
		os.MkdirAll(filepath.Join(top, d), 0o755)
	}
	os.WriteFile(filepath.Join(top, "dev1", "f"), []byte("inside"), 0o644)
	os.WriteFile(filepath.Join(top, "dev2", "f"), []byte("dev2"), 0o644)
	os.WriteFile(filepath.Join(top, "secret"), []byte("secret"), 0o644)
	os.Symlink("../..", filepath.Join(top, "dev1", "up"))
	os.Symlink(secret, filepath.Join(top, "dev1", "abs"))
	os.Symlink("loop", filepath.Join(top, "dev1", "loop"))
	roots := map[bool]docroot{true: newDocroot(top, 0), false: newDocroot(top, 0)}
	roots[false].reads.beneath = false
	f.Cleanup(func() {
		for _, d := range roots {
			d.closeReads()
		}
	})
	f.Fuzz(func(t *testing.T, inner string, beneath bool) {
		g, err := roots[beneath].openGet("dev1/"+inner, false)
		if err != nil {
			return
		}
		defer g.close()
		fm, err := g.stat()
		if err != nil || !fm.mode.IsRegular() || fm.size > 64 {
			return
		}
		buf := make([]byte, fm.size)
		if err := g.readAt(buf, 0); err != nil {
			t.Fatalf("openGet(%q): read: %v", inner, err)
		}
		if got := string(buf); got != "inside" {
			t.Fatalf("openGet(dev1/%q) read %q, want only dev1's file", inner, got)
		}
	})
}
