package tracker

import (
	"context"
	"strings"
	"testing"

	"github.com/mogway/mogway/tracker/mogproto"
	"github.com/mogway/mogway/tracker/store"
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

// startGetPaths starts a tracker with key "k" of domain d stored on devices 1 and 3 (two hosts,
// every device observed), the get_paths load of the bench's tracker rows.
func startGetPaths(b testing.TB) *testTracker {
	b.Helper()
	ctx := context.Background()
	tt := startTracker(b, Config{})
	fixture(b, tt.dial(b), "127.0.0.2", "7500", "127.0.0.3", "7500")
	tt.observeAll(1, 2, 3)
	fid, err := tt.st.CreateTempfile(ctx, store.Tempfile{DomainID: 1, Key: "k", DevIDs: []int{1, 3}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := tt.st.CommitFile(ctx, store.Commit{File: store.File{Fid: fid, DomainID: 1, Key: "k", Length: 4096}, DevIDs: []int{1, 3}}); err != nil {
		b.Fatal(err)
	}
	return tt
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

// TestGetPathsAllocs: get_paths noverify=1 of a located key, answered on a connection, allocates
// only the string of its URLs (the connection's request line is the caller's).
func TestGetPathsAllocs(t *testing.T) {
	tt := startGetPaths(t)
	c := &conn{s: tt.s, res: make(mogproto.Args, 0, 1+len(pathNames))}
	const line = "get_paths domain=d&key=k&noverify=1"
	var out []byte
	run := func() { out = tt.s.dispatch(context.Background(), c, line, out[:0]) }
	run()
	if !strings.HasPrefix(string(out), "OK paths=2&path1=http://127.0.0.") {
		t.Fatalf("%s = %q", line, out)
	}
	if n := testing.AllocsPerRun(100, run); n > 1 {
		t.Errorf("dispatch(%q) allocs = %v, want 1", line, n)
	}
}
