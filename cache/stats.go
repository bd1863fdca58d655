package cache

import "sync/atomic"

// TierStats are the counters of one tier.
type TierStats struct {
	// Hits and Misses count lookups answered, or not, by this tier.
	Hits, Misses int64
	// Bytes is what the tier holds now: bodies (and, for memory, buffers of fills in progress);
	// for disk, whole files.
	Bytes int64
	// Entries is the number of objects the tier holds now.
	Entries int64
	// Evictions counts objects dropped for room or inactivity.
	Evictions int64
}

// Stats is a snapshot of the cache's counters.
type Stats struct {
	Memory, Disk TierStats
	// Fills counts fills stored; FillErrors fills that failed.
	Fills, FillErrors int64
	// Stale, Updating and Revalidated count Gets answered with that Status.
	Stale, Updating, Revalidated int64
	// Purged counts entries removed or marked by purges.
	Purged int64
}

type tierCounters struct {
	hits, misses, bytes, entries, evictions atomic.Int64
}

func (t *tierCounters) snapshot() TierStats {
	return TierStats{Hits: t.hits.Load(), Misses: t.misses.Load(), Bytes: t.bytes.Load(),
		Entries: t.entries.Load(), Evictions: t.evictions.Load()}
}

type counters struct {
	mem, disk                                               tierCounters
	fills, fillErrors, stale, updating, revalidated, purged atomic.Int64
}

// Stats returns a snapshot of the counters. It may be called at any time, also after Close.
func (c *Cache) Stats() Stats {
	return Stats{
		Memory: c.st.mem.snapshot(), Disk: c.st.disk.snapshot(),
		Fills: c.st.fills.Load(), FillErrors: c.st.fillErrors.Load(),
		Stale: c.st.stale.Load(), Updating: c.st.updating.Load(), Revalidated: c.st.revalidated.Load(),
		Purged: c.st.purged.Load(),
	}
}
