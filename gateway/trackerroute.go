package gateway

import (
	"cmp"
	"context"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/valyala/fasthttp"
	"golang.org/x/sync/singleflight"

	"github.com/mogway/mogway/tracker/mogproto"
)

// serveTracker answers GET and HEAD on a tracker route.
func (s *Server) serveTracker(ctx *fasthttp.RequestCtx, st *state, rt *route, key string, rec *accessRecord) {
	fr, status, msg := s.trackerRequest(st, rt, key, ctx.IsHead(), rec)
	if fr == nil {
		plainError(ctx, status, msg)
		return
	}
	s.fetch(ctx, fr)
}

// countPathLookup counts a path-cache lookup: a hit, or a miss that asked the tracker (a first
// lookup or, after every cached copy failed, trackerFetch.again).
func (s *Server) countPathLookup(hit bool) {
	if hit {
		s.stats.pathHits.Add(1)
	} else {
		s.stats.pathMisses.Add(1)
	}
}

// trackerRequest asks the tracker (or the path cache) for key's copies and returns the fetch over
// them, or the status and message to answer instead.
func (s *Server) trackerRequest(st *state, rt *route, key string, head bool, rec *accessRecord) (*fetchRequest, int, string) {
	pk := pathKey{rt.Domain, key, rt.NoVerify}
	e, hit, err := st.paths.lookup(st.tracker, pk)
	s.countPathLookup(hit)
	if err != nil {
		if trackerCode(err) == "" {
			s.stats.trackerErrors.Add(1)
			// The pool logs each tracker it marks down; one line per request would flood the log.
			s.log.Debug("tracker get_paths failed", "domain", rt.Domain, "key", key, "err", err)
		}
		status, msg := trackerAnswer(err)
		return nil, status, msg
	}
	if len(e.parsed) == 0 {
		return nil, fasthttp.StatusServiceUnavailable, "no copy available"
	}
	now := s.now()
	targets := s.pathTargets(st, e, now)
	if len(targets) == 0 {
		st.paths.drop(pk, e)
		return nil, fasthttp.StatusBadGateway, "no copy could be read"
	}
	tf := &trackerFetch{fetchRequest: fetchRequest{route: rt, head: head, name: key, targets: targets,
		refresh: hit, rec: rec, now: now}, s: s, st: st, key: pk}
	tf.cur.Store(e)
	tf.source = tf
	return &tf.fetchRequest, 0, ""
}

// trackerFetch is the fetch of a tracker route's key, with the path cache answer its targets came
// from. One allocation holds the request and its target source.
type trackerFetch struct {
	fetchRequest
	s   *Server
	st  *state // its paths are the path cache the answer came from
	key pathKey
	cur atomic.Pointer[pathEntry] // the answer the targets came from, dropped when one fails
}

var _ targetSource = (*trackerFetch)(nil)

// failed drops the cached answer whose copy failed.
func (tf *trackerFetch) failed(target) { tf.st.paths.drop(tf.key, tf.cur.Load()) }

// again asks the tracker for the key's paths after every cached copy failed.
func (tf *trackerFetch) again() ([]target, int, string) {
	tf.st.paths.drop(tf.key, tf.cur.Load())
	e, hit, err := tf.st.paths.lookup(tf.st.tracker, tf.key)
	tf.s.countPathLookup(hit)
	if err != nil {
		status, msg := trackerAnswer(err)
		return nil, status, msg
	}
	if len(e.parsed) == 0 {
		return nil, fasthttp.StatusServiceUnavailable, "no copy available"
	}
	tf.cur.Store(e)
	return tf.s.pathTargets(tf.st, e, tf.s.now()), 0, ""
}

// pathTargets turns a get_paths answer into fetch targets: nodes in good health first, in the
// tracker's order except that the less loaded of the first two leads (power of two choices, see
// node.load); then suspect nodes (a request stuck past its hedge delay); then the ones passive health
// marks down. Suspect nodes with fewer stuck requests come first: one slow answer makes a healthy
// node suspect for a moment, while a hung one piles up stuck requests.
func (s *Server) pathTargets(st *state, e *pathEntry, now time.Time) []target {
	h := st.cfg.Storage
	good := make([]target, 0, len(e.parsed))
	var suspect, down []target
	for _, p := range e.parsed {
		if p.host == "" {
			s.log.Warn("tracker returned a bad path", "path", p.raw)
			continue
		}
		t := target{node: s.nodes.get(p.host), health: h, uri: p.uri, etag: p.etag}
		switch {
		case !t.node.available(now, h):
			down = append(down, t)
		case t.node.suspect():
			suspect = append(suspect, t)
		default:
			good = append(good, t)
		}
	}
	if len(good) >= 2 && lessLoaded(good[1].node, good[0].node) {
		good[0], good[1] = good[1], good[0]
	}
	sortSuspects(suspect)
	return append(append(good, suspect...), down...)
}

// sortSuspects orders suspect targets by how many requests are stuck on their node, fewest first,
// keeping the order of ties.
func sortSuspects(ts []target) {
	slices.SortStableFunc(ts, func(a, b target) int { return cmp.Compare(a.node.stuck.Load(), b.node.stuck.Load()) })
}

// pathEntry is one cached get_paths answer. It is never changed once made, so requests share it.
type pathEntry struct {
	parsed  []pathTarget // the paths, parsed once for every request the answer serves
	err     error        // the unknown_key answer when cached negatively
	expires time.Time
}

// pathTarget is one path of a get_paths answer, parsed.
type pathTarget struct {
	raw  string
	host string // "" when the tracker sent a path the gateway cannot fetch
	uri  string // path and query sent to the node
	etag string // validator derived from the fid (fidETag), "" when the path names none
}

// remember appends to e, a new answer, the copies of the same fid that old, the answer it
// replaces, named on other nodes: a tracker that has marked a node unreachable leaves its copies out
// until a monitor round lets the node back (seconds), and a copy whose get_paths check outlives the
// tracker's verify_hedge_delay is left out, so an answer taken while one copy's node hung names only
// the other copy; if that node hangs next, requests would have nothing to hedge to. A path names its fid, so
// the remembered copy holds the same bytes or answers 404; a copy that fails drops the entry and is
// forgotten with it (drop). Only the answer e is changed, before it is shared.
func (e *pathEntry) remember(old *pathEntry) {
	if len(e.parsed) == 0 || e.parsed[0].etag == "" {
		return
	}
	fid := e.parsed[0].etag
	for _, p := range old.parsed {
		if p.etag == fid && !slices.ContainsFunc(e.parsed, func(q pathTarget) bool { return q.host == p.host }) {
			e.parsed = append(e.parsed, p)
		}
	}
}

func newPathEntry(paths []string, err error, expires time.Time) *pathEntry {
	e := &pathEntry{err: err, expires: expires, parsed: make([]pathTarget, len(paths))}
	for i, p := range paths {
		pt := pathTarget{raw: p}
		if host, uri, ok := splitPath(p); ok {
			pt.host, pt.uri = host, uri
			pt.etag = fidETag(pt.uri)
		}
		e.parsed[i] = pt
	}
	return e
}

// splitPath returns the host and request URI of a storage path from get_paths, or ok false when it
// is not an http URL with a host. A plain path as trackers write them ("http://10.0.0.2:7500/dev1/0/
// 000/000/0000000017.fid": a host name or address, a port, a path of letters, digits and "/._-~") is
// split as it is, without net/url's allocations; anything else goes through url.Parse, which gives
// the same answer for the plain ones (FuzzSplitPath).
func splitPath(p string) (host, uri string, ok bool) {
	if rest, found := strings.CutPrefix(p, "http://"); found {
		if slash := strings.IndexByte(rest, '/'); slash > 0 && plainHost(rest[:slash]) && plainURI(rest[slash:]) {
			return rest[:slash], rest[slash:], true
		}
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return "", "", false
	}
	return u.Host, u.RequestURI(), true
}

// plainHost reports whether h is a host name or IPv4 address with an optional port of digits.
func plainHost(h string) bool {
	name, port, hasPort := strings.Cut(h, ":")
	if name == "" || hasPort && port == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	for i := 0; i < len(port); i++ {
		if c := port[i]; c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// plainURI reports whether u holds only characters a URL path keeps as they are: letters, digits
// and "/._-~" (no escapes, query or fragment).
func plainURI(u string) bool {
	for i := 0; i < len(u); i++ {
		if c := u[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '/' || c == '.' || c == '_' || c == '-' || c == '~') {
			return false
		}
	}
	return true
}

// pathKey names a cached answer. A struct rather than a joined string, so a hit allocates nothing.
type pathKey struct {
	domain, key string
	noverify    bool
}

// flightKey is the singleflight key of a pathKey (misses only).
func (k pathKey) flightKey() string {
	v := "0"
	if k.noverify {
		v = "1"
	}
	return v + k.domain + "\x00" + k.key
}

// pathCache keeps get_paths answers briefly in a bounded LRU and lets concurrent misses for one key
// share a single tracker call. It is safe for concurrent use.
type pathCache struct {
	lru    *lru.Cache[pathKey, *pathEntry] // nil when disabled
	ttl    time.Duration
	negTTL time.Duration
	now    func() time.Time
	flight singleflight.Group
	// waiting counts lookups waiting for a tracker answer, shared or not.
	waiting atomic.Int64
	// purges and forgets count changes (see version). An answer the tracker was asked for before a
	// change may name the copies the change replaced: an upload's create_close can commit while a
	// get_paths of the same key (a GET's, or a hedge's refresh) is on its way, and that answer,
	// cached after the upload's forget, would serve the old fid until the TTL ran out. Such an
	// answer is returned to the lookups that asked before the change but never cached, and a lookup
	// that starts after the change does not share its flight. forget counts in one of
	// len(forgets) stripes by key, so an upload does not keep other keys' answers out of the cache.
	purges  atomic.Uint64
	forgets [64]atomic.Uint64
}

// version is the count of changes that concern k: it grows with every purge and every forget of
// a key in k's stripe.
func (c *pathCache) version(k pathKey) uint64 {
	return c.purges.Load() + c.forgets[k.stripe(len(c.forgets))].Load()
}

// stripe hashes the domain and key of k (FNV-1a) to one of n stripes; both variants of a key
// (noverify or not) share one.
func (k pathKey) stripe(n int) int {
	h := uint32(2166136261)
	for _, s := range [...]string{k.domain, "\x00", k.key} {
		for i := 0; i < len(s); i++ {
			h = (h ^ uint32(s[i])) * 16777619
		}
	}
	return int(h % uint32(n))
}

// pathAnswer is a flight's result: the entry and k's version when its tracker call started.
type pathAnswer struct {
	e   *pathEntry
	gen uint64
}

func newPathCache(cfg PathCache, now func() time.Time) *pathCache {
	c := &pathCache{ttl: cfg.TTL.D(), negTTL: cfg.NegativeTTL.D(), now: now}
	if cfg.Size > 0 {
		c.lru, _ = lru.New[pathKey, *pathEntry](cfg.Size) // only fails for size <= 0
	}
	return c
}

// lookup returns the paths of k, from the cache when fresh. hit reports a cache hit. The entry is
// returned so that a failing path can drop exactly that answer (drop). A tracker call is made on a
// miss only.
func (c *pathCache) lookup(t Tracker, k pathKey) (e *pathEntry, hit bool, err error) {
	if e := c.fresh(k); e != nil {
		return e, true, e.err
	}
	c.waiting.Add(1)
	defer c.waiting.Add(-1)
	fk := k.flightKey()
	gen := c.version(k)
	for {
		v, err, _ := c.flight.Do(fk, func() (any, error) { return c.ask(t, k) })
		if err != nil {
			return nil, false, err
		}
		a := v.(pathAnswer)
		if a.gen >= gen {
			return a.e, false, a.e.err
		}
		// The flight joined was asked for before a change this lookup must see (a purge; forget
		// already keeps later lookups out of older flights). Ask again: the next flight starts
		// after the change, so this loops at most once more.
		c.flight.Forget(fk)
	}
}

// ask is the tracker call of a lookup's flight. It caches the answer only when no change came
// between the call and the caching (see version).
func (c *pathCache) ask(t Tracker, k pathKey) (any, error) {
	gen := c.version(k)
	// Another caller may have filled the entry between our miss and this call.
	if e := c.fresh(k); e != nil {
		return pathAnswer{e, gen}, nil
	}
	paths, err := t.GetPaths(context.Background(), k.domain, k.key, k.noverify) // bounded by t (Tracker.GetPaths)
	now := c.now()
	var e *pathEntry
	switch {
	case err == nil:
		e = newPathEntry(paths, nil, now.Add(c.ttl))
		if c.lru != nil && len(paths) > 0 {
			if old, ok := c.lru.Peek(k); ok {
				e.remember(old)
			}
			c.store(k, e, gen)
		}
	case trackerCode(err) == mogproto.ErrUnknownKey:
		e = newPathEntry(nil, err, now.Add(c.negTTL))
		if c.lru != nil && c.negTTL > 0 {
			c.store(k, e, gen)
		}
	default:
		return nil, err
	}
	return pathAnswer{e, gen}, nil
}

// store caches e for k unless k changed after version gen. A change counts itself before it drops
// entries, and store adds before it looks at the version again, so whichever runs second removes
// e: an answer older than a change is never left cached.
func (c *pathCache) store(k pathKey, e *pathEntry, gen uint64) {
	if c.version(k) != gen {
		return
	}
	c.lru.Add(k, e)
	if c.version(k) != gen {
		c.drop(k, e)
	}
}

func (c *pathCache) fresh(k pathKey) *pathEntry {
	if c.lru == nil {
		return nil
	}
	e, ok := c.lru.Get(k)
	if !ok {
		return nil
	}
	if !c.now().Before(e.expires) {
		return nil // kept for the next answer to remember its copies (pathEntry.remember)
	}
	return e
}

// drop forgets the cached answer e for k if it is still the cached one (any answer when e is nil).
func (c *pathCache) drop(k pathKey, e *pathEntry) {
	if c.lru == nil {
		return
	}
	if cur, ok := c.lru.Peek(k); ok && (e == nil || cur == e) {
		c.lru.Remove(k)
	}
}

// forget drops both cached variants of a key after it changed (upload, delete). Lookups of the key
// that start after it ask the tracker anew rather than share a flight that asked before the change.
func (c *pathCache) forget(domain, key string) {
	c.forgets[pathKey{domain, key, false}.stripe(len(c.forgets))].Add(1)
	for _, k := range [...]pathKey{{domain, key, false}, {domain, key, true}} {
		c.flight.Forget(k.flightKey())
		c.drop(k, nil)
	}
}

// purge drops every cached answer (a purge of a prefix or of everything).
func (c *pathCache) purge() {
	c.purges.Add(1)
	if c.lru != nil {
		c.lru.Purge()
	}
}

func (c *pathCache) len() int {
	if c.lru == nil {
		return 0
	}
	return c.lru.Len()
}

// fidETag makes a validator for a MogileFS copy from its fid path ("/dev1/0/000/000/0000000017.fid"
// gives "\"fid-17\""): every copy of a fid holds the same bytes, and a new upload gets a new fid.
func fidETag(uri string) string {
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		uri = uri[:i]
	}
	name := uri[strings.LastIndexByte(uri, '/')+1:]
	digits, found := strings.CutSuffix(name, ".fid")
	if !found || digits == "" {
		return ""
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return ""
	}
	return `"fid-` + strconv.FormatUint(n, 10) + `"`
}
