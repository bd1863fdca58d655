package gateway

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseRequestPath(t *testing.T) {
	tests := []struct {
		raw, clean, written, query string
		err                        error
	}{
		{"/download/a/b%20c.jpg", "/download/a/b c.jpg", "/download/a/b c.jpg", "", nil},
		{"/download/a.jpg?download=1&x=%20", "/download/a.jpg", "/download/a.jpg", "download=1&x=%20", nil},
		{"/d//a///b", "/d/a/b", "/d/a/b", "", nil},
		{"/d/./a/./b/", "/d/a/b/", "/d/./a/./b/", "", nil},
		{"/d/x/../a", "/d/a", "/d/x/../a", "", nil},
		{"/d/%2e%2e/a", "/a", "/d/../a", "", nil},
		{"/d/a%2Fb", "/d/a/b", "/d/a/b", "", nil},
		{"/d/a+b", "/d/a+b", "/d/a+b", "", nil},
		{"/d/%C3%A9t%C3%A9", "/d/été", "/d/été", "", nil},
		{"/", "/", "/", "", nil},
		{"/d/a#frag", "/d/a", "/d/a", "", nil},
		{"http://host/d/a?q", "/d/a", "/d/a", "q", nil},
		{"HTTPS://host", "/", "/", "", nil},
		{"/..", "", "", "", errEscapeRoot},
		{"/d/../../a", "", "", "", errEscapeRoot},
		{"/d/a%zz", "", "", "", errBadEscape},
		{"/d/a%2", "", "", "", errBadEscape},
		{"/d/a%", "", "", "", errBadEscape},
		{"/d/a%00", "", "", "", errControl},
		{"/d/a%0A", "", "", "", errControl},
		{"/d/a%7f", "", "", "", errControl},
		{"/d/a\x01", "", "", "", errControl},
		{"d/a", "", "", "", errNotPath},
		{"*", "", "", "", errNotPath},
		{"", "", "", "", errNotPath},
	}
	for _, tt := range tests {
		got, err := parseRequestPath([]byte(tt.raw))
		if !errors.Is(err, tt.err) {
			t.Errorf("parseRequestPath(%q) error = %v, want %v", tt.raw, err, tt.err)
			continue
		}
		if err != nil {
			continue
		}
		if got.clean != tt.clean || got.written != tt.written || string(got.query) != tt.query {
			t.Errorf("parseRequestPath(%q) = clean %q written %q query %q; want %q %q %q",
				tt.raw, got.clean, got.written, got.query, tt.clean, tt.written, tt.query)
		}
	}
}

func TestDeriveKey(t *testing.T) {
	tests := []struct {
		mode, prefix, clean, want string
		err                       error
	}{
		// Spec 7.2: the prefix cut from the decoded, normalised URI; no leading slash.
		{"module", "/download/", "/download/a/b c.jpg", "a/b c.jpg", nil},
		{"module", "/download", "/download/a", "a", nil},
		{"module", "/download/", "/download/dir/", "dir/", nil},
		{"module", "/dl", "/dlx/a", "x/a", nil},
		{"module", "/", "/img/2024/a_b-c.d,e:f", "img/2024/a_b-c.d,e:f", nil},
		{"module", "/download/", "/download/", "", errEmptyKey},
		{"module", "/download/", "/download/0", "0", nil},
		// Mode uri: the whole path, like `location ~ ^(/images/.*)$ { mogilefs_pass $1; }`.
		{"uri", "/images/", "/images/a.jpg", "/images/a.jpg", nil},
		{"uri", "/images/", "/images/", "/images/", nil},
	}
	for _, tt := range tests {
		got, err := deriveKey(tt.mode, tt.prefix, tt.clean)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("deriveKey(%q, %q, %q) = %q, %v; want %q, %v", tt.mode, tt.prefix, tt.clean, got, err, tt.want, tt.err)
		}
	}
}

func TestRouteMatchLongestPrefix(t *testing.T) {
	tbl := newTable([]Route{
		{Prefix: "/"}, {Prefix: "/img/"}, {Prefix: "/img/thumbs/"},
		{Prefix: "/group1/M00/", Servers: []UpstreamServer{{Addr: "127.0.0.1:1"}}},
	}, newNodes(nodeOptions{}), false)
	tests := []struct{ path, want string }{
		{"/img/a.jpg", "/img/"},
		{"/img/thumbs/a.jpg", "/img/thumbs/"},
		{"/img", "/"},
		{"/other", "/"},
		{"/group1/M00/00/00/x.jpg", "/group1/M00/"},
	}
	for _, tt := range tests {
		r := tbl.match(tt.path)
		if r == nil || r.Prefix != tt.want {
			t.Errorf("match(%q) = %v, want prefix %q", tt.path, r, tt.want)
		}
	}
	if r := newTable([]Route{{Prefix: "/a/"}}, newNodes(nodeOptions{}), false).match("/b"); r != nil {
		t.Errorf("match(/b) = %q, want no route", r.Prefix)
	}
}

func FuzzParseRequestPath(f *testing.F) {
	for _, s := range []string{"/d/a", "/d/../x", "/a%20b?c", "/%zz", "//a//b/", "http://h/x", "/a/./b/../c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		rp, err := parseRequestPath([]byte(raw))
		if err != nil {
			return
		}
		if !strings.HasPrefix(rp.clean, "/") {
			t.Fatalf("clean %q of %q does not start with /", rp.clean, raw)
		}
		for _, seg := range strings.Split(rp.clean, "/") {
			if seg == ".." || seg == "." {
				t.Fatalf("clean %q of %q keeps a dot segment", rp.clean, raw)
			}
		}
		if strings.Contains(rp.clean, "//") {
			t.Fatalf("clean %q of %q has //", rp.clean, raw)
		}
		for i := 0; i < len(rp.clean); i++ {
			if c := rp.clean[i]; c < 0x20 || c == 0x7f {
				t.Fatalf("clean %q of %q has control byte %#x", rp.clean, raw, c)
			}
		}
		again, err := normalize(rp.clean)
		if err != nil || again != rp.clean {
			t.Fatalf("normalize(%q) = %q, %v; want it unchanged", rp.clean, again, err)
		}
	})
}

func TestAccessLineAllocs(t *testing.T) {
	rec := &accessRecord{remote: netip.MustParseAddr("127.0.0.1"), method: "GET", uri: "/d/k", proto: "HTTP/1.1", status: 200,
		bytes: 5, upstreams: []string{"127.0.0.2:7500"}, times: []time.Duration{time.Millisecond}}
	buf := make([]byte, 0, 512)
	now := time.Now()
	if n := testing.AllocsPerRun(100, func() { buf = appendAccessLine(buf[:0], rec, now) }); n != 0 {
		t.Errorf("appendAccessLine allocates %v times per line, want 0", n)
	}
}

func BenchmarkParseRequestPath(b *testing.B) {
	raw := []byte("/download/photos/2024/06/a%20b/IMG_0001.jpg?download=1")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseRequestPath(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAccessLine(b *testing.B) {
	rec := &accessRecord{remote: netip.MustParseAddr("10.1.2.3"), method: "GET", uri: "/download/photos/a.jpg", proto: "HTTP/1.1",
		status: 200, bytes: 51234, userAgent: "Mozilla/5.0 (X11; Linux x86_64)", upstreams: []string{"10.0.0.11:7500"},
		times: []time.Duration{3 * time.Millisecond}}
	buf := make([]byte, 0, 512)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		buf = appendAccessLine(buf[:0], rec, now)
	}
}

func FuzzIsNormal(f *testing.F) {
	for _, s := range []string{"/", "/a", "/a/", "//", "/a//b", "/.", "/..", "/a/./b", "/a/../", "/.a/..b/", "/a/b/."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		p = "/" + p
		got, err := resolveDots(p)
		if want := err == nil && got == p; isNormal(p) != want {
			t.Fatalf("isNormal(%q) = %v, but resolveDots gives %q, %v", p, !want, got, err)
		}
	})
}

func TestRouteAllocs(t *testing.T) {
	cfg := benchConfig(Route{Prefix: "/download/", Domain: "photos"})
	tab := newTable(cfg.withDefaults().Routes, newNodes(nodeOptions{}), false)
	raw := []byte("/download/2026/11/a%20b.jpg?size=large")
	// One allocation: the decoded path, which the key and the access log share.
	if allocs := testing.AllocsPerRun(100, func() { routeKey(t, tab, raw) }); allocs > 1 {
		t.Errorf("routing %q: %v allocations, want at most 1", raw, allocs)
	}
}
