package sqlstore

import (
	"testing"
	"time"

	"github.com/mogway/mogway/tracker/store"
)

// TestLocCacheFillAfterWrite is the race the generation guards against: a reader misses, reads the
// database, a write drops the key, and only then the reader stores what it read. The stored answer
// predates the write, so it must not be kept.
func TestLocCacheFillAfterWrite(t *testing.T) {
	now := time.Unix(1000, 0)
	k := locKey{1, "k"}
	old := store.Location{Fid: 7, Length: 3, DevIDs: []int{1}}
	for _, tc := range []struct {
		name  string
		write func(c *locCache)
	}{
		{"dropKeys", func(c *locCache) { c.dropKeys(1, "k") }},
		{"dropKeys of another key", func(c *locCache) { c.dropKeys(1, "other") }},
		{"dropFid", func(c *locCache) { c.dropFid(7) }},
		{"dropAll", func(c *locCache) { c.dropAll() }},
	} {
		c := newLocCache(time.Minute, 0)
		_, gen, hit := c.get(k, now)
		if hit {
			t.Fatalf("%s: hit in an empty cache", tc.name)
		}
		tc.write(c)
		c.put(k, old, gen, now)
		if got, _, hit := c.get(k, now); hit {
			t.Errorf("%s: get after a fill that raced a write = %+v, want a miss", tc.name, got)
		}
	}
}

func TestLocCache(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newLocCache(time.Second, 2)
	put := func(dmid int, key string, fid int64) {
		c.put(locKey{dmid, key}, store.Location{Fid: fid}, c.gen, now)
	}
	hit := func(dmid int, key string, at time.Time) bool {
		_, _, ok := c.get(locKey{dmid, key}, at)
		return ok
	}
	put(1, "a", 10)
	if !hit(1, "a", now) || hit(2, "a", now) || hit(1, "A", now) {
		t.Fatal("a cached key is found by its own domain and exact bytes only")
	}
	if hit(1, "a", now.Add(time.Second)) {
		t.Error("an entry is still served at its TTL")
	}
	c.dropFid(10)
	if hit(1, "a", now) {
		t.Error("dropFid left the key of the fid")
	}
	put(1, "a", 10)
	put(1, "b", 11)
	put(1, "c", 12) // over the size of 2: one of the others goes
	if len(c.byKey) != 2 || len(c.byFid) != 2 || !hit(1, "c", now) {
		t.Errorf("after a third put into a cache of 2: %d keys, %d fids", len(c.byKey), len(c.byFid))
	}
	put(1, "c", 13) // the key's file was replaced: the old fid no longer points at it
	if _, ok := c.byFid[12]; ok {
		t.Error("a replaced entry left its fid behind")
	}
}
