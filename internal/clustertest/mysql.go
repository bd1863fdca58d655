package clustertest

import (
	"testing"

	"github.com/mogway/mogway/internal/testutil/mysqltest"
)

// MySQLEnv names the environment variable holding a server DSN for tests on MySQL/MariaDB, such as
// "user:pass@tcp(127.0.0.1:3306)/" (scripts/mariadb.sh sets it for `make test`).
const MySQLEnv = mysqltest.Env

// MySQLDSN creates an empty database mogway_test_<random> on the server named by MOGWAY_TEST_MYSQL_DSN
// and returns its DSN for Options.DSN; the database is dropped when t ends. Without the variable the
// test is skipped.
func MySQLDSN(t testing.TB) string {
	t.Helper()
	return mysqltest.DSN(t)
}
