// Package storetest is the conformance suite every store.Store implementation passes.
//
// An implementation's test calls Run with an open function, usually built by PerTest:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { ... })
//	}
//
// open must return a Store on the database that belongs to t, creating an empty database on the
// first call for a given t and opening another Store on that same database on every later call
// with the same t (the suite uses this for re-opening and for two trackers sharing a database).
// open registers the cleanup of the database with t; the suite closes the Stores it opens.
//
// For MySQL the suite is driven by MOGWAY_TEST_MYSQL_DSN (see tracker/store/mysql): a
// go-sql-driver DSN whose database part is empty, such as "user:pass@tcp(127.0.0.1:3306)/"; the
// test creates one database mogway_test_<random> per test and drops it afterwards.
package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mogway/mogway/tracker/store"
)

// Open is the function Run is given; see the package documentation for its contract.
type Open func(t *testing.T) store.Store

// Run runs the whole suite against the Stores open returns, one subtest per area.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	o := Open(open)
	tests := []struct {
		name string
		fn   func(t *testing.T, open Open)
	}{
		{"Domains", testDomains},
		{"Classes", testClasses},
		{"Hosts", testHosts},
		{"Devices", testDevices},
		{"Tempfiles", testTempfiles},
		{"FidsNeverReused", testFidsNeverReused},
		{"FidFloorQueued", testFidFloorQueued},
		{"ExplicitFid", testExplicitFid},
		{"CommitFile", testCommitFile},
		{"DiscardUpload", testDiscardUpload},
		{"CommitReplacesKey", testCommitReplacesKey},
		{"ByteExactKeys", testByteExactKeys},
		{"LongKeys", testLongKeys},
		{"ListKeys", testListKeys},
		{"FileOps", testFileOps},
		{"FileOn", testFileOn},
		{"Locate", testLocate},
		{"LocateOtherStore", testLocateOtherStore},
		{"ConcurrentLocate", testConcurrentLocate},
		{"Checksums", testChecksums},
		{"Queues", testQueues},
		{"ClaimLease", testClaimLease},
		{"ReplicateNow", testReplicateNow},
		{"ConcurrentClaims", testConcurrentClaims},
		{"ConcurrentFids", testConcurrentFids},
		{"ConcurrentCommits", testConcurrentCommits},
		{"ConcurrentFileOn", testConcurrentFileOn},
		{"ConcurrentClose", testConcurrentClose},
		{"ConcurrentSettings", testConcurrentSettings},
		{"Locks", testLocks},
		{"FsckLog", testFsckLog},
		{"Settings", testSettings},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, o)
		})
	}
}

// PerTest returns an open function for Run that creates a database with newDB on the first call
// for a given t and remembers it, so that every call with that t opens a Store, with openDB, on
// the same database.
func PerTest(newDB func(t *testing.T) string, openDB func(t *testing.T, db string) store.Store) func(t *testing.T) store.Store {
	var mu sync.Mutex // guards dbs
	dbs := map[*testing.T]string{}
	return func(t *testing.T) store.Store {
		t.Helper()
		mu.Lock()
		db, ok := dbs[t]
		if !ok {
			db = newDB(t)
			dbs[t] = db
		}
		mu.Unlock()
		return openDB(t, db)
	}
}

// newStore opens a Store for t and closes it when the test ends.
func newStore(t *testing.T, open Open) store.Store {
	t.Helper()
	s := open(t)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// twoStores opens two Stores on the test's database, as two trackers share one, and returns them
// with the test's context.
func twoStores(t *testing.T, open Open) (context.Context, store.Store, store.Store) {
	t.Helper()
	return ctxFor(t), newStore(t, open), newStore(t, open)
}

// inParallel runs fn(i, s) for every i in [0, n) at the same time, s alternating between a and b
// (two trackers on one database), and returns when all have.
func inParallel(n int, a, b store.Store, fn func(i int, s store.Store)) {
	var wg sync.WaitGroup
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() { fn(i, s) })
	}
	wg.Wait()
}

func ctxFor(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// must fails the test on err.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// wantErr checks that err wraps want.
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s = %v, want an error wrapping %v", what, err, want)
	}
}

// domain creates a domain named name.
func domain(t *testing.T, ctx context.Context, s store.Store, name string) store.Domain {
	t.Helper()
	d, err := s.CreateDomain(ctx, name)
	must(t, "CreateDomain("+name+")", err)
	return d
}

// upload creates a tempfile and commits it as key on devs, returning its fid.
func upload(t *testing.T, ctx context.Context, s store.Store, dmid int, key string, length int64, devs ...int) int64 {
	t.Helper()
	fid, err := s.CreateTempfile(ctx, store.Tempfile{DomainID: dmid, Key: key, DevIDs: devs})
	must(t, "CreateTempfile", err)
	_, err = s.CommitFile(ctx, store.Commit{File: store.File{Fid: fid, DomainID: dmid, Key: key, Length: length}, DevIDs: devs})
	must(t, "CommitFile("+key+")", err)
	return fid
}
