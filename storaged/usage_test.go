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
