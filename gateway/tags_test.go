package gateway

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/mogway/mogway/cache"
	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/purge"
)

// taggingUpstream is an origin that sends Surrogate-Key headers and counts requests per path.
type taggingUpstream struct {
	addr string
	mu   sync.Mutex // guards hits
	hits map[string]int
}

func startTaggingUpstream(t *testing.T, ip string, keys map[string]string) *taggingUpstream {
	t.Helper()
	u := &taggingUpstream{hits: map[string]int{}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.hits[r.URL.Path]++
		u.mu.Unlock()
		if k, ok := keys[r.URL.Path]; ok {
			w.Header().Set("Surrogate-Key", k)
		}
		io.WriteString(w, "body of "+r.URL.Path)
	})}
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	u.addr = ln.Addr().String()
	return u
}

func (u *taggingUpstream) Hits(path string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits[path]
}

// purgeResult sends PURGE url and decodes the reply.
func purgeResult(t *testing.T, url string) (int, purge.Result) {
	t.Helper()
	code, body := doPurge(t, testClient(), url)
	var res purge.Result
	if code == 200 {
		if err := json.Unmarshal([]byte(body), &res); err != nil {
			t.Fatalf("PURGE %s: %q: %v", url, body, err)
		}
	}
	return code, res
}

// Two gateways, purge peers of each other, cache answers tagged by upstream Surrogate-Key headers
// and by the route; a tag purge on one purges both, and the tags of the disk tier survive a restart.
func TestTagPurgeAcrossPeersAndRestart(t *testing.T) {
	t.Parallel()
	up := startTaggingUpstream(t, "127.0.0.4", map[string]string{"/up/a": "p1 all", "/up/b": "p2, all,  p2"})
	addr1, addr2 := deadAddr(t, "127.0.0.5"), deadAddr(t, "127.0.0.6")
	gwConfig := func(peer string, cc cache.Config) Config {
		return Config{Cache: &cc,
			Purge: &purge.Config{Peers: []string{peer}, JournalDir: t.TempDir(),
				RetryMin: conf.Duration(10 * time.Millisecond), RetryMax: conf.Duration(50 * time.Millisecond)},
			Routes: []Route{{Prefix: "/up/", Servers: []UpstreamServer{{Addr: up.addr}},
				Cache: RouteCache{Enabled: "on", Tags: []string{"site"}, TagHeader: "surrogate-key"}}}}
	}
	cfg1 := gwConfig(addr2, cache.Config{})
	cfg2 := gwConfig(addr1, cache.Config{Disk: cache.DiskConfig{Path: t.TempDir()}})
	g1, _ := startGatewayAt(t, cfg1, Deps{}, addr1)
	g2, stop2 := startGatewayAt(t, cfg2, Deps{}, addr2)

	fill := func(g *gw, paths ...string) {
		t.Helper()
		for _, p := range paths {
			h := fetchCached(t, "GET", g.base+p, []byte("body of "+p), "MISS")
			if v := h.Get("Surrogate-Key"); v != "" {
				t.Errorf("GET %s: Surrogate-Key %q reached the client", p, v)
			}
			waitFor(t, "fill of "+p, func() bool { return g.srv.cache.Stats().Filling == 0 })
		}
	}
	expect := func(g *gw, wantCS string, paths ...string) {
		t.Helper()
		for _, p := range paths {
			h := fetchCached(t, "GET", g.base+p, []byte("body of "+p), wantCS)
			if v := h.Get("Surrogate-Key"); v != "" {
				t.Errorf("GET %s: Surrogate-Key %q reached the client", p, v)
			}
		}
	}
	fill(g1, "/up/a", "/up/b", "/up/c")
	fill(g2, "/up/a", "/up/b", "/up/c")
	expect(g1, "HIT", "/up/a", "/up/b", "/up/c")
	expect(g2, "HIT", "/up/a", "/up/b", "/up/c")

	code, res := purgeResult(t, g1.base+"/purge?tag=p1")
	if code != 200 || res.Key != "tag:p1" || res.Purged != 2 || len(res.Nodes) != 2 || res.Nodes[1].Purged != 1 {
		t.Fatalf("PURGE /purge?tag=p1 = %d, %+v; want 200, one entry on each gateway", code, res)
	}
	expect(g1, "HIT", "/up/b", "/up/c")
	expect(g2, "HIT", "/up/b", "/up/c")
	fill(g1, "/up/a")
	fill(g2, "/up/a")
	if got := up.Hits("/up/a"); got != 4 {
		t.Errorf("upstream GETs of /up/a = %d, want 4 (one per gateway before and after the purge)", got)
	}

	// gw2 restarts on its disk tier: its entries come back with their tags.
	waitFor(t, "gw2's entries on disk", func() bool { return g2.srv.cache.Stats().Disk.Entries == 3 })
	stop2()
	g2, _ = startGatewayAt(t, cfg2, Deps{}, addr2)
	expect(g2, "HIT", "/up/a", "/up/b", "/up/c")
	code, res = purgeResult(t, g2.base+"/purge/?tag=all&soft=1")
	if code != 200 || res.Purged != 4 || !res.Soft {
		t.Fatalf("PURGE /purge/?tag=all&soft=1 = %d, %+v; want 200, a and b soft-purged on both", code, res)
	}
	expect(g2, "UPDATING", "/up/a", "/up/b")
	expect(g2, "HIT", "/up/c")

	// The route's own tag covers every entry, untagged upstream answers included.
	code, res = purgeResult(t, g1.base+"/purge?tag=site")
	if code != 200 || res.Nodes[0].Purged != 3 || res.Nodes[1].Purged != 3 {
		t.Fatalf("PURGE /purge?tag=site = %d, %+v; want 3 entries purged on each gateway", code, res)
	}
	waitFor(t, "gw2's disk tier emptied", func() bool { return g2.srv.cache.Stats().Disk.Entries == 0 })
	expect(g1, "MISS", "/up/c")
	if code, _ := purgeResult(t, g1.base+"/purge/up/c?tag=site"); code != 400 {
		t.Errorf("PURGE with both a path and a tag = %d, want 400", code)
	}
}

func TestEntryTags(t *testing.T) {
	t.Parallel()
	cr := compileRouteCache(RouteCache{Tags: []string{"site"}, TagHeader: "cache-tag"}, true)
	tests := []struct {
		values []string
		want   []string
	}{
		{nil, []string{"site"}},
		{[]string{"a,b , c"}, []string{"site", "a", "b", "c"}},
		{[]string{"a b", "b\tc"}, []string{"site", "a", "b", "c"}},
		{[]string{"site a"}, []string{"site", "a"}},
		{[]string{",, ,"}, []string{"site"}},
		{[]string{"ok " + strings.Repeat("x", 1025)}, []string{"site", "ok"}}, // over 1024 bytes: not a tag
	}
	for _, tt := range tests {
		var h fasthttp.ResponseHeader
		for _, v := range tt.values {
			h.Add("Cache-Tag", v)
		}
		if got := cr.entryTags(&h); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("entryTags(Cache-Tag: %q) = %q, want %q", tt.values, got, tt.want)
		}
	}
	var h fasthttp.ResponseHeader
	h.Set("Cache-Tag", strings.Repeat("x ", 10))
	for i := 0; i < 2*maxEntryTags; i++ {
		h.Add("Cache-Tag", "t"+strings.Repeat("y", i%50)+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	if got := len(cr.entryTags(&h)); got != maxEntryTags {
		t.Errorf("entryTags of %d words = %d tags, want the cap %d", 2*maxEntryTags, got, maxEntryTags)
	}
	if cr.entryTags(nil)[0] != "site" {
		t.Errorf("entryTags(nil) lost the route's tags")
	}
}

func TestRouteCacheTagsValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rc   RouteCache
		want string
	}{
		{RouteCache{Tags: []string{"a b"}}, "tags[0]"},
		{RouteCache{Tags: []string{"ok", ""}}, "tags[1]"},
		{RouteCache{TagHeader: "Surrogate Key"}, "tag_header"},
		{RouteCache{TagHeader: "Cache-Tag:"}, "tag_header"},
	} {
		err := tc.rc.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want an error naming %s", tc.rc, err, tc.want)
		}
	}
	if err := (&RouteCache{Tags: []string{"images", "ünï"}, TagHeader: "Surrogate-Key"}).Validate(); err != nil {
		t.Errorf("Validate(good tags) = %v", err)
	}
}

// A tag purge also drops the remembered tracker answers, so the next fill asks the tracker again.
func TestTagPurgeDropsTrackerPaths(t *testing.T) {
	t.Parallel()
	_, ft, data := storedObject(t, "a.jpg", 31, 1000)
	cfg := cacheRouteConfig(cache.Config{})
	cfg.Routes[0].Cache = RouteCache{Tags: []string{"photos"}}
	g := startGateway(t, cfg, Deps{Tracker: ft})
	fetchCached(t, "GET", g.base+"/d/a.jpg", data, "MISS")
	waitFills(t, g, 1)
	if got := g.srv.state.Load().paths.len(); got == 0 {
		t.Fatalf("remembered tracker answers after a fill = %d, want some", got)
	}
	if code, res := purgeResult(t, g.base+"/purge?tag=photos"); code != 200 || res.Purged != 1 {
		t.Fatalf("PURGE /purge?tag=photos = %d, %+v; want 200, 1 purged", code, res)
	}
	if got := g.srv.state.Load().paths.len(); got != 0 {
		t.Errorf("remembered tracker answers after the tag purge = %d, want 0", got)
	}
	fetchCached(t, "GET", g.base+"/d/a.jpg", data, "MISS")
}
