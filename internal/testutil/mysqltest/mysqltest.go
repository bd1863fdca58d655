// Package mysqltest gives tests a fresh MySQL/MariaDB database on the server named by
// MOGWAY_TEST_MYSQL_DSN, and skips them when there is none. It imports no mogway package, so the
// tests of the store, the workers and the cluster harness share it.
package mysqltest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"testing"

	mysqldrv "github.com/go-sql-driver/mysql"
)

// Env names the environment variable holding a server DSN for tests on MySQL/MariaDB, such as
// "user:pass@tcp(127.0.0.1:3306)/" (scripts/mariadb.sh sets it for `make test`).
const Env = "MOGWAY_TEST_MYSQL_DSN"

// Server returns the server DSN in MOGWAY_TEST_MYSQL_DSN, or skips the test when it is unset.
func Server(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(Env)
	if dsn == "" {
		t.Skip(Env + " is unset: no MySQL/MariaDB to test against (`make test` starts one with scripts/mariadb.sh)")
	}
	return dsn
}

// DSN creates an empty database mogway_test_<random> on the server named by MOGWAY_TEST_MYSQL_DSN
// and returns its DSN; the database is dropped when t ends. Without the variable the test is
// skipped.
func DSN(t testing.TB) string {
	t.Helper()
	cfg, err := mysqldrv.ParseDSN(Server(t))
	if err != nil {
		t.Fatalf("mysqltest: %s: %v", Env, err)
	}
	cfg.DBName = ""
	conn, err := mysqldrv.NewConnector(cfg)
	if err != nil {
		t.Fatalf("mysqltest: %s: %v", Env, err)
	}
	admin := sql.OpenDB(conn)
	var b [8]byte
	rand.Read(b[:])
	name := "mogway_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		admin.Close()
		t.Fatalf("mysqltest: CREATE DATABASE %s: %v", name, err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name); err != nil {
			t.Errorf("mysqltest: DROP DATABASE %s: %v", name, err)
		}
	})
	db := cfg.Clone()
	db.DBName = name
	return db.FormatDSN()
}
