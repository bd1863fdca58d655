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

// FidCounterBehindQueued checks that fid allocation never hands out a fid still queued for
// deletion when the tempfile counter has fallen behind it. The delete worker removes the paths a
// queued fid names, and those are derived from the fid alone: a new upload given that fid would
// lose its bytes between its PUT and create_close, or after create_close checked their size.
// For each delete queue in turn (file_to_delete2, fed by DeleteFile; the legacy file_to_delete and
// file_to_delete_later, filled through db as a Perl tracker on the same database would) it queues
// a fid q that is no file, leaves an open upload at q-1 and runs resetCounter, which must move the
// tempfile counter back to the highest fid in tempfile (as a restart of InnoDB before MariaDB 10.2
// / MySQL 8 did), so that the counter's next candidate is q. CreateTempfile must hand out a fid
// above q. It is not part of Run for the reason FidCounterBehind is not.
func FidCounterBehindQueued(t *testing.T, s store.Store, db *sql.DB, resetCounter string) {
	t.Helper()
	ctx := context.Background()
	d, err := s.CreateDomain(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	queues := []struct {
		table string
		q     int64
		queue func(q int64) error
	}{
		{"file_to_delete2", 1000, func(q int64) error {
			if _, err := s.CreateTempfile(ctx, store.Tempfile{Fid: q, DomainID: d.ID, Key: "gone"}); err != nil {
				return err
			}
			if _, err := s.CommitFile(ctx, store.Commit{File: store.File{Fid: q, DomainID: d.ID, Key: "gone"}}); err != nil {
				return err
			}
			_, err := s.DeleteFile(ctx, d.ID, "gone")
			return err
		}},
		{"file_to_delete", 2000, func(q int64) error {
			_, err := db.Exec("INSERT INTO file_to_delete (fid) VALUES (?)", q)
			return err
		}},
		{"file_to_delete_later", 3000, func(q int64) error {
			_, err := db.Exec("INSERT INTO file_to_delete_later (fid, delafter) VALUES (?, 0)", q)
			return err
		}},
	}
	for _, c := range queues {
		if err := c.queue(c.q); err != nil {
			t.Fatalf("queue fid %d in %s: %v", c.q, c.table, err)
		}
		anchor, err := s.CreateTempfile(ctx, store.Tempfile{Fid: c.q - 1, DomainID: d.ID, Key: "anchor"})
		if err != nil {
			t.Fatalf("CreateTempfile(Fid %d): %v", c.q-1, err)
		}
		if _, err := db.Exec(resetCounter); err != nil {
			t.Fatal(err)
		}
		fid, err := s.CreateTempfile(ctx, store.Tempfile{DomainID: d.ID, Key: "new"})
		if err != nil {
			t.Fatalf("CreateTempfile with the counter behind fid %d queued in %s: %v", c.q, c.table, err)
		}
		if fid <= c.q {
			t.Fatalf("CreateTempfile() with the counter behind fid %d queued in %s = %d, want > %d", c.q, c.table, fid, c.q)
		}
		for _, f := range []int64{anchor, fid} {
			if err := s.DeleteTempfile(ctx, f); err != nil {
				t.Fatal(err)
			}
		}
	}
}
