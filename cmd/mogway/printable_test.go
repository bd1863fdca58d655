package main

import (
	"strconv"
	"testing"
)

func TestPrintable(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"albums/2024/beach.jpg", "albums/2024/beach.jpg"},
		{"a b+c&d=e%20", "a b+c&d=e%20"},
		{"été ü", "été ü"},
		{`back\slash`, `back\slash`},
		{`quote"inside`, `quote"inside`},
		{"\uFFFD", "\uFFFD"},
		{"", ""},
		{"line\nfeed", `"line\nfeed"`},
		{"cr\r", `"cr\r"`},
		{"nul\x00byte", `"nul\x00byte"`},
		{"tab\t", `"tab\t"`},
		{"\x1b[31mred", `"\x1b[31mred"`},
		{"del\x7f", `"del\x7f"`},
		{"bad\xffutf8", `"bad\xffutf8"`},
		{"nbsp\u00a0", `"nbsp\u00a0"`},
		{"line\u2028sep", `"line\u2028sep"`},
		{`"quoted"`, `"\"quoted\""`},
	} {
		got := printable(tc.in)
		if got != tc.want {
			t.Errorf("printable(%q) = %s, want %s", tc.in, got, tc.want)
		}
		if got != tc.in {
			if back, err := strconv.Unquote(got); err != nil || back != tc.in {
				t.Errorf("Unquote(printable(%q)) = %q, %v; want the input back", tc.in, back, err)
			}
		}
	}
}

func FuzzPrintable(f *testing.F) {
	for _, s := range []string{"a", "a\nb", "\"", "\xff", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := printable(s)
		if got == s {
			for _, r := range s {
				if !strconv.IsPrint(r) {
					t.Fatalf("printable(%q) left a non-printable rune", s)
				}
			}
			return
		}
		if back, err := strconv.Unquote(got); err != nil || back != s {
			t.Fatalf("Unquote(printable(%q)) = %q, %v", s, back, err)
		}
	})
}
