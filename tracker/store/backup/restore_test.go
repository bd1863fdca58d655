package backup_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mogway/mogway/tracker/store"
	"github.com/mogway/mogway/tracker/store/backup"
)

// A forced restore over a SQLite database removes the target's old -wal and -shm files: left in
// place, SQLite would replay the old database's uncheckpointed commits into the restored one
// (docs/tracker.md, Backups).
func TestRestoreRemovesStaleWAL(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()

	src := filepath.Join(dir, "src.db")
	s := openSQLite(t, src)
	commitFiles(t, s, "restored", 3)
	s.Close()
	out := filepath.Join(dir, "b.db")
	if _, err := backup.Backup(ctx, "sqlite:"+src, out, nil); err != nil {
		t.Fatalf("Backup: %v", err)
	}

	// The target as a tracker that crashed leaves it: its latest commits only in its -wal file.
	// It is copied, with its -wal and -shm, from a database a Store still has open.
	live := filepath.Join(dir, "live.db")
	openSQLite(t, live).Close() // the schema, checkpointed into the main file
	l := openSQLite(t, live)
	commitFiles(t, l, "old", 50)
	crashed := readFiles(t, live, "", "-wal", "-shm")
	l.Close()
	// As found there, the old domain is in the WAL only.
	probe := filepath.Join(dir, "probe.db")
	writeFiles(t, probe, crashed)
	if got := namespaces(t, probe); !reflect.DeepEqual(got, []string{"old"}) {
		t.Fatalf("domains of the crashed database = %v, want [old]", got)
	}
	mainOnly := filepath.Join(dir, "main-only.db")
	writeFiles(t, mainOnly, map[string][]byte{"": crashed[""]})
	if got := namespaces(t, mainOnly); len(got) != 0 {
		t.Fatalf("domains of the crashed database without its WAL = %v, want none", got)
	}
	target := filepath.Join(dir, "tracker.db")
	writeFiles(t, target, crashed)

	if _, err := backup.Restore(ctx, out, "sqlite:"+target, true, nil); err != nil {
		t.Fatalf("Restore --force: %v", err)
	}
	if ok := integrityCheck(t, target); ok != "ok" {
		t.Fatalf("PRAGMA integrity_check of the restored target = %q, want ok", ok)
	}
	if got, want := dump(t, target), dump(t, out); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored target differs from the backup:\n got  %v\n want %v", got, want)
	}
	if ds, err := openSQLite(t, target).Domains(ctx); err != nil || len(ds) != 1 || ds[0].Name != "restored" {
		t.Fatalf("Domains() of the restored target = %v, %v; want only the backup's domain", ds, err)
	}
}

// commitFiles creates domain name in s with n committed files, one transaction each.
func commitFiles(t *testing.T, s store.Store, name string, n int) {
	t.Helper()
	ctx := context.Background()
	d, err := s.CreateDomain(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		key := fmt.Sprintf("%s/%d", name, i)
		fid, err := s.CreateTempfile(ctx, store.Tempfile{DomainID: d.ID, Key: key, DevIDs: []int{1}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CommitFile(ctx, store.Commit{File: store.File{Fid: fid, DomainID: d.ID, Key: key, Length: int64(i)}, DevIDs: []int{1}}); err != nil {
			t.Fatal(err)
		}
	}
}

// dump returns every row of every table of the SQLite database at path, formatted and sorted, by
// table name.
func dump(t *testing.T, path string) map[string][]string {
	t.Helper()
	db, err := sqlOpen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var tables []string
	rows, err := db.Query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	out := make(map[string][]string, len(tables))
	for _, tb := range tables {
		rows, err := db.Query(`SELECT * FROM "` + tb + `"`)
		if err != nil {
			t.Fatalf("%s: table %s: %v", path, tb, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var row []string
			for _, v := range vals {
				switch v := v.(type) {
				case []byte:
					row = append(row, fmt.Sprintf("%q", v))
				case string:
					row = append(row, fmt.Sprintf("%q", v))
				default:
					row = append(row, fmt.Sprint(v))
				}
			}
			out[tb] = append(out[tb], strings.Join(row, " "))
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: table %s: %v", path, tb, err)
		}
		rows.Close()
		slices.Sort(out[tb])
	}
	return out
}

// readFiles returns the contents of path+suffix for each suffix, by suffix.
func readFiles(t *testing.T, path string, suffixes ...string) map[string][]byte {
	t.Helper()
	m := make(map[string][]byte, len(suffixes))
	for _, suffix := range suffixes {
		b, err := os.ReadFile(path + suffix)
		if err != nil {
			t.Fatal(err)
		}
		m[suffix] = b
	}
	return m
}

// writeFiles writes each of files to path+suffix.
func writeFiles(t *testing.T, path string, files map[string][]byte) {
	t.Helper()
	for suffix, b := range files {
		if err := os.WriteFile(path+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// namespaces returns the domain names in the SQLite database at path.
func namespaces(t *testing.T, path string) []string {
	t.Helper()
	db, err := sqlOpen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT namespace FROM domain ORDER BY namespace")
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return names
}

// integrityCheck returns the answer of PRAGMA integrity_check on the database at path.
func integrityCheck(t *testing.T, path string) string {
	t.Helper()
	db, err := sqlOpen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var s string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&s); err != nil {
		return err.Error()
	}
	return s
}
