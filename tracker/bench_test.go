package tracker

import (
	"context"
	"strings"
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
	line := "get_paths domain=d&key=nope&noverify=1"
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = tt.s.dispatch(context.Background(), nil, line, buf[:0])
	}
}

// BenchmarkGetPathsFound measures get_paths noverify=1 of a stored key, as the bench's tracker row
// sends it: Dispatch alone, and a round trip over a loopback connection.
func BenchmarkGetPathsFound(b *testing.B) {
	const req = "get_paths domain=d&key=k&noverify=1"
	b.Run("Dispatch", func(b *testing.B) {
		tt := startGetPaths(b)
		line := req
		var buf []byte
		b.ReportAllocs()
		for b.Loop() {
			buf = tt.s.dispatch(context.Background(), nil, line, buf[:0])
		}
	})
	b.Run("RoundTrip", func(b *testing.B) {
		tt := startGetPaths(b)
		lc := tt.dial(b)
		b.ReportAllocs()
		for b.Loop() {
			if got := lc.do(req); !strings.HasPrefix(got, "OK paths=2&") {
				b.Fatalf("%s = %q", req, got)
			}
		}
	})
}
