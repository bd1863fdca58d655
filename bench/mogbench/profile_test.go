package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cpuProfile writes a CPU profile of spin to a file in dir and returns its path. spin runs until
// the process has used cpu more CPU time, so that it has samples however loaded the machine is.
func cpuProfile(t *testing.T, dir, name string, spin func(until func() bool)) string {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	start := cpuTime(t)
	spin(func() bool { return cpuTime(t)-start >= 300*time.Millisecond })
	pprof.StopCPUProfile()
	return path
}

func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var sink uint64

//go:noinline
func spinFirstRow(until func() bool) {
	for !until() {
		for i := range 100000 {
			sink += uint64(i) * 7
		}
	}
}

//go:noinline
func spinSecondRow(until func() bool) {
	for !until() {
		for i := range 100000 {
			sink ^= uint64(i) * 13
		}
	}
}

// TestMergeProfiles: the -pgo file holds the samples of every row's profile, in the format go
// build -pgo reads (go tool pprof reads it back, as the compiler's reader does).
func TestMergeProfiles(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go tool not on PATH")
	}
	dir := t.TempDir()
	a := cpuProfile(t, dir, "cpu-first.pb.gz", spinFirstRow)
	b := cpuProfile(t, dir, "cpu-second.pb.gz", spinSecondRow)
	out := filepath.Join(dir, "default.pgo")
	if err := mergeProfiles(out, []string{a, b}); err != nil {
		t.Fatal(err)
	}
	top, err := exec.Command("go", "tool", "pprof", "-top", out).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof -top %s: %v\n%s", out, err, top)
	}
	for _, fn := range []string{"spinFirstRow", "spinSecondRow"} {
		if !strings.Contains(string(top), fn) {
			t.Errorf("merged profile lacks %s:\n%s", fn, top)
		}
	}
	if _, err := os.Stat(out + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
	if err := mergeProfiles(filepath.Join(dir, "none.pgo"), nil); err == nil {
		t.Error("mergeProfiles with no profile: no error")
	}
}
