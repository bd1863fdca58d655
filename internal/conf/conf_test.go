package conf

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/testutil"
)

func TestParseSize(t *testing.T) {
	testutil.Parses(t, "ParseSize", ParseSize, map[string]Size{
		"0":      0,
		"512":    512,
		"64KiB":  64 << 10,
		"64MiB":  64 << 20,
		"1GiB":   1 << 30,
		"2tib":   2 << 40,
		"10kB":   10000,
		"1.5GiB": 3 << 29,
		"64M":    64 << 20,
		"12 MiB": 12 << 20,
		// Whole numbers are read exactly, not rounded through a float64 (FuzzSizeString).
		"9007199254740993":    1<<53 + 1,
		"4611686018427387903": 1<<62 - 1,
		"4194304TiB":          1 << 62,
	})
	// NaN converted to a negative Size (FuzzParseSize); above 1<<62 is too large, not rounded to it.
	testutil.Rejects(t, "ParseSize", ParseSize, "", "-1", "MiB", "12 parsecs", "NaN", "nanKiB",
		"4611686018427387905", "4194305TiB", "1e300")
}

func TestParseDuration(t *testing.T) {
	testutil.Parses(t, "ParseDuration", ParseDuration, map[string]time.Duration{
		"30s":                        30 * time.Second,
		"250ms":                      250 * time.Millisecond,
		"12h":                        12 * time.Hour,
		"30d":                        30 * 24 * time.Hour,
		"1d12h":                      36 * time.Hour,
		"106751d23h47m16.854775807s": math.MaxInt64,
	})
	// Days beyond time.Duration wrapped around: "213504d" read as 25m26s (FuzzParseDuration).
	testutil.Rejects(t, "ParseDuration", ParseDuration, "", "3 days", "xd", "-5s",
		"106752d", "213504d", "106751d23h47m16.854775808s", "106751d2562047h")
}

type testRoute struct {
	Prefix string   `yaml:"prefix"`
	TTL    Duration `yaml:"ttl"`
}

type testSection struct {
	Listen string      `yaml:"listen"`
	Max    Size        `yaml:"max_body"`
	Routes []testRoute `yaml:"routes"`
}

func (s *testSection) Validate() error {
	for i, r := range s.Routes {
		if !strings.HasPrefix(r.Prefix, "/") {
			return Field("routes["+itoa(i)+"].prefix", `write e.g. prefix: /images/`, "must start with /")
		}
	}
	return nil
}

type testFile struct {
	Section testSection `yaml:"section"`
}

func (f *testFile) Validate() error { return Within("section", f.Section.Validate()) }

func itoa(i int) string { return string(rune('0' + i)) }

func TestDecodeErrorsNameFileLineField(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown field", "section:\n  listen: :1\n  lisen: :2\n", []string{"cfg.yaml:3:", "section.lisen", "unknown field", `did you mean "listen"`}},
		{"bad size", "section:\n  max_body: 12 parsecs\n", []string{"cfg.yaml:2: section.max_body:", "invalid size"}},
		{"bad duration", "section:\n  routes:\n    - prefix: /a/\n      ttl: soon\n", []string{"cfg.yaml:4: section.routes[0].ttl:", "invalid duration"}},
		{"validate", "section:\n  routes:\n    - prefix: /a/\n    - prefix: b\n", []string{"cfg.yaml:4:", "section.routes[1].prefix", "must start with /", "write e.g. prefix: /images/"}},
		{"syntax", "section:\n  listen: [\n", []string{"cfg.yaml:"}},
		{"wrong type", "section:\n  routes: 5\n", []string{"cfg.yaml:2: section.routes:"}},
		{"wrong section type", "section: 7\n", []string{"cfg.yaml:1: section:"}},
		{"flow sequence", "section:\n  listen: [1]\n", []string{"cfg.yaml:2: section.listen:"}},
	}
	for _, tt := range tests {
		var f testFile
		err := Decode("cfg.yaml", []byte(tt.yaml), &f)
		if err == nil {
			t.Errorf("%s: Decode succeeded, want error", tt.name)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: Decode error %q does not contain %q", tt.name, err, w)
			}
		}
	}
}

func TestDecodeGood(t *testing.T) {
	var f testFile
	err := Decode("cfg.yaml", []byte("section:\n  listen: 127.0.0.1:1\n  max_body: 1GiB\n  routes:\n    - {prefix: /a/, ttl: 2d}\n"), &f)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if f.Section.Max != GiB || f.Section.Routes[0].TTL.D() != 48*time.Hour {
		t.Errorf("Decode = %+v", f)
	}
}

func TestFieldErrors(t *testing.T) {
	other := errors.New("not a field")
	err := errors.Join(Field("a", "fix a", "bad"), Within("s", errors.Join(Field("b", "", "bad"), other)))
	fields, others := FieldErrors(err)
	var names []string
	for _, fe := range fields {
		names = append(names, fe.Field)
	}
	if strings.Join(names, ",") != "a,s.b" || len(others) != 1 || others[0] != other {
		t.Errorf("FieldErrors = %v, %v; want fields a and s.b and the one other error", names, others)
	}
	if f, o := FieldErrors(nil); f != nil || o != nil {
		t.Errorf("FieldErrors(nil) = %v, %v; want nothing", f, o)
	}
}

func TestProblems(t *testing.T) {
	var none Problems
	none.NotNegative("n", 0, "fix")
	none.AtLeast("d", Duration(time.Second), time.Second, "fix")
	none.AddErr(nil)
	if err := none.Err(); err != nil {
		t.Fatalf("Err() with every check passing = %v, want nil", err)
	}

	var p Problems
	p.Add("listen", "write host:port", "invalid address %q", "x")
	p.NotNegative("workers", -2, "write a positive number")
	p.AtLeast("interval", Duration(5*time.Millisecond), 10*time.Millisecond, "write 10ms or more")
	p.AddErr(Within("disk", errors.Join(Field("path", "", "missing"), Field("[0]", "", "bad"))))
	// Within the caller's section every problem gets the prefix, those added from a joined error too.
	fields, others := FieldErrors(Within("s", p.Err()))
	var got []string
	for _, f := range fields {
		got = append(got, f.Error())
	}
	want := []string{
		`s.listen: invalid address "x"; write host:port`,
		"s.workers: -2 is negative; write a positive number",
		"s.interval: 5ms is too short; write 10ms or more",
		"s.disk.path: missing",
		"s.disk[0]: bad",
	}
	if !reflect.DeepEqual(got, want) || len(others) != 0 {
		t.Errorf("FieldErrors(Err()) = %q, %v; want %q and no others", got, others, want)
	}
}
