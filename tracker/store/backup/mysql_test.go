package backup_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/mogway/mogway/internal/clustertest"
	"github.com/mogway/mogway/tracker/store"
	"github.com/mogway/mogway/tracker/store/backup"
	"github.com/mogway/mogway/tracker/store/mysql"
	"github.com/mogway/mogway/tracker/store/storetest"
)

// mysqlDatabase creates an empty database on the server named by MOGWAY_TEST_MYSQL_DSN, drops it
// when t ends and returns its --db value; it skips t when the variable is unset.
func mysqlDatabase(t *testing.T) string {
	t.Helper()
	return "mysql://" + clustertest.MySQLDSN(t)
}

func openMySQL(t *testing.T, db string) *mysql.Store {
	t.Helper()
	s, err := mysql.Open(context.Background(), db[len("mysql://"):])
	if err != nil {
		t.Fatalf("mysql.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestBackupMySQLUnderUploads backs a MySQL database up while writers commit, restores the
// backup into SQLite and into a second MySQL database, and checks both: the invariants, every key
// acknowledged before the backup with its fid, the checksum bytes, and fresh fids afterwards.
func TestBackupMySQLUnderUploads(t *testing.T) {
	ctx := context.Background()
	srcDB := mysqlDatabase(t)
	src := openMySQL(t, srcDB)
	d, err := src.CreateDomain(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	sum := store.Checksum{Fid: 0, Type: 1, Sum: []byte{0, 1, 2, 0xff, 0xfe, 'a', 0}}
	a := newAcked()
	stop := make(chan struct{})
	wg := uploadUntil(t, src, d.ID, 4, 50, stop, a)
	<-a.reached
	before := a.snapshot()
	for _, fid := range before {
		sum.Fid = fid
		if err := src.SetChecksum(ctx, sum); err != nil {
			t.Fatal(err)
		}
		break
	}
	out := filepath.Join(t.TempDir(), "backup.db")
	_, err = backup.Backup(ctx, srcDB, out, nil)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	check := func(t *testing.T, r store.Store) {
		storetest.CheckInvariants(t, r)
		for key, fid := range before {
			f, err := r.FileByKey(ctx, d.ID, key)
			if err != nil || f.Fid != fid {
				t.Fatalf("FileByKey(%q) = %+v, %v; want fid %d", key, f, err, fid)
			}
		}
		got, err := r.Checksum(ctx, sum.Fid)
		if err != nil || string(got.Sum) != string(sum.Sum) {
			t.Errorf("Checksum(%d) = %x, %v; want %x", sum.Fid, got.Sum, err, sum.Sum)
		}
		max, _ := r.MaxFid(ctx)
		fid, err := r.CreateTempfile(ctx, store.Tempfile{DomainID: d.ID, Key: "new"})
		if err != nil || fid <= max {
			t.Errorf("CreateTempfile on the restored database = %d, %v; want a fid above %d", fid, err, max)
		}
	}
	t.Run("ToSQLite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "r.db")
		if _, err := backup.Restore(ctx, out, "sqlite:"+path, false, nil); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		check(t, openSQLite(t, path))
	})
	t.Run("ToMySQL", func(t *testing.T) {
		db := mysqlDatabase(t)
		var last, total int64
		if _, err := backup.Restore(ctx, out, db, false, func(d, n int64) { last, total = d, n }); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		if last == 0 || last != total {
			t.Errorf("last progress report %d of %d, want all of it", last, total)
		}
		check(t, openMySQL(t, db))
		if _, err := backup.Restore(ctx, out, db, false, nil); !errors.Is(err, backup.ErrNotEmpty) {
			t.Errorf("second Restore without force = %v, want ErrNotEmpty", err)
		}
		if _, err := backup.Restore(ctx, out, db, true, nil); err != nil {
			t.Errorf("Restore with force: %v", err)
		}
	})
}
