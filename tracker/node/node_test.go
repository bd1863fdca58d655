package node

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/tracker/store"
)

func TestErrorText(t *testing.T) {
	if got, want := ErrNotFound.Error(), "node: file not found on storage node"; got != want {
		t.Errorf("ErrNotFound = %q, want %q", got, want)
	}
}

func TestParseDigestReply(t *testing.T) {
	const path = "/dev1/0/000/000/0000000001.fid"
	md5hex := "0123456789abcdef0123456789abcdef"
	sha1hex := "0123456789abcdef0123456789abcdef01234567"
	tests := []struct {
		name    string
		line    string
		h       store.Hash
		want    string // hex; "" = no digest
		missing bool
	}{
		{"md5 crlf", path + " MD5=" + md5hex + "\r\n", store.HashMD5, md5hex, false},
		{"md5 lf", path + " MD5=" + md5hex + "\n", store.HashMD5, md5hex, false},
		{"missing", path + " MD5=-1\r\n", store.HashMD5, "", true},
		{"sha1", path + " SHA-1=" + sha1hex + "\r\n", store.HashSHA1, sha1hex, false},
		{"sha1 missing", path + " SHA-1=-1\r\n", store.HashSHA1, "", true},
		{"upper-case hex", path + " MD5=" + strings.ToUpper(md5hex) + "\r\n", store.HashMD5, "", false},
		{"short hex", path + " MD5=0123\r\n", store.HashMD5, "", false},
		{"md5 length for sha1", path + " SHA-1=" + md5hex + "\r\n", store.HashSHA1, "", false},
		{"not hex", path + " MD5=" + strings.Repeat("zz", 16) + "\r\n", store.HashMD5, "", false},
		{"error line", "ERROR: uri invalid (contains ..)\r\n", store.HashMD5, "", false},
		{"other path", "/dev2/other.fid MD5=" + md5hex + "\r\n", store.HashMD5, "", false},
		{"other algorithm", path + " SHA-1=" + md5hex + "\r\n", store.HashMD5, "", false},
		{"no hash type", path + " NONE=-1\r\n", store.HashNone, "", false},
		{"empty", "", store.HashMD5, "", false},
	}
	for _, tt := range tests {
		sum, err := parseDigestReply(tt.line, path, tt.h)
		switch {
		case tt.missing:
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: parseDigestReply(%q) = %x, %v; want ErrNotFound", tt.name, tt.line, sum, err)
			}
		case tt.want == "":
			if !errors.Is(err, errNoSideChannel) {
				t.Errorf("%s: parseDigestReply(%q) = %x, %v; want errNoSideChannel", tt.name, tt.line, sum, err)
			}
		default:
			if err != nil || hex.EncodeToString(sum) != tt.want {
				t.Errorf("%s: parseDigestReply(%q) = %x, %v; want %s", tt.name, tt.line, sum, err, tt.want)
			}
		}
	}
}

func FuzzParseDigestReply(f *testing.F) {
	f.Add("/dev1/x.fid MD5=0123456789abcdef0123456789abcdef\r\n", 1)
	f.Add("/dev1/x.fid SHA-1=-1\r\n", 2)
	f.Fuzz(func(t *testing.T, line string, alg int) {
		h := store.Hash(alg)
		sum, err := parseDigestReply(line, "/dev1/x.fid", h)
		if err == nil && (h.Size() == 0 || len(sum) != h.Size()) {
			t.Fatalf("parseDigestReply(%q, %d) = %x, a digest of the wrong size", line, alg, sum)
		}
		if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, errNoSideChannel) {
			t.Fatalf("parseDigestReply(%q, %d) = %v, want ErrNotFound or errNoSideChannel", line, alg, err)
		}
	})
}

// sideChannel serves one canned reply per connection on 127.0.0.1 and records the commands it got.
func sideChannel(t *testing.T, reply string) (port int, cmds chan string) {
	t.Helper()
	ln := testutil.Listen(t, "127.0.0.1:0")
	t.Cleanup(func() { ln.Close() })
	cmds = make(chan string, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			line, _ := bufio.NewReader(c).ReadString('\n')
			cmds <- line
			c.Write([]byte(reply))
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, cmds
}

func TestDigest(t *testing.T) {
	body := "hello, node"
	sum := md5.Sum([]byte(body))
	var getCount atomic.Int64 // GETs the node served
	gets := func() int { return int(getCount.Load()) }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/dev1/gone.fid" {
			http.NotFound(w, r)
			return
		}
		getCount.Add(1)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	ctx := context.Background()

	// The side channel answers: no GET.
	port, cmds := sideChannel(t, "/dev1/a.fid MD5="+hex.EncodeToString(sum[:])+"\r\n")
	c := New(Config{SidePort: port})
	t.Cleanup(c.Close)
	n, got, err := c.Digest(ctx, srv.URL+"/dev1/a.fid", store.HashMD5, "fsck")
	if err != nil || n != -1 || string(got) != string(sum[:]) || gets() != 0 {
		t.Fatalf("Digest(side channel) = %d, %x, %v with %d GETs; want -1, %x, nil, 0 GETs", n, got, err, gets(), sum)
	}
	if cmd := <-cmds; cmd != "MD5 /dev1/a.fid fsck\r\n" {
		t.Errorf("side channel got %q, want %q", cmd, "MD5 /dev1/a.fid fsck\r\n")
	}

	// An odd reply, or `=-1`, falls back to GET: the GET decides.
	for i, reply := range []string{"ERROR\r\n", "/dev1/a.fid MD5=-1\r\n"} {
		port, _ = sideChannel(t, reply)
		c = New(Config{SidePort: port})
		t.Cleanup(c.Close)
		n, got, err = c.Digest(ctx, srv.URL+"/dev1/a.fid", store.HashMD5, "")
		if err != nil || n != int64(len(body)) || string(got) != string(sum[:]) || gets() != i+1 {
			t.Fatalf("Digest(side channel %q) = %d, %x, %v after %d GETs; want %d, %x, nil after %d", reply, n, got, err, gets(), len(body), sum, i+1)
		}
		if _, _, err := c.Digest(ctx, srv.URL+"/dev1/gone.fid", store.HashMD5, ""); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Digest(side channel %q, GET 404) = %v, want ErrNotFound", reply, err)
		}
	}

	// No side channel configured: GET, and a 404 is ErrNotFound.
	c = New(Config{})
	t.Cleanup(c.Close)
	if _, _, err := c.Digest(ctx, srv.URL+"/dev1/gone.fid", store.HashMD5, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Digest(404) = %v, want ErrNotFound", err)
	}
}

func TestSize(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/gone":
			http.NotFound(w, r)
		case "/teapot":
			w.WriteHeader(http.StatusTeapot)
		case "/lighttpd-empty", "/empty-no-length":
			if r.URL.Path == "/lighttpd-empty" {
				w.Header().Set("Server", "lighttpd/1.4")
			}
			w.Header()["Content-Length"] = nil
			w.(http.Flusher).Flush() // sends the header without a Content-Length
		default:
			w.Header().Set("Content-Length", "1234")
		}
	}))
	t.Cleanup(srv.Close)
	c := New(Config{})
	t.Cleanup(c.Close)
	tests := []struct {
		path    string
		want    int64
		wantErr error // nil: no error; errAny: some other error
	}{
		{"/file", 1234, nil},
		{"/gone", 0, ErrNotFound},
		{"/teapot", 0, errAny},
		{"/lighttpd-empty", 0, nil},
		{"/empty-no-length", 0, errAny},
	}
	for _, tt := range tests {
		got, err := c.Size(context.Background(), srv.URL+tt.path)
		switch {
		case tt.wantErr == nil && (err != nil || got != tt.want):
			t.Errorf("Size(%s) = %d, %v; want %d", tt.path, got, err, tt.want)
		case tt.wantErr == errAny && err == nil, tt.wantErr == errAny && errors.Is(err, ErrNotFound):
			t.Errorf("Size(%s) = %d, %v; want an error other than ErrNotFound", tt.path, got, err)
		case tt.wantErr == ErrNotFound && !errors.Is(err, ErrNotFound):
			t.Errorf("Size(%s) = %d, %v; want ErrNotFound", tt.path, got, err)
		}
	}
	var se *StatusError
	if _, err := c.Size(context.Background(), srv.URL+"/teapot"); !errors.As(err, &se) || se.Code != http.StatusTeapot {
		t.Errorf("Size(/teapot) = %v, want a *StatusError with code 418", err)
	}
}

var errAny = errors.New("any error")
