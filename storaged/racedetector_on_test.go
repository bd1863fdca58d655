//go:build race

package storaged

// raceEnabled: the race detector makes sync.Pool drop a share of what is put back, so tests that
// count the allocations a pool saves skip.
const raceEnabled = true
