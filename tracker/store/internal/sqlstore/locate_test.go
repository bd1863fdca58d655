package sqlstore

import (
	"testing"
	"time"

	"github.com/mogway/mogway/tracker/store"
)

var testNow = time.Unix(1000, 0)

// get and observe as Locate calls them when the cache is watched and the mark is m.
func cacheGet(c *locCache, k locKey, m CommitMark) (store.Location, uint64, bool, bool) {
	return c.get(k, m, true, false, testNow)
}

// TestLocCacheFillAfterWrite is the race the fill generation guards against: a reader misses,
// reads the database, a write drops the key, and only then the reader stores what it read. The
// stored answer predates the write, so it must not be kept.
func TestLocCacheFillAfterWrite(t *testing.T) {
	k := locKey{1, "k"}
	old := store.Location{Fid: 7, Length: 3, DevIDs: []int{1}}
	for _, tc := range []struct {
		name  string
		write func(c *locCache)
	}{
		{"own write of the key", func(c *locCache) { c.wrote(5, 6, true, dropKeys(1, "k")) }},
		{"own write of another key", func(c *locCache) { c.wrote(5, 6, true, dropKeys(1, "other")) }},
		{"own write of the fid", func(c *locCache) { c.wrote(5, 6, true, dropFid(7)) }},
		{"failed own write", func(c *locCache) { c.wrote(0, 0, false, dropFid(8)) }},
		{"someone else's write", func(c *locCache) { c.observe(locKey{1, "x"}, CommitMark{2}, true, 9, testNow) }},
	} {
		c := newLocCache(time.Minute, 0)
		c.observe(k, CommitMark{1}, true, 5, testNow)
		_, fill, hit := c.observe(k, CommitMark{1}, true, 5, testNow)
		if hit {
			t.Fatalf("%s: hit in an empty cache", tc.name)
		}
		tc.write(c)
		c.put(k, old, fill, testNow)
		if got, _, hit := c.observe(k, CommitMark{1}, true, 6, testNow); hit {
			t.Errorf("%s: get after a fill that raced a write = %+v, want a miss", tc.name, got)
		}
	}
}

func TestLocCache(t *testing.T) {
	c := newLocCache(time.Second, 2)
	m := CommitMark{1}
	c.observe(locKey{}, m, true, 0, testNow)
	put := func(dmid int, key string, fid int64) {
		c.put(locKey{dmid, key}, store.Location{Fid: fid}, c.fill, testNow)
	}
	hit := func(dmid int, key string, at time.Time) bool {
		_, _, ok, _ := c.get(locKey{dmid, key}, m, true, false, at)
		return ok
	}
	put(1, "a", 10)
	if !hit(1, "a", testNow) || hit(2, "a", testNow) || hit(1, "A", testNow) {
		t.Fatal("a cached key is found by its own domain and exact bytes only")
	}
	if hit(1, "a", testNow.Add(time.Second)) {
		t.Error("an entry is still served at its TTL")
	}
	c.wrote(0, 1, true, dropFid(10))
	if hit(1, "a", testNow) {
		t.Error("dropFid left the key of the fid")
	}
	put(1, "a", 10)
	put(1, "b", 11)
	put(1, "c", 12) // over the size of 2: one of the others goes
	if len(c.byKey) != 2 || len(c.byFid) != 2 || !hit(1, "c", testNow) {
		t.Errorf("after a third put into a cache of 2: %d keys, %d fids", len(c.byKey), len(c.byFid))
	}
	put(1, "c", 13) // the key's file was replaced: the old fid no longer points at it
	if _, ok := c.byFid[12]; ok {
		t.Error("a replaced entry left its fid behind")
	}
}

// TestLocCacheChanges walks the cache through commits: while the mark stands it answers from
// memory; a moved mark makes it ask for the generation, which keeps the entries when only this
// Store's writes (already dropped) or changes outside files happened, and empties it when someone
// else changed files.
func TestLocCacheChanges(t *testing.T) {
	a, b := locKey{1, "a"}, locKey{1, "b"}
	la, lb := store.Location{Fid: 1}, store.Location{Fid: 2}
	c := newLocCache(time.Minute, 0)
	m := CommitMark{1}
	if _, _, _, current := cacheGet(c, a, m); current {
		t.Fatal("a new cache knows itself current before reading the generation")
	}
	_, fill, _ := c.observe(a, m, true, 10, testNow)
	c.put(a, la, fill, testNow)
	c.put(b, lb, fill, testNow)
	if _, _, hit, _ := cacheGet(c, a, m); !hit {
		t.Fatal("miss while the mark has not moved")
	}

	// Unknown mark (a torn read): the cache does not answer without the generation.
	if _, _, hit, current := c.get(a, m, false, false, testNow); hit || current {
		t.Error("an unknown mark was taken as unchanged")
	}
	// A commit that changed no file (a queue row, a lock): the generation is still known.
	m = CommitMark{2}
	if _, _, hit, current := cacheGet(c, a, m); hit || current {
		t.Fatal("answered after the mark moved")
	}
	if _, _, hit := c.observe(a, m, true, 10, testNow); !hit {
		t.Error("a commit that changed no file emptied the cache")
	}
	// This Store's own write of a: b stays, a goes.
	c.wrote(10, 11, true, dropKeys(1, "a"))
	m = CommitMark{3}
	if _, _, hit := c.observe(b, m, true, 11, testNow); !hit {
		t.Error("an own write of another key emptied the cache")
	}
	if _, _, hit, _ := cacheGet(c, a, m); hit {
		t.Error("an own write left its key")
	}
	// Someone else's write: all go.
	m = CommitMark{4}
	if _, _, hit := c.observe(b, m, true, 12, testNow); hit {
		t.Error("someone else's change of files left the cache as it was")
	}
	_, fill, _, _ = cacheGet(c, b, m)
	c.put(b, lb, fill, testNow)
	// Someone else's write, then an own write before any Locate saw the mark move: the own
	// write's transaction starts above the known generation, so all go.
	c.wrote(13, 14, true, dropKeys(1, "a"))
	if _, _, hit, _ := cacheGet(c, b, m); hit {
		t.Error("an own write that began after someone else's left the cache as it was")
	}
}
