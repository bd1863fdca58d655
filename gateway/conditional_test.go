package gateway

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/mogway/mogway/cache"
	"github.com/mogway/mogway/internal/httpsem"
)

// rfc850 is the obsolete RFC 850 form of an HTTP date, which RFC 9110 section 5.6.7 obliges a
// recipient to read.
const rfc850 = "Monday, 02-Jan-06 15:04:05 GMT"

// TestPreconditionsAndRanges runs RFC 9110 preconditions and ranges against a tracker route (the
// storage node's answer, evaluated in commit) and a cached route (the cached validators).
func TestPreconditionsAndRanges(t *testing.T) {
	t.Parallel()
	_, ft, data := storedObject(t, "p.bin", 41, 50000)
	plain := startGateway(t, trackerConfig(), Deps{Tracker: ft})
	cached := startGateway(t, cacheRouteConfig(cache.Config{}), Deps{Tracker: ft})
	if code, _, _, err := get(t, "GET", cached.base+"/d/p.bin"); code != 200 || err != nil {
		t.Fatalf("GET to fill the cache = %d, %v", code, err)
	}
	waitFills(t, cached, 1)
	_, h, _, _ := get(t, "HEAD", plain.base+"/d/p.bin")
	lm := h.Get("Last-Modified")
	mtime, err := http.ParseTime(lm)
	if err != nil {
		t.Fatalf("Last-Modified %q: %v", lm, err)
	}
	const etag = `"fid-41"`
	earlier := mtime.Add(-time.Hour).Format(http.TimeFormat)
	tests := []struct {
		hdr      []string
		code     int
		cr       string // Content-Range wanted on a 206 or 416
		from, to int    // body wanted on a 200 or 206
	}{
		{[]string{"If-Match", etag}, 200, "", 0, len(data)},
		{[]string{"If-Match", `"other", ` + etag}, 200, "", 0, len(data)},
		{[]string{"If-Match", `"other"`}, 412, "", 0, 0},
		{[]string{"If-Match", "W/" + etag}, 412, "", 0, 0}, // strong comparison
		{[]string{"If-Unmodified-Since", earlier}, 412, "", 0, 0},
		{[]string{"If-Unmodified-Since", lm}, 200, "", 0, len(data)},
		{[]string{"If-None-Match", "*"}, 304, "", 0, 0},
		{[]string{"If-None-Match", "W/" + etag}, 304, "", 0, 0},
		{[]string{"If-None-Match", etag, "Range", "bytes=0-9"}, 304, "", 0, 0}, // preconditions before Range
		{[]string{"If-Modified-Since", mtime.Format(rfc850)}, 304, "", 0, 0},
		{[]string{"If-Modified-Since", mtime.Format(time.ANSIC)}, 304, "", 0, 0},
		{[]string{"If-Modified-Since", earlier}, 200, "", 0, len(data)},
		{[]string{"Range", "bytes=0-9,10-19"}, 206, "bytes 0-19/50000", 0, 20}, // coalesced
		{[]string{"Range", "bytes=-10,49000-"}, 206, "bytes 49000-49999/50000", 49000, 50000},
		{[]string{"Range", "bytes=5-1"}, 416, "bytes */50000", 0, 0}, // invalid: rejected
		{[]string{"Range", "bytes=60000-,70000-"}, 416, "bytes */50000", 0, 0},
		{[]string{"Range", "bytes=0-99999999999999999999"}, 206, "bytes 0-49999/50000", 0, 50000},
		{[]string{"Range", "bytes=0-3", "If-Range", lm}, 206, "bytes 0-3/50000", 0, 4},
		{[]string{"Range", "bytes=0-3", "If-Range", mtime.Format(rfc850)}, 206, "bytes 0-3/50000", 0, 4},
		{[]string{"Range", "bytes=0-3", "If-Range", "W/" + etag}, 200, "", 0, len(data)},
		{[]string{"Range", "bytes=0-3", "If-Range", earlier}, 200, "", 0, len(data)},
	}
	for _, g := range []struct {
		name string
		gw   *gw
	}{{"tracker route", plain}, {"cached route", cached}} {
		for _, tt := range tests {
			code, h, body, err := get(t, "GET", g.gw.base+"/d/p.bin", tt.hdr...)
			if err != nil || code != tt.code {
				t.Errorf("%s: GET with %q = %d, %v; want %d", g.name, tt.hdr, code, err, tt.code)
				continue
			}
			if cr := h.Get("Content-Range"); cr != tt.cr {
				t.Errorf("%s: GET with %q: Content-Range = %q, want %q", g.name, tt.hdr, cr, tt.cr)
			}
			switch code {
			case 200, 206:
				if !bytes.Equal(body, data[tt.from:tt.to]) {
					t.Errorf("%s: GET with %q = %d bytes, want bytes %d-%d", g.name, tt.hdr, len(body), tt.from, tt.to)
				}
			case 304:
				if len(body) != 0 || h.Get("Content-Type") != "" || h.Get("ETag") != etag {
					t.Errorf("%s: GET with %q: 304 with %d bytes, Content-Type %q, ETag %q", g.name, tt.hdr, len(body), h.Get("Content-Type"), h.Get("ETag"))
				}
			}
		}
	}
}

// TestRangeAndPreconditionAllocs: what a cached-route GET does with Range and the precondition fields
// allocates nothing.
func TestRangeAndPreconditionAllocs(t *testing.T) {
	var ctx fasthttp.RequestCtx
	h := &ctx.Request.Header
	h.Set("Range", "bytes=100-199,200-299")
	h.Set("If-None-Match", `W/"a", "fid-16"`)
	h.Set("If-Match", `"fid-17"`)
	h.Set("If-Range", "Sun, 06 Nov 1994 08:49:37 GMT")
	const etag, modified = `"fid-17"`, "Sun, 06 Nov 1994 08:49:37 GMT"
	allocs := testing.AllocsPerRun(100, func() {
		val := validators(etag, modified)
		cond := httpsem.ConditionsOf(h)
		if preconditionsFail(&ctx, &cond, val) || !cond.RangeApplies(val) {
			t.Fatalf("preconditions fail or If-Range does not apply")
		}
		rng, _ := httpsem.ParseRange(h.Peek("Range"))
		off, n, st := rng.Resolve(1000)
		if st != httpsem.RangeOK {
			t.Fatalf("Resolve = %d, want RangeOK", st)
		}
		setContentRange(&ctx, off, n, 1000)
	})
	if allocs != 0 {
		t.Errorf("Range and preconditions: %v allocations, want 0", allocs)
	}
	if cr := string(ctx.Response.Header.Peek("Content-Range")); cr != "bytes 100-299/1000" {
		t.Errorf("Content-Range = %q, want %q", cr, "bytes 100-299/1000")
	}
}

func TestPlainHead(t *testing.T) {
	for _, tc := range []struct {
		fields string
		plain  bool
	}{
		{"Host: a\r\nUser-Agent: x\r\nAccept: */*\r\n", true},
		{"Host: a\r\nReferer: http://b/\r\nIf-Modified: no\r\n", false}, // "If-" prefix: looked up in full
		{"Host: a\r\nReferer: http://b/\r\nIfx: 1\r\n", true},
		{"Host: a\r\nrange: bytes=0-1\r\n", false},
		{"Host: a\r\nRANGE : bytes=0-1\r\n", false},
		{"Host: a\r\nRanges: 1\r\n", true},
		{"Host: a\r\nif-none-match: \"x\"\r\n", false},
		{"If-Range: \"x\"\r\nHost: a\r\n", false},
		{"Host: a\r\nX-A: 1\r\n continued\r\n", false},
	} {
		var req fasthttp.Request
		if err := req.Read(bufio.NewReader(strings.NewReader("GET / HTTP/1.1\r\n" + tc.fields + "\r\n"))); err != nil {
			t.Fatalf("%q: %v", tc.fields, err)
		}
		if got := plainHead(&req.Header); got != tc.plain {
			t.Errorf("plainHead(%q) = %v, want %v", tc.fields, got, tc.plain)
		}
	}
	var h fasthttp.RequestHeader // not read from a client: no raw fields
	if plainHead(&h) {
		t.Error("plainHead of a head with no raw fields = true, want false")
	}
}
