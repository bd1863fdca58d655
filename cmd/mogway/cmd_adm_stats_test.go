package main

import (
	"strings"
	"testing"

	"github.com/mogway/mogway/internal/clustertest"
	"github.com/mogway/mogway/internal/testutil"
)

// TestStatsReportsSilentTracker: a tracker that does not answer makes adm stats exit 1 with a line
// that names the stats failure, not adm check's "some checks failed", while the answering tracker
// still prints.
func TestStatsReportsSilentTracker(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{})
	ln := testutil.Listen(t, "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()
	live := c.TrackerAddrs()[0]

	r := mog(t, "", "adm", "--trackers="+live+","+closed, "stats")
	if r.code != 1 {
		t.Fatalf("%v\nwant exit 1", r)
	}
	if !strings.HasPrefix(r.stdout, live+"\n") {
		t.Errorf("%v\nwant the answering tracker's lines under %s", r, live)
	}
	if !strings.Contains(r.stderr, "1 of 2 trackers did not answer") || strings.Contains(r.stderr, "checks failed") {
		t.Errorf("%v\nwant the exit reason %q", r, "1 of 2 trackers did not answer")
	}
}
