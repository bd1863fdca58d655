package sqlstore

import (
	"testing"
	"time"

	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/tracker/store"
)

func TestLeaseEnd(t *testing.T) {
	type nowLease struct {
		now   int64
		lease time.Duration
	}
	end := func(k nowLease) int64 { return leaseEnd(k.now, k.lease) }
	testutil.Table(t, "leaseEnd", end, map[nowLease]int64{
		{100, 30 * time.Second}:           130,
		{100, 1500 * time.Millisecond}:    102,
		{100, 0}:                          101,
		{100, -time.Second}:               101,
		{store.NeverRetry - 5, time.Hour}: store.NeverRetry - 1,
	})
}
