package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mogway/mogway/internal/testutil"
)

// TestE2EStartupFailures checks that a daemon that cannot start exits 1 with a message that says
// what to fix, checks its storage before it binds, and never prints a database password.
func TestE2EStartupFailures(t *testing.T) {
	ln := testutil.Listen(t, "127.0.0.57:0")
	defer ln.Close()
	busy := ln.Addr().String()
	dir := t.TempDir()
	notDir := writeFile(t, dir, "plain-file", "")
	closed := freeAddr(t, "127.0.0.1")

	tests := []struct {
		name   string
		args   []string
		want   []string // in stderr
		hidden string   // never in the output
	}{
		{"sqlite directory cannot be made, checked before binding",
			[]string{"tracker", "--listen", busy, "--db", "sqlite:" + notDir + "/t.db"},
			[]string{"cannot create the SQLite database directory " + notDir, "--db sqlite:"}, ""},
		{"tracker address in use",
			[]string{"tracker", "--listen", busy, "--db", "sqlite:" + filepath.Join(dir, "t.db")},
			[]string{busy, "address already in use"}, ""},
		{"unreachable MySQL",
			[]string{"tracker", "--listen", "127.0.0.57:0", "--db", "mysql://mogile:s3cret@tcp(" + closed + ")/mogilefs"},
			[]string{"mysql://mogile:xxxxx@tcp(" + closed + ")/mogilefs", "connection refused"}, "s3cret"},
		{"missing docroot, checked before binding",
			[]string{"storaged", "--listen", busy, "--mgmt-listen", "off", "--docroot", filepath.Join(dir, "nope")},
			[]string{"docroot", filepath.Join(dir, "nope"), "no such file"}, ""},
		{"storaged address in use",
			[]string{"storaged", "--listen", busy, "--mgmt-listen", "off", "--docroot", dir},
			[]string{busy, "address already in use"}, ""},
		{"side channel address in use",
			[]string{"storaged", "--listen", "127.0.0.57:0", "--mgmt-listen", busy, "--docroot", dir},
			[]string{busy, "address already in use"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := startDaemon(t, tt.args...)
			code := d.exitStatus(t)
			out := d.stderr.String()
			if code != 1 {
				t.Fatalf("mogway %s = exit %d, want 1; output:\n%s", d.name, code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("mogway %s: output lacks %q:\n%s", d.name, w, out)
				}
			}
			if tt.hidden != "" && strings.Contains(out, tt.hidden) {
				t.Errorf("mogway %s prints the password %q:\n%s", d.name, tt.hidden, out)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "nope")); !os.IsNotExist(err) {
		t.Errorf("storaged created the missing docroot (stat: %v)", err)
	}
}

// TestE2EJSONLogs checks --log-format json: every line the daemons write is one JSON object.
func TestE2EJSONLogs(t *testing.T) {
	dir := t.TempDir()
	tr := startDaemon(t, "tracker", "--log-format", "json", "--listen", "127.0.0.57:0", "--http-listen", "off", "--db", "sqlite:"+filepath.Join(dir, "t.db"))
	tr.waitLog(t, regexp.MustCompile(`"msg":"tracker listening"`))
	st := startDaemon(t, "storaged", "--log-format", "json", "--listen", "127.0.0.57:0", "--mgmt-listen", "off", "--docroot", dir)
	st.waitLog(t, regexp.MustCompile(`"msg":"storage node serving"`))
	for _, d := range []*proc{tr, st} {
		if code := d.stop(t); code != 0 {
			t.Errorf("mogway %s stopped with exit %d", d.name, code)
		}
		for _, line := range strings.Split(strings.TrimSpace(d.stderr.String()), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil || m["level"] == nil || m["msg"] == nil {
				t.Errorf("mogway %s logged %q: not a JSON object with level and msg (%v)", d.name, line, err)
			}
		}
	}
	for _, args := range [][]string{
		{"tracker", "-t", "--log-format", "xml", "--db", "sqlite:" + filepath.Join(dir, "t.db")},
		{"storaged", "-t", "--log-level", "loud", "--docroot", dir},
		{"gateway", "-t", "--log-format", "xml", "--trackers", "127.0.0.1:7001"},
	} {
		r := mog(t, "", args...)
		if r.code == 0 || !strings.Contains(r.stderr, args[3]) {
			t.Errorf("%v\nwant a non-zero exit naming %q", r, args[3])
		}
	}
}
