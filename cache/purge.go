package cache

import (
	"errors"
	"os"
	"strings"
)

// Purges work on the in-memory index: no directory walk. A hard purge removes the entries from both
// tiers (files are unlinked after the index is updated, see removeFiles); a soft purge marks them so that the
// next Get serves them as Updating while one background fill refreshes them. Fills in progress for
// purged keys finish for their readers but store nothing.

// Purge removes (or with soft, marks stale) every entry and slice of group. It returns how many
// entries it affected and their body bytes.
func (c *Cache) Purge(group string, soft bool) (entries int, bytes int64) {
	return c.purge(func(g string) bool { return g == group }, soft)
}

// PurgePrefix purges every group that begins with prefix.
func (c *Cache) PurgePrefix(prefix string, soft bool) (entries int, bytes int64) {
	return c.purge(func(g string) bool { return strings.HasPrefix(g, prefix) }, soft)
}

// PurgeAll purges every entry.
func (c *Cache) PurgeAll(soft bool) (entries int, bytes int64) {
	return c.purge(func(string) bool { return true }, soft)
}

func (c *Cache) purge(match func(group string) bool, soft bool) (entries int, bytes int64) {
	type mark struct {
		file diskFile
		meta Meta
	}
	var files []*diskFile
	var marks []mark
	c.mu.Lock()
	for key, fl := range c.flights {
		if match(fl.group) {
			fl.noStore = true
			delete(c.flights, key)
		}
	}
	for g, keys := range c.groups {
		if !match(g) {
			continue
		}
		for key := range keys {
			e := c.entries[key]
			entries++
			bytes += e.bodyLen
			if soft {
				e.soft = true
				if e.file != nil {
					marks = append(marks, mark{*e.file, e.meta})
				}
				continue
			}
			c.memDropLocked(e)
			files = append(files, c.diskForgetLocked(e))
			c.unindexLocked(e)
		}
	}
	c.mu.Unlock()
	c.removeFiles(files)
	for _, m := range marks {
		// ErrNotExist: a hard purge, eviction or new fill replaced the file meanwhile; nothing to mark.
		if err := rewriteFixed(m.file.path, m.file.info, &m.meta, true); err != nil && !errors.Is(err, os.ErrNotExist) {
			c.log.Warn("cache: cannot mark cache file stale", "path", m.file.path, "err", err)
		}
	}
	c.st.purged.Add(int64(entries))
	return entries, bytes
}
