package main

import (
	"os/exec"
	"testing"
)

// The reference nginx.conf, whose head nginxHead writes, passes `nginx -t`.
func TestNginxConfParses(t *testing.T) {
	if _, err := exec.LookPath("nginx"); err != nil {
		t.Skip("nginx not installed")
	}
	dir := t.TempDir()
	path, err := writeNginxConf(dir, dir, []string{"127.0.0.1:1", "127.0.0.1:2"}, nginxPorts{18991, 18992, 18993, 18994}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("nginx", "-t", "-c", path, "-p", dir).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
}
