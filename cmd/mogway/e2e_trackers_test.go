package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/mogway/mogway/internal/clustertest"
)

func TestE2ETwoTrackersSQLite(t *testing.T) {
	t.Parallel()
	runTwoTrackersScenario(t, "sqlite:"+filepath.Join(t.TempDir(), "t.db"), [2]string{"127.0.0.63", "127.0.0.64"})
}

func TestE2ETwoTrackersMariaDB(t *testing.T) {
	t.Parallel()
	db := "mysql://" + clustertest.MySQLDSN(t) // skips when MOGWAY_TEST_MYSQL_DSN is unset
	runTwoTrackersScenario(t, db, [2]string{"127.0.0.65", "127.0.0.66"})
}

// runTwoTrackersScenario runs a second tracker on the same database: what one tracker stores the
// other serves, and the tools keep working through the survivor when one tracker stops.
func runTwoTrackersScenario(t *testing.T, db string, ips [2]string) {
	c := startE2ECluster(t, db, ips)
	second, secondAddr := startE2ETracker(t, db, c.mgmtPort)
	a, b := "--trackers="+c.trackerAddr, "--trackers="+secondAddr
	both := "--trackers=" + c.trackerAddr + "," + secondAddr

	if r := mog(t, "stored through the second tracker", "upload", b, "--domain=photos", "--class=originals", "--key=via/b"); r.code != 0 {
		t.Fatalf("%v\nwant exit 0", r)
	}
	if r := mustMog(t, "fetch", a, "--domain=photos", "--key=via/b"); r.stdout != "stored through the second tracker" {
		t.Errorf("fetch through the first tracker = %q", r.stdout)
	}
	// An admin change through one tracker is seen by the other within its refresh_interval.
	mustMog(t, "adm", b, "domain", "add", "docs")
	pollMog(t, "the first tracker to see the domain made through the second", func(r cliResult) bool {
		return r.code == 0 && strings.Contains(r.stdout, " docs ")
	}, "adm", a, "domain", "list")

	if code := c.tracker.stop(t); code != 0 {
		t.Fatalf("first tracker stopped with exit %d; log:\n%s", code, c.tracker.stderr.String())
	}
	if r := mustMog(t, "fetch", both, "--domain=photos", "--key=via/b"); r.stdout != "stored through the second tracker" {
		t.Errorf("fetch with the first tracker down = %q", r.stdout)
	}
	if r := mog(t, "after the first tracker stopped", "upload", both, "--domain=docs", "--key=after"); r.code != 0 {
		t.Errorf("%v\nwant exit 0 with one tracker of two down", r)
	}
	if r := mustMog(t, "ls", both, "--domain=docs"); r.stdout != "after\n" {
		t.Errorf("ls with the first tracker down = %q, want %q", r.stdout, "after\n")
	}
	if code := second.stop(t); code != 0 {
		t.Errorf("second tracker stopped with exit %d; log:\n%s", code, second.stderr.String())
	}
	if r := mog(t, "", "ls", both, "--domain=docs"); r.code != 1 || !strings.Contains(r.stderr, "--trackers") {
		t.Errorf("%v\nwant exit 1 and a hint about --trackers with every tracker down", r)
	}
}
