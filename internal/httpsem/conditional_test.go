package httpsem

import (
	"testing"
	"time"
)

// TestETagComparison is the table of RFC 9110 section 8.8.3.2.
func TestETagComparison(t *testing.T) {
	tests := []struct {
		a, b         string
		strong, weak bool
	}{
		{`W/"1"`, `W/"1"`, false, true},
		{`W/"1"`, `W/"2"`, false, false},
		{`W/"1"`, `"1"`, false, true},
		{`"1"`, `"1"`, true, true},
	}
	for _, tt := range tests {
		for _, pair := range [][2]string{{tt.a, tt.b}, {tt.b, tt.a}} {
			if got := ListMatches(pair[0], pair[1], false); got != tt.strong {
				t.Errorf("ListMatches(%s, %s, strong) = %v, want %v", pair[0], pair[1], got, tt.strong)
			}
			if got := ListMatches([]byte(pair[0]), pair[1], true); got != tt.weak {
				t.Errorf("ListMatches(%s, %s, weak) = %v, want %v", pair[0], pair[1], got, tt.weak)
			}
		}
	}
}

func TestListMatches(t *testing.T) {
	tests := []struct {
		list, etag string
		weak, want bool
	}{
		// RFC 9110 section 13.1.1 and 13.1.2 examples.
		{`"xyzzy"`, `"xyzzy"`, false, true},
		{`"xyzzy", "r2d2xxxx", "c3piozzzz"`, `"c3piozzzz"`, false, true},
		{`"xyzzy", "r2d2xxxx", "c3piozzzz"`, `"r2d2"`, false, false},
		{`W/"xyzzy"`, `"xyzzy"`, true, true},
		{`W/"xyzzy"`, `"xyzzy"`, false, false},
		{`W/"xyzzy", W/"r2d2xxxx", W/"c3piozzzz"`, `"r2d2xxxx"`, true, true},
		{`W/"xyzzy", W/"r2d2xxxx", W/"c3piozzzz"`, `W/"r2d2xxxx"`, true, true},
		// Lists: OWS, empty elements, commas inside a tag.
		{` "a" ,, "b" `, `"b"`, true, true},
		{`"a,b"`, `"a,b"`, false, true},
		{`"a,b"`, `"b"`, true, false},
		{`"a"   "b"`, `"b"`, true, false}, // malformed after "a": stops
		{`"a", b, "c"`, `"c"`, true, false},
		{`"a", "b`, `"b"`, true, false},
		{`"a", "c"`, `"a"`, true, true},
		{`*`, `"a"`, true, false}, // "*" is Evaluate's business
		{`"a"`, ``, true, false},  // no ETag matches nothing
		{`""`, `""`, false, true},
		{`"a"`, `a`, true, false},
		{`W/ "a"`, `"a"`, true, false},
	}
	for _, tt := range tests {
		if got := ListMatches(tt.list, tt.etag, tt.weak); got != tt.want {
			t.Errorf("ListMatches(%s, %s, weak %v) = %v, want %v", tt.list, tt.etag, tt.weak, got, tt.want)
		}
	}
}

// TestEvaluate follows RFC 9110 section 13.2.2 step by step, with the examples of section 13.1.
func TestEvaluate(t *testing.T) {
	lm := time.Date(1994, 10, 29, 19, 43, 31, 0, time.UTC).Unix()
	v := Validators{ETag: `"xyzzy"`, LastModified: lm, HasLastModified: true}
	weakV := Validators{ETag: `W/"xyzzy"`, LastModified: lm, HasLastModified: true}
	const (
		date   = "Sat, 29 Oct 1994 19:43:31 GMT" // == Last-Modified
		before = "Sat, 29 Oct 1994 19:43:30 GMT"
		after  = "Sat, 29 Oct 1994 19:43:32 GMT"
	)
	tests := []struct {
		name      string
		c         Conditions
		getOrHead bool
		v         Validators
		want      Outcome
	}{
		{"none", Conditions{}, true, v, Proceed},
		{"If-Match hit", Conditions{IfMatch: b(`"xyzzy"`)}, true, v, Proceed},
		{"If-Match list hit", Conditions{IfMatch: b(`"xyzzy", "r2d2xxxx", "c3piozzzz"`)}, false, v, Proceed},
		{"If-Match miss", Conditions{IfMatch: b(`"r2d2xxxx"`)}, true, v, PreconditionFailed},
		{"If-Match weak tag", Conditions{IfMatch: b(`W/"xyzzy"`)}, true, v, PreconditionFailed},
		{"If-Match weak ETag", Conditions{IfMatch: b(`"xyzzy"`)}, true, weakV, PreconditionFailed},
		{"If-Match *", Conditions{IfMatch: b(`*`)}, true, Validators{}, Proceed},
		{"If-Match without ETag", Conditions{IfMatch: b(`"xyzzy"`)}, true, Validators{}, PreconditionFailed},
		{"If-Match wins over If-Unmodified-Since", Conditions{IfMatch: b(`"xyzzy"`), IfUnmodifiedSince: b(before)}, true, v, Proceed},
		{"If-Unmodified-Since equal", Conditions{IfUnmodifiedSince: b(date)}, true, v, Proceed},
		{"If-Unmodified-Since later", Conditions{IfUnmodifiedSince: b(after)}, true, v, Proceed},
		{"If-Unmodified-Since earlier", Conditions{IfUnmodifiedSince: b(before)}, true, v, PreconditionFailed},
		{"If-Unmodified-Since RFC 850", Conditions{IfUnmodifiedSince: b("Saturday, 29-Oct-94 19:43:30 GMT")}, true, v, PreconditionFailed},
		{"If-Unmodified-Since invalid", Conditions{IfUnmodifiedSince: b("yesterday")}, true, v, Proceed},
		{"If-Unmodified-Since without Last-Modified", Conditions{IfUnmodifiedSince: b(before)}, true, Validators{ETag: `"x"`}, Proceed},
		{"If-None-Match hit", Conditions{IfNoneMatch: b(`"xyzzy"`)}, true, v, NotModified},
		{"If-None-Match weak hit", Conditions{IfNoneMatch: b(`W/"xyzzy"`)}, true, v, NotModified},
		{"If-None-Match weak ETag", Conditions{IfNoneMatch: b(`"xyzzy"`)}, true, weakV, NotModified},
		{"If-None-Match list", Conditions{IfNoneMatch: b(`W/"a", W/"xyzzy"`)}, true, v, NotModified},
		{"If-None-Match miss", Conditions{IfNoneMatch: b(`"r2d2xxxx"`)}, true, v, Proceed},
		{"If-None-Match *", Conditions{IfNoneMatch: b(`*`)}, true, v, NotModified},
		{"If-None-Match * without ETag", Conditions{IfNoneMatch: b(` * `)}, true, Validators{}, NotModified},
		{"If-None-Match hit on PUT", Conditions{IfNoneMatch: b(`"xyzzy"`)}, false, v, PreconditionFailed},
		{"If-None-Match wins over If-Modified-Since", Conditions{IfNoneMatch: b(`"other"`), IfModifiedSince: b(after)}, true, v, Proceed},
		{"If-None-Match miss, If-Modified-Since ignored", Conditions{IfNoneMatch: b(`"other"`), IfModifiedSince: b(date)}, true, v, Proceed},
		{"If-Modified-Since equal", Conditions{IfModifiedSince: b(date)}, true, v, NotModified},
		{"If-Modified-Since later", Conditions{IfModifiedSince: b(after)}, true, v, NotModified},
		{"If-Modified-Since earlier", Conditions{IfModifiedSince: b(before)}, true, v, Proceed},
		{"If-Modified-Since asctime", Conditions{IfModifiedSince: b("Sat Oct 29 19:43:31 1994")}, true, v, NotModified},
		{"If-Modified-Since invalid", Conditions{IfModifiedSince: b("Sat, 29 Oct 1994")}, true, v, Proceed},
		{"If-Modified-Since on PUT", Conditions{IfModifiedSince: b(date)}, false, v, Proceed},
		{"If-Modified-Since without Last-Modified", Conditions{IfModifiedSince: b(date)}, true, Validators{ETag: `"x"`}, Proceed},
		{"If-Match fails before If-None-Match", Conditions{IfMatch: b(`"a"`), IfNoneMatch: b(`"xyzzy"`)}, true, v, PreconditionFailed},
		{"If-Unmodified-Since fails before If-Modified-Since", Conditions{IfUnmodifiedSince: b(before), IfModifiedSince: b(date)}, true, v, PreconditionFailed},
	}
	for _, tt := range tests {
		if got := tt.c.Evaluate(tt.getOrHead, tt.v); got != tt.want {
			t.Errorf("%s: Evaluate = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestRangeApplies(t *testing.T) {
	lm := time.Date(1994, 10, 29, 19, 43, 31, 0, time.UTC).Unix()
	wed := time.Date(1994, 11, 2, 19, 43, 31, 0, time.UTC).Unix()
	v := Validators{ETag: `"xyzzy"`, LastModified: lm, HasLastModified: true}
	tests := []struct {
		ifRange string
		v       Validators
		want    bool
	}{
		{"", v, true},
		// RFC 9110 section 13.1.5 examples.
		{`"xyzzy"`, v, true},
		{"Sat, 29 Oct 1994 19:43:31 GMT", v, true},
		{"Saturday, 29-Oct-94 19:43:31 GMT", v, true},
		{" \"xyzzy\" ", v, true},
		{`"other"`, v, false},
		{`W/"xyzzy"`, v, false}, // a weak tag never matches
		{`"xyzzy"`, Validators{ETag: `W/"xyzzy"`}, false},
		{`"xyzzy"`, Validators{}, false},
		{`"xyzzy", "other"`, v, false},
		{"Sat, 29 Oct 1994 19:43:30 GMT", v, false},
		{"Sat, 29 Oct 1994 19:43:32 GMT", v, false},
		{"Sat, 29 Oct 1994 19:43:31 GMT", Validators{ETag: `"xyzzy"`}, false},
		{"garbage", v, false},
		// A date on a Wednesday starts with a W, like a weak tag.
		{"Wed, 02 Nov 1994 19:43:31 GMT", Validators{LastModified: wed, HasLastModified: true}, true},
		{"Wednesday, 02-Nov-94 19:43:31 GMT", Validators{LastModified: wed, HasLastModified: true}, true},
	}
	for _, tt := range tests {
		c := Conditions{IfRange: b(tt.ifRange)}
		if got := c.RangeApplies(tt.v); got != tt.want {
			t.Errorf("If-Range %q against %+v: RangeApplies = %v, want %v", tt.ifRange, tt.v, got, tt.want)
		}
	}
}

type header map[string]string

func (h header) Peek(k string) []byte { return b(h[k]) }

func TestConditionsOf(t *testing.T) {
	h := header{"If-Match": "1", "If-None-Match": "2", "If-Modified-Since": "3", "If-Unmodified-Since": "4", "If-Range": "5"}
	c := ConditionsOf(h)
	got := string(c.IfMatch) + string(c.IfNoneMatch) + string(c.IfModifiedSince) + string(c.IfUnmodifiedSince) + string(c.IfRange)
	if got != "12345" {
		t.Errorf("ConditionsOf(%v) fields = %q, want %q", h, got, "12345")
	}
}

func b(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}
