package gateway

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
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
	case "unknown_key", "unreg_domain", "domain_not_found", "invalid_key":
		return 404
	case "no_devices":
		return 503
	case "no_key", "unreg_class", "no_domain", "key_too_long":
		return 400
	case "":
		if isTimeout(err) {
			return 504
		}
		return 503
	}
	return 500
}

// pathEntry is one cached get_paths answer.
type pathEntry struct {
	paths   []string
	err     error // the unknown_key answer when cached negatively
	expires time.Time
}

// pathCache keeps get_paths answers briefly in a bounded LRU and lets concurrent misses for one key
// share a single tracker call. It is safe for concurrent use.
type pathCache struct {
	lru    *lru.Cache[string, *pathEntry] // nil when disabled
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
		c.lru, _ = lru.New[string, *pathEntry](cfg.Size) // only fails for size <= 0
	}
	return c
}

func cacheKey(domain, key string, noverify bool) string {
	v := "0"
	if noverify {
		v = "1"
	}
	return v + domain + "\x00" + key
}

// lookup returns the paths of (domain, key), from the cache when fresh. hit reports a cache hit.
// The entry is returned so that a failing path can drop exactly that answer (drop).
func (c *pathCache) lookup(ctx context.Context, t Tracker, domain, key string, noverify bool) (e *pathEntry, hit bool, err error) {
	ck := cacheKey(domain, key, noverify)
	if e := c.fresh(ck); e != nil {
		return e, true, e.err
	}
	c.waiting.Add(1)
	defer c.waiting.Add(-1)
	v, err, _ := c.flight.Do(ck, func() (any, error) {
		// Another caller may have filled the entry between our miss and this call.
		if e := c.fresh(ck); e != nil {
			return e, nil
		}
		paths, err := t.GetPaths(ctx, domain, key, noverify)
		now := c.now()
		switch {
		case err == nil:
			e := &pathEntry{paths: paths, expires: now.Add(c.ttl)}
			if c.lru != nil && len(paths) > 0 {
				c.lru.Add(ck, e)
			}
			return e, nil
		case trackerCode(err) == "unknown_key":
			e := &pathEntry{err: err, expires: now.Add(c.negTTL)}
			if c.lru != nil && c.negTTL > 0 {
				c.lru.Add(ck, e)
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

func (c *pathCache) fresh(ck string) *pathEntry {
	if c.lru == nil {
		return nil
	}
	e, ok := c.lru.Get(ck)
	if !ok {
		return nil
	}
	if !c.now().Before(e.expires) {
		c.lru.Remove(ck)
		return nil
	}
	return e
}

// drop forgets the cached answer e for (domain, key) if it is still the cached one.
func (c *pathCache) drop(domain, key string, noverify bool, e *pathEntry) {
	if c.lru == nil {
		return
	}
	ck := cacheKey(domain, key, noverify)
	if cur, ok := c.lru.Peek(ck); ok && (e == nil || cur == e) {
		c.lru.Remove(ck)
	}
}

// forget drops both cached variants of a key after it changed (upload, delete).
func (c *pathCache) forget(domain, key string) {
	c.drop(domain, key, false, nil)
	c.drop(domain, key, true, nil)
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
