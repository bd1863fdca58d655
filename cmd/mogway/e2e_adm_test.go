package main

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mogway/mogway/internal/clustertest"
)

// TestE2EAdminStates drives device and host states and the refusals of `mogway adm` against a real
// tracker and storage nodes.
func TestE2EAdminStates(t *testing.T) {
	t.Parallel()
	c := startSQLiteCluster(t, [2]string{"127.0.0.67", "127.0.0.68"})
	tr := "--trackers=" + c.trackerAddr
	mustMog(t, "adm", tr, "class", "add", "photos", "single", "--mindevcount=1")
	if r := mog(t, "two copies", "upload", tr, "--domain=photos", "--class=originals", "--key=both"); r.code != 0 {
		t.Fatalf("%v\nwant exit 0", r)
	}
	pollMog(t, "both copies", func(r cliResult) bool {
		return r.code == 0 && infoField(r.stdout, "devids") == "1,2" && infoField(r.stdout, "devcount") == "2"
	}, "info", tr, "--domain=photos", "--key=both")

	// A readonly device keeps serving but gets no new files.
	mustMog(t, "adm", tr, "device", "mark", "store1", "1", "readonly")
	if r := mustMog(t, "adm", tr, "device", "list"); !strings.Contains(r.stdout, "dev1: readonly") {
		t.Errorf("%v\nwant dev1 readonly", r)
	}
	for i := range 6 {
		key := "single/" + string(rune('a'+i))
		if r := mog(t, key, "upload", tr, "--domain=photos", "--class=single", "--key="+key); r.code != 0 {
			t.Fatalf("%v\nwant exit 0", r)
		}
		if r := mustMog(t, "info", tr, "--domain=photos", "--key="+key); infoField(r.stdout, "devids") != "2" {
			t.Errorf("%v\nwant the copy on dev2 only: dev1 is readonly", r)
		}
	}
	if r := mustMog(t, "fetch", tr, "--domain=photos", "--key=both"); r.stdout != "two copies" {
		t.Errorf("fetch with dev1 readonly = %q", r.stdout)
	}
	mustMog(t, "adm", tr, "device", "mark", "store1", "1", "alive")

	// A host marked down is skipped by fetch; its copies come back when it is alive again.
	mustMog(t, "adm", tr, "host", "mark", "store2", "down")
	if r := mustMog(t, "adm", tr, "host", "list"); !strings.Contains(r.stdout, "store2 [2]: down") {
		t.Errorf("%v\nwant store2 down", r)
	}
	if r := mustMog(t, "fetch", tr, "--domain=photos", "--key=both"); r.stdout != "two copies" {
		t.Errorf("fetch with store2 down = %q", r.stdout)
	}
	mustMog(t, "adm", tr, "host", "mark", "store2", "alive")
	if r := mustMog(t, "fetch", tr, "--domain=photos", "--key=single/a"); r.stdout != "single/a" {
		t.Errorf("fetch from store2 after it is alive again = %q", r.stdout)
	}

	// store1 moves to another port: after `host modify` the copies are read there.
	n1 := c.nodes[0]
	if code := n1.d.stop(t); code != 0 {
		t.Fatalf("storaged %s stopped with exit %d", n1.name, code)
	}
	n1.http = freeAddr(t, n1.ip)
	n1.restart(t)
	_, newPort, _ := net.SplitHostPort(n1.http)
	mustMog(t, "adm", tr, "host", "modify", "store1", "--port="+newPort)
	if r := mustMog(t, "adm", tr, "host", "list"); !strings.Contains(r.stdout, n1.http) {
		t.Errorf("%v\nwant store1 at %s", r, n1.http)
	}
	// The monitor found dev1 unreachable while store1 was down; it is listed again once probed.
	pollMog(t, "info to list the dev1 copy at store1's new port", func(r cliResult) bool {
		return r.code == 0 && strings.Contains(r.stdout, " - http://"+n1.http+"/dev1/")
	}, "info", tr, "--domain=photos", "--key=both")
	if code := c.nodes[1].d.stop(t); code != 0 {
		t.Fatalf("storaged store2 stopped with exit %d", code)
	}
	if r := mustMog(t, "fetch", tr, "--domain=photos", "--key=both"); r.stdout != "two copies" {
		t.Errorf("fetch from store1 on its new port = %q", r.stdout)
	}
	c.nodes[1].restart(t)
	pollMog(t, "both devices writeable again", func(r cliResult) bool {
		return r.code == 0 && strings.Count(r.stdout, " writeable ") == 2
	}, "adm", tr, "check")

	// Refusals: exit 1 with the tracker's reason.
	mustMog(t, "adm", tr, "domain", "add", "classy")
	mustMog(t, "adm", tr, "class", "add", "classy", "c", "--mindevcount=1")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"host", "delete", "store1"}, "host_not_empty"},
		{[]string{"domain", "delete", "photos"}, "domain_has_files"},
		{[]string{"class", "delete", "photos", "originals"}, "class_has_files"},
		{[]string{"domain", "delete", "classy"}, "domain_has_classes"},
		{[]string{"class", "delete", "photos", "default"}, "nodel_default_class"},
		{[]string{"domain", "add", "photos"}, "domain_exists"},
		{[]string{"device", "add", "store1", "2"}, "existing_devid"},
		{[]string{"class", "add", "nope", "c", "--mindevcount=2"}, "domain_not_found"},
		{[]string{"device", "mark", "store2", "1", "down"}, "host_mismatch"},
		{[]string{"settings", "set", "no_such_setting", "1"}, "not_writable"},
	} {
		r := mog(t, "", append([]string{"adm", tr}, tt.args...)...)
		if r.code != 1 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("%v\nwant exit 1 and %q", r, tt.want)
		}
	}

	// A second device on store2; then dev2 dies and the reaper re-replicates its copies there. The
	// node writes dev3's usage file at its next usage_interval, so the device takes up to 10s to
	// become writeable.
	if err := os.Mkdir(filepath.Join(c.nodes[1].docroot, "dev3"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustMog(t, "adm", tr, "device", "add", "store2", "3")
	pollMog(t, "dev3 to be writeable", func(r cliResult) bool {
		return regexp.MustCompile(`(?m)^  \[ *\d+\] dev3 .* writeable `).MatchString(r.stdout)
	}, "adm", tr, "check")
	mustMog(t, "adm", tr, "device", "mark", "store2", "2", "dead")
	pollMog(t, "the copy on the dead dev2 to be replaced by one on dev3", func(r cliResult) bool {
		return r.code == 0 && infoField(r.stdout, "devids") == "1,3" && infoField(r.stdout, "devcount") == "2"
	}, "info", tr, "--domain=photos", "--key=both")
	if r := mustMog(t, "fetch", tr, "--domain=photos", "--key=both"); r.stdout != "two copies" {
		t.Errorf("fetch after dev2 died = %q", r.stdout)
	}

	// dead is final: the device cannot come back.
	if r := mog(t, "", "adm", tr, "device", "mark", "store2", "2", "alive"); r.code != 1 || !strings.Contains(r.stderr, "state_too_high") {
		t.Errorf("%v\nwant exit 1 and state_too_high", r)
	}
	if r := mustMog(t, "adm", tr, "device", "list"); strings.Contains(r.stdout, "dev2:") {
		t.Errorf("%v\nwant the dead dev2 left out without --all", r)
	}
	if r := mustMog(t, "adm", tr, "device", "list", "--all"); !strings.Contains(r.stdout, "dev2: dead") {
		t.Errorf("%v\nwant dev2 dead with --all", r)
	}
}

// TestE2EClassModifyResetsMinDevCount: as with mogadm (`$args->{mindevcount} ||= 2` in
// cmd_class_modify), `adm class modify` without --mindevcount sets the class's mindevcount back to
// 2 while it changes another field (docs/cli.md, adm class).
func TestE2EClassModifyResetsMinDevCount(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Domains: map[string]map[string]int{"photos": {}}})
	tr := "--trackers=" + c.TrackerAddrs()[0]
	// classRow returns the class list row of photos/thumbs as its fields: domain, class,
	// mindevcount, replpolicy, hashtype.
	classRow := func() string {
		t.Helper()
		r := mustMog(t, "adm", tr, "class", "list")
		return strings.Join(strings.Fields(regexp.MustCompile(`(?m)^ photos +thumbs .*$`).FindString(r.stdout)), " ")
	}
	for _, step := range []struct {
		args []string
		want string
	}{
		{[]string{"add", "--mindevcount=3", "--replpolicy=MultipleHosts(3)"}, "photos thumbs 3 MultipleHosts(3) NONE"},
		{[]string{"modify", "--hashtype=MD5"}, "photos thumbs 2 MultipleHosts(3) MD5"}, // mindevcount back to 2
		{[]string{"modify", "--mindevcount=4"}, "photos thumbs 4 MultipleHosts(3) MD5"},
	} {
		mustMog(t, append([]string{"adm", tr, "class", step.args[0], "photos", "thumbs"}, step.args[1:]...)...)
		if got := classRow(); got != step.want {
			t.Errorf("after adm class %s: class list row %q, want %q", strings.Join(step.args, " "), got, step.want)
		}
	}
}

// TestE2EHostAddResolvesName: docs/cli.md, `adm host add` without --ip resolves the host name, to
// an IPv4 address as mogadm does; the tracker then lists the host at that address with the default
// port and status.
func TestE2EHostAddResolvesName(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{})
	tr := "--trackers=" + c.TrackerAddrs()[0]
	mustMog(t, "adm", tr, "host", "add", "localhost")
	r := mustMog(t, "adm", tr, "host", "list")
	if !regexp.MustCompile(`(?m)^localhost \[\d+\]: down\n  IP:       127\.0\.0\.1:7500\n`).MatchString(r.stdout) {
		t.Errorf("%v\nwant the host localhost down at 127.0.0.1:7500", r)
	}
}

// TestFirstIPv4: host add takes the first IPv4 address the name resolves to, even when the resolver
// lists an IPv6 one first, and none when there is no IPv4 address.
func TestFirstIPv4(t *testing.T) {
	for _, tt := range []struct {
		addrs []string
		want  string
	}{
		{[]string{"127.0.0.1"}, "127.0.0.1"},
		{[]string{"::1", "127.0.0.1"}, "127.0.0.1"},
		{[]string{"2001:db8::5", "10.0.0.5", "10.0.0.6"}, "10.0.0.5"},
		{[]string{"::1"}, ""},
		{nil, ""},
	} {
		if got := firstIPv4(tt.addrs); got != tt.want {
			t.Errorf("firstIPv4(%q) = %q, want %q", tt.addrs, got, tt.want)
		}
	}
}
