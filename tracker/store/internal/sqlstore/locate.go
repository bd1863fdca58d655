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

// CommitMark is a snapshot of something that changes whenever anyone commits to the database
// (SQLite: the header of the WAL index), read without a statement.
type CommitMark [12]uint32

// Changes tells the Locate cache about commits made outside this Store, cheaply: the cache keeps
// the mark at which it last knew itself current and answers from memory while the mark has not
// moved. When it moved, one read of the generation tells whether what Locate reads changed: the
// Store's own writes read the generation inside their transactions and drop the keys they touch,
// so only a change by someone else empties the cache.
type Changes struct {
	// Mark returns the database's current commit mark; ok false means it cannot tell, and the
	// generation is read. It must not block.
	Mark func() (m CommitMark, ok bool)
	// GenQuery reads the generation: a number that every change to what Locate reads (file and
	// file_on rows) increases in the transaction that makes it, whoever commits it.
	GenQuery string
}

// Locate returns the fid, length and copies of a key. With Options.LocateTTL set it answers from
// a cache of recently located keys; every write through this Store that changes a key's file row
// or a fid's copies drops the entries it touches before it returns, so a reader of this Store
// never sees an older location after a write has returned. With Options.Changes set, a change
// committed by anyone else (another tracker on the database file) empties the cache before the
// next Locate answers; without it, such writes reach the cache when its entry expires, LocateTTL
// after it was read. A key that is not found is never cached.
func (s *Store) Locate(ctx context.Context, domainID int, key string) (store.Location, error) {
	if len(key) > store.MaxKeyLen {
		return store.Location{}, s.notFound("key %q in domain %d", key, domainID)
	}
	if s.locs == nil {
		return s.locate(ctx, domainID, key)
	}
	k := locKey{domainID, key}
	var m CommitMark
	marked := false
	if s.mark != nil {
		m, marked = s.mark()
	}
	loc, fill, hit, current := s.locs.get(k, m, marked, s.genStmt == nil, time.Now())
	if hit {
		return loc, nil
	}
	if !current {
		// Something was committed since the cache last knew itself current: read the generation
		// (after the mark, so it covers every commit the mark covers) and let the cache decide.
		var g int64
		if err := s.genStmt.QueryRowContext(ctx).Scan(&g); err != nil {
			return s.locate(ctx, domainID, key) // unknown whether someone else wrote: read the database
		}
		loc, fill, hit = s.locs.observe(k, m, marked, g, time.Now())
		if hit {
			return loc, nil
		}
	}
	loc, err := s.locate(ctx, domainID, key)
	if err != nil {
		return loc, err
	}
	s.locs.put(k, loc, fill, time.Now())
	return loc, nil
}

// filesTx runs fn as a write transaction through run (s.tx or s.allocate) and then drops from the
// Locate cache what fn changed. With Changes set it reads the generation at the start and at the
// end of the transaction, so the cache can tell its own change from everyone else's.
func (s *Store) filesTx(ctx context.Context, what string, run func(context.Context, string, func(*sql.Tx) error) error,
	drop func(c *locCache), fn func(tx *sql.Tx) error) error {
	if s.locs == nil {
		return run(ctx, what, fn)
	}
	if s.genQuery == "" {
		defer s.locs.wrote(0, 0, false, drop)
		return run(ctx, what, fn)
	}
	var before, after int64
	err := run(ctx, what, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, s.genQuery).Scan(&before); err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, s.genQuery).Scan(&after)
	})
	s.locs.wrote(before, after, err == nil, drop)
	return err
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

// prepareLocate prepares the Locate statement on the read pool and sets up the cache.
func (s *Store) prepareLocate(ctx context.Context, o Options) error {
	st, err := s.r.PrepareContext(ctx, locateQuery)
	if err != nil {
		return s.errf("prepare locate", err)
	}
	s.locateStmt = st
	if o.LocateTTL <= 0 {
		return nil
	}
	s.locs = newLocCache(o.LocateTTL, o.LocateCacheSize)
	if c := o.Changes; c != nil {
		if s.genStmt, err = s.r.PrepareContext(ctx, c.GenQuery); err != nil {
			return s.errf("prepare locate generation", err)
		}
		s.mark, s.genQuery = c.Mark, c.GenQuery
	}
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

// locCache is the Locate cache.
//
// Its entries are current as of a commit mark and a generation (see Changes). known is the
// generation up to which every change to the database is reflected: either the cache was emptied
// after it was committed or, for this Store's own writes, the keys it touched were dropped. While
// the mark has not moved nothing was committed, so the entries are current. When it moved, the
// generation read after it tells: equal to known, only changes outside what Locate reads (queues,
// locks, usage) were committed; above it, someone else changed files and the cache is emptied.
//
// A fill races with writes: a reader that read the database before a write committed must not
// store what it read after the write dropped the key's entry. So every drop bumps fill, and a
// reader stores its result only when fill is still what it was before the reader went to the
// database.
type locCache struct {
	ttl  time.Duration
	size int

	mu      sync.Mutex // guards the fields below
	fill    uint64
	mark    CommitMark
	marked  bool  // mark holds a mark at which the entries were current
	known   int64 // see above; valid when knownOK
	knownOK bool
	byKey   map[locKey]locEntry
	byFid   map[int64]locKey
}

func newLocCache(ttl time.Duration, size int) *locCache {
	if size <= 0 {
		size = DefaultLocateCacheSize
	}
	return &locCache{ttl: ttl, size: size, byKey: map[locKey]locEntry{}, byFid: map[int64]locKey{}}
}

// get looks k up. current is false when the cache does not know itself current at the commit
// mark m (marked false: unknown), unless unwatched (no Changes: the TTL alone bounds staleness);
// then it answers nothing and the caller reads the generation for observe. On a miss it returns
// the fill generation to hand to put.
func (c *locCache) get(k locKey, m CommitMark, marked, unwatched bool, now time.Time) (loc store.Location, fill uint64, hit, current bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !unwatched && !(marked && c.marked && m == c.mark) {
		return store.Location{}, 0, false, false
	}
	loc, hit = c.lookup(k, now)
	return loc, c.fill, hit, true
}

// observe takes the generation g, read after the commit mark m, and then looks k up as get does.
func (c *locCache) observe(k locKey, m CommitMark, marked bool, g int64, now time.Time) (loc store.Location, fill uint64, hit bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.knownOK || g != c.known {
		// Someone else changed what Locate reads (or, with g below known, this read raced a
		// write of this Store's: emptying the cache is then merely early).
		c.clear()
		c.known, c.knownOK = max(c.known, g), true
	}
	c.mark, c.marked = m, marked
	loc, hit = c.lookup(k, now)
	return loc, c.fill, hit
}

// wrote records a write of this Store: drop forgets what it touched. before and after are the
// generation at the start and the end of its transaction, valid when committed. A generation
// above known at the start means someone else changed files since the cache was last current:
// the cache is emptied.
func (c *locCache) wrote(before, after int64, committed bool, drop func(c *locCache)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fill++
	if !committed {
		drop(c) // it may have committed all the same; the generation will tell the next observe
		return
	}
	if !c.knownOK || before > c.known {
		c.clear()
	} else {
		drop(c)
	}
	c.known, c.knownOK = max(c.known, after), true
}

// lookup returns the entry of k unless it expired. c.mu is held.
func (c *locCache) lookup(k locKey, now time.Time) (store.Location, bool) {
	e, ok := c.byKey[k]
	if ok && now.Before(e.expires) {
		return e.loc, true
	}
	return store.Location{}, false
}

// put stores loc for k, unless a write dropped entries since fill was read.
func (c *locCache) put(k locKey, loc store.Location, fill uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if fill != c.fill {
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

// clear empties the cache. c.mu is held.
func (c *locCache) clear() {
	c.fill++
	clear(c.byKey)
	clear(c.byFid)
}

// dropKeys returns a drop that forgets the locations of keys of a domain.
func dropKeys(dmid int, keys ...string) func(c *locCache) {
	return func(c *locCache) {
		for _, key := range keys {
			k := locKey{dmid, key}
			if e, ok := c.byKey[k]; ok {
				delete(c.byKey, k)
				delete(c.byFid, e.loc.Fid)
			}
		}
	}
}

// dropFid returns a drop that forgets the location of the key whose file is fid.
func dropFid(fid int64) func(c *locCache) {
	return func(c *locCache) {
		if k, ok := c.byFid[fid]; ok {
			delete(c.byFid, fid)
			delete(c.byKey, k)
		}
	}
}
