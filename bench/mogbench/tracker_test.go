package main

import "testing"

func TestPerCore(t *testing.T) {
	for cpu, want := range map[float64]string{20: "50.0k/s", 42.4: "23.6k/s", 0: "–"} {
		if got := perCore(cpu); got != want {
			t.Errorf("perCore(%v) = %q, want %q", cpu, got, want)
		}
	}
}
