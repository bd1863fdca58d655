package backup_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mogway/mogway/tracker/store"
	"github.com/mogway/mogway/tracker/store/backup"
	"github.com/mogway/mogway/tracker/store/sqlite"
	"github.com/mogway/mogway/tracker/store/storetest"
)

// acked records the keys whose CommitFile returned; reached is closed at the 100th.
type acked struct {
	mu      sync.Mutex
	keys    map[string]int64 // key -> fid
	reached chan struct{}
}

func newAcked() *acked { return &acked{keys: map[string]int64{}, reached: make(chan struct{})} }

func (a *acked) add(key string, fid int64) {
	a.mu.Lock()
	a.keys[key] = fid
	if len(a.keys) == 100 {
		close(a.reached)
	}
	a.mu.Unlock()
}

func (a *acked) snapshot() map[string]int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := make(map[string]int64, len(a.keys))
	for k, v := range a.keys {
		m[k] = v
	}
	return m
}

func openSQLite(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("sqlite.Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// uploadUntil commits files as "w<n>/<i>" from n writers until stop is closed, at least min
// files each, recording every acknowledged one.
func uploadUntil(t *testing.T, s store.Store, dmid, writers, min int, stop <-chan struct{}, a *acked) *sync.WaitGroup {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				if i >= min {
					select {
					case <-stop:
						return
					default:
					}
				}
				if i >= 100*min { // bounded however slow the backup is
					return
				}
				key := fmt.Sprintf("w%d/%d", w, i)
				fid, err := s.CreateTempfile(ctx, store.Tempfile{DomainID: dmid, Key: key, DevIDs: []int{1, 2}})
				if err != nil {
					t.Errorf("CreateTempfile(%s): %v", key, err)
					return
				}
				if _, err := s.CommitFile(ctx, store.Commit{File: store.File{Fid: fid, DomainID: dmid, Key: key, Length: int64(i)}, DevIDs: []int{1, 2}}); err != nil {
					t.Errorf("CommitFile(%s): %v", key, err)
					return
				}
				a.add(key, fid)
			}
		})
	}
	return &wg
}

// TestBackupUnderUploads takes a backup while writers keep committing files and restores it: the
// copy passes the integrity check and the store invariants and holds every key acknowledged
// before the backup started, under the same fid; a tracker on it hands out fresh fids.
func TestBackupUnderUploads(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := openSQLite(t, filepath.Join(dir, "tracker.db"))
	d, err := src.CreateDomain(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	a := newAcked()
	stop := make(chan struct{})
	wg := uploadUntil(t, src, d.ID, 4, 50, stop, a)

	// Start the backup once some files are in, while the writers go on.
	<-a.reached
	before := a.snapshot()
	out := filepath.Join(dir, "backup.db")
	var reports atomic.Int64
	rep, err := backup.Backup(ctx, "sqlite:"+filepath.Join(dir, "tracker.db"), out, func(done, total int64) {
		reports.Add(1)
		if done > total {
			t.Errorf("progress %d > total %d", done, total)
		}
	})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if reports.Load() == 0 {
		t.Error("Backup never reported progress")
	}
	if n := rep.Rows("file"); n < int64(len(before)) {
		t.Errorf("backup has %d files, want at least the %d acknowledged before it", n, len(before))
	}

	restored := filepath.Join(dir, "restored.db")
	if _, err := backup.Restore(ctx, out, "sqlite:"+restored, false, nil); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	r := openSQLite(t, restored)
	storetest.CheckInvariants(t, r)
	for key, fid := range before {
		f, err := r.FileByKey(ctx, d.ID, key)
		if err != nil {
			t.Fatalf("FileByKey(%q) in the restored database: %v", key, err)
		}
		if f.Fid != fid {
			t.Errorf("FileByKey(%q).Fid = %d, want %d", key, f.Fid, fid)
		}
	}
	max, err := r.MaxFid(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fid, err := r.CreateTempfile(ctx, store.Tempfile{DomainID: d.ID, Key: "new"})
	if err != nil {
		t.Fatal(err)
	}
	if fid <= max {
		t.Errorf("the restored database allocated fid %d, at or below its MAX(fid) %d", fid, max)
	}
}

func TestBackupRefusesExistingOutput(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := filepath.Join(dir, "tracker.db")
	openSQLite(t, db)
	out := filepath.Join(dir, "b.db")
	if err := os.WriteFile(out, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Backup(ctx, "sqlite:"+db, out, nil); !errors.Is(err, backup.ErrExists) {
		t.Fatalf("Backup onto an existing file = %v, want ErrExists", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "keep" {
		t.Errorf("the existing file now holds %q", b)
	}
}

func TestRestoreRefusesNonEmptyTarget(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := filepath.Join(dir, "tracker.db")
	s := openSQLite(t, db)
	if _, err := s.CreateDomain(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.db")
	openSQLite(t, empty)
	out := filepath.Join(dir, "b.db")
	if _, err := backup.Backup(ctx, "sqlite:"+empty, out, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Restore(ctx, out, "sqlite:"+db, false, nil); !errors.Is(err, backup.ErrNotEmpty) {
		t.Fatalf("Restore onto a database with a domain = %v, want ErrNotEmpty", err)
	}
	if ds, err := s.Domains(ctx); err != nil || len(ds) != 1 {
		t.Fatalf("after the refused restore Domains() = %v, %v; want the one domain", ds, err)
	}
	s.Close()
	if _, err := backup.Restore(ctx, out, "sqlite:"+db, true, nil); err != nil {
		t.Fatalf("Restore --force: %v", err)
	}
	if ds, err := openSQLite(t, db).Domains(ctx); err != nil || len(ds) != 0 {
		t.Fatalf("after Restore --force Domains() = %v, %v; want none", ds, err)
	}
}

func TestRestoreRefusesDamagedBackup(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for name, body := range map[string][]byte{
		"garbage":    []byte("not a database at all, not even close to one...................................................................."),
		"not-mogile": nil, // a valid SQLite file without the MogileFS tables
	} {
		t.Run(name, func(t *testing.T) {
			from := filepath.Join(dir, name+".db")
			if body != nil {
				if err := os.WriteFile(from, body, 0o600); err != nil {
					t.Fatal(err)
				}
			} else {
				db, err := sqlOpen(from)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := db.Exec("CREATE TABLE x (y)"); err != nil {
					t.Fatal(err)
				}
				db.Close()
			}
			target := filepath.Join(dir, name+"-target.db")
			if _, err := backup.Restore(ctx, from, "sqlite:"+target, false, nil); !errors.Is(err, backup.ErrCorrupt) {
				t.Fatalf("Restore(%s) = %v, want ErrCorrupt", name, err)
			}
			if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Restore of a damaged backup created %s", target)
			}
		})
	}
}

// Named locks held when the backup is taken are left out of it (docs/tracker.md, Backups): the
// lock rows of a tracker on this machine and of one on another stay in the source, the backup has
// none, and a tracker on the backup takes those locks at once.
func TestBackupLeavesOutNamedLocks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := filepath.Join(dir, "tracker.db")
	src := openSQLite(t, db)
	unlock, err := src.Lock(ctx, "mgfs:reaper", 0)
	if err != nil {
		t.Fatalf("Lock(mgfs:reaper): %v", err)
	}
	defer unlock()
	// A lock of a tracker on another machine, which only its age (an hour) could break.
	raw, err := sqlOpen(db)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec("INSERT INTO lock (lockid, hostname, pid, acquiredat) VALUES (?, 'tracker2.example 1', 4242, strftime('%s','now'))",
		sqlite.LockID("mgfs:tempfiles")); err != nil {
		t.Fatal(err)
	}
	if n := lockRows(t, db); n != 2 {
		t.Fatalf("the source holds %d lock rows, want 2", n)
	}

	out := filepath.Join(dir, "backup.db")
	if _, err := backup.Backup(ctx, "sqlite:"+db, out, nil); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if n := lockRows(t, out); n != 0 {
		t.Errorf("the backup holds %d lock rows, want none", n)
	}
	if n := lockRows(t, db); n != 2 {
		t.Errorf("after the backup the source holds %d lock rows, want its 2", n)
	}
	b := openSQLite(t, out)
	for _, name := range []string{"mgfs:reaper", "mgfs:tempfiles"} {
		u, err := b.Lock(ctx, name, 0)
		if err != nil {
			t.Fatalf("Lock(%s) on the backup = %v, want it free", name, err)
		}
		u()
	}
}

// lockRows counts the rows of the lock table of the SQLite database at path.
func lockRows(t *testing.T, path string) int {
	t.Helper()
	db, err := sqlOpen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM lock").Scan(&n); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}
