//go:build !race

package storaged

const raceEnabled = false
