package backup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/mogway/mogway/tracker/store/dsn"
	"github.com/mogway/mogway/tracker/store/internal/sqlstore"
)

// namespaceTables are the tables whose rows make a database "not empty" for Restore.
var namespaceTables = []string{"domain", "class", "host", "device", "file", "tempfile"}

// Restore verifies the backup at from and loads it into the store named by db (a --db value).
// A target that already holds a namespace is refused with ErrNotEmpty unless force is set. A
// SQLite target is replaced as a whole (through a temporary file and a rename, so it is either the
// old or the new database); no tracker may be running on it. A MySQL/MariaDB target gets the
// schema if it lacks it, and its MogileFS tables are emptied and refilled. The returned report
// holds the row counts read back from the target. progress may be nil.
func Restore(ctx context.Context, from, db string, force bool, progress Progress) (Report, error) {
	start := time.Now()
	want, err := Verify(ctx, from)
	if err != nil {
		return Report{}, err
	}
	spec, err := dsn.Parse(db)
	if err != nil {
		return Report{}, err
	}
	var got Report
	switch spec.Driver {
	case dsn.SQLite:
		if err := restoreSQLite(ctx, from, spec.Path, force, progress, want.Bytes); err != nil {
			return Report{}, err
		}
		got, err = Verify(ctx, spec.Path)
	case dsn.MySQL:
		if err := restoreMySQL(ctx, from, spec.DSN, force, want, progress); err != nil {
			return Report{}, err
		}
		got, err = countMySQL(ctx, spec.DSN)
	}
	if err != nil {
		return Report{}, err
	}
	for i, c := range want.Counts {
		if got.Counts[i].Rows != c.Rows {
			return Report{}, fmt.Errorf("backup: restored %s has %d rows in %s, the backup %d", db, got.Counts[i].Rows, c.Table, c.Rows)
		}
	}
	got.Path = from
	got.Bytes = want.Bytes
	got.Took = time.Since(start)
	return got, nil
}

// restoreSQLite replaces the database at path with a copy of the backup at from.
func restoreSQLite(ctx context.Context, from, path string, force bool, progress Progress, size int64) error {
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		db, err := openSQLite(path, true)
		if err != nil {
			return err
		}
		err = checkEmpty(ctx, db, path, force)
		db.Close()
		if err != nil {
			return err
		}
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	tmp, err := tempName(dir, filepath.Base(path))
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp) // a no-op once renamed
	w := watchSize(tmp, progress)
	w.setTotal(size)
	err = copySQLite(ctx, from, tmp)
	w.done()
	if err != nil {
		return err
	}
	if err := syncFile(tmp); err != nil {
		return err
	}
	// The old database's WAL belongs to the old file: left in place, SQLite would replay it
	// into the new one.
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("backup: %w", err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return syncDir(dir)
}

// copySQLite copies the backup at from into a new file tmp and drops the named locks it holds.
func copySQLite(ctx context.Context, from, tmp string) error {
	src, err := openSQLite(from, false) // VACUUM INTO is refused under query_only; it writes only tmp
	if err != nil {
		return err
	}
	defer src.Close()
	return vacuumInto(ctx, src, tmp, "copy "+from)
}

// checkEmpty fails with ErrNotEmpty when db holds rows in a namespace table, unless force.
// A database without the MogileFS tables is empty.
func checkEmpty(ctx context.Context, db *sql.DB, name string, force bool) error {
	if force {
		return nil
	}
	for _, t := range namespaceTables {
		var one int
		err := db.QueryRowContext(ctx, "SELECT 1 FROM "+t+" LIMIT 1").Scan(&one)
		if errors.Is(err, sql.ErrNoRows) || isNoTable(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("backup: %s: %w", name, err)
		}
		return fmt.Errorf("%w: %s has rows in %s (pass --force to replace them)", ErrNotEmpty, name, t)
	}
	return nil
}

// isNoTable reports whether err says the table does not exist (SQLite or MySQL error 1146).
func isNoTable(err error) bool {
	if err == nil {
		return false
	}
	var me *mysqldrv.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1146
	}
	return strings.Contains(err.Error(), "no such table")
}

// countMySQL returns the row counts of the MySQL/MariaDB database named by dsn.
func countMySQL(ctx context.Context, dsn string) (Report, error) {
	db, err := openMySQL(dsn)
	if err != nil {
		return Report{}, err
	}
	defer db.Close()
	var rep Report
	for _, t := range tables {
		var n int64
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+t).Scan(&n); err != nil {
			return Report{}, fmt.Errorf("backup: count %s: %w", t, err)
		}
		rep.Counts = append(rep.Counts, TableCount{Table: t, Rows: n})
	}
	return rep, nil
}

// nextFid is the first fid a tracker on a restored database may hand out: above the backup's
// tempfile counter and above every fid it mentions.
func nextFid(ctx context.Context, src *sql.DB) (int64, error) {
	var seq, maxFid sql.NullInt64
	// MAX: a backup made before setFidCounter may hold two rows for tempfile.
	_ = src.QueryRowContext(ctx, "SELECT MAX(seq) FROM sqlite_sequence WHERE name = 'tempfile'").Scan(&seq)
	// Every taken fid (a file or queued for deletion), as the store's own floor, and the open uploads.
	err := src.QueryRowContext(ctx, `SELECT MAX(m) FROM (SELECT (`+sqlstore.MaxTakenFidQuery+`) AS m
		UNION ALL SELECT MAX(fid) FROM tempfile)`).Scan(&maxFid)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	return max(seq.Int64, maxFid.Int64) + 1, nil
}

// setFidCounter leaves one sqlite_sequence row for tempfile in the SQLite database db, at atLeast
// or above and above every fid db mentions (see nextFid), so that a tracker running on db hands
// out none of them again. sqlite_sequence has no unique key: an INSERT OR REPLACE there adds a
// second row when the copied tempfile rows have made one already, and SQLite then reads the first
// (TestRestoreFidCounter: a backup of MySQL taken during an open upload kept the counter of that
// upload, so a deleted file's fid above it was handed out again).
func setFidCounter(ctx context.Context, db *sql.DB, atLeast int64) error {
	next, err := nextFid(ctx, db)
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer tx.Rollback() // a no-op after Commit
	if _, err := tx.ExecContext(ctx, "DELETE FROM sqlite_sequence WHERE name = 'tempfile'"); err != nil {
		return fmt.Errorf("backup: fid counter: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO sqlite_sequence (name, seq) VALUES ('tempfile', ?)", max(next-1, atLeast)); err != nil {
		return fmt.Errorf("backup: fid counter: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("backup: fid counter: %w", err)
	}
	return nil
}
