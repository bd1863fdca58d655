//go:build race

package netx

// raceEnabled: under the race detector RawTCP uses the syscall package (see raw_race.go), which
// allocates; the allocation test applies to the raw calls only.
const raceEnabled = true
