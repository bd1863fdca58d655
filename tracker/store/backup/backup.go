// Package backup takes consistent online snapshots of the tracker's metadata store and restores
// them.
//
// A backup is always one SQLite file with the MogileFS schema, whatever the source: from SQLite it
// is made with VACUUM INTO inside one read transaction (writers keep going on the WAL), from
// MySQL/MariaDB by copying every MogileFS table inside one START TRANSACTION WITH CONSISTENT
// SNAPSHOT. The file is usable as is as a tracker database (`--db sqlite:FILE`), and Restore loads
// it into a SQLite file or a MySQL/MariaDB database. Backup and Restore verify what they wrote
// (PRAGMA integrity_check plus a row count per table) before they report success.
//
// The `lock` table (named locks of running trackers) is runtime state: it is not restored.
package backup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/mogway/mogway/internal/fsutil"
	"github.com/mogway/mogway/tracker/store/dsn"
	"github.com/mogway/mogway/tracker/store/sqlite"
)

// tables are the MogileFS tables a backup carries, in the order they are restored (read-only).
var tables = []string{
	"server_settings", "domain", "class", "host", "device",
	"file", "tempfile", "file_on", "file_on_corrupt", "checksum",
	"file_to_delete", "file_to_delete2", "file_to_delete_later", "file_to_replicate", "file_to_queue",
	"unreachable_fids", "fsck_log",
}

// Errors Backup and Restore return; callers test them with errors.Is.
var (
	// ErrExists is returned by Backup when the output file exists already.
	ErrExists = errors.New("backup: the output file exists")
	// ErrNotEmpty is returned by Restore when the target holds a namespace and force is false.
	ErrNotEmpty = errors.New("backup: the target database is not empty")
	// ErrCorrupt is returned when a backup fails PRAGMA integrity_check or is not a MogileFS database.
	ErrCorrupt = errors.New("backup: the backup file is damaged")
)

// Progress is told how far a long copy has come, in bytes of the output; total is an estimate
// and may be 0 when unknown. It is called from one goroutine at a time.
type Progress func(done, total int64)

// TableCount is the number of rows of one table.
type TableCount struct {
	Table string
	Rows  int64
}

// Report describes a verified backup or restore.
type Report struct {
	// Path is the backup file (Backup) or the file read (Restore).
	Path string
	// Bytes is the size of the backup file.
	Bytes int64
	// Counts has one entry per MogileFS table (the lock table excepted), in restore order.
	Counts []TableCount
	// Took is how long the copy and the verification took.
	Took time.Duration
}

// Rows returns the row count of table, or -1 when the report does not list it.
func (r Report) Rows(table string) int64 {
	for _, c := range r.Counts {
		if c.Table == table {
			return c.Rows
		}
	}
	return -1
}

// Backup writes a consistent snapshot of the store named by db (a --db value) to out, which must
// not exist, while trackers keep using the store. The snapshot is written to a temporary file
// next to out, verified, fsynced and linked into place, so out is either complete or absent.
// progress may be nil.
func Backup(ctx context.Context, db, out string, progress Progress) (Report, error) {
	start := time.Now()
	spec, err := dsn.Parse(db)
	if err != nil {
		return Report{}, err
	}
	if _, err := os.Lstat(out); err == nil {
		return Report{}, fmt.Errorf("%w: %s (remove it or pick another name)", ErrExists, out)
	}
	dir := filepath.Dir(out)
	tmp, err := tempName(dir, filepath.Base(out))
	if err != nil {
		return Report{}, fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp) // on success out is a second link to the same file
	stop := watchSize(tmp, progress)
	switch spec.Driver {
	case dsn.SQLite:
		err = snapshotSQLite(ctx, spec.Path, tmp, stop)
	case dsn.MySQL:
		err = snapshotMySQL(ctx, spec.DSN, tmp, stop)
	}
	stop.done()
	if err != nil {
		return Report{}, err
	}
	rep, err := Verify(ctx, tmp)
	if err != nil {
		return Report{}, err
	}
	if err := syncFile(tmp); err != nil {
		return Report{}, err
	}
	if err := os.Link(tmp, out); err != nil { // unlike rename, never replaces a file made meanwhile
		return Report{}, fmt.Errorf("backup: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return Report{}, err
	}
	rep.Path = out
	rep.Took = time.Since(start)
	return rep, nil
}

// snapshotSQLite copies the database at path into tmp with VACUUM INTO: one read transaction, so
// the copy is the state of one commit, and writers on the WAL are not blocked.
func snapshotSQLite(ctx context.Context, path, tmp string, w *sizeWatch) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	db, err := openSQLite(path, false)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := checkMogileFS(ctx, db, path); err != nil {
		return err
	}
	total := fi.Size()
	var size int64
	if err := db.QueryRowContext(ctx, "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()").Scan(&size); err == nil {
		total = size
	}
	w.setTotal(total)
	return vacuumInto(ctx, db, tmp, "VACUUM INTO "+tmp)
}

// vacuumInto copies db into the new file tmp with VACUUM INTO and finishes the copy (see finish).
// A failed VACUUM INTO is reported as "backup: what: ...".
func vacuumInto(ctx context.Context, db *sql.DB, tmp, what string) error {
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", tmp); err != nil {
		return fmt.Errorf("backup: %s: %w", what, err)
	}
	out, err := openSQLite(tmp, false)
	if err != nil {
		return err
	}
	defer out.Close()
	return finish(ctx, out)
}

// finish turns a new copy into one self-contained file (rollback journal, not WAL) without the
// named locks of the trackers that ran on the original, and with its fid counter above every fid
// it mentions (setFidCounter).
func finish(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, "DELETE FROM lock"); err != nil && !isNoTable(err) {
		return fmt.Errorf("backup: %w", err)
	}
	if err := setFidCounter(ctx, db, 0); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "PRAGMA journal_mode=DELETE"); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// Verify checks the backup at path: PRAGMA integrity_check must answer "ok" and every MogileFS
// table must exist. It returns the row counts.
func Verify(ctx context.Context, path string) (Report, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Report{}, fmt.Errorf("backup: %w", err)
	}
	db, err := openSQLite(path, true)
	if err != nil {
		return Report{}, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return Report{}, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return Report{}, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
		}
		if s != "ok" && len(problems) < 5 {
			problems = append(problems, s)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return Report{}, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	if len(problems) > 0 {
		return Report{}, fmt.Errorf("%w: %s: integrity_check: %s", ErrCorrupt, path, strings.Join(problems, "; "))
	}
	if err := checkMogileFS(ctx, db, path); err != nil {
		return Report{}, err
	}
	rep := Report{Path: path, Bytes: fi.Size()}
	for _, t := range tables {
		var n int64
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+t).Scan(&n); err != nil {
			return Report{}, fmt.Errorf("%w: %s: table %s: %v", ErrCorrupt, path, t, err)
		}
		rep.Counts = append(rep.Counts, TableCount{Table: t, Rows: n})
	}
	return rep, nil
}

// checkMogileFS fails unless db has every table of tables.
func checkMogileFS(ctx context.Context, db *sql.DB, path string) error {
	for _, t := range tables {
		var n int
		err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?", t).Scan(&n)
		if err != nil {
			return fmt.Errorf("backup: %s: %w", path, err)
		}
		if n == 0 {
			return fmt.Errorf("%w: %s is not a MogileFS database (no table %s)", ErrCorrupt, path, t)
		}
	}
	return nil
}

// openSQLite opens path without creating it; readOnly makes every statement read-only. (mode=ro
// is not used: a database in WAL mode needs its -shm file, which a read-only open cannot create.)
func openSQLite(path string, readOnly bool) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqlite.DefaultBusyTimeout.Milliseconds()))
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	}
	q.Set("mode", "rw")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("backup: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// tempName returns an unused name in dir for a file that becomes base.
func tempName(dir, base string) (string, error) {
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return "", err
	}
	name := f.Name()
	f.Close()
	// VACUUM INTO and SQLite want to create the file themselves.
	return name, os.Remove(name)
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("backup: fsync %s: %w", path, err)
	}
	return f.Close()
}

func syncDir(dir string) error {
	if err := fsutil.SyncDir(dir); err != nil {
		return fmt.Errorf("backup: fsync %s: %w", dir, err)
	}
	return nil
}
