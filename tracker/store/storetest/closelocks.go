package storetest

import (
	"context"
	"testing"

	"github.com/mogway/mogway/tracker/store"
)

// CloseReleasesLocks checks that closing a Store ends the sessions holding its locks: a lock the
// closed Store held can be taken at once through another. open must return a new Store on one
// and the same database on every call.
func CloseReleasesLocks(t *testing.T, open func(context.Context) (store.Store, error)) {
	t.Helper()
	ctx := context.Background()
	a, err := open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Lock(ctx, "mgfs:fsck", 0); err != nil {
		t.Fatalf("Lock: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	b, err := open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	unlock, err := b.Lock(ctx, "mgfs:fsck", 0)
	if err != nil {
		t.Fatalf("Lock after the holder's store was closed: %v", err)
	}
	unlock()
}
