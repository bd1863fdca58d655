package testutil

import (
	"sync"
	"testing"
)

// Concurrently runs f(0) to f(n-1) at once, each in its own goroutine, waits for all of them and
// reports every error they return with t.Error.
func Concurrently(t testing.TB, n int, f func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = f(i) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
