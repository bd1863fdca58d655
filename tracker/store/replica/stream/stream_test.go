package stream_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// A graceful stop ships the last changes (docs/tracker.md, Continuous replication): with an
// interval of one minute no periodic shipment comes between the last commits and Close, so only
// Close itself can put them on the replica. "BeforeFirstShipment" is the bug where Close shipped
// nothing when it came before the first periodic look at the WAL (a quarter of the interval after
// Start): Litestream reads the database only from its first sync on, and its Close syncs only a
// database it has read.
func TestCloseShipsLastCommits(t *testing.T) {
	for _, tc := range []struct {
		name      string
		syncFirst bool // ship the "first" commits with Sync before the last ones
	}{
		{"AfterAShipment", true},
		{"BeforeFirstShipment", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			path := filepath.Join(dir, "tracker.db")
			to := "file://" + filepath.Join(dir, "replica")
			s, err := sqlite.Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			r, err := stream.Start(ctx, path, replica.Config{To: to, Interval: conf.Duration(time.Minute)}, nil)
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			d, err := s.CreateDomain(ctx, "d")
			if err != nil {
				t.Fatal(err)
			}
			commit(t, s, d.ID, keys("first", 5)...)
			if tc.syncFirst {
				if err := r.Sync(ctx); err != nil {
					t.Fatalf("Sync: %v", err)
				}
			}
			shipped := r.Status().ReplicaTXID
			commit(t, s, d.ID, keys("last", 5)...)
			if st := r.Status(); st.ReplicaTXID != shipped {
				t.Fatalf("Status before Close = %+v; the replica moved from TXID %d without Sync, so this test cannot tell what Close ships", st, shipped)
			}
			if err := r.Close(ctx); err != nil {
				t.Fatalf("Close: %v", err)
			}
			got := restored(t, to, time.Time{})
			for _, k := range append(keys("first", 5), keys("last", 5)...) {
				if !has(t, got, d.ID, k) {
					t.Errorf("restore after Close lacks %q", k)
				}
			}
		})
	}
}

// backdate moves the modification time of every file under dir back by d. The file replica takes
// a file's creation time from it, so the history in dir looks d older, as if the tracker had
// written it and stopped d ago.
func backdate(t *testing.T, dir string, d time.Duration) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		return os.Chtimes(path, fi.ModTime().Add(-d), fi.ModTime().Add(-d))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRetention: snapshots older than the retention are removed from the replica, and those
// within it kept, so that a point-in-time restore reaches back at least that far (docs/tracker.md,
// Continuous replication). A first replicator writes a replica, with a snapshot, and stops; the
// replica's files are made older (the file replica dates a file by its modification time), as if
// it had stopped that long ago; a second one, with a retention of one hour, replicates on from the
// same database and takes a new snapshot (one a minute), which is when it prunes. Snapshots are the files of
// level 9 in the replica's layout (ltx/9/<txid>-<txid>.ltx).
func TestRetention(t *testing.T) {
	for _, tc := range []struct {
		age     time.Duration
		removed bool
	}{
		{2 * time.Hour, true},
		{30 * time.Minute, false},
	} {
		t.Run(fmt.Sprint(tc.age), func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			path := filepath.Join(dir, "tracker.db")
			replicaDir := filepath.Join(dir, "replica")
			snapDir := filepath.Join(replicaDir, "ltx", "9")
			to := "file://" + replicaDir
			cfg := replica.Config{To: to, Interval: conf.Duration(200 * time.Millisecond),
				Retention: conf.Duration(time.Hour), SnapshotInterval: conf.Duration(time.Minute)}
			s, err := sqlite.Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			d, err := s.CreateDomain(ctx, "d")
			if err != nil {
				t.Fatal(err)
			}

			r, err := stream.Start(ctx, path, cfg, nil)
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			commit(t, s, d.ID, keys("old", 5)...)
			if err := r.Sync(ctx); err != nil {
				t.Fatalf("Sync: %v", err)
			}
			// The first snapshot comes once the replicator has read the database.
			old := waitFiles(t, snapDir, nil)
			if err := r.Close(ctx); err != nil {
				t.Fatalf("Close: %v", err)
			}
			backdate(t, replicaDir, tc.age)
			then := time.Now().Add(-tc.age) // after the old commits, as the replica now dates them

			r2, err := stream.Start(ctx, path, cfg, nil)
			if err != nil {
				t.Fatalf("Start again: %v", err)
			}
			commit(t, s, d.ID, keys("new", 5)...)
			if err := r2.Sync(ctx); err != nil {
				t.Fatalf("Sync: %v", err)
			}
			// A new snapshot is due at once: the last one is older than the snapshot interval.
			// Close waits for the pruning that follows it.
			waitFiles(t, snapDir, old)
			if err := r2.Close(ctx); err != nil {
				t.Fatalf("Close: %v", err)
			}
			left := map[string]bool{}
			for _, n := range waitFiles(t, snapDir, nil) {
				left[n] = true
			}
			for _, n := range old {
				if left[n] == tc.removed {
					t.Errorf("snapshot %s, %v old with a retention of 1h: still there = %v, want %v", n, tc.age, left[n], !tc.removed)
				}
			}
			if !tc.removed {
				past := restored(t, to, then)
				if !has(t, past, d.ID, "old0") || has(t, past, d.ID, "new0") {
					t.Errorf("restore as of %v ago, within the retention: want the old commits and not the new ones", tc.age)
				}
			}
			latest := restored(t, to, time.Time{})
			for _, k := range append(keys("old", 5), keys("new", 5)...) {
				if !has(t, latest, d.ID, k) {
					t.Errorf("latest restore lacks %q", k)
				}
			}
		})
	}
}

// waitFiles waits until the directory dir holds a file not in seen, and returns the names of its
// files. A file still being written (".tmp", renamed into place when whole) is not one of them.
func waitFiles(t *testing.T, dir string, seen []string) []string {
	t.Helper()
	deadline := time.Now().Add(time.Minute) // a bound on a hang, not a performance threshold
	for {
		es, _ := os.ReadDir(dir)
		var names []string
		fresh := false
		for _, e := range es {
			if strings.HasSuffix(e.Name(), ".tmp") {
				continue
			}
			names = append(names, e.Name())
			fresh = fresh || !slices.Contains(seen, e.Name())
		}
		if fresh {
			return names
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new file in %s after a minute (it holds %v)", dir, names)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
	}
}
