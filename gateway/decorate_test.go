package gateway

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/cache"
	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/testutil"
)

// A route's expires adds "Cache-Control: max-age=N" and an Expires N seconds from now to its 200, 206
// and 304 answers only, as nginx's expires does for them: never to a 404, a 412, a 416 or a 5xx,
// whether the gateway or the storage node or upstream server made it. cache_control is sent exactly
// as written on the same answers, and no Expires with it, even when the route sets expires too.
func TestExpiresAndCacheControlScope(t *testing.T) {
	t.Parallel()
	clock := testutil.NewClock()
	data := pattern(1000)
	node := startStorage(t, "127.0.0.2")
	ft := newFakeTracker()
	ft.set("d", "a.jpg", node.put(t, 51, data))
	ft.set("d", "dead.jpg", "http://"+deadAddr(t, "127.0.0.3")+fidPath(52))
	up := startHTTP(t, "127.0.0.4", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/u/ok":
			w.Write(data) //nolint:errcheck // the test reads it
		case "/u/boom":
			http.Error(w, "boom", http.StatusInternalServerError)
		default:
			http.NotFound(w, r)
		}
	})
	const verbatim = "public,  max-age=60 , immutable"
	hour := conf.Duration(time.Hour)
	cfg := trackerConfig(
		Route{Prefix: "/e/", Domain: "d", Expires: hour},
		Route{Prefix: "/c/", Domain: "d", Expires: hour, CacheControl: verbatim},
		Route{Prefix: "/u/", Servers: []UpstreamServer{{Addr: up.addr}}, Expires: hour},
	)
	expires := clock.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	cached := cfg
	cached.Cache = &cache.Config{}
	for _, g := range []struct {
		name string
		cfg  Config
	}{{"uncached", cfg}, {"cached", cached}} {
		t.Run(g.name, func(t *testing.T) {
			gw := startGateway(t, g.cfg, Deps{Tracker: ft, Now: clock.Now})
			checkDecoration(t, gw, verbatim, expires)
		})
	}
}

// checkDecoration checks the Cache-Control and Expires of the answers of g, configured as
// TestExpiresAndCacheControlScope has it.
func checkDecoration(t *testing.T, g *gw, verbatim, expires string) {
	t.Helper()
	for _, tc := range []struct {
		path    string
		hdr     []string
		status  int
		cc, exp string // "" means absent
		cached  int    // the status on a cached route, when another
	}{
		{"/e/a.jpg", nil, 200, "max-age=3600", expires, 0},
		{"/e/a.jpg", []string{"Range", "bytes=0-9"}, 206, "max-age=3600", expires, 0},
		{"/e/a.jpg", []string{"If-None-Match", `"fid-51"`}, 304, "max-age=3600", expires, 0},
		{"/e/a.jpg", []string{"If-Match", `"fid-1"`}, 412, "", "", 0},
		{"/e/a.jpg", []string{"Range", "bytes=5000-"}, 416, "", "", 0}, // the node's 416, or the cache's
		{"/e/missing.jpg", nil, 404, "", "", 0},
		{"/e/dead.jpg", nil, 502, "", "", 0},
		{"/c/a.jpg", nil, 200, verbatim, "", 0},
		{"/c/a.jpg", []string{"Range", "bytes=0-9"}, 206, verbatim, "", 0},
		{"/c/a.jpg", []string{"If-None-Match", `"fid-51"`}, 304, verbatim, "", 0},
		{"/c/a.jpg", []string{"If-Match", `"fid-1"`}, 412, "", "", 0},
		{"/c/missing.jpg", nil, 404, "", "", 0},
		{"/u/ok", nil, 200, "max-age=3600", expires, 0},
		{"/u/missing", nil, 404, "", "", 0}, // the server's 404, passed through
		{"/u/boom", nil, 500, "", "", 502},  // the server's 500: passed through (not in next_upstream); 502 when cached (caching.md)
	} {
		if tc.cached != 0 && g.srv.cache != nil {
			tc.status = tc.cached
		}
		code, h, _, err := get(t, "GET", g.base+tc.path, tc.hdr...)
		if err != nil || code != tc.status {
			t.Errorf("GET %s %q = %d, %v; want %d", tc.path, tc.hdr, code, err, tc.status)
			continue
		}
		if got := h.Values("Cache-Control"); strings.Join(got, "|") != tc.cc {
			t.Errorf("GET %s %q (%d): Cache-Control = %q, want %q", tc.path, tc.hdr, code, got, tc.cc)
		}
		if got := h.Values("Expires"); strings.Join(got, "|") != tc.exp {
			t.Errorf("GET %s %q (%d): Expires = %q, want %q", tc.path, tc.hdr, code, got, tc.exp)
		}
	}
}

// content_type: extension (tracker routes' default) names the type from the key's extension, and
// upstream (upstream routes' default) passes on what the storage node or server answered, an absent
// Content-Type staying absent.
func TestContentTypeModes(t *testing.T) {
	t.Parallel()
	srv := startHTTP(t, "127.0.0.2", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/bare.jpg") || r.URL.Path == fidPath(63) {
			w.Header()["Content-Type"] = nil // no sniffing either
		} else {
			w.Header().Set("Content-Type", "image/webp")
		}
		w.Write([]byte("body")) //nolint:errcheck // the test reads it
	})
	ft := newFakeTracker()
	for _, k := range []struct {
		key string
		fid int64
	}{{"photo.jpg", 61}, {"file.unknownext", 62}, {"bare.jpg", 63}} {
		ft.set("d", k.key, "http://"+srv.addr+fidPath(k.fid))
	}
	up := []UpstreamServer{{Addr: srv.addr}}
	cfg := trackerConfig(
		Route{Prefix: "/x/", Domain: "d"},
		Route{Prefix: "/t/", Domain: "d", ContentType: "upstream"},
		Route{Prefix: "/g/", Servers: up},
		Route{Prefix: "/h/", Servers: up, ContentType: "extension"},
	)
	g := startGateway(t, cfg, Deps{Tracker: ft})
	for path, want := range map[string]string{
		"/x/photo.jpg":       "image/jpeg", // the storage node said image/webp
		"/x/file.unknownext": "application/octet-stream",
		"/t/photo.jpg":       "image/webp",
		"/t/bare.jpg":        "",
		"/g/photo.jpg":       "image/webp",
		"/g/bare.jpg":        "",
		"/h/photo.jpg":       "image/jpeg",
	} {
		code, h, body, err := get(t, "GET", g.base+path)
		if err != nil || code != 200 || string(body) != "body" {
			t.Errorf("GET %s = %d %q, %v; want 200", path, code, body, err)
			continue
		}
		if got := h.Values("Content-Type"); strings.Join(got, "|") != want {
			t.Errorf("GET %s: Content-Type = %q, want %q", path, got, want)
		}
	}
}
