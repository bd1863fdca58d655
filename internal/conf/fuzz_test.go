package conf

import (
	"errors"
	"math"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// FuzzParseSize: ParseSize never panics, accepts only sizes within [0, maxSize], and every size it
// accepts reads back from its String form unchanged.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "512", "64KiB", "64MiB", "1GiB", "2tib", "10kB", "1.5GiB", "64M", "12 MiB",
		"", "-1", "MiB", "12 parsecs", "NaN", "nanKiB", "inf", "-0", "1e300", "0x1p4", "4194304TiB",
		"9007199254740993", "4611686018427387903", "4611686018427387905", "0.9999999999999999KiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		if n < 0 || n > maxSize {
			t.Fatalf("ParseSize(%q) = %d, want an error or a size within [0, %d]", s, int64(n), int64(maxSize))
		}
		if back, err := ParseSize(n.String()); err != nil || back != n {
			t.Fatalf("ParseSize(%q) = %d; ParseSize(%q) = %d, %v; want it back", s, int64(n), n.String(), int64(back), err)
		}
	})
}

// FuzzSizeString: every size within [0, maxSize] reads back from its String form (and its YAML
// form) unchanged; any other is refused, never read as another size.
func FuzzSizeString(f *testing.F) {
	for _, x := range []int64{0, 1, 1023, 1024, 3 << 29, 1<<53 + 1, 1<<62 - 1, 1 << 62, 1<<62 + 1, math.MaxInt64, -1, math.MinInt64} {
		f.Add(x)
	}
	f.Fuzz(func(t *testing.T, x int64) {
		s := Size(x)
		back, err := ParseSize(s.String())
		if s < 0 || s > maxSize {
			if err == nil {
				t.Fatalf("ParseSize(%q) = %d, want an error: %d is outside [0, %d]", s.String(), int64(back), x, int64(maxSize))
			}
			return
		}
		if err != nil || back != s {
			t.Fatalf("ParseSize(%q) = %d, %v; want %d", s.String(), int64(back), err, x)
		}
		out, err := yaml.Marshal(struct{ S Size }{s})
		if err != nil {
			t.Fatal(err)
		}
		var in struct{ S Size }
		if err := yaml.Unmarshal(out, &in); err != nil || in.S != s {
			t.Fatalf("YAML %q decodes to %d, %v; want %d", out, int64(in.S), err, x)
		}
	})
}

// wantDuration is what ParseDuration must answer for s, computed without overflow: the days before
// a first "d" (if any) plus what time.ParseDuration makes of the rest; ok false when it must be
// refused (not of that form, negative, or beyond time.Duration).
func wantDuration(s string) (time.Duration, bool) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, false
	}
	total := new(big.Int)
	if i := strings.IndexByte(t, 'd'); i > 0 {
		days, err := strconv.ParseInt(t[:i], 10, 64)
		if err != nil {
			return 0, false
		}
		total.Mul(big.NewInt(days), big.NewInt(int64(24*time.Hour)))
		t = t[i+1:]
	}
	if t != "" {
		d, err := time.ParseDuration(t)
		if err != nil {
			return 0, false
		}
		total.Add(total, big.NewInt(int64(d)))
	}
	if total.Sign() < 0 || !total.IsInt64() {
		return 0, false
	}
	return time.Duration(total.Int64()), true
}

// FuzzParseDuration: ParseDuration never panics, agrees with wantDuration (so a count of days that
// overflows time.Duration is refused, not wrapped around), and every duration it accepts reads
// back from its String form unchanged.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30s", "250ms", "12h", "30d", "1d12h", "", "3 days", "xd", "-5s", "d", "0d",
		"1d-5h", "-1d25h", "106751d", "106752d", "213504d", "1d1d", "+1d", " 2d ", "2562047h47m16.854775807s",
		"106751d23h47m16.854775807s", "106751d23h47m16.854775808s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		want, ok := wantDuration(s)
		if (err == nil) != ok || err == nil && d != want {
			t.Fatalf("ParseDuration(%q) = %v, %v; want %v (ok %v)", s, d, err, want, ok)
		}
		if err != nil {
			return
		}
		str := Duration(d).String()
		if back, err := ParseDuration(str); err != nil || back != d {
			t.Fatalf("ParseDuration(%q) = %v; ParseDuration(%q) = %v, %v; want it back", s, d, str, back, err)
		}
	})
}

// FuzzDurationString: every duration of 0 or more reads back from its String form (and its YAML
// form) unchanged; a negative one is refused.
func FuzzDurationString(f *testing.F) {
	for _, x := range []int64{0, 1, int64(time.Second), int64(24 * time.Hour), int64(36 * time.Hour), math.MaxInt64, -1, math.MinInt64} {
		f.Add(x)
	}
	f.Fuzz(func(t *testing.T, x int64) {
		d := Duration(x)
		back, err := ParseDuration(d.String())
		if x < 0 {
			if err == nil {
				t.Fatalf("ParseDuration(%q) = %v, want an error for a negative duration", d.String(), back)
			}
			return
		}
		if err != nil || back != time.Duration(x) {
			t.Fatalf("ParseDuration(%q) = %v, %v; want %v", d.String(), back, err, time.Duration(x))
		}
		out, err := yaml.Marshal(struct{ D Duration }{d})
		if err != nil {
			t.Fatal(err)
		}
		var in struct{ D Duration }
		if err := yaml.Unmarshal(out, &in); err != nil || in.D != d {
			t.Fatalf("YAML %q decodes to %v, %v; want %v", out, in.D.D(), err, d.D())
		}
	})
}

// maxLine is the number of lines YAML can see in data at most: it breaks lines at "\r", "\n" and
// "\r\n", and at NEL, LS and PS.
func maxLine(data []byte) int {
	s := string(data)
	return 1 + strings.Count(s, "\n") + strings.Count(s, "\r") + strings.Count(s, "\u0085") +
		strings.Count(s, "\u2028") + strings.Count(s, "\u2029")
}

// FuzzDecode: Decode never panics; what it refuses comes back as *Error values naming the file,
// each with a line of the document or 0; what it accepts encodes to YAML that decodes to the same
// configuration.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		"section:\n  listen: 127.0.0.1:1\n  max_body: 1GiB\n  routes:\n    - {prefix: /a/, ttl: 2d}\n",
		"section:\n  listen: :1\n  lisen: :2\n",
		"section:\n  max_body: 12 parsecs\n",
		"section:\n  routes:\n    - prefix: /a/\n      ttl: soon\n",
		"section:\n  routes:\n    - prefix: /a/\n    - prefix: b\n",
		"section:\n  listen: [\n",
		"section:\n  routes: 5\n",
		"section: 7\n",
		"section:\n  listen: [1]\n",
		"a: &x {listen: 1}\nsection: *x\n",
		"section:\n  max_body: nan\n",
		"section:\n  routes:\n    - {prefix: /a/, ttl: 213504d}\n",
		"",
		"---\n---\n",
		" \r0", // a line of its own: YAML breaks lines at "\r" too
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v testFile
		err := Decode("f.yaml", data, &v)
		if err != nil {
			lines := maxLine(data)
			for _, e := range unjoin(err) {
				var ce *Error
				if !errors.As(e, &ce) || ce.File != "f.yaml" || ce.Line < 0 || ce.Line > lines {
					t.Fatalf("Decode(%q): error %#v (%v), want a *conf.Error in f.yaml with a line within [0, %d]", data, e, e, lines)
				}
			}
			return
		}
		out, err := yaml.Marshal(&v)
		if err != nil {
			t.Fatalf("Decode(%q) = %+v; yaml.Marshal: %v", data, v, err)
		}
		// Compared in their YAML form: an empty list may come back nil.
		var again testFile
		err = Decode("again.yaml", out, &again)
		out2, _ := yaml.Marshal(&again)
		if err != nil || string(out2) != string(out) {
			t.Fatalf("Decode(%q) = %+v, which encodes as %q and decodes to %+v (%q), %v", data, v, out, again, out2, err)
		}
	})
}

// FuzzLocate: Locate never panics on any field path, and names a line of the document or 0.
func FuzzLocate(f *testing.F) {
	doc := "section:\n  listen: :1\n  routes:\n    - prefix: /a/\n    - prefix: b\n"
	for _, field := range []string{"section.routes[1].prefix", "section.routes[-1]", "section.routes[9]",
		"section..listen", "[0]", "", "section.listen.x", "section.routes[1]]["} {
		f.Add([]byte(doc), field)
	}
	f.Add([]byte("\r0"), "0")
	f.Fuzz(func(t *testing.T, data []byte, field string) {
		var n yaml.Node
		if yaml.Unmarshal(data, &n) != nil {
			return
		}
		err := Locate("f.yaml", &n, Field(field, "", "bad"))
		var ce *Error
		if !errors.As(err, &ce) || ce.Field != field || ce.Line < 0 || ce.Line > maxLine(data) {
			t.Fatalf("Locate(%q in %q) = %#v, want a *conf.Error for the field with a line of the document or 0", field, data, err)
		}
	})
}
