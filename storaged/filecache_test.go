package storaged

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mogway/mogway/internal/conf"
)

// With open_file_valid 0s a file kept open between GETs is served only while its path still names
// it: every change made behind the node's back or through it is seen by the next GET, and changes
// through the node forget the descriptor at once.
func TestGetOpenFileCache(t *testing.T) {
	t.Parallel()
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		change     func(t *testing.T, n *testNode, p string)
		wantStatus int
		wantBody   string
		wantKept   int // cached entries right after change, before the GET
	}{
		{"unchanged", func(*testing.T, *testNode, string) {}, 200, "first", 1},
		{"renamed over", func(t *testing.T, n *testNode, p string) {
			tmp := p + ".tmp"
			must(t, os.WriteFile(tmp, []byte("second, longer"), 0o644))
			must(t, os.Rename(tmp, p))
		}, 200, "second, longer", 1},
		{"rewritten in place", func(t *testing.T, n *testNode, p string) {
			must(t, os.WriteFile(p, []byte("third"), 0o644))
		}, 200, "third", 1},
		{"removed", func(t *testing.T, n *testNode, p string) { must(t, os.Remove(p)) }, 404, "", 1},
		{"now a directory", func(t *testing.T, n *testNode, p string) {
			must(t, os.Remove(p))
			must(t, os.Mkdir(p, 0o755))
		}, 200, "<h1>200 - OK</h1>\nDirectory listing disabled\n", 1},
		{"now a symlink out of the device", func(t *testing.T, n *testNode, p string) {
			must(t, os.Remove(p))
			must(t, os.Symlink(outside, p))
		}, 403, "", 1},
		{"PUT through the node", func(t *testing.T, n *testNode, p string) {
			if code := n.put(t, "/dev1/0/f.fid", []byte("put"), nil); code != 201 && code != 200 {
				t.Fatalf("PUT = %d", code)
			}
		}, 200, "put", 0},
		{"DELETE through the node", func(t *testing.T, n *testNode, p string) {
			if resp, _ := n.get(t, "DELETE", "/dev1/0/f.fid", nil); resp.StatusCode != 204 {
				t.Fatalf("DELETE = %d", resp.StatusCode)
			}
		}, 404, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := startNode(t, openFileValid(0))
			fc := n.srv.root.files
			if fc == nil {
				t.Skip("no openat2 here: reads go through os.Root and keep nothing open")
			}
			p := filepath.Join(n.docroot, "dev1", "0", "f.fid")
			must(t, os.MkdirAll(filepath.Dir(p), 0o755))
			must(t, os.WriteFile(p, []byte("first"), 0o644))
			for range 2 {
				if resp, body := n.get(t, "GET", "/dev1/0/f.fid", nil); resp.StatusCode != 200 || body != "first" {
					t.Fatalf("GET = %d %q, want 200 first", resp.StatusCode, body)
				}
			}
			if fc.len() != 1 {
				t.Fatalf("cached files after two GETs = %d, want 1", fc.len())
			}
			tc.change(t, n, p)
			if got := fc.len(); got != tc.wantKept {
				t.Errorf("cached files after the change = %d, want %d", got, tc.wantKept)
			}
			resp, body := n.get(t, "GET", "/dev1/0/f.fid", nil)
			if resp.StatusCode != tc.wantStatus || (tc.wantBody != "" && body != tc.wantBody) {
				t.Fatalf("GET after the change = %d %q, want %d %q", resp.StatusCode, body, tc.wantStatus, tc.wantBody)
			}
			if tc.wantStatus == 200 && tc.wantBody != "" && resp.Header.Get("Content-Length") != "" &&
				resp.ContentLength != int64(len(body)) {
				t.Errorf("Content-Length %d for a %d-byte body", resp.ContentLength, len(body))
			}
		})
	}
}

// A Range request on a cached small file reads its bytes without moving the shared file offset.
func TestGetOpenFileCacheRange(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	p := filepath.Join(n.docroot, "dev1", "r.fid")
	must(t, os.WriteFile(p, []byte("0123456789"), 0o644))
	for _, tc := range []struct{ rng, want string }{
		{"", "0123456789"}, {"bytes=2-4", "234"}, {"bytes=7-", "789"}, {"", "0123456789"}, {"bytes=-2", "89"},
	} {
		hdr := map[string]string{}
		if tc.rng != "" {
			hdr["Range"] = tc.rng
		}
		if _, body := n.get(t, "GET", "/dev1/r.fid", hdr); body != tc.want {
			t.Errorf("GET Range %q = %q, want %q", tc.rng, body, tc.want)
		}
	}
}

// openPipe returns a descriptor that is open until closed, for the reference counting tests.
func openPipe(t *testing.T) int {
	t.Helper()
	var p [2]int
	must(t, syscall.Pipe2(p[:], syscall.O_CLOEXEC))
	t.Cleanup(func() { syscall.Close(p[1]) })
	return p[0]
}

// isOpen reports whether fd is an open descriptor.
func isOpen(fd int) bool {
	var st syscall.Stat_t
	return !errors.Is(syscall.Fstat(fd, &st), syscall.EBADF)
}

// openFileValid sets open_file_valid for startNode.
func openFileValid(d time.Duration) func(*Config) {
	return func(c *Config) {
		v := conf.Duration(d)
		c.OpenFileValid = &v
	}
}

// testHead is the head of a file with identity (1, ino).
func testHead(ino uint64) *fileHead { return &fileHead{meta: fileMeta{dev: 1, ino: ino}} }

// acquired is fileCache.acquire without the head.
func acquired(c *fileCache, rel string) *openFile {
	e, _ := c.acquire(rel, 0)
	return e
}

func TestFileCacheRefcounts(t *testing.T) {
	c := newFileCache(2, time.Hour, 0)
	defer c.Close()
	fd := openPipe(t)
	if !c.put("a", fd, testHead(1), 0) {
		t.Fatal("put(a) = false")
	}
	if c.put("a", fd, testHead(1), 0) {
		t.Fatal("second put(a) = true, want false: the caller keeps its descriptor")
	}
	e := acquired(c, "a")
	if e == nil || e.fd != fd {
		t.Fatalf("acquire(a) = %v", e)
	}
	c.forget("a")
	if acquired(c, "a") != nil {
		t.Fatal("acquire after forget found the entry")
	}
	if !isOpen(fd) {
		t.Fatal("forget closed a descriptor a request still reads")
	}
	c.release(e)
	if isOpen(fd) {
		t.Fatal("descriptor still open after the last release")
	}
}

func TestFileCacheBoundAndSweep(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newFileCache(2, 10*time.Second, 0)
	c.now = func() time.Time { return now }
	defer c.Close()
	a, b, d := openPipe(t), openPipe(t), openPipe(t)
	c.put("a", a, testHead(1), 0)
	c.put("b", b, testHead(2), 0)
	c.release(acquired(c, "a")) // a is now the most recently used
	c.put("d", d, testHead(3), 0)
	if c.len() != 2 || acquired(c, "b") != nil || isOpen(b) {
		t.Fatalf("after a third put: %d entries, b open %v; want 2, b evicted and closed", c.len(), isOpen(b))
	}
	now = now.Add(5 * time.Second)
	c.release(acquired(c, "d"))
	now = now.Add(6 * time.Second) // a unused for 11s, d for 6s
	c.sweepInactive()
	if c.len() != 1 || isOpen(a) || !isOpen(d) {
		t.Fatalf("after the sweep: %d entries, a open %v, d open %v; want only d", c.len(), isOpen(a), isOpen(d))
	}
	c.Close()
	if isOpen(d) || c.put("e", openPipe(t), testHead(4), 0) {
		t.Fatal("Close left a descriptor open or the cache still keeps files")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Within open_file_valid a cached file is served as its last check found it, whatever happens to
// its path behind the node's back; the first GET after that checks the path again. Changes made
// through the node are seen at once.
func TestGetOpenFileValid(t *testing.T) {
	t.Parallel()
	n := startNode(t, openFileValid(time.Minute))
	fc := n.srv.root.files
	if fc == nil {
		t.Skip("no openat2 here: reads go through os.Root and keep nothing open")
	}
	var mu sync.Mutex // guards now, read by the handlers
	now := time.Unix(1000, 0)
	fc.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	const uri = "/dev1/0/v.fid"
	p := filepath.Join(n.docroot, "dev1", "0", "v.fid")
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte("first"), 0o644))
	expect := func(step string, wantStatus int, wantBody string) *http.Response {
		t.Helper()
		resp, body := n.get(t, "GET", uri, nil)
		if resp.StatusCode != wantStatus || (wantStatus == 200 && body != wantBody) {
			t.Fatalf("%s: GET = %d %q, want %d %q", step, resp.StatusCode, body, wantStatus, wantBody)
		}
		if wantStatus == 200 && resp.ContentLength != int64(len(body)) {
			t.Fatalf("%s: Content-Length %d for a %d-byte body", step, resp.ContentLength, len(body))
		}
		return resp
	}
	first := expect("first GET", 200, "first")

	tmp := p + ".tmp"
	must(t, os.WriteFile(tmp, []byte("second, longer"), 0o644))
	must(t, os.Rename(tmp, p))
	if resp := expect("renamed over, within open_file_valid", 200, "first"); resp.Header.Get("ETag") != first.Header.Get("ETag") {
		t.Errorf("ETag %q, want the first file's %q", resp.Header.Get("ETag"), first.Header.Get("ETag"))
	}
	advance(time.Minute)
	expect("renamed over, open_file_valid later", 200, "second, longer")

	// Rewritten in place, shorter: read with the size of the last check, which it no longer has.
	must(t, os.WriteFile(p, []byte("short"), 0o644))
	expect("rewritten shorter in place, within open_file_valid", 500, "")
	advance(time.Minute)
	expect("rewritten shorter in place, open_file_valid later", 200, "short")

	must(t, os.Remove(p))
	advance(time.Minute - time.Nanosecond)
	expect("removed, within open_file_valid", 200, "short")
	// A HEAD checks the path every time: the tracker's size checks must see the change.
	if resp, _ := n.get(t, "HEAD", uri, nil); resp.StatusCode != 404 {
		t.Fatalf("removed, within open_file_valid: HEAD = %d, want 404", resp.StatusCode)
	}
	advance(time.Nanosecond)
	expect("removed, open_file_valid later", 404, "")

	if code := n.put(t, uri, []byte("put"), nil); code != 201 && code != 200 {
		t.Fatalf("PUT = %d", code)
	}
	expect("PUT through the node", 200, "put")
	expect("PUT through the node, cached", 200, "put")
	if resp, _ := n.get(t, "DELETE", uri, nil); resp.StatusCode != 204 {
		t.Fatalf("DELETE = %d", resp.StatusCode)
	}
	expect("DELETE through the node", 404, "")
}

func TestConfigOpenFileValid(t *testing.T) {
	if got := (Config{}).withDefaults().OpenFileValid.D(); got != time.Second {
		t.Errorf("default open_file_valid = %v, want 1s", got)
	}
	for _, tc := range []struct {
		yaml string
		want time.Duration
	}{
		{"open_file_valid: 0s", 0},
		{"open_file_valid: 250ms", 250 * time.Millisecond},
		{"docroot: /x", time.Second},
	} {
		var c Config
		if err := yaml.Unmarshal([]byte(tc.yaml), &c); err != nil {
			t.Fatalf("Unmarshal(%q): %v", tc.yaml, err)
		}
		if got := c.withDefaults().OpenFileValid.D(); got != tc.want {
			t.Errorf("Unmarshal(%q): open_file_valid = %v, want %v", tc.yaml, got, tc.want)
		}
	}
}

// The open-file cache's sweep closes a file once it has gone unread for the inactive time, and
// not before: the sweep that runs just before that leaves it open until the next one, an inactive
// time later. The sweep runs again by itself while files are kept. With the node's constants a
// file deleted behind its back therefore frees its space 10 to 20 seconds after its last read.
func TestFileCacheSweepCadence(t *testing.T) {
	if fileCacheInactive != 10*time.Second || fileCacheMax != 1024 {
		t.Errorf("fileCacheInactive, fileCacheMax = %v, %d; docs/storaged.md says 10s, 1,024", fileCacheInactive, fileCacheMax)
	}
	if fc := newDocroot(t.TempDir(), time.Second).files; fc != nil && (fc.inactive != fileCacheInactive || fc.max != fileCacheMax) {
		t.Errorf("the docroot's cache keeps %d files for %v, want %d for %v", fc.max, fc.inactive, fileCacheMax, fileCacheInactive)
	}

	// Sweeps called by hand at chosen times.
	const inactive = 10 * time.Second
	now := time.Unix(1000, 0)
	c := newFileCache(4, inactive, 0)
	c.now = func() time.Time { return now }
	defer c.Close()
	fd := openPipe(t)
	c.put("a", fd, testHead(1), 0)
	c.release(acquired(c, "a")) // the last read
	now = now.Add(inactive - time.Nanosecond)
	c.sweepInactive()
	if c.len() != 1 || !isOpen(fd) {
		t.Fatalf("a sweep just under %v after the last read closed the file", inactive)
	}
	now = now.Add(inactive) // the next sweep
	c.sweepInactive()
	if c.len() != 0 || isOpen(fd) {
		t.Fatalf("the sweep %v after the last read left the file open", 2*inactive-time.Nanosecond)
	}

	// The sweep's own timer, with a fast real period and a clock that moves only when told.
	var mu sync.Mutex // guards fake and calls
	fake, calls := time.Unix(1000, 0), 0
	r := newFileCache(4, 10*time.Millisecond, 0)
	r.now = func() time.Time { mu.Lock(); defer mu.Unlock(); calls++; return fake }
	defer r.Close()
	fd = openPipe(t)
	r.put("b", fd, testHead(2), 0) // one call of now; every later one is a sweep's
	waitFor(t, "a first sweep", func() bool { mu.Lock(); defer mu.Unlock(); return calls >= 2 })
	if r.len() != 1 {
		t.Fatalf("a sweep closed a file its clock says was read just now")
	}
	mu.Lock()
	fake = fake.Add(time.Hour)
	mu.Unlock()
	waitFor(t, "a later sweep to close the file", func() bool { return r.len() == 0 && !isOpen(fd) })
}
