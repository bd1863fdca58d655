package tracker

import (
	"context"
	"strings"
	"testing"

	"github.com/mogway/mogway/tracker/mogproto"
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

// BenchmarkGetPathsVerify measures get_paths with verification of a stored key, its HEAD answered
// at once by a node that does no work of its own (plainNode): the tracker's cost of a check.
func BenchmarkGetPathsVerify(b *testing.B) {
	port1, _ := plainNode(b, "127.0.0.2")
	port2, _ := plainNode(b, "127.0.0.3")
	tt := startHedged(b, Config{}, port1, port2)
	c := &conn{s: tt.s, res: make(mogproto.Args, 0, 1+len(pathNames))}
	const line = "get_paths domain=d&key=k"
	var out []byte
	b.ReportAllocs()
	for b.Loop() {
		out = tt.s.dispatch(tt.s.stopCtx, c, line, out[:0]) // the context a connection passes
	}
	if !strings.HasPrefix(string(out), "OK paths=2&") {
		b.Fatalf("%s = %q", line, out)
	}
}
