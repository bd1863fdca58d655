// Package tick runs a function on a fixed period until its context ends. It imports no mogway
// package.
package tick

import (
	"context"
	"time"
)

// Every calls f once every period, the first call one period from now, until ctx is done or f
// returns false, and returns when it stops. f is not called once ctx is done, even when a tick is
// also due.
func Every(ctx context.Context, period time.Duration, f func() bool) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if ctx.Err() != nil || !f() {
				return
			}
		}
	}
}
