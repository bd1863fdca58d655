package gateway

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/valyala/fasthttp"
	"golang.org/x/sync/singleflight"

	"github.com/mogway/mogway/tracker/mogproto"
)

// Tracker is what the gateway needs from a MogileFS tracker pool. Its methods are called
// concurrently. Tracker ERR replies come back as *mogproto.Error (errors.As), for example code
// "unknown_key"; anything else is a transport failure: a timeout (net.Error with Timeout, or
// context.DeadlineExceeded) is answered 504, any other 503.
type Tracker interface {
	// GetPaths returns the URLs of a key's copies, best first. An empty list is "paths=0".
	GetPaths(ctx context.Context, domain, key string, noverify bool) ([]string, error)
	// CreateOpen starts an upload and returns where to PUT the bytes, best first.
	CreateOpen(ctx context.Context, domain, key, class string) (Open, error)
	// CreateClose commits an upload written to one of Open's destinations.
	CreateClose(ctx context.Context, c Close) error
	// Delete removes a key.
	Delete(ctx context.Context, domain, key string) error
}

// Open is the answer to create_open.
type Open struct {
	Fid   int64
	Dests []Dest
}

// Dest is one destination offered by create_open.
type Dest struct {
	DevID int64
	Path  string
}

// Close is the create_close of an upload written to Path on device DevID.
type Close struct {
	Domain, Key, Class string
	Fid, DevID         int64
	Path               string
	Size               int64
}

// trackerCode returns the ERR code in err, or "".
func trackerCode(err error) string {
	var e *mogproto.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// isTimeout reports whether err is a timeout of the tracker or storage connection.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// trackerStatus maps a failed tracker command to an HTTP status, after the nginx module (spec 7.8)
// with the gateway's deliberate changes: unknown domain is 404 (nginx: 500), an unreachable tracker
// pool 503 (nginx: 502) and a slow one 504.
func trackerStatus(err error) int {
	switch trackerCode(err) {
	case mogproto.ErrUnknownKey, mogproto.ErrUnregDomain, mogproto.ErrDomainNotFound, mogproto.ErrInvalidKey:
		return 404
	case mogproto.ErrNoDevices:
		return 503
	case mogproto.ErrNoKey, mogproto.ErrUnregClass, mogproto.ErrNoDomain,
		"key_too_long": // no MogileFS tracker sends it (it has no mogproto constant); mapped since the start
		return 400
	case "":
		if isTimeout(err) {
			return 504
		}
		return 503
	}
	return 500
}

// trackerAnswer is the status and error message that answer a failed tracker command.
func trackerAnswer(err error) (int, string) {
	status := trackerStatus(err)
	return status, strings.ToLower(fasthttp.StatusMessage(status))
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

func newPathEntry(paths []string, err error, expires time.Time) *pathEntry {
	e := &pathEntry{err: err, expires: expires, parsed: make([]pathTarget, len(paths))}
	for i, p := range paths {
		pt := pathTarget{raw: p}
		if u, err := url.Parse(p); err == nil && u.Scheme == "http" && u.Host != "" {
			pt.host, pt.uri = u.Host, u.RequestURI()
			pt.etag = fidETag(pt.uri)
		}
		e.parsed[i] = pt
	}
	return e
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
}

func newPathCache(cfg PathCache, now func() time.Time) *pathCache {
	c := &pathCache{ttl: cfg.TTL.D(), negTTL: cfg.NegativeTTL.D(), now: now}
	if cfg.Size > 0 {
		c.lru, _ = lru.New[pathKey, *pathEntry](cfg.Size) // only fails for size <= 0
	}
	return c
}

// lookup returns the paths of k, from the cache when fresh. hit reports a cache hit. The entry is
// returned so that a failing path can drop exactly that answer (drop). A tracker call, made on a miss
// only, is bounded by budget.
func (c *pathCache) lookup(t Tracker, budget time.Duration, k pathKey) (e *pathEntry, hit bool, err error) {
	if e := c.fresh(k); e != nil {
		return e, true, e.err
	}
	c.waiting.Add(1)
	defer c.waiting.Add(-1)
	v, err, _ := c.flight.Do(k.flightKey(), func() (any, error) {
		// Another caller may have filled the entry between our miss and this call.
		if e := c.fresh(k); e != nil {
			return e, nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), budget)
		defer cancel()
		paths, err := t.GetPaths(ctx, k.domain, k.key, k.noverify)
		now := c.now()
		switch {
		case err == nil:
			e := newPathEntry(paths, nil, now.Add(c.ttl))
			if c.lru != nil && len(paths) > 0 {
				c.lru.Add(k, e)
			}
			return e, nil
		case trackerCode(err) == mogproto.ErrUnknownKey:
			e := newPathEntry(nil, err, now.Add(c.negTTL))
			if c.lru != nil && c.negTTL > 0 {
				c.lru.Add(k, e)
			}
			return e, nil
		}
		return nil, err
	})
	if err != nil {
		return nil, false, err
	}
	e = v.(*pathEntry)
	return e, false, e.err
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
		c.lru.Remove(k)
		return nil
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

// forget drops both cached variants of a key after it changed (upload, delete).
func (c *pathCache) forget(domain, key string) {
	c.drop(pathKey{domain, key, false}, nil)
	c.drop(pathKey{domain, key, true}, nil)
}

// purge drops every cached answer (a purge of a prefix or of everything).
func (c *pathCache) purge() {
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
