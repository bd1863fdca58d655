package testutil

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestFetch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, r.Method+" "+r.URL.Path+" x="+r.Header.Get("X-Test")+" len="+r.Header.Get("Content-Length")+" body="+string(b))
	}))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		method string
		body   []byte
		header map[string]string
		want   string
	}{
		{"GET", nil, nil, "GET /p x= len= body="},
		{"PUT", []byte("abc"), map[string]string{"X-Test": "1"}, "PUT /p x=1 len=3 body=abc"},
		{"PUT", []byte{}, nil, "PUT /p x= len=0 body="},
	} {
		code, got := Fetch(t, tc.method, srv.URL+"/p", tc.body, tc.header)
		if code != http.StatusTeapot || string(got) != tc.want {
			t.Errorf("Fetch(%s, %q, %v) = %d, %q; want 418, %q", tc.method, tc.body, tc.header, code, got, tc.want)
		}
	}
}

func TestRequest(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen", r.Header.Get("X-Test"))
		io.Copy(w, r.Body)
	}))
	t.Cleanup(srv.Close)
	resp := Request(t, "POST", srv.URL, strings.NewReader("streamed"), map[string]string{"X-Test": "h"})
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != "streamed" || resp.Header.Get("X-Seen") != "h" {
		t.Errorf("Request = %q, %v, X-Seen %q; want %q, nil, %q", b, err, resp.Header.Get("X-Seen"), "streamed", "h")
	}
}

func TestFetchFailsWithoutAnAnswer(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	r := &fatalRecorder{TB: t}
	code, b := Fetch(r, "GET", url+"/gone", nil, nil)
	if code != 0 || b != nil || !strings.HasPrefix(r.msg, "GET "+url+"/gone: ") {
		t.Errorf("Fetch of a closed server = %d, %q, Fatalf %q; want 0, nil and a message naming the request", code, b, r.msg)
	}
}

func TestServeBytes(t *testing.T) {
	files := map[string][]byte{"/a": []byte("bytes of a"), "/empty": {}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ServeBytes(w, r, files)
	}))
	t.Cleanup(srv.Close)
	for path, want := range map[string]struct {
		code int
		body string
	}{
		"/a":     {http.StatusOK, "bytes of a"},
		"/empty": {http.StatusOK, ""},
		"/b":     {http.StatusNotFound, "404 page not found\n"},
	} {
		if code, got := Fetch(t, "GET", srv.URL+path, nil, nil); code != want.code || string(got) != want.body {
			t.Errorf("GET %s = %d %q, want %d %q", path, code, got, want.code, want.body)
		}
	}
}
