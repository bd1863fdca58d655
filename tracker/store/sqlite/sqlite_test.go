package sqlite_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mogway/mogway/tracker/store"
	"github.com/mogway/mogway/tracker/store/sqlite"
	"github.com/mogway/mogway/tracker/store/storetest"
)

func TestStore(t *testing.T) {
	var mu sync.Mutex // guards paths
	paths := map[*testing.T]string{}
	storetest.Run(t, func(t *testing.T) store.Store {
		t.Helper()
		mu.Lock()
		p, ok := paths[t]
		if !ok {
			p = filepath.Join(t.TempDir(), "sub", "tracker.db")
			paths[t] = p
		}
		mu.Unlock()
		s, err := sqlite.Open(context.Background(), p)
		if err != nil {
			t.Fatalf("Open(%q): %v", p, err)
		}
		return s
	})
}
