package stream_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/tracker/store"
	"github.com/mogway/mogway/tracker/store/replica"
	"github.com/mogway/mogway/tracker/store/replica/stream"
	"github.com/mogway/mogway/tracker/store/sqlite"
	"github.com/mogway/mogway/tracker/store/storetest"
)

func commit(t *testing.T, s store.Store, dmid int, keys ...string) {
	t.Helper()
	ctx := context.Background()
	for _, key := range keys {
		fid, err := s.CreateTempfile(ctx, store.Tempfile{DomainID: dmid, Key: key, DevIDs: []int{1}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CommitFile(ctx, store.Commit{File: store.File{Fid: fid, DomainID: dmid, Key: key}, DevIDs: []int{1}}); err != nil {
			t.Fatal(err)
		}
	}
}

func keys(prefix string, n int) []string {
	var ks []string
	for i := range n {
		ks = append(ks, fmt.Sprintf("%s%d", prefix, i))
	}
	return ks
}

// restored opens the database restored from the replica at to as of at.
func restored(t *testing.T, to string, at time.Time) store.Store {
	t.Helper()
	out := filepath.Join(t.TempDir(), "restored.db")
	if err := stream.Restore(context.Background(), to, out, at, nil); err != nil {
		t.Fatalf("Restore(%s, %v): %v", to, at, err)
	}
	s, err := sqlite.Open(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	storetest.CheckInvariants(t, s)
	return s
}

func has(t *testing.T, s store.Store, dmid int, key string) bool {
	t.Helper()
	_, err := s.FileByKey(context.Background(), dmid, key)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// TestReplicateAndRestore replicates a live database, then restores the latest state and a point
// in time between two batches of commits.
func TestReplicateAndRestore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "tracker.db")
	to := "file://" + filepath.Join(dir, "replica")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := stream.Start(ctx, path, replica.Config{To: to, Interval: conf.Duration(200 * time.Millisecond)}, nil)
	if err != nil {
		s.Close()
		t.Fatalf("Start: %v", err)
	}
	d, err := s.CreateDomain(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	commit(t, s, d.ID, keys("a", 20)...)
	if err := r.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	st := r.Status()
	if st.ReplicaTXID == 0 || st.ReplicaTXID != st.LocalTXID || st.LastSync.IsZero() || st.Lag(time.Now()) != 0 {
		t.Errorf("Status after Sync = %+v, want the replica at the local TXID", st)
	}
	// The next batch is committed strictly after "between" (LTX times have millisecond resolution).
	between := time.Now()
	for !time.Now().Truncate(time.Millisecond).After(between) {
	}
	commit(t, s, d.ID, keys("b", 20)...)
	if err := r.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}

	latest := restored(t, to, time.Time{})
	for _, k := range append(keys("a", 20), keys("b", 20)...) {
		if !has(t, latest, d.ID, k) {
			t.Errorf("latest restore lacks %q", k)
		}
	}
	past := restored(t, to, between)
	for _, k := range keys("a", 20) {
		if !has(t, past, d.ID, k) {
			t.Errorf("restore as of between lacks %q", k)
		}
	}
	for _, k := range keys("b", 20) {
		if has(t, past, d.ID, k) {
			t.Errorf("restore as of between has %q, committed after it", k)
		}
	}
	oldest, newest, err := stream.Bounds(ctx, to)
	if err != nil || oldest.IsZero() || newest.Before(between) {
		t.Errorf("Bounds = %v, %v, %v; want a range reaching past %v", oldest, newest, err, between)
	}

	// Going back in time and replicating on to the same replica: the replica's next state is the
	// restored database plus the new commits, without the batch the restore went back before.
	r.Close(ctx)
	s.Close()
	back := filepath.Join(t.TempDir(), "back.db")
	if err := stream.Restore(ctx, to, back, between, nil); err != nil {
		t.Fatal(err)
	}
	s2, err := sqlite.Open(ctx, back)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	r2, err := stream.Start(ctx, back, replica.Config{To: to, Interval: conf.Duration(200 * time.Millisecond)}, nil)
	if err != nil {
		t.Fatalf("Start on the restored database: %v", err)
	}
	defer r2.Close(ctx)
	commit(t, s2, d.ID, keys("c", 5)...)
	if err := r2.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	after := restored(t, to, time.Time{})
	for _, k := range append(keys("a", 20), keys("c", 5)...) {
		if !has(t, after, d.ID, k) {
			t.Errorf("restore after going back lacks %q", k)
		}
	}
	for _, k := range keys("b", 20) {
		if has(t, after, d.ID, k) {
			t.Errorf("restore after going back has %q, which the database went back before", k)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  replica.Config
		want bool
	}{
		{replica.Config{}, true},
		{replica.Config{To: "file:///var/backups/mogway"}, true},
		{replica.Config{To: "file://localhost/var/backups/mogway"}, true},
		{replica.Config{To: "file://var/backups"}, false},
		{replica.Config{To: "file:relative"}, false},
		{replica.Config{To: "s3://bucket/path"}, false},
		{replica.Config{To: "/var/backups"}, false},
		{replica.Config{To: "file:///x", Interval: conf.Duration(time.Millisecond)}, false},
		{replica.Config{To: "file:///x", Retention: conf.Duration(time.Second)}, false},
		{replica.Config{To: "file:///x", SnapshotInterval: conf.Duration(time.Second)}, false},
	} {
		if err := tc.cfg.Validate(); (err == nil) != tc.want {
			t.Errorf("Validate(%+v) = %v, want ok=%v", tc.cfg, err, tc.want)
		}
	}
}

func TestRestoreRefusesExistingOutput(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "x.db")
	s, err := sqlite.Open(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := stream.Restore(context.Background(), "file://"+dir, out, time.Time{}, nil); err == nil {
		t.Fatal("Restore onto an existing file succeeded")
	}
}
