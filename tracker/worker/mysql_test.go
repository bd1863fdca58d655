package worker

import (
	"context"
	"strconv"
	"testing"

	"github.com/mogway/mogway/internal/testutil/mysqltest"
	"github.com/mogway/mogway/tracker/store"
	"github.com/mogway/mogway/tracker/store/mysql"
)

// Two trackers with their own connections to one MariaDB copy every fid once, through GET_LOCK and
// the queue leases.
func TestTwoTrackersOnMySQL(t *testing.T) {
	t.Parallel()
	dsn := mysqltest.DSN(t)
	h := newHarnessOn(t, 3, 1, false, func() (store.Store, error) { return mysql.Open(context.Background(), dsn) })
	const files = 20
	var fids []int64
	for i := range files {
		fids = append(fids, h.upload("k"+strconv.Itoa(i), "c2", []byte("payload "+strconv.Itoa(i)), 1).Fid)
	}
	cfg := testConfig()
	cfg.ReplicateWorkers = 4
	w1 := h.runOwn(cfg, nil)
	w2 := h.runOwn(cfg, nil)
	waitFor(t, "every fid replicated and its row done", func() bool {
		return h.everyFidHas(fids, 2) && h.queueEmpty(store.QueueReplicate)
	})
	if copies := w1.Stats().Replicated + w2.Stats().Replicated; copies != files {
		t.Fatalf("copies made = %d, want %d", copies, files)
	}
	// Then a dead device: both reapers see it, one reaps (mgfs:reaper), every file gets its copy back.
	h.setDevice(1, "dead")
	waitFor(t, "every file off dev1 with two copies", func() bool {
		for _, fid := range fids {
			on := h.fileOn(fid)
			if len(on) != 2 || on[0] == 1 {
				return false
			}
		}
		return true
	})
	if reaped := w1.Stats().Reaped + w2.Stats().Reaped; reaped != files {
		t.Fatalf("copies reaped = %d, want %d", reaped, files)
	}
}
