package cache

import "sync/atomic"

// TierStats are the counters of one tier.
type TierStats struct {
	// Hits and Misses count lookups answered, or not, by this tier.
	Hits   int64 `json:"hits"`
	Misses int64 `json:"misses"`
	// Bytes is what the tier holds now: for memory, bodies with their per-entry overhead and the
	// buffers of fills in progress; for disk, whole files.
	Bytes int64 `json:"bytes"`
	// Entries is the number of objects the tier holds now.
	Entries int64 `json:"entries"`
	// Evictions counts objects dropped for room or inactivity.
	Evictions int64 `json:"evictions"`
}

// Stats is a snapshot of the cache's counters.
type Stats struct {
	Memory TierStats `json:"memory"`
	Disk   TierStats `json:"disk"`
	// Filling is the number of fills in progress.
	Filling int64 `json:"filling"`
	// Fills counts fills stored; FillErrors fills that failed.
	Fills      int64 `json:"fills"`
	FillErrors int64 `json:"fill_errors"`
	// Stale, Updating and Revalidated count Gets answered with that Status.
	Stale       int64 `json:"stale"`
	Updating    int64 `json:"updating"`
	Revalidated int64 `json:"revalidated"`
	// Purged counts entries removed or marked by purges.
	Purged int64 `json:"purged"`
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
	c.mu.Lock()
	filling := int64(len(c.flights))
	c.mu.Unlock()
	return Stats{
		Memory: c.st.mem.snapshot(), Disk: c.st.disk.snapshot(), Filling: filling,
		Fills: c.st.fills.Load(), FillErrors: c.st.fillErrors.Load(),
		Stale: c.st.stale.Load(), Updating: c.st.updating.Load(), Revalidated: c.st.revalidated.Load(),
		Purged: c.st.purged.Load(),
	}
}
