package gateway

import (
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// serveUpstream answers GET and HEAD on an upstream route.
func (s *Server) serveUpstream(ctx *fasthttp.RequestCtx, rt *route, rp requestPath, rec *accessRecord) {
	s.fetch(ctx, s.upstreamRequest(rt, rp, upstreamURI(rt, rp, rec.uri), ctx.IsHead(), rec))
}

// upstreamURI is the URI an upstream route sends for a request. written is the request URI as the
// client sent it (the access record's), reused rather than copied again.
//
// With strip_prefix the prefix of the normalised path is replaced by "/" and the path percent-encoded
// anew, as nginx's `proxy_pass http://group/;` replaces the location's part of its normalised URI.
// Without it the URI goes out as the client wrote it, as `proxy_pass http://group;` sends nginx's
// unparsed request URI: runs of slashes, percent-encoding and the query unchanged (merge_slashes only
// changes the path locations are matched against, here rp.clean, so "/dev1//x" is sent as written).
// Only a path with "." or ".." segments is sent resolved (nginx would send it as written), so an
// upstream never sees a ".." the gateway did not resolve itself.
func upstreamURI(rt *route, rp requestPath, written string) string {
	var uri string
	switch {
	case rt.StripPrefix:
		uri = "/" + escapePath(strings.TrimLeft(strings.TrimPrefix(rp.clean, rt.Prefix), "/"))
		if len(rp.query) > 0 {
			uri += "?" + string(rp.query)
		}
	case rp.written == rp.clean:
		// No dot segments (written has its slashes merged, as clean has).
		uri = written
		if !strings.HasPrefix(uri, "/") {
			// The absolute-form (RFC 9112 section 3.2.2): its path and query as written, as nginx
			// sends them. (The request's fasthttp URI has its path normalised and encoded anew.)
			path, query, _ := splitURI([]byte(written)) // parseRequestPath accepted it
			uri = string(path)
			if len(query) > 0 {
				uri += "?" + string(query)
			}
		}
	default:
		uri = escapePath(rp.clean)
		if len(rp.query) > 0 {
			uri += "?" + string(rp.query)
		}
	}
	return uri
}

// upstreamRequest is the fetch of uri across an upstream route's group, in its current order.
func (s *Server) upstreamRequest(rt *route, rp requestPath, uri string, head bool, rec *accessRecord) *fetchRequest {
	fr := &fetchRequest{route: rt, head: head, name: rp.clean, rec: rec, now: s.now()}
	fr.targets = rt.group.targets(fr.own[:0], fr.now, uri)
	return fr
}

// escapePath percent-encodes a decoded path for a request line, keeping slashes.
func escapePath(p string) string {
	return (&url.URL{Path: p}).EscapedPath()
}

// member is one server of an upstream group.
type member struct {
	node   *node
	weight int
	health Health
}

// group is an upstream route's servers with nginx's smooth weighted round-robin.
type group struct {
	members []member

	mu      sync.Mutex // guards current
	current []int      // smooth round-robin current weights
}

func newGroup(servers []UpstreamServer, ns *nodes) *group {
	g := &group{current: make([]int, len(servers))}
	for _, s := range servers {
		g.members = append(g.members, member{node: ns.get(s.Addr), weight: s.Weight,
			health: Health{MaxFails: s.MaxFails, FailTimeout: s.FailTimeout}})
	}
	return g
}

// targets returns the members to try for one request of uri: the round-robin pick among available
// members first, then the other available members in configuration order, then the suspect ones (a
// request stuck past its hedge delay; the pick too when it is suspect), then the unavailable ones (so
// a request still has a chance when every server is marked down, as nginx does for a lone server).
// They are appended to out (which a caller may give room in a larger allocation).
func (g *group) targets(out []target, now time.Time, uri string) []target {
	avail := make([]bool, len(g.members)) // on the stack for small groups
	best, total := -1, 0
	g.mu.Lock()
	for i, m := range g.members {
		if !m.node.available(now, m.health) || m.weight == 0 {
			continue
		}
		avail[i] = true
		g.current[i] += m.weight
		total += m.weight
		if best < 0 || g.current[i] > g.current[best] {
			best = i
		}
	}
	if best >= 0 {
		g.current[best] -= total
	}
	g.mu.Unlock()
	if cap(out) < len(g.members) {
		out = make([]target, 0, len(g.members))
	}
	add := func(i int) {
		m := g.members[i]
		out = append(out, target{node: m.node, health: m.health, uri: uri})
	}
	suspect := make([]bool, len(g.members))
	for i, m := range g.members {
		suspect[i] = avail[i] && m.node.suspect()
	}
	if best >= 0 && !suspect[best] {
		add(best)
	}
	for i := range g.members {
		if avail[i] && !suspect[i] && i != best {
			add(i)
		}
	}
	// Suspect members with fewer stuck requests first (see pathTargets).
	from := len(out)
	for i := range g.members {
		if suspect[i] {
			add(i)
		}
	}
	sortSuspects(out[from:])
	for i := range g.members {
		if !avail[i] {
			add(i)
		}
	}
	return out
}
