package gateway

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestDisposition(t *testing.T) {
	d := Download{Param: "download", FilenameParam: "filename"}
	tests := []struct {
		query, key, want string
	}{
		{"", "a/b.jpg", ""},
		{"download=1", "a/b.jpg", `attachment; filename="b.jpg"; filename*=UTF-8''b.jpg`},
		{"download=yes", "b.jpg", `attachment; filename="b.jpg"; filename*=UTF-8''b.jpg`},
		{"download=0", "b.jpg", ""},
		{"download=false", "b.jpg", ""},
		{"filename=report.pdf", "x/1234", `attachment; filename="report.pdf"; filename*=UTF-8''report.pdf`},
		{"filename=report.pdf&download=0", "x", `inline; filename="report.pdf"; filename*=UTF-8''report.pdf`},
		{"download=1&filename=%C3%A9t%C3%A9.txt", "k", `attachment; filename="_t_.txt"; filename*=UTF-8''%C3%A9t%C3%A9.txt`},
		{"download=1&filename=a%22b.txt", "k", `attachment; filename="a_b.txt"; filename*=UTF-8''a%22b.txt`},
		{"download=1&filename=C:%5Cdir%5Cc.txt", "k", `attachment; filename="c.txt"; filename*=UTF-8''c.txt`},
		{"download=1&filename=..%2F..%2Fetc%2Fpasswd", "k", `attachment; filename="passwd"; filename*=UTF-8''passwd`},
		{"download=1&filename=a%0D%0Ab", "k", `attachment; filename="ab"; filename*=UTF-8''ab`},
		{"download=1&filename=my%20file%25.txt", "k", `attachment; filename="my file_.txt"; filename*=UTF-8''my%20file%25.txt`},
		{"download=1", "dir/", "attachment"},
	}
	for _, tt := range tests {
		var args fasthttp.Args
		args.Parse(tt.query)
		if got := disposition(d, &args, tt.key); got != tt.want {
			t.Errorf("disposition(%q, key %q) = %q, want %q", tt.query, tt.key, got, tt.want)
		}
	}
}

func TestAccessLine(t *testing.T) {
	at := time.Date(2026, 11, 21, 19, 59, 16, 0, time.UTC)
	tests := []struct {
		rec  accessRecord
		want string
	}{
		{accessRecord{remote: netip.MustParseAddr("127.0.0.1"), method: "GET", uri: "/d/k", proto: "HTTP/1.1", status: 200, bytes: 5,
			userAgent: "curl/8.5", upstreams: []string{"127.0.0.2:7500"}, times: []time.Duration{3 * time.Millisecond}, cache: "-"},
			`127.0.0.1 - - [21/Nov/2026:19:59:16 +0000] "GET /d/k HTTP/1.1" 200 5 "-" "curl/8.5" 127.0.0.2:7500 0.003 - -` + "\n"},
		{accessRecord{remote: netip.MustParseAddr("10.0.0.1"), method: "GET", uri: "/d/a\"b", proto: "HTTP/1.0", status: 502,
			referer: "http://x/", upstreams: []string{"10.0.0.2:7500", "10.0.0.3:7500"},
			times: []time.Duration{time.Second, 1500 * time.Millisecond}, cache: "MISS"},
			`10.0.0.1 - - [21/Nov/2026:19:59:16 +0000] "GET /d/a\x22b HTTP/1.0" 502 0 "http://x/" "-" 10.0.0.2:7500,10.0.0.3:7500 1.000,1.500 MISS -` + "\n"},
		{accessRecord{method: "GET", uri: "/healthz", proto: "HTTP/1.1", status: 200, bytes: 3, userAgent: "\xff"},
			`- - - [21/Nov/2026:19:59:16 +0000] "GET /healthz HTTP/1.1" 200 3 "-" "\xFF" - - - -` + "\n"},
	}
	for _, tt := range tests {
		if got := string(appendAccessLine(nil, &tt.rec, at)); got != tt.want {
			t.Errorf("appendAccessLine(%+v) =\n%q, want\n%q", tt.rec, got, tt.want)
		}
	}
}

func TestAccessLogThroughGateway(t *testing.T) {
	t.Parallel()
	node, ft := storedBytes(t, "k", 61, []byte("hello"))
	g := startGateway(t, trackerConfig(), Deps{Tracker: ft})
	get(t, "GET", g.base+"/d/k", "User-Agent", "tester/1")
	get(t, "GET", g.base+"/d/missing", "User-Agent", "tester/1")
	waitFor(t, "two access log lines", func() bool { return strings.Count(g.log.String(), "\n") >= 2 })
	lines := strings.Split(strings.TrimSpace(g.log.String()), "\n")
	if !strings.Contains(lines[0], `"GET /d/k HTTP/1.1" 200 5 "-" "tester/1" `+node.addr+" ") {
		t.Errorf("access line = %q, want the request, 200, 5 bytes and upstream %s", lines[0], node.addr)
	}
	if !strings.Contains(lines[1], `"GET /d/missing HTTP/1.1" 404 `) || !strings.HasSuffix(lines[1], " - - - -") {
		t.Errorf("access line = %q, want a 404 with no upstream", lines[1])
	}
}
