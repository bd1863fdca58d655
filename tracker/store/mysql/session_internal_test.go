package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/testutil/mysqltest"
)

// These tests look inside the Store at its connection pool (the *sql.DB its locker shares): the
// sessions it opens are what the docs describe (docs/store.md, MySQL and MariaDB).

// withParam adds a go-sql-driver parameter to dsn.
func withParam(dsn, kv string) string {
	if strings.Contains(dsn, "?") {
		return dsn + "&" + kv
	}
	return dsn + "?" + kv
}

func openInternal(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// sessionSQLMode returns @@SESSION.sql_mode of a connection of the store's pool.
func sessionSQLMode(t *testing.T, s *Store) string {
	t.Helper()
	var mode string
	if err := s.locks.db.QueryRow("SELECT @@SESSION.sql_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	return mode
}

// TestSessionSQLMode: the store's sessions run with STRICT_ALL_TABLES unless the DSN sets sql_mode,
// whatever the server's default; a sql_mode in the DSN is used as given.
func TestSessionSQLMode(t *testing.T) {
	dsn := mysqltest.DSN(t)
	if got, want := sessionSQLMode(t, openInternal(t, dsn)), "STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION"; got != want {
		t.Errorf("@@SESSION.sql_mode of a store session = %q, want %q", got, want)
	}
	own := openInternal(t, withParam(dsn, "sql_mode=%27NO_ENGINE_SUBSTITUTION%27"))
	if got, want := sessionSQLMode(t, own), "NO_ENGINE_SUBSTITUTION"; got != want {
		t.Errorf("@@SESSION.sql_mode with sql_mode in the DSN = %q, want the DSN's %q", got, want)
	}
}

// TestMaxConns: a store opens at most DefaultMaxConns (32) connections. It holds 32 named locks,
// each on a session of its own, and sees a 33rd lock wait for a connection, with the server
// counting 32 sessions of the store, until one of the 32 is released.
func TestMaxConns(t *testing.T) {
	if DefaultMaxConns != 32 {
		t.Fatalf("DefaultMaxConns = %d, want 32 (docs/store.md, docs/ha.md)", DefaultMaxConns)
	}
	ctx := context.Background()
	dsn := mysqltest.DSN(t)
	s := openInternal(t, dsn)
	admin, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	admin.SetMaxOpenConns(1)
	sessions := func() int {
		t.Helper()
		var n int
		err := admin.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND ID <> CONNECTION_ID()").Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	var unlocks []func()
	defer func() {
		for _, u := range unlocks {
			u()
		}
	}()
	for i := range 32 {
		u, err := s.Lock(ctx, fmt.Sprintf("maxconns:%d", i), 0)
		if err != nil {
			t.Fatalf("Lock #%d: %v", i+1, err)
		}
		unlocks = append(unlocks, u)
	}
	waits := s.locks.db.Stats().WaitCount
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		unlock func()
		err    error
	}
	done := make(chan result, 1)
	go func() {
		u, err := s.Lock(lctx, "maxconns:33", 0)
		done <- result{u, err}
	}()
	deadline := time.Now().Add(time.Minute) // a bound on a hang, not a performance threshold
	for s.locks.db.Stats().WaitCount == waits {
		select {
		case r := <-done:
			if r.unlock != nil {
				r.unlock()
			}
			t.Fatalf("the 33rd Lock returned (%v) while 32 locks held their sessions, want it waiting for a connection", r.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the 33rd Lock neither waited for a connection nor returned")
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
	if n := sessions(); n != 32 {
		t.Errorf("the server counts %d sessions of the store while 32 locks are held and a 33rd waits, want 32", n)
	}
	unlocks[0]()
	unlocks = unlocks[1:]
	r := <-done
	if r.err != nil {
		t.Fatalf("the 33rd Lock after one was released: %v", r.err)
	}
	unlocks = append(unlocks, r.unlock)
	if n := sessions(); n > 32 {
		t.Errorf("the server counts %d sessions of the store, want at most 32", n)
	}
	if got := s.locks.db.Stats().MaxOpenConnections; got != 32 {
		t.Errorf("Stats().MaxOpenConnections = %d, want 32", got)
	}
}
