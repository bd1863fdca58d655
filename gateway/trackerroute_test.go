package gateway

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/testutil"
)

// TestTrackerResumeRefusesAnotherWhole: after a copy breaks mid-body, the next copy's answer to the
// Range for the missing bytes is used only as a 206 of the same total length; a copy of another
// length (the key's fid path on that node holds other bytes) is refused and the client connection
// is cut, so no foreign bytes are spliced in under the 200 already sent.
func TestTrackerResumeRefusesAnotherWhole(t *testing.T) {
	t.Parallel()
	data := pattern(1 << 20)
	dying := startFault(t, "127.0.0.2", faultMidBody, data)
	longer := append(append([]byte(nil), data...), "more"...)
	other := startHTTP(t, "127.0.0.3", func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(longer))
	})
	ft := newFakeTracker()
	ft.set("d", "k", "http://"+dying.addr+fidPath(31), "http://"+other.addr+fidPath(31))
	cfg := trackerConfig()
	cfg.Storage.MaxFails = -1
	cfg.Hedge.Delay = "off" // the dying copy's headers must win, however slow the machine
	g := startGateway(t, cfg, Deps{Tracker: ft})

	code, _, body, err := get(t, "GET", g.base+"/d/k")
	if err == nil {
		t.Errorf("GET = %d with %d bytes and no error; want a broken transfer", code, len(body))
	}
	wantRange := "bytes=" + strconv.Itoa(len(data)/2) + "-" + strconv.Itoa(len(data)-1)
	if reqs := other.requests(); len(reqs) != 1 || reqs[0].rangeHdr != wantRange {
		t.Errorf("the next copy was asked %+v, want one request with Range %q", reqs, wantRange)
	}
	// The body is counted aborted before the client connection is cut.
	if st := g.srv.Stats(); st.Resumed != 0 || st.Aborted != 1 {
		t.Errorf("Stats() Resumed = %d, Aborted = %d; want 0 and 1", st.Resumed, st.Aborted)
	}
}

// TestPathCacheExpiry: a get_paths answer is reused for path_cache.ttl (5s) and asked again after
// it; an unknown_key answer is remembered for negative_ttl (1s), so a key created meanwhile is
// found once that has passed.
func TestPathCacheExpiry(t *testing.T) {
	t.Parallel()
	node := startStorage(t, "127.0.0.2")
	data := pattern(1000)
	url := node.put(t, 41, data)
	ft := newFakeTracker()
	ft.set("d", "k", url)
	clock := testutil.NewClock()
	g := startGateway(t, trackerConfig(), Deps{Tracker: ft, Now: clock.Now})
	fetch := func(key string, want int, calls int64) {
		t.Helper()
		code, _, body, err := get(t, "GET", g.base+"/d/"+key)
		if err != nil || code != want || (want == 200 && !bytes.Equal(body, data)) {
			t.Errorf("GET %s = %d, %d bytes, %v; want %d", key, code, len(body), err, want)
		}
		if n := ft.calls.Load(); n != calls {
			t.Errorf("after GET %s: tracker calls = %d, want %d", key, n, calls)
		}
	}
	fetch("k", 200, 1)
	clock.Advance(5*time.Second - time.Millisecond)
	fetch("k", 200, 1) // within the TTL: the cached answer
	clock.Advance(time.Millisecond)
	fetch("k", 200, 2) // the TTL has passed: asked again
	fetch("k", 200, 2) // and cached again

	fetch("new", 404, 3)
	ft.set("d", "new", url)
	clock.Advance(time.Second - time.Millisecond)
	fetch("new", 404, 3) // unknown_key is still remembered
	clock.Advance(time.Millisecond)
	fetch("new", 200, 4) // negative_ttl has passed: the key created since is found
}

// noverifyTracker records the noverify argument of each get_paths by key.
type noverifyTracker struct {
	*fakeTracker
	mu   sync.Mutex // guards seen
	seen map[string][]bool
}

func (n *noverifyTracker) GetPaths(ctx context.Context, domain, key string, noverify bool) ([]string, error) {
	n.mu.Lock()
	n.seen[key] = append(n.seen[key], noverify)
	n.mu.Unlock()
	return n.fakeTracker.GetPaths(ctx, domain, key, noverify)
}

// TestNoVerifyReachesTracker: a route's noverify is the noverify of its get_paths (nginx
// mogilefs_noverify): true with `noverify: true`, false by default.
func TestNoVerifyReachesTracker(t *testing.T) {
	t.Parallel()
	node, ft := storedBytes(t, "a", 61, []byte("a"))
	ft.set("d", "b", node.put(t, 62, []byte("b")))
	tr := &noverifyTracker{fakeTracker: ft, seen: map[string][]bool{}}
	g := startGateway(t, trackerConfig(
		Route{Prefix: "/n/", Domain: "d", NoVerify: true},
		Route{Prefix: "/v/", Domain: "d"},
	), Deps{Tracker: tr})
	for _, path := range []string{"/n/a", "/v/b"} {
		if code, _, _, err := get(t, "GET", g.base+path); err != nil || code != 200 {
			t.Errorf("GET %s = %d, %v; want 200", path, code, err)
		}
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for key, want := range map[string]bool{"a": true, "b": false} {
		if got := tr.seen[key]; len(got) != 1 || got[0] != want {
			t.Errorf("get_paths of %s sent noverify %v, want once %v", key, got, want)
		}
	}
}
