package main

import (
	"os"
	"testing"
)

func TestParseStatCPU(t *testing.T) {
	for _, tc := range []struct {
		stat string
		want int64
		ok   bool
	}{
		{"1234 (nginx) S 1 1234 1234 0 -1 4194624 100 0 0 0 250 75 0 0 20 0 1 0 100 1000 200", 325, true},
		// A command name with spaces and parentheses: fields count from its last ')'.
		{"99 (a (b) c) R 1 99 99 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0", 10, true},
		{"99 no name", 0, false},
		{"99 (x) S 1 2", 0, false},
		{"99 (x) S 1 99 99 0 -1 0 0 0 0 0 u 3 0 0", 0, false},
	} {
		got, err := parseStatCPU([]byte(tc.stat))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseStatCPU(%q) = %d, %v; want %d, ok %v", tc.stat, got, err, tc.want, tc.ok)
		}
	}
}

func TestCPUTicksOfSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	before, err := cpuTicks(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Spin until the kernel has charged at least one tick to this process: bounded by work, not time.
	x := 0
	for i := 0; i < 1<<34; i++ {
		x += i
		if i%(1<<20) == 0 {
			if now, _ := cpuTicks(os.Getpid()); now > before {
				return
			}
		}
	}
	t.Fatalf("no CPU time charged after a long loop (%d)", x)
}

func TestParseStraceTotal(t *testing.T) {
	for _, tc := range []struct {
		summary       string
		calls, failed int64
		ok            bool
	}{
		{`% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 60.00    0.060000           2     30000           write
 40.00    0.040000           1     31523      8101 read
------ ----------- ----------- --------- --------- ----------------
100.00    0.100000           1     61523      8101 total
`, 61523, 8101, true},
		{`100.00    0.000100           1       123           total
`, 123, 0, true},
		{"nothing traced\n", 0, 0, false},
	} {
		calls, failed, err := parseStraceTotal([]byte(tc.summary))
		if (err == nil) != tc.ok || calls != tc.calls || failed != tc.failed {
			t.Errorf("parseStraceTotal(%q) = %d, %d, %v; want %d, %d, ok %v", tc.summary, calls, failed, err, tc.calls, tc.failed, tc.ok)
		}
	}
}

func TestPerRequest(t *testing.T) {
	if got := perRequest(int64(clockTicks), 1000); got != 1000 {
		t.Errorf("one second over 1000 requests = %v µs, want 1000", got)
	}
	if got := perRequest(5, 0); got != 0 {
		t.Errorf("no requests = %v, want 0", got)
	}
}
