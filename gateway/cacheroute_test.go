package gateway

import (
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/cache"
	"github.com/mogway/mogway/internal/conf"
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
