package gateway

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// rawAnswer writes req as given on a new connection to g and reads one answer with net/http, which
// reports the header fields as sent (no default Content-Type).
func rawAnswer(t *testing.T, g *gw, req string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(g.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck // a bound on a hung test only
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatalf("write %q: %v", req, err)
	}
	method, _, _ := strings.Cut(req, " ")
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("no answer to %q: %v", req, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("answer to %q: body: %v", req, err)
	}
	return resp, body
}

// health_path and status_path (and metrics_path) are answered before any route, so they hide keys of
// the same name under a "/" route; moved elsewhere or turned off, the keys are served again. The
// health path answers "ok" to GET and HEAD.
func TestBuiltinPathsShadowKeys(t *testing.T) {
	t.Parallel()
	node := startStorage(t, "127.0.0.2")
	ft := newFakeTracker()
	for i, k := range []string{"healthz", "status", "metrics", "lb", "st"} {
		ft.set("d", k, node.put(t, int64(80+i), []byte("key "+k)))
	}
	root := trackerConfig(Route{Prefix: "/", Domain: "d"})
	moved := root
	moved.HealthPath, moved.StatusPath, moved.MetricsPath = "/lb", "/st", "off"
	off := root
	off.HealthPath, off.StatusPath = "off", "off"

	const health, status, metrics = "health", "status", "metrics"
	for _, tc := range []struct {
		name string
		cfg  Config
		want map[string]string // path -> health, status, metrics, or the key's body
	}{
		{"defaults", root, map[string]string{"/healthz": health, "/status": status, "/metrics": metrics, "/lb": "key lb"}},
		{"moved", moved, map[string]string{"/lb": health, "/st": status, "/healthz": "key healthz",
			"/status": "key status", "/metrics": "key metrics"}},
		{"off", off, map[string]string{"/healthz": "key healthz", "/status": "key status", "/metrics": metrics}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := startGateway(t, tc.cfg, Deps{Tracker: ft})
			for path, want := range tc.want {
				code, h, body, err := get(t, "GET", g.base+path)
				if err != nil || code != 200 {
					t.Errorf("GET %s = %d, %v; want 200", path, code, err)
					continue
				}
				ct := h.Get("Content-Type")
				switch want {
				case health:
					if string(body) != "ok\n" || !strings.HasPrefix(ct, "text/plain") {
						t.Errorf("GET %s = %q (%s), want the health answer ok", path, body, ct)
					}
				case status:
					var st Stats
					if ct != "application/json" || json.Unmarshal(body, &st) != nil || st.Requests == 0 {
						t.Errorf("GET %s = %q (%s), want the status JSON", path, body, ct)
					}
				case metrics:
					if !strings.Contains(string(body), "# TYPE ") {
						t.Errorf("GET %s = %q (%s), want the Prometheus metrics", path, body, ct)
					}
				default:
					if string(body) != want {
						t.Errorf("GET %s = %q, want the key's body %q", path, body, want)
					}
					continue
				}
				// HEAD gets the same answer without its body, not the key's head.
				hcode, hh, hbody, err := get(t, "HEAD", g.base+path)
				if err != nil || hcode != 200 || len(hbody) != 0 || hh.Get("Content-Type") != ct ||
					want == health && hh.Get("Content-Length") != "3" {
					t.Errorf("HEAD %s = %d %q, Content-Type %q, Content-Length %q, %v; want 200 with GET's head (%s), no body",
						path, hcode, hbody, hh.Get("Content-Type"), hh.Get("Content-Length"), err, ct)
				}
			}
		})
	}
}

// server_name is the Server header of every answer: the gateway's own, a proxied one (whose server's
// Server header is replaced), and one to a request fasthttp could not read.
func TestServerNameHeader(t *testing.T) {
	t.Parallel()
	up := startHTTP(t, "127.0.0.2", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "origin/1.0")
		w.Write([]byte("body")) //nolint:errcheck // the test reads it
	})
	cfg := Config{Routes: []Route{{Prefix: "/g/", Servers: []UpstreamServer{{Addr: up.addr}}}}}
	for _, name := range []string{"", "edge-7"} {
		cfg.ServerName = name
		want := name
		if want == "" {
			want = "mogway"
		}
		g := startGateway(t, cfg, Deps{})
		for _, req := range []string{
			"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
			"GET /g/a HTTP/1.1\r\nHost: x\r\n\r\n",
			"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n",
			"GET /g/a HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 20<<10) + "\r\n\r\n", // 431
		} {
			resp, _ := rawAnswer(t, g, req)
			if got := resp.Header.Values("Server"); len(got) != 1 || got[0] != want {
				line, _, _ := strings.Cut(req, "\r\n")
				t.Errorf("server_name %q: %s (%d): Server = %q, want %q", name, line, resp.StatusCode, got, want)
			}
		}
	}
}

// Error answers carry one short text/plain line, whichever check made them.
func TestErrorBodiesOneShortLine(t *testing.T) {
	t.Parallel()
	ft := newFakeTracker()
	ft.set("d", "dead", "http://"+deadAddr(t, "127.0.0.2")+fidPath(90))
	ft.set("d", "nopaths")
	cfg := trackerConfig(Route{Prefix: "/d/", Domain: "d"},
		Route{Prefix: "/w/", Domain: "d", Methods: []string{"GET", "PUT"}, Token: "s3cret"})
	g := startGateway(t, cfg, Deps{Tracker: ft})
	oneLine := regexp.MustCompile(`^[[:print:]]{1,80}\n$`)
	for _, tc := range []struct {
		req    string
		status int
	}{
		{"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n", 404},
		{"GET /d/missing HTTP/1.1\r\nHost: x\r\n\r\n", 404},
		{"GET /d/ HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"GET /d/%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"DELETE /d/k HTTP/1.1\r\nHost: x\r\n\r\n", 405},
		{"PUT /w/k HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx", 401},
		{"GET /d/dead HTTP/1.1\r\nHost: x\r\n\r\n", 502},
		{"GET /d/nopaths HTTP/1.1\r\nHost: x\r\n\r\n", 503},
		{"GET /d/k HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 20<<10) + "\r\n\r\n", 431},
		{"GET /d/k HTTP/2.0\r\nHost: x\r\n\r\n", 505},
	} {
		resp, body := rawAnswer(t, g, tc.req)
		line, _, _ := strings.Cut(tc.req, "\r\n")
		if resp.StatusCode != tc.status {
			t.Errorf("%s = %d %q, want %d", line, resp.StatusCode, body, tc.status)
			continue
		}
		if ct := resp.Header.Values("Content-Type"); len(ct) != 1 || ct[0] != "text/plain; charset=utf-8" || !oneLine.Match(body) {
			t.Errorf("%s = %d, Content-Type %q, body %q; want one short text/plain line", line, resp.StatusCode, ct, body)
		}
	}
}

// A client that sends Expect: 100-continue with a method the route does not allow gets 417 instead of
// 100 Continue, so it never sends the body.
func TestExpectContinueMethodNotAllowed(t *testing.T) {
	t.Parallel()
	ft := newFakeTracker()
	cfg := trackerConfig(Route{Prefix: "/r/", Domain: "d"},
		Route{Prefix: "/p/", Domain: "d", Methods: []string{"GET", "PUT"}, Allow: []string{"127.0.0.0/8"}})
	g := startGateway(t, cfg, Deps{Tracker: ft})
	addr := strings.TrimPrefix(g.base, "http://")
	for _, tc := range []struct {
		line string
		want int
	}{
		{"PUT /r/k HTTP/1.1", 417},    // methods [GET]: no PUT
		{"DELETE /p/k HTTP/1.1", 417}, // methods [GET, PUT]: no DELETE
		{"PUT /p/k HTTP/1.1", 100},    // allowed: go ahead
	} {
		if got := rawGet(t, addr, tc.line, "Content-Length: 5\r\nExpect: 100-continue\r\n"); got != tc.want {
			t.Errorf("%s with Expect: 100-continue = %d, want %d", tc.line, got, tc.want)
		}
	}
	if n := ft.calls.Load(); n != 0 {
		t.Errorf("tracker calls = %d, want 0 (no body was sent)", n)
	}
}
