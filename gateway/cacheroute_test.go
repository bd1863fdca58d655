package gateway

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/mogway/mogway/cache"
	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/purge"
)

func TestRouteCacheYAML(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    RouteCache
		wantErr string
	}{
		{"cache: off", RouteCache{Enabled: "off"}, ""},
		{"cache: on", RouteCache{Enabled: "on"}, ""},
		{"cache: false", RouteCache{Enabled: "off"}, ""},
		{"cache: {key: path}", RouteCache{Enabled: "on", Key: "path"}, ""},
		{"cache: {enabled: off, key: path}", RouteCache{Enabled: "off", Key: "path"}, ""},
		{"cache: maybe", RouteCache{}, "not on, off"},
		{"cache: {keys: path}", RouteCache{}, "unknown field"},
	} {
		var r struct {
			Cache RouteCache `yaml:"cache"`
		}
		err := conf.Decode("t.yaml", []byte(tc.in), &r)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Decode(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || r.Cache.Enabled != tc.want.Enabled || r.Cache.Key != tc.want.Key {
			t.Errorf("Decode(%q) = %+v, %v; want %+v", tc.in, r.Cache, err, tc.want)
		}
	}
}

func TestRouteCacheValidate(t *testing.T) {
	for _, tc := range []struct {
		rc      RouteCache
		wantErr string
	}{
		{RouteCache{Key: "args"}, "query_args"},
		{RouteCache{Key: "path", QueryArgs: []string{"a"}}, "query_args"},
		{RouteCache{Key: "host"}, "key"},
		{RouteCache{Valid: map[string]conf.Duration{"2xx": 1}}, "valid.2xx"},
		{RouteCache{UpstreamCacheControl: "obey"}, "upstream_cache_control"},
		{RouteCache{Bypass: []string{"cookie:x"}}, "bypass[0]"},
		{RouteCache{Key: "args", QueryArgs: []string{"w"}, Bypass: []string{"arg:nocache", "header:X-Refresh"}}, ""},
	} {
		err := tc.rc.Validate()
		if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("Validate(%+v) = %v, want an error naming %q", tc.rc, err, tc.wantErr)
		}
	}
	cfg := trackerConfig(Route{Prefix: "/d/", Domain: "d", Cache: RouteCache{Enabled: "on"}})
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "routes[0].cache") {
		t.Errorf("Validate of a cached route without a cache = %v, want an error naming routes[0].cache", err)
	}
	cfg.Purge = &purge.Config{}
	cfg.Cache = &cache.Config{}
	cfg.Routes = append(cfg.Routes, Route{Prefix: "/purge/x/", Domain: "d"})
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "routes[1].prefix") {
		t.Errorf("Validate of a route under the purge path = %v, want an error naming routes[1].prefix", err)
	}
}

func TestCacheKey(t *testing.T) {
	for _, tc := range []struct {
		key   string
		args  []string
		path  string
		query string
		want  string
	}{
		{"uri", nil, "/a.jpg", "", "/a.jpg"},
		{"uri", nil, "/a.jpg", "b=1&a=2", "/a.jpg?b=1&a=2"},
		{"path", nil, "/a.jpg", "b=1", "/a.jpg"},
		{"args", []string{"w", "h"}, "/a.jpg", "x=1&h=20&w=10", "/a.jpg?w=10&h=20"},
		{"args", []string{"w"}, "/a.jpg", "x=1", "/a.jpg"},
	} {
		cr := &cacheRoute{key: tc.key, args: tc.args}
		if got := cr.cacheKey(tc.path, []byte(tc.query)); got != tc.want {
			t.Errorf("cacheKey(%q, %q) with key %s = %q, want %q", tc.path, tc.query, tc.key, got, tc.want)
		}
	}
}

func TestUpstreamCacheControl(t *testing.T) {
	for _, tc := range []struct {
		cc        string
		cookie    bool
		wantStore bool
		wantAge   time.Duration
	}{
		{"", false, true, -1},
		{"max-age=60", false, true, time.Minute},
		{"public, max-age=60, s-maxage=120", false, true, 2 * time.Minute},
		{"no-store", false, false, -1},
		{"private, max-age=60", false, false, time.Minute},
		{"no-cache", false, false, -1},
		{"max-age=0", false, false, 0},
		{"", true, false, -1},
		{"max-age=abc", false, true, -1},
	} {
		store, age := upstreamCacheControl(tc.cc, tc.cookie)
		if store != tc.wantStore || age != tc.wantAge {
			t.Errorf("upstreamCacheControl(%q, %v) = %v, %v; want %v, %v", tc.cc, tc.cookie, store, age, tc.wantStore, tc.wantAge)
		}
	}
}

// TestCacheLifetime runs the expiry the gateway gives an answer (Server.expiry) through a real cache,
// which applies cache.valid when the gateway leaves it to the cache: upstream max-age and s-maxage
// come first (unless the route ignores them), then the route's valid, then cache.valid, whose
// default is 200, 301, 302: 10m and 404: 1m, and which replaces those defaults when it is set.
func TestCacheLifetime(t *testing.T) {
	t.Parallel()
	// valid builds a valid map from status, duration pairs: valid("200", "1h", "any", "5m").
	valid := func(kv ...string) map[string]conf.Duration {
		m := map[string]conf.Duration{}
		for i := 0; i+1 < len(kv); i += 2 {
			v, err := time.ParseDuration(kv[i+1])
			if err != nil {
				t.Fatal(err)
			}
			m[kv[i]] = conf.Duration(v)
		}
		return m
	}
	for _, tc := range []struct {
		name       string
		cacheValid map[string]conf.Duration // cache.valid; nil for the defaults
		route      RouteCache
		status     int
		cc         string        // upstream Cache-Control
		want       time.Duration // 0: not stored
	}{
		{"default 200", nil, RouteCache{}, 200, "", 10 * time.Minute},
		{"default 301", nil, RouteCache{}, 301, "", 10 * time.Minute},
		{"default 302", nil, RouteCache{}, 302, "", 10 * time.Minute},
		{"default 404", nil, RouteCache{}, 404, "", time.Minute},
		{"default 403", nil, RouteCache{}, 403, "", 0},
		{"default 410", nil, RouteCache{}, 410, "", 0},
		{"valid set: 200", valid("200", "1h"), RouteCache{}, 200, "", time.Hour},
		{"valid set replaces the default 301", valid("200", "1h"), RouteCache{}, 301, "", 0},
		{"valid set replaces the default 404", valid("200", "1h"), RouteCache{}, 404, "", 0},
		{"valid any", valid("200", "1h", "any", "5m"), RouteCache{}, 403, "", 5 * time.Minute},
		{"route names the status", nil, RouteCache{Valid: valid("404", "5m")}, 404, "", 5 * time.Minute},
		{"route falls back to the default", nil, RouteCache{Valid: valid("404", "5m")}, 200, "", 10 * time.Minute},
		{"route falls back to cache.valid", valid("301", "2h"), RouteCache{Valid: valid("404", "5m")}, 301, "", 2 * time.Hour},
		{"route any", nil, RouteCache{Valid: valid("any", "3m")}, 200, "", 3 * time.Minute},
		{"route 0: not stored", nil, RouteCache{Valid: valid("200", "0s")}, 200, "", 0},
		{"max-age over the route's valid", nil, RouteCache{Valid: valid("200", "1h")}, 200, "max-age=60", time.Minute},
		{"max-age over cache.valid", valid("200", "1h"), RouteCache{}, 200, "public, max-age=90", 90 * time.Second},
		{"max-age on a 404", nil, RouteCache{}, 404, "max-age=30", 30 * time.Second},
		{"max-age on a status valid does not name", nil, RouteCache{}, 403, "max-age=60", time.Minute},
		{"s-maxage over max-age", nil, RouteCache{}, 200, "max-age=60, s-maxage=120", 2 * time.Minute},
		{"max-age=0", nil, RouteCache{}, 200, "max-age=0", 0},
		{"no-store", nil, RouteCache{}, 200, "no-store", 0},
		{"no-cache", nil, RouteCache{Valid: valid("200", "1h")}, 200, "no-cache", 0},
		{"ignore: max-age", nil, RouteCache{UpstreamCacheControl: "ignore"}, 200, "max-age=60", 10 * time.Minute},
		{"ignore: no-store", nil, RouteCache{UpstreamCacheControl: "ignore"}, 200, "no-store", 10 * time.Minute},
		{"ignore: the route's valid", nil, RouteCache{UpstreamCacheControl: "ignore", Valid: valid("200", "1h")}, 200, "s-maxage=5", time.Hour},
	} {
		clk := testutil.NewClock()
		c, err := cache.New(cache.Config{Valid: tc.cacheValid}, nil, cache.WithClock(clk.Now))
		if err != nil {
			t.Fatalf("%s: cache.New: %v", tc.name, err)
		}
		cr := compileRouteCache(tc.route, true)
		var h fasthttp.ResponseHeader
		h.SetStatusCode(tc.status)
		if tc.cc != "" {
			h.Set("Cache-Control", tc.cc)
		}
		var s Server
		r, _, err := c.Get(context.Background(), cache.Request{Key: "/k", Group: "/k"},
			func(_ context.Context, _ *cache.Meta, w *cache.Writer) error {
				now := clk.Now()
				return w.Start(cache.Meta{Status: tc.status, StoredAt: now, ExpiresAt: s.expiry(now, cr, tc.status, &h)})
			})
		if err != nil {
			t.Fatalf("%s: Get: %v", tc.name, err)
		}
		m := r.Meta()
		got := time.Duration(0)
		if m.ExpiresAt.After(m.StoredAt) {
			got = m.ExpiresAt.Sub(m.StoredAt)
		}
		if got != tc.want {
			t.Errorf("%s: lifetime of a %d with Cache-Control %q = %v, want %v", tc.name, tc.status, tc.cc, got, tc.want)
		}
		r.Close()
		c.Close()
	}
}
