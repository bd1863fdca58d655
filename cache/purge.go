package cache

import (
	"errors"
	"os"
	"slices"
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

// PurgeTag purges every entry stored with tag in its Meta.Tags, whatever its group. A fill in
// progress whose Meta (given to Writer.Start before or after the purge) carries the tag stores
// nothing.
func (c *Cache) PurgeTag(tag string, soft bool) (entries int, bytes int64) {
	var b purgeBatch
	c.mu.Lock()
	for key, fl := range c.flights {
		if !fl.tagsKnown {
			// Start has not run: the tags are not known yet, so Start checks them (see Writer.Start).
			fl.purgedTags = append(fl.purgedTags, tag)
			continue
		}
		if slices.Contains(fl.tags, tag) {
			fl.noStore = true
			delete(c.flights, key)
		}
	}
	for key := range c.tags[tag] {
		b.addLocked(c, c.entries[key], soft)
	}
	c.mu.Unlock()
	return b.finish(c)
}

func (c *Cache) purge(match func(group string) bool, soft bool) (entries int, bytes int64) {
	var b purgeBatch
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
			b.addLocked(c, c.entries[key], soft)
		}
	}
	c.mu.Unlock()
	return b.finish(c)
}

// purgeBatch collects what one purge does under c.mu and finishes the file work after it.
type purgeBatch struct {
	entries int
	bytes   int64
	files   []*diskFile // to unlink (hard purge)
	marks   []purgeMark // to mark stale on disk (soft purge)
}

type purgeMark struct {
	file diskFile
	meta Meta
}

// addLocked purges e from the index and tiers (hard) or marks it stale (soft).
func (b *purgeBatch) addLocked(c *Cache, e *entry, soft bool) {
	b.entries++
	b.bytes += e.bodyLen
	if soft {
		e.soft = true
		if e.file != nil {
			b.marks = append(b.marks, purgeMark{*e.file, e.meta})
		}
		return
	}
	c.memDropLocked(e)
	b.files = append(b.files, c.diskForgetLocked(e))
	c.unindexLocked(e)
}

// finish unlinks and marks the files, without c.mu held, and counts the purge.
func (b *purgeBatch) finish(c *Cache) (entries int, bytes int64) {
	c.removeFiles(b.files)
	for _, m := range b.marks {
		// ErrNotExist: a hard purge, eviction or new fill replaced the file meanwhile; nothing to mark.
		if err := rewriteFixed(m.file.path, m.file.info, &m.meta, true); err != nil && !errors.Is(err, os.ErrNotExist) {
			c.log.Warn("cache: cannot mark cache file stale", "path", m.file.path, "err", err)
		}
	}
	c.st.purged.Add(int64(b.entries))
	return b.entries, b.bytes
}
