package storaged

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var usageLine = regexp.MustCompile(`^(\w+):\s*(.+)$`) // the tracker monitor's reading

// parseUsage reads a usage body as the tracker does, checking the key order.
func parseUsage(t *testing.T, body string) map[string]string {
	t.Helper()
	if !strings.HasSuffix(body, "\n") {
		t.Fatalf("usage %q does not end in LF", body)
	}
	m := map[string]string{}
	var keys []string
	for _, l := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		sub := usageLine.FindStringSubmatch(l)
		if sub == nil {
			t.Fatalf("usage line %q is not key: value", l)
		}
		m[sub[1]] = sub[2]
		keys = append(keys, sub[1])
	}
	want := "available device disk time total use used"
	if got := strings.Join(keys, " "); got != want {
		t.Fatalf("usage keys = %q, want %q", got, want)
	}
	return m
}

// Spec 8.6 #82.
func TestUsageFile(t *testing.T) {
	t.Parallel()
	n := startNode(t, func(c *Config) { c.UsageInterval = conf1s })
	resp, body := n.get(t, http.MethodGet, "/dev2/usage", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /dev2/usage = %d, want 200", resp.StatusCode)
	}
	m := parseUsage(t, body)
	num := func(k string) int64 {
		v, err := strconv.ParseInt(m[k], 10, 64)
		if err != nil {
			t.Fatalf("usage %s = %q, not an integer", k, m[k])
		}
		return v
	}
	if num("used") <= 0 || num("total") <= 0 || num("total") != num("used")+num("available") {
		t.Errorf("usage used=%s available=%s total=%s: want used>0 and total=used+available", m["used"], m["available"], m["total"])
	}
	if !regexp.MustCompile(`^\d+%$`).MatchString(m["use"]) {
		t.Errorf("usage use = %q, want a percentage", m["use"])
	}
	if m["device"] == "" {
		t.Errorf("usage device is empty")
	}
	if want := filepath.Join(n.docroot, "dev2"); m["disk"] != want && !strings.HasSuffix(m["disk"], "dev2") {
		t.Errorf("usage disk = %q, want %q", m["disk"], want)
	}
	first := num("time")
	if d := time.Now().Unix() - first; d < -1 || d > 60 {
		t.Errorf("usage time = %d, %ds from now", first, d)
	}
	// The file is rewritten every usage_interval.
	waitFor(t, "usage time to advance", func() bool {
		b, err := os.ReadFile(filepath.Join(n.docroot, "dev2", "usage"))
		if err != nil {
			return false
		}
		m := parseUsage(t, string(b))
		v, _ := strconv.ParseInt(m["time"], 10, 64)
		return v > first
	})
}

// TestUsageNewDevice: a device added while the node runs gets its usage file without a restart.
func TestUsageNewDevice(t *testing.T) {
	t.Parallel()
	n := startNode(t, func(c *Config) { c.UsageInterval = conf1s })
	if err := os.Mkdir(filepath.Join(n.docroot, "dev7"), 0o755); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "dev7/usage", func() bool {
		resp, _ := n.get(t, http.MethodGet, "/dev7/usage", nil)
		return resp.StatusCode == 200
	})
	if got := n.put(t, "/dev7/x.fid", []byte("x"), nil); got != 200 {
		t.Errorf("PUT on the new device = %d, want 200", got)
	}
}

func TestUsageFormat(t *testing.T) {
	u := usage{Available: 912345678, Device: "/dev/sdb1", Disk: "/var/mogdata/dev1", Time: 1700000000,
		Total: 976762584, Use: "7%", Used: 64416906}
	want := "available: 912345678\ndevice: /dev/sdb1\ndisk: /var/mogdata/dev1\ntime: 1700000000\n" +
		"total: 976762584\nuse: 7%\nused: 64416906\n"
	if got := u.format(); got != want {
		t.Errorf("format() = %q, want %q", got, want)
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{`/mnt/a\040b`: "/mnt/a b", "/plain": "/plain", `/x\`: `/x\`} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

// The sizes of a usage file from statfs(2)'s numbers: KiB, total = used + available (reserved
// blocks left out), use rounded up as df rounds it, and used never 0.
func TestUsageOf(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		bsize                 int64
		blocks, bfree, bavail uint64
		avail, used, total    int64
		use                   string
	}{
		{"4 KiB blocks", 4096, 1000, 900, 850, 3400, 400, 3800, "11%"}, // 400/3800 = 10.5%
		{"exact percentage", 1024, 100, 93, 93, 93, 7, 100, "7%"},
		{"just over a percent", 1024, 1000, 929, 929, 929, 71, 1000, "8%"}, // 7.1%
		{"reserved blocks left out", 1024, 100, 50, 40, 40, 50, 90, "56%"}, // 55.6%
		{"512-byte blocks", 512, 4000, 2000, 2000, 1000, 1000, 2000, "50%"},
		{"full to non-root users", 4096, 100, 5, 0, 0, 380, 380, "100%"},
		{"empty filesystem", 4096, 100, 100, 100, 400, 1, 401, "1%"}, // used 0 is reported as 1
		{"empty and no space", 4096, 0, 0, 0, 0, 1, 1, "100%"},
	} {
		got := usageOf(tc.bsize, tc.blocks, tc.bfree, tc.bavail)
		want := usage{Available: tc.avail, Used: tc.used, Total: tc.total, Use: tc.use}
		if got != want {
			t.Errorf("%s: usageOf(%d, %d, %d, %d) = %+v, want %+v", tc.name, tc.bsize, tc.blocks, tc.bfree,
				tc.bavail, got, want)
		}
	}
}

// The device and disk of a usage file: the source of the filesystem holding the device directory
// (the longest mount point above it), "unknown" when no mount holds it, and the mount point as
// disk only when the device directory is one.
func TestUsageLocation(t *testing.T) {
	const mounts = "overlay / overlay rw 0 0\n" +
		"/dev/sdb1 /srv/disk ext4 rw 0 0\n" +
		"/dev/sdc1 /srv/disk/dev2 xfs rw 0 0\n" +
		`/dev/sdd1 /mnt/my\040disk ext4 rw 0 0` + "\n" +
		"short-line\n"
	for _, tc := range []struct {
		mounts, dir, real string
		device, disk      string
	}{
		{mounts, "/srv/disk/dev1", "/srv/disk/dev1", "/dev/sdb1", "/srv/disk/dev1"},
		{mounts, "/srv/disk/dev2", "/srv/disk/dev2", "/dev/sdc1", "/srv/disk/dev2"},
		{mounts, "/srv/disk/dev2x", "/srv/disk/dev2x", "/dev/sdb1", "/srv/disk/dev2x"},
		{mounts, "/var/mogdata/dev3", "/mnt/my disk", "/dev/sdd1", "/mnt/my disk"}, // a symlink to a mount
		{mounts, "/srv/diskette/dev1", "/srv/diskette/dev1", "overlay", "/srv/diskette/dev1"},
		{"/dev/sdb1 /srv/disk ext4 rw 0 0\n", "/var/mogdata/dev1", "/var/mogdata/dev1", "unknown", "/var/mogdata/dev1"},
		{"", "/var/mogdata/dev1", "/var/mogdata/dev1", "unknown", "/var/mogdata/dev1"},
	} {
		device, disk := location(strings.NewReader(tc.mounts), tc.dir, tc.real)
		if device != tc.device || disk != tc.disk {
			t.Errorf("location(%q, %q) = %q, %q; want %q, %q", tc.dir, tc.real, device, disk, tc.device, tc.disk)
		}
	}
}
