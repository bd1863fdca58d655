package gateway

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/cache"
	"github.com/mogway/mogway/internal/testutil"
)

// opensslLink is the link hash of msg as nginx's documentation computes it:
// echo -n msg | openssl md5 -binary | openssl base64 | tr +/ -_ | tr -d =
// With key, HMAC-SHA256 under key instead of MD5.
func opensslLink(t *testing.T, msg, key string) string {
	t.Helper()
	digest := "openssl md5 -binary"
	if key != "" {
		digest = "openssl dgst -sha256 -binary -hmac \"$KEY\""
	}
	cmd := exec.Command("sh", "-c", digest+" | openssl base64 -A | tr +/ -_ | tr -d =")
	cmd.Env = append(os.Environ(), "KEY="+key)
	cmd.Stdin = strings.NewReader(msg)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// linkNow is the gateway clock of the secure link tests: 2026-01-02, before the documented expiry
// 2147483647 (2038).
var linkNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const hmacKey = "0123456789abcdef-hmac-key"

func TestSecureLinkAnswers(t *testing.T) {
	t.Parallel()
	up := startTaggingUpstream(t, "127.0.0.4", nil)
	keyFile := filepath.Join(t.TempDir(), "link.key")
	if err := os.WriteFile(keyFile, []byte(hmacKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	route := func(prefix string, sl SecureLink) Route {
		return Route{Prefix: prefix, Servers: []UpstreamServer{{Addr: up.addr}}, SecureLink: &sl}
	}
	cfg := Config{Routes: []Route{
		// The example of the nginx documentation.
		route("/s/", SecureLink{Link: "$arg_md5,$arg_expires", MD5: "$secure_link_expires$uri$remote_addr secret"}),
		// No expiry part: links that never expire; other variables.
		route("/n/", SecureLink{Link: "${arg_h}", MD5: "secret:$http_x_client_id:$arg_w"}),
		route("/hm/", SecureLink{HMACSHA256: "$secure_link_expires$uri", SecretFile: keyFile}),
	}}
	g := startGateway(t, cfg, Deps{Now: func() time.Time { return linkNow }})
	now := linkNow.Unix()
	future, past := "2147483647", "1767323044" // the documented expiry; a second before linkNow
	if now != 1767323044+1 {
		t.Fatalf("test clock: now = %d", now)
	}
	md5Link := func(expires, uri string) string {
		return opensslLink(t, expires+uri+"127.0.0.1 secret", "")
	}
	good := md5Link(future, "/s/link")
	if good != "_e4Nc3iduzkWRm01TBBNYw" {
		t.Fatalf("openssl gives %q for the nginx documentation's example, want _e4Nc3iduzkWRm01TBBNYw", good)
	}
	expired := md5Link(past, "/s/link")
	hm := opensslLink(t, future+"/hm/a.jpg", hmacKey)
	hmExpired := opensslLink(t, past+"/hm/a.jpg", hmacKey)
	tests := []struct {
		name, uri string
		hdr       []string
		want      int
	}{
		{"nginx documented example", "/s/link?md5=_e4Nc3iduzkWRm01TBBNYw&expires=2147483647", nil, 200},
		{"argument names ignore case", "/s/link?MD5=" + good + "&Expires=" + future, nil, 200},
		{"padded hash", "/s/link?md5=" + good + "==&expires=" + future, nil, 200},
		{"dot segments: $uri is normalised", "/s/x/../link?md5=" + good + "&expires=" + future, nil, 200},
		{"other path", "/s/other?md5=" + good + "&expires=" + future, nil, 403},
		{"wrong hash", "/s/link?md5=AAAAAAAAAAAAAAAAAAAAAA&expires=" + future, nil, 403},
		{"no arguments", "/s/link", nil, 403},
		{"no expires", "/s/link?md5=" + good, nil, 403},
		{"other expires", "/s/link?md5=" + good + "&expires=2147483646", nil, 403},
		{"expires not a number", "/s/link?md5=" + good + "&expires=21474836x7", nil, 403},
		{"expires zero", "/s/link?md5=" + md5Link("0", "/s/link") + "&expires=0", nil, 403},
		{"expires signed", "/s/link?md5=" + md5Link("+1", "/s/link") + "&expires=%2B1", nil, 403},
		{"hash too long", "/s/link?md5=" + good + "AAAA&expires=" + future, nil, 403},
		{"hash of 15 bytes", "/s/link?md5=" + good[:20] + "&expires=" + future, nil, 403},
		{"hash not base64url", "/s/link?md5=" + strings.Replace(good, "_", "/", 1) + "&expires=" + future, nil, 403},
		{"expired", "/s/link?md5=" + expired + "&expires=" + past, nil, 410},
		{"expired with a wrong hash", "/s/link?md5=" + good + "&expires=" + past, nil, 403},
		{"expires now is not expired", "/s/link?md5=" + md5Link("1767323045", "/s/link") + "&expires=1767323045", nil, 200},
		{"no expiry part: never expires", "/n/f?w=1&h=" + opensslLink(t, "secret:c7:1", ""), []string{"X-Client-Id", "c7"}, 200},
		{"no expiry part, other header", "/n/f?w=1&h=" + opensslLink(t, "secret:c7:1", ""), []string{"X-Client-Id", "c8"}, 403},
		{"no expiry part, comma", "/n/f?w=1&h=" + opensslLink(t, "secret:c7:1", "") + ",", []string{"X-Client-Id", "c7"}, 403},
		{"hmac", "/hm/a.jpg?md5=" + hm + "&expires=" + future, nil, 200},
		{"hmac expired", "/hm/a.jpg?md5=" + hmExpired + "&expires=" + past, nil, 410},
		{"md5 hash on the hmac route", "/hm/a.jpg?md5=" + md5Link(future, "/hm/a.jpg") + "&expires=" + future, nil, 403},
	}
	for _, tt := range tests {
		code, _, body, err := get(t, "GET", g.base+tt.uri, tt.hdr...)
		if err != nil || code != tt.want {
			t.Errorf("%s: GET %s = %d %q, %v; want %d", tt.name, tt.uri, code, body, err, tt.want)
		}
	}
}

// The hash may come from a header, and the signed string may hold any of the variables.
func TestSecureLinkVariables(t *testing.T) {
	t.Parallel()
	up := startTaggingUpstream(t, "127.0.0.4", nil)
	cfg := Config{Routes: []Route{{Prefix: "/v/", Servers: []UpstreamServer{{Addr: up.addr}},
		SecureLink: &SecureLink{Link: "$http_x_sig", MD5: "k|$uri|$http_x_client_id|$host|$scheme|$request_method|$arg_w|$cookie_Sess|$secure_link_expires"}}}}
	g := startGateway(t, cfg, Deps{Now: func() time.Time { return linkNow }})
	host := strings.TrimPrefix(g.base, "http://")
	host = host[:strings.LastIndexByte(host, ':')]
	sig := opensslLink(t, "k|/v/a b|c7|"+host+"|http|GET|200||", "")
	for _, tc := range []struct {
		hdr  []string
		want int
	}{
		{[]string{"X-Sig", sig, "X-Client-Id", "c7"}, 200},
		{[]string{"X-Sig", sig, "X-Client-Id", "c8"}, 403},
		{[]string{"X-Sig", sig, "X-Client-Id", "c7", "Cookie", "Sess=1"}, 403},
		{[]string{"X-Client-Id", "c7"}, 403},
	} {
		code, _, _, err := get(t, "GET", g.base+"/v/a%20b?w=200", tc.hdr...)
		if err != nil || code != tc.want {
			t.Errorf("GET /v/a%%20b?w=200 with %q = %d, %v; want %d", tc.hdr, code, err, tc.want)
		}
	}
}

// Signatures are left out of the cache key: links signed differently share one entry.
func TestSecureLinkCacheKey(t *testing.T) {
	t.Parallel()
	up := startTaggingUpstream(t, "127.0.0.4", nil)
	cfg := Config{Cache: &cache.Config{}, Routes: []Route{{Prefix: "/s/", Servers: []UpstreamServer{{Addr: up.addr}},
		SecureLink: &SecureLink{MD5: "$secure_link_expires$uri secret"}}}}
	g := startGateway(t, cfg, Deps{Now: func() time.Time { return linkNow }})
	want := []byte("body of /s/a.jpg")
	for i, exp := range []string{"2147483647", "2147483600"} {
		cs := []string{"MISS", "HIT"}[i]
		fetchCached(t, "GET", g.base+"/s/a.jpg?v=1&md5="+opensslLink(t, exp+"/s/a.jpg secret", "")+"&expires="+exp, want, cs)
		waitFor(t, "the fill", func() bool { return g.srv.cache.Stats().Filling == 0 })
	}
	if got := up.Hits("/s/a.jpg"); got != 1 {
		t.Errorf("upstream GETs = %d, want 1", got)
	}
	// Other arguments stay in the key.
	fetchCached(t, "GET", g.base+"/s/a.jpg?v=2&md5="+opensslLink(t, "2147483647/s/a.jpg secret", "")+"&expires=2147483647", want, "MISS")
	// A bad link is refused before the cache is asked.
	if code, _, _, _ := get(t, "GET", g.base+"/s/a.jpg?v=1"); code != 403 {
		t.Errorf("unsigned GET of a cached object = %d, want 403", code)
	}
}

func TestDropQueryArgs(t *testing.T) {
	t.Parallel()
	drop := func(q string) string { return string(dropQueryArgs([]byte(q), []string{"md5", "expires"})) }
	testutil.Table(t, "dropQueryArgs", drop, map[string]string{
		"md5=x&expires=1":     "",
		"v=1&md5=x&expires=1": "v=1",
		"MD5=x&v=1&w&expires": "v=1&w",
		"md5x=1&xmd5=2":       "md5x=1&xmd5=2",
		"":                    "",
	})
}

func TestDecodeBase64URL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"_e4Nc3iduzkWRm01TBBNYw", "fdee0d73789dbb3916466d354c104d63", true},
		{"_e4Nc3iduzkWRm01TBBNYw==", "fdee0d73789dbb3916466d354c104d63", true},
		{"_e4Nc3iduzkWRm01TBBNYw=junk", "fdee0d73789dbb3916466d354c104d63", true},
		{"/e4Nc3iduzkWRm01TBBNYw", "", false},
		{"_e4Nc3iduzkWRm01TBBNY", "", false}, // 21 characters leave 6 bits alone
		{"A", "", false},
		{"", "", true},
		{"ab\ncd", "", false},
	} {
		got, ok := decodeBase64URL([]byte(tc.in))
		if ok != tc.ok || (tc.ok && tc.want != "" && hexString(got) != strings.ReplaceAll(tc.want, " ", "")) {
			t.Errorf("decodeBase64URL(%q) = %x, %v; want %s, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func TestParseExpr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, canon string
		err       string
	}{
		{"$arg_md5,$arg_expires", "${arg_md5},${arg_expires}", ""},
		{"$secure_link_expires$uri$remote_addr secret", "${secure_link_expires}${uri}${remote_addr} secret", ""},
		{"${uri}x$HTTP_X_Id", "${uri}x${http_X_Id}", ""},
		{"plain secret", "plain secret", ""},
		{"", "", ""},
		{"$URI", "${uri}", ""},
		{"a$", "", `"$" must start`},
		{"$-x", "", `"$" must start`},
		{"${uri", "", "no closing"},
		{"${}", "", `"$" must start`},
		{"${a-b}", "", `"$" must start`},
		{"$nosuch", "", "unknown variable $nosuch"},
		{"$arg_", "", "unknown variable $arg_"},
	} {
		e, err := parseExpr(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseExpr(%q) = %v, want an error with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || e.String() != tc.canon {
			t.Errorf("parseExpr(%q) = %q, %v; want %q", tc.in, e.String(), err, tc.canon)
		}
	}
}

func FuzzParseExpr(f *testing.F) {
	for _, s := range []string{"$arg_md5,$arg_expires", "$secure_link_expires$uri$remote_addr secret",
		"${http_x}y", "$", "${", "a$b", "$cookie_Sess"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := parseExpr(s)
		if err != nil {
			return
		}
		// The canonical form parses to the same expression.
		e2, err := parseExpr(e.String())
		if err != nil || e2.String() != e.String() || len(e2) != len(e) {
			t.Fatalf("parseExpr(%q).String() = %q does not parse back: %v", s, e.String(), err)
		}
	})
}

func TestSecureLinkValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	short := filepath.Join(dir, "short.key")
	os.WriteFile(short, []byte("short\n"), 0o600)
	for _, tc := range []struct {
		sl   SecureLink
		want string
	}{
		{SecureLink{}, "md5: md5 or hmac_sha256 is required"},
		{SecureLink{MD5: "$uri s", HMACSHA256: "$uri", Secret: hmacKey}, "hmac_sha256: md5 and hmac_sha256 are both set"},
		{SecureLink{MD5: "$nosuch"}, "md5: unknown variable $nosuch"},
		{SecureLink{Link: "$arg_md5,$secure_link_expires", MD5: "$uri s"}, "link: $secure_link_expires is what link defines"},
		{SecureLink{Link: "${arg_md5", MD5: "$uri s"}, "link: "},
		{SecureLink{MD5: "$uri s", Secret: hmacKey}, "secret: secret and secret_file apply to hmac_sha256 only"},
		{SecureLink{HMACSHA256: "$uri"}, "secret: hmac_sha256 needs a key"},
		{SecureLink{HMACSHA256: "$uri", Secret: "short"}, "secret: is 5 bytes; write a random key of at least 16 bytes"},
		{SecureLink{HMACSHA256: "$uri", Secret: hmacKey, SecretFile: short}, "secret_file: both are set"},
		{SecureLink{HMACSHA256: "$uri", SecretFile: filepath.Join(dir, "missing")}, "secret_file: open "},
		{SecureLink{HMACSHA256: "$uri", SecretFile: short}, "holds 5 bytes"},
	} {
		err := tc.sl.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.sl, err, tc.want)
		}
	}
	// Through the route: the field path names the route's block.
	r := Route{Prefix: "/s/", Servers: []UpstreamServer{{Addr: "127.0.0.1:1"}}, SecureLink: &SecureLink{MD5: "$bad"}}
	err := r.Validate()
	if err == nil || !strings.Contains(err.Error(), "secure_link.md5: unknown variable $bad") {
		t.Errorf("Route.Validate = %v, want the field secure_link.md5 named", err)
	}
	if err := (&SecureLink{MD5: "$secure_link_expires$uri secret"}).Validate(); err != nil {
		t.Errorf("Validate(nginx example) = %v", err)
	}
}

// Tracker routes take signed links too.
func TestSecureLinkTrackerRoute(t *testing.T) {
	t.Parallel()
	_, ft, data := storedObject(t, "a.jpg", 41, 1000)
	cfg := cacheRouteConfig(cache.Config{})
	cfg.Routes[0].SecureLink = &SecureLink{MD5: "$secure_link_expires$uri secret"}
	g := startGateway(t, cfg, Deps{Tracker: ft, Now: func() time.Time { return linkNow }})
	sig := opensslLink(t, "2147483647/d/a.jpg secret", "")
	fetchCached(t, "GET", g.base+"/d/a.jpg?md5="+sig+"&expires=2147483647", data, "MISS")
	if code, _, _, _ := get(t, "GET", g.base+"/d/a.jpg?md5="+sig+"&expires=2147483646"); code != 403 {
		t.Errorf("GET with a wrong expiry = %d, want 403", code)
	}
	if code, _, _, _ := get(t, "HEAD", g.base+"/d/a.jpg"); code != 403 {
		t.Errorf("HEAD without a link = %d, want 403", code)
	}
	// Every method of the route: a write without a link is refused before the tracker is asked.
	calls := ft.calls.Load()
	if code, _ := put(t, g.base+"/d/b.jpg", strings.NewReader("x"), 1); code != 403 {
		t.Errorf("PUT without a link = %d, want 403", code)
	}
	if got := ft.calls.Load(); got != calls {
		t.Errorf("tracker calls after a refused PUT = %d, want %d", got, calls)
	}
}

// The key file is read again at reload: a rotated key takes effect, and a reload whose key file is
// unreadable is refused, leaving the running key in force.
func TestSecureLinkKeyFileReload(t *testing.T) {
	t.Parallel()
	up := startTaggingUpstream(t, "127.0.0.4", nil)
	keyFile := filepath.Join(t.TempDir(), "link.key")
	if err := os.WriteFile(keyFile, []byte(hmacKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Routes: []Route{{Prefix: "/hm/", Servers: []UpstreamServer{{Addr: up.addr}},
		SecureLink: &SecureLink{Link: "$arg_sig", HMACSHA256: "$uri", SecretFile: keyFile}}}}
	g := startGateway(t, cfg, Deps{Now: func() time.Time { return linkNow }})
	status := func(key string) int {
		t.Helper()
		code, _, _, err := get(t, "GET", g.base+"/hm/a?sig="+opensslLink(t, "/hm/a", key))
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	const newKey = "a-rotated-key-of-32-bytes-length"
	if a, b := status(hmacKey), status(newKey); a != 200 || b != 403 {
		t.Fatalf("before the rotation: old key %d, new key %d; want 200, 403", a, b)
	}
	if err := os.WriteFile(keyFile, []byte(newKey), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := g.srv.Reload(cfg); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if a, b := status(hmacKey), status(newKey); a != 403 || b != 200 {
		t.Errorf("after the rotation: old key %d, new key %d; want 403, 200", a, b)
	}
	os.Remove(keyFile)
	if err := g.srv.Reload(cfg); err == nil || !strings.Contains(err.Error(), "secure_link.secret_file") {
		t.Errorf("Reload with the key file gone = %v, want an error naming secure_link.secret_file", err)
	}
	if got := status(newKey); got != 200 {
		t.Errorf("after a refused reload: new key %d, want 200", got)
	}
}
