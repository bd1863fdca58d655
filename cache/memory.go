package cache

import "time"

// The memory tier: bodies of at most memMax bytes in an LRU whose byte total, together with the
// buffers of fills in progress, never exceeds memLimit. All functions here run with c.mu held.

// reserveLocked takes n bytes of the memory budget, evicting least recently used bodies to make
// room. It returns false, taking nothing, when even an empty tier would not have room (the rest of
// the budget is held by fills in progress).
func (c *Cache) reserveLocked(n int64) bool {
	if n > c.memLimit {
		return false
	}
	for c.memBytes+n > c.memLimit {
		_, e, ok := c.mem.GetOldest()
		if !ok {
			return false
		}
		c.memDropLocked(e)
		c.st.mem.evictions.Add(1)
	}
	c.memBytes += n
	c.st.mem.bytes.Store(c.memBytes)
	return true
}

// releaseLocked returns n reserved bytes to the budget.
func (c *Cache) releaseLocked(n int64) {
	c.memBytes -= n
	c.st.mem.bytes.Store(c.memBytes)
}

// entryOverhead approximates what an entry costs in memory besides its body and strings; it is
// charged to the memory tier so that many tiny (or empty) bodies cannot grow the index unbounded.
const entryOverhead = 256

func (e *entry) overhead() int64 {
	n := entryOverhead + len(e.key) + len(e.group) + len(e.meta.ETag) + len(e.meta.LastModified)
	for _, f := range e.meta.Header {
		n += 32 + len(f.Name) + len(f.Value)
	}
	for _, tag := range e.meta.Tags {
		n += 64 + len(tag) // the string and its place in c.tags
	}
	return int64(n)
}

// memAddLocked puts body in the memory tier as e's copy. The bytes of body (its capacity) must
// already be reserved; that reservation becomes the entry's, plus its overhead. It returns false,
// releasing the reservation, when the overhead does not fit.
func (c *Cache) memAddLocked(e *entry, body []byte, now time.Time) bool {
	if e.mem != nil {
		c.memDropLocked(e)
	}
	extra := e.overhead()
	if !c.reserveLocked(extra) {
		c.releaseLocked(int64(cap(body)))
		return false
	}
	e.mem, e.memUse, e.memCost = body, now, int64(cap(body))+extra
	c.mem.Add(e.key, e)
	c.st.mem.entries.Add(1)
	if c.entries[e.key] != e {
		c.indexLocked(e)
	}
	return true
}

// memDropLocked removes e's memory copy, and e itself when it has no disk copy.
func (c *Cache) memDropLocked(e *entry) {
	if e.mem == nil {
		return
	}
	c.mem.Remove(e.key)
	c.memBytes -= e.memCost
	c.st.mem.bytes.Store(c.memBytes)
	c.st.mem.entries.Add(-1)
	e.mem, e.memCost = nil, 0
	if e.file == nil {
		c.unindexLocked(e)
	}
}

// indexLocked makes e the entry of its key, dropping the one it replaces.
func (c *Cache) indexLocked(e *entry) {
	if old := c.entries[e.key]; old != nil && old != e {
		c.memDropLocked(old)
		if old.file != nil {
			c.diskForgetLocked(old)
		}
		c.unindexLocked(old)
	}
	c.entries[e.key] = e
	g := c.groups[e.group]
	if g == nil {
		g = map[string]struct{}{}
		c.groups[e.group] = g
	}
	g[e.key] = struct{}{}
	for _, tag := range e.meta.Tags {
		t := c.tags[tag]
		if t == nil {
			t = map[string]struct{}{}
			c.tags[tag] = t
		}
		t[e.key] = struct{}{}
	}
}

// unindexLocked removes e from the index (not from the tiers).
func (c *Cache) unindexLocked(e *entry) {
	if c.entries[e.key] != e {
		return
	}
	delete(c.entries, e.key)
	if g := c.groups[e.group]; g != nil {
		delete(g, e.key)
		if len(g) == 0 {
			delete(c.groups, e.group)
		}
	}
	for _, tag := range e.meta.Tags {
		if t := c.tags[tag]; t != nil {
			delete(t, e.key)
			if len(t) == 0 {
				delete(c.tags, tag)
			}
		}
	}
}

// sweepMemLocked drops memory copies unused since before cutoff.
func (c *Cache) sweepMemLocked(cutoff time.Time) {
	for {
		_, e, ok := c.mem.GetOldest()
		if !ok || !e.memUse.Before(cutoff) {
			return
		}
		c.memDropLocked(e)
		c.st.mem.evictions.Add(1)
	}
}
