package gateway

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// route is a compiled Route: everything a request needs, decided once per configuration.
type route struct {
	Route
	upstream bool
	allowed  string // value of the Allow header on 405
	allow    []netip.Prefix
	group    *group // upstream routes only
	next     nextUpstream
	hedge    hedgePolicy
	expires  time.Duration
	cache    *cacheRoute // nil: not cached
	secure   *secureLink // nil: no secure_link
	image    *imageRoute // nil: no image variants

	metrics *routeMetrics // set by gatewayMetrics.bind
}

// nextUpstream is a route's proxy_next_upstream conditions.
type nextUpstream struct {
	error, timeout, invalidHeader bool
	status                        map[int]bool
}

func parseNextUpstream(words []string) nextUpstream {
	n := nextUpstream{status: map[int]bool{}}
	for _, w := range words {
		switch w {
		case "error":
			n.error = true
		case "timeout":
			n.timeout = true
		case "invalid_header":
			n.invalidHeader = true
		default:
			// http_500, http_502, … as listed in nextUpstreamWords, which Validate checks against.
			if code, ok := strings.CutPrefix(w, "http_"); ok && slices.Contains(nextUpstreamWords, w) {
				c, _ := strconv.Atoi(code)
				n.status[c] = true
			}
		}
	}
	return n
}

// trackerNext is the failover policy of tracker routes: every copy is the same fid, so any
// failure of one copy is a reason to read another.
var trackerNext = nextUpstream{error: true, timeout: true, invalidHeader: true,
	status: map[int]bool{404: true, 500: true, 502: true, 503: true, 504: true}}

func (r *route) allows(method string) bool { return slices.Contains(r.Methods, method) }

// allowedFrom reports whether a write (PUT, DELETE) from addr is allowed by the route's networks.
// With no networks configured only the token decides.
func (r *route) allowedFrom(addr netip.Addr) bool {
	return len(r.allow) == 0 || inNets(r.allow, addr.Unmap())
}

// table is an immutable routing table; a reload builds a new one and swaps it in.
type table struct {
	// routes sorted by prefix length, longest first, so the first match is the longest.
	routes []*route
}

func newTable(routes []Route, nodes *nodes, cacheOn bool) *table {
	t := &table{}
	for _, rc := range routes {
		r := &route{Route: rc, upstream: rc.isUpstream(), expires: rc.Expires.D(),
			cache: compileRouteCache(rc.Cache, cacheOn), hedge: compileHedge(rc.Hedge)}
		r.allowed = strings.Join(r.Methods, ", ")
		r.allow = parseNets(rc.Allow)
		r.image = compileImage(rc.Image)
		if r.secure = compileSecureLink(rc.SecureLink); r.secure != nil && r.cache != nil {
			r.cache.dropArgs = r.secure.args
		}
		if r.upstream {
			r.next = parseNextUpstream(rc.NextUpstream)
			r.group = newGroup(rc.Servers, nodes)
		} else {
			r.next = trackerNext
		}
		t.routes = append(t.routes, r)
	}
	slices.SortStableFunc(t.routes, func(a, b *route) int { return len(b.Prefix) - len(a.Prefix) })
	return t
}

// match returns the route with the longest prefix of path, or nil. Prefixes match as plain strings,
// as nginx prefix locations do: /dl matches /dlx/a.
func (t *table) match(path string) *route {
	for _, r := range t.routes {
		if strings.HasPrefix(path, r.Prefix) {
			return r
		}
	}
	return nil
}
