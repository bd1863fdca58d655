package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mogway/mogway/tracker/store/backup"
	"github.com/mogway/mogway/tracker/store/dsn"
	"github.com/mogway/mogway/tracker/store/replica/stream"
)

const trackerBackupAbout = `
Write a consistent snapshot of the tracker's metadata store to FILE while trackers keep serving:
from SQLite through VACUUM INTO (one read transaction; writers are not blocked), from
MySQL/MariaDB by copying every MogileFS table inside one START TRANSACTION WITH CONSISTENT
SNAPSHOT. The backup is a SQLite file with the MogileFS schema: a tracker can run on it as is
(--db sqlite:FILE) and "mogway tracker restore" loads it into SQLite or MySQL/MariaDB. It is
written to a temporary file, checked with PRAGMA integrity_check, fsynced and only then given its
name; the row count of each table is printed. FILE must not exist.`

const trackerRestoreAbout = `
Load a backup made by "mogway tracker backup" (or a SQLite tracker database) into the store named
by --db, after checking it with PRAGMA integrity_check. With --from file:///DIR, the database is
first rebuilt from the replica that tracker.replicate writes there, as of its latest transaction
or, with --timestamp, of the last one at or before that time (point-in-time restore).

A target that already holds domains, hosts, devices or files is refused unless --force is given.
A SQLite target is replaced as a whole; stop the trackers that use it first. A MySQL/MariaDB
target must exist; it gets the MogileFS schema if it has none. The row counts read back from the
target are printed.`

func cmdTrackerBackup(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "tracker backup", "--db STORE --out FILE", trackerBackupAbout)
	db := fs.String("db", "", "metadata `store` to back up: sqlite:PATH or mysql://user:pass@tcp(host:3306)/mogilefs")
	out := fs.String("out", "", "backup `file` to write (must not exist)")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if *db == "" || *out == "" || fs.NArg() > 0 {
		fmt.Fprintln(e.stderr, "mogway tracker backup: --db and --out are required")
		fs.Usage()
		return errUsage
	}
	bar := &progressFunc{w: e.stderr, label: "backup"}
	rep, err := backup.Backup(ctx, *db, *out, bar.report)
	bar.finish()
	if err != nil {
		return err
	}
	printReport(e.stdout, "backup", rep)
	return nil
}

func cmdTrackerRestore(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "tracker restore", "--from FILE|file:///DIR [--timestamp T] --db STORE [--force]", trackerRestoreAbout)
	from := fs.String("from", "", "backup `file` to load, or a replica URL file:///DIR")
	at := fs.String("timestamp", "", "with a replica: restore the state as of this `time` (RFC 3339, e.g. 2026-01-02T15:04:05Z)")
	db := fs.String("db", "", "metadata `store` to fill: sqlite:PATH or mysql://user:pass@tcp(host:3306)/mogilefs")
	force := fs.Bool("force", false, "replace a target that already holds a namespace")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if *db == "" || *from == "" || fs.NArg() > 0 {
		fmt.Fprintln(e.stderr, "mogway tracker restore: --from and --db are required")
		fs.Usage()
		return errUsage
	}
	var when time.Time
	if *at != "" {
		t, err := time.Parse(time.RFC3339Nano, *at)
		if err != nil {
			fmt.Fprintf(e.stderr, "mogway tracker restore: --timestamp %q: want RFC 3339, e.g. 2026-01-02T15:04:05Z\n", *at)
			return errUsage
		}
		when = t
	}
	file := *from
	if strings.Contains(*from, "://") {
		tmp, err := fromReplica(ctx, e, *from, *db, when)
		if err != nil {
			return err
		}
		defer os.RemoveAll(filepath.Dir(tmp))
		file = tmp
	} else if *at != "" {
		fmt.Fprintln(e.stderr, "mogway tracker restore: --timestamp needs a replica URL in --from (file:///DIR)")
		return errUsage
	}
	bar := &progressFunc{w: e.stderr, label: "restore"}
	rep, err := backup.Restore(ctx, file, *db, *force, bar.report)
	bar.finish()
	if err != nil {
		return err
	}
	printReport(e.stdout, "restored "+*from+" into "+dbName(*db), rep)
	return nil
}

// fromReplica rebuilds the database from the replica at url into a new temporary directory (next
// to a SQLite target, so the final copy stays on one file system) and returns the file's path.
func fromReplica(ctx context.Context, e *env, url, db string, at time.Time) (string, error) {
	oldest, newest, err := stream.Bounds(ctx, url)
	if err != nil {
		return "", err
	}
	if newest.IsZero() {
		return "", fmt.Errorf("replica %s holds no transactions", url)
	}
	fmt.Fprintf(e.stderr, "replica %s holds %s .. %s\n", url, oldest.UTC().Format(time.RFC3339), newest.UTC().Format(time.RFC3339))
	base := ""
	if spec, err := dsn.Parse(db); err == nil && spec.Driver == dsn.SQLite {
		base = filepath.Dir(spec.Path)
		if err := os.MkdirAll(base, 0o750); err != nil {
			return "", err
		}
	}
	dir, err := os.MkdirTemp(base, ".mogway-restore-*")
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "tracker.db")
	if err := stream.Restore(ctx, url, out, at, nil); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return out, nil
}

// dbName is a --db value fit for output: a MySQL password is hidden.
func dbName(db string) string {
	spec, err := dsn.Parse(db)
	if err != nil {
		return db
	}
	return spec.String()
}

// printReport prints what a backup or restore wrote: a summary line, then "table rows" lines.
func printReport(w io.Writer, what string, rep backup.Report) {
	fmt.Fprintf(w, "%s: %s, integrity_check ok, %.1fs\n", what, humanBytes(rep.Bytes), rep.Took.Seconds())
	if what == "backup" {
		fmt.Fprintf(w, "file %s\n", rep.Path)
	}
	for _, c := range rep.Counts {
		fmt.Fprintf(w, "%-22s %d\n", c.Table, c.Rows)
	}
}

// progressFunc draws a progress bar (see progress) from backup.Progress calls; nothing is drawn
// for small databases or when stderr is not a terminal.
type progressFunc struct {
	w     io.Writer
	label string
	p     *progress
}

func (f *progressFunc) report(done, total int64) {
	if f.p == nil {
		if f.p = newProgress(f.w, total, f.label); f.p == nil {
			return
		}
	}
	f.p.total = max(total, f.p.total)
	f.p.set(done)
}

func (f *progressFunc) finish() {
	if f.p != nil {
		f.p.done()
	}
}
