package purge

import (
	"strings"
	"testing"

	"github.com/mogway/mogway/internal/testutil"
)

func TestParsePath(t *testing.T) {
	testSelectorParser(t, "ParsePath", ParsePath, map[string]Selector{
		"/images/a.jpg": {KindURI, "/images/a.jpg"},
		"/":             {KindURI, "/"},
		"/images/*":     {KindPrefix, "/images/"},
		"/images/a*":    {KindPrefix, "/images/a"},
		"/*":            {KindAll, ""},
		"/a*b":          {KindURI, "/a*b"},
		"/**":           {KindPrefix, "/*"},
		"/ünï code":     {KindURI, "/ünï code"},
	}, map[string]error{
		"":                                    ErrEmptyPath,
		"*":                                   ErrBadPath,
		"images/a.jpg":                        ErrBadPath,
		"/a\nb":                               ErrBadPath,
		"/a\x00":                              ErrBadPath,
		"/\xff":                               ErrBadPath,
		"/" + strings.Repeat("a", maxPathLen): ErrLongPath,
	})
}

// testSelectorParser checks parse against the selectors it must return and the errors it must
// refuse with, and that every selector it returns writes back as its input.
func testSelectorParser(t *testing.T, name string, parse func(string) (Selector, error), valid map[string]Selector, invalid map[string]error) {
	t.Helper()
	testutil.Parses(t, name, parse, valid)
	testutil.RejectsWith(t, name, parse, invalid)
	for in := range valid {
		if sel, _ := parse(in); sel.String() != in {
			t.Errorf("%s(%q).String() = %q, want the input", name, in, sel.String())
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
