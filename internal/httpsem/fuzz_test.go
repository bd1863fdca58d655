package httpsem

import (
	"testing"
)

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-9", "bytes=-5", "bytes=9-", "bytes=1-2,3-4", "bytes=500-700,601-999",
		"bytes=99999999999999999999-", "bytes=0-0,-1", "Bytes= 1 - 2 ", "bytes=,,"} {
		f.Add(s, int64(100))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			size = -(size + 1)
		}
		r, ok := ParseRange(h)
		if !ok {
			if r.Len() != 0 {
				t.Fatalf("ParseRange(%q) = %d specs with ok false", h, r.Len())
			}
			return
		}
		if r.Len() < 1 || r.Len() > MaxRanges {
			t.Fatalf("ParseRange(%q) = %d specs", h, r.Len())
		}
		for i := range r.Len() {
			s := r.At(i)
			if s.Suffix() && (s.First != -1 || s.Last < 0) || !s.Suffix() && s.Last < -1 {
				t.Fatalf("ParseRange(%q) spec %d = %+v", h, i, s)
			}
			if off, n, ok := s.Resolve(size); ok && (off < 0 || n <= 0 || n > size-off) {
				t.Fatalf("ParseRange(%q).At(%d).Resolve(%d) = %d, %d outside the body", h, i, size, off, n)
			}
		}
		off, n, st := r.Resolve(size)
		if st == RangeOK && (off < 0 || n <= 0 || n > size-off) {
			t.Fatalf("ParseRange(%q).Resolve(%d) = %d, %d outside the body", h, size, off, n)
		}
		if st != RangeOK && (off != 0 || n != 0) {
			t.Fatalf("ParseRange(%q).Resolve(%d) = %d, %d, %d", h, size, off, n, st)
		}
	})
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-4/5", "bytes 3-3/*", "bytes */10", "bytes 9-5/*", " Bytes 1-2 / 3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if first, last, total, ok := ParseContentRange(s); ok {
			if first < 0 || last < first || (total >= 0 && last >= total) || total < -1 {
				t.Fatalf("ParseContentRange(%q) = %d, %d, %d accepted an impossible range", s, first, last, total)
			}
			// What parses formats back to the same range.
			f2, l2, t2, ok2 := ParseContentRange(AppendContentRange(nil, first, last-first+1, total))
			if !ok2 || f2 != first || l2 != last || t2 != total {
				t.Fatalf("ParseContentRange(%q) = %d, %d, %d does not survive formatting", s, first, last, total)
			}
		}
		if total, ok := ParseUnsatisfiedRange(s); ok && total < 0 {
			t.Fatalf("ParseUnsatisfiedRange(%q) = %d", s, total)
		}
	})
}

func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		unix, ok := ParseDate(s)
		if !ok {
			return
		}
		// A valid date formats as IMF-fixdate and reads back the same.
		if back, ok := ParseDate(AppendDate(nil, unixTime(unix))); !ok || back != unix {
			t.Fatalf("ParseDate(%q) = %d, which does not survive formatting (%d, %v)", s, unix, back, ok)
		}
	})
}

func FuzzConditions(f *testing.F) {
	f.Add(`"a", W/"b"`, `"b"`, "Sun, 06 Nov 1994 08:49:37 GMT")
	f.Add(`*`, `W/"b"`, "Sunday, 06-Nov-94 08:49:37 GMT")
	f.Fuzz(func(t *testing.T, list, etag, date string) {
		// Strong matches are weak matches, and nothing matches an absent ETag.
		if ListMatches(list, etag, false) && !ListMatches(list, etag, true) {
			t.Fatalf("ListMatches(%q, %q): strong match but no weak match", list, etag)
		}
		if ListMatches(list, "", true) {
			t.Fatalf("ListMatches(%q, \"\") = true", list)
		}
		c := Conditions{IfNoneMatch: []byte(list), IfModifiedSince: []byte(date), IfRange: []byte(list)}
		v := Validators{ETag: etag, LastModified: 784111777, HasLastModified: true}
		if got := c.Evaluate(true, v); got == PreconditionFailed {
			t.Fatalf("If-None-Match %q on GET gave 412", list)
		}
		if len(trimOWS(list)) > 0 && c.RangeApplies(v) && !ListMatches(list, etag, false) {
			if _, isDate := ParseDate(list); !isDate {
				t.Fatalf("If-Range %q applies to ETag %q without a strong match", list, etag)
			}
		}
	})
}
