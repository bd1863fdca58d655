package mysql_test

import (
	"context"
	"testing"

	"github.com/mogway/mogway/internal/testutil/mysqltest"
	"github.com/mogway/mogway/tracker/store"
	"github.com/mogway/mogway/tracker/store/mysql"
	"github.com/mogway/mogway/tracker/store/storetest"
)

func TestStore(t *testing.T) {
	mysqltest.Server(t)
	newDB := func(t *testing.T) string { return mysqltest.DSN(t) }
	storetest.Run(t, storetest.PerTest(newDB, func(t *testing.T, dsn string) store.Store {
		s, err := mysql.Open(context.Background(), dsn)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	}))
}
