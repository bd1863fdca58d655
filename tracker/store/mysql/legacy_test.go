package mysql_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/testutil/mysqltest"
	"github.com/mogway/mogway/tracker/store"
	"github.com/mogway/mogway/tracker/store/mysql"
	"github.com/mogway/mogway/tracker/store/storetest"
)

// legacySchema is what an old mogdbsetup left behind: INT fids, latin1 case-insensitive keys.
var legacySchema = []string{
	`CREATE TABLE domain (dmid SMALLINT UNSIGNED NOT NULL PRIMARY KEY, namespace VARCHAR(255), UNIQUE (namespace)) ENGINE=InnoDB DEFAULT CHARSET=latin1`,
	`CREATE TABLE class (dmid SMALLINT UNSIGNED NOT NULL, classid TINYINT UNSIGNED NOT NULL, PRIMARY KEY (dmid,classid),
	  classname VARCHAR(50), UNIQUE (dmid,classname), mindevcount TINYINT UNSIGNED NOT NULL, hashtype TINYINT UNSIGNED,
	  replpolicy VARCHAR(255)) ENGINE=InnoDB DEFAULT CHARSET=latin1`,
	`CREATE TABLE file (fid INT UNSIGNED NOT NULL, PRIMARY KEY (fid), dmid SMALLINT UNSIGNED NOT NULL, dkey VARCHAR(255),
	  UNIQUE dkey (dmid, dkey), length BIGINT UNSIGNED, classid TINYINT UNSIGNED NOT NULL, devcount TINYINT UNSIGNED NOT NULL,
	  INDEX devcount (dmid,classid,devcount)) ENGINE=InnoDB DEFAULT CHARSET=latin1`,
	`CREATE TABLE tempfile (fid INT UNSIGNED NOT NULL AUTO_INCREMENT, PRIMARY KEY (fid), createtime INT UNSIGNED NOT NULL,
	  classid TINYINT UNSIGNED NOT NULL, dmid SMALLINT UNSIGNED NOT NULL, dkey VARCHAR(255), devids VARCHAR(60)) ENGINE=InnoDB DEFAULT CHARSET=latin1`,
	`CREATE TABLE server_settings (field VARCHAR(50) PRIMARY KEY, value TEXT) ENGINE=InnoDB DEFAULT CHARSET=latin1`,
	`INSERT INTO server_settings VALUES ('schema_version', '17')`,
	`INSERT INTO domain VALUES (1, 'photos')`,
	`INSERT INTO file VALUES (41, 1, 'Foo', 3, 0, 1)`,
}

func legacyDB(t *testing.T) (string, *sql.DB) {
	t.Helper()
	dsn := mysqltest.DSN(t)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, q := range legacySchema {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return dsn, db
}

func showCreate(t *testing.T, db *sql.DB, table string) string {
	t.Helper()
	var name, ddl string
	if err := db.QueryRow("SHOW CREATE TABLE "+table).Scan(&name, &ddl); err != nil {
		t.Fatalf("SHOW CREATE TABLE %s: %v", table, err)
	}
	return ddl
}

// TestExistingDatabase opens a MogileFS database made by an older mogdbsetup: existing tables stay
// as they are, missing ones are added, and keys follow the inherited case-insensitive collation.
func TestExistingDatabase(t *testing.T) {
	ctx := context.Background()
	dsn, db := legacyDB(t)
	before := map[string]string{}
	for _, tb := range []string{"domain", "class", "file", "tempfile", "server_settings"} {
		before[tb] = showCreate(t, db, tb)
	}
	s, err := mysql.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("Open(existing database): %v", err)
	}
	defer s.Close()
	for tb, ddl := range before {
		if got := showCreate(t, db, tb); got != ddl {
			t.Errorf("Open altered table %s:\n%s\nwant\n%s", tb, got, ddl)
		}
	}
	// Missing tables were created.
	if _, err := s.QueueLen(ctx, store.QueueReplicate); err != nil {
		t.Fatalf("QueueLen on the added file_to_replicate: %v", err)
	}
	f, err := s.FileByKey(ctx, 1, "Foo")
	if err != nil || f.Fid != 41 {
		t.Fatalf("FileByKey(Foo) = %+v, %v, want fid 41", f, err)
	}
	// The fid floor is the highest committed fid of the existing data.
	fid, err := s.CreateTempfile(ctx, store.Tempfile{DomainID: 1, Key: "foo"})
	if err != nil || fid <= 41 {
		t.Fatalf("CreateTempfile() = %d, %v, want a fid above 41", fid, err)
	}
	// latin1_swedish_ci: "foo" is the same key as "Foo", so committing it replaces fid 41.
	replaced, err := s.CommitFile(ctx, store.Commit{File: store.File{Fid: fid, DomainID: 1, Key: "foo", Length: 1}, DevIDs: []int{1}})
	if err != nil || replaced != 41 {
		t.Fatalf("CommitFile(foo) = %d, %v, want it to replace fid 41 (inherited collation)", replaced, err)
	}
	m, err := s.Settings(ctx)
	if err != nil || m["schema_version"] != "17" {
		t.Fatalf("Settings() = %v, %v, want schema_version 17 kept", m, err)
	}
}

func TestOldSchemaRefused(t *testing.T) {
	dsn, db := legacyDB(t)
	if _, err := db.Exec("UPDATE server_settings SET value = '12' WHERE field = 'schema_version'"); err != nil {
		t.Fatal(err)
	}
	s, err := mysql.Open(context.Background(), dsn)
	if err == nil {
		s.Close()
		t.Fatalf("Open(schema version 12) succeeded, want a refusal")
	}
	if !strings.Contains(err.Error(), "mogdbsetup") {
		t.Fatalf("Open(schema version 12) = %v, want advice to run mogdbsetup", err)
	}
}

// freshStore opens a Store on a fresh database, and a plain connection pool on the same database
// for what other clients do; both are closed when t ends.
func freshStore(t *testing.T) (*mysql.Store, *sql.DB) {
	t.Helper()
	dsn := mysqltest.DSN(t)
	s, err := mysql.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return s, db
}

// TestLocksAreGetLock checks that Store locks are MySQL named locks other clients (Perl trackers)
// see under the same names.
func TestLocksAreGetLock(t *testing.T) {
	ctx := context.Background()
	s, admin := freshStore(t) // admin: another client, as a Perl tracker would be
	const name = "mgfs:fid:7:replicate"
	unlock, err := s.Lock(ctx, name, time.Second)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	var free sql.NullInt64
	if err := admin.QueryRow("SELECT IS_FREE_LOCK(?)", name).Scan(&free); err != nil || free.Int64 != 0 {
		t.Fatalf("IS_FREE_LOCK(%q) while held = %v, %v, want 0", name, free, err)
	}
	unlock()
	if err := admin.QueryRow("SELECT IS_FREE_LOCK(?)", name).Scan(&free); err != nil || free.Int64 != 1 {
		t.Fatalf("IS_FREE_LOCK(%q) after unlock = %v, %v, want 1", name, free, err)
	}
	// A lock taken by another client blocks the store.
	conn, err := admin.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "DO GET_LOCK(?, 1)", name); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lock(ctx, name, 0); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("Lock held by another client = %v, want ErrLocked", err)
	}
	if _, err := conn.ExecContext(ctx, "DO RELEASE_LOCK(?)", name); err != nil {
		t.Fatal(err)
	}
	unlock, err = s.Lock(ctx, name, 0)
	if err != nil {
		t.Fatalf("Lock after the other client released: %v", err)
	}
	unlock()
}

// TestFidCounterBehind resets the tempfile auto-increment below committed fids (as InnoDB before
// MariaDB 10.2 / MySQL 8 did on restart); allocation must jump past them, not reuse them.
func TestFidCounterBehind(t *testing.T) {
	s, db := freshStore(t)
	// Tempfile is empty once the files are committed, so this moves the counter back to 1.
	storetest.FidCounterBehind(t, s, db, "ALTER TABLE tempfile AUTO_INCREMENT = 1")
}

// TestFidCounterBehindQueued resets the tempfile auto-increment below fids queued for deletion
// that are no longer files; allocation must jump past them, or the delete worker would remove the
// new upload's bytes.
func TestFidCounterBehindQueued(t *testing.T) {
	s, db := freshStore(t)
	// InnoDB moves a lower AUTO_INCREMENT up to MAX(tempfile.fid)+1: the open upload below the
	// queued fid decides where the counter lands.
	storetest.FidCounterBehindQueued(t, s, db, "ALTER TABLE tempfile AUTO_INCREMENT = 1")
}

// TestCloseReleasesLocks checks that closing a Store ends the sessions holding its locks.
func TestCloseReleasesLocks(t *testing.T) {
	dsn := mysqltest.DSN(t)
	storetest.CloseReleasesLocks(t, func(ctx context.Context) (store.Store, error) { return mysql.Open(ctx, dsn) })
}
