package sqlstore

import (
	"testing"
	"time"

	"github.com/mogway/mogway/tracker/store"
)

func TestLeaseEnd(t *testing.T) {
	for _, tc := range []struct {
		now   int64
		lease time.Duration
		want  int64
	}{
		{100, 30 * time.Second, 130},
		{100, 1500 * time.Millisecond, 102},
		{100, 0, 101},
		{100, -time.Second, 101},
		{store.NeverRetry - 5, time.Hour, store.NeverRetry - 1},
	} {
		if got := leaseEnd(tc.now, tc.lease); got != tc.want {
			t.Errorf("leaseEnd(%d, %v) = %d, want %d", tc.now, tc.lease, got, tc.want)
		}
	}
}
