package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mogway/mogway/internal/clustertest"
)

func TestCLIAgainstCluster(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Nodes: 2, Domains: map[string]map[string]int{"d": {"c1": 1}}})
	tr := "--trackers=" + strings.Join(c.TrackerAddrs(), ",")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	body := strings.Repeat("mogway ", 1000)
	if err := os.WriteFile(src, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun := func(stdin string, args ...string) string {
		t.Helper()
		code, out, errs := runCLI(t, stdin, args...)
		if code != 0 {
			t.Fatalf("mogway %q = exit %d, stderr %q", args, code, errs)
		}
		return out
	}
	mustRun("", "upload", tr, "--domain=d", "--key=dir/a+b é", "--class=c1", "--file="+src)
	mustRun("small", "upload", tr, "--domain=d", "--key=dir/b")
	dst := filepath.Join(dir, "dst")
	mustRun("", "fetch", tr, "--domain=d", "--key=dir/a+b é", "--file="+dst)
	if b, err := os.ReadFile(dst); err != nil || string(b) != body {
		t.Fatalf("fetched %d bytes, %v, want %d", len(b), err, len(body))
	}
	if out := mustRun("", "ls", tr, "--domain=d", "--key_prefix=dir/"); out != "dir/a+b é\ndir/b\n" {
		t.Errorf("ls = %q", out)
	}
	out := mustRun("", "info", tr, "--domain=d", "--key=dir/b")
	if !strings.HasPrefix(out, "- file: dir/b\n") || !strings.Contains(out, "   length:                    5\n") ||
		!strings.Contains(out, " - http://") {
		t.Errorf("info =\n%s", out)
	}
	mustRun("", "rm", tr, "--domain=d", "--key=dir/b")
	if code, _, errs := runCLI(t, "", "fetch", tr, "--domain=d", "--key=dir/b"); code != 1 || !strings.Contains(errs, "unknown_key") {
		t.Errorf("fetch after rm = %d, %q", code, errs)
	}

	mustRun("", "adm", tr, "domain", "add", "d2")
	mustRun("", "adm", tr, "class", "add", "d2", "thumbs", "--mindevcount=1", "--hashtype=MD5")
	if out := mustRun("", "adm", tr, "class", "list"); !strings.Contains(out, " d2                   thumbs               1             MultipleHosts()      MD5") {
		t.Errorf("class list =\n%s", out)
	}
	if out := mustRun("", "adm", tr, "host", "list"); !strings.Contains(out, c.HostName(0)+" [1]: alive\n") {
		t.Errorf("host list =\n%s", out)
	}
	if out := mustRun("", "adm", tr, "device", "list"); !strings.Contains(out, "dev1: alive") {
		t.Errorf("device list =\n%s", out)
	}
	mustRun("", "adm", tr, "settings", "set", "skip_mkcol", "on")
	if out := mustRun("", "adm", tr, "settings", "list"); !strings.Contains(out, "skip_mkcol = 1\n") {
		t.Errorf("settings list =\n%s", out)
	}
	mustRun("", "adm", tr, "fsck", "start")
	if out := mustRun("", "adm", tr, "fsck", "status"); !strings.Contains(out, "Running: ") {
		t.Errorf("fsck status =\n%s", out)
	}
	mustRun("", "adm", tr, "fsck", "stop")
	if out := mustRun("", "adm", tr, "check"); !strings.Contains(out, "Checking devices...") || strings.Contains(out, "FAILURE") {
		t.Errorf("check =\n%s", out)
	}
}
