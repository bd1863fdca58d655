//go:build race

package tracker

// raceEnabled: the race detector's build allocates more on get_paths' verification HEAD (10
// allocations where the plain build makes 8), so TestGetPathsVerifyAllocs counts without it.
const raceEnabled = true
