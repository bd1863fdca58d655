package httpsem

import (
	"testing"
	"time"
)

// TestAllocs: the gateway and storaged call these on every GET, with fasthttp's []byte header values.
func TestAllocs(t *testing.T) {
	rangeHdr := []byte("bytes=0-99,100-199,-50")
	c := Conditions{
		IfMatch:           []byte(`"a", W/"b", "fid-17"`),
		IfNoneMatch:       []byte(`W/"x", "y", "fid-16"`),
		IfUnmodifiedSince: []byte("Sunday, 06-Nov-94 08:49:37 GMT"),
		IfModifiedSince:   []byte("Sun Nov  6 08:49:37 1994"),
		IfRange:           []byte("Sun, 06 Nov 1994 08:49:37 GMT"),
	}
	v := Validators{ETag: `"fid-17"`, LastModified: 784111777, HasLastModified: true}
	cr := []byte("bytes 100-199/1000")
	name := []byte("photos/IMG_0001.JPEG")
	buf := make([]byte, 0, 64)
	now := time.Now()
	tests := []struct {
		name string
		f    func()
	}{
		{"ParseRange+Resolve", func() {
			r, _ := ParseRange(rangeHdr)
			r.Resolve(1000)
		}},
		{"Evaluate", func() { c.Evaluate(true, v) }},
		{"RangeApplies", func() { c.RangeApplies(v) }},
		{"ParseContentRange", func() { ParseContentRange(cr) }},
		{"AppendContentRange", func() { buf = AppendContentRange(buf[:0], 100, 100, 1000) }},
		{"AppendUnsatisfiedRange", func() { buf = AppendUnsatisfiedRange(buf[:0], 1000) }},
		{"AppendDate", func() { buf = AppendDate(buf[:0], now) }},
		{"ContentType", func() { ContentType(name) }},
		{"ContentType(string)", func() { ContentType("a/b/c.webp") }},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(100, tt.f); n != 0 {
			t.Errorf("%s: %v allocations, want 0", tt.name, n)
		}
	}
}
