package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestParseCtxSwitches(t *testing.T) {
	for _, tc := range []struct {
		name, status string
		want         int64
		ok           bool
	}{
		{"both", "Name:\tmogway\nState:\tS (sleeping)\nvoluntary_ctxt_switches:\t120\nnonvoluntary_ctxt_switches:\t7\n", 127, true},
		{"zeros", "voluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0\n", 0, true},
		{"spaces", "voluntary_ctxt_switches:   5\nnonvoluntary_ctxt_switches: 6\n", 11, true},
		{"one missing", "voluntary_ctxt_switches:\t120\n", 0, false},
		{"none", "Name:\tmogway\n", 0, false},
		{"not a number", "voluntary_ctxt_switches:\tx\nnonvoluntary_ctxt_switches:\t7\n", 0, false},
	} {
		got, err := parseCtxSwitches([]byte(tc.status))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%s: parseCtxSwitches = %d, %v; want %d, ok %v", tc.name, got, err, tc.want, tc.ok)
		}
	}
}

// TestCtxSwitchesRealProcess counts a real process's switches: a shell that waits for twenty
// children in turn switches at least once a wait, and a pid that is gone is an error.
func TestCtxSwitchesRealProcess(t *testing.T) {
	done := filepath.Join(t.TempDir(), "done")
	cmd := exec.Command("sh", "-c", `read go; i=0; while [ $i -lt 20 ]; do sleep 0.01; i=$((i+1)); done; touch "$0"; sleep 10`, done)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	before, err := ctxSwitches(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	in.Write([]byte("go\n")) // the loop starts after the first count
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(done); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the shell's loop did not end in 20 s")
		}
	}
	after, err := ctxSwitches(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	// Each sleep(1) child is its own process, but the shell waits for it: one switch per wait at least.
	if after-before < 10 {
		t.Errorf("switches over twenty waits for a sleep = %d, want at least 10", after-before)
	}
	if n, err := ctxSwitches(os.Getpid()); err != nil || n <= 0 {
		t.Errorf("ctxSwitches(this process) = %d, %v; want > 0", n, err)
	}
	rs := []role{{name: "sh", pids: []int{cmd.Process.Pid}}}
	if s := switchShares(rs, []int64{10}, []int64{30}, 4); len(s) != 1 || s[0].Role != "sh" || s[0].Per != 5 {
		t.Errorf("switchShares(10 → 30 over 4 requests) = %v, want [{sh 5}]", s)
	}
	if s := switchShares(rs, []int64{10}, []int64{30}, 0); s[0].Per != 0 {
		t.Errorf("switchShares over no request = %v, want 0", s)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if _, err := ctxSwitches(cmd.Process.Pid); err == nil {
		t.Error("ctxSwitches of an ended process = nil error, want one")
	}
}
