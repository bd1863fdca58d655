package storetest

import (
	"context"
	"testing"

	"github.com/mogway/mogway/tracker/store"
)

// FidCounterBehind checks that fid allocation never reuses a committed fid when the database's
// tempfile counter has fallen behind. It commits three files in a new domain, then calls rewind,
// which must insert a committed file with fid high in domain dmid (as another tracker would) and
// move the tempfile counter back below every committed fid (as a restart of InnoDB before MariaDB
// 10.2 / MySQL 8 did, or a hand-edited SQLite sequence). CreateTempfile must then hand out fids
// above high. It is not part of Run: moving the counter needs the implementation's own SQL.
func FidCounterBehind(t *testing.T, s store.Store, rewind func(dmid int, high int64)) {
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
	rewind(d.ID, high)
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
