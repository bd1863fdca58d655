package tracker

import (
	"context"
	"testing"
)

// BenchmarkNoopRoundTrip measures one request line and its reply over a loopback connection.
func BenchmarkNoopRoundTrip(b *testing.B) {
	tt := startTracker(b, Config{})
	lc := tt.dial(b)
	b.ReportAllocs()
	for b.Loop() {
		if got := lc.do("noop"); got != "OK " {
			b.Fatalf("noop = %q", got)
		}
	}
}

// BenchmarkGetPathsDispatch measures get_paths for a missing key (domain check, one store read).
func BenchmarkGetPathsDispatch(b *testing.B) {
	tt := startTracker(b, Config{})
	tt.dial(b).ok("create_domain domain=d")
	line := []byte("get_paths domain=d&key=nope&noverify=1")
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = tt.s.dispatch(context.Background(), nil, line, buf[:0])
	}
}
