package testutil

import (
	"testing"
	"time"
)

// WaitFor polls cond every few milliseconds until it holds, and fails the test (Fatalf naming
// what) if it still does not hold after within. within is a generous bound for a slow, shared
// machine, never a measure of speed.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
			return
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}
