package purge

import (
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/testutil"
)

func TestHTTPHandler(t *testing.T) {
	t.Parallel()
	rec := newRecorder("/a", "/b", "/c")
	cfg := Config{Name: "gw1", Path: "/_purge/", HMACSecret: testSecret, Deny: []string{"all"}}
	n := startNode(t, "127.0.0.8:0", cfg, rec)
	do := func(method, path, rawQuery string, header map[string]string) *http.Response {
		t.Helper()
		u := url.URL{Scheme: "http", Host: n.addr, Path: path, RawQuery: rawQuery}
		req, _ := http.NewRequest(method, u.String(), nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		resp.Body.Close()
		return resp
	}
	exp := time.Now().Add(time.Hour)
	tests := []struct {
		name, method, path, query string
		header                    map[string]string
		want                      int
	}{
		{"signed in query", "GET", "/_purge/a", "sig=" + url.QueryEscape(Sign(testSecret, "GET", "/a", exp)), nil, 200},
		{"signed in header, soft", "PURGE", "/_purge/b", "soft=1", map[string]string{HeaderSignature: Sign(testSecret, "PURGE", "/b", exp)}, 200},
		{"signed for another method", "PURGE", "/_purge/c", "", map[string]string{HeaderSignature: Sign(testSecret, "GET", "/c", exp)}, 403},
		{"unsigned", "GET", "/_purge/c", "", nil, 403},
		{"outside prefix", "GET", "/_purgec", "", nil, 404},
		{"method", "POST", "/_purge/c", "", nil, 405},
	}
	for _, tt := range tests {
		resp := do(tt.method, tt.path, tt.query, tt.header)
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %s %s?%s status = %d, want %d", tt.name, tt.method, tt.path, tt.query, resp.StatusCode, tt.want)
		}
		if resp.StatusCode != 404 && resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: Content-Type = %q, want application/json", tt.name, resp.Header.Get("Content-Type"))
		}
		if resp.StatusCode == 405 && resp.Header.Get("Allow") != allowedMethods {
			t.Errorf("%s: Allow = %q, want %q", tt.name, resp.Header.Get("Allow"), allowedMethods)
		}
	}
	want := []call{{"uri", "/a", false}, {"uri", "/b", true}}
	if got := rec.Calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("target calls = %+v, want %+v", got, want)
	}
}

func TestRemoteIP(t *testing.T) {
	testutil.Table(t, "remoteIP", func(s string) string { return remoteIP(s).String() }, map[string]string{
		"127.0.0.1:5000":      "127.0.0.1",
		"[::1]:5000":          "::1",
		"[fe80::1%eth0]:5000": "fe80::1%eth0",
		"10.0.0.1":            "10.0.0.1",
		"@":                   "invalid IP",
		"":                    "invalid IP",
	})
}
