package clustertest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"testing"

	mysqldrv "github.com/go-sql-driver/mysql"
)

// MySQLEnv names the environment variable holding a server DSN for tests on MySQL/MariaDB, such as
// "user:pass@tcp(127.0.0.1:3306)/" (scripts/mariadb.sh sets it for `make test`).
const MySQLEnv = "MOGWAY_TEST_MYSQL_DSN"

// MySQLDSN creates an empty database mogway_test_<random> on the server named by MOGWAY_TEST_MYSQL_DSN
// and returns its DSN for Options.DSN; the database is dropped when t ends. Without the variable the
// test is skipped.
func MySQLDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(MySQLEnv)
	if dsn == "" {
		t.Skip(MySQLEnv + " is unset: no MySQL/MariaDB to test against (`make test` starts one)")
	}
	cfg, err := mysqldrv.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("clustertest: %s: %v", MySQLEnv, err)
	}
	cfg.DBName = ""
	conn, err := mysqldrv.NewConnector(cfg)
	if err != nil {
		t.Fatalf("clustertest: %s: %v", MySQLEnv, err)
	}
	admin := sql.OpenDB(conn)
	var b [8]byte
	rand.Read(b[:])
	name := "mogway_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		admin.Close()
		t.Fatalf("clustertest: CREATE DATABASE %s: %v", name, err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name); err != nil {
			t.Errorf("clustertest: DROP DATABASE %s: %v", name, err)
		}
	})
	db := cfg.Clone()
	db.DBName = name
	return db.FormatDSN()
}
