package httpsem

import (
	"testing"
	"time"
)

func TestParseDate(t *testing.T) {
	// RFC 9110 section 5.6.7: the same instant in the three forms.
	want := time.Date(1994, 11, 6, 8, 49, 37, 0, time.UTC).Unix()
	for _, s := range []string{
		"Sun, 06 Nov 1994 08:49:37 GMT",
		"Sunday, 06-Nov-94 08:49:37 GMT",
		"Sun Nov  6 08:49:37 1994",
		" Sun, 06 Nov 1994 08:49:37 GMT\t",
		"Mon, 06 Nov 1994 08:49:37 GMT", // the weekday need not agree with the date
	} {
		if got, ok := ParseDate(s); !ok || got != want {
			t.Errorf("ParseDate(%q) = %d, %v; want %d, true", s, got, ok, want)
		}
		if got, ok := ParseDate([]byte(s)); !ok || got != want {
			t.Errorf("ParseDate([]byte(%q)) = %d, %v; want %d, true", s, got, ok, want)
		}
	}
	for _, tt := range []struct {
		s    string
		want time.Time
	}{
		{"Thu, 01 Jan 1970 00:00:00 GMT", time.Unix(0, 0)},
		{"Fri, 31 Dec 1999 23:59:59 GMT", time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC)},
		{"Tuesday, 29-Feb-00 12:00:00 GMT", time.Date(2000, 2, 29, 12, 0, 0, 0, time.UTC)},
		{"Thursday, 01-Jan-70 00:00:00 GMT", time.Unix(0, 0)},
		{"Saturday, 31-Dec-68 00:00:00 GMT", time.Date(2068, 12, 31, 0, 0, 0, 0, time.UTC)},
		{"Fri Dec 31 23:59:59 1999", time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC)},
		{"Sat, 31 Dec 2016 23:59:60 GMT", time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC)}, // leap second
	} {
		if got, ok := ParseDate(tt.s); !ok || got != tt.want.Unix() {
			t.Errorf("ParseDate(%q) = %d, %v; want %d, true", tt.s, got, ok, tt.want.Unix())
		}
	}
	for _, s := range []string{
		"",
		"Sun, 06 Nov 1994 08:49:37 UTC",
		"sun, 06 Nov 1994 08:49:37 GMT", // case-sensitive
		"Sun, 06 nov 1994 08:49:37 GMT",
		"Sun, 6 Nov 1994 08:49:37 GMT",
		"Sun, 31 Apr 1994 08:49:37 GMT",
		"Sun, 29 Feb 2001 08:49:37 GMT",
		"Sun, 00 Nov 1994 08:49:37 GMT",
		"Sun, 06 Nov 1994 24:00:00 GMT",
		"Sun, 06 Nov 1994 08:60:00 GMT",
		"Sun, 06 Nov 1994 08:49:61 GMT",
		"Sun, 06 Nov 19x4 08:49:37 GMT",
		"Sun, 06 Nov 1994 08-49-37 GMT",
		"Xyz, 06 Nov 1994 08:49:37 GMT",
		"Sunday, 06-Nov-1994 08:49:37 GMT",
		"Sun, 06-Nov-94 08:49:37 GMT",
		"Sun Nov 6 08:49:37 1994",
		"Sun Nov  6 08:49:37 94",
		"1994-11-06T08:49:37Z",
		"784111777",
	} {
		if got, ok := ParseDate(s); ok {
			t.Errorf("ParseDate(%q) = %d, true; want false", s, got)
		}
	}
}

func TestAppendDate(t *testing.T) {
	at := time.Date(1994, 11, 6, 9, 49, 37, 5e8, time.FixedZone("CET", 3600))
	if got := string(AppendDate(nil, at)); got != "Sun, 06 Nov 1994 08:49:37 GMT" {
		t.Errorf("AppendDate(%v) = %q, want %q", at, got, "Sun, 06 Nov 1994 08:49:37 GMT")
	}
	if got, ok := ParseDate(AppendDate(nil, at)); !ok || got != at.Unix() {
		t.Errorf("ParseDate(AppendDate(%v)) = %d, %v; want %d", at, got, ok, at.Unix())
	}
}

func unixTime(s int64) time.Time { return time.Unix(s, 0) }
