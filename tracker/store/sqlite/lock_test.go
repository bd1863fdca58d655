package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/tracker/store"
	"github.com/mogway/mogway/tracker/store/storetest"
)

func TestLockID(t *testing.T) {
	// md5("") = d41d8cd98f00..., md5("a") = 0cc175b9c0f1...: the first 4 bytes, masked to 31 bits.
	testutil.Table(t, "LockID", LockID, map[string]int64{
		"":  0xd41d8cd9 & 0x7fffffff,
		"a": 0x0cc175b9,
	})
	if LockID("mgfs:fid:1") == LockID("mgfs:fid:2") {
		t.Errorf("LockID gives two fids the same id")
	}
}

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tracker.db")
	s, err := Open(context.Background(), p)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, p
}

func rawDB(t *testing.T, p string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", p+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestStaleLocks checks that lock rows left by a dead process or older than an hour are broken,
// and that a live holder's row is not.
func TestStaleLocks(t *testing.T) {
	ctx := context.Background()
	s, p := openTemp(t)
	db := rawDB(t, p)
	host, _ := os.Hostname()
	now := time.Now().Unix()
	const deadPid = 1 << 30 // above any pid_max
	for _, tc := range []struct {
		name       string
		host       string
		pid        int
		acquiredat int64
		wantLocked bool
	}{
		{"live holder", host, os.Getpid(), now, true},
		{"live holder, same run", s.locks.holder, os.Getpid(), now, true},
		{"earlier run with the same pid", host + " t1", os.Getpid(), now, false},
		{"other host, recent", "elsewhere.example", deadPid, now, true},
		{"dead process here", host, deadPid, now, false},
		{"older than an hour", "elsewhere.example", 1, now - 3601, false},
	} {
		lock := "test:" + tc.name
		if _, err := db.Exec("INSERT INTO lock (lockid, hostname, pid, acquiredat) VALUES (?, ?, ?, ?)",
			LockID(lock), tc.host, tc.pid, tc.acquiredat); err != nil {
			t.Fatal(err)
		}
		unlock, err := s.Lock(ctx, lock, 0)
		if tc.wantLocked {
			if !errors.Is(err, store.ErrLocked) {
				t.Errorf("Lock(%s) = %v, want ErrLocked", tc.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Lock(%s) = %v, want the stale row broken", tc.name, err)
			continue
		}
		unlock()
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM lock WHERE lockid = ?", LockID(lock)).Scan(&n); err != nil || n != 0 {
			t.Errorf("lock rows of %s after unlock = %d, %v, want 0", tc.name, n, err)
		}
	}
}

// TestLockWaitHonoursContext checks that a waiting Lock returns when its context ends.
func TestLockWaitHonoursContext(t *testing.T) {
	s, _ := openTemp(t)
	unlock, err := s.Lock(context.Background(), "x", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Lock(ctx, "x", time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock(cancelled context) = %v, want context.Canceled", err)
	}
}

// TestFidCounterBehind lowers the AUTOINCREMENT counter below committed fids; allocation must jump
// past them.
func TestFidCounterBehind(t *testing.T) {
	s, p := openTemp(t)
	storetest.FidCounterBehind(t, s, rawDB(t, p), "UPDATE sqlite_sequence SET seq = 0 WHERE name = 'tempfile'")
}

// TestExistingSchema opens a database whose tables already exist (as mogdbsetup --type=SQLite
// makes them, without mogway's lock-table NOT NULLs) and keeps its data.
func TestExistingSchema(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "mogilefs.db")
	db := rawDB(t, p)
	for _, q := range []string{
		`CREATE TABLE domain (dmid SMALLINT UNSIGNED NOT NULL PRIMARY KEY, namespace VARCHAR(255), UNIQUE (namespace))`,
		`CREATE TABLE file (fid INT UNSIGNED NOT NULL PRIMARY KEY, dmid SMALLINT UNSIGNED NOT NULL, dkey VARCHAR(255),
		  length BIGINT UNSIGNED, classid TINYINT UNSIGNED NOT NULL, devcount TINYINT UNSIGNED NOT NULL, UNIQUE (dmid, dkey))`,
		`CREATE TABLE lock (lockid INT UNSIGNED NOT NULL PRIMARY KEY, hostname VARCHAR(255) NOT NULL, pid INT UNSIGNED NOT NULL, acquiredat INT UNSIGNED NOT NULL)`,
		`CREATE TABLE server_settings (field VARCHAR(50) PRIMARY KEY, value TEXT)`,
		`INSERT INTO server_settings VALUES ('schema_version', '16')`,
		`INSERT INTO domain VALUES (3, 'photos')`,
		`INSERT INTO file VALUES (900, 3, 'x.jpg', 10, 0, 2)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s, err := Open(ctx, p)
	if err != nil {
		t.Fatalf("Open(existing): %v", err)
	}
	defer s.Close()
	f, err := s.FileByKey(ctx, 3, "x.jpg")
	if err != nil || f.Fid != 900 || f.DevCount != 2 {
		t.Fatalf("FileByKey(x.jpg) = %+v, %v, want fid 900", f, err)
	}
	m, err := s.Settings(ctx)
	if err != nil || m["schema_version"] != "16" {
		t.Fatalf("Settings() = %v, %v, want the existing schema_version 16 kept", m, err)
	}
	fid, err := s.CreateTempfile(ctx, store.Tempfile{DomainID: 3, Key: "y"})
	if err != nil || fid <= 900 {
		t.Fatalf("CreateTempfile() = %d, %v, want a fid above 900", fid, err)
	}
}

// TestCloseReleasesLocks checks that closing a Store frees the locks it still holds, so a tracker
// restarted in the same process does not wait for them to go stale.
func TestCloseReleasesLocks(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tracker.db")
	storetest.CloseReleasesLocks(t, func(ctx context.Context) (store.Store, error) { return Open(ctx, p) })
}

func TestIncarnation(t *testing.T) {
	self := incarnation(os.Getpid())
	if self == "" {
		t.Skip("no /proc/<pid>/stat on this system")
	}
	if again := incarnation(os.Getpid()); again != self {
		t.Fatalf("incarnation(self) = %q then %q", self, again)
	}
	if got := incarnation(1 << 30); got != "" {
		t.Fatalf("incarnation(no such pid) = %q, want empty", got)
	}
}

// TestFidCounterBehindQueued lowers the AUTOINCREMENT counter below fids queued for deletion that
// are no longer files; allocation must jump past them, or the delete worker would remove the new
// upload's bytes.
func TestFidCounterBehindQueued(t *testing.T) {
	s, p := openTemp(t)
	storetest.FidCounterBehindQueued(t, s, rawDB(t, p), "UPDATE sqlite_sequence SET seq = 0 WHERE name = 'tempfile'")
}
