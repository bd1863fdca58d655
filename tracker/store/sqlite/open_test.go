package sqlite

import (
	"context"
	"path/filepath"
	"testing"
)

// The writer connection runs in WAL mode with synchronous=FULL and a 30 s busy timeout, and it is
// the only one (docs/store.md, SQLite).
func TestWriterPragmas(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "tracker.db"))
	w := s.locks.db // the writer pool: the locker writes through the store's writer
	if n := w.Stats().MaxOpenConnections; n != 1 {
		t.Fatalf("writer MaxOpenConnections = %d, want 1", n)
	}
	var mode string
	var sync, busy int
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("PRAGMA journal_mode = %q, %v; want wal", mode, err)
	}
	if err := w.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil || sync != 2 {
		t.Errorf("PRAGMA synchronous = %d, %v; want 2 (FULL)", sync, err)
	}
	if err := w.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy); err != nil || busy != 30000 {
		t.Errorf("PRAGMA busy_timeout = %d, %v; want 30000 (30 s)", busy, err)
	}
}

// A transaction of the writer begins IMMEDIATE: it holds the write lock from BEGIN, before its first
// statement, so another connection cannot start writing meanwhile (docs/store.md, SQLite).
func TestWriterBeginsImmediate(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tracker.db")
	s := openTest(t, path)
	tx, err := s.locks.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()

	other, err := openDB(path, 0, false) // no busy timeout: a taken lock fails at once
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE")
	if err == nil {
		conn.ExecContext(ctx, "ROLLBACK")
	}
	if !(dialect{}).IsRetryable(err) {
		t.Fatalf("BEGIN IMMEDIATE on another connection while the writer's transaction is open = %v, want SQLITE_BUSY", err)
	}
}
