package storetest

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mogway/mogway/tracker/store"
)

// testLocate checks that Locate reads what FileByKey and FileOn read, and that every write that
// changes a key's file or a fid's copies shows in the next Locate through the same Store, with
// the key located (and so possibly cached) just before the write.
func testLocate(t *testing.T, open Open) {
	ctx := ctxFor(t)
	s := newStore(t, open)
	d := domain(t, ctx, s, "d")
	want := func(key string, loc store.Location) { t.Helper(); locatedTwice(t, ctx, s, d.ID, key, loc) }
	gone := func(key string) { t.Helper(); notLocated(t, ctx, s, d.ID, key) }

	fid := upload(t, ctx, s, d.ID, "k", 42, 2, 1)
	want("k", store.Location{Fid: fid, Length: 42, DevIDs: []int{1, 2}})
	must(t, "AddFileOn", s.AddFileOn(ctx, fid, 3))
	want("k", store.Location{Fid: fid, Length: 42, DevIDs: []int{1, 2, 3}})
	must(t, "RemoveFileOn", s.RemoveFileOn(ctx, fid, 1))
	want("k", store.Location{Fid: fid, Length: 42, DevIDs: []int{2, 3}})
	must(t, "SetFileClass", s.SetFileClass(ctx, fid, 0))
	want("k", store.Location{Fid: fid, Length: 42, DevIDs: []int{2, 3}})

	must(t, "RenameFile", s.RenameFile(ctx, d.ID, "k", "k2"))
	gone("k")
	want("k2", store.Location{Fid: fid, Length: 42, DevIDs: []int{2, 3}})

	newer := upload(t, ctx, s, d.ID, "k2", 7, 4)
	want("k2", store.Location{Fid: newer, Length: 7, DevIDs: []int{4}})
	_, err := s.DeleteFile(ctx, d.ID, "k2")
	must(t, "DeleteFile", err)
	gone("k2")

	// A key whose copies are all gone is still located, with no devices.
	bare := upload(t, ctx, s, d.ID, "bare", 1, 5)
	want("bare", store.Location{Fid: bare, Length: 1, DevIDs: []int{5}})
	must(t, "ForgetFid", s.ForgetFid(ctx, bare))
	want("bare", store.Location{Fid: bare, Length: 1})

	// A key is found in its own domain only, byte for byte.
	other := domain(t, ctx, s, "other")
	_, err = s.Locate(ctx, other.ID, "bare")
	wantErr(t, "Locate(other domain)", err, store.ErrNotFound)
	gone("BARE")
	gone(strings.Repeat("x", store.MaxKeyLen+1))
	// A not-found answer is not remembered.
	gone("later")
	later := upload(t, ctx, s, d.ID, "later", 3, 6)
	want("later", store.Location{Fid: later, Length: 3, DevIDs: []int{6}})
}

// testLocateOtherStore: a change to a key made through another Store on the database (another
// tracker) shows in the next Locate of a Store that has just located (and so possibly cached)
// the key: copies added and removed, a rename, an overwrite, a delete, a forgotten fid. Between
// them, the first Store writes too (its own writes must not hide the other's), and a write of the
// other Store that changes no file (a queue row) must not hide a later one that does.
func testLocateOtherStore(t *testing.T, open Open) {
	ctx := ctxFor(t)
	a, b := newStore(t, open), newStore(t, open)
	d := domain(t, ctx, a, "d")
	fid := upload(t, ctx, a, d.ID, "k", 1, 1)
	mine := upload(t, ctx, a, d.ID, "mine", 1, 1)
	located := func(key string, want store.Location) { t.Helper(); locatedTwice(t, ctx, a, d.ID, key, want) }
	gone := func(key string) { t.Helper(); notLocated(t, ctx, a, d.ID, key) }
	located("k", store.Location{Fid: fid, Length: 1, DevIDs: []int{1}})
	located("mine", store.Location{Fid: mine, Length: 1, DevIDs: []int{1}})

	must(t, "AddFileOn through the other Store", b.AddFileOn(ctx, fid, 2))
	located("k", store.Location{Fid: fid, Length: 1, DevIDs: []int{1, 2}})

	// The other Store's change, then one of this Store's own before any Locate.
	must(t, "AddFileOn through the other Store", b.AddFileOn(ctx, fid, 3))
	must(t, "AddFileOn", a.AddFileOn(ctx, mine, 2))
	located("k", store.Location{Fid: fid, Length: 1, DevIDs: []int{1, 2, 3}})
	located("mine", store.Location{Fid: mine, Length: 1, DevIDs: []int{1, 2}})

	// A commit that changes no file, seen by a Locate, then one that does.
	must(t, "Enqueue through the other Store", b.Enqueue(ctx, store.QueueReplicate, store.Job{Fid: fid}))
	located("k", store.Location{Fid: fid, Length: 1, DevIDs: []int{1, 2, 3}})
	must(t, "RemoveFileOn through the other Store", b.RemoveFileOn(ctx, fid, 1))
	located("k", store.Location{Fid: fid, Length: 1, DevIDs: []int{2, 3}})

	must(t, "RenameFile through the other Store", b.RenameFile(ctx, d.ID, "k", "k2"))
	gone("k")
	located("k2", store.Location{Fid: fid, Length: 1, DevIDs: []int{2, 3}})

	newer := upload(t, ctx, b, d.ID, "k2", 7, 4)
	located("k2", store.Location{Fid: newer, Length: 7, DevIDs: []int{4}})
	must(t, "ForgetFid through the other Store", b.ForgetFid(ctx, newer))
	located("k2", store.Location{Fid: newer, Length: 7})
	_, err := b.DeleteFile(ctx, d.ID, "k2")
	must(t, "DeleteFile through the other Store", err)
	gone("k2")
	located("mine", store.Location{Fid: mine, Length: 1, DevIDs: []int{1, 2}})
}

// testConcurrentLocate races Locate calls against changes to a fid's copies: once the changes
// are done, Locate must show the last of them (a reader that read before a change must not leave
// its older answer behind in a cache).
func testConcurrentLocate(t *testing.T, open Open) {
	ctx := ctxFor(t)
	s := newStore(t, open)
	d := domain(t, ctx, s, "d")
	fid := upload(t, ctx, s, d.ID, "k", 1, 1)
	var done atomic.Bool
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !done.Load() {
				if _, err := s.Locate(ctx, d.ID, "k"); err != nil {
					t.Errorf("Locate: %v", err)
					return
				}
			}
		})
	}
	for i := range 100 {
		dev := 2 + i%3
		must(t, "AddFileOn", s.AddFileOn(ctx, fid, dev))
		must(t, "RemoveFileOn", s.RemoveFileOn(ctx, fid, dev))
	}
	must(t, "AddFileOn", s.AddFileOn(ctx, fid, 9))
	done.Store(true)
	wg.Wait()
	checkLocated(t, ctx, s, d.ID, "k", []int{1, 9})
}

func checkLocated(t *testing.T, ctx context.Context, s store.Store, dmid int, key string, devs []int) {
	t.Helper()
	got, err := s.Locate(ctx, dmid, key)
	must(t, "Locate", err)
	if !reflect.DeepEqual(got.DevIDs, devs) {
		t.Fatalf("Locate(%q).DevIDs = %v, want %v", key, got.DevIDs, devs)
	}
}

// locatedTwice checks that s locates key as want, twice: the second read may come from a cache.
func locatedTwice(t *testing.T, ctx context.Context, s store.Store, dmid int, key string, want store.Location) {
	t.Helper()
	for range 2 {
		got, err := s.Locate(ctx, dmid, key)
		must(t, "Locate("+key+")", err)
		if got.Fid != want.Fid || got.Length != want.Length || !reflect.DeepEqual(got.DevIDs, want.DevIDs) {
			t.Fatalf("Locate(%q) = %+v, want %+v", key, got, want)
		}
	}
}

// notLocated checks that s does not find key.
func notLocated(t *testing.T, ctx context.Context, s store.Store, dmid int, key string) {
	t.Helper()
	_, err := s.Locate(ctx, dmid, key)
	wantErr(t, "Locate("+key+")", err, store.ErrNotFound)
}
