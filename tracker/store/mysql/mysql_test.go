package mysql_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"sync"
	"testing"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/mogway/mogway/tracker/store"
	"github.com/mogway/mogway/tracker/store/mysql"
	"github.com/mogway/mogway/tracker/store/storetest"
)

// testServer returns the server DSN from MOGWAY_TEST_MYSQL_DSN (scripts/mariadb.sh sets it for
// `make test`) and an admin pool on it, or skips the test when the variable is unset.
func testServer(t *testing.T) (*mysqldrv.Config, *sql.DB) {
	t.Helper()
	dsn := os.Getenv("MOGWAY_TEST_MYSQL_DSN")
	if dsn == "" {
		t.Skip("MOGWAY_TEST_MYSQL_DSN is unset: no MySQL/MariaDB to test against (`make test` starts one with scripts/mariadb.sh)")
	}
	cfg, err := mysqldrv.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("MOGWAY_TEST_MYSQL_DSN: %v", err)
	}
	cfg.DBName = ""
	conn, err := mysqldrv.NewConnector(cfg)
	if err != nil {
		t.Fatalf("MOGWAY_TEST_MYSQL_DSN: %v", err)
	}
	admin := sql.OpenDB(conn)
	t.Cleanup(func() { admin.Close() })
	return cfg, admin
}

// freshDatabase creates mogway_test_<random> and drops it when t ends; it returns the DSN.
func freshDatabase(t *testing.T, server *mysqldrv.Config, admin *sql.DB) string {
	t.Helper()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "mogway_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("CREATE DATABASE %s: %v", name, err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name); err != nil {
			t.Errorf("DROP DATABASE %s: %v", name, err)
		}
	})
	cfg := server.Clone()
	cfg.DBName = name
	return cfg.FormatDSN()
}

func TestStore(t *testing.T) {
	server, admin := testServer(t)
	var mu sync.Mutex // guards dsns
	dsns := map[*testing.T]string{}
	storetest.Run(t, func(t *testing.T) store.Store {
		t.Helper()
		mu.Lock()
		dsn, ok := dsns[t]
		if !ok {
			dsn = freshDatabase(t, server, admin)
			dsns[t] = dsn
		}
		mu.Unlock()
		s, err := mysql.Open(context.Background(), dsn)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}
