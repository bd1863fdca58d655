package main

import (
	"bytes"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestE2EFsckRepairs damages copies on disk behind the tracker's back, runs fsck with `mogway adm`,
// and checks that fsck logs each problem and that the files get back to two intact copies.
func TestE2EFsckRepairs(t *testing.T) {
	t.Parallel()
	c := startE2ECluster(t, "sqlite:"+filepath.Join(t.TempDir(), "t.db"), [2]string{"127.0.0.73", "127.0.0.74"})
	tr := "--trackers=" + c.trackerAddr
	wantHosts := []string{c.nodes[0].http, c.nodes[1].http}
	slices.Sort(wantHosts)
	bodies := map[string][]byte{
		"short":   bytes.Repeat([]byte("truncated on one node "), 5000),
		"missing": bytes.Repeat([]byte("removed from one node "), 5000),
	}
	copies := map[string]string{} // key -> path on disk of its copy on node 1
	for k, body := range bodies {
		if r := mog(t, string(body), "upload", tr, "--domain=photos", "--class=originals", "--key="+k); r.code != 0 {
			t.Fatalf("%v\nwant exit 0", r)
		}
		info := pollMog(t, k+" to have two copies", func(r cliResult) bool {
			return r.code == 0 && slices.Equal(urlHosts(t, copyURLs(r.stdout)), wantHosts) && infoField(r.stdout, "devcount") == "2"
		}, "info", tr, "--domain=photos", "--key="+k)
		for _, s := range copyURLs(info.stdout) {
			if u, _ := url.Parse(s); u.Host == c.nodes[0].http {
				copies[k] = filepath.Join(c.nodes[0].docroot, filepath.FromSlash(u.Path))
			}
		}
	}
	if err := os.Truncate(copies["short"], 100); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(copies["missing"]); err != nil {
		t.Fatal(err)
	}

	mustMog(t, "adm", tr, "fsck", "reset")
	mustMog(t, "adm", tr, "fsck", "start")
	pollMog(t, "fsck to finish", func(r cliResult) bool {
		return r.code == 0 && strings.Contains(r.stdout, "Running: No") && regexp.MustCompile(`Status: (\d+) / (\d+) \(100\.00%\)`).MatchString(r.stdout)
	}, "adm", tr, "fsck", "status")
	log := mustMog(t, "adm", tr, "fsck", "printlog")
	for _, ev := range []string{"BLEN", "MISS", "REPL"} {
		if !strings.Contains(log.stdout, ev) {
			t.Errorf("%v\nwant a %s event", log, ev)
		}
	}

	// Replication puts the damaged copies back.
	for k, body := range bodies {
		pollMog(t, k+" to have two intact copies again", func(r cliResult) bool {
			if r.code != 0 || !slices.Equal(urlHosts(t, copyURLs(r.stdout)), wantHosts) || infoField(r.stdout, "devcount") != "2" {
				return false
			}
			for _, s := range copyURLs(r.stdout) {
				code, got := httpDo(t, "GET", s, nil, nil)
				if code != 200 || !bytes.Equal(got, body) {
					return false
				}
			}
			return true
		}, "info", tr, "--domain=photos", "--key="+k)
		if r := mustMog(t, "fetch", tr, "--domain=photos", "--key="+k); r.stdout != string(body) {
			t.Errorf("fetch %s after fsck: %d bytes, want the %d uploaded", k, len(r.stdout), len(body))
		}
	}
}
