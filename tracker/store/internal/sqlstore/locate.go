package sqlstore

import (
	"context"
	"database/sql"
	"strconv"
	"sync"
	"time"

	"github.com/mogway/mogway/tracker/store"
)

// locateQuery reads a key's file row and its copies in one statement; devid is NULL when the file
// has no copy.
const locateQuery = "SELECT f.fid, f.length, o.devid FROM file f LEFT JOIN file_on o ON o.fid = f.fid " +
	"WHERE f.dmid = ? AND f.dkey = ? ORDER BY o.devid"

// DefaultLocateCacheSize is the number of keys the Locate cache holds when Options.LocateCacheSize is 0.
const DefaultLocateCacheSize = 16384

// Locate returns the fid, length and copies of a key. With Options.LocateTTL set it answers from
// a cache of recently located keys; every write through this Store that changes a key's file row
// or a fid's copies drops the entries it touches before it returns, so a reader of this Store
// never sees an older location after a write has returned. With Options.Version set, a write
// committed by anyone else (another tracker on the same database file) empties the cache before
// the next Locate answers, so no reader sees an older location after any write has returned;
// without it, such writes reach the cache when its entry expires, LocateTTL after it was read. A
// key that is not found is never cached.
func (s *Store) Locate(ctx context.Context, domainID int, key string) (store.Location, error) {
	if len(key) > store.MaxKeyLen {
		return store.Location{}, s.notFound("key %q in domain %d", key, domainID)
	}
	k := locKey{domainID, key}
	gen, hit := uint64(0), false
	var loc store.Location
	cached := s.locs != nil
	if cached && s.version != nil {
		v, err := s.version(ctx)
		if err == nil {
			s.locs.observe(v)
		} else {
			cached = false // unknown whether someone else wrote: read the database
		}
	}
	if cached {
		loc, gen, hit = s.locs.get(k, time.Now())
		if hit {
			return loc, nil
		}
	}
	loc, err := s.locate(ctx, domainID, key)
	if err != nil {
		return loc, err
	}
	if cached {
		s.locs.put(k, loc, gen, time.Now())
	}
	return loc, nil
}

func (s *Store) locate(ctx context.Context, domainID int, key string) (store.Location, error) {
	var loc store.Location
	rows, err := s.locateStmt.QueryContext(ctx, domainID, key)
	if err != nil {
		return loc, s.errf("locate", err)
	}
	defer rows.Close()
	found := false
	for rows.Next() {
		var length, devid sql.NullInt64
		if err := rows.Scan(&loc.Fid, &length, &devid); err != nil {
			return store.Location{}, s.errf("locate", err)
		}
		found, loc.Length = true, length.Int64
		if devid.Valid {
			loc.DevIDs = append(loc.DevIDs, int(devid.Int64))
		}
	}
	if err := rows.Err(); err != nil {
		return store.Location{}, s.errf("locate", err)
	}
	if !found {
		return store.Location{}, s.notFound("key %s in domain %d", strconv.Quote(key), domainID)
	}
	return loc, nil
}

// prepareLocate prepares the Locate statement on the read pool.
func (s *Store) prepareLocate(ctx context.Context) error {
	st, err := s.r.PrepareContext(ctx, locateQuery)
	if err != nil {
		return s.errf("prepare locate", err)
	}
	s.locateStmt = st
	return nil
}

type locKey struct {
	dmid int
	key  string
}

type locEntry struct {
	loc     store.Location
	expires time.Time
}

// locCache is the Locate cache. A fill races with writes: a reader that read the database before
// a write committed must not store what it read after the write dropped the key's entry. So every
// drop bumps gen, and a reader stores its result only when gen is still what it was before the
// reader went to the database.
type locCache struct {
	ttl  time.Duration
	size int

	mu      sync.Mutex // guards the fields below
	gen     uint64
	version int64 // the database's version (Options.Version) the entries were read at
	seen    bool  // version holds a value read from the database
	byKey   map[locKey]locEntry
	byFid   map[int64]locKey
}

func newLocCache(ttl time.Duration, size int) *locCache {
	if size <= 0 {
		size = DefaultLocateCacheSize
	}
	return &locCache{ttl: ttl, size: size, byKey: map[locKey]locEntry{}, byFid: map[int64]locKey{}}
}

// get returns the cached location of k; on a miss it returns the generation to hand to put.
func (c *locCache) get(k locKey, now time.Time) (store.Location, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[k]
	if ok && now.Before(e.expires) {
		return e.loc, 0, true
	}
	return store.Location{}, c.gen, false
}

// put stores loc for k, unless a write dropped entries since gen was read.
func (c *locCache) put(k locKey, loc store.Location, gen uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if old, ok := c.byKey[k]; ok {
		delete(c.byFid, old.loc.Fid)
	} else if len(c.byKey) >= c.size {
		for victim, e := range c.byKey { // any entry: map iteration order is unspecified
			delete(c.byKey, victim)
			delete(c.byFid, e.loc.Fid)
			break
		}
	}
	c.byKey[k] = locEntry{loc: loc, expires: now.Add(c.ttl)}
	c.byFid[loc.Fid] = k
}

// observe empties the cache when the database's version v differs from the one its entries were
// read at: something committed since, possibly outside this Store.
func (c *locCache) observe(v int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen && v == c.version {
		return
	}
	c.version, c.seen = v, true
	c.gen++
	clear(c.byKey)
	clear(c.byFid)
}

// dropKeys forgets the locations of keys of a domain.
func (c *locCache) dropKeys(dmid int, keys ...string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, key := range keys {
		k := locKey{dmid, key}
		if e, ok := c.byKey[k]; ok {
			delete(c.byKey, k)
			delete(c.byFid, e.loc.Fid)
		}
	}
}

// dropFid forgets the location of the key whose file is fid.
func (c *locCache) dropFid(fid int64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if k, ok := c.byFid[fid]; ok {
		delete(c.byFid, fid)
		delete(c.byKey, k)
	}
}

// dropAll empties the cache.
func (c *locCache) dropAll() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.byKey)
	clear(c.byFid)
}
