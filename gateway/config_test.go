package gateway

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/conf/conftest"
)

type gatewayFile struct {
	Gateway Config `yaml:"gateway"`
}

func (f *gatewayFile) Validate() error { return conf.Within("gateway", f.Gateway.Validate()) }

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // substrings of the error; none = valid
	}{
		{"empty", "gateway: {}\n", nil},
		{"tracker route", "gateway:\n  trackers: [10.0.0.1]\n  routes:\n    - prefix: /d/\n      domain: d\n", nil},
		{"no trackers", "gateway:\n  routes:\n    - prefix: /d/\n", []string{"cfg.yaml:", "gateway.trackers", "needs at least one tracker"}},
		{"bad prefix", "gateway:\n  trackers: [t]\n  routes:\n    - prefix: d/\n", []string{"cfg.yaml:4:", "gateway.routes[0].prefix", "must start with /"}},
		{"unnormalised prefix", "gateway:\n  trackers: [t]\n  routes:\n    - prefix: /a//b/\n", []string{"routes[0].prefix", `write "/a/b/"`}},
		{"duplicate prefix", "gateway:\n  trackers: [t]\n  routes:\n    - prefix: /a/\n    - prefix: /a/\n", []string{"cfg.yaml:5:", "routes[1].prefix", "also the prefix of routes[0]"}},
		{"put without auth", "gateway:\n  trackers: [t]\n  routes:\n    - prefix: /a/\n      methods: [GET, PUT]\n", []string{"routes[0].methods", "need allow or token"}},
		{"bad method", "gateway:\n  trackers: [t]\n  routes:\n    - prefix: /a/\n      methods: [POST]\n", []string{"routes[0].methods[0]", `"POST" is not allowed`}},
		{"bad key mode", "gateway:\n  trackers: [t]\n  routes:\n    - prefix: /a/\n      key: path\n", []string{"routes[0].key", `write "module" or "uri"`}},
		{"bad allow", "gateway:\n  trackers: [t]\n  routes:\n    - prefix: /a/\n      methods: [PUT]\n      allow: [10.0.0.0/99]\n", []string{"routes[0].allow[0]", "not a network"}},
		{"upstream with domain", "gateway:\n  routes:\n    - prefix: /g/\n      domain: d\n      servers: [{addr: \"127.0.0.1:80\"}]\n", []string{"routes[0].domain", "only to tracker routes"}},
		{"upstream bad addr", "gateway:\n  routes:\n    - prefix: /g/\n      servers: [{addr: nohost}]\n", []string{"routes[0].servers[0].addr", "host:port"}},
		{"next_upstream word", "gateway:\n  routes:\n    - prefix: /g/\n      servers: [{addr: \"h:1\"}]\n      next_upstream: [eror]\n", []string{"routes[0].next_upstream[0]", `"eror" is unknown`}},
		{"next_upstream off mixed", "gateway:\n  routes:\n    - prefix: /g/\n      servers: [{addr: \"h:1\"}]\n      next_upstream: [off, error]\n", []string{"off cannot be combined"}},
		{"secure_link unknown variable", "gateway:\n  routes:\n    - prefix: /g/\n      servers: [{addr: \"h:1\"}]\n      secure_link:\n        md5: \"$uri$nosuch\"\n",
			[]string{"cfg.yaml:6:", "gateway.routes[0].secure_link.md5", "unknown variable $nosuch", "known: $uri"}},
		{"secure_link unknown field", "gateway:\n  routes:\n    - prefix: /g/\n      servers: [{addr: \"h:1\"}]\n      secure_link:\n        sha1: x\n",
			[]string{"cfg.yaml:6:", "sha1"}},
		{"tag_header", "gateway:\n  routes:\n    - prefix: /g/\n      servers: [{addr: \"h:1\"}]\n      cache:\n        tag_header: \"Surrogate Key\"\n",
			[]string{"cfg.yaml:6:", "gateway.routes[0].cache.tag_header", "write a header name"}},
		{"upstream PUT", "gateway:\n  routes:\n    - prefix: /g/\n      servers: [{addr: \"h:1\"}]\n      methods: [PUT]\n", []string{"routes[0].methods[0]"}},
		{"bad listen", "gateway:\n  listen: 8080\n", []string{"gateway.listen", "host:port"}},
		{"bad status path", "gateway:\n  status_path: status\n", []string{"gateway.status_path"}},
		{"unknown key", "gateway:\n  lisen: :80\n", []string{"cfg.yaml:2:", "unknown field", `did you mean "listen"`}},
		{"bad duration", "gateway:\n  timeouts:\n    storage_idle: soon\n", []string{"cfg.yaml:3:", "invalid duration"}},
		{"negative tracker idle", "gateway:\n  limits:\n    max_idle_per_tracker: -1\n", []string{"cfg.yaml:", "gateway.limits.max_idle_per_tracker", "must not be negative"}},
		{"negative tracker conns", "gateway:\n  limits:\n    max_conns_per_tracker: -1\n", []string{"cfg.yaml:", "gateway.limits.max_conns_per_tracker", "must not be negative", "0 or nothing for no bound"}},
		{"tracker conns", "gateway:\n  limits:\n    max_conns_per_tracker: 16\n    max_idle_per_tracker: 128\n", nil},
		{"replay buffer", "gateway:\n  limits:\n    upload_replay_buffer: 256KiB\n", nil},
		{"replay buffer too large", "gateway:\n  limits:\n    upload_replay_buffer: 1GiB\n", []string{"gateway.limits.upload_replay_buffer", "at most 64MiB"}},
		{"hedge", "gateway:\n  hedge: {delay: 50ms, budget: 5%}\n  routes:\n    - prefix: /g/\n      servers: [{addr: \"h:1\"}]\n      hedge: {delay: \"off\"}\n", nil},
		{"hedge bad delay", "gateway:\n  hedge:\n    delay: soon\n", []string{"cfg.yaml:3:", "gateway.hedge.delay", `write "auto"`}},
		{"hedge negative delay", "gateway:\n  hedge:\n    delay: -5ms\n", []string{"gateway.hedge.delay"}},
		{"hedge bad budget", "gateway:\n  routes:\n    - prefix: /g/\n      servers: [{addr: \"h:1\"}]\n      hedge:\n        budget: 10\n",
			[]string{"cfg.yaml:6:", "gateway.routes[0].hedge.budget", "not a percentage"}},
		{"hedge budget over 100", "gateway:\n  hedge: {budget: 150%}\n", []string{"gateway.hedge.budget"}},
		{"bad content type", "gateway:\n  trackers: [t]\n  routes:\n    - prefix: /a/\n      content_type: guess\n", []string{"routes[0].content_type"}},
	}
	for _, tt := range tests {
		var f gatewayFile
		err := conf.Decode("cfg.yaml", []byte(tt.yaml), &f)
		if len(tt.want) == 0 {
			if err != nil {
				t.Errorf("%s: Decode = %v, want no error", tt.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: Decode succeeded, want an error containing %q", tt.name, tt.want)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not contain %q", tt.name, err, w)
			}
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{Trackers: []string{"10.0.0.1", "10.0.0.2:7002"}, Routes: []Route{
		{Prefix: "/d/"},
		{Prefix: "/g/", Servers: []UpstreamServer{{Addr: "h:1"}}},
	}}.withDefaults()
	if c.Listen != ":8080" || c.Trackers[0] != "10.0.0.1:7001" || c.Trackers[1] != "10.0.0.2:7002" {
		t.Errorf("listen %q, trackers %q; want :8080 and default port 7001", c.Listen, c.Trackers)
	}
	if c.Timeouts.StorageFirstByte.D() != 10*time.Second || c.PathCache.TTL.D() != 5*time.Second || c.AccessLog != "stdout" ||
		c.Limits.UploadReplayBuffer != conf.MiB {
		t.Errorf("defaults = %+v", c)
	}
	d, g := c.Routes[0], c.Routes[1]
	if d.Domain != "default" || d.Key != "module" || d.ContentType != "extension" || strings.Join(d.Methods, ",") != "GET,HEAD" {
		t.Errorf("tracker route defaults = %+v", d)
	}
	if c.Hedge != (Hedge{Delay: "auto", Budget: "10%"}) || d.Hedge != c.Hedge {
		t.Errorf("hedge defaults = %+v, route %+v; want auto and 10%%", c.Hedge, d.Hedge)
	}
	s := g.Servers[0]
	if g.ContentType != "upstream" || strings.Join(g.NextUpstream, ",") != "error,timeout" || s.Weight != 1 ||
		s.MaxFails != 1 || s.FailTimeout.D() != 10*time.Second {
		t.Errorf("upstream route defaults = %+v", g)
	}
}

// TestExampleConfig keeps the gateway section of config.example.yaml valid.
func TestExampleConfig(t *testing.T) {
	data, err := os.ReadFile("../config.example.yaml")
	if err != nil {
		t.Skipf("no example file: %v", err)
	}
	// Only the gateway section is checked here (strictly); other sections belong to other packages.
	var doc map[string]yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("config.example.yaml: %v", err)
	}
	n, ok := doc["gateway"]
	if !ok {
		t.Fatal("config.example.yaml has no gateway section")
	}
	section, err := yaml.Marshal(map[string]*yaml.Node{"gateway": &n})
	if err != nil {
		t.Fatal(err)
	}
	var f gatewayFile
	if err := conf.Decode("config.example.yaml", section, &f); err != nil {
		t.Fatalf("config.example.yaml gateway section: %v", err)
	}
	if len(f.Gateway.Routes) != 5 {
		t.Fatalf("example routes = %d, want 5", len(f.Gateway.Routes))
	}
	if ri := f.Gateway.Routes[4].Image; ri == nil || len(ri.Presets) != 1 || len(ri.Sizes) != 2 {
		t.Errorf("example image = %+v, want a preset and two sizes", ri)
	}
	if sl := f.Gateway.Routes[3].SecureLink; sl == nil || sl.MD5 == "" || sl.Validate() != nil {
		t.Errorf("example secure_link = %+v, want a valid md5 block", sl)
	}
	if rc := f.Gateway.Routes[3].Cache; rc.TagHeader != "Surrogate-Key" || rc.Validate() != nil {
		t.Errorf("example tag_header = %q, want Surrogate-Key", rc.TagHeader)
	}
}

func TestParseNextUpstream(t *testing.T) {
	for _, tc := range []struct {
		words []string
		want  nextUpstream
	}{
		{nil, nextUpstream{status: map[int]bool{}}},
		{[]string{"error", "timeout"}, nextUpstream{error: true, timeout: true, status: map[int]bool{}}},
		{[]string{"invalid_header", "http_500", "http_502", "http_503", "http_504", "http_403", "http_404", "http_429"},
			nextUpstream{invalidHeader: true, status: map[int]bool{500: true, 502: true, 503: true, 504: true, 403: true, 404: true, 429: true}}},
		{[]string{"off"}, nextUpstream{status: map[int]bool{}}},
		// Words Validate refuses carry no condition here either.
		{[]string{"http_501", "http_", "http_x", "eror"}, nextUpstream{status: map[int]bool{}}},
	} {
		if got := parseNextUpstream(tc.words); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseNextUpstream(%q) = %+v, want %+v", tc.words, got, tc.want)
		}
	}
}

// TestConfigExampleDefaults checks the defaults the gateway section of config.example.yaml states
// against withDefaults and the defaults a route applies when it is built. The cache and purge
// blocks are checked by their packages.
func TestConfigExampleDefaults(t *testing.T) {
	t.Parallel()
	conftest.CheckDefaults(t, conftest.Section{
		File:      "../config.example.yaml",
		Path:      "gateway",
		Delegated: []string{"cache", "purge"},
		Skip: map[string]string{ // filled in when the route is compiled, with no defaulted Config to compare
			"gateway.routes[].cache.key":       "filled in when a route is compiled (compileRouteCache takes an empty key as uri)",
			"gateway.routes[].image.not_image": `filled in when a route is compiled (the image route answers 415 unless not_image is "original")`,
		},
	}, func(name string, data []byte) (Config, error) {
		var c Config
		if err := conf.Decode(name, data, &c); err != nil {
			return Config{}, err
		}
		d := c.withDefaults()
		for i := range d.Routes { // the blocks behind pointers are c's, decoded for this call only
			r := &d.Routes[i]
			if sl := r.SecureLink; sl != nil {
				sl.Link = sl.link()
			}
			if im := r.Image; im != nil {
				lim := im.limits()
				im.MaxSourceSize, im.MaxSourcePixels = conf.Size(lim.MaxSourceBytes), lim.MaxSourcePixels
				im.MaxWidth, im.MaxHeight = lim.MaxWidth, lim.MaxHeight
				im.Params = im.Params.withDefaults()
			}
		}
		return d, nil
	})
}
