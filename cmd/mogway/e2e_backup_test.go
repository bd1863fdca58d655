package main

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mogway/mogway/tracker/store/sqlite"
	"github.com/mogway/mogway/tracker/store/storetest"
)

// TestE2EBackupUnderUploads runs `mogway tracker backup` against the database of a serving tracker
// during a stream of `mogway upload`s, restores the backup with `mogway tracker restore`, and
// checks the result: the store invariants hold, and a tracker started on it serves every upload
// acknowledged before the backup started, byte for byte.
func TestE2EBackupUnderUploads(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "tracker.db")
	c := startE2ECluster(t, db, [2]string{"127.0.0.95", "127.0.0.96"})
	stream := startUploads(t, "--trackers="+c.trackerAddr)
	stream.waitFor(t, "20 acknowledged uploads", func(us []upload) bool { return len(us) >= 20 })

	before := stream.snapshot()
	out := filepath.Join(dir, "backup.db")
	r := mustMog(t, "tracker", "backup", "--db", db, "--out", out)
	during := len(stream.snapshot()) - len(before)
	uploads := stream.end()
	if !regexp.MustCompile(`(?m)^backup: .* integrity_check ok`).MatchString(r.stdout) || !regexp.MustCompile(`(?m)^file +\d+$`).MatchString(r.stdout) {
		t.Errorf("%v\nwant the integrity check and the row count of file", r)
	}
	if again := mog(t, "", "tracker", "backup", "--db", db, "--out", out); again.code != 1 {
		t.Errorf("%v\nwant exit 1 for an existing --out", again)
	}

	restored := filepath.Join(dir, "restored.db")
	mustMog(t, "tracker", "restore", "--from", out, "--db", "sqlite:"+restored)
	if again := mog(t, "", "tracker", "restore", "--from", out, "--db", "sqlite:"+restored); again.code != 1 {
		t.Errorf("%v\nwant exit 1 for a target that holds a namespace", again)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	s, err := sqlite.Open(ctx, restored)
	if err != nil {
		t.Fatal(err)
	}
	if err := storetest.Invariants(ctx, s); err != nil {
		t.Errorf("the restored database breaks an invariant: %v", err)
	}
	s.Close()

	_, addr := startE2ETracker(t, "sqlite:"+restored, c.mgmtPort)
	tr := "--trackers=" + addr
	acked := 0
	for _, u := range before {
		if !u.acked.IsZero() {
			acked++
			checkStored(t, tr, u, "acknowledged before the backup")
		}
	}
	if acked == 0 {
		t.Fatal("no upload was acknowledged before the backup")
	}
	t.Logf("%d uploads acknowledged before the backup, all restored; %d ended during it; %d in all",
		acked, during, len(uploads))
}

func TestTrackerBackupRestoreUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		want string // in stdout+stderr
	}{
		{[]string{"tracker", "backup", "--help"}, 0, "-out file"},
		{[]string{"tracker", "restore", "--help"}, 0, "-timestamp time"},
		{[]string{"tracker", "backup", "--db", "sqlite:" + dir + "/t.db"}, 2, "--db and --out are required"},
		{[]string{"tracker", "restore", "--from", dir + "/b.db"}, 2, "--from and --db are required"},
		{[]string{"tracker", "restore", "--from", dir + "/b.db", "--db", "sqlite:" + dir + "/t.db", "--timestamp", "2026-01-02T15:04:05Z"}, 2, "needs a replica URL"},
		{[]string{"tracker", "restore", "--from", "file://" + dir, "--db", "sqlite:" + dir + "/t.db", "--timestamp", "yesterday"}, 2, "want RFC 3339"},
		{[]string{"tracker", "restore", "--from", dir + "/missing.db", "--db", "sqlite:" + dir + "/t.db"}, 1, "no such file"},
		{[]string{"tracker", "backup", "--db", "sqlite:" + dir + "/missing.db", "--out", dir + "/b.db"}, 1, "no such file"},
	} {
		r := mog(t, "", tc.args...)
		if r.code != tc.code || !strings.Contains(r.stdout+r.stderr, tc.want) {
			t.Errorf("%v\nwant exit %d and %q", r, tc.code, tc.want)
		}
	}
}
