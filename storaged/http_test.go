package storaged

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/testutil"
	"github.com/valyala/fasthttp"
)

func b64md5(b []byte) string {
	s := md5.Sum(b)
	return base64.StdEncoding.EncodeToString(s[:])
}

func TestPutGetRoundTrip(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	mib := make([]byte, 1<<20)
	for i := range mib {
		mib[i] = byte(i * 7)
	}
	// Around smallFileSize a GET switches from reading into the reply to sendfile.
	bodies := [][]byte{{}, {'x'}, mib[:smallFileSize-1], mib[:smallFileSize], mib[:smallFileSize+1],
		mib[:writeBufferSize], mib}
	for _, body := range bodies {
		p := fmt.Sprintf("/dev1/0/000/000/%010d.fid", len(body))
		if got := n.put(t, p, body, nil); got != http.StatusOK {
			t.Fatalf("PUT %s (%d bytes) = %d, want 200", p, len(body), got)
		}
		resp, got := n.get(t, http.MethodGet, p, nil)
		if resp.StatusCode != http.StatusOK || got != string(body) {
			t.Fatalf("GET %s = %d with %d bytes, want 200 with %d", p, resp.StatusCode, len(got), len(body))
		}
		if cl := resp.Header.Get("Content-Length"); cl != fmt.Sprint(len(body)) {
			t.Errorf("GET %s Content-Length = %q, want %d", p, cl, len(body))
		}
		if resp.Header.Get("Last-Modified") == "" || resp.Header.Get("ETag") == "" {
			t.Errorf("GET %s: missing Last-Modified or ETag: %v", p, resp.Header)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/plain" {
			t.Errorf("GET %s Content-Type = %q, want text/plain", p, ct)
		}
		resp, got = n.get(t, http.MethodHead, p, nil)
		if resp.StatusCode != http.StatusOK || got != "" || resp.ContentLength != int64(len(body)) {
			t.Errorf("HEAD %s = %d, length %d, body %d bytes; want 200, %d, none",
				p, resp.StatusCode, resp.ContentLength, len(got), len(body))
		}
	}
	if tmp := tempFiles(t, n.docroot); len(tmp) > 0 {
		t.Errorf("temp files left: %v", tmp)
	}
	if st := n.srv.Stats(); st.Created != int64(len(bodies)) {
		t.Errorf("Stats().Created = %d, want %d", st.Created, len(bodies))
	}
}

// Spec 8.6 #71: the Perl client's PUT: HTTP/1.0, lower-case Content-length, no Host.
func TestPutHTTP10NoHost(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	resp, _ := n.raw(t, "PUT /dev1/0/000/000/0000000099.fid HTTP/1.0\r\nContent-length: 5\r\n\r\nhello")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT = %d, want 200", resp.StatusCode)
	}
	got, err := os.ReadFile(filepath.Join(n.docroot, "dev1/0/000/000/0000000099.fid"))
	if err != nil || string(got) != "hello" {
		t.Fatalf("stored file = %q, %v; want %q", got, err, "hello")
	}
	resp, _ = n.raw(t, "GET /dev1/0/000/000/0000000099.fid HTTP/1.0\r\n\r\n")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Connection") == "keep-alive" {
		t.Errorf("GET HTTP/1.0 = %d Connection %q, want 200 and no keep-alive", resp.StatusCode, resp.Header.Get("Connection"))
	}
}

func TestContentMD5(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	body := []byte("hello")
	if got := n.put(t, "/dev1/a.fid", body, map[string]string{"Content-MD5": b64md5(body)}); got != http.StatusCreated {
		t.Errorf("PUT with correct Content-MD5 = %d, want 201", got)
	}
	unpadded := strings.TrimRight(b64md5(body), "=")
	if got := n.put(t, "/dev1/b.fid", body, map[string]string{"Content-MD5": unpadded}); got != http.StatusCreated {
		t.Errorf("PUT with unpadded Content-MD5 = %d, want 201", got)
	}
	// Spec 4.5: the monitor's bogus-MD5 probe must be rejected.
	if got := n.put(t, "/dev1/test-write/test-md5", []byte("."), map[string]string{"Content-MD5": b64md5([]byte("!"))}); got != http.StatusBadRequest {
		t.Errorf("PUT with wrong Content-MD5 = %d, want 400", got)
	}
	if _, err := os.Stat(filepath.Join(n.docroot, "dev1/test-write/test-md5")); !os.IsNotExist(err) {
		t.Errorf("file left after MD5 mismatch: %v", err)
	}
	if got := n.put(t, "/dev1/c.fid", body, map[string]string{"Content-MD5": "not base64!"}); got != http.StatusBadRequest {
		t.Errorf("PUT with malformed Content-MD5 = %d, want 400", got)
	}
	if tmp := tempFiles(t, n.docroot); len(tmp) > 0 {
		t.Errorf("temp files left: %v", tmp)
	}
}

func TestPutErrors(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	tests := []struct {
		req  string
		want int
	}{
		{"PUT /dev99/x.fid HTTP/1.0\r\nContent-Length: 1\r\n\r\nx", 404},                                         // spec 8.6 #73
		{"PUT /dev1/x.fid HTTP/1.0\r\n\r\n", 411},                                                                // no length
		{"PUT /dev1/x.fid HTTP/1.1\r\nHost: a\r\nContent-Range: bytes 0-1/*\r\nContent-Length: 1\r\n\r\nx", 400}, // length mismatch
		{"PUT /dev1/x.fid HTTP/1.1\r\nHost: a\r\nContent-Range: bytes 0-0/0\r\nContent-Length: 1\r\n\r\nx", 400},
		{"PUT /dev1/x.fid HTTP/1.1\r\nHost: a\r\nContent-Range: 0-0\r\nContent-Length: 1\r\n\r\nx", 400},
		{"PUT /dev1 HTTP/1.0\r\nContent-Length: 1\r\n\r\nx", 400},
		{"POST /dev1/x.fid HTTP/1.0\r\nContent-Length: 1\r\n\r\nx", 400},
		{"MKCOL /dev1/0/ HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 400}, // spec 8.6 #76
		{"OPTIONS / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	}
	for _, tt := range tests {
		resp, _ := n.raw(t, tt.req)
		if resp.StatusCode != tt.want {
			t.Errorf("%s = %d, want %d", firstLine(tt.req), resp.StatusCode, tt.want)
		}
	}
	if _, err := os.Stat(filepath.Join(n.docroot, "dev1/x.fid")); !os.IsNotExist(err) {
		t.Errorf("dev1/x.fid exists after rejected PUTs: %v", err)
	}
	if _, err := os.Stat(filepath.Join(n.docroot, "dev1/0")); !os.IsNotExist(err) {
		t.Errorf("MKCOL created a directory: %v", err)
	}
}

func TestPutMaxBody(t *testing.T) {
	t.Parallel()
	n := startNode(t, func(c *Config) { c.MaxBody = 10 })
	resp, _ := n.raw(t, "PUT /dev1/x.fid HTTP/1.0\r\nContent-Length: 11\r\n\r\nhello world")
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("PUT of 11 bytes with max_body 10 = %d, want 413", resp.StatusCode)
	}
	resp, _ = n.raw(t, "PUT /dev1/x.fid HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n")
	if resp.StatusCode != http.StatusExpectationFailed {
		t.Errorf("PUT of 11 bytes with Expect: 100-continue and max_body 10 = %d, want 417", resp.StatusCode)
	}
	resp, _ = n.raw(t, "PUT /dev1/y.fid HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n")
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked PUT of 11 bytes with max_body 10 = %d, want 413", resp.StatusCode)
	}
	resp, _ = n.raw(t, "PUT /dev1/z.fid HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("chunked PUT of 5 bytes = %d, want 200", resp.StatusCode)
	}
	if got, _ := os.ReadFile(filepath.Join(n.docroot, "dev1/z.fid")); string(got) != "hello" {
		t.Errorf("chunked PUT stored %q, want %q", got, "hello")
	}
	for _, f := range []string{"x.fid", "y.fid"} {
		if _, err := os.Stat(filepath.Join(n.docroot, "dev1", f)); !os.IsNotExist(err) {
			t.Errorf("%s exists after 413: %v", f, err)
		}
	}
	if tmp := tempFiles(t, n.docroot); len(tmp) > 0 {
		t.Errorf("temp files left: %v", tmp)
	}
}

// TestAbortedUpload: a client that closes mid-body, or sends fewer bytes than it announced,
// leaves neither the file nor a temp file.
func TestAbortedUpload(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	for i, tc := range []struct {
		length int // announced
		sent   int // sent before closing
	}{
		{100, 50},              // short, within fasthttp's pre-read
		{1 << 20, 300 << 10},   // client gone mid-body
		{10 << 20, 0},          // nothing after the headers
		{64 << 10, 64<<10 - 1}, // one byte short
	} {
		before := n.srv.Stats()
		name := fmt.Sprintf("dev1/abort/%d.fid", i)
		c := testutil.Dial(t, n.addr)
		fmt.Fprintf(c, "PUT /%s HTTP/1.0\r\nContent-Length: %d\r\n\r\n", name, tc.length)
		c.Write(bytes.Repeat([]byte{'a'}, tc.sent))
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c) // the server's reply, if any, then EOF
		c.Close()
		if tc.sent >= 8<<10 {
			// Past fasthttp's pre-read the handler runs and counts the abort.
			waitFor(t, "the aborted PUT to be counted", func() bool { return n.srv.Stats().Aborted > before.Aborted })
		}
		if _, err := os.Stat(filepath.Join(n.docroot, name)); !os.IsNotExist(err) {
			t.Errorf("case %d: %s exists after aborted upload (%v)", i, name, err)
		}
		if tmp := tempFiles(t, n.docroot); len(tmp) > 0 {
			t.Errorf("case %d: temp files left: %v", i, tmp)
		}
	}
}

// TestFailedPutKeepsOldFile: a PUT that fails (a Content-MD5 mismatch, a body over max_body, a
// client cut off mid-body) leaves the file already at its path as it was, and no temp file.
func TestFailedPutKeepsOldFile(t *testing.T) {
	t.Parallel()
	// Each request fits in the node's read buffer (max_header_size), so the node has read all of it
	// when it answers and closes: no reset can overtake the answer. A body cut off past the 8 KiB
	// fasthttp reads with the head streams into a temp file first.
	const maxBody = 12 << 10
	n := startNode(t, func(c *Config) { c.MaxBody = maxBody })
	const p = "/dev1/0/000/000/0000000007.fid"
	if got := n.put(t, p, []byte("old"), nil); got != http.StatusOK {
		t.Fatalf("PUT old = %d, want 200", got)
	}
	chunk := strings.Repeat("c", 7<<10)
	for _, tc := range []struct {
		name string
		req  string
		cut  bool // the client closes its side after req, short of its Content-Length
		want int
	}{
		{"Content-MD5 mismatch", "PUT " + p + " HTTP/1.1\r\nHost: a\r\nContent-MD5: " + b64md5([]byte("other")) +
			"\r\nContent-Length: 3\r\n\r\nnew", false, http.StatusBadRequest},
		{"announced length over max_body", fmt.Sprintf("PUT %s HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s",
			p, maxBody+1, strings.Repeat("n", maxBody+1)), false, http.StatusRequestEntityTooLarge},
		{"chunked body over max_body", "PUT " + p + " HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
			strings.Repeat(fmt.Sprintf("%x\r\n%s\r\n", len(chunk), chunk), 2) + "0\r\n\r\n", false,
			http.StatusRequestEntityTooLarge},
		{"client cut off mid-body", fmt.Sprintf("PUT %s HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s",
			p, maxBody, strings.Repeat("n", 10<<10)), true, http.StatusBadRequest},
	} {
		before := n.srv.Stats().Aborted
		c := testutil.Dial(t, n.addr)
		c.SetDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck // a bound on a hung test only
		if _, err := io.WriteString(c, tc.req); err != nil {
			t.Fatalf("%s: writing the request: %v", tc.name, err)
		}
		if tc.cut {
			c.(*net.TCPConn).CloseWrite()
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil {
			t.Fatalf("%s: no answer: %v", tc.name, err)
		}
		if resp.StatusCode != tc.want {
			t.Errorf("%s: PUT = %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
		waitFor(t, "the failed PUT to be counted", func() bool { return n.srv.Stats().Aborted > before })
		if got, err := os.ReadFile(filepath.Join(n.docroot, p)); err != nil || string(got) != "old" {
			t.Errorf("%s: the file is now %q, %v; want %q", tc.name, got, err, "old")
		}
		if resp, body := n.get(t, http.MethodGet, p, nil); resp.StatusCode != http.StatusOK || body != "old" {
			t.Errorf("%s: GET = %d %q, want 200 %q", tc.name, resp.StatusCode, body, "old")
		}
		if tmp := tempFiles(t, n.docroot); len(tmp) > 0 {
			t.Errorf("%s: temp files left: %v", tc.name, tmp)
		}
	}
}

// TestPutLongerBody: bytes after the announced length are the next request, not part of the file.
func TestPutLongerBody(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	resp, _ := n.raw(t, "PUT /dev1/long.fid HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloEXTRA-BYTES")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT = %d, want 200", resp.StatusCode)
	}
	if got, _ := os.ReadFile(filepath.Join(n.docroot, "dev1/long.fid")); string(got) != "hello" {
		t.Errorf("stored %q, want %q", got, "hello")
	}
}

func TestConcurrentPuts(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	const writers = 8
	bodies := make([][]byte, writers)
	for i := range bodies {
		bodies[i] = bytes.Repeat([]byte{byte('A' + i)}, 256<<10+i)
	}
	var wg sync.WaitGroup
	codes := make([]int, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPut, n.url("/dev1/0/000/000/0000000001.fid"), bytes.NewReader(bodies[i]))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("PUT %d = %d, want 200", i, c)
		}
	}
	got, err := os.ReadFile(filepath.Join(n.docroot, "dev1/0/000/000/0000000001.fid"))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, b := range bodies {
		found = found || bytes.Equal(got, b)
	}
	if !found {
		t.Errorf("file after concurrent PUTs is %d bytes and matches no single body", len(got))
	}
	if tmp := tempFiles(t, n.docroot); len(tmp) > 0 {
		t.Errorf("temp files left: %v", tmp)
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	n.put(t, "/dev1/0/000/000/0000000005.fid", []byte("hello"), nil)
	for _, want := range []int{204, 404} { // spec 8.6 #75
		resp, _ := n.get(t, http.MethodDelete, "/dev1/0/000/000/0000000005.fid", nil)
		if resp.StatusCode != want {
			t.Errorf("DELETE = %d, want %d", resp.StatusCode, want)
		}
	}
	if resp, _ := n.get(t, http.MethodDelete, "/dev1/0/000", nil); resp.StatusCode != 400 {
		t.Errorf("DELETE of a directory = %d, want 400", resp.StatusCode)
	}
	if resp, _ := n.get(t, http.MethodDelete, "/dev1/../dev2/x", nil); resp.StatusCode != 400 {
		t.Errorf("DELETE with .. = %d, want 400", resp.StatusCode)
	}
}

func TestRange(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	n.put(t, "/dev1/hello.fid", []byte("hello"), nil)
	n.put(t, "/dev1/empty.fid", nil, nil)
	tests := []struct {
		file, rng string
		code      int
		cr, body  string
	}{
		{"hello", "bytes=1-3", 206, "bytes 1-3/5", "ell"}, // spec 8.6 #77
		{"hello", "bytes=0-0", 206, "bytes 0-0/5", "h"},
		{"hello", "bytes=4-4", 206, "bytes 4-4/5", "o"},
		{"hello", "bytes=4-", 206, "bytes 4-4/5", "o"},
		{"hello", "bytes=2-", 206, "bytes 2-4/5", "llo"},
		{"hello", "bytes=3-100", 206, "bytes 3-4/5", "lo"},
		{"hello", "bytes=-2", 206, "bytes 3-4/5", "lo"},
		{"hello", "bytes=-9", 206, "bytes 0-4/5", "hello"},
		{"hello", "bytes=10-", 416, "bytes */5", ""}, // spec 8.6 #78
		{"hello", "bytes=5-5", 416, "bytes */5", ""},
		{"hello", "bytes=3-1", 416, "bytes */5", ""},
		{"hello", "bytes=-0", 416, "bytes */5", ""},
		{"hello", "bytes=0-1,3-4", 200, "", "hello"},           // disjoint ranges: whole file, no multipart
		{"hello", "bytes=0-1,2-3", 206, "bytes 0-3/5", "hell"}, // touching ranges are coalesced
		{"hello", "bytes=3-4,1-3", 206, "bytes 1-4/5", "ello"},
		{"hello", "bytes=0-1,9-", 206, "bytes 0-1/5", "he"}, // the unsatisfiable one is dropped
		{"hello", "bytes=7-8,9-", 416, "bytes */5", ""},     // none satisfiable
		{"hello", "bytes=99999999999999999999-", 416, "bytes */5", ""},
		{"hello", "bytes=0-99999999999999999999", 206, "bytes 0-4/5", "hello"},
		{"hello", "bytes=-99999999999999999999", 206, "bytes 0-4/5", "hello"},
		{"hello", "bytes=a-b", 200, "", "hello"},
		{"hello", "items=0-1", 200, "", "hello"},
		{"hello", "bytes=1", 200, "", "hello"},
		{"empty", "bytes=0-", 416, "bytes */0", ""},
		{"empty", "bytes=-1", 416, "bytes */0", ""},
	}
	for _, tt := range tests {
		resp, body := n.get(t, http.MethodGet, "/dev1/"+tt.file+".fid", map[string]string{"Range": tt.rng})
		if resp.StatusCode != tt.code || resp.Header.Get("Content-Range") != tt.cr || body != tt.body {
			t.Errorf("GET %s Range %q = %d %q %q, want %d %q %q", tt.file, tt.rng,
				resp.StatusCode, resp.Header.Get("Content-Range"), body, tt.code, tt.cr, tt.body)
		}
		if tt.code == 416 && resp.Header.Get("Content-Length") != "0" {
			t.Errorf("GET %s Range %q: Content-Length = %q, want 0", tt.file, tt.rng, resp.Header.Get("Content-Length"))
		}
	}
}

// TestRangeLarge covers the sendfile path of a range (bodies over fasthttp's small-file size).
func TestRangeLarge(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	body := make([]byte, 3<<20)
	for i := range body {
		body[i] = byte(i % 251)
	}
	n.put(t, "/dev2/big.fid", body, nil)
	resp, got := n.get(t, http.MethodGet, "/dev2/big.fid", map[string]string{"Range": "bytes=1000-2999999"})
	if resp.StatusCode != 206 || got != string(body[1000:3000000]) {
		t.Errorf("GET Range bytes=1000-2999999 = %d with %d bytes, want 206 with %d", resp.StatusCode, len(got), 3000000-1000)
	}
}

func TestConditional(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	n.put(t, "/dev1/c.fid", []byte("hello"), nil)
	resp, _ := n.get(t, http.MethodGet, "/dev1/c.fid", nil)
	etag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	mtime, _ := http.ParseTime(lm)
	tests := []struct {
		hdr  map[string]string
		want int
	}{
		{map[string]string{"If-None-Match": etag}, 304},
		{map[string]string{"If-None-Match": `"other", ` + etag}, 304},
		{map[string]string{"If-None-Match": `"other",` + etag + `,"more"`}, 304},
		{map[string]string{"If-None-Match": "W/" + etag}, 304},
		{map[string]string{"If-None-Match": "*"}, 304},
		{map[string]string{"If-None-Match": `"other"`}, 200},
		{map[string]string{"If-Modified-Since": lm}, 304},
		{map[string]string{"If-Modified-Since": mtime.Add(time.Hour).Format(http.TimeFormat)}, 304},
		{map[string]string{"If-Modified-Since": mtime.Add(-time.Hour).Format(http.TimeFormat)}, 200},
		{map[string]string{"If-Modified-Since": "garbage"}, 200},
		{map[string]string{"If-None-Match": `"other"`, "If-Modified-Since": lm}, 200}, // INM wins
		{map[string]string{"Range": "bytes=0-1", "If-Range": etag}, 206},
		{map[string]string{"Range": "bytes=0-1", "If-Range": `"stale"`}, 200},
		{map[string]string{"Range": "bytes=0-1", "If-Range": "W/" + etag}, 200}, // a weak tag never matches
		{map[string]string{"Range": "bytes=0-1", "If-Range": lm}, 206},
		{map[string]string{"Range": "bytes=0-1", "If-Range": mtime.Format(rfc850)}, 206},
		// The obsolete date forms RFC 9110 section 5.6.7 obliges a recipient to read.
		{map[string]string{"If-Modified-Since": mtime.Format(rfc850)}, 304},
		{map[string]string{"If-Modified-Since": mtime.Format(time.ANSIC)}, 304},
		// If-Match and If-Unmodified-Since (section 13.2.2 steps 1 and 2).
		{map[string]string{"If-Match": etag}, 200},
		{map[string]string{"If-Match": "*"}, 200},
		{map[string]string{"If-Match": `"other"`}, 412},
		{map[string]string{"If-Match": "W/" + etag}, 412}, // strong comparison
		{map[string]string{"If-Unmodified-Since": lm}, 200},
		{map[string]string{"If-Unmodified-Since": mtime.Add(-time.Hour).Format(http.TimeFormat)}, 412},
		{map[string]string{"If-Match": etag, "If-Unmodified-Since": mtime.Add(-time.Hour).Format(http.TimeFormat)}, 200},
		{map[string]string{"If-Match": `"other"`, "If-None-Match": etag}, 412}, // If-Match first
	}
	for _, tt := range tests {
		resp, body := n.get(t, http.MethodGet, "/dev1/c.fid", tt.hdr)
		if resp.StatusCode != tt.want {
			t.Errorf("GET with %v = %d, want %d", tt.hdr, resp.StatusCode, tt.want)
		}
		if tt.want == 304 && body != "" {
			t.Errorf("GET with %v: 304 with body %q", tt.hdr, body)
		}
	}
}

// Spec 8.6 #79–#81.
func TestRootUsageKeepAlive(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	if resp, _ := n.get(t, http.MethodGet, "/", nil); resp.StatusCode != 200 {
		t.Errorf("GET / = %d, want 200", resp.StatusCode)
	}
	if resp, _ := n.get(t, http.MethodGet, "/dev1/", nil); resp.StatusCode != 200 {
		t.Errorf("GET /dev1/ = %d, want 200", resp.StatusCode)
	}
	resp, body := n.raw(t, "GET //dev1/usage HTTP/1.0\r\n\r\n")
	if resp.StatusCode != 200 || !strings.Contains(body, "used: ") {
		t.Errorf("GET //dev1/usage = %d %q, want 200 and the usage body", resp.StatusCode, body)
	}
	if resp, _ := n.get(t, http.MethodHead, "/dev1/missing.fid", nil); resp.StatusCode != 404 {
		t.Errorf("HEAD missing = %d, want 404", resp.StatusCode)
	}

	c, br := dialNode(t, n)
	c.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nHEAD /dev1/usage HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	for i, method := range []string{"GET", "HEAD"} {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("response %d on a keep-alive HTTP/1.0 connection: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get("Connection") != "keep-alive" {
			t.Errorf("response %d = %d Connection %q, want 200 keep-alive", i, resp.StatusCode, resp.Header.Get("Connection"))
		}
	}
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	resp, body := n.get(t, http.MethodGet, HealthPath, nil)
	if resp.StatusCode != 200 || body != "dev1: ok\ndev2: ok\n" {
		t.Errorf("GET %s = %d %q, want 200 %q", HealthPath, resp.StatusCode, body, "dev1: ok\ndev2: ok\n")
	}
	if os.Geteuid() == 0 {
		return // root writes into read-only directories
	}
	os.Chmod(filepath.Join(n.docroot, "dev2"), 0o555)
	defer os.Chmod(filepath.Join(n.docroot, "dev2"), 0o755)
	if resp, body := n.get(t, http.MethodGet, HealthPath, nil); resp.StatusCode != 503 {
		t.Errorf("GET %s with read-only dev2 = %d %q, want 503", HealthPath, resp.StatusCode, body)
	}
}

func TestCloseAbrupt(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	c, _ := dialNode(t, n)
	// A PUT stuck mid-body is cut by Close.
	io.WriteString(c, "PUT /dev1/stuck.fid HTTP/1.0\r\nContent-Length: 1000000\r\n\r\n")
	c.Write(make([]byte, 64<<10))
	waitFor(t, "the PUT's temp file", func() bool { return len(tempFiles(t, n.docroot)) > 0 })
	before := n.srv.Stats().Aborted
	n.srv.Close()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	io.Copy(io.Discard, c)
	n.waitServe(t, "Close")
	waitFor(t, "the cut PUT to be counted", func() bool { return n.srv.Stats().Aborted > before })
	if _, err := net.Dial("tcp", n.addr); err == nil {
		t.Errorf("dial after Close succeeded")
	}
	if tmp := tempFiles(t, n.docroot); len(tmp) > 0 {
		t.Errorf("temp files left: %v", tmp)
	}
}

// TestGracefulStopCutsAfterShutdownTimeout: a graceful stop waits shutdown_timeout for requests in
// flight, then cuts those still running: a PUT stuck mid-body is aborted (no temp file left) and
// Serve returns, well before the stuck client would have finished.
func TestGracefulStopCutsAfterShutdownTimeout(t *testing.T) {
	t.Parallel()
	n := startNode(t, func(c *Config) { c.ShutdownTimeout = conf.Duration(300 * time.Millisecond) })
	c, _ := dialNode(t, n)
	io.WriteString(c, "PUT /dev1/stuck.fid HTTP/1.0\r\nContent-Length: 1000000\r\n\r\n")
	c.Write(make([]byte, 64<<10))
	waitFor(t, "the PUT's temp file", func() bool { return len(tempFiles(t, n.docroot)) > 0 })
	n.cancel()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Errorf("the stuck PUT's connection was not closed by the stop: %v", err)
	}
	n.waitServe(t, "a graceful stop")
	if tmp := tempFiles(t, n.docroot); len(tmp) > 0 {
		t.Errorf("temp files left: %v", tmp)
	}
	if _, err := os.Stat(filepath.Join(n.docroot, "dev1", "stuck.fid")); !os.IsNotExist(err) {
		t.Errorf("the cut PUT left a file (stat: %v)", err)
	}
}

// TestPartialPut: the Perl client's large-file mode creates an empty file, then PUTs ranges of it.
func TestPartialPut(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	const p = "/dev1/0/000/000/0000000042.fid"
	if got := n.put(t, p, nil, nil); got != 200 {
		t.Fatalf("empty PUT = %d, want 200", got)
	}
	for _, r := range []struct{ cr, body string }{
		{"bytes 6-10/*", "world"},
		{"bytes 0-5/11", "hello "},
		{"bytes 0-0/*", "H"},
	} {
		if got := n.put(t, p, []byte(r.body), map[string]string{"Content-Range": r.cr}); got != 200 {
			t.Fatalf("PUT Content-Range %q = %d, want 200", r.cr, got)
		}
	}
	if _, body := n.get(t, http.MethodGet, p, nil); body != "Hello world" {
		t.Errorf("after range PUTs GET = %q, want %q", body, "Hello world")
	}
	if got := n.put(t, p, []byte("x"), map[string]string{"Content-Range": "bytes 0-0/*", "Content-MD5": b64md5([]byte("x"))}); got != 400 {
		t.Errorf("range PUT with Content-MD5 = %d, want 400", got)
	}
	if _, body := n.get(t, http.MethodGet, p, nil); body != "Hello world" {
		t.Errorf("after rejected range PUT GET = %q, want %q", body, "Hello world")
	}
}

// TestPartialPutInPlace: a range PUT writes in place. One that breaks off keeps the bytes received
// and answers 400, so the client resends the range; one to a missing path creates the file (and
// the directories above it).
func TestPartialPutInPlace(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	const p = "/dev1/0/000/000/0000000043.fid"
	if got := n.put(t, p, []byte("Hello world"), nil); got != 200 {
		t.Fatalf("PUT = %d, want 200", got)
	}
	// Far more than fasthttp reads with the head, so most of it streams through the handler.
	const length, sent = 200 << 10, 100 << 10
	c := testutil.Dial(t, n.addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck // a bound on a hung test only
	fmt.Fprintf(c, "PUT %s HTTP/1.1\r\nHost: a\r\nContent-Range: bytes 6-%d/*\r\nContent-Length: %d\r\n\r\n%s",
		p, 6+length-1, length, strings.Repeat("x", sent))
	c.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a range PUT that broke off: %v", err)
	}
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("range PUT that broke off = %d, want 400", resp.StatusCode)
	}
	want := "Hello " + strings.Repeat("x", sent)
	if got, err := os.ReadFile(filepath.Join(n.docroot, p)); err != nil || string(got) != want {
		t.Errorf("after a range PUT that broke off the file is %d bytes (%v), want %d: the first 6 then the %d received",
			len(got), err, len(want), sent)
	}

	const q = "/dev2/new/dir/0000000044.fid"
	if got := n.put(t, q, []byte("abc"), map[string]string{"Content-Range": "bytes 3-5/*"}); got != 200 {
		t.Fatalf("range PUT to a missing path = %d, want 200", got)
	}
	if got, err := os.ReadFile(filepath.Join(n.docroot, q)); err != nil || string(got) != "\x00\x00\x00abc" {
		t.Errorf("range PUT to a missing path stored %q, %v; want %q", got, err, "\x00\x00\x00abc")
	}
}

// TestPutOverDirectory: a PUT to a path that names a directory is refused with 403, and the
// directory (empty or not) stays as it was.
func TestPutOverDirectory(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	full, empty := filepath.Join(n.docroot, "dev1", "0", "full.fid"), filepath.Join(n.docroot, "dev1", "0", "empty.fid")
	must(t, os.MkdirAll(full, 0o755))
	must(t, os.Mkdir(empty, 0o755))
	must(t, os.WriteFile(filepath.Join(full, "inner"), []byte("inner"), 0o644))
	for _, p := range []string{"/dev1/0/full.fid", "/dev1/0/empty.fid"} {
		if got := n.put(t, p, []byte("new"), nil); got != http.StatusForbidden {
			t.Errorf("PUT %s over a directory = %d, want 403", p, got)
		}
		if got := n.put(t, p, []byte("new"), map[string]string{"Content-Range": "bytes 0-2/*"}); got != http.StatusForbidden {
			t.Errorf("range PUT %s over a directory = %d, want 403", p, got)
		}
	}
	for _, d := range []string{full, empty} {
		if fi, err := os.Lstat(d); err != nil || !fi.IsDir() {
			t.Errorf("%s after PUTs over it: %v, %v; want the directory", d, fi, err)
		}
	}
	if got, err := os.ReadFile(filepath.Join(full, "inner")); err != nil || string(got) != "inner" {
		t.Errorf("the file in the directory is now %q, %v; want %q", got, err, "inner")
	}
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Errorf("the empty directory now holds %d entries", len(ents))
	}
	if tmp := tempFiles(t, n.docroot); len(tmp) > 0 {
		t.Errorf("temp files left: %v", tmp)
	}
}

// TestGracefulStop: cancelling Serve's context lets a PUT in progress finish and be acknowledged,
// refuses new connections, and Serve returns nil.
func TestGracefulStop(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	c, _ := dialNode(t, n)
	c.SetDeadline(time.Now().Add(time.Minute))
	const size = 1 << 20
	io.WriteString(c, "PUT /dev1/graceful.fid HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n")
	c.Write(make([]byte, size/2))
	waitFor(t, "the PUT's temp file", func() bool { return len(tempFiles(t, n.docroot)) > 0 })
	n.cancel()
	waitFor(t, "the listener to close", func() bool {
		c2, err := net.Dial("tcp", n.addr)
		if err == nil {
			c2.Close()
		}
		return err != nil
	})
	if _, err := c.Write(make([]byte, size/2)); err != nil {
		t.Fatalf("writing the rest of the body: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the PUT response: %v", err)
	}
	if resp.StatusCode != 200 {
		t.Errorf("PUT during graceful stop = %d, want 200", resp.StatusCode)
	}
	select {
	case err := <-n.done:
		if err != nil {
			t.Errorf("Serve = %v, want nil", err)
		}
		n.done <- nil
	case <-time.After(time.Minute):
		t.Fatal("Serve did not return")
	}
	if fi, err := os.Stat(filepath.Join(n.docroot, "dev1/graceful.fid")); err != nil || fi.Size() != size {
		t.Errorf("stored file: %v, %v; want %d bytes", fi, err, size)
	}
}

// TestServeCancelledAtOnce: Serve returns even when its context ends before fasthttp's Serve has
// registered the listener (fasthttp's Shutdown then has nothing to close).
func TestServeCancelledAtOnce(t *testing.T) {
	t.Parallel()
	docroot := t.TempDir()
	os.Mkdir(filepath.Join(docroot, "dev1"), 0o755)
	for range 20 {
		srv, err := New(Config{Docroot: docroot}, nil)
		if err != nil {
			t.Fatal(err)
		}
		testutil.ServeCancelled(t, "127.0.0.3", func(ctx context.Context, ln net.Listener) error { return srv.Serve(ctx, ln, nil) })
	}
}

// A file that is shorter than fstat said when its reply is built (truncated meanwhile) is an
// error, never a short 200.
func TestReadSmallShortFile(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		size    int64
		wantErr bool
	}{{10, false}, {9, false}, {11, true}, {smallFileSize, true}} {
		fd, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		g := getFile{fd: fd}
		var ctx fasthttp.RequestCtx
		err = n.srv.readSmall(&ctx, &g, 0, tc.size)
		g.close()
		if (err != nil) != tc.wantErr || (err == nil && int64(len(ctx.Response.Body())) != tc.size) {
			t.Errorf("readSmall(size %d) = %d bytes, %v; want error %v", tc.size, len(ctx.Response.Body()), err, tc.wantErr)
		}
	}
}

// rfc850 is the obsolete RFC 850 form of an HTTP date (RFC 9110 section 5.6.7).
const rfc850 = "Monday, 02-Jan-06 15:04:05 GMT"

// TestContentTypeTable: .fid and extensionless files are text/plain as from mogstored; other names get
// the fixed table of httpsem, the same on every host whatever its /etc/mime.types says.
func TestContentTypeTable(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	for _, tt := range []struct{ p, want string }{
		{"/dev1/a.fid", "text/plain"},
		{"/dev1/usage2", "text/plain"},
		{"/dev1/photo.JPG", "image/jpeg"},
		{"/dev1/notes.md", "text/markdown"},
		{"/dev1/page.html", "text/html"},
		{"/dev1/blob.unknownext", "application/octet-stream"},
	} {
		n.put(t, tt.p, []byte("x"), nil)
		if resp, _ := n.get(t, http.MethodGet, tt.p, nil); resp.Header.Get("Content-Type") != tt.want {
			t.Errorf("GET %s Content-Type = %q, want %q", tt.p, resp.Header.Get("Content-Type"), tt.want)
		}
	}
}
