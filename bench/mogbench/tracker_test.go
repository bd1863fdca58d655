package main

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	for _, tc := range []struct {
		stat string
		want time.Duration
		ok   bool
	}{
		{"1234 (mogway) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 70 0 0 20 0 9 0 5 0 0", 3200 * time.Millisecond, true},
		{"1234 (a (b) c) R 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 9 0 5 0 0", 30 * time.Millisecond, true},
		{"1234 (mogway) S 1 2 3", 0, false},
		{"1234 mogway S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2", 0, false},
		{"1234 (mogway) S 1 1234 1234 0 -1 4194560 100 0 0 0 x 2 0 0", 0, false},
	} {
		got, err := parseStatCPU([]byte(tc.stat))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseStatCPU(%q) = %v, %v; want %v (ok %v)", tc.stat, got, err, tc.want, tc.ok)
		}
	}
	if _, err := procCPU(os.Getpid()); err != nil {
		t.Errorf("procCPU(self) = %v", err)
	}
}

func TestPerCore(t *testing.T) {
	for cpu, want := range map[float64]string{20: "50.0k/s", 42.4: "23.6k/s", 0: "–"} {
		if got := perCore(cpu); got != want {
			t.Errorf("perCore(%v) = %q, want %q", cpu, got, want)
		}
	}
}
