package gateway

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5" //nolint:gosec // nginx secure_link_md5 compatibility: the link format is MD5
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/mogway/mogway/internal/conf"
)

// Signed URLs, as nginx's ngx_http_secure_link_module (secure_link and secure_link_md5) checks them,
// so that existing link generators keep working:
//
//	location /s/ {
//	    secure_link $arg_md5,$arg_expires;
//	    secure_link_md5 "$secure_link_expires$uri$remote_addr secret";
//	    if ($secure_link = "")  { return 403; }
//	    if ($secure_link = "0") { return 410; }
//	}
//
// is the route block
//
//	secure_link:
//	  link: "$arg_md5,$arg_expires"
//	  md5: "$secure_link_expires$uri$remote_addr secret"
//
// The link expression gives the hash and, after the first comma, the expiry in Unix seconds. The
// hash is base64url (RFC 4648 section 5, padding optional) of the MD5 of the md5 expression, or, in
// the HMAC mode, of HMAC-SHA256 under a secret key of the hmac_sha256 expression. A missing or wrong
// hash, or an expiry that is not a positive decimal number, is answered 403; a right hash whose
// expiry has passed 410 (nginx checks the hash first, so an expired link with a wrong hash is 403).
// The query arguments the link expression reads are left out of the route's cache key, so that
// every signature of one object shares one cache entry.

// SecureLink is a route's `secure_link:` block. Exactly one of MD5 and HMACSHA256 is set.
type SecureLink struct {
	// Link is the expression giving "HASH" or "HASH,EXPIRES" (nginx secure_link). Default
	// "$arg_md5,$arg_expires".
	Link string `yaml:"link"`
	// MD5 is the expression whose MD5 the hash must be, secret included (nginx secure_link_md5).
	MD5 string `yaml:"md5"`
	// HMACSHA256 is the expression whose HMAC-SHA256 under the key of Secret or SecretFile the hash
	// must be.
	HMACSHA256 string `yaml:"hmac_sha256"`
	// Secret is the HMAC key (at least 16 bytes). Default none.
	Secret string `yaml:"secret"`
	// SecretFile is a file holding the HMAC key (one trailing line break is ignored), read at start
	// and reload. Default none.
	SecretFile string `yaml:"secret_file"`
}

// DefaultSecureLink is the link expression of a SecureLink that sets none.
const DefaultSecureLink = "$arg_md5,$arg_expires"

// minHMACKey is the shortest HMAC key accepted.
const minHMACKey = 16

// Validate checks the block; fields are named relative to it. It reads SecretFile.
func (sl *SecureLink) Validate() error {
	var p conf.Problems
	link, err := parseExpr(sl.link())
	if err != nil {
		p.Add("link", `write e.g. "$arg_md5,$arg_expires"`, "%v", err)
	} else if link.uses(varExpires) {
		p.Add("link", "use $secure_link_expires in md5 or hmac_sha256 only", "$secure_link_expires is what link defines")
	}
	switch {
	case sl.MD5 == "" && sl.HMACSHA256 == "":
		p.Add("md5", `write e.g. md5: "$secure_link_expires$uri secret", or set hmac_sha256`, "md5 or hmac_sha256 is required")
	case sl.MD5 != "" && sl.HMACSHA256 != "":
		p.Add("hmac_sha256", "keep md5 or hmac_sha256, not both", "md5 and hmac_sha256 are both set")
	case sl.MD5 != "":
		if _, err := parseExpr(sl.MD5); err != nil {
			p.Add("md5", `write e.g. "$secure_link_expires$uri secret"`, "%v", err)
		}
		if sl.Secret != "" || sl.SecretFile != "" {
			p.Add("secret", "put the secret in the md5 expression, or use hmac_sha256", "secret and secret_file apply to hmac_sha256 only")
		}
	default:
		if _, err := parseExpr(sl.HMACSHA256); err != nil {
			p.Add("hmac_sha256", `write e.g. "$secure_link_expires$uri"`, "%v", err)
		}
		switch {
		case sl.Secret == "" && sl.SecretFile == "":
			p.Add("secret", "set secret or secret_file", "hmac_sha256 needs a key")
		case sl.Secret != "" && sl.SecretFile != "":
			p.Add("secret_file", "keep secret or secret_file, not both", "both are set")
		case sl.Secret != "" && len(sl.Secret) < minHMACKey:
			p.Add("secret", "write a random key of at least 16 bytes", "is %d bytes", len(sl.Secret))
		case sl.SecretFile != "":
			if key, err := readKeyFile(sl.SecretFile); err != nil {
				p.Add("secret_file", "make it readable by the gateway", "%v", err)
			} else if len(key) < minHMACKey {
				p.Add("secret_file", "write a random key of at least 16 bytes", "%s holds %d bytes", sl.SecretFile, len(key))
			}
		}
	}
	return p.Err()
}

func (sl *SecureLink) link() string {
	if sl.Link == "" {
		return DefaultSecureLink
	}
	return sl.Link
}

// readKeyFile reads an HMAC key file, without one trailing line break.
func readKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r")), nil
}

// secureLink is a compiled SecureLink.
type secureLink struct {
	link, msg expr
	key       []byte   // HMAC key; nil in the MD5 mode
	broken    bool     // the key file could not be read at compile time: refuse every request
	args      []string // query arguments the link reads, left out of the cache key
}

// compileSecureLink compiles a validated block; nil for nil.
func compileSecureLink(sl *SecureLink) *secureLink {
	if sl == nil {
		return nil
	}
	c := &secureLink{}
	c.link, _ = parseExpr(sl.link())
	if sl.MD5 != "" {
		c.msg, _ = parseExpr(sl.MD5)
	} else {
		c.msg, _ = parseExpr(sl.HMACSHA256)
		c.key = []byte(sl.Secret)
		if sl.SecretFile != "" {
			key, err := readKeyFile(sl.SecretFile)
			// Validate read it a moment ago; if it is gone now, fail closed.
			c.key, c.broken = key, err != nil || len(key) < minHMACKey
		}
	}
	for _, p := range c.link {
		if p.kind == varArg {
			c.args = append(c.args, p.name)
		}
	}
	return c
}

// Link check results.
const (
	linkOK      = 0
	linkBad     = fasthttp.StatusForbidden // nginx $secure_link = ""
	linkExpired = fasthttp.StatusGone      // nginx $secure_link = "0"
)

// check computes the link status of a request at Unix time now.
func (sl *secureLink) check(v *linkVars, now int64) int {
	if sl.broken {
		return linkBad
	}
	val := sl.link.eval(nil, v)
	hash, exp, hasExp := bytes.Cut(val, []byte(","))
	var expires int64
	if hasExp {
		var ok bool
		if expires, ok = parseExpires(exp); !ok || expires <= 0 {
			return linkBad
		}
		v.expires = exp
	}
	sumLen, maxLen := md5.Size, 24
	if sl.key != nil {
		sumLen, maxLen = sha256.Size, 44
	}
	if len(hash) > maxLen {
		return linkBad
	}
	sum, ok := decodeBase64URL(hash)
	if !ok || len(sum) != sumLen {
		return linkBad
	}
	msg := sl.msg.eval(nil, v)
	var want []byte
	if sl.key != nil {
		m := hmac.New(sha256.New, sl.key)
		m.Write(msg)
		want = m.Sum(nil)
	} else {
		s := md5.Sum(msg) //nolint:gosec // see the import
		want = s[:]
	}
	if subtle.ConstantTimeCompare(sum, want) != 1 {
		return linkBad
	}
	if hasExp && expires < now {
		return linkExpired
	}
	return linkOK
}

// parseExpires reads a decimal number of seconds as nginx's ngx_atotm does: digits only, no sign,
// no overflow.
func parseExpires(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// decodeBase64URL decodes as nginx's ngx_decode_base64url does: the characters before the first
// "=" must all be of the URL alphabet and not leave a lone 6 bits; what follows "=" is ignored.
func decodeBase64URL(b []byte) ([]byte, bool) {
	if i := bytes.IndexByte(b, '='); i >= 0 {
		b = b[:i]
	}
	for _, c := range b {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, false
		}
	}
	if len(b)%4 == 1 {
		return nil, false
	}
	out := make([]byte, base64.RawURLEncoding.DecodedLen(len(b)))
	n, err := base64.RawURLEncoding.Decode(out, b)
	if err != nil {
		return nil, false
	}
	return out[:n], true
}

// secureLinkOK checks a request on a route with a secure_link block and answers it 403 or 410 when
// the link is bad or expired.
func (s *Server) secureLinkOK(ctx *fasthttp.RequestCtx, rt *route, rp requestPath, client netip.Addr) bool {
	v := linkVars{ctx: ctx, rp: rp, client: client}
	switch rt.secure.check(&v, s.now().Unix()) {
	case linkBad:
		plainError(ctx, fasthttp.StatusForbidden, "forbidden")
		return false
	case linkExpired:
		plainError(ctx, fasthttp.StatusGone, "link expired")
		return false
	}
	return true
}

// dropQueryArgs returns query without the arguments named in names (compared as nginx compares
// $arg_ names, ignoring case), the others kept as sent and in order.
func dropQueryArgs(query []byte, names []string) []byte {
	if len(names) == 0 || len(query) == 0 {
		return query
	}
	out := make([]byte, 0, len(query))
	for part := range bytes.SplitSeq(query, []byte("&")) {
		name, _, _ := bytes.Cut(part, []byte("="))
		if slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(string(name), n) }) {
			continue
		}
		if len(out) > 0 {
			out = append(out, '&')
		}
		out = append(out, part...)
	}
	return out
}

// errVarName is the problem of a "$" that starts no variable name.
var errVarName = errors.New(`"$" must start a variable name such as $uri or ${arg_md5}`)

// varKind is a variable of a link expression.
type varKind uint8

const (
	varNone          varKind = iota // literal text
	varURI                          // $uri: the decoded, normalised path
	varRequestURI                   // $request_uri: the request URI as sent, query included
	varArgs                         // $args, $query_string: the query string as sent
	varArg                          // $arg_NAME: a query argument as sent (not decoded)
	varHTTP                         // $http_NAME: a request header
	varCookie                       // $cookie_NAME: a cookie
	varRemoteAddr                   // $remote_addr: the client address (after real_ip)
	varHost                         // $host: the Host header, lower case, without port
	varScheme                       // $scheme: http or https
	varRequestMethod                // $request_method
	varExpires                      // $secure_link_expires: the expiry part of link
)

var plainVars = map[string]varKind{
	"uri": varURI, "request_uri": varRequestURI, "args": varArgs, "query_string": varArgs,
	"remote_addr": varRemoteAddr, "host": varHost, "scheme": varScheme,
	"request_method": varRequestMethod, "secure_link_expires": varExpires,
}

var prefixVars = []struct {
	prefix string
	kind   varKind
}{{"arg_", varArg}, {"http_", varHTTP}, {"cookie_", varCookie}}

// knownVars lists the variables for error messages.
const knownVars = "$uri, $request_uri, $args, $query_string, $arg_NAME, $http_NAME, $cookie_NAME, " +
	"$remote_addr, $host, $scheme, $request_method, $secure_link_expires"

// exprPart is literal text (kind varNone) or a variable.
type exprPart struct {
	kind varKind
	text string // the literal, or the variable's full name ("arg_md5")
	name string // NAME of $arg_NAME, $http_NAME (as a header name), $cookie_NAME
}

// expr is a parsed nginx complex value: literal text and variables.
type expr []exprPart

// parseExpr parses nginx's syntax: "$name" (letters, digits, "_") or "${name}" for a variable,
// anything else literal. nginx has no escape for "$", so neither do we.
func parseExpr(s string) (expr, error) {
	var e expr
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			e = append(e, exprPart{text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' {
			lit.WriteByte(c)
			i++
			continue
		}
		i++
		var name string
		if i < len(s) && s[i] == '{' {
			j := strings.IndexByte(s[i:], '}')
			if j < 0 {
				return nil, fmt.Errorf(`"${" at byte %d has no closing "}"`, i-1)
			}
			name, i = s[i+1:i+j], i+j+1
			if !isVarName(name) {
				return nil, fmt.Errorf("%w (at byte %d)", errVarName, i-len(name)-3)
			}
		} else {
			j := i
			for j < len(s) && isVarByte(s[j]) {
				j++
			}
			name, i = s[i:j], j
			if name == "" {
				return nil, fmt.Errorf("%w (at byte %d)", errVarName, i-1)
			}
		}
		p, err := lookupVar(name)
		if err != nil {
			return nil, err
		}
		flush()
		e = append(e, p)
	}
	flush()
	return e, nil
}

func isVarByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_'
}

func isVarName(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isVarByte(s[i]) {
			return false
		}
	}
	return s != ""
}

// lookupVar resolves a variable name as nginx does, ignoring case.
func lookupVar(name string) (exprPart, error) {
	lower := strings.ToLower(name)
	if k, ok := plainVars[lower]; ok {
		return exprPart{kind: k, text: lower}, nil
	}
	for _, pv := range prefixVars {
		if rest, ok := strings.CutPrefix(lower, pv.prefix); ok && rest != "" {
			n := rest
			if pv.kind == varHTTP {
				n = strings.ReplaceAll(rest, "_", "-")
			}
			if pv.kind == varCookie || pv.kind == varArg {
				n = name[len(pv.prefix):] // cookie names are case-sensitive; arg names compare without case
			}
			return exprPart{kind: pv.kind, text: pv.prefix + name[len(pv.prefix):], name: n}, nil
		}
	}
	return exprPart{}, fmt.Errorf("unknown variable $%s; known: %s", name, knownVars)
}

// uses reports whether e reads variable k.
func (e expr) uses(k varKind) bool {
	for _, p := range e {
		if p.kind == k {
			return true
		}
	}
	return false
}

// String returns e in a form parseExpr reads back to e: every variable as ${name}.
func (e expr) String() string {
	var b strings.Builder
	for _, p := range e {
		if p.kind == varNone {
			b.WriteString(p.text)
			continue
		}
		b.WriteString("${" + p.text + "}")
	}
	return b.String()
}

// linkVars is what the variables of a request read.
type linkVars struct {
	ctx     *fasthttp.RequestCtx
	rp      requestPath
	client  netip.Addr
	expires []byte // set by check from the link
}

// eval appends the value of e for v to dst.
func (e expr) eval(dst []byte, v *linkVars) []byte {
	h := &v.ctx.Request.Header
	for _, p := range e {
		switch p.kind {
		case varNone:
			dst = append(dst, p.text...)
		case varURI:
			dst = append(dst, v.rp.clean...)
		case varRequestURI:
			dst = append(dst, h.RequestURI()...)
		case varArgs:
			dst = append(dst, v.rp.query...)
		case varArg:
			dst = append(dst, queryArg(v.rp.query, p.name)...)
		case varHTTP:
			dst = append(dst, h.Peek(p.name)...)
		case varCookie:
			dst = append(dst, h.Cookie(p.name)...)
		case varRemoteAddr:
			if v.client.IsValid() {
				dst = v.client.Unmap().AppendTo(dst)
			}
		case varHost:
			host := string(h.Host())
			if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
				host = host[:i]
			}
			dst = append(dst, strings.ToLower(host)...)
		case varScheme:
			if v.ctx.IsTLS() {
				dst = append(dst, "https"...)
			} else {
				dst = append(dst, "http"...)
			}
		case varRequestMethod:
			dst = append(dst, h.Method()...)
		case varExpires:
			dst = append(dst, v.expires...)
		}
	}
	return dst
}

// queryArg returns the raw value of the first argument called name (ignoring case) in query, as
// nginx's $arg_NAME: not percent-decoded, empty when absent or without "=".
func queryArg(query []byte, name string) []byte {
	for part := range bytes.SplitSeq(query, []byte("&")) {
		n, val, _ := bytes.Cut(part, []byte("="))
		if strings.EqualFold(string(n), name) {
			return val
		}
	}
	return nil
}
