package worker

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"strconv"
	"testing"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/mogway/mogway/tracker/store"
	"github.com/mogway/mogway/tracker/store/mysql"
)

// mysqlDSN creates an empty database on the server named by MOGWAY_TEST_MYSQL_DSN and returns its
// DSN, or skips the test when the variable is unset. The database is dropped when t ends.
func mysqlDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("MOGWAY_TEST_MYSQL_DSN")
	if dsn == "" {
		t.Skip("MOGWAY_TEST_MYSQL_DSN is unset: no MySQL/MariaDB to test against (`make test` starts one)")
	}
	cfg, err := mysqldrv.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("MOGWAY_TEST_MYSQL_DSN: %v", err)
	}
	cfg.DBName = ""
	conn, err := mysqldrv.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	admin := sql.OpenDB(conn)
	var b [8]byte
	rand.Read(b[:])
	name := "mogway_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		admin.Close()
		t.Fatalf("CREATE DATABASE: %v", err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name); err != nil {
			t.Errorf("DROP DATABASE %s: %v", name, err)
		}
	})
	cfg.DBName = name
	return cfg.FormatDSN()
}

// Two trackers with their own connections to one MariaDB copy every fid once, through GET_LOCK and
// the queue leases.
func TestTwoTrackersOnMySQL(t *testing.T) {
	t.Parallel()
	dsn := mysqlDSN(t)
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
	ctx := context.Background()
	waitFor(t, "every fid replicated and its row done", func() bool {
		for _, fid := range fids {
			if len(h.fileOn(fid)) != 2 {
				return false
			}
		}
		n, err := h.st.QueueLen(ctx, store.QueueReplicate)
		return err == nil && n == 0
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
