package sqlite

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/mogway/mogway/tracker/store"
)

// TestLeftoverTempfileOfCommittedFid puts back the tempfile row of a committed fid, a state the
// store never makes but a database edited by hand or by other software may hold. Closing the fid
// again is ErrExists and changes nothing; discarding it removes only the leftover row and never
// queues the file's copies for deletion.
func TestLeftoverTempfileOfCommittedFid(t *testing.T) {
	ctx := context.Background()
	s, p := openTemp(t)
	d, err := s.CreateDomain(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	fid, err := s.CreateTempfile(ctx, store.Tempfile{DomainID: d.ID, Key: "k", DevIDs: []int{1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitFile(ctx, store.Commit{File: store.File{Fid: fid, DomainID: d.ID, Key: "k", Length: 3}, DevIDs: []int{1}}); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, p)
	leftover := func() {
		t.Helper()
		if _, err := db.Exec("INSERT INTO tempfile (fid, createtime, classid, dmid, dkey, devids) VALUES (?, 1, 0, ?, 'k', '1,2')", fid, d.ID); err != nil {
			t.Fatal(err)
		}
	}

	leftover()
	for _, key := range []string{"k", "other"} {
		_, err := s.CommitFile(ctx, store.Commit{File: store.File{Fid: fid, DomainID: d.ID, Key: key}, DevIDs: []int{2}})
		if !errors.Is(err, store.ErrExists) {
			t.Fatalf("CommitFile(committed fid %d as %q) = %v, want ErrExists", fid, key, err)
		}
	}
	if _, err := s.Tempfile(ctx, fid); err != nil {
		t.Fatalf("Tempfile(%d) after refused commits = %v, want the row kept", fid, err)
	}

	if err := s.DiscardUpload(ctx, fid, 1, 2); !errors.Is(err, store.ErrExists) {
		t.Fatalf("DiscardUpload(committed fid %d) = %v, want ErrExists", fid, err)
	}
	if _, err := s.Tempfile(ctx, fid); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Tempfile(%d) after DiscardUpload = %v, want ErrNotFound", fid, err)
	}
	if _, err := s.QueueJobs(ctx, store.QueueDelete, fid); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("QueueJobs(delete, committed fid %d) = %v, want ErrNotFound", fid, err)
	}
	on, err := s.FileOn(ctx, fid)
	if err != nil || !reflect.DeepEqual(on, []int{1}) {
		t.Fatalf("FileOn(%d) = %v, %v, want [1]", fid, on, err)
	}
	f, err := s.FileByKey(ctx, d.ID, "k")
	if err != nil || f.Fid != fid || f.DevCount != 1 || f.Length != 3 {
		t.Fatalf("FileByKey(k) = %+v, %v, want fid %d length 3 devcount 1", f, err, fid)
	}
}
