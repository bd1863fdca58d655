package purge

import (
	"context"
	"encoding/json"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

const (
	testToken  = "token-0123456789abcdef"
	testSecret = "secret-0123456789abcdef"
)

var testNow = time.Unix(1_800_000_000, 0)

func newTestService(t *testing.T, cfg Config, tgt Target) *Service {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "gw1"
	}
	s, err := New(cfg, tgt, nil, WithClock(func() time.Time { return testNow }))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func decodeResult(t *testing.T, resp Response) Result {
	t.Helper()
	if resp.ContentType != "application/json" {
		t.Errorf("ContentType = %q, want application/json", resp.ContentType)
	}
	var res Result
	if err := json.Unmarshal(resp.Body, &res); err != nil {
		t.Fatalf("reply body %q: %v", resp.Body, err)
	}
	return res
}

func TestHandleReplies(t *testing.T) {
	paths := []string{"/images/a.jpg", "/images/b.jpg", "/css/site.css"}
	local := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		name       string
		cfg        Config
		req        Request
		wantStatus int
		wantCalls  []call
		wantPurged int
		wantBytes  int64
		wantLeft   []string
	}{
		{"uri", Config{}, Request{Method: "GET", Path: "/images/a.jpg", RemoteIP: local},
			200, []call{{"uri", "/images/a.jpg", false}}, 1, 100, []string{"/images/b.jpg", "/css/site.css"}},
		{"purge method", Config{}, Request{Method: "PURGE", Path: "/css/site.css", RemoteIP: local},
			200, []call{{"uri", "/css/site.css", false}}, 1, 300, []string{"/images/a.jpg", "/images/b.jpg"}},
		{"prefix", Config{}, Request{Method: "PURGE", Path: "/images/*", RemoteIP: local},
			200, []call{{"prefix", "/images/", false}}, 2, 300, []string{"/css/site.css"}},
		{"all", Config{}, Request{Method: "DELETE", Path: "/*", RemoteIP: local},
			200, []call{{"all", "", false}}, 3, 600, nil},
		{"soft request", Config{}, Request{Method: "GET", Path: "/images/a.jpg", RemoteIP: local, Soft: true},
			200, []call{{"uri", "/images/a.jpg", true}}, 1, 100, paths},
		{"soft config", Config{Soft: true}, Request{Method: "GET", Path: "/images/*", RemoteIP: local},
			200, []call{{"prefix", "/images/", true}}, 2, 300, paths},
		{"nothing matched", Config{}, Request{Method: "GET", Path: "/missing", RemoteIP: local},
			404, []call{{"uri", "/missing", false}}, 0, 0, paths},
		{"nothing matched custom status", Config{NotFoundStatus: 200}, Request{Method: "GET", Path: "/missing", RemoteIP: local},
			200, []call{{"uri", "/missing", false}}, 0, 0, paths},
		{"nothing matched from peer", Config{}, Request{Method: "PURGE", Path: "/missing", RemoteIP: local, FromPeer: true},
			200, []call{{"uri", "/missing", false}}, 0, 0, paths},
		{"forbidden address", Config{}, Request{Method: "GET", Path: "/*", RemoteIP: netip.MustParseAddr("10.0.0.1")},
			403, nil, 0, 0, paths},
		{"bad path", Config{}, Request{Method: "GET", Path: "images", RemoteIP: local},
			400, nil, 0, 0, paths},
		{"empty path", Config{}, Request{Method: "GET", Path: "", RemoteIP: local},
			400, nil, 0, 0, paths},
		{"bad method", Config{}, Request{Method: "POST", Path: "/*", RemoteIP: local},
			405, nil, 0, 0, paths},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(paths...)
			s := newTestService(t, tt.cfg, rec)
			resp := s.Handle(context.Background(), tt.req)
			if resp.Status != tt.wantStatus {
				t.Fatalf("Handle(%+v).Status = %d (%s), want %d", tt.req, resp.Status, resp.Body, tt.wantStatus)
			}
			if got := rec.Calls(); !reflect.DeepEqual(got, tt.wantCalls) {
				t.Errorf("target calls = %+v, want %+v", got, tt.wantCalls)
			}
			for _, p := range tt.wantLeft {
				if !rec.Has(p) {
					t.Errorf("entry %q was removed, want it kept", p)
				}
			}
			if tt.wantCalls == nil {
				var e errorBody
				if err := json.Unmarshal(resp.Body, &e); err != nil || e.Error == "" {
					t.Errorf("error body = %q, want {\"error\": ...}", resp.Body)
				}
				if tt.wantStatus == 405 && resp.Allow != allowedMethods {
					t.Errorf("Allow = %q, want %q", resp.Allow, allowedMethods)
				}
				return
			}
			res := decodeResult(t, resp)
			want := Result{Key: tt.req.Path, Soft: tt.req.Soft || tt.cfg.Soft, Purged: tt.wantPurged, Bytes: tt.wantBytes,
				Nodes: []NodeResult{{Node: "gw1", Status: NodeOK, Purged: tt.wantPurged, Bytes: tt.wantBytes}}}
			if !reflect.DeepEqual(res, want) {
				t.Errorf("reply = %+v, want %+v", res, want)
			}
		})
	}
}

func TestHandleAuth(t *testing.T) {
	lan := netip.MustParseAddr("192.168.1.9")
	loop := netip.MustParseAddr("127.0.0.1")
	sig := Sign(testSecret, "PURGE", "/a", testNow.Add(time.Minute))
	expired := Sign(testSecret, "PURGE", "/a", testNow.Add(-time.Second))
	bearer := "Bearer " + testToken
	tests := []struct {
		name string
		cfg  Config
		req  Request
		want bool
	}{
		{"token from anywhere", Config{Token: testToken}, Request{RemoteIP: lan, Authorization: bearer}, true},
		{"no token from lan", Config{Token: testToken}, Request{RemoteIP: lan}, false},
		{"wrong token from lan", Config{Token: testToken}, Request{RemoteIP: lan, Authorization: bearer + "x"}, false},
		{"loopback without token (any)", Config{Token: testToken}, Request{RemoteIP: loop}, true},
		{"loopback without token (all)", Config{Token: testToken, Satisfy: "all"}, Request{RemoteIP: loop}, false},
		{"loopback with token (all)", Config{Token: testToken, Satisfy: "all"}, Request{RemoteIP: loop, Authorization: bearer}, true},
		{"token from denied address (all)", Config{Token: testToken, Satisfy: "all"}, Request{RemoteIP: lan, Authorization: bearer}, false},
		{"deny all, token required", Config{Token: testToken, Deny: []string{"all"}}, Request{RemoteIP: loop}, false},
		{"deny all, token given", Config{Token: testToken, Deny: []string{"all"}}, Request{RemoteIP: loop, Authorization: bearer}, true},
		{"signature", Config{HMACSecret: testSecret}, Request{RemoteIP: lan, Signature: sig}, true},
		{"signature expired", Config{HMACSecret: testSecret}, Request{RemoteIP: lan, Signature: expired}, false},
		{"signature forged", Config{HMACSecret: testSecret}, Request{RemoteIP: lan, Signature: flipLast(sig)}, false},
		{"signature for other path", Config{HMACSecret: testSecret}, Request{RemoteIP: lan, Signature: Sign(testSecret, "PURGE", "/b", testNow.Add(time.Minute))}, false},
		{"signature without secret", Config{Token: testToken}, Request{RemoteIP: lan, Signature: sig}, false},
		{"token without token configured", Config{HMACSecret: testSecret}, Request{RemoteIP: lan, Authorization: bearer}, false},
		{"bad token, good signature", Config{Token: testToken, HMACSecret: testSecret}, Request{RemoteIP: lan, Authorization: "Bearer nope", Signature: sig}, true},
		{"allowed lan", Config{Allow: []string{"192.168.1.0/24"}}, Request{RemoteIP: lan}, true},
		{"allowed lan (all, signed)", Config{Allow: []string{"192.168.1.0/24"}, HMACSecret: testSecret, Satisfy: "all"}, Request{RemoteIP: lan, Signature: sig}, true},
		{"allowed lan (all, unsigned)", Config{Allow: []string{"192.168.1.0/24"}, HMACSecret: testSecret, Satisfy: "all"}, Request{RemoteIP: lan}, false},
		{"no address", Config{}, Request{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder("/a")
			s := newTestService(t, tt.cfg, rec)
			tt.req.Method, tt.req.Path = "PURGE", "/a"
			resp := s.Handle(context.Background(), tt.req)
			wantStatus := 403
			if tt.want {
				wantStatus = 200
			}
			if resp.Status != wantStatus {
				t.Fatalf("Handle(%+v).Status = %d (%s), want %d", tt.req, resp.Status, resp.Body, wantStatus)
			}
			if calls := rec.Calls(); tt.want != (len(calls) == 1) || rec.Has("/a") == tt.want {
				t.Errorf("target calls = %+v, entry kept = %v; want purged = %v", calls, rec.Has("/a"), tt.want)
			}
			st := s.Stats()
			if (st.Denied == 1) == tt.want {
				t.Errorf("Stats().Denied = %d, want refused = %v", st.Denied, !tt.want)
			}
		})
	}
}

// TestReload: a reload replaces the access rules and per-request settings for the next requests (a
// rotated token: the old one refused, the new one accepted), reports the settings that wait for a
// restart, and changes nothing when the new configuration is invalid.
func TestReload(t *testing.T) {
	lan := netip.MustParseAddr("192.168.1.9")
	const newToken = "rotated-0123456789abcdef"
	s := newTestService(t, Config{Token: testToken}, newRecorder())
	status := func(tok string) int {
		return s.Handle(context.Background(), Request{Method: "PURGE", Path: "/a", RemoteIP: lan, Authorization: "Bearer " + tok}).Status
	}
	if got := status(testToken); got != 404 {
		t.Fatalf("purge with the token before the reload = %d, want 404 (accepted, nothing cached)", got)
	}
	startOnly, err := s.Reload(Config{Name: "gw1", Token: newToken, NotFoundStatus: 200})
	if err != nil || len(startOnly) != 0 {
		t.Fatalf("Reload = %q, %v; want nothing waiting for a restart", startOnly, err)
	}
	if got := status(testToken); got != 403 {
		t.Errorf("purge with the replaced token = %d, want 403", got)
	}
	if got := status(newToken); got != 200 {
		t.Errorf("purge with the new token = %d, want 200 (the reloaded not_found_status)", got)
	}
	if _, err := s.Reload(Config{Name: "gw1", Token: "short"}); err == nil {
		t.Error("Reload accepted a token of 5 characters")
	}
	if got := status(newToken); got != 200 {
		t.Errorf("purge with the token in force after a refused reload = %d, want 200", got)
	}
	startOnly, err = s.Reload(Config{Name: "gw2", Path: "/p", Token: newToken, JournalDir: t.TempDir(),
		Peers: []string{"127.0.0.1:1"}})
	if want := []string{"path", "name", "peers", "peer_path", "journal_dir"}; err != nil || !reflect.DeepEqual(startOnly, want) {
		t.Errorf("Reload changing the service's shape = %q, %v; want %q", startOnly, err, want)
	}
	if s.Path() != DefaultPath {
		t.Errorf("Path() after the reload = %q, want %q until a restart", s.Path(), DefaultPath)
	}
}

func TestStats(t *testing.T) {
	rec := newRecorder("/a", "/b")
	s := newTestService(t, Config{}, rec)
	loop := netip.MustParseAddr("::1")
	ctx := context.Background()
	s.Handle(ctx, Request{Method: "GET", Path: "/a", RemoteIP: loop})
	s.Handle(ctx, Request{Method: "GET", Path: "/a", RemoteIP: loop})
	s.Handle(ctx, Request{Method: "GET", Path: "/b", RemoteIP: netip.MustParseAddr("2001:db8::1")})
	s.Handle(ctx, Request{Method: "GET", Path: "b", RemoteIP: loop})
	got := s.Stats()
	want := Stats{Requests: 4, Denied: 1, Refused: 1, NotFound: 1, Purged: 1, Bytes: 100}
	if got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

func TestNewRequest(t *testing.T) {
	h := map[string]string{"Authorization": "Bearer x", HeaderForwarded: "gw2"}
	q := map[string]string{QuerySoft: "1", QuerySignature: "1:ab"}
	r := NewRequest("purge", "/a", netip.MustParseAddr("::1"), func(k string) string { return h[k] }, func(k string) string { return q[k] })
	want := Request{Method: "PURGE", Path: "/a", RemoteIP: netip.MustParseAddr("::1"), Authorization: "Bearer x",
		Signature: "1:ab", Soft: true, FromPeer: true}
	if r != want {
		t.Errorf("NewRequest = %+v, want %+v", r, want)
	}
	h[HeaderSignature] = "2:cd"
	q[QuerySoft] = "0"
	r = NewRequest("GET", "/a", netip.Addr{}, func(k string) string { return h[k] }, func(k string) string { return q[k] })
	if r.Signature != "2:cd" || r.Soft {
		t.Errorf("NewRequest: Signature = %q, Soft = %v; want header signature 2:cd, not soft", r.Signature, r.Soft)
	}
}
