package backup_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mogway/mogway/tracker/store"
	"github.com/mogway/mogway/tracker/store/backup"
)

// fidLayout leaves a database with a deleted file (its fid queued on file_to_delete2 only) and an
// open upload (a tempfile row), and returns both fids.
type fidLayout struct {
	name string
	// rowAboveCounter: the deleted fid is the highest, and a row still names it, so a counter
	// moved back below it leaves it known to the database.
	rowAboveCounter bool
	make            func(t *testing.T, s store.Store) (deleted, open int64)
}

var fidLayouts = []fidLayout{
	// The highest-fid file is deleted, and an upload opened after it is still open.
	{"OpenUploadAboveDeleted", false, func(t *testing.T, s store.Store) (int64, int64) {
		d := mustDomain(t, s, "d")
		commitKey(t, s, d, "a")
		deleted := commitKey(t, s, d, "b")
		deleteKey(t, s, d, "b")
		return deleted, openUpload(t, s, d, "open")
	}},
	// An upload opened before the last file is still open; that file, the highest fid the
	// database knows, is deleted.
	// The highest-fid file is deleted and its deletion done: no row names its fid any more,
	// only the counter remembers it.
	{"DeletedAndForgotten", false, func(t *testing.T, s store.Store) (int64, int64) {
		d := mustDomain(t, s, "d")
		open := openUpload(t, s, d, "open")
		commitKey(t, s, d, "a")
		deleted := commitKey(t, s, d, "b")
		deleteKey(t, s, d, "b")
		ctx := context.Background()
		if err := s.ForgetFid(ctx, deleted); err != nil {
			t.Fatal(err)
		}
		if err := s.Done(ctx, store.QueueDelete, deleted); err != nil {
			t.Fatal(err)
		}
		return deleted, open
	}},
	{"DeletedAboveOpenUpload", true, func(t *testing.T, s store.Store) (int64, int64) {
		d := mustDomain(t, s, "d")
		open := openUpload(t, s, d, "open")
		commitKey(t, s, d, "a")
		deleted := commitKey(t, s, d, "b")
		deleteKey(t, s, d, "b")
		return deleted, open
	}},
}

// TestRestoreFidCounter: a tracker on a restored database hands out fids above every fid the
// backup knows (docs/tracker.md, Backups), including the fid of a file deleted before the backup
// (its copies and its delete queue row may still be there: handed out again, they would be taken
// for the new upload's) and that of an upload still open. Backups of SQLite and of MySQL are
// restored into SQLite and into MySQL, and a tracker also runs on the backup file as is. Bugs it
// names: a backup of MySQL taken during an open upload kept that upload's fid as its counter (the
// copied tempfile row made a sqlite_sequence row, and INSERT OR REPLACE added a second one, which
// SQLite does not read), so on the backup or its restore into SQLite the deleted file's fid above
// it came again ("FromMySQL/DeletedAboveOpenUpload"); and from a MySQL whose counter went back
// below a deleted fid ("FromMySQLCounterBehind"; MySQL before 8.0 recomputes the counter from
// MAX(tempfile.fid) at restart), only a restore into MySQL set it above every fid the backup
// mentions. Backups already written in the old form are mended by a restore ("FromOldMySQLBackup").
func TestRestoreFidCounter(t *testing.T) {
	ctx := context.Background()
	type source struct {
		name   string
		open   func(t *testing.T) (db string, s store.Store)
		behind bool // move the MySQL counter back to just above the open upload, below the deleted fid
		// oldForm rewrites the backup's counter as backups of MySQL taken during an open upload
		// were written before the fix: a first sqlite_sequence row at the open upload's fid (made
		// when its tempfile row was copied), then one at the source's counter.
		oldForm bool
	}
	sources := []source{{name: "FromSQLite", open: func(t *testing.T) (string, store.Store) {
		path := filepath.Join(t.TempDir(), "src.db")
		return "sqlite:" + path, openSQLite(t, path)
	}}}
	mysqlSource := func(t *testing.T) (string, store.Store) {
		db := mysqlDatabase(t)
		return db, openMySQL(t, db)
	}
	sources = append(sources, source{name: "FromMySQL", open: mysqlSource},
		source{name: "FromMySQLCounterBehind", open: mysqlSource, behind: true},
		source{name: "FromOldMySQLBackup", open: mysqlSource, oldForm: true})
	for _, src := range sources {
		for _, lay := range fidLayouts {
			if src.behind && !lay.rowAboveCounter {
				continue // the counter cannot go below the deleted fid, or nothing else names it
			}
			t.Run(src.name+"/"+lay.name, func(t *testing.T) {
				db, s := src.open(t)
				deleted, open := lay.make(t, s)
				if src.behind {
					moveCounterBack(t, db)
					// The source's own counter now trails the deleted fid.
					if next := autoIncrement(t, db); next > deleted {
						t.Fatalf("tempfile AUTO_INCREMENT = %d after moving it back, want at most the deleted fid %d", next, deleted)
					}
				}
				s.Close()
				out := filepath.Join(t.TempDir(), "backup.db")
				if _, err := backup.Backup(ctx, db, out, nil); err != nil {
					t.Fatalf("Backup: %v", err)
				}
				if src.oldForm {
					writeOldCounter(t, out, open)
				}
				above := max(deleted, open)
				// A backup file in the old form keeps its counter when a tracker runs on it as is;
				// restoring it mends that.
				if !src.oldForm {
					t.Run("BackupAsIs", func(t *testing.T) {
						// A tracker may run on the backup file itself (--db sqlite:FILE); this one
						// runs on a copy, which the others restore from.
						b, err := os.ReadFile(out)
						if err != nil {
							t.Fatal(err)
						}
						asIs := filepath.Join(t.TempDir(), "backup.db")
						if err := os.WriteFile(asIs, b, 0o600); err != nil {
							t.Fatal(err)
						}
						checkNextFid(t, openSQLite(t, asIs), above)
					})
				}
				t.Run("ToSQLite", func(t *testing.T) {
					path := filepath.Join(t.TempDir(), "r.db")
					if _, err := backup.Restore(ctx, out, "sqlite:"+path, false, nil); err != nil {
						t.Fatalf("Restore: %v", err)
					}
					checkNextFid(t, openSQLite(t, path), above)
				})
				t.Run("ToMySQL", func(t *testing.T) {
					target := mysqlDatabase(t)
					if _, err := backup.Restore(ctx, out, target, false, nil); err != nil {
						t.Fatalf("Restore: %v", err)
					}
					checkNextFid(t, openMySQL(t, target), above)
				})
			})
		}
	}
}

// checkNextFid fails t unless the next fid s hands out is above above.
func checkNextFid(t *testing.T, s store.Store, above int64) {
	t.Helper()
	ds, err := s.Domains(context.Background())
	if err != nil || len(ds) != 1 {
		t.Fatalf("Domains() = %v, %v; want the backup's one domain", ds, err)
	}
	fid, err := s.CreateTempfile(context.Background(), store.Tempfile{DomainID: ds[0].ID, Key: "new"})
	if err != nil {
		t.Fatalf("CreateTempfile: %v", err)
	}
	if fid <= above {
		t.Errorf("CreateTempfile = fid %d, want a fid above %d, the highest the backup knows", fid, above)
	}
}

func mustDomain(t *testing.T, s store.Store, name string) int {
	t.Helper()
	d, err := s.CreateDomain(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return d.ID
}

func openUpload(t *testing.T, s store.Store, dmid int, key string) int64 {
	t.Helper()
	fid, err := s.CreateTempfile(context.Background(), store.Tempfile{DomainID: dmid, Key: key, DevIDs: []int{1}})
	if err != nil {
		t.Fatalf("CreateTempfile(%s): %v", key, err)
	}
	return fid
}

func commitKey(t *testing.T, s store.Store, dmid int, key string) int64 {
	t.Helper()
	fid := openUpload(t, s, dmid, key)
	if _, err := s.CommitFile(context.Background(), store.Commit{File: store.File{Fid: fid, DomainID: dmid, Key: key, Length: 1}, DevIDs: []int{1}}); err != nil {
		t.Fatalf("CommitFile(%s): %v", key, err)
	}
	return fid
}

func deleteKey(t *testing.T, s store.Store, dmid int, key string) {
	t.Helper()
	if _, err := s.DeleteFile(context.Background(), dmid, key); err != nil {
		t.Fatalf("DeleteFile(%s): %v", key, err)
	}
}

// rawMySQL opens database/sql on the MySQL database of a "mysql://..." --db value.
func rawMySQL(t *testing.T, db string) *sql.DB {
	t.Helper()
	raw, err := sql.Open("mysql", strings.TrimPrefix(db, "mysql://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return raw
}

// moveCounterBack sets the tempfile auto-increment of the MySQL database db as low as InnoDB
// allows: just above its highest tempfile row, as a MySQL 5.7 restart does.
func moveCounterBack(t *testing.T, db string) {
	t.Helper()
	if _, err := rawMySQL(t, db).Exec("ALTER TABLE tempfile AUTO_INCREMENT = 1"); err != nil {
		t.Fatal(err)
	}
}

// autoIncrement returns the next value of the tempfile auto-increment of the MySQL database db.
func autoIncrement(t *testing.T, db string) int64 {
	t.Helper()
	raw := rawMySQL(t, db)
	// information_schema caches table statistics; ask for the live value.
	if _, err := raw.Exec("ANALYZE TABLE tempfile"); err != nil {
		t.Fatal(err)
	}
	var next int64
	if err := raw.QueryRow("SELECT auto_increment FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'tempfile'").Scan(&next); err != nil {
		t.Fatal(err)
	}
	return next
}

// writeOldCounter rewrites the tempfile counter of the SQLite backup at path in the two-row form
// described at oldForm: first a row at open, then one at the counter the backup holds now.
func writeOldCounter(t *testing.T, path string, open int64) {
	t.Helper()
	db, err := sqlOpen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var seq int64
	if err := db.QueryRow("SELECT seq FROM sqlite_sequence WHERE name = 'tempfile'").Scan(&seq); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"DELETE FROM sqlite_sequence WHERE name = 'tempfile'",
		"INSERT INTO sqlite_sequence (name, seq) VALUES ('tempfile', ?1)",
		"INSERT INTO sqlite_sequence (name, seq) VALUES ('tempfile', ?2)",
	} {
		if _, err := db.Exec(q, open, seq); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}
