package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2EStartupFailures checks that a daemon that cannot start exits 1 with a message that says
// what to fix, checks its storage before it binds, and never prints a database password.
func TestE2EStartupFailures(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.57:0")
	if err != nil {
		t.Fatal(err)
	}
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
