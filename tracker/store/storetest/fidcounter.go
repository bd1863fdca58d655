package storetest

import (
	"context"
	"database/sql"
	"testing"

	"github.com/mogway/mogway/tracker/store"
)

// FidCounterBehind checks that fid allocation never reuses a committed fid when the database's
// tempfile counter has fallen behind. It commits three files in a new domain, inserts through db
// (the Store's own database) a committed file with a higher fid, as another tracker would, and runs
// resetCounter, which must move the tempfile counter back below every committed fid (as a restart
// of InnoDB before MariaDB 10.2 / MySQL 8 did, or a hand-edited SQLite sequence). CreateTempfile
// must then hand out fids above every committed one. It is not part of Run: moving the counter
// needs the implementation's own SQL.
func FidCounterBehind(t *testing.T, s store.Store, db *sql.DB, resetCounter string) {
	t.Helper()
	ctx := context.Background()
	d, err := s.CreateDomain(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	var last int64
	for i, key := range []string{"a", "b", "c"} {
		fid, err := s.CreateTempfile(ctx, store.Tempfile{DomainID: d.ID, Key: key})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CommitFile(ctx, store.Commit{File: store.File{Fid: fid, DomainID: d.ID, Key: key, Length: int64(i)}}); err != nil {
			t.Fatal(err)
		}
		last = fid
	}
	high := last + 50
	if _, err := db.Exec("INSERT INTO file (fid, dmid, dkey, length, classid, devcount) VALUES (?, ?, 'z', 0, 0, 0)", high, d.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(resetCounter); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		fid, err := s.CreateTempfile(ctx, store.Tempfile{DomainID: d.ID, Key: "k"})
		if err != nil {
			t.Fatalf("CreateTempfile: %v", err)
		}
		if fid <= high {
			t.Fatalf("CreateTempfile() with the counter behind = %d, want > %d", fid, high)
		}
	}
}
