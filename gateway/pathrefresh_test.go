package gateway

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/mogway/mogway/internal/testutil"
)

// TestPathCacheAsksAgainAfterCachedCopiesFail (architecture.md, GET on a tracker route, step 6):
// when every copy a cached get_paths answer names fails (one node stopped, the other's file gone:
// 404), the request asks the tracker once more (trackerFetch.again) and is served from the copy it
// names now. When the tracker still names the same failing copies, it asks only that once: the
// request answers 502 rather than asking again and again.
func TestPathCacheAsksAgainAfterCachedCopiesFail(t *testing.T) {
	t.Parallel()
	data := pattern(5000)
	dying := startRestartable(t, "127.0.0.3")
	emptied := startStorage(t, "127.0.0.4")
	good := startStorage(t, "127.0.0.5")
	onDying := func(fid int64) string {
		p := filepath.Join(dying.docroot, filepath.FromSlash(fidPath(fid)))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return "http://" + dying.addr + fidPath(fid)
	}
	ft := newFakeTracker()
	// First answers: two copies each, both readable while the answers are cached.
	ft.set("d", "moved", onDying(61), emptied.put(t, 61, data))
	ft.set("d", "lost", onDying(62), emptied.put(t, 62, data))
	cfg := trackerConfig()
	cfg.Storage.MaxFails = -1 // the frozen clock would keep a node marked down for good
	cfg.Hedge.Delay = "off"   // a hedge's refresh would be a tracker call of its own (racer.refresh)
	// The clock stands still, so the cached answers stay within path_cache.ttl however slow the run.
	g := startGateway(t, cfg, Deps{Tracker: ft, Now: testutil.NewClock().Now})

	for _, key := range []string{"moved", "lost"} {
		if code, _, body, err := get(t, "GET", g.base+"/d/"+key); err != nil || code != 200 || !bytes.Equal(body, data) {
			t.Fatalf("GET %s = %d, %d bytes, %v; want 200 and the %d bytes", key, code, len(body), err, len(data))
		}
	}
	if n := ft.calls.Load(); n != 2 {
		t.Fatalf("get_paths calls after the first GET of each key = %d, want 2", n)
	}

	// Every cached copy fails now: one node is stopped, the other's files are gone.
	dying.stop()
	for _, fid := range []int64{61, 62} {
		if err := os.Remove(filepath.Join(emptied.docroot, filepath.FromSlash(fidPath(fid)))); err != nil {
			t.Fatal(err)
		}
	}
	// The tracker's answer for "moved" changes between the two asks: the file is on another node.
	ft.set("d", "moved", good.put(t, 61, data))

	before := ft.calls.Load()
	code, _, body, err := get(t, "GET", g.base+"/d/moved")
	if err != nil || code != 200 || !bytes.Equal(body, data) {
		t.Fatalf("GET moved with every cached copy failing = %d, %d bytes, %v; want 200 and the %d bytes from the tracker's new answer",
			code, len(body), err, len(data))
	}
	if n := ft.calls.Load() - before; n != 1 {
		t.Errorf("get_paths calls for GET moved = %d, want 1 (the cached answer, then one more ask): 2 in all for the key", n)
	}

	// The tracker's answer for "lost" does not change: one more ask, then 502.
	before = ft.calls.Load()
	if code, _, body, _ := get(t, "GET", g.base+"/d/lost"); code != 502 {
		t.Errorf("GET lost with every copy failing, before and after asking again = %d %q, want 502", code, body)
	}
	if n := ft.calls.Load() - before; n != 1 {
		t.Errorf("get_paths calls for GET lost = %d, want 1: asked once more after the cached copies failed, not again", n)
	}
	// The failed answer is no longer cached: the next GET asks the tracker, and only once (an answer
	// just taken from the tracker is not asked for again).
	before = ft.calls.Load()
	if code, _, body, _ := get(t, "GET", g.base+"/d/lost"); code != 502 {
		t.Errorf("second GET lost = %d %q, want 502", code, body)
	}
	if n := ft.calls.Load() - before; n != 1 {
		t.Errorf("get_paths calls for the second GET lost = %d, want 1", n)
	}
}
