package httpsem

import (
	"math"
	"slices"
	"strconv"
	"testing"
)

// TestRangeRFC9110Examples are the examples of RFC 9110 section 14.1.2, on a representation of
// 10000 bytes.
func TestRangeRFC9110Examples(t *testing.T) {
	const size = 10000
	tests := []struct {
		h      string
		off, n int64
		st     RangeStatus
	}{
		{"bytes=0-499", 0, 500, RangeOK},     // the first 500 bytes
		{"bytes=500-999", 500, 500, RangeOK}, // the second 500 bytes
		{"bytes=-500", 9500, 500, RangeOK},   // the final 500 bytes
		{"bytes=9500-", 9500, 500, RangeOK},  // the final 500 bytes
		{"bytes=0-0,-1", 0, 0, RangeIgnore},  // first and last bytes: two parts, not sent as one
		{"bytes=0-999,4500-5499,-1000", 0, 0, RangeIgnore},
		// Valid but not canonical forms of the second 500 bytes, coalesced (section 14.2).
		{"bytes=500-600,601-999", 500, 500, RangeOK},
		{"bytes=500-700,601-999", 500, 500, RangeOK},
	}
	for _, tt := range tests {
		r, ok := ParseRange(tt.h)
		if !ok {
			t.Errorf("ParseRange(%q) ok = false, want true", tt.h)
			continue
		}
		off, n, st := r.Resolve(size)
		if off != tt.off || n != tt.n || st != tt.st {
			t.Errorf("ParseRange(%q).Resolve(%d) = %d, %d, %d; want %d, %d, %d", tt.h, size, off, n, st, tt.off, tt.n, tt.st)
		}
	}
}

// TestParseRange: each header and the specs it parses to; nil for a header that is ignored.
func TestParseRange(t *testing.T) {
	for h, want := range map[string][]Spec{
		"bytes=0-9":         {{0, 9}},
		"bytes=90-":         {{90, -1}},
		"bytes=-10":         {{-1, 10}},
		"Bytes=1-2":         {{1, 2}},
		"BYTES=1-2":         {{1, 2}},
		"bytes= 1 - 2 ":     {{1, 2}},
		" bytes=1-2,\t3-4 ": {{1, 2}, {3, 4}},
		"bytes=1-2,,3-4,":   {{1, 2}, {3, 4}}, // empty list elements are ignored
		"bytes=-0":          {{-1, 0}},
		// Overflow saturates: the spec is valid and Resolve decides (RFC 9110 has no upper bound).
		"bytes=99999999999999999999-":                   {{math.MaxInt64, -1}},
		"bytes=0-99999999999999999999":                  {{0, math.MaxInt64}},
		"bytes=-99999999999999999999":                   {{-1, math.MaxInt64}},
		"bytes=9223372036854775807-9223372036854775807": {{math.MaxInt64, math.MaxInt64}},
		// Invalid specs (last-pos below first-pos, section 14.1.1) are kept; Resolve never satisfies them.
		"bytes=5-1":     {{5, 1}},
		"bytes=0-1,5-1": {{0, 1}, {5, 1}},
		// Ignored: another unit, syntax errors.
		"BYTES = 1-2": nil, "items=0-1": nil, "bytes": nil, "bytes=": nil, "bytes=,": nil, "bytes=-": nil,
		"bytes=a-b": nil, "bytes=1-b": nil, "bytes=+1-2": nil, "bytes=1": nil, "bytes=1-2-3": nil,
		"bytes=1 2-3": nil, "": nil,
	} {
		r, ok := ParseRange(h)
		var got []Spec
		for i := range r.Len() {
			got = append(got, r.At(i))
		}
		if ok != (want != nil) || !slices.Equal(got, want) {
			t.Errorf("ParseRange(%q) = %v, %v; want %v", h, got, ok, want)
		}
		if rb, okb := ParseRange([]byte(h)); okb != ok || rb != r {
			t.Errorf("ParseRange([]byte(%q)) differs from ParseRange(string)", h)
		}
	}
}

func TestParseRangeTooMany(t *testing.T) {
	h := "bytes=0-0"
	for i := 1; i < MaxRanges; i++ {
		h += "," + strconv.Itoa(i) + "-" + strconv.Itoa(i)
	}
	r, ok := ParseRange(h)
	if !ok || r.Len() != MaxRanges {
		t.Fatalf("ParseRange(%d ranges) = %d specs, %v; want %d, true", MaxRanges, r.Len(), ok, MaxRanges)
	}
	if off, n, st := r.Resolve(100); off != 0 || n != MaxRanges || st != RangeOK {
		t.Errorf("Resolve of %d touching one-byte ranges = %d, %d, %d; want 0, %d, RangeOK", MaxRanges, off, n, st, MaxRanges)
	}
	if _, ok := ParseRange(h + ",99-99"); ok {
		t.Errorf("ParseRange(%d ranges) ok = true, want false (ignored whole)", MaxRanges+1)
	}
}

func TestRangeResolve(t *testing.T) {
	tests := []struct {
		h      string
		size   int64
		off, n int64
		st     RangeStatus
	}{
		{"bytes=0-0", 5, 0, 1, RangeOK},
		{"bytes=1-3", 5, 1, 3, RangeOK},
		{"bytes=4-", 5, 4, 1, RangeOK},
		{"bytes=0-99", 5, 0, 5, RangeOK},
		{"bytes=-1", 5, 4, 1, RangeOK},
		{"bytes=-5", 5, 0, 5, RangeOK},
		{"bytes=-6", 5, 0, 5, RangeOK},
		{"bytes=5-", 5, 0, 0, RangeUnsatisfiable},
		{"bytes=-0", 5, 0, 0, RangeUnsatisfiable},
		{"bytes=0-", 0, 0, 0, RangeUnsatisfiable},
		{"bytes=-3", 0, 0, 0, RangeUnsatisfiable},
		{"bytes=99999999999999999999-", 5, 0, 0, RangeUnsatisfiable},
		{"bytes=3-1", 5, 0, 0, RangeUnsatisfiable}, // invalid: rejected, as nginx and mogstored do
		{"bytes=0-1,3-1", 5, 0, 2, RangeOK},
		{"bytes=0-99999999999999999999", 5, 0, 5, RangeOK},
		{"bytes=-99999999999999999999", 5, 0, 5, RangeOK},
		// Several ranges: unsatisfiable ones are dropped, the rest coalesced when they overlap or touch.
		{"bytes=10-20,30-40", 5, 0, 0, RangeUnsatisfiable},
		{"bytes=1-2,10-20", 5, 1, 2, RangeOK},
		{"bytes=3-4,0-2", 5, 0, 5, RangeOK},
		{"bytes=0-1,3-4", 5, 0, 0, RangeIgnore},
		{"bytes=0-3,-2", 5, 0, 5, RangeOK},
		{"bytes=2-2,0-0,1-1", 5, 0, 3, RangeOK},
	}
	for _, tt := range tests {
		r, ok := ParseRange(tt.h)
		if !ok {
			t.Errorf("ParseRange(%q) ok = false", tt.h)
			continue
		}
		off, n, st := r.Resolve(tt.size)
		if off != tt.off || n != tt.n || st != tt.st {
			t.Errorf("ParseRange(%q).Resolve(%d) = %d, %d, %d; want %d, %d, %d", tt.h, tt.size, off, n, st, tt.off, tt.n, tt.st)
		}
	}
	var zero Ranges
	if _, _, st := zero.Resolve(10); st != RangeIgnore {
		t.Errorf("Ranges{}.Resolve = %d, want RangeIgnore", st)
	}
}

func TestContentRange(t *testing.T) {
	if got := string(AppendContentRange(nil, 0, 500, 1234)); got != "bytes 0-499/1234" {
		t.Errorf("AppendContentRange(0, 500, 1234) = %q, want %q", got, "bytes 0-499/1234")
	}
	if got := string(AppendContentRange([]byte("x"), 9, 1, -1)); got != "xbytes 9-9/*" {
		t.Errorf("AppendContentRange(9, 1, -1) = %q, want %q", got, "xbytes 9-9/*")
	}
	if got := string(AppendUnsatisfiedRange(nil, 1234)); got != "bytes */1234" {
		t.Errorf("AppendUnsatisfiedRange(1234) = %q, want %q", got, "bytes */1234")
	}
	tests := []struct {
		in                 string
		first, last, total int64
		ok                 bool
	}{
		// RFC 9110 section 14.4 examples.
		{"bytes 42-1233/1234", 42, 1233, 1234, true},
		{"bytes 42-1233/*", 42, 1233, -1, true},
		{"bytes 0-4/5", 0, 4, 5, true},
		{"bytes 10-19/100000", 10, 19, 100000, true},
		{"bytes 0-0/*", 0, 0, -1, true},
		{"Bytes 5-9/*", 5, 9, -1, true},
		{" bytes  5-9 / 10 ", 5, 9, 10, true},
		{"bytes 5-9/9", 0, 0, 0, false}, // total not above last-pos
		{"bytes 0-10/10", 0, 0, 0, false},
		{"bytes 9-5/*", 0, 0, 0, false}, // last-pos below first-pos
		{"bytes 5-/*", 0, 0, 0, false},
		{"bytes -5/*", 0, 0, 0, false},
		{"bytes -1-3/10", 0, 0, 0, false},
		{"bytes +1-3/10", 0, 0, 0, false},
		{"bytes 1-+3/10", 0, 0, 0, false},
		{"bytes 0-1/+9", 0, 0, 0, false},
		{"bytes */10", 0, 0, 0, false},
		{"bytes 0-1", 0, 0, 0, false},
		{"bytes=0-1/*", 0, 0, 0, false},
		{"items 0-1/2", 0, 0, 0, false},
		{"bytes 0-99999999999999999999/*", 0, 0, 0, false}, // positions must be exact
		{"", 0, 0, 0, false},
	}
	for _, tt := range tests {
		f, l, tot, ok := ParseContentRange(tt.in)
		if ok != tt.ok || f != tt.first || l != tt.last || tot != tt.total {
			t.Errorf("ParseContentRange(%q) = %d, %d, %d, %v; want %d, %d, %d, %v", tt.in, f, l, tot, ok, tt.first, tt.last, tt.total, tt.ok)
		}
	}
	for _, tt := range []struct {
		in    string
		total int64
		ok    bool
	}{
		{"bytes */1234", 1234, true},
		{"Bytes */0", 0, true},
		{"bytes */ 7 ", 7, true},
		{"bytes */*", 0, false},
		{"bytes 0-1/2", 0, false},
		{"bytes */-1", 0, false},
		{"*/10", 0, false},
	} {
		if tot, ok := ParseUnsatisfiedRange(tt.in); tot != tt.total || ok != tt.ok {
			t.Errorf("ParseUnsatisfiedRange(%q) = %d, %v; want %d, %v", tt.in, tot, ok, tt.total, tt.ok)
		}
	}
}
