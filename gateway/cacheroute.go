package gateway

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mogway/mogway/cache"
	"github.com/mogway/mogway/internal/conf"
)

// RouteCache is a route's `cache:` setting: the word "off" or "on", or a block:
//
//	cache:
//	  key: uri                     # uri (path and query, default), path (query ignored), or args
//	  query_args: [w, h]           # with key: args, the query arguments kept in the key, in this order
//	  valid: {"200": 1h, "404": 30s}
//	  upstream_cache_control: honour
//	  bypass: ["arg:nocache", "header:X-Refresh"]
//	  tags: [images]               # stored with every entry of the route, for PURGE /purge?tag=images
//	  tag_header: Surrogate-Key    # upstream header whose words are tags (or Cache-Tag)
//
// A block turns the cache on for the route unless it says `enabled: false`.
type RouteCache struct {
	// Enabled is "on", "off" or "" (default: on when the gateway has a cache).
	Enabled string `yaml:"enabled"`
	// Key is how the cache key is made from the request: "uri" (default: the decoded path, "?" and the
	// query string as sent, nginx's $uri$is_args$args), "path" (the query string is ignored) or
	// "args" (the path and only the QueryArgs, in their order).
	Key string `yaml:"key"`
	// QueryArgs are the query arguments kept in the key when Key is "args". Default none.
	QueryArgs []string `yaml:"query_args"`
	// Valid maps a status ("200", "404") or "any" to how long answers of this route stay fresh when
	// upstream does not say (or is ignored); a status it does not name falls back to cache.valid.
	// Default: cache.valid.
	Valid map[string]conf.Duration `yaml:"valid"`
	// UpstreamCacheControl is "honour" (default: Cache-Control no-store, no-cache and private, and
	// Set-Cookie, keep an answer out of the cache, and max-age or s-maxage set its lifetime) or
	// "ignore" (only Valid decides).
	UpstreamCacheControl string `yaml:"upstream_cache_control"`
	// Bypass lists request conditions that skip the stored entry and fetch a new one, which replaces
	// it (nginx proxy_cache_bypass): "arg:NAME" (the query argument is present and not "0") or
	// "header:NAME" (the header is present and not "0"). Default none.
	Bypass []string `yaml:"bypass"`
	// Tags are stored with every entry of the route, for tag purges (PURGE /purge?tag=T). Default none.
	Tags []string `yaml:"tags"`
	// TagHeader names the upstream response header whose words (separated by spaces or commas, as
	// Surrogate-Key and Cache-Tag are) are stored as tags too; the header itself is not stored nor
	// sent to clients from the cache. Default none.
	TagHeader string `yaml:"tag_header"`
}

var routeCacheFields = []string{"enabled", "key", "query_args", "valid", "upstream_cache_control", "bypass",
	"tags", "tag_header"}

// UnmarshalYAML accepts "off", "on", true, false, or a block.
func (rc *RouteCache) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		switch strings.ToLower(n.Value) {
		case "on", "true", "yes":
			*rc = RouteCache{Enabled: "on"}
			return nil
		case "off", "false", "no":
			*rc = RouteCache{Enabled: "off"}
			return nil
		}
		return fmt.Errorf("line %d: cache: %q is not on, off or a block", n.Line, n.Value)
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: cache: write on, off or a block", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i].Value; !slices.Contains(routeCacheFields, k) {
			return fmt.Errorf("line %d: cache.%s: unknown field; known fields: %s", n.Content[i].Line, k,
				strings.Join(routeCacheFields, ", "))
		}
	}
	type plain RouteCache
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	switch strings.ToLower(p.Enabled) {
	case "", "on", "true", "yes":
		p.Enabled = "on"
	case "off", "false", "no":
		p.Enabled = "off"
	}
	*rc = RouteCache(p)
	return nil
}

// enabled reports whether the route is cached when the gateway cache exists (gatewayCache).
func (rc *RouteCache) enabled(gatewayCache bool) bool {
	switch rc.Enabled {
	case "on":
		return true
	case "off":
		return false
	}
	return gatewayCache
}

// Validate checks the setting; fields are named relative to it.
func (rc *RouteCache) Validate() error {
	var p conf.Problems
	if rc.Enabled != "" && rc.Enabled != "on" && rc.Enabled != "off" {
		p.Add("enabled", "write on or off", "%q is unknown", rc.Enabled)
	}
	switch rc.Key {
	case "", "uri", "path":
		if len(rc.QueryArgs) > 0 {
			p.Add("query_args", "set key: args, or remove query_args", "query_args needs key: args")
		}
	case "args":
		if len(rc.QueryArgs) == 0 {
			p.Add("query_args", "list the arguments to keep, e.g. [w, h], or use key: path", "key: args needs query_args")
		}
	default:
		p.Add("key", "write uri, path or args", "%q is unknown", rc.Key)
	}
	for k := range rc.Valid {
		if _, ok := cache.ParseValidKey(k); !ok {
			p.Add("valid."+k, `write a status code such as "200" or "404", or "any"`, "%q is not a status code", k)
		}
	}
	switch rc.UpstreamCacheControl {
	case "", "honour", "honor", "ignore":
	default:
		p.Add("upstream_cache_control", "write honour or ignore", "%q is unknown", rc.UpstreamCacheControl)
	}
	for i, b := range rc.Bypass {
		kind, name, ok := strings.Cut(b, ":")
		if !ok || (kind != "arg" && kind != "header") || name == "" {
			p.Add(fmt.Sprintf("bypass[%d]", i), `write "arg:NAME" or "header:NAME"`, "%q is not a condition", b)
		}
	}
	validateTags(rc.Tags, rc.TagHeader, p.Add)
	return p.Err()
}

// cacheRoute is a compiled RouteCache; nil on a route that is not cached.
type cacheRoute struct {
	key           string // uri, path or args
	args          []string
	valid         map[int]time.Duration
	validAny      time.Duration
	hasAny        bool
	ignoreUpCC    bool
	bypassArgs    []string
	bypassHeaders []string
	tags          []string // stored with every entry
	tagHeader     string   // canonical name of the upstream tag header; "" for none
	dropArgs      []string // query arguments left out of the key (signed URL arguments)
}

func compileRouteCache(rc RouteCache, gatewayCache bool) *cacheRoute {
	if !rc.enabled(gatewayCache) || !gatewayCache {
		return nil
	}
	cr := &cacheRoute{key: rc.Key, args: rc.QueryArgs, valid: map[int]time.Duration{},
		ignoreUpCC: rc.UpstreamCacheControl == "ignore"}
	cr.compileTags(rc)
	if cr.key == "" {
		cr.key = "uri"
	}
	for k, d := range rc.Valid {
		st, _ := cache.ParseValidKey(k)
		if st == 0 {
			cr.hasAny, cr.validAny = true, d.D()
			continue
		}
		cr.valid[st] = d.D()
	}
	for _, b := range rc.Bypass {
		kind, name, _ := strings.Cut(b, ":")
		if kind == "arg" {
			cr.bypassArgs = append(cr.bypassArgs, name)
		} else {
			cr.bypassHeaders = append(cr.bypassHeaders, name)
		}
	}
	return cr
}

// cacheKey is the entry key of a request: its decoded, normalised path and, as the route says, its
// query. The method is not part of it: HEAD is answered from the GET entry.
func (cr *cacheRoute) cacheKey(path string, query []byte) string {
	query = dropQueryArgs(query, cr.dropArgs)
	switch cr.key {
	case "path":
		return path
	case "args":
		vals, _ := url.ParseQuery(string(query))
		var b strings.Builder
		b.WriteString(path)
		sep := byte('?')
		for _, a := range cr.args {
			for _, v := range vals[a] {
				b.WriteByte(sep)
				sep = '&'
				b.WriteString(url.QueryEscape(a))
				b.WriteByte('=')
				b.WriteString(url.QueryEscape(v))
			}
		}
		return b.String()
	}
	if len(query) == 0 {
		return path
	}
	return path + "?" + string(query)
}

// lifetime is how long an answer with status stays fresh by the route's own Valid; ok is false when
// the route does not name the status (the cache's valid then decides).
func (cr *cacheRoute) lifetime(status int) (time.Duration, bool) {
	if d, ok := cr.valid[status]; ok {
		return d, true
	}
	if cr.hasAny {
		return cr.validAny, true
	}
	return 0, false
}

// upstreamCacheControl reads what an upstream answer says about caching it: store false for
// no-store, no-cache, private or a Set-Cookie; maxAge >= 0 from s-maxage or max-age.
func upstreamCacheControl(cc string, setCookie bool) (store bool, maxAge time.Duration) {
	store, maxAge = !setCookie, -1
	var sMax time.Duration = -1
	for d := range strings.SplitSeq(cc, ",") {
		d = strings.ToLower(strings.TrimSpace(d))
		name, val, _ := strings.Cut(d, "=")
		val = strings.Trim(val, `"`)
		switch name {
		case "no-store", "no-cache", "private":
			store = false
		case "max-age", "s-maxage":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 0 {
				continue
			}
			if name == "s-maxage" {
				sMax = time.Duration(n) * time.Second
			} else {
				maxAge = time.Duration(n) * time.Second
			}
		}
	}
	if sMax >= 0 {
		maxAge = sMax
	}
	if maxAge == 0 {
		store = false
	}
	return store, maxAge
}
