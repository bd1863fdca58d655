package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/mogway/mogway/tracker/store"
	"github.com/mogway/mogway/tracker/store/sqlite"
	"github.com/mogway/mogway/tracker/store/storetest"
)

func TestStore(t *testing.T) {
	newDB := func(t *testing.T) string { return filepath.Join(t.TempDir(), "sub", "tracker.db") }
	storetest.Run(t, storetest.PerTest(newDB, func(t *testing.T, p string) store.Store {
		s, err := sqlite.Open(context.Background(), p)
		if err != nil {
			t.Fatalf("Open(%q): %v", p, err)
		}
		return s
	}))
}
