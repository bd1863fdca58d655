package main

import (
	"testing"
	"time"
)

func TestWrkMax(t *testing.T) {
	for _, tt := range []struct {
		out  string
		want time.Duration
	}{
		{"  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency   412.34us  100.00us   3.00ms   90.00%\n", 3 * time.Millisecond},
		{"    Latency    25.10ms  120.00ms   1.01s    98.00%\n  Latency Distribution\n     50%  398.00us\n", 1010 * time.Millisecond},
		{"unable to connect to 127.0.0.1:1 Connection refused\n", 0},
		{"    Latency\n", 0},
	} {
		if got := wrkMax([]byte(tt.out)); got != tt.want {
			t.Errorf("wrkMax(%q) = %v, want %v", tt.out, got, tt.want)
		}
	}
}
