package gateway

import (
	"bytes"
	"errors"
	"strings"

	"github.com/mogway/mogway/tracker/mogproto"
)

// Errors of URI parsing. Each one is answered with 400 before any tracker or storage node is asked.
var (
	errBadEscape  = errors.New("gateway: bad %-encoding in the URI")
	errControl    = errors.New("gateway: control byte in the URI")
	errNotPath    = errors.New("gateway: the URI is not an absolute path")
	errEscapeRoot = errors.New("gateway: the URI climbs above the root with ..")
	errEmptyKey   = errors.New("gateway: empty key")
)

// splitURI returns the path and the query string of a raw request URI. An absolute-form URI
// ("http://host/path", RFC 9112 section 3.2.2) is reduced to its path.
func splitURI(raw []byte) (path, query []byte, err error) {
	if i := bytes.IndexByte(raw, '#'); i >= 0 {
		raw = raw[:i]
	}
	if i := bytes.IndexByte(raw, '?'); i >= 0 {
		raw, query = raw[:i], raw[i+1:]
	}
	if len(raw) > 0 && raw[0] != '/' {
		s := string(raw)
		for _, scheme := range []string{"http://", "https://"} {
			if len(s) > len(scheme) && strings.EqualFold(s[:len(scheme)], scheme) {
				rest := raw[len(scheme):]
				j := bytes.IndexByte(rest, '/')
				if j < 0 {
					return []byte("/"), query, nil
				}
				return rest[j:], query, nil
			}
		}
		return nil, nil, errNotPath
	}
	if len(raw) == 0 {
		return nil, nil, errNotPath
	}
	return raw, query, nil
}

// decodePath percent-decodes a URI path strictly: every % must start two hex digits, and no byte of
// the result may be a control byte (0x00-0x1F, 0x7F). A '+' stays a '+': paths are not forms.
func decodePath(raw []byte) (string, error) {
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '%' {
			if i+2 >= len(raw) {
				return "", errBadEscape
			}
			h, ok1 := mogproto.Unhex(raw[i+1])
			l, ok2 := mogproto.Unhex(raw[i+2])
			if !ok1 || !ok2 {
				return "", errBadEscape
			}
			c = h<<4 | l
			i += 2
		}
		if c < 0x20 || c == 0x7f {
			return "", errControl
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}

// normalize resolves a decoded absolute path the way nginx does before it matches locations: runs of
// slashes become one, "." segments go and ".." removes the segment before it. A trailing slash stays.
// A ".." at the root is an error (nginx answers 400 too).
func normalize(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", errNotPath
	}
	if isNormal(p) {
		return p, nil
	}
	return resolveDots(p)
}

// resolveDots is normalize without the shortcut for paths that are already normal.
func resolveDots(p string) (string, error) {
	segs := make([]string, 0, 8)
	trailing := false
	for s := range strings.SplitSeq(p[1:], "/") {
		trailing = false
		switch s {
		case "", ".":
			trailing = true
		case "..":
			if len(segs) == 0 {
				return "", errEscapeRoot
			}
			segs = segs[:len(segs)-1]
			trailing = true
		default:
			segs = append(segs, s)
		}
	}
	out := "/" + strings.Join(segs, "/")
	if trailing && len(segs) > 0 {
		out += "/"
	}
	return out, nil
}

// isNormal reports whether normalize would return the absolute path p unchanged: no empty segment
// but a trailing one, and no "." or ".." segment.
func isNormal(p string) bool {
	for i := 1; i < len(p); {
		j := strings.IndexByte(p[i:], '/')
		if j < 0 {
			j = len(p) - i
		}
		seg := p[i : i+j]
		if (seg == "" && i+j < len(p)) || seg == "." || seg == ".." {
			return false
		}
		i += j + 1
	}
	return true
}

// mergeSlashes collapses runs of slashes only; it is the path as written, used to check that ".."
// does not carry a request out of the route it names.
func mergeSlashes(p string) string {
	if !strings.Contains(p, "//") {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && i > 0 && p[i-1] == '/' {
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// cleanPrefix is normalize for configuration prefixes; it returns "" when p cannot be normalised.
func cleanPrefix(p string) string {
	c, err := normalize(p)
	if err != nil {
		return ""
	}
	return c
}

// requestPath is a parsed request URI.
type requestPath struct {
	// written is the decoded path with slashes merged but dot segments kept.
	written string
	// clean is the decoded, normalised path that routes match.
	clean string
	// query is the raw query string.
	query []byte
}

// parseRequestPath parses and checks a raw request URI.
func parseRequestPath(raw []byte) (requestPath, error) {
	p, q, err := splitURI(raw)
	if err != nil {
		return requestPath{}, err
	}
	dec, err := decodePath(p)
	if err != nil {
		return requestPath{}, err
	}
	clean, err := normalize(dec)
	if err != nil {
		return requestPath{}, err
	}
	return requestPath{written: mergeSlashes(dec), clean: clean, query: q}, nil
}

// deriveKey computes the MogileFS key of a clean path matched by a tracker route with prefix.
//
// Mode "module" is the nginx mogilefs module's derivation (no mogilefs_pass argument): the prefix is
// cut from the decoded, normalised path, and leading slashes go, so /download/a/b%20c.jpg under
// /download/ is "a/b c.jpg". Mode "uri" is the whole path, as `mogilefs_pass $1` under
// `location ~ ^(/images/.*)$`. The query string is never part of a key.
func deriveKey(mode, prefix, clean string) (string, error) {
	var key string
	switch mode {
	case "uri":
		key = clean
	default:
		key = strings.TrimLeft(strings.TrimPrefix(clean, prefix), "/")
	}
	if key == "" {
		return "", errEmptyKey
	}
	return key, nil
}
