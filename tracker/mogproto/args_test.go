package mogproto

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/mogway/mogway/internal/testutil"
)

func TestEscape(t *testing.T) {
	testutil.Table(t, "Escape", Escape, map[string]string{
		"":                         "",
		"a/b.jpg":                  "a/b.jpg",
		"/img/2024/a_b-c.d,e:f\\g": "/img/2024/a_b-c.d,e:f\\g",
		"a b":                      "a+b",
		"a+b":                      "a%2Bb",
		"été":                      "%C3%A9t%C3%A9",
		"&=%?';(":                  "%26%3D%25%3F%27%3B%28",
		"\x00\x1f\x7f\xff":         "%00%1F%7F%FF",
		"No keys match that pattern and after-value (if any).": "No+keys+match+that+pattern+and+after-value+%28if+any%29.",
		"Target key name already exists; can't overwrite.":     "Target+key+name+already+exists%3B+can%27t+overwrite.",
		"Domain still has files, unable to delete":             "Domain+still+has+files,+unable+to+delete",
	})
}

func TestUnescape(t *testing.T) {
	testutil.Table(t, "Unescape", Unescape, map[string]string{
		"":              "",
		"a+b%2Bc":       "a b+c",
		"%C3%A9t%c3%a9": "été",
		"100%":          "100%",
		"%zz%4":         "%zz%4",
		"%2":            "%2",
		"%%41":          "%A",
		"%2B+":          "+ ",
	})
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		in   string
		want Args
	}{
		{"", Args{}},
		{"domain=d&key=k", Args{{"domain", "d"}, {"key", "k"}}},
		{"key=a+b%2Bc", Args{{"key", "a b+c"}}},
		{"key=x=y", Args{{"key", "x"}}},             // second '=' truncates
		{"key=x%3Dy", Args{{"key", "x=y"}}},         // encoded '=' survives
		{"a=1&&b=2&", Args{{"a", "1"}, {"b", "2"}}}, // empty segments dropped
		{"0&a=1&0", Args{{"a", "1"}}},               // "0" segments dropped
		{"00&a=1", Args{{"00", ""}, {"a", "1"}}},    // "00" is true in Perl
		{"flag", Args{{"flag", ""}}},
		{"=v", Args{{"", "v"}}},
		{"a==b", Args{{"a", ""}}},
		{"class=a&class=b", Args{{"class", "a\x00b"}}},
		{"class=&class=b", Args{{"class", "b"}}},
		{"class=0&class=b", Args{{"class", "0b"}}},
		{"class=a&x=1&class=b&class=c", Args{{"class", "a\x00b\x00c"}, {"x", "1"}}},
		{"n%61me=v%41l", Args{{"name", "vAl"}}},
		{"key=%C3%A9t%C3%A9", Args{{"key", "été"}}},
		{"key=100%", Args{{"key", "100%"}}},
	}
	for _, tt := range tests {
		got, err := ParseArgs([]byte(tt.in))
		if err != nil {
			t.Errorf("ParseArgs(%q) error %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestAppendArgs(t *testing.T) {
	tests := []struct {
		in   Args
		want string
	}{
		{nil, ""},
		{Args{{"domain", "photos"}, {"key", "a/b.jpg"}, {"class", ""}, {"fid", "0"}, {"multi_dest", "1"}},
			"domain=photos&key=a/b.jpg&class=&fid=0&multi_dest=1"},
		{Args{{"key", "a+b c"}}, "key=a%2Bb+c"},
		{Args{{"key", "x=y&z"}}, "key=x%3Dy%26z"},
		{Args{{"a b", "é"}}, "a+b=%C3%A9"},
	}
	for _, tt := range tests {
		if got := string(AppendArgs(nil, tt.in)); got != tt.want {
			t.Errorf("AppendArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestArgsAccessors(t *testing.T) {
	var a Args
	a.Add("paths", "2")
	a.Add("path1", "http://a/1")
	a.Add("path2", "http://b/2")
	a.Set("paths", "2")
	a.Set("x", "y")
	if got := len(a); got != 4 {
		t.Fatalf("len = %d, want 4", got)
	}
	if got := a.Get("x"); got != "y" {
		t.Errorf("Get(%q) = %q, want %q", "x", got, "y")
	}
	if _, ok := a.Lookup("nope"); ok {
		t.Errorf("Lookup(%q) found a value", "nope")
	}
	if n, ok := a.Int("paths"); !ok || n != 2 {
		t.Errorf("Int(%q) = %d, %v, want 2, true", "paths", n, ok)
	}
	if _, ok := a.Int("x"); ok {
		t.Errorf("Int(%q) ok on a non-integer", "x")
	}
	paths, err := a.List("paths", "path", "")
	if want := []string{"http://a/1", "http://b/2"}; err != nil || !reflect.DeepEqual(paths, want) {
		t.Errorf("List(paths) = %q, %v, want %q", paths, err, want)
	}
	if got, err := a.List("absent", "path", ""); err != nil || len(got) != 0 {
		t.Errorf("List(absent) = %q, %v, want empty", got, err)
	}
	a.Set("paths", "3")
	if _, err := a.List("paths", "path", ""); err == nil {
		t.Errorf("List with a missing item: no error")
	}
	b := Args{{"dev2_devid", "7"}}
	if v, ok := b.Indexed("dev", 2, "_devid"); !ok || v != "7" {
		t.Errorf("Indexed(dev, 2, _devid) = %q, %v, want %q", v, ok, "7")
	}
}

func TestIndexedAllocs(t *testing.T) {
	a := Args{{"path1", "x"}, {"path2", "y"}}
	n := testing.AllocsPerRun(100, func() { a.Indexed("path", 2, "") })
	if n != 0 {
		t.Errorf("Indexed allocs = %v, want 0", n)
	}
}

func FuzzArgsRoundTrip(f *testing.F) {
	f.Add("key", "a+b c")
	f.Add("k&=", "%25%zz")
	f.Add("", "0")
	f.Fuzz(func(t *testing.T, name, value string) {
		in := Args{{name, value}, {"z", value}}
		enc := AppendArgs(nil, in)
		if bytes.ContainsAny(enc, " \r\n") {
			t.Fatalf("AppendArgs(%q) = %q contains whitespace", in, enc)
		}
		got, err := ParseArgs(enc)
		if err != nil {
			t.Fatal(err)
		}
		want := in
		if name == "z" {
			// A repeated name joins its values, as the tracker does.
			v := value + "\x00" + value
			if value == "" || value == "0" {
				v = value + value
			}
			want = Args{{"z", v}}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("ParseArgs(AppendArgs(%q)) = %q, want %q", in, got, want)
		}
	})
}

func FuzzParseArgs(f *testing.F) {
	for _, s := range []string{"", "a=1&b=2", "0&&=&a==b", "%", "%2", "a=%C3%A9", "x=1&x=2&x="} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		a, err := ParseArgs(s)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, p := range a {
			if seen[p.Name] {
				t.Fatalf("ParseArgs(%q) repeats name %q", s, p.Name)
			}
			seen[p.Name] = true
		}
	})
}

func BenchmarkAppendArgs(b *testing.B) {
	a := Args{{"domain", "photos"}, {"key", "albums/2024/summer beach+1.jpg"}, {"noverify", "1"}}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendArgs(buf[:0], a)
	}
}

func TestUnhex(t *testing.T) {
	for c := 0; c < 256; c++ {
		want, wantOK := byte(0), false
		switch {
		case '0' <= c && c <= '9':
			want, wantOK = byte(c-'0'), true
		case 'a' <= c && c <= 'f':
			want, wantOK = byte(c-'a'+10), true
		case 'A' <= c && c <= 'F':
			want, wantOK = byte(c-'A'+10), true
		}
		if got, ok := Unhex(byte(c)); got != want || ok != wantOK {
			t.Errorf("Unhex(%q) = %d, %v; want %d, %v", rune(c), got, ok, want, wantOK)
		}
	}
}
