package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/mogway/mogway/internal/clustertest"
	"github.com/mogway/mogway/tracker/client"
)

func TestDeviceSummaryAgainstCluster(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Nodes: 2, DevicesPerNode: 2})
	tr := "--trackers=" + strings.Join(c.TrackerAddrs(), ",")
	c.SetState(t, c.DevIDs(0)[1], "down")

	r := mustMog(t, "adm", tr, "device", "summary")
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%v\nwant a header and one line per host", r)
	}
	wantHeader := "Hostname        HostID  Status   used(G)  free(G) total(G)    %Used  Devices"
	if lines[0] != wantHeader {
		t.Errorf("header = %q, want %q", lines[0], wantHeader)
	}
	for i, want := range []struct{ prefix, counts string }{
		{c.HostName(0) + "              [   1]:  alive", "  alive=1 down=1"},
		{c.HostName(1) + "              [   2]:  alive", "  alive=2"},
	} {
		l := lines[i+1]
		if !strings.HasPrefix(l, want.prefix) || !strings.HasSuffix(l, want.counts) {
			t.Errorf("host line %d = %q, want prefix %q and suffix %q", i+1, l, want.prefix, want.counts)
		}
		if len(l) < len(wantHeader) || l[len(wantHeader)-len("Devices"):len(wantHeader)-len("Devices")+len(want.counts)-2] != strings.TrimPrefix(want.counts, "  ") {
			t.Errorf("host line %d = %q: counts not under the Devices column of %q", i+1, l, wantHeader)
		}
	}

	r = mog(t, "", "adm", tr, "device", "summary", "--status=,")
	if r.code != 1 || !strings.Contains(r.stderr, "--status names no state") {
		t.Errorf("%v\nwant exit 1 for an empty --status", r)
	}
	if r := mustMog(t, "adm", "device", "--help"); !strings.Contains(r.stdout, "summary [flags]") {
		t.Errorf("%v\nwant summary among the device verbs", r)
	}
}

func TestPrintDeviceSummary(t *testing.T) {
	hosts := []client.Host{
		{ID: 2, Name: "storage-b", Status: "down"},
		{ID: 1, Name: "storage-a", Status: "alive"},
		{ID: 3, Name: "empty", Status: "alive"},
	}
	devs := []client.Device{
		{ID: 1, HostID: 1, Status: "alive", MBTotal: 2048, MBUsed: 512},
		{ID: 2, HostID: 1, Status: "readonly", MBTotal: 1024, MBUsed: 1024},
		{ID: 3, HostID: 1, Status: "dead", MBTotal: 4096, MBUsed: 0},
		{ID: 4, HostID: 2, Status: "alive", MBTotal: -1, MBUsed: -1},
		{ID: 5, HostID: 2, Status: "drain", MBTotal: 1024, MBUsed: 10},
		{ID: 6, HostID: 2, Status: "odd", MBTotal: 1024, MBUsed: 10},
	}
	tests := []struct {
		show map[string]bool
		want string
	}{
		{map[string]bool{"alive": true, "readonly": true}, "" +
			"Hostname        HostID  Status   used(G)  free(G) total(G)    %Used  Devices\n" +
			"storage-a       [   1]:  alive     1.500    1.500    3.000    50.00  alive=1 readonly=1 dead=1\n" +
			"storage-b       [   2]:   down     0.000    0.000    0.000        -  alive=1 drain=1 odd=1\n" +
			"empty           [   3]:  alive     0.000    0.000    0.000        -  none\n"},
		{map[string]bool{"dead": true, "drain": true}, "" +
			"Hostname        HostID  Status   used(G)  free(G) total(G)    %Used  Devices\n" +
			"storage-a       [   1]:  alive     0.000    4.000    4.000     0.00  alive=1 readonly=1 dead=1\n" +
			"storage-b       [   2]:   down     0.010    0.990    1.000     0.98  alive=1 drain=1 odd=1\n" +
			"empty           [   3]:  alive     0.000    0.000    0.000        -  none\n"},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		printDeviceSummary(&b, hosts, devs, tt.show)
		if b.String() != tt.want {
			t.Errorf("printDeviceSummary(show %v) =\n%s\nwant\n%s", tt.show, b.String(), tt.want)
		}
	}
	if hosts[0].ID != 2 {
		t.Errorf("printDeviceSummary reordered the caller's hosts: first is %d, want 2", hosts[0].ID)
	}
}
