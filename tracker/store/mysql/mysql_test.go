package mysql_test

import (
	"context"
	"sync"
	"testing"

	"github.com/mogway/mogway/internal/testutil/mysqltest"
	"github.com/mogway/mogway/tracker/store"
	"github.com/mogway/mogway/tracker/store/mysql"
	"github.com/mogway/mogway/tracker/store/storetest"
)

func TestStore(t *testing.T) {
	mysqltest.Server(t)
	var mu sync.Mutex // guards dsns
	dsns := map[*testing.T]string{}
	storetest.Run(t, func(t *testing.T) store.Store {
		t.Helper()
		mu.Lock()
		dsn, ok := dsns[t]
		if !ok {
			dsn = mysqltest.DSN(t)
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
