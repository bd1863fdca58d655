package purge

import (
	"errors"
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		in   string
		want Selector
		err  error
	}{
		{"/images/a.jpg", Selector{KindURI, "/images/a.jpg"}, nil},
		{"/", Selector{KindURI, "/"}, nil},
		{"/images/*", Selector{KindPrefix, "/images/"}, nil},
		{"/images/a*", Selector{KindPrefix, "/images/a"}, nil},
		{"/*", Selector{KindAll, ""}, nil},
		{"/a*b", Selector{KindURI, "/a*b"}, nil},
		{"/**", Selector{KindPrefix, "/*"}, nil},
		{"/ünï code", Selector{KindURI, "/ünï code"}, nil},
		{"", Selector{}, ErrEmptyPath},
		{"*", Selector{}, ErrBadPath},
		{"images/a.jpg", Selector{}, ErrBadPath},
		{"/a\nb", Selector{}, ErrBadPath},
		{"/a\x00", Selector{}, ErrBadPath},
		{"/\xff", Selector{}, ErrBadPath},
		{"/" + strings.Repeat("a", maxPathLen), Selector{}, ErrLongPath},
	}
	for _, tt := range tests {
		got, err := ParsePath(tt.in)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("ParsePath(%q) = %+v, %v; want %+v, %v", tt.in, got, err, tt.want, tt.err)
		}
		if err == nil {
			if s := got.String(); s != tt.in {
				t.Errorf("ParsePath(%q).String() = %q, want %q", tt.in, s, tt.in)
			}
		}
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/a.jpg", "/images/*", "/*", "", "*", "/a*b", "/\x00", "/**"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		sel, err := ParsePath(p)
		if err != nil {
			if sel != (Selector{}) {
				t.Fatalf("ParsePath(%q) = %+v with error %v", p, sel, err)
			}
			return
		}
		if got := sel.String(); got != p {
			t.Fatalf("ParsePath(%q).String() = %q", p, got)
		}
		again, err := ParsePath(sel.String())
		if err != nil || again != sel {
			t.Fatalf("ParsePath(%q) round trip = %+v, %v; want %+v", p, again, err, sel)
		}
		if sel.Kind != KindAll && !strings.HasPrefix(sel.Arg, "/") {
			t.Fatalf("ParsePath(%q).Arg = %q, want a leading /", p, sel.Arg)
		}
	})
}
