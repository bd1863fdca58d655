package conftest

import (
	"slices"
	"strings"
	"testing"
)

func TestParseClaim(t *testing.T) {
	for _, tc := range []struct {
		comment string
		kind    claimKind
		token   string
		ok      bool
	}{
		{"# default 5s", claimValue, "5s", true},
		{"# default 10s: a slower tracker answer gives 504", claimValue, "10s", true},
		{"# default 256MiB, fills in progress included", claimValue, "256MiB", true},
		{`# default ":8080"; ":80" where nginx stood`, claimValue, `":8080"`, true},
		{"# default [GET, HEAD]", claimValue, "[GET, HEAD]", true},
		{"# default {200,301,302: 10m, 404: 1m}", claimValue, "{200,301,302: 10m, 404: 1m}", true},
		{"# default none: the header is ignored", claimNone, "none", true},
		{"# default", claimAsWritten, "", true},
		{`# default; "off" disables`, claimAsWritten, "", true},
		{"# the defaults", claimAsWritten, "", true},
		{"# default: the machine's host name", claimExplained, "", true},
		{"# required by tracker routes; default port 7001", 0, "", false},
		{"# defaults are in docs", 0, "", false},
	} {
		kind, token, ok := parseClaim(tc.comment)
		if kind != tc.kind || token != tc.token || ok != tc.ok {
			t.Errorf("parseClaim(%q) = %v, %q, %v, want %v, %q, %v", tc.comment, kind, token, ok, tc.kind, tc.token, tc.ok)
		}
	}
}

// example is a file of two sections, the first with a block another package checks and a
// commented-out entry.
const example = `# default 1, on no key
a:
  x: 1            # default 1
  sub:
    y: 2          # default 2

  # z: 3          # default 3

# about b
b:
  w: 1
`

func TestOwned(t *testing.T) {
	text := strings.Split(example, "\n")
	doc, err := parse(text)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		s         Section
		own       span
		delegated []span
	}{
		{Section{Path: "a", Delegated: []string{"sub", "missing"}}, span{1, 7}, []span{{5, 5}}},
		{Section{Path: "a.sub"}, span{5, 5}, nil},
		{Section{Path: "b"}, span{8, len(text)}, nil},
	} {
		own, delegated, err := owned(doc, text, tc.s)
		if err != nil || own != tc.own || !slices.Equal(delegated, tc.delegated) {
			t.Errorf("owned(%s) = %v, %v, %v, want %v, %v", tc.s.Path, own, delegated, err, tc.own, tc.delegated)
		}
	}
	if _, _, err := owned(doc, text, Section{Path: "a.nothing"}); err == nil {
		t.Errorf("owned(a.nothing) found a section")
	}
}

func TestUncommentEntries(t *testing.T) {
	text := strings.Split(example, "\n")
	var tried []span
	got, done := uncommentEntries(text, span{1, 7}.has, func(try []string, run span) bool {
		tried = append(tried, run)
		return run.first == 7
	})
	// Line 1 holds a claim too but is refused; line 9 is not a's.
	if want := []span{{1, 1}, {7, 7}}; !slices.Equal(tried, want) {
		t.Errorf("runs tried = %v, want %v", tried, want)
	}
	if !slices.Equal(done, []int{7}) || got[6] != "  z: 3          # default 3" || got[0] != text[0] {
		t.Errorf("uncommentEntries = lines %v: %q, %q", done, got[0], got[6])
	}
}
