package main

import (
	"slices"
	"strings"
	"testing"
)

func TestE2ETwoTrackers(t *testing.T) {
	t.Parallel()
	onEachStore(t, [4]string{"127.0.0.63", "127.0.0.64", "127.0.0.65", "127.0.0.66"}, runTwoTrackersScenario)
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

// TestE2EReplicationSurvivesTrackerRestart uploads while one node is down, so the second copy is
// still owed, restarts the tracker and then the node: the new tracker finds the queued work in the
// database and makes the copy.
func TestE2EReplicationSurvivesTrackerRestart(t *testing.T) {
	t.Parallel()
	c := startSQLiteCluster(t, [2]string{"127.0.0.75", "127.0.0.76"})
	tr := "--trackers=" + c.trackerAddr
	off := c.nodes[1]
	if code := off.d.stop(t); code != 0 {
		t.Fatalf("storaged %s stopped with exit %d", off.name, code)
	}
	if r := mog(t, "owed a copy", "upload", tr, "--domain=photos", "--class=originals", "--key=owed"); r.code != 0 {
		t.Fatalf("%v\nwant exit 0 with one node down", r)
	}
	if r := mustMog(t, "info", tr, "--domain=photos", "--key=owed"); infoField(r.stdout, "devcount") != "1" {
		t.Fatalf("%v\nwant one copy while %s is down", r, off.name)
	}
	if code := c.tracker.stop(t); code != 0 {
		t.Fatalf("tracker stopped with exit %d", code)
	}
	off.restart(t)
	c.tracker, c.trackerAddr = startE2ETracker(t, c.db, c.mgmtPort)
	tr = "--trackers=" + c.trackerAddr
	wantHosts := []string{c.nodes[0].http, c.nodes[1].http}
	slices.Sort(wantHosts)
	pollMog(t, "the owed copy to be made by the restarted tracker", func(r cliResult) bool {
		if r.code == 0 && slices.Equal(urlHosts(t, copyURLs(r.stdout)), wantHosts) && infoField(r.stdout, "devcount") == "2" {
			return true
		}
		trackerCommand(t, c.trackerAddr, "replicate_now") // retries after a failed copy are deferred
		return false
	}, "info", tr, "--domain=photos", "--key=owed")
	if code := c.nodes[0].d.stop(t); code != 0 {
		t.Fatalf("storaged %s stopped with exit %d", c.nodes[0].name, code)
	}
	if r := mustMog(t, "fetch", tr, "--domain=photos", "--key=owed"); r.stdout != "owed a copy" {
		t.Errorf("fetch from the new copy alone = %q, want %q", r.stdout, "owed a copy")
	}
}
