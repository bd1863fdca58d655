package node_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/clustertest"
	"github.com/mogway/mogway/tracker/node"
	"github.com/mogway/mogway/tracker/store"
)

// frozenNode returns the URL of a file on an HTTP server that accepts connections but never answers
// (clustertest.Freezer), as a hung storage node does.
func frozenNode(t *testing.T) string {
	t.Helper()
	var f clustertest.Freezer
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("data"))
	}))
	srv.Listener = f.Listener(srv.Listener)
	srv.Start()
	t.Cleanup(srv.Close)
	f.Freeze()
	t.Cleanup(f.Thaw) // runs before srv.Close
	return srv.URL + "/dev1/0/000/000/0000000001.fid"
}

// TestHungNodeBoundedByTimeout checks that every request to a node that accepts connections but
// never answers gives up after Timeout (node_timeout), streamed GETs and copies included: before,
// their reply headers were awaited for the whole TransferTimeout, which held a replication or fsck
// worker that long.
func TestHungNodeBoundedByTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	// The margin is generous for a loaded machine; TransferTimeout is far beyond it.
	const margin = 5 * time.Second
	u := frozenNode(t)
	c := node.New(node.Config{Timeout: timeout, TransferTimeout: time.Hour})
	t.Cleanup(c.Close)
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Size", func(ctx context.Context) error { _, err := c.Size(ctx, u); return err }},
		{"Get", func(ctx context.Context) error { _, err := c.Get(ctx, u, 10); return err }},
		{"Put", func(ctx context.Context) error { _, err := c.Put(ctx, u, []byte("x"), nil); return err }},
		{"Delete", func(ctx context.Context) error { return c.Delete(ctx, u) }},
		{"Fetch", func(ctx context.Context) error { _, _, err := c.Fetch(ctx, u, store.HashMD5); return err }},
		{"Copy", func(ctx context.Context) error {
			_, err := c.Copy(ctx, u, u+".copy", 4, store.HashNone, nil)
			return err
		}},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The context only keeps a failing test from hanging; the bound under test is Timeout.
			ctx, cancel := context.WithTimeout(context.Background(), timeout+margin)
			defer cancel()
			start := time.Now()
			err := tc.call(ctx)
			if ctx.Err() != nil {
				t.Fatalf("%s on a hung node did not give up within node_timeout %s + %s (err %v)", tc.name, timeout, margin, err)
			}
			if !node.IsTimeout(err) {
				t.Fatalf("%s on a hung node = %v, want an error IsTimeout recognises", tc.name, err)
			}
			if d := time.Since(start); d < timeout {
				t.Errorf("%s gave up after %s, before node_timeout %s: %v", tc.name, d, timeout, err)
			}
		})
	}
}
